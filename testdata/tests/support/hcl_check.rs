//! Reads generated Terraform back with a real HCL parser (hcl-rs) and checks, attribute by
//! attribute, that it says what the plan data says: names, FIFO, timeouts, retention, redrive
//! counts, filters, every IAM action and resource. Also that nothing else is there (the same
//! number of blocks of each kind as the plan has items) and that no IAM action or resource has
//! a `*`.

#![allow(clippy::needless_pass_by_value, reason = "comparison helpers take built strings")]

use std::collections::BTreeMap;
use std::path::Path;

use busbar_plan::{AwsPlan, GcpPlan, Plan, Resources};
use hcl::{Block, Body, Expression};

type Blocks<'a> = BTreeMap<(String, String, String), &'a Block>;

fn text(e: &Expression) -> String {
    hcl::format::to_string(e).unwrap_or_else(|err| format!("<{err}>"))
}

fn items(e: &Expression) -> Vec<String> {
    match e {
        Expression::Array(items) => items.iter().map(text).collect(),
        other => vec![format!("<not a list: {}>", text(other))],
    }
}

fn attr<'a>(body: &'a Body, key: &str) -> Option<&'a Expression> {
    body.attributes().find(|a| a.key() == key).map(|a| a.expr())
}

fn nested<'a>(body: &'a Body, identifier: &str) -> Vec<&'a Body> {
    body.blocks().filter(|b| b.identifier() == identifier).map(|b| b.body()).collect()
}

/// Collects errors with their place.
struct Check {
    errors: Vec<String>,
}

impl Check {
    fn eq(&mut self, at: &str, key: &str, actual: Option<String>, expected: String) {
        if actual.as_deref() != Some(expected.as_str()) {
            self.errors.push(format!("{at}: `{key}` is {actual:?}, the plan says {expected}"));
        }
    }

    fn attr(&mut self, at: &str, body: &Body, key: &str, expected: impl ToString) {
        self.eq(at, key, attr(body, key).map(text), expected.to_string());
    }

    fn contains(&mut self, at: &str, body: &Body, key: &str, needles: &[String]) {
        let actual = attr(body, key).map(text).unwrap_or_default();
        for needle in needles {
            if !actual.contains(needle.as_str()) {
                self.errors.push(format!("{at}: `{key}` = {actual} lacks {needle}"));
            }
        }
    }

    fn block<'a>(
        &mut self,
        blocks: &Blocks<'a>,
        kind: &str,
        ty: &str,
        name: &str,
    ) -> Option<&'a Body> {
        let found = blocks.get(&(kind.to_string(), ty.to_string(), name.to_string()));
        if found.is_none() {
            self.errors.push(format!("no {kind} \"{ty}\" \"{name}\" in the Terraform"));
        }
        found.map(|b| b.body())
    }
}

fn quoted(s: &str) -> String {
    format!("{s:?}")
}

fn prefixed(name: &str) -> String {
    format!("\"${{var.prefix}}{name}\"")
}

fn tag_pairs(tags: &BTreeMap<String, String>) -> Vec<String> {
    tags.iter().map(|(k, v)| format!("{} = {}", quoted(k), quoted(v))).collect()
}

/// Parses every `.tf` file of a module into blocks keyed by (kind, type, name).
fn parse_module(dir: &Path) -> Result<Vec<Body>, String> {
    let mut bodies = Vec::new();
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "tf"))
        .collect();
    paths.sort();
    for path in paths {
        let source = std::fs::read_to_string(&path).unwrap();
        bodies.push(hcl::parse(&source).map_err(|e| format!("{}: not HCL: {e}", path.display()))?);
    }
    Ok(bodies)
}

fn index(bodies: &[Body]) -> Blocks<'_> {
    let mut blocks = BTreeMap::new();
    for body in bodies {
        for block in body.blocks() {
            let labels: Vec<&str> = block.labels().iter().map(|l| l.as_str()).collect();
            if let [ty, name] = labels[..] {
                blocks.insert(
                    (block.identifier().to_string(), ty.to_string(), name.to_string()),
                    block,
                );
            }
        }
    }
    blocks
}

fn count(blocks: &Blocks<'_>, kind: &str, ty: &str) -> usize {
    blocks.keys().filter(|(k, t, _)| k == kind && t == ty).count()
}

/// No `*` in any `actions`, `resources` or `role`, anywhere in the module.
fn no_wildcards(body: &Body, errors: &mut Vec<String>, checked: &mut usize) {
    for a in body.attributes() {
        if matches!(a.key(), "actions" | "resources" | "role") {
            let t = text(a.expr());
            *checked += 1;
            if t.contains('*') {
                errors.push(format!("wildcard in `{}`: {t}", a.key()));
            }
        }
    }
    for b in body.blocks() {
        no_wildcards(b.body(), errors, checked);
    }
}

/// Checks the module in `dir` against `plan`.
pub fn check(dir: &Path, plan: &Plan) -> Result<(), String> {
    let bodies = parse_module(dir)?;
    let blocks = index(&bodies);
    let mut c = Check { errors: Vec::new() };
    match &plan.resources {
        Resources::Aws(aws) => check_aws(&mut c, &blocks, aws),
        Resources::Gcp(gcp) => check_gcp(&mut c, &blocks, gcp),
        Resources::Dapr(_) => return Ok(()),
    }
    let mut checked = 0;
    for body in &bodies {
        no_wildcards(body, &mut c.errors, &mut checked);
    }
    if checked == 0 {
        c.errors.push("no IAM action, resource or role found to check".into());
    }
    if c.errors.is_empty() { Ok(()) } else { Err(c.errors.join("\n")) }
}

fn check_aws(c: &mut Check, blocks: &Blocks<'_>, aws: &AwsPlan) {
    let r = "resource";
    for (ty, n) in [
        ("aws_sns_topic", aws.topics.len()),
        ("aws_sqs_queue", aws.queues.len()),
        ("aws_sns_topic_subscription", aws.subscriptions.len()),
        ("aws_sqs_queue_policy", aws.queue_policies.len()),
        ("aws_iam_policy", aws.policies.len()),
        ("aws_cloudwatch_metric_alarm", aws.alarms.len()),
    ] {
        if count(blocks, r, ty) != n {
            c.errors.push(format!("{} {ty} blocks, the plan has {n}", count(blocks, r, ty)));
        }
    }
    for t in &aws.topics {
        let at = format!("aws_sns_topic.{}", t.address);
        let Some(b) = c.block(blocks, r, "aws_sns_topic", &t.address) else { continue };
        c.attr(&at, b, "name", prefixed(&t.name));
        c.attr(&at, b, "fifo_topic", t.fifo);
        c.contains(&at, b, "kms_master_key_id", &[quoted(&t.kms_master_key_id)]);
        c.contains(&at, b, "tags", &tag_pairs(&t.tags));
    }
    for q in &aws.queues {
        let at = format!("aws_sqs_queue.{}", q.address);
        let Some(b) = c.block(blocks, r, "aws_sqs_queue", &q.address) else { continue };
        c.attr(&at, b, "name", prefixed(&q.name));
        c.attr(&at, b, "fifo_queue", q.fifo);
        c.attr(&at, b, "visibility_timeout_seconds", q.visibility_timeout_seconds);
        c.attr(&at, b, "message_retention_seconds", q.message_retention_seconds);
        c.contains(&at, b, "tags", &tag_pairs(&q.tags));
        match &q.redrive {
            Some(redrive) => c.contains(
                &at,
                b,
                "redrive_policy",
                &[
                    format!("deadLetterTargetArn = {}.arn", redrive.dead_letter_queue),
                    format!("maxReceiveCount = {}", redrive.max_receive_count),
                ],
            ),
            None => {
                if let Some(e) = attr(b, "redrive_policy") {
                    c.errors
                        .push(format!("{at}: a dead-letter queue with redrive_policy {}", text(e)));
                }
            }
        }
        if let Some(source) = &q.redrive_allow_source {
            let ty = "aws_sqs_queue_redrive_allow_policy";
            if let Some(p) = c.block(blocks, r, ty, &q.address) {
                c.attr(&at, p, "queue_url", format!("aws_sqs_queue.{}.id", q.address));
                c.contains(&at, p, "redrive_allow_policy", &[format!("[{source}.arn]")]);
            }
        }
    }
    for s in &aws.subscriptions {
        let at = format!("aws_sns_topic_subscription.{}", s.address);
        let Some(b) = c.block(blocks, r, "aws_sns_topic_subscription", &s.address) else {
            continue;
        };
        c.attr(&at, b, "topic_arn", format!("{}.arn", s.topic));
        c.attr(&at, b, "endpoint", format!("{}.arn", s.queue));
        c.attr(&at, b, "protocol", quoted("sqs"));
        c.attr(&at, b, "raw_message_delivery", s.raw_message_delivery);
        let filter = attr(b, "filter_policy").and_then(|e| match e {
            Expression::String(s) => Some(s.clone()),
            _ => None,
        });
        if filter != s.filter_policy {
            c.errors.push(format!(
                "{at}: filter_policy {filter:?}, the plan says {:?}",
                s.filter_policy
            ));
        }
    }
    for p in &aws.queue_policies {
        let at = format!("aws_sqs_queue_policy.{}", p.address);
        if let Some(b) = c.block(blocks, r, "aws_sqs_queue_policy", &p.address) {
            c.attr(&at, b, "queue_url", format!("{}.id", p.queue));
        }
        let doc = format!("queue--{}", p.address);
        let Some(d) = c.block(blocks, "data", "aws_iam_policy_document", &doc) else { continue };
        for st in nested(d, "statement") {
            c.eq(
                &at,
                "actions",
                attr(st, "actions").map(|e| items(e).join(",")),
                quoted("sqs:SendMessage"),
            );
            c.eq(
                &at,
                "resources",
                attr(st, "resources").map(|e| items(e).join(",")),
                format!("{}.arn", p.queue),
            );
            for principal in nested(st, "principals") {
                let ids = attr(principal, "identifiers").map(|e| items(e).join(","));
                c.eq(&at, "identifiers", ids, quoted("sns.amazonaws.com"));
            }
            let conditions = nested(st, "condition");
            if conditions.len() != 1 {
                c.errors.push(format!(
                    "{at}: {} conditions, expected the aws:SourceArn one",
                    conditions.len()
                ));
            }
            for cond in conditions {
                c.attr(&at, cond, "variable", quoted("aws:SourceArn"));
                c.eq(
                    &at,
                    "values",
                    attr(cond, "values").map(|e| items(e).join(",")),
                    format!("{}.arn", p.topic),
                );
            }
        }
    }
    for p in &aws.policies {
        let at = format!("aws_iam_policy.{}", p.address);
        if let Some(b) = c.block(blocks, r, "aws_iam_policy", &p.address) {
            c.attr(&at, b, "name", prefixed(&p.name));
        }
        let Some(d) = c.block(blocks, "data", "aws_iam_policy_document", &p.address) else {
            continue;
        };
        let statements = nested(d, "statement");
        if statements.len() != p.statements.len() {
            c.errors.push(format!(
                "{at}: {} statements, the plan has {}",
                statements.len(),
                p.statements.len()
            ));
        }
        for (st, want) in statements.iter().zip(&p.statements) {
            c.attr(&at, st, "sid", quoted(&want.sid));
            c.attr(&at, st, "effect", quoted("Allow"));
            let want_actions: Vec<String> = want.actions.iter().map(|a| quoted(a)).collect();
            c.eq(
                &at,
                "actions",
                attr(st, "actions").map(|e| items(e).join(",")),
                want_actions.join(","),
            );
            let want_resources: Vec<String> =
                want.resources.iter().map(|a| format!("{a}.arn")).collect();
            c.eq(
                &at,
                "resources",
                attr(st, "resources").map(|e| items(e).join(",")),
                want_resources.join(","),
            );
        }
    }
    for a in &aws.alarms {
        let at = format!("aws_cloudwatch_metric_alarm.{}", a.address);
        let Some(b) = c.block(blocks, r, "aws_cloudwatch_metric_alarm", &a.address) else {
            continue;
        };
        c.attr(&at, b, "alarm_name", prefixed(&a.name));
        c.contains(&at, b, "dimensions", &[format!("{}.name", a.queue)]);
    }
}

fn check_gcp(c: &mut Check, blocks: &Blocks<'_>, gcp: &GcpPlan) {
    let r = "resource";
    for (ty, n) in [
        ("google_pubsub_topic", gcp.topics.len()),
        ("google_pubsub_subscription", gcp.subscriptions.len()),
        ("google_service_account", gcp.service_accounts.len()),
        ("google_pubsub_topic_iam_member", gcp.topic_iam.len()),
        ("google_pubsub_subscription_iam_member", gcp.subscription_iam.len()),
    ] {
        if count(blocks, r, ty) != n {
            c.errors.push(format!("{} {ty} blocks, the plan has {n}", count(blocks, r, ty)));
        }
    }
    for t in &gcp.topics {
        let at = format!("google_pubsub_topic.{}", t.address);
        let Some(b) = c.block(blocks, r, "google_pubsub_topic", &t.address) else { continue };
        c.attr(&at, b, "name", prefixed(&t.name));
        c.contains(&at, b, "labels", &tag_pairs(&t.labels));
    }
    for s in &gcp.subscriptions {
        let at = format!("google_pubsub_subscription.{}", s.address);
        let Some(b) = c.block(blocks, r, "google_pubsub_subscription", &s.address) else {
            continue;
        };
        c.attr(&at, b, "name", prefixed(&s.name));
        c.attr(&at, b, "topic", format!("{}.id", s.topic));
        c.attr(&at, b, "ack_deadline_seconds", s.ack_deadline_seconds);
        c.attr(
            &at,
            b,
            "message_retention_duration",
            quoted(&format!("{}s", s.message_retention_seconds)),
        );
        c.attr(&at, b, "enable_message_ordering", s.enable_message_ordering);
        c.attr(&at, b, "enable_exactly_once_delivery", s.enable_exactly_once_delivery);
        c.attr(&at, b, "filter", s.filter.as_deref().map_or("null".to_string(), quoted));
        c.contains(&at, b, "labels", &tag_pairs(&s.labels));
        for e in nested(b, "expiration_policy") {
            c.attr(&at, e, "ttl", quoted(""));
        }
        if nested(b, "expiration_policy").len() != 1 {
            c.errors
                .push(format!("{at}: no expiration_policy (idle subscriptions would be deleted)"));
        }
        let retry = nested(b, "retry_policy");
        match (s.minimum_backoff_seconds, s.maximum_backoff_seconds, retry.first()) {
            (Some(min), Some(max), Some(rp)) => {
                c.attr(&at, rp, "minimum_backoff", quoted(&format!("{min}s")));
                c.attr(&at, rp, "maximum_backoff", quoted(&format!("{max}s")));
            }
            (None, None, None) => {}
            _ => c.errors.push(format!("{at}: retry_policy does not match the plan")),
        }
        let dead = nested(b, "dead_letter_policy");
        match (&s.dead_letter_policy, dead.first()) {
            (Some(want), Some(d)) => {
                c.attr(&at, d, "dead_letter_topic", format!("{}.id", want.dead_letter_topic));
                c.attr(&at, d, "max_delivery_attempts", want.max_delivery_attempts);
            }
            (None, None) => {}
            _ => c.errors.push(format!("{at}: dead_letter_policy does not match the plan")),
        }
    }
    for a in &gcp.service_accounts {
        let at = format!("google_service_account.{}", a.address);
        let Some(b) = c.block(blocks, r, "google_service_account", &a.address) else { continue };
        c.attr(&at, b, "account_id", prefixed(&a.account_id));
    }
    for (ty, field, list) in [
        ("google_pubsub_topic_iam_member", "topic", &gcp.topic_iam),
        ("google_pubsub_subscription_iam_member", "subscription", &gcp.subscription_iam),
    ] {
        for m in list {
            let at = format!("{ty}.{}", m.address);
            let Some(b) = c.block(blocks, r, ty, &m.address) else { continue };
            c.attr(&at, b, field, format!("{}.name", m.resource));
            c.attr(&at, b, "role", quoted(&m.role));
            let member = match &m.service {
                Some(service) => {
                    format!("\"serviceAccount:${{local.service_accounts[{}]}}\"", quoted(service))
                }
                None => "local.pubsub_service_agent".to_string(),
            };
            c.attr(&at, b, "member", member);
        }
    }
}
