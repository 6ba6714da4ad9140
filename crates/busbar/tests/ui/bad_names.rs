#[derive(serde::Serialize, serde::Deserialize, busbar::Message)]
pub struct Signup {
    pub user_id: String,
}

pub static SIGNUPS: busbar::Topic<Signup> = busbar::Topic::new("Signups");

#[busbar::subscribe(topic = SIGNUPS, name = "WelcomeEmail")]
async fn welcome(_event: Signup) -> busbar::Result<()> {
    Ok(())
}

#[busbar::subscribe(name = "audit")]
async fn audit(_event: Signup) -> busbar::Result<()> {
    Ok(())
}

fn main() {}
