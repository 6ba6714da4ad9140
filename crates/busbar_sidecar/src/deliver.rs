//! Delivery to a service over HTTP: a CloudEvent POSTed to the route its `/dapr/subscribe`
//! gives; the answer (read up to [`MAX_ANSWER`]) says what became of it.

use std::sync::Arc;

use axum::http::header;
use busbar_runtime::{Delivery, Handler, HandlerFuture, Outcome};
use serde_json::Value;

use crate::{bulk, cloudevent, routes};

/// The most of a subscriber's answer that is read: `{"status": "RETRY"}` is all it needs to
/// say, and an answer without end must not fill the sidecar's memory.
pub(crate) const MAX_ANSWER: usize = 64 << 10;

/// A response body, read up to `limit` bytes; `Err` says why it was not read whole.
pub(crate) async fn read_bounded(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > limit {
                    return Err(format!("its answer is over {limit} bytes (not read further)"));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => return Err(format!("cannot read its answer: {e}")),
        }
    }
}

/// Delivers to a service over HTTP, as a CloudEvent, on the route its `/dapr/subscribe` gives.
pub(crate) struct HttpHandler {
    pub client: reqwest::Client,
    pub routes: Arc<routes::ServiceRoutes>,
    pub topic: String,
    pub subscription: String,
    pub pubsub: String,
    /// For a route with `bulkSubscribe` enabled.
    pub batcher: Arc<bulk::Batcher>,
}

impl Handler for HttpHandler {
    fn handle(&self, delivery: Delivery) -> HandlerFuture {
        let body = cloudevent::envelope(&delivery, &self.pubsub);
        let (client, routes) = (self.client.clone(), self.routes.clone());
        let (topic, subscription) = (self.topic.clone(), self.subscription.clone());
        let batcher = self.batcher.clone();
        Box::pin(async move {
            let body = match body {
                Ok(body) => body,
                Err(e) => return Outcome::Drop(e),
            };
            let endpoint = match routes.endpoint(&client, &topic, &subscription).await {
                Ok(endpoint) => endpoint,
                Err(routes::NoEndpoint::Unreachable(e)) => return Outcome::Unreachable(e),
                Err(routes::NoEndpoint::Refused(e)) => return Outcome::Retry(e),
            };
            if let Some(bulk) = endpoint.bulk {
                return batcher.deliver(endpoint.url, bulk, body).await;
            }
            let request = client
                .post(endpoint.url)
                .header(header::CONTENT_TYPE, "application/cloudevents+json")
                .body(body);
            let response = match request.send().await {
                Ok(r) => r,
                // Not connected: nothing was delivered, so no attempt is spent.
                Err(e) if e.is_connect() => {
                    return Outcome::Unreachable(format!("cannot reach the service: {e}"));
                }
                Err(e) => return Outcome::Retry(format!("cannot reach the service: {e}")),
            };
            let status = response.status();
            if status == reqwest::StatusCode::NOT_FOUND {
                return Outcome::Drop("the service answered 404".into());
            }
            if !status.is_success() {
                return Outcome::Retry(format!("the service answered {status}"));
            }
            let text = match read_bounded(response, MAX_ANSWER).await {
                Ok(text) => text,
                Err(e) => return Outcome::Retry(format!("the service answered {status}, but {e}")),
            };
            let said = serde_json::from_slice::<Value>(&text)
                .ok()
                .and_then(|v| v.get("status").and_then(Value::as_str).map(str::to_ascii_uppercase));
            match said.as_deref() {
                None | Some("SUCCESS") => Outcome::Success,
                Some("DROP") => Outcome::Drop("the service answered DROP".into()),
                Some(other) => Outcome::Retry(format!("the service answered {other}")),
            }
        })
    }
}
