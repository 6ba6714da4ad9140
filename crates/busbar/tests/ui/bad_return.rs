#[derive(serde::Serialize, serde::Deserialize, busbar::Message)]
pub struct Signup {
    pub user_id: String,
}

pub static SIGNUPS: busbar::Topic<Signup> = busbar::Topic::new("signups");

#[busbar::subscribe(topic = SIGNUPS, name = "welcome")]
async fn welcome(_event: Signup) -> Option<()> {
    None
}

fn main() {}
