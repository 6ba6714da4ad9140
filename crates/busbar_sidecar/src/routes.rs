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
type Routes = BTreeMap<(String, String), String>;

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

    /// The URL to POST a delivery of `topic`'s `subscription` to, reading the routes first if
    /// they are not known yet. `Err` says why the delivery cannot go now.
    pub async fn endpoint(
        &self,
        client: &reqwest::Client,
        topic: &str,
        subscription: &str,
    ) -> Result<String, NoEndpoint> {
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
            .unwrap_or_else(|| format!("/busbar/{topic}/{subscription}"));
        let slash = if route.starts_with('/') { "" } else { "/" };
        Ok(format!("{}{slash}{route}", self.url))
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
    fn entry(&self, entry: &Value) -> Result<((String, String), String), String> {
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
        Ok(((topic.to_string(), sub), route))
    }
}

enum Fetch {
    Refused(String),
    Unreachable(String),
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
    fn metadata_values_are_read_plain_or_json_encoded() {
        assert_eq!(unquote("\"charge\""), "charge");
        assert_eq!(unquote("charge"), "charge");
        assert_eq!(unquote("\"unterminated"), "\"unterminated");
    }
}
