//! Bulk delivery, for a subscription whose `/dapr/subscribe` entry enables Dapr's
//! `bulkSubscribe`: its deliveries wait for one another, up to `maxMessagesCount` messages or
//! `maxAwaitDurationMs` after the first (at most half the subscription's ack deadline, which
//! each delivery is bound by), and go to its route in one request
//! (`{"entries": [{"entryId", "event", "contentType", "metadata"}], ...}`); the answer
//! (`{"statuses": [{"entryId", "status"}]}`) settles each message by its own status.
//!
//! The broker still sees one delivery per message (each handler call waits for its entry's
//! status), so acknowledgements, retries, dead letters, ordering and `maxConcurrency` are the
//! same as for single deliveries. A batch also goes as soon as it cannot grow: when it holds as
//! many deliveries as the subscription's concurrency limit (`maxConcurrency`, else busbar's
//! default) lets wait at once, less those already sent and not answered. Several batches may be
//! in flight at once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::header;
use busbar_runtime::Outcome;
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};

use crate::deliver::{MAX_ANSWER, read_bounded};
use crate::routes::Bulk;

/// The bulk deliveries of one subscription.
pub(crate) struct Batcher {
    client: reqwest::Client,
    topic: String,
    pubsub: String,
    /// The subscription's concurrency limit (`maxConcurrency`, else busbar's default): at most
    /// this many deliveries are ever waiting.
    concurrency: usize,
    /// How long one request may take: the subscription's ack deadline (each message's own
    /// deadline is the broker's).
    deadline: Duration,
    /// The task that gathers batches, started by the first bulk delivery.
    tx: std::sync::OnceLock<mpsc::UnboundedSender<Pending>>,
}

/// One delivery waiting for its batch.
struct Pending {
    url: String,
    bulk: Bulk,
    /// The CloudEvent (`crate::cloudevent::envelope`).
    event: Vec<u8>,
    reply: oneshot::Sender<Outcome>,
}

impl Batcher {
    pub fn new(
        client: reqwest::Client,
        topic: &str,
        pubsub: &str,
        concurrency: usize,
        deadline: Duration,
    ) -> Self {
        Batcher {
            client,
            topic: topic.to_string(),
            pubsub: pubsub.to_string(),
            concurrency,
            deadline,
            tx: std::sync::OnceLock::new(),
        }
    }

    /// Delivers `event` in the next batch for `url`; what became of it.
    pub async fn deliver(&self, url: String, bulk: Bulk, event: Vec<u8>) -> Outcome {
        let tx = self.tx.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            let gather = Gather {
                client: self.client.clone(),
                topic: self.topic.clone(),
                pubsub: self.pubsub.clone(),
                concurrency: self.concurrency,
                deadline: self.deadline,
                in_flight: Arc::default(),
            };
            tokio::spawn(gather.run(rx));
            tx
        });
        let (reply, answer) = oneshot::channel();
        if tx.send(Pending { url, bulk, event, reply }).is_err() {
            return Outcome::Retry("the bulk delivery of this subscription has stopped".into());
        }
        answer
            .await
            .unwrap_or_else(|_| Outcome::Retry("its bulk request ended without an answer".into()))
    }
}

/// The task that gathers a subscription's deliveries into batches.
struct Gather {
    client: reqwest::Client,
    topic: String,
    pubsub: String,
    concurrency: usize,
    deadline: Duration,
    /// Deliveries sent in a batch and not answered yet.
    in_flight: Arc<AtomicUsize>,
}

impl Gather {
    async fn run(self, mut rx: mpsc::UnboundedReceiver<Pending>) {
        let this = Arc::new(self);
        let mut carried: Option<Pending> = None;
        loop {
            let first = match carried.take() {
                Some(p) => p,
                None => match rx.recv().await {
                    Some(p) => p,
                    None => return,
                },
            };
            let (url, bulk) = (first.url.clone(), first.bulk);
            // Half the ack deadline at most: a message must not time out waiting for its batch.
            let until = tokio::time::Instant::now() + bulk.max_await.min(this.deadline / 2);
            let mut batch = vec![first];
            while batch.len() < this.room(bulk) {
                match tokio::time::timeout_at(until, rx.recv()).await {
                    Ok(Some(p)) if p.url == url && p.bulk == bulk => batch.push(p),
                    // The routes were read again and changed: this batch goes as it is.
                    Ok(Some(p)) => {
                        carried = Some(p);
                        break;
                    }
                    Ok(None) | Err(_) => break,
                }
            }
            this.in_flight.fetch_add(batch.len(), Ordering::SeqCst);
            tokio::spawn(this.clone().send(url, batch));
        }
    }

    /// How many deliveries the batch being gathered can hold.
    fn room(&self, bulk: Bulk) -> usize {
        let waiting_at_most =
            self.concurrency.saturating_sub(self.in_flight.load(Ordering::SeqCst));
        bulk.max_messages.min(waiting_at_most).max(1)
    }

    /// POSTs one batch and answers each of its deliveries.
    async fn send(self: Arc<Self>, url: String, batch: Vec<Pending>) {
        let (events, replies): (Vec<Vec<u8>>, Vec<oneshot::Sender<Outcome>>) =
            batch.into_iter().map(|p| (p.event, p.reply)).unzip();
        let outcomes = self.request(&url, &events).await;
        // Before the answers: the slots they free may be filled by the next batch at once.
        self.in_flight.fetch_sub(replies.len(), Ordering::SeqCst);
        for (reply, outcome) in replies.into_iter().zip(outcomes) {
            let _ = reply.send(outcome);
        }
    }

    /// The outcome of each event, in order.
    async fn request(&self, url: &str, events: &[Vec<u8>]) -> Vec<Outcome> {
        let all = |outcome: Outcome| vec![outcome; events.len()];
        let body = body(events, &self.topic, &self.pubsub);
        let request = self
            .client
            .post(url)
            .header(header::CONTENT_TYPE, "application/json")
            .timeout(self.deadline)
            .body(body);
        let response = match request.send().await {
            Ok(r) => r,
            // Not connected: nothing was delivered, so no attempt is spent.
            Err(e) if e.is_connect() => {
                return all(Outcome::Unreachable(format!("cannot reach the service: {e}")));
            }
            Err(e) => return all(Outcome::Retry(format!("cannot reach the service: {e}"))),
        };
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return all(Outcome::Drop("the service answered 404 to the bulk request".into()));
        }
        if !status.is_success() {
            return all(Outcome::Retry(format!(
                "the service answered {status} to the bulk request"
            )));
        }
        // Room for a status per entry besides the usual answer.
        let limit = MAX_ANSWER + 128 * events.len();
        let text = match read_bounded(response, limit).await {
            Ok(text) => text,
            Err(e) => {
                return all(Outcome::Retry(format!("the service answered {status}, but {e}")));
            }
        };
        let answer: Answer = match serde_json::from_slice(&text) {
            Ok(a) => a,
            Err(e) => {
                return all(Outcome::Retry(format!(
                    "the service's answer to the bulk request is not {{\"statuses\": [{{\"entryId\", \"status\"}}]}} ({e})"
                )));
            }
        };
        let said: BTreeMap<String, String> = answer
            .statuses
            .into_iter()
            .map(|s| (s.entry_id, s.status.to_ascii_uppercase()))
            .collect();
        (0..events.len())
            .map(|i| match said.get(&i.to_string()).map(String::as_str) {
                Some("SUCCESS") => Outcome::Success,
                Some("DROP") => Outcome::Drop("the service answered DROP".into()),
                Some(other) => Outcome::Retry(format!("the service answered {other}")),
                None => Outcome::Retry(format!(
                    "the service's answer to the bulk request has no status for entry {i}"
                )),
            })
            .collect()
    }
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    statuses: Vec<Status>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Status {
    entry_id: String,
    status: String,
}

/// The bulk request of `events` (each a CloudEvent, JSON as `cloudevent::envelope` wrote it,
/// copied in as it is): entry `i` has the id `"i"`.
fn body(events: &[Vec<u8>], topic: &str, pubsub: &str) -> Vec<u8> {
    let size: usize = events.iter().map(|e| e.len() + 96).sum();
    let mut out = Vec::with_capacity(size + 160);
    out.extend_from_slice(b"{\"entries\":[");
    for (i, event) in events.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(format!("{{\"entryId\":\"{i}\",\"event\":").as_bytes());
        out.extend_from_slice(event);
        out.extend_from_slice(
            b",\"contentType\":\"application/cloudevents+json\",\"metadata\":{}}",
        );
    }
    // Strings serialize into JSON without fail.
    let string = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let tail = format!(
        "],\"id\":{},\"metadata\":{{}},\"pubsubname\":{},\"topic\":{},\"type\":\"com.dapr.event.sent\"}}",
        string(&uuid::Uuid::new_v4().to_string()),
        string(pubsub),
        string(topic)
    );
    out.extend_from_slice(tail.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An app that answers SUCCESS for every entry and counts the requests.
    async fn app() -> (String, Arc<AtomicUsize>) {
        let requests = Arc::new(AtomicUsize::new(0));
        let seen = requests.clone();
        let handler = move |axum::Json(body): axum::Json<serde_json::Value>| {
            let seen = seen.clone();
            async move {
                seen.fetch_add(1, Ordering::SeqCst);
                let statuses: Vec<serde_json::Value> = body["entries"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|e| serde_json::json!({ "entryId": e["entryId"], "status": "SUCCESS" }))
                    .collect();
                axum::Json(serde_json::json!({ "statuses": statuses }))
            }
        };
        let app = axum::Router::new().route("/bulk", axum::routing::post(handler));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/bulk", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, requests)
    }

    /// An app whose answer to every bulk request is broken the way its path says.
    async fn hostile() -> String {
        use axum::http::StatusCode;
        use axum::routing::post;
        let huge = "x".repeat(MAX_ANSWER + 4096);
        let app = axum::Router::new()
            .route("/garbage", post(|| async { "not json {" }))
            .route("/wrong-shape", post(|| async { r#"{"statuses": "SUCCESS"}"# }))
            .route("/unknown-ids", post(|| async { r#"{"statuses": [{"entryId": "99", "status": "SUCCESS"}]}"# }))
            .route("/odd-status", post(|| async { r#"{"statuses": [{"entryId": "0", "status": "MAYBE"}, {"entryId": "1", "status": "drop"}]}"# }))
            .route("/error", post(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom") }))
            .route("/gone", post(|| async { (StatusCode::NOT_FOUND, "") }))
            .route("/huge", post(move || async move { huge }))
            .route(
                "/slow",
                post(|| async {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    "{}"
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        url
    }

    /// Every broken answer settles every entry (retried, or dropped for a 404 and DROP) with
    /// the reason; none is taken for success, none hangs past the request's deadline.
    #[tokio::test]
    async fn broken_answers_settle_every_entry_with_a_reason() {
        let base = hostile().await;
        let batcher =
            Batcher::new(reqwest::Client::new(), "t", "pubsub", 2, Duration::from_secs(2));
        let bulk = Bulk { max_messages: 2, max_await: Duration::from_millis(50) };
        let two = |path: &str| {
            let url = format!("{base}/{path}");
            let batcher = &batcher;
            async move {
                let (a, b) = tokio::join!(
                    batcher.deliver(url.clone(), bulk, br#"{"id":"0"}"#.to_vec()),
                    batcher.deliver(url, bulk, br#"{"id":"1"}"#.to_vec()),
                );
                [a, b]
            }
        };
        let retried =
            |o: &Outcome, says: &str| matches!(o, Outcome::Retry(why) if why.contains(says));
        for (path, says) in [
            ("garbage", "is not {\"statuses\""),
            ("wrong-shape", "is not {\"statuses\""),
            ("unknown-ids", "has no status for entry"),
            ("error", "answered 500"),
            ("huge", "over"),
            ("slow", "cannot reach the service"),
        ] {
            let began = std::time::Instant::now();
            let outcomes = two(path).await;
            assert!(outcomes.iter().all(|o| retried(o, says)), "{path}: {outcomes:?}");
            assert!(began.elapsed() < Duration::from_secs(10), "{path} took {:?}", began.elapsed());
        }
        let gone = two("gone").await;
        assert!(
            gone.iter().all(|o| matches!(o, Outcome::Drop(why) if why.contains("404"))),
            "{gone:?}"
        );
        let [odd, dropped] = two("odd-status").await;
        assert!(retried(&odd, "answered MAYBE"), "{odd:?}");
        assert!(matches!(dropped, Outcome::Drop(_)), "{dropped:?}");
        let unreachable =
            batcher.deliver("http://127.0.0.1:9/bulk".into(), bulk, b"{}".to_vec()).await;
        assert!(matches!(unreachable, Outcome::Unreachable(_)), "{unreachable:?}");
    }

    /// With as many deliveries waiting as the concurrency limit allows, no more can come: the
    /// batch goes at once, not after `maxAwaitDurationMs`.
    #[tokio::test]
    async fn a_batch_that_cannot_grow_goes_at_once() {
        let (url, requests) = app().await;
        let deadline = Duration::from_secs(60);
        let batcher = Arc::new(Batcher::new(reqwest::Client::new(), "t", "pubsub", 3, deadline));
        let bulk = Bulk { max_messages: 100, max_await: Duration::from_secs(20) };
        let began = std::time::Instant::now();
        let calls: Vec<_> = (0..3)
            .map(|i| {
                let (batcher, url) = (batcher.clone(), url.clone());
                let event = format!(r#"{{"id":"{i}"}}"#).into_bytes();
                tokio::spawn(async move { batcher.deliver(url, bulk, event).await })
            })
            .collect();
        for call in calls {
            assert_eq!(call.await.unwrap(), Outcome::Success);
        }
        assert!(began.elapsed() < Duration::from_secs(5), "waited {:?}", began.elapsed());
        assert_eq!(requests.load(Ordering::SeqCst), 1, "one request for the three");
        // Below the limit, a batch waits for more until its time is up (half the deadline at
        // most): one delivery alone, with a limit of 3 and 300 ms to wait.
        let bulk = Bulk { max_messages: 100, max_await: Duration::from_millis(300) };
        let began = std::time::Instant::now();
        let alone = batcher.deliver(url, bulk, br#"{"id":"alone"}"#.to_vec()).await;
        assert_eq!(alone, Outcome::Success);
        assert!(began.elapsed() >= Duration::from_millis(300), "{:?}", began.elapsed());
    }

    #[test]
    fn the_request_carries_each_cloudevent_as_an_entry() {
        let events = vec![br#"{"id":"a","data":{"n":1}}"#.to_vec(), br#"{"id":"b"}"#.to_vec()];
        let text = body(&events, "orders", "pub\"sub");
        let v: serde_json::Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(v["topic"], "orders");
        assert_eq!(v["pubsubname"], "pub\"sub");
        assert_eq!(v["type"], "com.dapr.event.sent");
        assert_eq!(v["entries"][0]["entryId"], "0");
        assert_eq!(v["entries"][0]["event"]["data"]["n"], 1);
        assert_eq!(v["entries"][1]["entryId"], "1");
        assert_eq!(v["entries"][1]["contentType"], "application/cloudevents+json");
        assert_eq!(v["entries"].as_array().unwrap().len(), 2);
        assert_eq!(v["metadata"], serde_json::json!({}));
        assert!(v["id"].as_str().is_some_and(|id| !id.is_empty()));
    }

    /// The events copied in are the sidecar's own CloudEvents, JSON whatever the message's body
    /// (JSON, text, bytes that are no text): the request is JSON too.
    #[test]
    fn every_kind_of_body_makes_a_json_request() {
        let delivery = |data: &[u8], content_type: &str| busbar_runtime::Delivery {
            topic: "orders".into(),
            subscription: "charge".into(),
            attempt: 1,
            message: busbar_runtime::StoredMessage {
                id: "m\"1".into(),
                topic: "orders".into(),
                data: data.to_vec(),
                content_type: content_type.into(),
                attributes: [("k\"".to_string(), "v\n".to_string())].into(),
                published_at_ms: 0,
            },
        };
        let events: Vec<Vec<u8>> = [
            delivery(br#"{"n":1}"#, "application/json"),
            delivery(b"plain \"text\"", "text/plain"),
            delivery(&[0xff, 0x00, 0xfe], "application/octet-stream"),
        ]
        .iter()
        .map(|d| crate::cloudevent::envelope(d, "pubsub").unwrap())
        .collect();
        let v: serde_json::Value =
            serde_json::from_slice(&body(&events, "orders", "pubsub")).unwrap();
        assert_eq!(v["entries"][0]["event"]["data"]["n"], 1);
        assert_eq!(v["entries"][1]["event"]["data"], "plain \"text\"");
        assert!(v["entries"][2]["event"]["data_base64"].is_string(), "{v}");
        assert!(v["entries"].as_array().unwrap().iter().all(|e| e["event"]["id"] == "m\"1"));
    }
}
