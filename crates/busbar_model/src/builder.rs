//! Assembling a model from declarations found by a frontend, with the checks that need the
//! whole app: duplicate services, topics and subscriptions.

use std::collections::BTreeMap;

use busbar_diagnostics::{Diagnostic, codes};

use crate::{Access, AppModel, Publisher, Service, Subscription, Topic};

/// Collects declarations in path order; the first declaration of a name wins and later ones
/// become diagnostics with a "previously declared here" label.
#[derive(Debug, Default)]
pub struct ModelBuilder {
    services: BTreeMap<String, Service>,
    topics: BTreeMap<String, Topic>,
    accesses: BTreeMap<(String, String), Vec<Access>>,
    diagnostics: Vec<Diagnostic>,
}

impl ModelBuilder {
    pub fn new() -> Self {
        ModelBuilder::default()
    }

    /// Adds a service; false (and a diagnostic) if the name is taken.
    pub fn add_service(&mut self, service: Service) -> bool {
        if let Some(first) = self.services.get(&service.name) {
            let mut d = Diagnostic::new(
                &codes::DUPLICATE_SERVICE,
                format!(
                    "service `{}` is declared twice (in `{}` and `{}`)",
                    service.name, first.root, service.root
                ),
            )
            .with_help("service names must be unique in the app: rename one of them");
            if let Some(span) = &service.span {
                d = d.at_labelled(span.clone(), "second declaration");
            }
            if let Some(span) = &first.span {
                d = d.with_label(span.clone(), "previously declared here");
            }
            self.diagnostics.push(d);
            return false;
        }
        self.services.insert(service.name.clone(), service);
        true
    }

    pub fn has_service(&self, name: &str) -> bool {
        self.services.contains_key(name)
    }

    /// Adds a topic; false (and a diagnostic) if the name is taken.
    pub fn add_topic(&mut self, topic: Topic) -> bool {
        if let Some(first) = self.topics.get(&topic.name) {
            self.diagnostics.push(
                Diagnostic::new(
                    &codes::DUPLICATE_TOPIC,
                    format!("topic `{}` is declared twice", topic.name),
                )
                .at_labelled(topic.name_span.clone(), "declared again here")
                .with_label(first.name_span.clone(), "previously declared here")
                .with_help(
                    "topic names are unique across the app: export the first declaration and \
                     import it here, or give this topic another name",
                ),
            );
            return false;
        }
        self.topics.insert(topic.name.clone(), topic);
        true
    }

    pub fn has_topic(&self, name: &str) -> bool {
        self.topics.contains_key(name)
    }

    /// Adds a subscription to a topic added before; false (and a diagnostic) if the topic
    /// already has a subscription of that name, or there is no such topic.
    pub fn add_subscription(&mut self, topic: &str, subscription: Subscription) -> bool {
        let Some(t) = self.topics.get_mut(topic) else { return false };
        if let Some(first) = t.subscriptions.iter().find(|s| s.name == subscription.name) {
            self.diagnostics.push(
                Diagnostic::new(
                    &codes::DUPLICATE_SUBSCRIPTION,
                    format!("topic `{topic}` has two subscriptions named `{}`", subscription.name),
                )
                .at_labelled(subscription.name_span.clone(), "defined again here")
                .with_label(first.name_span.clone(), "previously defined here")
                .with_help(
                    "each subscription of a topic receives every message independently and needs \
                     its own name: rename one of them",
                ),
            );
            return false;
        }
        t.subscriptions.push(subscription);
        true
    }

    /// Records one place where `service` needs to publish to `topic`.
    pub fn add_access(&mut self, topic: &str, service: &str, access: Access) {
        self.accesses.entry((topic.to_string(), service.to_string())).or_default().push(access);
    }

    pub fn push_diagnostic(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    /// The sorted model and the diagnostics found while building it.
    pub fn finish(self) -> (AppModel, Vec<Diagnostic>) {
        let mut topics = self.topics;
        for ((topic, service), accesses) in self.accesses {
            if let Some(t) = topics.get_mut(&topic) {
                t.publishers.push(Publisher::from_accesses(service, accesses));
            }
        }
        let mut model = AppModel {
            services: self.services.into_values().collect(),
            topics: topics.into_values().collect(),
        };
        model.sort();
        (model, self.diagnostics)
    }
}
