//! Deployed IAM checked against what the code needs (`busbar audit --iam FILE`).
//!
//! Three inputs, told apart by their shape (docs/audit.md shows each):
//!
//! - **AWS policy documents per service**: `{ "<service>": [<policy document>, ...] }`;
//! - **Terraform state** (`terraform show -json` of a state): `aws_iam_policy`,
//!   `aws_iam_role_policy`, `aws_iam_role_policy_attachment` and `aws_iam_policy_attachment`
//!   resources, in the root module and child modules; roles map to services through
//!   busbar.toml's `[audit] aws-roles`;
//! - **GCP IAM policies**: `{ "<full resource name>": <getIamPolicy response> }`; members map to
//!   services through `[audit] gcp-service-accounts`.
//!
//! AWS documents are evaluated as IAM does: a request is allowed when an `Allow` statement
//! matches it and no `Deny` does; `Action`/`NotAction` and `Resource`/`NotResource` with `*`
//! and `?` wildcards; ARNs map back to topics and queues by their planned names (busbar.toml's
//! `[plan] prefix` included), whatever their region and account. `Condition` blocks are not evaluated: a
//! statement counts as if its condition held.

use std::collections::{BTreeMap, BTreeSet};

use busbar_config::AuditConfig;
use busbar_diagnostics::{Diagnostic, SourceFile, Span, codes};
use busbar_model::AppModel;
use busbar_plan::{Edge, Plan, Resources};
use serde_json::Value;

use crate::{Finding, Grant};

/// What an audit of deployed IAM needs from the app.
pub struct Context<'a> {
    pub model: &'a AppModel,
    pub grants: &'a [Grant],
    pub aws: &'a Plan,
    pub gcp: &'a Plan,
    pub config: &'a AuditConfig,
}

/// Checks one `--iam` file.
pub fn check(file: &SourceFile, cx: &Context) -> Vec<Finding> {
    let value: Value = match serde_json::from_str(file.text()) {
        Ok(v) => v,
        Err(e) => {
            let offset = byte_offset(file.text(), e.line(), e.column());
            return vec![Finding {
                service: None,
                diagnostic: invalid(file, &format!("not JSON: {e}")).at(file.span(offset, offset)),
            }];
        }
    };
    let result = if value.get("format_version").is_some() && value.get("values").is_some() {
        terraform_state(&value, cx).map(|docs| aws(docs, cx))
    } else if is_gcp(&value) {
        gcp(&value, cx)
    } else {
        aws_mapping(&value).map(|docs| aws(docs, cx))
    };
    result.unwrap_or_else(|message| {
        vec![Finding { service: None, diagnostic: invalid(file, &message) }]
    })
}

fn invalid(file: &SourceFile, message: &str) -> Diagnostic {
    Diagnostic::new(&codes::IAM_INVALID_INPUT, format!("{}: {message}", file.path())).with_help(
        "pass AWS policy documents per service, `terraform show -json` state, or GCP IAM policies per resource (docs/audit.md)",
    )
}

fn byte_offset(text: &str, line: usize, column: usize) -> u32 {
    let start: usize = text.split_inclusive('\n').take(line.saturating_sub(1)).map(str::len).sum();
    (start + column.saturating_sub(1)).min(text.len()) as u32
}

// ---------------------------------------------------------------------------------------------
// AWS policy documents.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Effect {
    Allow,
    Deny,
}

#[derive(Clone, Debug)]
struct Statement {
    /// `policy NAME, statement K (Sid X)`, for messages.
    name: String,
    effect: Effect,
    /// `(patterns, negated)`: `NotAction` when negated.
    actions: (Vec<String>, bool),
    resources: (Vec<String>, bool),
}

fn strings(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(items) => items.iter().map(|i| i.as_str().map(str::to_string)).collect(),
        _ => None,
    }
}

/// The statements of one policy document (a JSON object, or a JSON string holding one).
fn statements(doc: &Value, policy: &str) -> Result<Vec<Statement>, String> {
    let parsed;
    let doc = match doc {
        Value::String(s) => {
            parsed = serde_json::from_str::<Value>(s)
                .map_err(|e| format!("policy {policy} is not a JSON document: {e}"))?;
            &parsed
        }
        other => other,
    };
    let list = match doc.get("Statement") {
        Some(Value::Array(items)) => items.clone(),
        Some(one @ Value::Object(_)) => vec![one.clone()],
        _ => return Err(format!("policy {policy} has no Statement")),
    };
    list.iter()
        .enumerate()
        .map(|(k, s)| {
            let sid = s.get("Sid").and_then(Value::as_str);
            let name = match sid {
                Some(sid) => format!("{policy}, statement {} (Sid {sid})", k + 1),
                None => format!("{policy}, statement {}", k + 1),
            };
            let effect = match s.get("Effect").and_then(Value::as_str) {
                Some("Allow") => Effect::Allow,
                Some("Deny") => Effect::Deny,
                _ => return Err(format!("{name}: Effect is not \"Allow\" or \"Deny\"")),
            };
            let pick = |key: &str, not: &str| match (s.get(key), s.get(not)) {
                (Some(v), None) => strings(v).map(|p| (p, false)),
                (None, Some(v)) => strings(v).map(|p| (p, true)),
                _ => None,
            };
            let actions = pick("Action", "NotAction")
                .ok_or_else(|| format!("{name}: needs exactly one of Action and NotAction"))?;
            let resources = pick("Resource", "NotResource")
                .ok_or_else(|| format!("{name}: needs exactly one of Resource and NotResource"))?;
            Ok(Statement { name, effect, actions, resources })
        })
        .collect()
}

/// IAM's wildcard match: `*` any run, `?` one character.
fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// An action pattern against an action (case-insensitive, as IAM compares actions).
fn action_matches(pattern: &str, action: &str) -> bool {
    wildcard(&pattern.to_ascii_lowercase(), &action.to_ascii_lowercase())
}

/// A resource pattern against the resource `kind` (`sns`, `sqs`) named `name`, in whatever
/// region and account: the pattern's partition, region and account parts are not compared.
fn resource_matches(pattern: &str, kind: &str, name: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let parts: Vec<&str> = pattern.splitn(6, ':').collect();
    parts.len() == 6 && parts[0] == "arn" && wildcard(parts[2], kind) && wildcard(parts[5], name)
}

impl Statement {
    fn matches(&self, action: &str, kind: &str, name: &str) -> bool {
        let (actions, not_action) = &self.actions;
        let action_hit = actions.iter().any(|p| action_matches(p, action)) != *not_action;
        let (resources, not_resource) = &self.resources;
        let resource_hit =
            resources.iter().any(|p| resource_matches(p, kind, name)) != *not_resource;
        action_hit && resource_hit
    }

    /// Why the statement is broad by itself, if it is.
    fn broad(&self) -> Option<String> {
        if self.effect != Effect::Allow {
            return None;
        }
        let (actions, not_action) = &self.actions;
        let (resources, not_resource) = &self.resources;
        if *not_action {
            return Some("NotAction allows every action it does not list".into());
        }
        if *not_resource {
            return Some("NotResource allows every resource it does not list".into());
        }
        if let Some(a) = actions.iter().find(|a| a.contains(['*', '?'])) {
            return Some(format!("the action `{a}` is a wildcard"));
        }
        if let Some(r) = resources.iter().find(|r| *r == "*" || r.rsplit(':').next() == Some("*")) {
            return Some(format!("the resource `{r}` is every resource"));
        }
        None
    }
}

/// Every statement of each service (by service name; `None` for principals that map to no
/// service, with the principal's name).
type Documents = BTreeMap<String, Vec<Statement>>;

/// `{ "<service>": [<doc>, ...] }` (a single document is accepted too).
fn aws_mapping(value: &Value) -> Result<(Documents, Vec<String>), String> {
    let Value::Object(map) = value else {
        return Err("expected an object of service names to policy documents".into());
    };
    let mut docs = Documents::new();
    for (service, list) in map {
        let list = match list {
            Value::Array(items) => items.clone(),
            one => vec![one.clone()],
        };
        let mut all = Vec::new();
        for (k, doc) in list.iter().enumerate() {
            all.extend(statements(doc, &format!("`{service}` policy {}", k + 1))?);
        }
        docs.insert(service.clone(), all);
    }
    Ok((docs, Vec::new()))
}

/// Every resource of a `terraform show -json` state, child modules included.
fn state_resources(module: &Value, out: &mut Vec<Value>) {
    if let Some(Value::Array(rs)) = module.get("resources") {
        out.extend(rs.iter().cloned());
    }
    if let Some(Value::Array(children)) = module.get("child_modules") {
        for child in children {
            state_resources(child, out);
        }
    }
}

/// The policy documents attached to each role of a Terraform state, by service; roles with
/// no service in `[audit] aws-roles` come back by name in the second list.
fn terraform_state(value: &Value, cx: &Context) -> Result<(Documents, Vec<String>), String> {
    let root =
        value.pointer("/values/root_module").ok_or("a Terraform state needs values.root_module")?;
    let mut resources = Vec::new();
    state_resources(root, &mut resources);
    let text = |r: &Value, key: &str| {
        r.pointer(&format!("/values/{key}")).and_then(Value::as_str).map(str::to_string)
    };
    // Managed policies by ARN: (name, document).
    let mut policies: BTreeMap<String, (String, Value)> = BTreeMap::new();
    // Role name → (policy label, document).
    let mut attached: BTreeMap<String, Vec<(String, Value)>> = BTreeMap::new();
    let mut attachments: Vec<(String, String)> = Vec::new();
    for r in &resources {
        let address = r.get("address").and_then(Value::as_str).unwrap_or("?").to_string();
        match r.get("type").and_then(Value::as_str) {
            Some("aws_iam_policy") => {
                let arn = text(r, "arn").ok_or_else(|| format!("{address} has no arn"))?;
                let doc = r
                    .pointer("/values/policy")
                    .cloned()
                    .ok_or_else(|| format!("{address} has no policy"))?;
                policies
                    .insert(arn, (format!("policy `{}`", text(r, "name").unwrap_or(address)), doc));
            }
            Some("aws_iam_role_policy") => {
                let role = text(r, "role").ok_or_else(|| format!("{address} has no role"))?;
                let doc = r
                    .pointer("/values/policy")
                    .cloned()
                    .ok_or_else(|| format!("{address} has no policy"))?;
                attached.entry(role).or_default().push((format!("inline policy {address}"), doc));
            }
            Some("aws_iam_role_policy_attachment") => {
                let role = text(r, "role").ok_or_else(|| format!("{address} has no role"))?;
                let arn =
                    text(r, "policy_arn").ok_or_else(|| format!("{address} has no policy_arn"))?;
                attachments.push((role, arn));
            }
            Some("aws_iam_policy_attachment") => {
                let arn =
                    text(r, "policy_arn").ok_or_else(|| format!("{address} has no policy_arn"))?;
                for role in r.pointer("/values/roles").and_then(strings).unwrap_or_default() {
                    attachments.push((role, arn.clone()));
                }
            }
            _ => {}
        }
    }
    for (role, arn) in attachments {
        if let Some((name, doc)) = policies.get(&arn) {
            attached.entry(role).or_default().push((name.clone(), doc.clone()));
        }
    }
    let service_of: BTreeMap<&str, &str> =
        cx.config.aws_roles.iter().map(|(s, r)| (r.as_str(), s.as_str())).collect();
    let mut docs = Documents::new();
    let mut unmapped = Vec::new();
    for service in cx.config.aws_roles.keys() {
        docs.entry(service.clone()).or_default();
    }
    for (role, list) in attached {
        let mut all = Vec::new();
        for (label, doc) in &list {
            all.extend(statements(doc, &format!("{label} on role `{role}`"))?);
        }
        match service_of.get(role.as_str()) {
            Some(service) => docs.entry(service.to_string()).or_default().extend(all),
            None => {
                if all.iter().any(|s| s.actions.0.iter().any(|a| touches_pubsub(a)) || s.actions.1)
                {
                    unmapped.push(role);
                }
            }
        }
    }
    Ok((docs, unmapped))
}

fn touches_pubsub(action: &str) -> bool {
    let a = action.to_ascii_lowercase();
    a == "*" || a.starts_with("sns:") || a.starts_with("sqs:")
}

/// The actions over-privilege is looked for among, beyond those the plans grant.
const SENSITIVE: &[&str] = &[
    "sns:Publish",
    "sns:Subscribe",
    "sns:SetTopicAttributes",
    "sns:DeleteTopic",
    "sqs:SendMessage",
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
    "sqs:SetQueueAttributes",
    "sqs:PurgeQueue",
    "sqs:DeleteQueue",
];

/// What a service needs: (action or role, resource kind, resource name) → the code behind it.
type Needs = BTreeMap<(String, &'static str, String), Span>;

/// What each service needs of `plan` (AWS or GCP), with the code behind each grant; `kind`
/// names the resource kind of a grant's Terraform address.
fn needs(plan: &Plan, grants: &[Grant], kind: fn(&str) -> &'static str) -> BTreeMap<String, Needs> {
    let mut needs: BTreeMap<String, Needs> = BTreeMap::new();
    for g in &plan.grants {
        let (topic, sub) = match &g.edge {
            Edge::Publish { topic } => (topic, None),
            Edge::Consume { topic, subscription } => (topic, Some(subscription)),
        };
        let Some(code) = grants.iter().find(|c| {
            c.service == g.service && &c.topic == topic && c.subscription.as_ref() == sub
        }) else {
            continue;
        };
        for action in &g.actions {
            needs.entry(g.service.clone()).or_default().insert(
                (action.clone(), kind(&g.resource), g.resource_name.clone()),
                code.location().clone(),
            );
        }
    }
    needs
}

fn aws((docs, unmapped): (Documents, Vec<String>), cx: &Context) -> Vec<Finding> {
    let mut findings = Vec::new();
    for role in unmapped {
        findings.push(Finding {
            service: None,
            diagnostic: Diagnostic::new(
                &codes::IAM_UNMAPPED,
                format!("role `{role}` has SNS or SQS permissions but belongs to no service"),
            )
            .with_help(format!(
                "map it in busbar.toml: `[audit] aws-roles = {{ SERVICE = \"{role}\" }}`"
            )),
        });
    }
    let Resources::Aws(plan) = &cx.aws.resources else { return findings };
    let universe: Vec<(&'static str, String)> = plan
        .topics
        .iter()
        .map(|t| ("sns", t.name.clone()))
        .chain(plan.queues.iter().map(|q| ("sqs", q.name.clone())))
        .collect();
    let needs =
        needs(
            cx.aws,
            cx.grants,
            |address| {
                if address.starts_with("aws_sns_topic.") { "sns" } else { "sqs" }
            },
        );
    let mut actions: BTreeSet<String> = SENSITIVE.iter().map(|a| a.to_string()).collect();
    for g in &cx.aws.grants {
        actions.extend(g.actions.iter().cloned());
    }
    for (service, statements) in &docs {
        let declared = cx.model.service(service).and_then(|s| s.span.clone());
        if cx.model.service(service).is_none() {
            findings.push(Finding {
                service: None,
                diagnostic: Diagnostic::new(
                    &codes::IAM_UNMAPPED,
                    format!("the IAM input has policies for `{service}`, which is not a service of the app"),
                )
                .with_help("fix the service name, or remove the policies of a service that is gone"),
            });
            continue;
        }
        let allowed =
            |action: &str, kind: &str, name: &str| -> Result<&Statement, Option<&Statement>> {
                if let Some(deny) = statements
                    .iter()
                    .find(|s| s.effect == Effect::Deny && s.matches(action, kind, name))
                {
                    return Err(Some(deny));
                }
                statements
                    .iter()
                    .find(|s| s.effect == Effect::Allow && s.matches(action, kind, name))
                    .ok_or(None)
            };
        for s in statements {
            if let Some(why) = s.broad() {
                let mut d = Diagnostic::new(
                    &codes::IAM_WILDCARD,
                    format!("service `{service}`: {} is broader than any code needs: {why}", s.name),
                )
                .with_help("grant the exact actions on the exact topics and queues `busbar plan --explain SERVICE` lists");
                if let Some(span) = &declared {
                    d = d.at_labelled(span.clone(), "this service");
                }
                findings.push(Finding::of(service, d));
            }
        }
        // Over-privilege: what the documents allow beyond the needs, by the statement allowing it.
        let need = needs.get(service);
        let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for action in &actions {
            let kind = if action.to_ascii_lowercase().starts_with("sns:") { "sns" } else { "sqs" };
            for (k, name) in universe.iter().filter(|(k, _)| *k == kind) {
                let needed =
                    need.is_some_and(|n| n.contains_key(&(action.clone(), *k, name.clone())));
                if needed {
                    continue;
                }
                if let Ok(s) = allowed(action, k, name) {
                    extra.entry(s.name.clone()).or_default().push(format!("{action} on `{name}`"));
                }
            }
        }
        for (statement, what) in extra {
            let shown: Vec<&String> = what.iter().take(6).collect();
            let more = if what.len() > 6 {
                format!(" and {} more", what.len() - 6)
            } else {
                String::new()
            };
            let mut d = Diagnostic::new(
                &codes::IAM_OVER_PRIVILEGE,
                format!(
                    "service `{service}`: {statement} allows {}{more}, which its code does not need",
                    shown.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                ),
            )
            .with_help("remove these grants; `busbar plan --explain SERVICE` lists what the code needs");
            if let Some(span) = &declared {
                d = d.at_labelled(span.clone(), "this service");
            }
            findings.push(Finding::of(service, d));
        }
    }
    // Under-privilege: every need that the service's documents do not allow.
    for (service, need) in &needs {
        let statements = docs.get(service).map(Vec::as_slice).unwrap_or(&[]);
        for ((action, kind, name), span) in need {
            let deny = statements
                .iter()
                .find(|s| s.effect == Effect::Deny && s.matches(action, kind, name));
            let allow = statements
                .iter()
                .any(|s| s.effect == Effect::Allow && s.matches(action, kind, name));
            let why = match (deny, allow) {
                (Some(d), _) => format!("{} denies it", d.name),
                (None, false) => "no statement allows it".to_string(),
                (None, true) => continue,
            };
            let d = Diagnostic::new(
                &codes::IAM_UNDER_PRIVILEGE,
                format!("service `{service}` needs {action} on `{name}`, but {why}"),
            )
            .at_labelled(span.clone(), "needs it")
            .with_help("grant it (the generated Terraform does), or the call fails at run time");
            findings.push(Finding::of(service, d));
        }
    }
    findings
}

// ---------------------------------------------------------------------------------------------
// GCP IAM policies.

fn is_gcp(value: &Value) -> bool {
    value.as_object().is_some_and(|m| {
        !m.is_empty() && m.keys().all(|k| k.starts_with("projects/") || k.starts_with("//"))
    })
}

/// Roles that grant everything on Pub/Sub where they are bound.
const BROAD_ROLES: &[&str] =
    &["roles/owner", "roles/editor", "roles/pubsub.admin", "roles/pubsub.editor"];

/// A resource name's kind and short name: `("topics", "shop-orders")`, or `("projects", P)`.
fn gcp_resource(name: &str) -> Option<(&'static str, String)> {
    let name = name
        .trim_start_matches("//pubsub.googleapis.com/")
        .trim_start_matches("//cloudresourcemanager.googleapis.com/");
    let parts: Vec<&str> = name.split('/').collect();
    match parts.as_slice() {
        ["projects", p] => Some(("projects", p.to_string())),
        ["projects", _, "topics", t] => Some(("topics", t.to_string())),
        ["projects", _, "subscriptions", s] => Some(("subscriptions", s.to_string())),
        _ => None,
    }
}

fn gcp(value: &Value, cx: &Context) -> Result<Vec<Finding>, String> {
    let Value::Object(map) = value else { return Err("expected an object".into()) };
    let service_of: BTreeMap<String, &str> = cx
        .config
        .gcp_service_accounts
        .iter()
        .map(|(s, email)| (format!("serviceAccount:{email}"), s.as_str()))
        .collect();
    // Per service: (role, kind, name) bound.
    let mut bound: BTreeMap<&str, BTreeSet<(String, &'static str, String)>> = BTreeMap::new();
    let mut findings = Vec::new();
    let mut unmapped = BTreeSet::new();
    for (resource, policy) in map {
        let (kind, name) = gcp_resource(resource)
            .ok_or_else(|| format!("`{resource}` is not a project, topic or subscription name"))?;
        let empty = Vec::new();
        // A policy with no bindings has no `bindings` key at all.
        let bindings = match policy.get("bindings") {
            None => &empty,
            Some(b) => {
                b.as_array().ok_or_else(|| format!("`{resource}`: bindings is not a list"))?
            }
        };
        for b in bindings {
            let role = b
                .get("role")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("`{resource}`: a binding has no role"))?;
            let members = b
                .get("members")
                .and_then(strings)
                .ok_or_else(|| format!("`{resource}`: a binding has no members"))?;
            for m in members {
                match service_of.get(&m) {
                    Some(service) => {
                        bound.entry(service).or_default().insert((
                            role.to_string(),
                            kind,
                            name.clone(),
                        ));
                    }
                    None if role.starts_with("roles/pubsub.")
                        && m.starts_with("serviceAccount:") =>
                    {
                        unmapped.insert(m);
                    }
                    None => {}
                }
            }
        }
    }
    for m in unmapped {
        findings.push(Finding {
            service: None,
            diagnostic: Diagnostic::new(
                &codes::IAM_UNMAPPED,
                format!("`{m}` has Pub/Sub roles but belongs to no service"),
            )
            .with_help(
                "map it in busbar.toml: `[audit] gcp-service-accounts = { SERVICE = \"EMAIL\" }`",
            ),
        });
    }
    let needs = needs(cx.gcp, cx.grants, |address| {
        if address.starts_with("google_pubsub_topic") { "topics" } else { "subscriptions" }
    });
    let services: BTreeSet<&str> =
        bound.keys().copied().chain(needs.keys().map(String::as_str)).collect();
    for service in services {
        let declared = cx.model.service(service).and_then(|s| s.span.clone());
        let at = |d: Diagnostic| match &declared {
            Some(span) => d.at_labelled(span.clone(), "this service"),
            None => d,
        };
        let have = bound.get(service).cloned().unwrap_or_default();
        let need = needs.get(service).cloned().unwrap_or_default();
        for (role, kind, name) in &have {
            if BROAD_ROLES.contains(&role.as_str())
                || (*kind == "projects" && role.starts_with("roles/pubsub."))
            {
                findings.push(Finding::of(service, at(Diagnostic::new(
                    &codes::IAM_WILDCARD,
                    format!("service `{service}` has {role} on {kind}/{name}, which covers every topic and subscription there"),
                )
                .with_help("bind roles/pubsub.publisher on each topic and roles/pubsub.subscriber on each subscription the code uses"))));
            } else if !need.contains_key(&(role.clone(), kind, name.clone())) {
                findings.push(Finding::of(service, at(Diagnostic::new(
                    &codes::IAM_OVER_PRIVILEGE,
                    format!("service `{service}` has {role} on {kind}/{name}, which its code does not need"),
                )
                .with_help("remove the binding; `busbar plan --explain SERVICE` lists what the code needs"))));
            }
        }
        for ((role, kind, name), span) in &need {
            let covered = have.iter().any(|(r, k, n)| {
                (r == role && ((k == kind && n == name) || *k == "projects"))
                    || BROAD_ROLES.contains(&r.as_str())
            });
            if !covered {
                findings.push(Finding::of(service, Diagnostic::new(
                    &codes::IAM_UNDER_PRIVILEGE,
                    format!("service `{service}` needs {role} on {kind}/{name}, but no binding grants it"),
                )
                .at_labelled(span.clone(), "needs it")
                .with_help("bind it (the generated Terraform does), or the call fails at run time")));
            }
        }
    }
    Ok(findings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_as_iam_does() {
        assert!(wildcard("shop-*", "shop-orders"));
        assert!(wildcard("*", ""));
        assert!(wildcard("a?c*", "abcdef"));
        assert!(!wildcard("shop-*", "shopx"));
        assert!(action_matches("SNS:Pub*", "sns:Publish"));
        assert!(resource_matches("arn:aws:sns:*:*:shop-*", "sns", "shop-orders"));
        assert!(!resource_matches("arn:aws:sqs:*:*:shop-*", "sns", "shop-orders"));
        assert!(resource_matches(
            "arn:aws:sns:us-east-1:123456789012:shop-orders",
            "sns",
            "shop-orders"
        ));
        assert!(!resource_matches(
            "arn:aws:sns:us-east-1:123456789012:shop-orders",
            "sns",
            "shop-order"
        ));
    }

    #[test]
    fn gcp_names_are_read() {
        assert_eq!(gcp_resource("projects/p/topics/t"), Some(("topics", "t".into())));
        assert_eq!(
            gcp_resource("//pubsub.googleapis.com/projects/p/subscriptions/s"),
            Some(("subscriptions", "s".into()))
        );
        assert_eq!(gcp_resource("projects/p"), Some(("projects", "p".into())));
        assert_eq!(gcp_resource("folders/1"), None);
    }
}
