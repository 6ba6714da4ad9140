//! The limits every backend applies to a publish (the cloud's own, so an app that runs on the
//! embedded broker runs on SNS/SQS and Pub/Sub too). What the broker delivers comes from the
//! runtime contract, [`busbar_model::runtime::RuntimeConfig`].

use std::time::Duration;

/// How long a client-supplied message id is remembered on an exactly-once topic (as SQS FIFO).
pub const DEDUP_WINDOW: Duration = Duration::from_secs(5 * 60);
/// The largest message accepted, as on SNS and SQS.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// The most attributes a message may carry, as on SNS.
pub const MAX_ATTRIBUTES: usize = 10;
