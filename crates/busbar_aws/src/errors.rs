//! AWS SDK errors as [`BrokerError`]s: the endpoint away, a timeout, throttling or a 5xx is
//! [`BrokerError::Unavailable`] (try again); anything else is [`BrokerError::Failed`]. The text
//! names what was being done and gives AWS's own code and message.

use std::fmt::{Debug, Display};

use aws_sdk_sqs::config::http::HttpResponse;

use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use busbar_runtime::BrokerError;

/// Error codes that mean "not now" rather than "no".
const TRANSIENT: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "ServiceUnavailable",
    "InternalError",
    "InternalFailure",
    "KMSThrottling",
];

/// The error of `what` (a phrase: "publishing to `orders`").
pub(crate) fn failure<E>(what: impl Display, e: &SdkError<E, HttpResponse>) -> BrokerError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let status = e.raw_response().map(|r| r.status().as_u16());
    let said = match (e.code(), e.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_string(),
        _ => causes(e),
    };
    let text = format!("{what}: {said}");
    let transient = match e {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => true,
        _ => e.code().is_some_and(|c| TRANSIENT.contains(&c)) || status.is_some_and(|s| s >= 500),
    };
    if transient { BrokerError::Unavailable(text) } else { BrokerError::Failed(text) }
}

/// An error and its causes, without the raw response the SDK's own display includes.
fn causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.contains(&said) {
            text = format!("{text}: {said}");
        }
        source = cause.source();
    }
    text
}

/// [`failure`] before serving, with what to do about missing credentials or an endpoint that
/// does not answer.
pub(crate) fn at_start<E>(what: impl Display, e: &SdkError<E, HttpResponse>) -> BrokerError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let help = if causes(e).contains("loading credentials") {
        "give AWS credentials: AWS_PROFILE, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a role"
    } else if matches!(e, SdkError::DispatchFailure(_) | SdkError::TimeoutError(_)) {
        "AWS does not answer: check the network, AWS_REGION and AWS_ENDPOINT_URL"
    } else {
        return failure(what, e);
    };
    match failure(what, e) {
        BrokerError::Unavailable(t) => BrokerError::Unavailable(format!("{t}\n  = help: {help}")),
        BrokerError::Failed(t) => BrokerError::Failed(format!("{t}\n  = help: {help}")),
        other => other,
    }
}

/// Whether an SQS error says the receipt handle is no longer valid (the message was received
/// again by another consumer, or is gone): settling it again is not possible nor needed.
pub(crate) fn stale_receipt<E, R>(e: &SdkError<E, R>) -> bool
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: Debug,
{
    e.code().is_some_and(|c| {
        c.contains("ReceiptHandleIsInvalid")
            || c.contains("InvalidParameterValue")
            || c.contains("MessageNotInflight")
    })
}
