#[derive(serde::Serialize, serde::Deserialize, busbar::Message)]
pub struct Signup {
    pub user_id: String,
}

pub static SIGNUPS: busbar::Topic<Signup> = busbar::Topic::new("signups");

#[busbar::subscribe(topic = SIGNUPS, name = "welcome", maxRetries = 3)]
async fn welcome(_event: Signup) -> busbar::Result<()> {
    Ok(())
}

#[busbar::subscribe(topic = SIGNUPS, name = "audit", retries = 3)]
async fn audit(_event: Signup) -> busbar::Result<()> {
    Ok(())
}

fn main() {}
