//! What a published body is, and what a subscriber is sent for it.
//!
//! The invariant: a message is stored with the media type it was published with, and a stored
//! message whose media type is JSON holds JSON that any parser reads (checked strictly at
//! publish: numbers in range, no lone surrogate, valid UTF-8, at most 127 levels deep). So
//! every stored message can be delivered, byte-exact:
//!
//! - JSON (`application/json`, `*+json`): embedded as it is in the CloudEvent's `data`;
//! - text (`text/*`, `application/xml`, `*+xml`) that is valid UTF-8: `data` as a string;
//! - anything else: `data_base64`.
//!
//! A body that cannot be stored this way is refused at publish (400), never stored.

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};

use busbar_runtime::JSON;

/// The longest content type accepted.
const MAX_CONTENT_TYPE: usize = 256;

/// JSON checked strictly, without building a tree: every number parsed (so `1e999` is an
/// error), every string decoded (lone surrogates and invalid UTF-8 are errors), nesting bounded
/// by serde_json's recursion limit (128). (`serde::de::IgnoredAny` skips values without reading
/// them, so it accepts all three.)
pub(crate) struct Strict;

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Strict;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Strict, E> {
        Ok(Strict)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Strict, E> {
        Ok(Strict)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Strict, E> {
        Ok(Strict)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Strict, E> {
        Ok(Strict)
    }
    fn visit_str<E>(self, _: &str) -> Result<Strict, E> {
        Ok(Strict)
    }
    fn visit_unit<E>(self) -> Result<Strict, E> {
        Ok(Strict)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Strict, A::Error> {
        while seq.next_element::<Strict>()?.is_some() {}
        Ok(Strict)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Strict, A::Error> {
        while map.next_key::<Strict>()?.is_some() {
            map.next_value::<Strict>()?;
        }
        Ok(Strict)
    }
}

/// `Err` says why `bytes` is not JSON that every parser reads.
pub(crate) fn check_json(bytes: &[u8]) -> Result<(), String> {
    serde_json::from_slice::<Strict>(bytes).map(|_| ()).map_err(|e| e.to_string())
}

/// The media type of a content type, lowercased, without parameters.
fn media_type(content_type: &str) -> String {
    content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
}

/// Whether a content type is JSON (`application/json`, `application/*+json`), a CloudEvent
/// included.
pub(crate) fn is_json(content_type: &str) -> bool {
    let m = media_type(content_type);
    m == JSON || m.ends_with("+json")
}

/// Whether a content type is text a subscriber reads as a string.
fn is_text(content_type: &str) -> bool {
    let m = media_type(content_type);
    m.starts_with("text/") || m == "application/xml" || m.ends_with("+xml")
}

/// Whether a content type is a CloudEvent in JSON (structured mode).
pub(crate) fn is_cloudevent(content_type: &str) -> bool {
    media_type(content_type) == "application/cloudevents+json"
}

/// A published body, ready to store.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Decoded {
    pub data: Vec<u8>,
    pub content_type: String,
    /// A CloudEvent's id (the client's message id).
    pub client_id: Option<String>,
}

/// Why a body is refused (HTTP 400): the Dapr error code and the message.
pub(crate) type Refusal = (&'static str, String);

/// A published body with its `Content-Type` (empty: JSON, as Dapr assumes). A CloudEvent is
/// unwrapped unless `raw` (Dapr's `metadata.rawPayload=true`): then it is a JSON body like any
/// other.
pub(crate) fn decode(content_type: &str, body: Vec<u8>, raw: bool) -> Result<Decoded, Refusal> {
    let content_type = content_type.trim();
    if content_type.len() > MAX_CONTENT_TYPE {
        return Err((
            "ERR_MALFORMED_REQUEST",
            format!("the content type is over {MAX_CONTENT_TYPE} bytes"),
        ));
    }
    if !raw && is_cloudevent(content_type) {
        return crate::cloudevent::parse(&body).map_err(|e| ("ERR_PUBSUB_CLOUD_EVENTS_SER", e));
    }
    let content_type = if content_type.is_empty() { JSON } else { content_type };
    if is_json(content_type) {
        check_json(&body).map_err(|e| {
            (
                "ERR_MALFORMED_REQUEST",
                format!(
                    "the body is labelled {content_type} but is not JSON every reader accepts: {e} (send other bytes with their own content type, e.g. application/octet-stream)"
                ),
            )
        })?;
    }
    Ok(Decoded { data: body, content_type: content_type.to_string(), client_id: None })
}

/// How a stored message goes into the CloudEvent a subscriber receives.
pub(crate) enum Data<'a> {
    /// JSON, embedded as it is.
    Json(&'a serde_json::value::RawValue),
    /// Text, as a JSON string.
    Text(&'a str),
    /// Bytes, for `data_base64`.
    Binary(&'a [u8]),
}

/// The representation of a stored message's data (by its content type; JSON that is not, which
/// only a store written by hand holds, goes as bytes rather than not at all).
pub(crate) fn data_of<'a>(data: &'a [u8], content_type: &str) -> Data<'a> {
    if is_json(content_type)
        && let Ok(raw) = serde_json::from_slice::<&serde_json::value::RawValue>(data)
    {
        return Data::Json(raw);
    }
    if is_text(content_type)
        && let Ok(text) = std::str::from_utf8(data)
    {
        return Data::Text(text);
    }
    Data::Binary(data)
}

/// A bulk publish entry, as the Dapr API has it. Dapr reads the field names as Go's JSON
/// decoder does, whatever their case: the official JavaScript SDK sends `entryID`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BulkEntry<'a> {
    #[serde(default, alias = "entryID")]
    pub entry_id: String,
    #[serde(borrow)]
    pub event: Option<&'a serde_json::value::RawValue>,
    #[serde(default)]
    pub content_type: Option<String>,
    #[serde(default)]
    pub metadata: std::collections::BTreeMap<String, serde_json::Value>,
}

/// The body an entry's event stands for: a JSON or CloudEvent event is its JSON text, any other
/// content type's event is a string holding the body.
pub(crate) fn bulk_body(
    event: &serde_json::value::RawValue,
    content_type: &str,
) -> Result<Vec<u8>, String> {
    if is_json(content_type) || content_type.is_empty() {
        return Ok(event.get().as_bytes().to_vec());
    }
    match serde_json::from_str::<String>(event.get()) {
        Ok(s) => Ok(s.into_bytes()),
        Err(_) => Err(format!("the event of a {content_type} entry is a JSON string of the body")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_checked_strictly() {
        for ok in [&b"{\"a\":[1,2.5e10,\"\\ud83d\\ude00\",null,true]}"[..], b" 1 ", b"\"\""] {
            assert_eq!(check_json(ok), Ok(()), "{}", String::from_utf8_lossy(ok));
        }
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        for bad in [
            &b"1e999"[..],
            b"{\"a\":-1e400}",
            b"\"\\ud800\"",
            b"\"\\udc00x\"",
            b"\"\xff\"",
            b"{\"a\":1,}",
            b"",
            deep.as_bytes(),
        ] {
            assert!(check_json(bad).is_err(), "accepted {}", String::from_utf8_lossy(bad));
            // What the old check (`IgnoredAny`) let through, the strict one refuses.
        }
        assert!(serde_json::from_slice::<serde::de::IgnoredAny>(b"1e999").is_ok());
    }

    #[test]
    fn content_types_choose_the_representation() {
        assert!(is_json("application/json; charset=utf-8") && is_json("application/ld+json"));
        assert!(!is_json("text/plain") && is_text("text/plain") && is_text("application/soap+xml"));
        assert!(
            matches!(data_of(b" {\"a\":1} ", "application/json"), Data::Json(r) if r.get() == "{\"a\":1}")
        );
        assert!(matches!(data_of("héllo".as_bytes(), "text/plain"), Data::Text("héllo")));
        assert!(matches!(data_of(b"\xff", "text/plain"), Data::Binary(b"\xff")));
        assert!(matches!(data_of(b"{}", "application/octet-stream"), Data::Binary(_)));
    }

    #[test]
    fn bodies_are_decoded_by_their_content_type() {
        let d = decode("", b"{\"a\":1}".to_vec(), false).unwrap();
        assert_eq!(d.content_type, JSON);
        assert!(decode("application/json", b"\"\\ud800\"".to_vec(), false).is_err());
        let raw = decode("application/octet-stream", vec![0xff, 0], false).unwrap();
        assert_eq!(
            (raw.data, raw.content_type.as_str()),
            (vec![0xff, 0], "application/octet-stream")
        );
        assert!(decode(&"x".repeat(300), vec![], false).is_err());
    }
}
