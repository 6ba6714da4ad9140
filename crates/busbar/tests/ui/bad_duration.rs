#[derive(serde::Serialize, serde::Deserialize, busbar::Message)]
pub struct Signup {
    pub user_id: String,
}

pub static SIGNUPS: busbar::Topic<Signup> = busbar::Topic::new("signups");

#[busbar::subscribe(topic = SIGNUPS, name = "welcome", min_backoff = "1.5s")]
async fn welcome(_event: Signup) -> busbar::Result<()> {
    Ok(())
}

#[busbar::subscribe(topic = SIGNUPS, name = "audit", ack_deadline = "500ms")]
async fn audit(_event: Signup) -> busbar::Result<()> {
    Ok(())
}

#[busbar::subscribe(topic = SIGNUPS, name = "notify", min_backoff = "20m")]
async fn notify(_event: Signup) -> busbar::Result<()> {
    Ok(())
}

fn main() {}
