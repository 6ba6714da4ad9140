//! What every backend does the same way around a handler: the call itself (a panic is a failed
//! delivery, the ack deadline cancels it) and the words of a dead letter's reason.

use std::time::Duration;

use futures_util::FutureExt;

use crate::{Delivery, Handler, Outcome};

/// Calls `handler` with `delivery`, bounded by the ack deadline: a handler that panics, here or
/// in its future, is a failed delivery (retried), not a dispatcher gone or a message stuck in
/// flight; one that does not answer by `deadline` is cancelled (its future dropped) and failed.
pub async fn call(handler: &dyn Handler, delivery: Delivery, deadline: Duration) -> Outcome {
    let call = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler.handle(delivery)));
    match call {
        Err(panic) => Outcome::Retry(panicked(&*panic)),
        Ok(call) => {
            let guarded = std::panic::AssertUnwindSafe(call).catch_unwind();
            match tokio::time::timeout(deadline, guarded).await {
                Ok(Ok(outcome)) => outcome,
                Ok(Err(panic)) => Outcome::Retry(panicked(&*panic)),
                Err(_) => {
                    Outcome::Retry(format!("no answer within the ack deadline ({deadline:?})"))
                }
            }
        }
    }
}

/// What a handler's panic says.
fn panicked(payload: &(dyn std::any::Any + Send)) -> String {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_string());
    format!("the handler panicked: {what}")
}

/// The reason of a dead letter the subscriber refused (DROP).
pub fn dropped(why: &str) -> String {
    format!("dropped by the subscriber: {why}")
}

/// The reason of a dead letter that failed its last retry.
pub fn out_of_retries(attempt: u32, max_retries: u32, why: &str) -> String {
    format!("failed {attempt} deliveries (max retries {max_retries}); last error: {why}")
}

/// The reason of a dead letter whose retention ran out.
pub fn expired(why: &str) -> String {
    format!("retention expired before the message was acknowledged; last error: {why}")
}
