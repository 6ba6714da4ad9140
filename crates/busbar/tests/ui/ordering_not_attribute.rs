#[derive(serde::Serialize, serde::Deserialize, busbar::Message)]
pub struct Signup {
    pub user_id: String,
    #[busbar(attribute)]
    pub source: String,
}

// `user_id` is a field, but not an attribute.
pub static SIGNUPS: busbar::Topic<Signup> = busbar::Topic::new("signups").ordering_attribute("user_id");

fn main() {}
