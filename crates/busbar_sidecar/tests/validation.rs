//! Validation at publish: a JSON message (a body, a CloudEvent's `data`, a bulk entry) that
//! does not match its topic's schema is refused with 400 naming each JSON pointer and rule, and
//! nothing is stored; what matches is stored; a text or binary body (or a CloudEvent whose data
//! is labelled text) cannot match and is refused too;
//! `validate-messages = false` turns it off. The topic is `order-placed`, of type
//! `interface Order { id: string; region: Attribute<string> }`.

mod support;

use serde_json::{Value, json};
use support::*;

const PATH: &str = "/v1.0/publish/pubsub/order-placed";

async fn validating() -> Harness {
    let data = tempfile::tempdir().unwrap();
    let sidecar = start_with(data.path(), None, |o| o.dev.validate_messages = true).await.unwrap();
    let base = format!("http://{}", sidecar.addr);
    Harness { sidecar, base, http: reqwest::Client::new(), _data: data }
}

async fn refusal(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_message_that_does_not_match_is_refused_with_its_pointers_and_not_stored() {
    let h = validating().await;
    let ok =
        h.publish(PATH, &[ORDERS, JSON_TYPE], r#"{"id":"o1","region":"eu","extra":[1]}"#).await;
    assert_eq!(ok.status(), 204);
    until_stored(&h, 1).await;

    let (status, body) =
        refusal(h.publish(PATH, &[ORDERS, JSON_TYPE], r#"{"id":7,"region":"eu"}"#).await).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errorCode"], "ERR_MESSAGE_INVALID");
    assert_eq!(body["errors"][0]["pointer"], "/id", "{body}");
    assert!(body["errors"][0]["rule"].as_str().unwrap().contains("string"), "{body}");
    assert!(body["message"].as_str().unwrap().contains("/id: "), "{body}");

    let (status, body) =
        refusal(h.publish(PATH, &[ORDERS, JSON_TYPE], r#"{"id":"o2"}"#).await).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errors"][0]["pointer"], "/", "{body}");
    assert!(body["errors"][0]["rule"].as_str().unwrap().contains("region"), "{body}");

    // A message that is not even an object, and one with two failures: both named.
    let (status, body) = refusal(h.publish(PATH, &[ORDERS, JSON_TYPE], "[1,2]").await).await;
    assert_eq!(status, 400, "{body}");
    let (_, body) =
        refusal(h.publish(PATH, &[ORDERS, JSON_TYPE], r#"{"id":1,"region":2}"#).await).await;
    let pointers: Vec<&str> =
        body["errors"].as_array().unwrap().iter().map(|e| e["pointer"].as_str().unwrap()).collect();
    assert_eq!(pointers, ["/id", "/region"], "{body}");

    // Nothing refused was stored.
    assert_eq!(h.sidecar.broker().stored_messages().await.unwrap(), 1);
}

#[tokio::test]
async fn cloudevent_data_bulk_entries_and_relabelled_bodies_are_checked() {
    let h = validating().await;
    let ce = json!({ "specversion": "1.0", "id": "ce-1", "source": "t", "type": "t",
                     "datacontenttype": "application/json", "data": { "id": 3, "region": "eu" } });
    let (status, body) = refusal(
        h.publish(
            PATH,
            &[ORDERS, ("content-type", "application/cloudevents+json")],
            &ce.to_string(),
        )
        .await,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errors"][0]["pointer"], "/id", "{body}");

    let bulk = json!([
        { "entryId": "good", "event": { "id": "b1", "region": "us" }, "contentType": "application/json" },
        { "entryId": "bad", "event": { "id": "b2" }, "contentType": "application/json" },
    ]);
    let (status, body) = refusal(
        h.publish(
            "/v1.0-alpha1/publish/bulk/pubsub/order-placed",
            &[ORDERS, JSON_TYPE],
            &bulk.to_string(),
        )
        .await,
    )
    .await;
    assert_eq!(status, 500, "{body}");
    let failed = body["failedEntries"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{body}");
    assert_eq!(failed[0]["entryId"], "bad");
    assert!(failed[0]["error"].as_str().unwrap().contains("region"), "{body}");
    until_stored(&h, 1).await;

    // A body labelled as something other than JSON cannot match, whatever it holds.
    for (content_type, body) in [
        ("text/plain", r#"{"id":"not-checked?","region":7}"#.to_string()),
        ("application/octet-stream", "x".to_string()),
        (
            "application/cloudevents+json",
            json!({ "specversion": "1.0", "id": "ce-2", "source": "t", "type": "t",
                    "datacontenttype": "text/plain", "data": "{\"id\":1}" })
            .to_string(),
        ),
    ] {
        let (status, body) =
            refusal(h.publish(PATH, &[ORDERS, ("content-type", content_type)], &body).await).await;
        assert_eq!(status, 400, "{content_type}: {body}");
        assert!(
            body["errors"][0]["rule"].as_str().unwrap().contains("messages are JSON"),
            "{body}"
        );
    }
    assert_eq!(h.sidecar.broker().stored_messages().await.unwrap(), 1);
}

/// A message of almost 256 KiB whose wrong parts are huge is refused with a short answer: each
/// rule quotes the failing value cut to a few hundred characters.
#[tokio::test]
async fn a_huge_invalid_message_is_refused_with_a_bounded_answer() {
    let h = validating().await;
    let extra: Vec<String> = (0..8_000).map(|i| format!("\"k{i}\":1")).collect();
    let body =
        format!(r#"{{"id":[{}],"region":{{{}}}}}"#, vec!["1"; 30_000].join(","), extra.join(","));
    assert!(body.len() < 256 * 1024);
    let (status, body) = refusal(h.publish(PATH, &[ORDERS, JSON_TYPE], &body).await).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["errors"].as_array().unwrap().len() <= 10, "{body}");
    assert!(
        body.to_string().len() < 8 * 1024,
        "the answer is bounded: {} bytes",
        body.to_string().len()
    );
    assert_eq!(h.sidecar.broker().stored_messages().await.unwrap(), 0);
}

#[tokio::test]
async fn validation_can_be_turned_off() {
    // The harness's default: `[dev] validate-messages = false`.
    let h = start(None).await.unwrap();
    let accepted = h.publish(PATH, &[ORDERS, JSON_TYPE], r#"{"id":7}"#).await;
    assert_eq!(accepted.status(), 204);
    until_stored(&h, 1).await;
}
