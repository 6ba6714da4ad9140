#[derive(serde::Serialize, serde::Deserialize, busbar::Message)]
pub struct Signup {
    pub user_id: String,
    #[busbar(attribute)]
    pub tags: Vec<String>,
}

#[derive(serde::Serialize, serde::Deserialize, busbar::Message)]
pub struct Skipped {
    #[busbar(attribute)]
    #[serde(skip)]
    pub source: String,
}

fn main() {}
