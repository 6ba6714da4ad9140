//! Checks over the whole graph: topics nobody publishes to, topics nobody subscribes to.

use busbar_diagnostics::{Diagnostic, codes};
use busbar_model::AppModel;

use crate::PermissionGraph;

/// Diagnostics about the shape of the graph.
pub fn lints(model: &AppModel, graph: &PermissionGraph) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for topic in &model.topics {
        // The help shows the syntax of the language the topic is declared in.
        let rust = topic.span.file.ends_with(".rs");
        if graph.publishers_of(&topic.name).is_empty() {
            out.push(
                Diagnostic::new(
                    &codes::TOPIC_WITHOUT_PUBLISHERS,
                    format!("no service publishes to topic `{}`", topic.name),
                )
                .at_labelled(topic.name_span.clone(), "never published to")
                .with_help(if rust {
                    "publish with `TOPIC.publish(&message)` or take `TOPIC.publisher()` in the \
                     service that sends these messages, or remove the topic"
                } else {
                    "publish with `topic.publish(...)` or take `topic.ref<Publisher>()` in the \
                     service that sends these messages, or remove the topic"
                }),
            );
        }
        if graph.subscriptions_of(&topic.name).is_empty() {
            out.push(
                Diagnostic::new(
                    &codes::TOPIC_WITHOUT_SUBSCRIPTIONS,
                    format!("topic `{}` has no subscriptions, so its messages are not delivered", topic.name),
                )
                .at_labelled(topic.name_span.clone(), "no subscriptions")
                .with_help(if rust {
                    "add `#[busbar::subscribe(topic = TOPIC, name = \"...\")]` on an `async fn` \
                     in the service that consumes them"
                } else {
                    "add `new Subscription(topic, \"name\", { handler })` in the service that consumes them"
                }),
            );
        }
    }
    out
}
