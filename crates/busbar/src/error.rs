//! The errors of the SDK: a handler's [`Error`] (retry, or drop), and a [`PublishError`].

use std::fmt;

/// What a handler returns: `Ok(())` acknowledges the message, an error retries it (or, made
/// by [`Error::drop`], dead-letters it now).
pub type Result<T = (), E = Error> = std::result::Result<T, E>;

/// A handler's error. Any `std::error::Error` converts into it (so `?` works on them), and
/// so does a message ([`Error::msg`]); such errors are retried with the subscription's
/// backoff. [`Error::drop`] makes one that dead-letters the message at once.
///
/// ```
/// async fn handle(text: String) -> busbar::Result<()> {
///     let n: u32 = text.parse()?; // a ParseIntError: retried
///     if n == 0 {
///         return Err(busbar::Error::drop("zero is never valid")); // dead-lettered, no retry
///     }
///     Ok(())
/// }
/// ```
///
/// Like `anyhow::Error`, it does not implement `std::error::Error` itself (that would clash
/// with the conversion from every error).
pub struct Error {
    inner: Box<dyn std::error::Error + Send + Sync + 'static>,
    drop: bool,
}

/// A message as an error.
#[derive(Debug)]
struct Message(String);

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Message {}

impl Error {
    /// An error that dead-letters the message at once, without retrying it (the TypeScript
    /// SDK's `DropMessage`; `DROP` on the Dapr API). `why` is kept with the dead letter.
    pub fn drop(why: impl fmt::Display) -> Error {
        Error { inner: Box::new(Message(why.to_string())), drop: true }
    }

    /// An error with this message, retried.
    pub fn msg(message: impl fmt::Display) -> Error {
        Error { inner: Box::new(Message(message.to_string())), drop: false }
    }

    /// Whether the message is dead-lettered rather than retried.
    pub fn is_drop(&self) -> bool {
        self.drop
    }

    /// The error this one was made from.
    pub fn source_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.inner
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for Error {
    fn from(error: E) -> Self {
        Error { inner: Box::new(error), drop: false }
    }
}

impl fmt::Display for Error {
    /// The error and its sources, `: `-separated.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.inner)?;
        let mut source = self.inner.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error").field("error", &self.inner).field("drop", &self.drop).finish()
    }
}

/// Why a publish failed, as a kind to match on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PublishErrorKind {
    /// 403: the caller is not identified, or its code does not publish to the topic.
    PermissionDenied,
    /// 400: the message does not match its topic's schema, or is not a well-formed request.
    InvalidMessage,
    /// 413: the message is over the size limit (256 KiB).
    TooLarge,
    /// 507: the broker's disk is full; nothing was stored.
    StorageFull,
    /// 404: there is no such topic (or pub/sub component).
    TopicNotFound,
    /// The sidecar could not be reached (still refused after the retry window), or never
    /// answered.
    SidecarUnavailable,
    /// The message could not be serialized as JSON.
    Serialize,
    /// Any other refusal.
    Other,
}

/// One way a message fails its topic's schema: a JSON pointer and the rule it breaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidationFailure {
    /// Where in the message (a JSON pointer, `/user_id`).
    pub pointer: String,
    /// The schema rule it breaks.
    pub rule: String,
}

/// A publish that did not store the message.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct PublishError {
    kind: PublishErrorKind,
    topic: String,
    status: Option<u16>,
    code: String,
    message: String,
    errors: Vec<ValidationFailure>,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl PublishError {
    pub(crate) fn new(kind: PublishErrorKind, topic: &str, message: String) -> Self {
        PublishError {
            kind,
            topic: topic.to_string(),
            status: None,
            code: String::new(),
            message,
            errors: Vec::new(),
            source: None,
        }
    }

    pub(crate) fn with_source(
        mut self,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    pub(crate) fn with_code(mut self, code: &str) -> Self {
        self.code = code.to_string();
        self
    }

    /// The error for a sidecar answer with a non-2xx `status` and body `text` (the sidecar's
    /// JSON error, `{"errorCode", "message", "errors"}`, as far as it is one).
    pub(crate) fn from_answer(status: u16, topic: &str, text: &str) -> Self {
        let body: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
        let code = body.get("errorCode").and_then(|v| v.as_str()).unwrap_or_default();
        let message = match body.get("message").and_then(|v| v.as_str()) {
            Some(m) => m.to_string(),
            None if !text.trim().is_empty() => text.trim().to_string(),
            None => format!("the sidecar answered HTTP {status} to a publish to `{topic}`"),
        };
        let kind = match status {
            400 => PublishErrorKind::InvalidMessage,
            403 => PublishErrorKind::PermissionDenied,
            404 => PublishErrorKind::TopicNotFound,
            413 => PublishErrorKind::TooLarge,
            507 => PublishErrorKind::StorageFull,
            _ => PublishErrorKind::Other,
        };
        let errors = body
            .get("errors")
            .and_then(|v| v.as_array())
            .map(|list| {
                list.iter()
                    .filter(|e| e.is_object())
                    .map(|e| ValidationFailure {
                        pointer: text_of(e.get("pointer")),
                        rule: text_of(e.get("rule")),
                    })
                    .collect()
            })
            .unwrap_or_default();
        PublishError {
            kind,
            topic: topic.to_string(),
            status: Some(status),
            code: code.to_string(),
            message,
            errors,
            source: None,
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> PublishErrorKind {
        self.kind
    }

    /// The topic published to.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The HTTP status of the sidecar's answer (none when there was no answer, or in-process).
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// The sidecar's `errorCode` (such as `ERR_PERMISSION_DENIED`; empty when it gave none).
    pub fn code(&self) -> &str {
        &self.code
    }

    /// Each failing JSON pointer and rule of an [`PublishErrorKind::InvalidMessage`].
    pub fn validation_errors(&self) -> &[ValidationFailure] {
        &self.errors
    }
}

fn text_of(value: Option<&serde_json::Value>) -> String {
    match value {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sidecar_answers_become_typed_errors() {
        let e = PublishError::from_answer(
            403,
            "signups",
            r#"{"errorCode":"ERR_PERMISSION_DENIED","message":"service `a` may not publish"}"#,
        );
        assert_eq!(e.kind(), PublishErrorKind::PermissionDenied);
        assert_eq!(e.code(), "ERR_PERMISSION_DENIED");
        assert_eq!(e.to_string(), "service `a` may not publish");
        assert_eq!(e.status(), Some(403));
        let e = PublishError::from_answer(
            400,
            "t",
            r#"{"message":"bad","errors":[{"pointer":"/id","rule":"type"},3]}"#,
        );
        assert_eq!(e.kind(), PublishErrorKind::InvalidMessage);
        assert_eq!(
            e.validation_errors(),
            [ValidationFailure { pointer: "/id".into(), rule: "type".into() }]
        );
        let e = PublishError::from_answer(507, "t", "disk full\n");
        assert_eq!(
            (e.kind(), e.to_string().as_str()),
            (PublishErrorKind::StorageFull, "disk full")
        );
        let e = PublishError::from_answer(502, "t", "");
        assert_eq!(e.kind(), PublishErrorKind::Other);
        assert_eq!(e.to_string(), "the sidecar answered HTTP 502 to a publish to `t`");
        for (status, kind) in
            [(404, PublishErrorKind::TopicNotFound), (413, PublishErrorKind::TooLarge)]
        {
            assert_eq!(PublishError::from_answer(status, "t", "{}").kind(), kind);
        }
    }

    #[test]
    fn handler_errors_keep_their_sources_and_say_whether_they_drop() {
        let parse = "x".parse::<u32>().unwrap_err();
        let e = Error::from(parse);
        assert!(!e.is_drop());
        assert_eq!(e.to_string(), "invalid digit found in string");
        assert!(Error::drop("no").is_drop());
        assert_eq!(Error::drop("no").to_string(), "no");
        assert!(!Error::msg("later").is_drop());
    }
}
