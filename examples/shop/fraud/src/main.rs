//! fraud: the shop's one Rust service. It screens every placed order (a subscription to
//! `order-placed`, which the TypeScript `orders` service declares) and publishes a verdict
//! on its own topic, `fraud-verdict`, which the TypeScript `notifications` service subscribes
//! to. `GET /events` shows what arrived, like the other services' `GET /events`.

mod events;
mod screening;

use std::process::ExitCode;

use busbar::axum::routing::get;
use busbar::axum::{Json, Router};

#[tokio::main]
async fn main() -> ExitCode {
    let api = Router::new().route("/events", get(|| async { Json(screening::events()) }));
    let server = match busbar::Server::from_env() {
        Ok(server) => server,
        Err(e) => {
            eprintln!("fraud: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Ok(port) = std::env::var("APP_PORT") {
        println!("fraud: serving on http://127.0.0.1:{port}");
    }
    match server.routes(api).serve().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fraud: {e}");
            ExitCode::FAILURE
        }
    }
}
