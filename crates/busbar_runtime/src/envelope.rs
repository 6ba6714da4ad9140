//! The body of a message on a cloud backend (SNS and SQS, Pub/Sub): a JSON envelope with what
//! the runtime delivers besides the data (its id, topic, media type, attributes and publish
//! time), since SQS carries at most 10 message attributes and the message's own attributes may
//! take all of them. The attributes also travel as the provider's message attributes, which is
//! what the subscriptions' filters match. A dead letter the runtime moved itself carries why,
//! and after how many attempts. Every cloud backend reads and writes this one format.
//!
//! JSON data is embedded as it was published (byte for byte); any other data as base64.

use std::collections::BTreeMap;

use crate::StoredMessage;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The envelope's version, checked on the way back.
const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Envelope<'a> {
    busbar: u32,
    id: String,
    topic: String,
    content_type: String,
    published_ms: i64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    attributes: BTreeMap<String, String>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    data: Option<&'a RawValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data_base64: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dead_letter: Option<DeadMark>,
}

/// Why a message is a dead letter, when the runtime moved it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeadMark {
    pub reason: String,
    pub attempts: u32,
    pub dead_ms: i64,
}

/// The body of `message` (with `dead`, as a dead letter).
pub fn encode(message: &StoredMessage, dead: Option<DeadMark>) -> String {
    // JSON data goes in as is when it reads back to the same bytes.
    let raw = serde_json::from_slice::<&RawValue>(&message.data)
        .ok()
        .filter(|raw| raw.get().as_bytes() == message.data.as_slice());
    let data_base64 = match raw {
        Some(_) => None,
        None => Some(base64::engine::general_purpose::STANDARD.encode(&message.data)),
    };
    let envelope = Envelope {
        busbar: VERSION,
        id: message.id.clone(),
        topic: message.topic.clone(),
        content_type: message.content_type.clone(),
        published_ms: message.published_at_ms,
        attributes: message.attributes.clone(),
        data: raw,
        data_base64,
        dead_letter: dead,
    };
    serde_json::to_string(&envelope).unwrap_or_default()
}

/// The message in a body (and its dead-letter mark); the error says why it is not one.
pub fn decode(body: &str) -> Result<(StoredMessage, Option<DeadMark>), String> {
    let envelope: Envelope<'_> = serde_json::from_str(body)
        .map_err(|e| format!("the body is not a busbar message envelope: {e}"))?;
    if envelope.busbar != VERSION {
        return Err(format!(
            "the envelope is version {}; this busbar reads version {VERSION}",
            envelope.busbar
        ));
    }
    let data = match (envelope.data, envelope.data_base64) {
        (Some(raw), None) => raw.get().as_bytes().to_vec(),
        (None, Some(b64)) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| format!("the envelope's `dataBase64` is not base64: {e}"))?,
        (None, None) => Vec::new(),
        (Some(_), Some(_)) => return Err("the envelope has both `data` and `dataBase64`".into()),
    };
    let message = StoredMessage {
        id: envelope.id,
        topic: envelope.topic,
        data,
        content_type: envelope.content_type,
        attributes: envelope.attributes,
        published_at_ms: envelope.published_ms,
    };
    Ok((message, envelope.dead_letter))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(data: &[u8]) -> StoredMessage {
        StoredMessage {
            id: "m1".into(),
            topic: "orders".into(),
            data: data.to_vec(),
            content_type: "application/json".into(),
            attributes: BTreeMap::from([("region".into(), "eu".into())]),
            published_at_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn json_travels_as_json_and_anything_else_as_base64_both_byte_for_byte() {
        for data in [&b"{\"a\": [1, 2.50]}"[..], b" {\"a\":1}", b"\xff\x00binary", b""] {
            let body = encode(&message(data), None);
            let (back, dead) = decode(&body).unwrap();
            assert_eq!(back, message(data), "{body}");
            assert_eq!(dead, None);
        }
        let body = encode(&message(b"{\"a\": [1, 2.50]}"), None);
        assert!(body.contains("\"data\":{\"a\": [1, 2.50]}"), "{body}");
        assert!(encode(&message(b" {\"a\":1}"), None).contains("dataBase64"));
    }

    #[test]
    fn a_dead_letter_keeps_its_reason_and_a_foreign_body_is_refused() {
        let mark = DeadMark { reason: "refused".into(), attempts: 3, dead_ms: 5 };
        let body = encode(&message(b"{}"), Some(mark.clone()));
        assert_eq!(decode(&body).unwrap().1, Some(mark));
        assert!(decode("hello").unwrap_err().contains("not a busbar message envelope"));
        let future = body.replace("\"busbar\":1", "\"busbar\":9");
        assert!(decode(&future).unwrap_err().contains("version 9"));
    }
}
