//! Pub/Sub errors as [`BrokerError`]s: the endpoint away, a timeout, a quota or an internal
//! error is [`BrokerError::Unavailable`] (try again); anything else is [`BrokerError::Failed`].
//! The text names what was being done and gives Pub/Sub's own code and message.

use std::fmt::Display;
use std::time::Duration;

use busbar_runtime::BrokerError;
use gcloud_gax::grpc::{Code, Status};

/// A call that failed: Pub/Sub's answer, or no answer in time.
#[derive(Debug)]
pub(crate) enum Failure {
    Status(Status),
    TimedOut(Duration),
}

impl From<Status> for Failure {
    fn from(s: Status) -> Self {
        Failure::Status(s)
    }
}

/// Codes that mean "not now" rather than "no".
const TRANSIENT: &[Code] = &[
    Code::Unavailable,
    Code::DeadlineExceeded,
    Code::ResourceExhausted,
    Code::Internal,
    Code::Aborted,
    Code::Unknown,
    Code::Cancelled,
];

impl Failure {
    /// The error of `what` (a phrase: "publishing to `orders`").
    pub(crate) fn during(&self, what: impl Display) -> BrokerError {
        match self {
            Failure::TimedOut(after) => BrokerError::Unavailable(format!(
                "{what}: Pub/Sub did not answer within {} s",
                after.as_secs()
            )),
            Failure::Status(s) => {
                let message = s.message().trim();
                let text = match message.is_empty() {
                    true => format!("{what}: {:?}", s.code()),
                    false => format!("{what}: {:?}: {message}", s.code()),
                };
                if TRANSIENT.contains(&s.code()) {
                    BrokerError::Unavailable(text)
                } else {
                    BrokerError::Failed(text)
                }
            }
        }
    }

    /// Whether Pub/Sub said the resource does not exist.
    pub(crate) fn not_found(&self) -> bool {
        matches!(self, Failure::Status(s) if s.code() == Code::NotFound)
    }

    /// Whether the ack id is no longer valid (the message was offered again, or is gone):
    /// settling it again is neither possible nor needed.
    pub(crate) fn stale_ack(&self) -> bool {
        matches!(self, Failure::Status(s) if matches!(s.code(), Code::InvalidArgument | Code::FailedPrecondition))
    }
}

/// [`Failure::during`] before serving, with what to do about it.
pub(crate) fn at_start(what: impl Display, e: &Failure) -> BrokerError {
    let help = match e {
        Failure::Status(s) if s.code() == Code::PermissionDenied => {
            "the credentials lack the role: the plan grants roles/pubsub.viewer on what each service serves"
        }
        Failure::Status(s) if s.code() == Code::Unauthenticated => {
            "give Google credentials: GOOGLE_APPLICATION_CREDENTIALS, or `gcloud auth application-default login`"
        }
        Failure::Status(s) if TRANSIENT.contains(&s.code()) => {
            "Pub/Sub does not answer: check the network, and PUBSUB_EMULATOR_HOST for the emulator"
        }
        Failure::TimedOut(_) => "Pub/Sub does not answer: check the network",
        _ => return e.during(what),
    };
    match e.during(what) {
        BrokerError::Unavailable(t) => BrokerError::Unavailable(format!("{t}\n  = help: {help}")),
        BrokerError::Failed(t) => BrokerError::Failed(format!("{t}\n  = help: {help}")),
        other => other,
    }
}

/// The failure of a call, logged with what it was doing.
pub(crate) fn failure(what: impl Display, e: &Failure) -> BrokerError {
    e.during(what)
}
