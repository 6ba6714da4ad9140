//! The admin API of `busbar dev` (under `/v1.0-busbar/`), and the same operations on a data
//! directory when no sidecar runs: list and release dead letters.
//!
//! - `GET /v1.0-busbar/dlq[?subscription=NAME]`
//! - `POST /v1.0-busbar/dlq/release` with `{"subscription": NAME, "ids": [ID, ...]}` (both
//!   optional)
//!
//! `NAME` is a subscription's name, or `TOPIC/NAME` when two topics have one by that name.

use busbar_runtime::Broker;
use serde_json::{Value, json};

/// The subscriptions `filter` names (every one without a filter), as (topic, name).
fn selected(broker: &Broker, filter: Option<&str>) -> Result<Vec<(String, String)>, String> {
    let all: Vec<(String, String)> = broker
        .config()
        .topics
        .iter()
        .flat_map(|t| t.subscriptions.iter().map(move |s| (t.name.clone(), s.name.clone())))
        .collect();
    let Some(filter) = filter else { return Ok(all) };
    let hits: Vec<(String, String)> =
        all.iter().filter(|(t, s)| s == filter || format!("{t}/{s}") == filter).cloned().collect();
    match hits.len() {
        0 => Err(format!(
            "there is no subscription `{filter}`; the app has: {}",
            all.iter().map(|(t, s)| format!("{t}/{s}")).collect::<Vec<_>>().join(", ")
        )),
        1 => Ok(hits),
        _ => Err(format!(
            "`{filter}` names subscriptions of several topics ({}): write TOPIC/NAME",
            hits.iter().map(|(t, s)| format!("{t}/{s}")).collect::<Vec<_>>().join(", ")
        )),
    }
}

/// The dead letters of the selected subscriptions, as JSON.
pub async fn dead_letters(broker: &Broker, filter: Option<&str>) -> Result<Value, String> {
    let mut out = Vec::new();
    for (topic, sub) in selected(broker, filter)? {
        let letters = broker.dead_letters(&topic, &sub).await.map_err(|e| e.to_string())?;
        let messages: Vec<Value> = letters
            .iter()
            .map(|d| {
                json!({
                    "id": d.message.id,
                    "reason": d.reason,
                    "attempts": d.attempts,
                    "deadAt": crate::rfc3339(d.dead_at_ms),
                    "publishedAt": crate::rfc3339(d.message.published_at_ms),
                    "data": String::from_utf8_lossy(&d.message.data),
                })
            })
            .collect();
        out.push(json!({ "topic": topic, "subscription": sub, "messages": messages }));
    }
    Ok(Value::Array(out))
}

/// Moves dead letters of the selected subscriptions back for delivery (those with `ids`, or
/// all); answers how many per subscription.
pub async fn release(
    broker: &Broker,
    filter: Option<&str>,
    ids: Option<Vec<String>>,
) -> Result<Value, String> {
    let mut out = Vec::new();
    for (topic, sub) in selected(broker, filter)? {
        let n = broker.release(&topic, &sub, ids.clone()).await.map_err(|e| e.to_string())?;
        out.push(json!({ "topic": topic, "subscription": sub, "released": n }));
    }
    Ok(Value::Array(out))
}
