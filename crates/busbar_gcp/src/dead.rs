//! Dead letters on Pub/Sub: kept by the one subscription on each subscription's dead-letter
//! topic; listed by pulling every message of it (leased for the scan, then offered again),
//! released by publishing each back to the subscription's topic for that subscription only
//! (the topic's other subscriptions let it pass: [`RELEASED_TO`]) and acknowledging it. Two
//! scans of one dead-letter subscription at once see only part of it each; `busbar dlq` is an
//! operator's tool, run one at a time.

use busbar_runtime::{BrokerError, DeadLetter, StoredMessage, envelope};
use gcloud_googleapis::pubsub::v1::{
    AcknowledgeRequest, ModifyAckDeadlineRequest, PullRequest, ReceivedMessage,
};
use gcloud_pubsub::subscription::Subscription;

use crate::consume::{RELEASED_TO, log};
use crate::errors::{Failure, failure};
use crate::resolve::SubscriptionAt;
use crate::{publish, pubsub_message};

/// How long a scan leases what it pulled.
const SCAN_LEASE_SECONDS: i32 = 60;
/// The most dead letters one scan reads.
const SCAN_LIMIT: usize = 10_000;
/// Empty answers in a row that end a scan (a pull that returns at once may come back empty
/// while messages remain).
const EMPTY_PULLS: usize = 2;
/// The attribute Pub/Sub's dead-letter policy sets: the deliveries made before it moved it.
const SOURCE_DELIVERIES: &str = "CloudPubSubDeadLetterSourceDeliveryCount";

fn dead_subscription(at: &SubscriptionAt) -> Result<&Subscription, BrokerError> {
    at.dead_subscription.as_ref().ok_or_else(|| {
        BrokerError::Failed(format!(
            "the dead letters of `{}` are not read by a service's sidecar: use `busbar dlq`",
            at.name
        ))
    })
}

/// Every message of a dead-letter subscription, leased until [`show`] or [`ack`].
async fn scan(sub: &Subscription) -> Result<Vec<ReceivedMessage>, BrokerError> {
    let client = sub.get_client();
    let name = sub.fully_qualified_name().to_string();
    let mut out: Vec<ReceivedMessage> = Vec::new();
    let mut empty = 0;
    while out.len() < SCAN_LIMIT && empty < EMPTY_PULLS {
        #[expect(deprecated, reason = "a scan must not wait for messages that are not there")]
        let request =
            PullRequest { subscription: name.clone(), return_immediately: true, max_messages: 100 };
        let got = client.pull(request, None).await.map_err(|e| {
            failure(format_args!("reading the dead letters of {name}"), &Failure::from(e))
        })?;
        let got = got.into_inner().received_messages;
        if got.is_empty() {
            empty += 1;
            continue;
        }
        empty = 0;
        let ids: Vec<String> = got.iter().map(|m| m.ack_id.clone()).collect();
        deadline(sub, ids, SCAN_LEASE_SECONDS).await;
        out.extend(got);
    }
    Ok(out)
}

async fn deadline(sub: &Subscription, ack_ids: Vec<String>, seconds: i32) {
    if ack_ids.is_empty() {
        return;
    }
    let name = sub.fully_qualified_name().to_string();
    let request = ModifyAckDeadlineRequest {
        subscription: name.clone(),
        ack_ids,
        ack_deadline_seconds: seconds,
    };
    if let Err(e) = sub.get_client().modify_ack_deadline(request, None).await {
        let what = format!("setting the lease of dead letters of {name}");
        log(&failure(what, &Failure::from(e)).to_string());
    }
}

/// Offers scanned messages again.
async fn show(sub: &Subscription, messages: &[ReceivedMessage]) {
    deadline(sub, messages.iter().map(|m| m.ack_id.clone()).collect(), 0).await;
}

/// The number of dead letters a subscription keeps.
pub(crate) async fn count(sub: &Subscription) -> Result<i64, BrokerError> {
    let scanned = scan(sub).await?;
    show(sub, &scanned).await;
    Ok(scanned.len() as i64)
}

fn published_ms(m: &ReceivedMessage) -> i64 {
    let time = m.message.as_ref().and_then(|m| m.publish_time.as_ref());
    time.map_or(0, |t| t.seconds * 1000 + i64::from(t.nanos) / 1_000_000)
}

/// A dead letter as the runtime reports it (what the runtime moved carries its reason; what
/// the subscription's dead-letter policy moved, its delivery count).
fn dead_letter(m: &ReceivedMessage, at: &SubscriptionAt) -> DeadLetter {
    let pubsub = m.message.clone().unwrap_or_default();
    let dead_ms = published_ms(m);
    let decoded = std::str::from_utf8(&pubsub.data)
        .map_err(|e| format!("the data is not UTF-8: {e}"))
        .and_then(envelope::decode);
    match decoded {
        Ok((message, Some(mark))) => DeadLetter {
            seq: 0,
            reason: mark.reason,
            attempts: mark.attempts,
            dead_at_ms: mark.dead_ms,
            message,
        },
        Ok((message, None)) => {
            let deliveries = pubsub.attributes.get(SOURCE_DELIVERIES);
            let attempts = deliveries.and_then(|n| n.parse::<u32>().ok()).unwrap_or(0);
            DeadLetter {
                seq: 0,
                reason: format!(
                    "delivered {attempts} times to {} and not acknowledged: moved by its dead-letter policy (max_delivery_attempts)",
                    at.name
                ),
                attempts,
                dead_at_ms: dead_ms,
                message,
            }
        }
        Err(why) => DeadLetter {
            seq: 0,
            reason: why,
            attempts: 0,
            dead_at_ms: dead_ms,
            message: StoredMessage {
                id: pubsub.message_id.clone(),
                topic: String::new(),
                data: pubsub.data.clone(),
                content_type: "application/octet-stream".into(),
                attributes: pubsub.attributes.into_iter().collect(),
                published_at_ms: dead_ms,
            },
        },
    }
}

/// A subscription's dead letters, oldest first.
pub(crate) async fn list(at: &SubscriptionAt) -> Result<Vec<DeadLetter>, BrokerError> {
    let sub = dead_subscription(at)?;
    let scanned = scan(sub).await?;
    show(sub, &scanned).await;
    let mut out: Vec<DeadLetter> = scanned.iter().map(|m| dead_letter(m, at)).collect();
    out.sort_by(|a, b| (a.dead_at_ms, &a.message.id).cmp(&(b.dead_at_ms, &b.message.id)));
    for (i, d) in out.iter_mut().enumerate() {
        d.seq = i as i64;
    }
    Ok(out)
}

/// Publishes dead letters (all, or those with these message ids) back for the subscription;
/// how many. Data that is not a busbar message stays where it is.
pub(crate) async fn release(
    at: &SubscriptionAt,
    ordering: Option<&str>,
    ids: Option<&[String]>,
) -> Result<usize, BrokerError> {
    let sub = dead_subscription(at)?;
    let scanned = scan(sub).await?;
    let mut keep = Vec::new();
    let mut released = Vec::new();
    for (i, m) in scanned.iter().enumerate() {
        let data = m.message.as_ref().map(|p| p.data.as_slice()).unwrap_or_default();
        let decoded = std::str::from_utf8(data).ok().and_then(|d| envelope::decode(d).ok());
        let wanted =
            decoded.as_ref().filter(|(message, _)| ids.is_none_or(|ids| ids.contains(&message.id)));
        let Some((message, _)) = wanted else {
            keep.push(m.clone());
            continue;
        };
        let key = ordering.and_then(|a| message.attributes.get(a)).cloned();
        let mut again = pubsub_message(message, None, key);
        again.attributes.insert(RELEASED_TO.to_string(), at.settings.name.clone());
        if let Err(e) = publish(&at.topic_publisher, again).await {
            keep.extend(scanned.iter().skip(i).cloned());
            show(sub, &keep).await;
            ack(sub, &released).await?;
            return Err(failure(format_args!("releasing a dead letter of {}", at.name), &e));
        }
        released.push(m.ack_id.clone());
    }
    show(sub, &keep).await;
    ack(sub, &released).await?;
    Ok(released.len())
}

async fn ack(sub: &Subscription, ack_ids: &[String]) -> Result<(), BrokerError> {
    let name = sub.fully_qualified_name().to_string();
    for chunk in ack_ids.chunks(1000) {
        let request = AcknowledgeRequest { subscription: name.clone(), ack_ids: chunk.to_vec() };
        sub.get_client().acknowledge(request, None).await.map_err(|e| {
            failure(format_args!("removing released dead letters of {name}"), &Failure::from(e))
        })?;
    }
    Ok(())
}
