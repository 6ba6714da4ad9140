//! What the service's subscriptions received, for `GET /events`, in the shape the TypeScript
//! services' `lib/deliveries.ts` gives: every delivery in arrival order (redeliveries too,
//! marked), and counters.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Mutex, MutexGuard};

use busbar::DeliveryInfo;
use serde_json::{Value, json};

/// The most arrivals kept per subscription; older ones are dropped (and counted).
const KEEP: usize = 100_000;

#[derive(Default)]
struct Log {
    arrivals: BTreeMap<String, VecDeque<Value>>,
    seen: BTreeMap<String, BTreeSet<String>>,
    counters: BTreeMap<String, u64>,
    dropped: u64,
}

pub struct Deliveries(Mutex<Log>);

impl Deliveries {
    /// `subscriptions` are listed (empty) before their first delivery.
    pub fn new(subscriptions: &[&str]) -> Deliveries {
        let mut log = Log::default();
        for name in subscriptions {
            log.arrivals.insert((*name).to_string(), VecDeque::new());
        }
        Deliveries(Mutex::new(log))
    }

    fn log(&self) -> MutexGuard<'_, Log> {
        // A handler that panicked while holding the lock left the log whole (each update is
        // one push or one increment), so the poison is not a reason to stop recording.
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records one delivery of `message`.
    pub fn arrive(&self, info: &DeliveryInfo, message: Value) {
        let received_at = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let mut log = self.log();
        let redelivery =
            !log.seen.entry(info.subscription.clone()).or_default().insert(info.id.clone());
        let list = log.arrivals.entry(info.subscription.clone()).or_default();
        list.push_back(json!({
            "messageId": info.id,
            "redelivery": redelivery,
            "receivedAt": received_at,
            "message": message,
        }));
        if list.len() > KEEP {
            list.pop_front();
            log.dropped += 1;
        }
    }

    /// Adds one to counter `name`.
    pub fn count(&self, name: &str) {
        *self.log().counters.entry(name.to_string()).or_default() += 1;
    }

    /// `{subscriptions: {name: [arrival...]}, counters, dropped}`.
    pub fn to_json(&self) -> Value {
        let log = self.log();
        json!({
            "subscriptions": log.arrivals,
            "counters": log.counters,
            "dropped": log.dropped,
        })
    }
}
