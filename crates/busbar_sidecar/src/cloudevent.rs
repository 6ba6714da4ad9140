//! CloudEvents 1.0 in JSON: reading a published envelope, writing a delivered one, and the
//! attribute values of a message.

use std::collections::BTreeMap;

use busbar_runtime::Delivery;
use serde_json::{Value, json};

/// The data and id of a published CloudEvent; `Err` says what is wrong with it.
pub(crate) fn parse(body: &[u8]) -> Result<(Vec<u8>, String), String> {
    let event: Value =
        serde_json::from_slice(body).map_err(|e| format!("the CloudEvent is not JSON: {e}"))?;
    let Value::Object(fields) = &event else {
        return Err("a CloudEvent is a JSON object".into());
    };
    for required in ["id", "source", "specversion", "type"] {
        match fields.get(required) {
            Some(Value::String(s)) if !s.is_empty() => {}
            _ => return Err(format!("the CloudEvent has no `{required}` string")),
        }
    }
    if fields.get("specversion").and_then(Value::as_str) != Some("1.0") {
        return Err("the CloudEvent's specversion is not \"1.0\"".into());
    }
    let data = match (fields.get("data"), fields.get("data_base64")) {
        (Some(Value::String(s)), _) => s.clone().into_bytes(),
        (Some(v), _) => serde_json::to_vec(v).unwrap_or_default(),
        (None, Some(_)) => return Err("data_base64 is not supported; send `data`".into()),
        (None, None) => b"null".to_vec(),
    };
    let id = fields.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
    Ok((data, id))
}

/// The values of `names` in a JSON object body, as strings.
pub(crate) fn attributes(data: &[u8], names: &[String]) -> BTreeMap<String, String> {
    if names.is_empty() {
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
pub(crate) fn envelope(delivery: &Delivery, pubsub: &str) -> Vec<u8> {
    let m = &delivery.message;
    // JSON data goes in as it is, anything else as a string.
    let text;
    let data: &serde_json::value::RawValue = match serde_json::from_slice(&m.data) {
        Ok(raw) => raw,
        Err(_) => {
            text = serde_json::value::to_raw_value(&String::from_utf8_lossy(&m.data))
                .unwrap_or_default();
            &text
        }
    };
    let event = json!({
        "id": m.id,
        "source": "busbar",
        "specversion": "1.0",
        "type": "com.dapr.event.sent",
        "datacontenttype": "application/json",
        "time": rfc3339(m.published_at_ms),
        "topic": m.topic,
        "pubsubname": pubsub,
        "traceparent": traceparent(&m.id),
        "data": data,
    });
    serde_json::to_vec(&event).unwrap_or_default()
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
        let ok = br#"{"id":"1","source":"s","specversion":"1.0","type":"t","data":{"a":1}}"#;
        assert_eq!(parse(ok).unwrap(), (br#"{"a":1}"#.to_vec(), "1".to_string()));
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
        let got = attributes(br#"{"region":"eu","n":3,"other":true}"#, &names);
        assert_eq!(
            got,
            [("n".to_string(), "3".to_string()), ("region".to_string(), "eu".to_string())].into()
        );
        assert!(attributes(b"not json", &names).is_empty());
    }
}
