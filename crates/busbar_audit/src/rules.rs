//! busbar.toml's `[audit]` policy over the grants, and two hygiene checks:
//!
//! - **deny** rules: a grant that matches one is an error at the code that needs it;
//! - **allow** rules: when there are any, a grant that matches none is an error;
//! - **cross-service-publish**: publishing to a topic declared in another service is allowed,
//!   allowed only through `ref<Publisher>()` (the owner hands the reference out), or denied.
//!   Topics in shared folders belong to no service and are not affected;
//! - a topic declared in a service that never publishes to it while others do (the
//!   declaration probably belongs with its publisher);
//! - a publish that exists only because the service imports a shared file that publishes
//!   (an easy permission to grant without noticing).

use busbar_config::{AuditConfig, CrossServicePublish, RuleAction};
use busbar_diagnostics::{Diagnostic, codes};
use busbar_model::AppModel;

use crate::{Finding, Grant};

pub fn check(grants: &[Grant], model: &AppModel, config: &AuditConfig) -> Vec<Finding> {
    let mut findings = Vec::new();
    for g in grants {
        for rule in config.deny.iter().filter(|r| r.matches(&g.service, g.action, &g.topic)) {
            let d = Diagnostic::new(
                &codes::AUDIT_POLICY_DENIED,
                format!("service `{}` {}, which busbar.toml denies", g.service, g.describe()),
            )
            .at_labelled(g.location().clone(), "needs the permission")
            .with_label(rule.span.clone(), "denied by this rule")
            .with_help("remove the publish or subscription, or change the rule in busbar.toml's [audit] deny list");
            findings.push(Finding::of(&g.service, d));
        }
        if !config.allow.is_empty()
            && !config.allow.iter().any(|r| r.matches(&g.service, g.action, &g.topic))
        {
            let d = Diagnostic::new(
                &codes::AUDIT_POLICY_DENIED,
                format!(
                    "service `{}` {}, which no allow rule of busbar.toml permits",
                    g.service,
                    g.describe()
                ),
            )
            .at_labelled(g.location().clone(), "needs the permission")
            .with_help(format!(
                "add `{{ service = \"{}\", {} = \"{}\" }}` to busbar.toml's [audit] allow list if this is intended",
                g.service,
                g.action.as_str(),
                g.topic
            ));
            findings.push(Finding::of(&g.service, d));
        }
        if g.action == RuleAction::Publish {
            cross_service(g, model, config, &mut findings);
            if g.only_imported {
                let mut d = Diagnostic::new(
                    &codes::AUDIT_IMPLICIT_PUBLISH,
                    format!(
                        "service `{}` may publish to `{}` only because it imports a shared file that publishes",
                        g.service, g.topic
                    ),
                )
                .at_labelled(g.location().clone(), "the publish, outside the service")
                .with_help("if the service does not mean to publish, split the publishing code out of the shared file it imports");
                for import in &g.imports {
                    d = d.with_label(import.clone(), "imported here");
                }
                findings.push(Finding::of(&g.service, d));
            }
        }
    }
    for topic in &model.topics {
        let Some(owner) = &topic.service else { continue };
        let owner_publishes = topic.publishers.iter().any(|p| &p.service == owner);
        if owner_publishes || topic.publishers.is_empty() {
            continue;
        }
        let others: Vec<String> =
            topic.publishers.iter().map(|p| format!("`{}`", p.service)).collect();
        let d = Diagnostic::new(
            &codes::AUDIT_FOREIGN_TOPIC,
            format!(
                "topic `{}` is declared in service `{owner}`, which never publishes to it; {} {} to it",
                topic.name,
                others.join(", "),
                if others.len() == 1 { "publishes" } else { "publish" }
            ),
        )
        .at_labelled(topic.name_span.clone(), "declared here")
        .with_help("declare a topic in the service that publishes it, so ownership and publish rights line up");
        findings.push(Finding::of(owner, d));
    }
    findings
}

fn cross_service(g: &Grant, model: &AppModel, config: &AuditConfig, out: &mut Vec<Finding>) {
    let Some(owner) = model.topic(&g.topic).and_then(|t| t.service.as_deref()) else { return };
    if owner == g.service {
        return;
    }
    let spans = match config.cross_service_publish {
        CrossServicePublish::Allow => return,
        CrossServicePublish::RefOnly => g.direct.clone(),
        CrossServicePublish::Deny => vec![g.location().clone()],
    };
    for span in spans {
        let (why, help) = match config.cross_service_publish {
            CrossServicePublish::RefOnly => (
                "directly, but busbar.toml allows publishing to another service's topic only through `ref<Publisher>()`",
                format!(
                    "publish through a `{}.ref<Publisher>()` that service `{owner}` exports",
                    g.topic
                ),
            ),
            _ => (
                "but busbar.toml denies publishing to another service's topic",
                format!(
                    "move the publish into service `{owner}`, or declare the topic in a shared folder"
                ),
            ),
        };
        let mut d = Diagnostic::new(
            &codes::AUDIT_CROSS_SERVICE_PUBLISH,
            format!(
                "service `{}` publishes to `{}` of service `{owner}` {why}",
                g.service, g.topic
            ),
        )
        .at_labelled(span, "publishes here")
        .with_help(help);
        if let Some(setting) = &config.cross_service_span {
            d = d.with_label(setting.clone(), "the setting");
        }
        out.push(Finding::of(&g.service, d));
    }
}
