//! The screening: one verdict per placed order, published before the order is acknowledged
//! (so a crash between the two screens the order again: at least once, like the topic).

use std::sync::LazyLock;

use busbar::{DeliveryGuarantee, DeliveryInfo, Topic};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::events::Deliveries;

/// The TypeScript `OrderPlaced` of `orders/topics.ts`, field for field (serde's camelCase).
#[derive(Serialize, Deserialize, busbar::Message)]
#[serde(rename_all = "camelCase")]
pub struct OrderPlaced {
    pub order_id: String,
    #[busbar(attribute)]
    pub customer_id: String,
    #[busbar(attribute)]
    pub region: String,
    pub total_cents: u64,
    pub items: Vec<Item>,
}

#[derive(Serialize, Deserialize)]
pub struct Item {
    pub sku: String,
    pub quantity: u32,
}

/// A screened order. `risk` is "high" or "low"; notifications holds the high ones.
#[derive(Serialize, Deserialize, busbar::Message)]
#[serde(rename_all = "camelCase")]
pub struct FraudVerdict {
    pub order_id: String,
    #[busbar(attribute)]
    pub customer_id: String,
    #[busbar(attribute)]
    pub risk: String,
    pub total_cents: u64,
}

/// Declared by the TypeScript `orders` service.
pub static ORDER_PLACED: Topic<OrderPlaced> = Topic::declared_elsewhere("order-placed");

/// Verdicts, in order per customer (as the orders arrive).
pub static FRAUD_VERDICT: Topic<FraudVerdict> = Topic::new("fraud-verdict")
    .delivery(DeliveryGuarantee::AtLeastOnce)
    .ordering_attribute("customerId");

/// Orders above this total (in cents) are held for review.
const REVIEW_ABOVE_CENTS: u64 = 120_000;

static DELIVERIES: LazyLock<Deliveries> = LazyLock::new(|| Deliveries::new(&["screen-order"]));

#[busbar::subscribe(topic = ORDER_PLACED, name = "screen-order", max_retries = 5, min_backoff = "1s")]
async fn screen_order(order: OrderPlaced, info: DeliveryInfo) -> busbar::Result<()> {
    let risk = if order.total_cents > REVIEW_ABOVE_CENTS { "high" } else { "low" };
    DELIVERIES.arrive(&info, serde_json::to_value(&order).unwrap_or(Value::Null));
    let verdict = FraudVerdict {
        order_id: order.order_id,
        customer_id: order.customer_id,
        risk: risk.to_string(),
        total_cents: order.total_cents,
    };
    FRAUD_VERDICT.publish(&verdict).await?;
    DELIVERIES.count(risk);
    Ok(())
}

/// `GET /events`: the deliveries, and how many verdicts of each risk were published.
pub fn events() -> Value {
    let mut body = DELIVERIES.to_json();
    body["service"] = json!("fraud");
    body
}
