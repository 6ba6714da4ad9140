//! busbar.toml's `[audit]` section: the policy `busbar audit` enforces, and how deployed IAM
//! principals map to services.
//!
//! ```toml
//! [audit]
//! cross-service-publish = "ref-only"   # "allow" (default), "ref-only" or "deny"
//! deny = [{ service = "frontend", publish = "billing-*" }]
//! allow = [{ service = "*", consume = "*" }, { service = "billing", publish = "invoice-*" }]
//! aws-roles = { billing = "shop-billing" }          # IAM role name → service
//! gcp-service-accounts = { billing = "billing@shop.iam.gserviceaccount.com" }
//! ```

use std::collections::BTreeMap;

use busbar_diagnostics::{Diagnostic, SourceFile, Span, codes};
use serde::Deserialize;
use toml::Spanned;

/// What `cross-service-publish` allows for a topic declared inside another service.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CrossServicePublish {
    #[default]
    Allow,
    /// Only through `topic.ref<Publisher>()`, which the owning service hands out.
    RefOnly,
    Deny,
}

/// Publish to a topic, or consume one of its subscriptions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RuleAction {
    Publish,
    Consume,
}

impl RuleAction {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleAction::Publish => "publish",
            RuleAction::Consume => "consume",
        }
    }
}

/// A deny or allow rule: services matching `service` × `action` × topics matching `topic`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub service: String,
    pub action: RuleAction,
    pub topic: String,
    /// The rule in busbar.toml.
    pub span: Span,
}

impl Rule {
    pub fn matches(&self, service: &str, action: RuleAction, topic: &str) -> bool {
        self.action == action
            && glob_match(&self.service, service)
            && glob_match(&self.topic, topic)
    }
}

/// `*` matches any run of characters, `?` one; everything else matches itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    globset::GlobBuilder::new(pattern)
        .literal_separator(false)
        .build()
        .map(|g| g.compile_matcher().is_match(text))
        .unwrap_or(false)
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditConfig {
    pub cross_service_publish: CrossServicePublish,
    /// Where `cross-service-publish` is set, for diagnostics.
    pub cross_service_span: Option<Span>,
    pub deny: Vec<Rule>,
    pub allow: Vec<Rule>,
    /// Service → the IAM role its code runs as (Terraform state input).
    pub aws_roles: BTreeMap<String, String>,
    /// Service → its GCP service account email.
    pub gcp_service_accounts: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawAudit {
    cross_service_publish: Option<Spanned<String>>,
    #[serde(default)]
    deny: Vec<Spanned<RawRule>>,
    #[serde(default)]
    allow: Vec<Spanned<RawRule>>,
    #[serde(default)]
    aws_roles: BTreeMap<String, String>,
    #[serde(default)]
    gcp_service_accounts: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    service: Option<String>,
    publish: Option<String>,
    consume: Option<String>,
}

fn invalid(span: Span, message: String, help: &str) -> Diagnostic {
    Diagnostic::new(&codes::INVALID_CONFIG, message).at_labelled(span, "here").with_help(help)
}

/// Checks and converts the raw section.
pub(crate) fn convert(raw: RawAudit, file: &SourceFile) -> (AuditConfig, Vec<Diagnostic>) {
    let span_of = |r: std::ops::Range<usize>| file.span(r.start as u32, r.end as u32);
    let mut diagnostics = Vec::new();
    let mut config = AuditConfig {
        aws_roles: raw.aws_roles,
        gcp_service_accounts: raw.gcp_service_accounts,
        ..AuditConfig::default()
    };
    if let Some(value) = raw.cross_service_publish {
        let span = span_of(value.span());
        match value.get_ref().as_str() {
            "allow" => config.cross_service_publish = CrossServicePublish::Allow,
            "ref-only" => config.cross_service_publish = CrossServicePublish::RefOnly,
            "deny" => config.cross_service_publish = CrossServicePublish::Deny,
            other => diagnostics.push(invalid(
                span.clone(),
                format!("`{other}` is not a cross-service-publish setting"),
                "use \"allow\", \"ref-only\" or \"deny\"",
            )),
        }
        config.cross_service_span = Some(span);
    }
    for (kind, rules, out) in
        [("deny", raw.deny, &mut config.deny), ("allow", raw.allow, &mut config.allow)]
    {
        for rule in rules {
            let span = span_of(rule.span());
            let RawRule { service, publish, consume } = rule.into_inner();
            let (action, topic) = match (publish, consume) {
                (Some(t), None) => (RuleAction::Publish, t),
                (None, Some(t)) => (RuleAction::Consume, t),
                _ => {
                    diagnostics.push(invalid(
                        span,
                        format!("a {kind} rule needs exactly one of `publish` and `consume`"),
                        "write `{ service = \"frontend\", publish = \"billing-*\" }`",
                    ));
                    continue;
                }
            };
            let service = service.unwrap_or_else(|| "*".to_string());
            let bad = [&service, &topic].into_iter().find(|p| globset::Glob::new(p).is_err());
            if let Some(pattern) = bad {
                diagnostics.push(invalid(
                    span,
                    format!("`{pattern}` is not a valid glob"),
                    "use `*` for any run of characters and `?` for one",
                ));
                continue;
            }
            out.push(Rule { service, action, topic, span });
        }
    }
    (config, diagnostics)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_section_is_read_strictly() {
        let (config, diags) = crate::parse(
            "[audit]\ncross-service-publish = \"ref-only\"\ndeny = [{ service = \"web\", publish = \"billing-*\" }]\nallow = [{ consume = \"*\" }]\naws-roles = { billing = \"shop-billing\" }\n",
        );
        assert!(diags.is_empty(), "{diags:?}");
        let audit = config.audit;
        assert_eq!(audit.cross_service_publish, CrossServicePublish::RefOnly);
        assert!(audit.deny[0].matches("web", RuleAction::Publish, "billing-invoice"));
        assert!(!audit.deny[0].matches("web", RuleAction::Consume, "billing-invoice"));
        assert!(audit.allow[0].matches("any", RuleAction::Consume, "t"));
        assert_eq!(audit.aws_roles["billing"], "shop-billing");

        for (text, wanted) in [
            (
                "[audit]\ncross-service-publish = \"sometimes\"\n",
                "not a cross-service-publish setting",
            ),
            (
                "[audit]\ndeny = [{ publish = \"a\", consume = \"b\" }]\n",
                "exactly one of `publish` and `consume`",
            ),
            ("[audit]\ndeny = [{ service = \"[\", publish = \"a\" }]\n", "not a valid glob"),
            ("[audit]\ndenied = []\n", "unknown field `denied`"),
            (
                "[audit]\ndeny = [{ service = \"a\", publish = \"b\", topic = \"c\" }]\n",
                "unknown field `topic`",
            ),
        ] {
            let (_, diags) = crate::parse(text);
            assert_eq!(diags.len(), 1, "{text}: {diags:?}");
            assert!(diags[0].message.contains(wanted), "{text}: {}", diags[0].message);
            assert!(diags[0].span.is_some(), "{text}: points at busbar.toml");
        }
    }

    #[test]
    fn globs_match_whole_names() {
        assert!(glob_match("billing-*", "billing-invoice"));
        assert!(!glob_match("billing-*", "x-billing-invoice"));
        assert!(glob_match("*", "site.added/x"));
        assert!(glob_match("a?c", "abc"));
    }
}
