#[derive(serde::Serialize, serde::Deserialize, busbar::Message)]
pub struct Signup {
    pub user_id: String,
}

#[derive(serde::Serialize, serde::Deserialize, busbar::Message)]
pub struct OrderPlaced {
    pub order_id: String,
}

pub static SIGNUPS: busbar::Topic<Signup> = busbar::Topic::new("signups");

#[busbar::subscribe(topic = SIGNUPS, name = "charge")]
async fn charge(_order: OrderPlaced) -> busbar::Result<()> {
    Ok(())
}

fn main() {}
