//! The sidecar client: `POST /v1.0/publish/{pubsub}/{topic}?metadata.messageId=<uuid>` on
//! 127.0.0.1, over kept-alive connections.
//!
//! Every publish carries a client message id, so a publish retried after a lost connection is
//! stored once on an exactly-once topic. A refused connection (the sidecar starting or
//! reloading) is retried with a short backoff for the retry window (10 s), then is
//! [`PublishErrorKind::SidecarUnavailable`].

use std::time::Duration;

use tokio::time::Instant;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::error::{PublishError, PublishErrorKind};
use crate::topic::MessageId;

/// What `encodeURIComponent` leaves alone.
pub(crate) const COMPONENT: &AsciiSet =
    &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// A request that gets no answer within this long fails (the sidecar ends its own at 60 s).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(65);

/// A bad value in the environment.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvError {
    /// A port variable holds something else.
    #[error("{var}={value:?} is not a TCP port")]
    NotAPort {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
    },
    /// Serving needs `APP_PORT`.
    #[error(
        "APP_PORT is not set: it is the port this service serves its subscriptions on (busbar dev sets it for the services it starts)"
    )]
    NoAppPort,
    /// `BUSBAR_BACKEND` names no backend.
    #[error("BUSBAR_BACKEND={value:?} is not a backend: `aws`, `gcp` or `sidecar`")]
    NotABackend {
        /// Its value.
        value: String,
    },
}

/// How to reach the sidecar: its port on 127.0.0.1, this service's token, the pub/sub
/// component's name, and how long a refused connection is retried.
///
/// ```
/// use std::time::Duration;
///
/// let sidecar = busbar::Sidecar::new(3500)
///     .token("orders-token")
///     .publish_retry(Duration::from_secs(2));
/// assert_eq!(sidecar.port(), 3500);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sidecar {
    port: u16,
    token: Option<String>,
    pubsub: String,
    publish_retry: Duration,
}

impl Sidecar {
    /// The sidecar on `port`, without a token, pub/sub `pubsub`, retrying refused connections
    /// for 10 s.
    pub fn new(port: u16) -> Sidecar {
        Sidecar {
            port,
            token: None,
            pubsub: "pubsub".to_string(),
            publish_retry: Duration::from_secs(10),
        }
    }

    /// From `DAPR_HTTP_PORT` (default 3500), `DAPR_API_TOKEN`, `BUSBAR_PUBSUB` (default
    /// `pubsub`) and `BUSBAR_PUBLISH_RETRY_MS` (default 10000).
    pub fn from_env() -> Result<Sidecar, EnvError> {
        let mut sidecar = Sidecar::new(crate::env::port("DAPR_HTTP_PORT")?.unwrap_or(3500));
        sidecar.token = crate::env::var("DAPR_API_TOKEN");
        if let Some(pubsub) = crate::env::var("BUSBAR_PUBSUB") {
            sidecar.pubsub = pubsub;
        }
        if let Some(ms) = crate::env::millis("BUSBAR_PUBLISH_RETRY_MS") {
            sidecar.publish_retry = Duration::from_millis(ms);
        }
        Ok(sidecar)
    }

    /// Sends `token` as `dapr-api-token`: it tells the sidecar which service publishes.
    pub fn token(mut self, token: impl Into<String>) -> Sidecar {
        self.token = Some(token.into());
        self
    }

    /// The pub/sub component's name (`pubsub` unless busbar.toml says otherwise).
    pub fn pubsub(mut self, name: impl Into<String>) -> Sidecar {
        self.pubsub = name.into();
        self
    }

    /// How long a publish retries a sidecar that refuses connections.
    pub fn publish_retry(mut self, window: Duration) -> Sidecar {
        self.publish_retry = window;
        self
    }

    /// The sidecar's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The pub/sub component's name.
    pub fn pubsub_name(&self) -> &str {
        &self.pubsub
    }

    /// Makes this the sidecar every publish of the process goes to (when no embedded app
    /// runs). Without it, the first publish reads [`Sidecar::from_env`].
    pub fn install(self) {
        crate::transport::install_sidecar(self);
    }
}

/// A sidecar and the HTTP client that talks to it.
pub(crate) struct Client {
    pub(crate) sidecar: Sidecar,
    http: reqwest::Client,
}

impl Client {
    pub(crate) fn new(sidecar: Sidecar) -> Client {
        let http = reqwest::Client::builder()
            .timeout(ANSWER_TIMEOUT)
            .pool_max_idle_per_host(64)
            .build()
            .unwrap_or_default();
        Client { sidecar, http }
    }

    /// Publishes a JSON `body` to `topic`; the message id.
    pub(crate) async fn publish(
        &self,
        topic: &str,
        body: Vec<u8>,
    ) -> Result<MessageId, PublishError> {
        let s = &self.sidecar;
        let id = uuid::Uuid::new_v4().to_string();
        let url = format!(
            "http://127.0.0.1:{}/v1.0/publish/{}/{}?metadata.messageId={id}",
            s.port,
            utf8_percent_encode(&s.pubsub, COMPONENT),
            utf8_percent_encode(topic, COMPONENT)
        );
        let deadline = Instant::now() + s.publish_retry;
        let mut backoff = Duration::from_millis(25);
        let answer = loop {
            let mut request =
                self.http.post(&url).header("content-type", "application/json").body(body.clone());
            if let Some(token) = &s.token {
                request = request.header("dapr-api-token", token);
            }
            match request.send().await {
                Ok(answer) => break answer,
                Err(e) if e.is_connect() && Instant::now() + backoff <= deadline => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(500));
                }
                Err(e) => {
                    let text = format!(
                        "the busbar sidecar at 127.0.0.1:{} cannot be reached to publish to `{topic}`: {e} (is `busbar dev` running? DAPR_HTTP_PORT says where)",
                        s.port
                    );
                    return Err(PublishError::new(
                        PublishErrorKind::SidecarUnavailable,
                        topic,
                        text,
                    )
                    .with_code("ERR_SIDECAR_UNAVAILABLE")
                    .with_source(e));
                }
            }
        };
        let status = answer.status();
        let stored_id = answer
            .headers()
            .get("busbar-message-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        if status.is_success() {
            return Ok(MessageId::new(stored_id.unwrap_or(id)));
        }
        let text = answer.text().await.unwrap_or_default();
        Err(PublishError::from_answer(status.as_u16(), topic, &text))
    }
}
