export interface Mail {
  to: string;
  subject: string;
  body: string;
}

export interface Sent extends Mail {
  sentAt: string;
}

/** The mails sent, in order: this example's mail server. */
const outbox: Sent[] = [];

export async function send(mail: Mail): Promise<void> {
  outbox.push({ ...mail, sentAt: new Date().toISOString() });
  console.log(`mailed ${mail.to}: ${mail.subject}`);
}

export function sent(): readonly Sent[] {
  return outbox;
}
