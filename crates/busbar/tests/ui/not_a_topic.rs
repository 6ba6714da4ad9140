#[derive(serde::Serialize, serde::Deserialize, busbar::Message)]
pub struct Signup {
    pub user_id: String,
}

pub static SIGNUP_COUNT: u32 = 0;

#[busbar::subscribe(topic = SIGNUP_COUNT, name = "count")]
async fn count(_event: Signup) -> busbar::Result<()> {
    Ok(())
}

fn main() {}
