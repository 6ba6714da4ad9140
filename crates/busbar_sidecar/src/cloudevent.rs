//! CloudEvents 1.0 in JSON: reading a published envelope, writing a delivered one, and the
//! attribute values of a message.

use std::collections::BTreeMap;

use base64::Engine;
use busbar_runtime::{Delivery, JSON};
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::payload::{self, Decoded};

/// A published CloudEvent (structured mode): its data, as bytes with their content type
/// (`datacontenttype`, JSON by default; bytes of `data_base64` are `application/octet-stream`
/// unless it says otherwise), and its id. `Err` says what is wrong with it.
pub(crate) fn parse(body: &[u8]) -> Result<Decoded, String> {
    payload::check_json(body).map_err(|e| format!("the CloudEvent is not JSON: {e}"))?;
    let fields: BTreeMap<String, &RawValue> =
        serde_json::from_slice(body).map_err(|_| "a CloudEvent is a JSON object".to_string())?;
    let text =
        |name: &str| fields.get(name).and_then(|v| serde_json::from_str::<String>(v.get()).ok());
    for required in ["id", "source", "specversion", "type"] {
        if text(required).is_none_or(|s| s.is_empty()) {
            return Err(format!("the CloudEvent has no `{required}` string"));
        }
    }
    if text("specversion").as_deref() != Some("1.0") {
        return Err("the CloudEvent's specversion is not \"1.0\"".into());
    }
    let declared = match fields.get("datacontenttype") {
        None => None,
        Some(_) => Some(
            text("datacontenttype").ok_or("the CloudEvent's datacontenttype is not a string")?,
        ),
    };
    let (data, content_type) = match (fields.get("data"), fields.get("data_base64")) {
        (Some(_), Some(_)) => return Err("the CloudEvent has both `data` and `data_base64`".into()),
        (Some(data), None) => {
            let content_type = declared.unwrap_or_else(|| JSON.to_string());
            if payload::is_json(&content_type) {
                (data.get().as_bytes().to_vec(), content_type)
            } else {
                let text = serde_json::from_str::<String>(data.get()).map_err(|_| {
                    format!("the CloudEvent's datacontenttype is {content_type}, so its `data` is a string (send other bytes as `data_base64`)")
                })?;
                (text.into_bytes(), content_type)
            }
        }
        (None, Some(_)) => {
            let encoded =
                text("data_base64").ok_or("the CloudEvent's data_base64 is not a string")?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded.as_bytes())
                .map_err(|e| format!("the CloudEvent's data_base64 is not base64: {e}"))?;
            let content_type = declared.unwrap_or_else(|| "application/octet-stream".to_string());
            if payload::is_json(&content_type) {
                payload::check_json(&bytes).map_err(|e| {
                    format!("the CloudEvent's data_base64 is labelled {content_type} but is not JSON: {e}")
                })?;
            }
            (bytes, content_type)
        }
        (None, None) => (b"null".to_vec(), JSON.to_string()),
    };
    Ok(Decoded { data, content_type, client_id: text("id") })
}

/// The values of `names` in a JSON object body, as strings (none for a body that is not JSON).
pub(crate) fn attributes(
    data: &[u8],
    content_type: &str,
    names: &[String],
) -> BTreeMap<String, String> {
    if names.is_empty() || !payload::is_json(content_type) {
        return BTreeMap::new();
    }
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(data) else {
        return BTreeMap::new();
    };
    names
        .iter()
        .filter_map(|n| {
            let v = match fields.get(n)? {
                Value::String(s) => s.clone(),
                Value::Null => return None,
                other => other.to_string(),
            };
            Some((n.clone(), v))
        })
        .collect()
}

/// The CloudEvent a subscriber receives.
#[derive(Serialize)]
struct Envelope<'a> {
    id: &'a str,
    source: &'static str,
    specversion: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    datacontenttype: &'a str,
    time: String,
    topic: &'a str,
    pubsubname: &'a str,
    traceparent: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<DataField<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data_base64: Option<String>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum DataField<'a> {
    Json(&'a RawValue),
    Text(&'a str),
}

/// The CloudEvent a subscriber receives for a delivery: its data byte-exact, as JSON, a string
/// or `data_base64` by its content type ([`payload::data_of`]).
pub(crate) fn envelope(delivery: &Delivery, pubsub: &str) -> Result<Vec<u8>, String> {
    let m = &delivery.message;
    let (data, data_base64) = match payload::data_of(&m.data, &m.content_type) {
        payload::Data::Json(raw) => (Some(DataField::Json(raw)), None),
        payload::Data::Text(text) => (Some(DataField::Text(text)), None),
        payload::Data::Binary(bytes) => {
            (None, Some(base64::engine::general_purpose::STANDARD.encode(bytes)))
        }
    };
    let event = Envelope {
        id: &m.id,
        source: "busbar",
        specversion: "1.0",
        kind: "com.dapr.event.sent",
        datacontenttype: &m.content_type,
        time: rfc3339(m.published_at_ms),
        topic: &m.topic,
        pubsubname: pubsub,
        traceparent: traceparent(&m.id),
        data,
        data_base64,
    };
    serde_json::to_vec(&event).map_err(|e| format!("cannot write the CloudEvent: {e}"))
}

/// A W3C traceparent derived from the message id (stable across redeliveries).
fn traceparent(id: &str) -> String {
    use std::hash::{Hash, Hasher};
    let hash = |salt: u8| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (salt, id).hash(&mut h);
        h.finish()
    };
    format!("00-{:016x}{:016x}-{:016x}-01", hash(1), hash(2), hash(3))
}

/// Milliseconds since the epoch as RFC 3339 UTC (`2026-11-22T14:01:39.123Z`).
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_356_099_123), "2026-11-22T14:01:39.123Z");
    }

    #[test]
    fn cloudevents_are_checked() {
        let ok = br#"{"id":"1","source":"s","specversion":"1.0","type":"t","data":{"a":1.50}}"#;
        let want = Decoded {
            data: br#"{"a":1.50}"#.to_vec(),
            content_type: JSON.into(),
            client_id: Some("1".into()),
        };
        assert_eq!(parse(ok).unwrap(), want);
        let b64 = br#"{"id":"1","source":"s","specversion":"1.0","type":"t","data_base64":"AP8="}"#;
        let got = parse(b64).unwrap();
        assert_eq!(
            (got.data, got.content_type.as_str()),
            (vec![0, 255], "application/octet-stream")
        );
        let xml = br#"{"id":"1","source":"s","specversion":"1.0","type":"t","datacontenttype":"text/xml","data":"<a/>"}"#;
        assert_eq!(parse(xml).unwrap().data, b"<a/>");
        let not_text = br#"{"id":"1","source":"s","specversion":"1.0","type":"t","datacontenttype":"text/xml","data":5}"#;
        assert!(parse(not_text).unwrap_err().contains("data_base64"));
        let bad_json = br#"{"id":"1","source":"s","specversion":"1.0","type":"t","data":1e999}"#;
        assert!(parse(bad_json).is_err());
        assert!(
            parse(br#"{"source":"s","specversion":"1.0","type":"t"}"#)
                .unwrap_err()
                .contains("`id`")
        );
        assert!(
            parse(br#"{"id":"1","source":"s","specversion":"0.3","type":"t"}"#)
                .unwrap_err()
                .contains("specversion")
        );
        assert!(parse(b"[1]").unwrap_err().contains("object"));
    }

    #[test]
    fn attributes_are_read_from_the_body() {
        let names = vec!["region".to_string(), "n".to_string(), "missing".to_string()];
        let got = attributes(br#"{"region":"eu","n":3,"other":true}"#, JSON, &names);
        assert_eq!(
            got,
            [("n".to_string(), "3".to_string()), ("region".to_string(), "eu".to_string())].into()
        );
        assert!(attributes(b"not json", JSON, &names).is_empty());
        assert!(attributes(br#"{"region":"eu"}"#, "text/plain", &names).is_empty());
    }
}
