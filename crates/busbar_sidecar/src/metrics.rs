//! `GET /metrics`, in the Prometheus text format.

use std::sync::Arc;

use axum::extract::Extension;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::{AppState, error};

/// The samples of one metric family for one subscription: (name suffix and labels, value).
type Series = dyn Fn(&busbar_runtime::SubscriptionStats, &str) -> Vec<(String, String)>;

/// A Prometheus label value.
fn label(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

pub(crate) async fn metrics(Extension(state): Extension<Arc<AppState>>) -> Response {
    let stats = match state.broker.stats().await {
        Ok(stats) => stats,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, "ERR_METRICS", e.to_string()),
    };
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, values: &Series| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for s in &stats {
            let labels = format!(
                "topic=\"{}\",subscription=\"{}\"",
                label(&s.topic),
                label(&s.subscription)
            );
            for (suffix_and_labels, value) in values(s, &labels) {
                out.push_str(&format!("{name}{suffix_and_labels} {value}\n"));
            }
        }
    };
    family(
        "busbar_backlog",
        "gauge",
        "Deliveries a subscription is owed, due or waiting for their backoff.",
        &|s, l| s.backlog.map(|n| (format!("{{{l}}}"), n.to_string())).into_iter().collect(),
    );
    family(
        "busbar_dead_letters",
        "gauge",
        "Messages in a subscription's dead-letter queue.",
        &|s, l| s.dead_letters.map(|n| (format!("{{{l}}}"), n.to_string())).into_iter().collect(),
    );
    family(
        "busbar_deliveries_total",
        "counter",
        "Settled deliveries since busbar dev started, by outcome.",
        &|s, l| {
            vec![
                (format!("{{{l},outcome=\"acknowledged\"}}"), s.acknowledged.to_string()),
                (format!("{{{l},outcome=\"retried\"}}"), s.retried.to_string()),
                (format!("{{{l},outcome=\"dead_lettered\"}}"), s.dead_lettered.to_string()),
            ]
        },
    );
    family(
        "busbar_delivery_latency_seconds",
        "summary",
        "Time from publish to each settled delivery.",
        &|s, l| {
            vec![
                (format!("_sum{{{l}}}"), format!("{:.6}", s.latency_us as f64 / 1e6)),
                (
                    format!("_count{{{l}}}"),
                    (s.acknowledged + s.retried + s.dead_lettered).to_string(),
                ),
            ]
        },
    );
    let retired = state.broker.retired();
    out.push_str("# HELP busbar_retired_backlog Deliveries owed to a subscription the app no longer has: kept, and delivered if it comes back.\n# TYPE busbar_retired_backlog gauge\n");
    for ((topic, subscription), owed) in &retired {
        out.push_str(&format!(
            "busbar_retired_backlog{{topic=\"{}\",subscription=\"{}\"}} {owed}\n",
            label(topic),
            label(subscription)
        ));
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
