//! The Rust service of the README: a fraud checker subscribing to a topic declared by a
//! TypeScript service, and publishing its verdicts.
use busbar::{DeliveryGuarantee, Topic};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, busbar::Message)]
pub struct OrderPlaced {
    pub id: String,
}

#[derive(Serialize, Deserialize, busbar::Message)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    pub order_id: String,
    #[busbar(attribute)]
    pub risk: String,
}

/// Declared by the TypeScript `orders` service.
pub static ORDERS: Topic<OrderPlaced> = Topic::declared_elsewhere("order-placed");
pub static VERDICTS: Topic<Verdict> = Topic::new("fraud-verdicts")
    .delivery(DeliveryGuarantee::AtLeastOnce)
    .ordering_attribute("risk");

#[busbar::subscribe(topic = ORDERS, name = "check-fraud", max_retries = 5, min_backoff = "10s")]
async fn check(order: OrderPlaced) -> busbar::Result<()> {
    VERDICTS.publish(&Verdict { order_id: order.id, risk: "low".into() }).await?;
    Ok(())
}

fn main() -> std::process::ExitCode {
    busbar::run() // serves the subscriptions on APP_PORT and publishes to busbar dev's sidecar
}
