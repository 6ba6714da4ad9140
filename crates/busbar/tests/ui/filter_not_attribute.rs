#[derive(serde::Serialize, serde::Deserialize, busbar::Message)]
pub struct Signup {
    pub user_id: String,
    #[busbar(attribute)]
    pub source: String,
}

pub static SIGNUPS: busbar::Topic<Signup> = busbar::Topic::new("signups");

#[busbar::subscribe(topic = SIGNUPS, name = "welcome", filter(source = ["web"], user_id = "u1"))]
async fn welcome(_event: Signup) -> busbar::Result<()> {
    Ok(())
}

#[busbar::subscribe(topic = SIGNUPS, name = "audit", filter(source = 1.5))]
async fn audit(_event: Signup) -> busbar::Result<()> {
    Ok(())
}

fn main() {}
