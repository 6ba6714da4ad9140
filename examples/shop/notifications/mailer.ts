export interface Mail {
  to: string;
  subject: string;
  body: string;
}

const outbox: Mail[] = [];

export async function send(mail: Mail): Promise<void> {
  outbox.push(mail);
}

export function sent(): readonly Mail[] {
  return outbox;
}
