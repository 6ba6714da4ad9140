//! Dead letters on SQS: listed by receiving every message of the dead-letter queue (hidden for
//! the scan, then visible again), released by sending each back to the subscription's queue
//! and deleting it from the dead-letter queue. Two scans of one dead-letter queue at once see
//! only part of it each; `busbar dlq` is an operator's tool, run one at a time.

use aws_sdk_sqs::types::{Message, MessageSystemAttributeName, QueueAttributeName};
use busbar_runtime::{BrokerError, DeadLetter, StoredMessage};

use crate::Clients;
use crate::consume::{WANTED, log, send};
use crate::errors::failure;
use crate::resolve::Queue;
use busbar_runtime::envelope;

/// How long a scan hides what it received.
const SCAN_VISIBILITY_SECONDS: i32 = 60;
/// The most dead letters one scan reads.
const SCAN_LIMIT: usize = 10_000;

/// The visible and in-flight messages of a queue (SQS's approximate counts).
pub(crate) async fn counts(clients: &Clients, url: &str) -> Result<(i64, i64), BrokerError> {
    let got = clients
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .map_err(|e| failure(format_args!("reading the counts of {url}"), &e))?;
    let attributes = got.attributes();
    let get = |name: &QueueAttributeName| {
        attributes.and_then(|a| a.get(name)).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0)
    };
    Ok((
        get(&QueueAttributeName::ApproximateNumberOfMessages)
            + get(&QueueAttributeName::ApproximateNumberOfMessagesDelayed),
        get(&QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
    ))
}

/// Every message of the queue at `url`, hidden until [`show`].
async fn scan(clients: &Clients, url: &str) -> Result<Vec<Message>, BrokerError> {
    let mut out: Vec<Message> = Vec::new();
    while out.len() < SCAN_LIMIT {
        #[expect(deprecated, reason = "moto reads only the older `AttributeNames`; AWS reads both")]
        let request = clients
            .sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .visibility_timeout(SCAN_VISIBILITY_SECONDS)
            .set_attribute_names(Some(WANTED.iter().map(|&a| a.into()).collect()))
            .set_message_system_attribute_names(Some(WANTED.iter().map(|&a| a.into()).collect()));
        let got = request
            .send()
            .await
            .map_err(|e| failure(format_args!("reading the dead letters of {url}"), &e))?;
        let messages = got.messages();
        if messages.is_empty() {
            break;
        }
        out.extend(messages.iter().cloned());
    }
    Ok(out)
}

/// Makes scanned messages visible again.
async fn show(clients: &Clients, url: &str, messages: &[Message]) {
    for m in messages {
        let Some(receipt) = m.receipt_handle() else { continue };
        let sent = clients
            .sqs
            .change_message_visibility()
            .queue_url(url)
            .receipt_handle(receipt)
            .visibility_timeout(0)
            .send()
            .await;
        if let Err(e) = sent {
            log(&failure(format_args!("showing a dead letter of {url} again"), &e).to_string());
        }
    }
}

/// A dead letter as the runtime reports it (what the runtime moved carries its reason; what
/// the queue's redrive policy moved, the receive count).
fn dead_letter(seq: usize, m: &Message, queue: &Queue) -> DeadLetter {
    let body = m.body().unwrap_or_default();
    let sent_ms = m
        .attributes()
        .and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp))
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(0);
    let seq = seq as i64;
    match envelope::decode(body) {
        Ok((message, Some(mark))) => DeadLetter {
            seq,
            reason: mark.reason,
            attempts: mark.attempts,
            dead_at_ms: mark.dead_ms,
            message,
        },
        Ok((message, None)) => DeadLetter {
            seq,
            reason: format!(
                "received {} times: moved by the queue's redrive policy (maxReceiveCount)",
                queue.max_receive_count
            ),
            attempts: queue.max_receive_count,
            dead_at_ms: sent_ms,
            message,
        },
        Err(why) => DeadLetter {
            seq,
            reason: why,
            attempts: 0,
            dead_at_ms: sent_ms,
            message: StoredMessage {
                id: m.message_id().unwrap_or_default().to_string(),
                topic: String::new(),
                data: body.as_bytes().to_vec(),
                content_type: "text/plain".into(),
                attributes: Default::default(),
                published_at_ms: sent_ms,
            },
        },
    }
}

/// A subscription's dead letters, oldest first.
pub(crate) async fn list(clients: &Clients, queue: &Queue) -> Result<Vec<DeadLetter>, BrokerError> {
    let scanned = scan(clients, &queue.dead_letter_url).await?;
    show(clients, &queue.dead_letter_url, &scanned).await;
    let mut out: Vec<DeadLetter> =
        scanned.iter().enumerate().map(|(i, m)| dead_letter(i, m, queue)).collect();
    out.sort_by(|a, b| (a.dead_at_ms, &a.message.id).cmp(&(b.dead_at_ms, &b.message.id)));
    for (i, d) in out.iter_mut().enumerate() {
        d.seq = i as i64;
    }
    Ok(out)
}

/// Sends dead letters (all, or those with these message ids) back to the subscription's queue;
/// how many. A body that is not a busbar message stays where it is.
pub(crate) async fn release(
    clients: &Clients,
    queue: &Queue,
    ordering: Option<&str>,
    ids: Option<&[String]>,
) -> Result<usize, BrokerError> {
    let scanned = scan(clients, &queue.dead_letter_url).await?;
    let mut keep = Vec::new();
    let mut released = 0;
    for (i, m) in scanned.iter().enumerate() {
        let decoded = envelope::decode(m.body().unwrap_or_default()).ok();
        let wanted =
            decoded.as_ref().filter(|(message, _)| ids.is_none_or(|ids| ids.contains(&message.id)));
        let (Some((message, _)), Some(receipt)) = (wanted, m.receipt_handle()) else {
            keep.push(m.clone());
            continue;
        };
        let group = ordering.and_then(|a| message.attributes.get(a)).unwrap_or(&message.id);
        let body = envelope::encode(message, None);
        if let Err(e) = send(clients, &queue.url, queue.fifo, body, group).await {
            keep.extend(scanned.iter().skip(i).cloned());
            show(clients, &queue.dead_letter_url, &keep).await;
            return Err(e);
        }
        clients
            .sqs
            .delete_message()
            .queue_url(&queue.dead_letter_url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(|e| {
                failure(
                    format_args!("deleting a released dead letter of {}", queue.dead_letter_url),
                    &e,
                )
            })?;
        released += 1;
    }
    show(clients, &queue.dead_letter_url, &keep).await;
    Ok(released)
}
