//! The admin API of `busbar dev` (under `/v1.0-busbar/`), and the same operations on a data
//! directory when no sidecar runs: list and release dead letters.
//!
//! - `GET /v1.0-busbar/dlq[?subscription=NAME]`
//! - `POST /v1.0-busbar/dlq/release` with `{"subscription": NAME, "ids": [ID, ...]}` (both
//!   optional)
//!
//! - `GET /v1.0-busbar/info`: the data directory served, and the pid
//!
//! `NAME` is a subscription's name, or `TOPIC/NAME` when two topics have one by that name.
//! Every call needs the admin token (`Authorization: Bearer TOKEN`, from the data directory's
//! `admin-token`): the API returns message bodies and moves messages.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, Query};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use busbar_runtime::Broker;
use serde_json::{Value, json};

use crate::{AppState, error};

/// The subscriptions `filter` names (every one without a filter), as (topic, name).
fn selected(broker: &dyn Broker, filter: Option<&str>) -> Result<Vec<(String, String)>, String> {
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
pub async fn dead_letters(broker: &dyn Broker, filter: Option<&str>) -> Result<Value, String> {
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
                    "contentType": d.message.content_type,
                    "data": dead_data(&d.message.data),
                })
            })
            .collect();
        out.push(json!({ "topic": topic, "subscription": sub, "messages": messages }));
    }
    Ok(Value::Array(out))
}

/// A dead letter's data as JSON: its text when it is UTF-8, else `{"base64": ...}` (never a
/// lossy string).
fn dead_data(data: &[u8]) -> Value {
    use base64::Engine;
    match std::str::from_utf8(data) {
        Ok(text) => Value::String(text.to_string()),
        Err(_) => json!({ "base64": base64::engine::general_purpose::STANDARD.encode(data) }),
    }
}

/// Moves dead letters of the selected subscriptions back for delivery (those with `ids`, or
/// all); answers how many per subscription.
pub async fn release(
    broker: &dyn Broker,
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

/// The refusal of a request without the admin token (`Authorization: Bearer TOKEN`).
fn unauthorized(state: &AppState, headers: &HeaderMap) -> Option<Response> {
    let sent = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if sent.is_some_and(|t| t.trim() == state.admin_token) {
        return None;
    }
    Some(error(
        StatusCode::UNAUTHORIZED,
        "ERR_UNAUTHORIZED",
        format!(
            "the admin API needs `Authorization: Bearer TOKEN` with the token in {} (busbar dlq sends it)",
            crate::identity::admin_token_file(&state.data_dir).display()
        ),
    ))
}

/// `GET /v1.0-busbar/dlq[?subscription=NAME]`.
pub(crate) async fn list(
    Extension(state): Extension<Arc<AppState>>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    if let Some(refused) = unauthorized(&state, &headers) {
        return refused;
    }
    match dead_letters(state.broker.as_ref(), query.get("subscription").map(String::as_str)).await {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => error(StatusCode::NOT_FOUND, "ERR_SUBSCRIPTION_NOT_FOUND", e),
    }
}

/// `POST /v1.0-busbar/dlq/release`, with a JSON body (`{}` for all).
pub(crate) async fn release_handler(
    Extension(state): Extension<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = unauthorized(&state, &headers) {
        return refused;
    }
    if let Err(e) = crate::payload::check_json(&body) {
        return error(
            StatusCode::BAD_REQUEST,
            "ERR_MALFORMED_REQUEST",
            format!("the body is not JSON ({e}): send {{}} to release every dead letter"),
        );
    }
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let filter = request.get("subscription").and_then(Value::as_str);
    let ids = request
        .get("ids")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect());
    match release(state.broker.as_ref(), filter, ids).await {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => error(StatusCode::NOT_FOUND, "ERR_SUBSCRIPTION_NOT_FOUND", e),
    }
}

/// `GET /v1.0-busbar/info`: which data directory this sidecar serves, and its pid, so
/// `busbar dlq --data DIR` never acts through a sidecar of another directory.
pub(crate) async fn info(
    Extension(state): Extension<Arc<AppState>>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = unauthorized(&state, &headers) {
        return refused;
    }
    let dir = std::fs::canonicalize(&state.data_dir).unwrap_or_else(|_| state.data_dir.clone());
    axum::Json(json!({ "dataDir": dir.display().to_string(), "pid": std::process::id() }))
        .into_response()
}
