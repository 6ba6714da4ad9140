//! Where each subscription of a service is delivered: the route its `GET /dapr/subscribe`
//! gives, else `/busbar/{topic}/{subscription}`.
//!
//! The routes are read at start. A service that does not answer yet (it starts after
//! `busbar dev`, or is restarting) is not an error: its deliveries wait, retried, and the first
//! one that finds it answering reads its routes. An entry the graph has no subscription for
//! refuses the start; found later, it fails every delivery of that service with the reason
//! (logged), so nothing is delivered to a subscription the graph lacks.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::OnceCell;

/// The most of a `GET /dapr/subscribe` answer that is read.
const MAX_SUBSCRIBE_ANSWER: usize = 1 << 20;

/// Routes by (topic, subscription).
type Routes = BTreeMap<(String, String), Route>;

/// Where a subscription's deliveries go, as its `/dapr/subscribe` entry says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Route {
    pub path: String,
    /// `bulkSubscribe` enabled: deliveries go in batches (`crate::bulk`).
    pub bulk: Option<Bulk>,
}

/// A subscription's `bulkSubscribe` settings, with Dapr's defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Bulk {
    /// `maxMessagesCount`: the most messages in one request (default 100).
    pub max_messages: usize,
    /// `maxAwaitDurationMs`: how long the first message of a batch waits for others (default
    /// 1,000 ms).
    pub max_await: Duration,
}

/// The most messages busbar puts in one bulk request, whatever `maxMessagesCount` says.
pub(crate) const MAX_BULK_MESSAGES: usize = 1_000;

/// Where to POST a delivery now.
#[derive(Clone, Debug)]
pub(crate) struct Endpoint {
    pub url: String,
    pub bulk: Option<Bulk>,
}

/// What reading a service's routes found.
pub(crate) enum Read {
    /// Routes known (from its answer, or the defaults when it answers 404 or an error status).
    Known,
    /// The service's answer asks for what the graph does not have.
    Refused(String),
    /// No answer: read again at the next delivery.
    Unreachable(String),
}

type Known = OnceCell<Result<Routes, String>>;

/// Why a delivery has no URL to go to now.
pub(crate) enum NoEndpoint {
    /// The service does not answer (not started yet, or restarting).
    Unreachable(String),
    /// Its answer asks for what the graph does not have.
    Refused(String),
}

/// A service's routes, read once it answers.
pub(crate) struct ServiceRoutes {
    service: String,
    url: String,
    pubsub: String,
    /// The service's subscriptions, as (topic, subscription).
    subscriptions: Vec<(String, String)>,
    /// `Ok`: the routes by (topic, subscription); `Err`: why none are delivered. Replaced by
    /// an empty cell when the service restarts ([`ServiceRoutes::forget`]).
    known: Mutex<Arc<Known>>,
}

impl ServiceRoutes {
    pub fn new(
        service: &str,
        url: &str,
        pubsub: &str,
        subscriptions: Vec<(String, String)>,
    ) -> Self {
        ServiceRoutes {
            service: service.to_string(),
            url: url.trim_end_matches('/').to_string(),
            pubsub: pubsub.to_string(),
            subscriptions,
            known: Mutex::default(),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Forgets the routes read: the next delivery reads them again.
    pub fn forget(&self) {
        *self.known.lock().unwrap_or_else(|p| p.into_inner()) = Arc::default();
    }

    fn known(&self) -> Arc<Known> {
        self.known.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Reads the routes now, unless known already.
    pub async fn read(&self, client: &reqwest::Client) -> Read {
        self.read_into(&self.known(), client).await
    }

    async fn read_into(&self, known: &Known, client: &reqwest::Client) -> Read {
        let fetched = known
            .get_or_try_init(|| async {
                match self.fetch(client).await {
                    Ok(routes) => Ok(Ok(routes)),
                    Err(Fetch::Refused(e)) => Ok(Err(e)),
                    Err(Fetch::Unreachable(e)) => Err(e),
                }
            })
            .await;
        match fetched {
            Ok(Ok(_)) => Read::Known,
            Ok(Err(e)) => Read::Refused(e.clone()),
            Err(e) => Read::Unreachable(e),
        }
    }

    /// Where to POST a delivery of `topic`'s `subscription`, reading the routes first if
    /// they are not known yet. `Err` says why the delivery cannot go now.
    pub async fn endpoint(
        &self,
        client: &reqwest::Client,
        topic: &str,
        subscription: &str,
    ) -> Result<Endpoint, NoEndpoint> {
        let known = self.known();
        match self.read_into(&known, client).await {
            Read::Known => {}
            Read::Refused(e) => return Err(NoEndpoint::Refused(e)),
            Read::Unreachable(e) => {
                return Err(NoEndpoint::Unreachable(format!(
                    "cannot read the routes of service `{}` (GET {}/dapr/subscribe): {e}",
                    self.service, self.url
                )));
            }
        }
        let route = known
            .get()
            .and_then(|k| k.as_ref().ok())
            .and_then(|routes| routes.get(&(topic.to_string(), subscription.to_string())).cloned())
            .unwrap_or_else(|| Route {
                path: format!("/busbar/{topic}/{subscription}"),
                bulk: None,
            });
        let slash = if route.path.starts_with('/') { "" } else { "/" };
        Ok(Endpoint { url: format!("{}{slash}{}", self.url, route.path), bulk: route.bulk })
    }

    async fn fetch(&self, client: &reqwest::Client) -> Result<Routes, Fetch> {
        let service = &self.service;
        let response = client
            .get(format!("{}/dapr/subscribe", self.url))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .map_err(|e| Fetch::Unreachable(without_url(&e)))?;
        if !response.status().is_success() {
            // No /dapr/subscribe: the default routes.
            return Ok(BTreeMap::new());
        }
        let body =
            crate::deliver::read_bounded(response, MAX_SUBSCRIBE_ANSWER).await.map_err(|e| {
                Fetch::Refused(format!("service `{service}`: GET /dapr/subscribe: {e}"))
            })?;
        let entries = serde_json::from_slice::<Vec<Value>>(&body).map_err(|_| {
            Fetch::Refused(format!(
                "service `{service}`: GET /dapr/subscribe did not answer a JSON list"
            ))
        })?;
        let mut out = BTreeMap::new();
        for entry in entries {
            let (key, route) = self.entry(&entry).map_err(Fetch::Refused)?;
            out.insert(key, route);
        }
        Ok(out)
    }

    /// One `/dapr/subscribe` entry: the subscription it routes, and its route.
    fn entry(&self, entry: &Value) -> Result<((String, String), Route), String> {
        let service = &self.service;
        let pubsub = &self.pubsub;
        let topic = entry.get("topic").and_then(Value::as_str).unwrap_or_default();
        let name = entry.get("pubsubname").and_then(Value::as_str).unwrap_or_default();
        if name != pubsub {
            return Err(format!(
                "service `{service}` subscribes to `{topic}` on pubsub `{name}`, but busbar serves `{pubsub}` ([dev] pubsub in busbar.toml)"
            ));
        }
        let route = match entry.get("route") {
            Some(Value::String(r)) => r.clone(),
            Some(Value::Object(o)) => {
                o.get("default").and_then(Value::as_str).unwrap_or_default().to_string()
            }
            _ => entry
                .pointer("/routes/default")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        };
        let named = entry.pointer("/metadata/subscription").and_then(Value::as_str).map(unquote);
        let on_topic: Vec<&str> = self
            .subscriptions
            .iter()
            .filter(|(t, _)| t == topic)
            .map(|(_, s)| s.as_str())
            .collect();
        let sub = match (on_topic.as_slice(), named.as_deref()) {
            ([], _) => {
                return Err(format!(
                    "service `{service}` asks for topic `{topic}` in GET /dapr/subscribe, but its code has no subscription to it: busbar delivers only what the graph contains (add `new Subscription({topic}, ...)` in the service)"
                ));
            }
            (subs, Some(n)) if subs.contains(&n) => n.to_string(),
            (_, Some(n)) => {
                return Err(format!(
                    "service `{service}` names subscription `{n}` of `{topic}` in GET /dapr/subscribe, but its code has none by that name"
                ));
            }
            ([one], None) => one.to_string(),
            (many, None) => {
                return Err(format!(
                    "service `{service}` has several subscriptions to `{topic}` ({}): name one in the /dapr/subscribe entry's metadata.subscription",
                    many.join(", ")
                ));
            }
        };
        if route.is_empty() {
            return Err(format!(
                "service `{service}`: the /dapr/subscribe entry for `{topic}` has no route"
            ));
        }
        let bulk = bulk(entry.get("bulkSubscribe")).map_err(|e| {
            format!("service `{service}`: the /dapr/subscribe entry for `{topic}`: {e}")
        })?;
        Ok(((topic.to_string(), sub), Route { path: route, bulk }))
    }
}

enum Fetch {
    Refused(String),
    Unreachable(String),
}

/// An entry's `bulkSubscribe`: `None` when absent or not enabled.
fn bulk(value: Option<&Value>) -> Result<Option<Bulk>, String> {
    let Some(value) = value.filter(|v| !v.is_null()) else { return Ok(None) };
    let Some(object) = value.as_object() else {
        return Err("`bulkSubscribe` is not an object".to_string());
    };
    match object.get("enabled") {
        Some(Value::Bool(true)) => {}
        None | Some(Value::Bool(false)) => return Ok(None),
        Some(other) => {
            return Err(format!("`bulkSubscribe.enabled` is {other}, not true or false"));
        }
    }
    let number = |key: &str, default: u64, min: u64| -> Result<u64, String> {
        match object.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => match v.as_u64() {
                Some(n) if n >= min => Ok(n),
                _ => Err(format!("`bulkSubscribe.{key}` is {v}: a whole number of at least {min}")),
            },
        }
    };
    let max_messages = number("maxMessagesCount", 100, 1)?;
    let max_await = number("maxAwaitDurationMs", 1_000, 0)?;
    Ok(Some(Bulk {
        max_messages: usize::try_from(max_messages).unwrap_or(usize::MAX).min(MAX_BULK_MESSAGES),
        max_await: Duration::from_millis(max_await.min(60_000)),
    }))
}

/// A metadata value as the Dapr JavaScript SDK sends it: JSON-encoded (`"\"charge\""`), or
/// plain.
fn unquote(value: &str) -> String {
    serde_json::from_str::<String>(value).unwrap_or_else(|_| value.to_string())
}

/// A request error without its URL (the message names the service already).
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(&format!(" ({url})"), "").replace(url.as_str(), "");
    }
    if e.is_connect() { format!("connection refused or failed: {text}") } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_subscribe_is_read_with_daprs_defaults_and_checked() {
        let read = |v: Value| bulk(Some(&v));
        assert_eq!(read(serde_json::json!(null)), Ok(None));
        assert_eq!(read(serde_json::json!({ "enabled": false, "maxMessagesCount": 5 })), Ok(None));
        let defaults = Bulk { max_messages: 100, max_await: Duration::from_secs(1) };
        assert_eq!(read(serde_json::json!({ "enabled": true })), Ok(Some(defaults)));
        let given =
            serde_json::json!({ "enabled": true, "maxMessagesCount": 7, "maxAwaitDurationMs": 0 });
        assert_eq!(read(given), Ok(Some(Bulk { max_messages: 7, max_await: Duration::ZERO })));
        let capped = serde_json::json!({ "enabled": true, "maxMessagesCount": 1_000_000, "maxAwaitDurationMs": 1e12 as u64 });
        let want = Bulk { max_messages: MAX_BULK_MESSAGES, max_await: Duration::from_secs(60) };
        assert_eq!(read(capped), Ok(Some(want)));
        for (bad, says) in [
            (serde_json::json!({ "enabled": "yes" }), "`bulkSubscribe.enabled` is \"yes\""),
            (
                serde_json::json!({ "enabled": true, "maxMessagesCount": 0 }),
                "maxMessagesCount` is 0",
            ),
            (
                serde_json::json!({ "enabled": true, "maxAwaitDurationMs": -1 }),
                "maxAwaitDurationMs` is -1",
            ),
            (
                serde_json::json!({ "enabled": true, "maxMessagesCount": 2.5 }),
                "maxMessagesCount` is 2.5",
            ),
            (serde_json::json!(true), "`bulkSubscribe` is not an object"),
        ] {
            let e = read(bad).unwrap_err();
            assert!(e.contains(says), "{e}");
        }
    }

    #[test]
    fn metadata_values_are_read_plain_or_json_encoded() {
        assert_eq!(unquote("\"charge\""), "charge");
        assert_eq!(unquote("charge"), "charge");
        assert_eq!(unquote("\"unterminated"), "\"unterminated");
    }
}
