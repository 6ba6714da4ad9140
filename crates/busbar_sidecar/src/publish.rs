//! `POST /v1.0/publish/{pubsub}/{topic}` and bulk publish: who may publish, and what is stored.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, Path, Query};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use busbar_runtime::{BrokerError, Publish, PublishError};
use serde_json::{Value, json};

use crate::{AppState, PortOf, cloudevent, error, payload, validation};

/// The checks every publish passes first, in this order: the pubsub and topic exist (404), the
/// caller is identified (403) and its code publishes to the topic (403). `Ok` is the topic's
/// attribute names.
fn authorize(
    state: &AppState,
    port_of: &PortOf,
    pubsub: &str,
    topic: &str,
    headers: &HeaderMap,
) -> Result<Vec<String>, Box<Response>> {
    if pubsub != state.pubsub {
        return Err(Box::new(error(
            StatusCode::NOT_FOUND,
            "ERR_PUBSUB_NOT_FOUND",
            format!("there is no pubsub `{pubsub}`; busbar serves `{}`", state.pubsub),
        )));
    }
    let Some(declared) = state.config.topic(topic) else {
        return Err(Box::new(error(
            StatusCode::NOT_FOUND,
            "ERR_TOPIC_NOT_FOUND",
            format!("there is no topic `{topic}` in the app"),
        )));
    };
    let caller = state.callers.identify(port_of.0.as_deref(), headers).map_err(|message| {
        Box::new(error(StatusCode::FORBIDDEN, "ERR_PERMISSION_DENIED", message))
    })?;
    if !state.config.may_publish(&caller, topic) {
        return Err(Box::new(error(
            StatusCode::FORBIDDEN,
            "ERR_PERMISSION_DENIED",
            format!(
                "service `{caller}` may not publish to `{topic}`: its code has no `publish(...)` or `ref<Publisher>()` of that topic, so the graph grants no publish permission"
            ),
        )));
    }
    Ok(declared.attributes.clone())
}

/// The status and error code of a publish the broker refused.
fn refused(e: &PublishError) -> (StatusCode, &'static str) {
    let status = match e {
        PublishError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        PublishError::TooManyAttributes { .. } => StatusCode::BAD_REQUEST,
        PublishError::Broker(BrokerError::Full(_)) => StatusCode::INSUFFICIENT_STORAGE,
        PublishError::Broker(BrokerError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (status, "ERR_PUBSUB_PUBLISH_MESSAGE")
}

/// Whether a metadata value says yes (`true`, as Dapr's `rawPayload` is written).
fn yes(value: Option<&String>) -> bool {
    value.is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

pub(crate) async fn publish(
    Extension(state): Extension<Arc<AppState>>,
    Extension(port_of): Extension<PortOf>,
    Path((pubsub, topic)): Path<(String, String)>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let attribute_names = match authorize(&state, &port_of, &pubsub, &topic, &headers) {
        Ok(names) => names,
        Err(response) => return *response,
    };
    let Some(content_type) = content_type(&headers) else {
        return error(
            StatusCode::BAD_REQUEST,
            "ERR_MALFORMED_REQUEST",
            "the Content-Type header is not text",
        );
    };
    let raw = yes(query.get("metadata.rawPayload"));
    let decoded = match payload::decode(content_type, body.to_vec(), raw) {
        Ok(decoded) => decoded,
        Err((code, message)) => return error(StatusCode::BAD_REQUEST, code, message),
    };
    if let Err(refused) = validate(&state, &topic, &decoded) {
        return *refused;
    }
    // The client's id: busbar's `metadata.messageId`, or Dapr's `metadata.cloudevent.id`.
    let id = query.get("metadata.messageId").or_else(|| query.get("metadata.cloudevent.id"));
    let message = message(decoded, id.cloned(), &attribute_names);
    match state.broker.publish(&topic, message).await {
        Ok(published) => {
            (StatusCode::NO_CONTENT, [("busbar-message-id", published.id)]).into_response()
        }
        Err(PublishError::Broker(BrokerError::Full(why))) => error(
            StatusCode::INSUFFICIENT_STORAGE,
            "ERR_PUBSUB_PUBLISH_MESSAGE",
            format!("{why}: nothing was stored"),
        ),
        Err(e) => {
            let (status, code) = refused(&e);
            error(status, code, e.to_string())
        }
    }
}

/// A JSON message checked against its topic's schema: `Err` is the 400 naming each failure.
fn validate(
    state: &AppState,
    topic: &str,
    decoded: &payload::Decoded,
) -> Result<(), Box<Response>> {
    let failures = state.validators.check_message(topic, &decoded.content_type, &decoded.data);
    if failures.is_empty() {
        return Ok(());
    }
    let body = json!({
        "errorCode": "ERR_MESSAGE_INVALID",
        "message": validation::message(topic, &failures),
        "errors": validation::as_json(&failures),
    });
    Err(Box::new((StatusCode::BAD_REQUEST, axum::Json(body)).into_response()))
}

/// The request's content type (empty when none is sent); `None` when it is not text.
fn content_type(headers: &HeaderMap) -> Option<&str> {
    match headers.get(header::CONTENT_TYPE) {
        None => Some(""),
        Some(v) => v.to_str().ok(),
    }
}

/// One bulk entry, checked: its data, content type and client id, or why it fails.
fn bulk_entry(
    state: &AppState,
    topic: &str,
    entry: &payload::BulkEntry<'_>,
    attribute_names: &[String],
) -> Result<Publish, String> {
    let content_type = entry.content_type.as_deref().unwrap_or(busbar_runtime::JSON);
    let Some(event) = entry.event else { return Err("the entry has no event".into()) };
    let bytes = payload::bulk_body(event, content_type)?;
    let raw = entry.metadata.get("rawPayload").and_then(Value::as_str) == Some("true");
    let decoded = payload::decode(content_type, bytes, raw).map_err(|(_, message)| message)?;
    let failures = state.validators.check_message(topic, &decoded.content_type, &decoded.data);
    if !failures.is_empty() {
        return Err(validation::message(topic, &failures));
    }
    let id = entry
        .metadata
        .get("messageId")
        .or_else(|| entry.metadata.get("cloudevent.id"))
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(message(decoded, id, attribute_names))
}

/// The message to store for a decoded body: the client's id from the request's metadata, else
/// the CloudEvent's; attribute values read from the body.
fn message(decoded: payload::Decoded, id: Option<String>, attribute_names: &[String]) -> Publish {
    let attributes = cloudevent::attributes(&decoded.data, &decoded.content_type, attribute_names);
    let id = id.or(decoded.client_id);
    Publish { data: decoded.data, content_type: decoded.content_type, attributes, id }
}

/// Bulk publish: every entry is checked and stored (concurrently, so they share fsyncs); 204
/// when all are stored, else 500 with `failedEntries`.
pub(crate) async fn publish_bulk(
    Extension(state): Extension<Arc<AppState>>,
    Extension(port_of): Extension<PortOf>,
    Path((pubsub, topic)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let attribute_names = match authorize(&state, &port_of, &pubsub, &topic, &headers) {
        Ok(names) => names,
        Err(response) => return *response,
    };
    if let Err(e) = payload::check_json(&body) {
        return error(
            StatusCode::BAD_REQUEST,
            "ERR_MALFORMED_REQUEST",
            format!("the body is not JSON every reader accepts: {e}"),
        );
    }
    let entries: Vec<payload::BulkEntry> = match serde_json::from_slice(&body) {
        Ok(entries) => entries,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "ERR_MALFORMED_REQUEST",
                format!("a bulk publish body is a JSON list of entries ({e})"),
            );
        }
    };
    let mut tasks = tokio::task::JoinSet::new();
    let mut failed: Vec<(usize, String, String)> = Vec::new();
    for (k, entry) in entries.iter().enumerate() {
        let entry_id = entry.entry_id.clone();
        if entry_id.is_empty() {
            failed.push((k, entry_id, "the entry has no entryId".into()));
            continue;
        }
        let message = match bulk_entry(&state, &topic, entry, &attribute_names) {
            Ok(message) => message,
            Err(e) => {
                failed.push((k, entry_id, e));
                continue;
            }
        };
        let (broker, topic) = (state.broker.clone(), topic.clone());
        tasks.spawn(async move {
            let result = broker.publish(&topic, message).await;
            (k, entry_id, result.map(|_| ()).map_err(|e| e.to_string()))
        });
    }
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok((k, entry_id, Err(e))) => failed.push((k, entry_id, e)),
            Ok(_) => {}
            Err(e) => failed.push((usize::MAX, String::new(), format!("the publish failed: {e}"))),
        }
    }
    if failed.is_empty() {
        return StatusCode::NO_CONTENT.into_response();
    }
    failed.sort();
    let failed: Vec<Value> =
        failed.into_iter().map(|(_, id, e)| json!({ "entryId": id, "error": e })).collect();
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        axum::Json(json!({ "errorCode": "ERR_PUBSUB_PUBLISH_MESSAGE", "failedEntries": failed })),
    )
        .into_response()
}
