//! The permission audit (`busbar audit`): what each service may do, checked three ways.
//!
//! 1. [`lock`]: against `busbar.lock`, the reviewed list of grants the team commits. A grant
//!    the code needs that the lockfile lacks is an error; one the code no longer needs, a
//!    warning.
//! 2. [`rules`]: against busbar.toml's `[audit]` policy (deny and allow rules, the
//!    cross-service publish setting) and two hygiene checks.
//! 3. [`compat`]: each topic's message schema against the one `busbar.lock` records: breaking
//!    changes for subscribers are errors, compatible ones notes.
//! 4. [`iam`]: against deployed IAM (AWS policy documents, Terraform state, GCP IAM policies),
//!    evaluated as IAM does: over-privilege and under-privilege per service.
//!
//! Every finding is a [`Diagnostic`] with the service it concerns, so reports can group by
//! service.

pub mod compat;
pub mod iam;
pub mod lock;
pub mod report;
pub mod rules;

use busbar_config::RuleAction;
use busbar_diagnostics::{Diagnostic, Span};
use busbar_graph::PermissionGraph;
use busbar_model::{AccessKind, PublishVia};

/// One finding of the audit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The service it concerns, or `None` for the app as a whole.
    pub service: Option<String>,
    pub diagnostic: Diagnostic,
}

impl Finding {
    pub fn of(service: &str, diagnostic: Diagnostic) -> Self {
        Finding { service: Some(service.to_string()), diagnostic }
    }
}

/// A permission the code needs: publish to a topic, or consume one of its subscriptions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub service: String,
    pub action: RuleAction,
    pub topic: String,
    /// For `Consume`: the subscription.
    pub subscription: Option<String>,
    /// For `Publish`: how.
    pub via: PublishVia,
    /// The code that needs it, the first place first. Never empty.
    pub spans: Vec<Span>,
    /// For `Publish`: the spans of direct `publish(...)` calls (not `ref<Publisher>()`).
    pub direct: Vec<Span>,
    /// For `Publish`: every access comes through an import of a file outside the service.
    pub only_imported: bool,
    /// For `Publish`: the imports that lead from the service to its first access, when that
    /// access lies outside the service.
    pub imports: Vec<Span>,
}

impl Grant {
    /// `publishes to `t`` or `consumes subscription `s` of `t``.
    pub fn describe(&self) -> String {
        match &self.subscription {
            Some(sub) => format!("consumes subscription `{sub}` of `{}`", self.topic),
            None => format!("publishes to `{}`", self.topic),
        }
    }

    pub fn location(&self) -> &Span {
        &self.spans[0]
    }
}

/// Every grant of the app, sorted by service, action, topic, subscription.
pub fn grants(graph: &PermissionGraph) -> Vec<Grant> {
    let mut out = Vec::new();
    for set in graph.all_permissions() {
        for p in &set.publish {
            let spans: Vec<Span> = p.accesses.iter().map(|a| a.span.clone()).collect();
            let direct = p
                .accesses
                .iter()
                .filter(|a| a.kind == AccessKind::Publish)
                .map(|a| a.span.clone())
                .collect();
            if spans.is_empty() {
                continue;
            }
            out.push(Grant {
                service: set.service.clone(),
                action: RuleAction::Publish,
                topic: p.topic.clone(),
                subscription: None,
                via: p.via,
                spans,
                direct,
                only_imported: p.accesses.iter().all(|a| !a.imported_at.is_empty()),
                imports: p.accesses[0].imported_at.clone(),
            });
        }
        for c in &set.consume {
            out.push(Grant {
                service: set.service.clone(),
                action: RuleAction::Consume,
                topic: c.topic.clone(),
                subscription: Some(c.subscription.clone()),
                via: PublishVia::Publish,
                spans: vec![c.span.clone()],
                direct: Vec::new(),
                only_imported: false,
                imports: Vec::new(),
            });
        }
    }
    out.sort_by(|a, b| {
        (&a.service, a.action, &a.topic, &a.subscription).cmp(&(
            &b.service,
            b.action,
            &b.topic,
            &b.subscription,
        ))
    });
    out
}
