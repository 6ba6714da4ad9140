//! The GCP run, against the Pub/Sub emulator's REST API: the plan's topics (with dead-letter
//! topics) and subscriptions (with retry and dead-letter policies, ordering, and the pull
//! subscriptions on dead-letter topics) created; every topic published to, and every
//! subscription of it receives the message (the emulator applies no filters: those are checked
//! in the plan data); on an unordered subscription, a message nacked `max_delivery_attempts`
//! times lands on its dead-letter topic and is kept by the pull subscription there (the
//! emulator fails dead-lettering on ordered subscriptions); on an ordered subscription,
//! messages with one ordering key arrive in publish order.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use base64::Engine;
use busbar_model::AppModel;
use busbar_plan::{GcpPlan, PubsubSubscription, RuntimeSubscription};
use serde_json::{Value, json};

/// The emulator's project.
const PROJECT: &str = "busbar-e2e";

pub struct Emulator {
    base: String,
    project: String,
}

impl Emulator {
    fn url(&self, path: &str) -> String {
        format!("{}/v1/projects/{}/{path}", self.base, self.project)
    }

    fn put(&self, path: &str, body: &Value) -> Result<Value> {
        let mut response = ureq::put(&self.url(path))
            .send_json(body)
            .with_context(|| format!("PUT {path} {body}"))?;
        Ok(response.body_mut().read_json()?)
    }

    fn post(&self, path: &str, body: &Value) -> Result<Value> {
        let mut response = ureq::post(&self.url(path))
            .send_json(body)
            .with_context(|| format!("POST {path} {body}"))?;
        Ok(response.body_mut().read_json()?)
    }

    fn publish(
        &self,
        topic: &str,
        data: &str,
        attributes: &BTreeMap<String, String>,
        key: Option<&str>,
    ) -> Result<()> {
        let mut message = json!({
            "data": base64::engine::general_purpose::STANDARD.encode(data),
            "attributes": attributes,
        });
        if let Some(key) = key {
            message["orderingKey"] = json!(key);
        }
        self.post(&format!("topics/{topic}:publish"), &json!({ "messages": [message] }))?;
        Ok(())
    }

    /// Pulls what is there: `(ack id, data)`.
    fn pull(&self, subscription: &str) -> Result<Vec<(String, String)>> {
        let got = self.post(
            &format!("subscriptions/{subscription}:pull"),
            &json!({ "maxMessages": 50, "returnImmediately": true }),
        )?;
        let mut out = Vec::new();
        for m in got["receivedMessages"].as_array().into_iter().flatten() {
            let data = m["message"]["data"].as_str().unwrap_or_default();
            let data = base64::engine::general_purpose::STANDARD.decode(data).unwrap_or_default();
            out.push((
                m["ackId"].as_str().unwrap_or_default().to_string(),
                String::from_utf8_lossy(&data).into_owned(),
            ));
        }
        Ok(out)
    }

    fn ack(&self, subscription: &str, ack_ids: &[String]) -> Result<()> {
        if !ack_ids.is_empty() {
            self.post(
                &format!("subscriptions/{subscription}:acknowledge"),
                &json!({ "ackIds": ack_ids }),
            )?;
        }
        Ok(())
    }

    fn nack(&self, subscription: &str, ack_ids: &[String]) -> Result<()> {
        self.post(
            &format!("subscriptions/{subscription}:modifyAckDeadline"),
            &json!({ "ackIds": ack_ids, "ackDeadlineSeconds": 0 }),
        )?;
        Ok(())
    }

    /// Pulls until `want` messages arrived or `timeout` passed, acknowledging them.
    fn collect(&self, subscription: &str, want: usize, timeout: Duration) -> Result<Vec<String>> {
        let started = Instant::now();
        let mut got = Vec::new();
        while got.len() < want && started.elapsed() < timeout {
            let pulled = self.pull(subscription)?;
            if pulled.is_empty() {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            let ids: Vec<String> = pulled.iter().map(|(id, _)| id.clone()).collect();
            self.ack(subscription, &ids)?;
            got.extend(pulled.into_iter().map(|(_, data)| data));
        }
        Ok(got)
    }
}

/// `projects/P/topics/NAME` of a planned topic, by its Terraform address.
fn topic_path(project: &str, plan: &GcpPlan, address: &str) -> Result<String> {
    let topic = plan.topic(address).with_context(|| format!("no planned topic {address}"))?;
    Ok(format!("projects/{project}/topics/{}", topic.name))
}

fn subscription_body(project: &str, s: &PubsubSubscription, plan: &GcpPlan) -> Result<Value> {
    let mut body = json!({
        "topic": topic_path(project, plan, &s.topic)?,
        "ackDeadlineSeconds": s.ack_deadline_seconds,
        "messageRetentionDuration": format!("{}s", s.message_retention_seconds),
        "enableMessageOrdering": s.enable_message_ordering,
        "enableExactlyOnceDelivery": s.enable_exactly_once_delivery,
        "expirationPolicy": {},
    });
    if let (Some(min), Some(max)) = (s.minimum_backoff_seconds, s.maximum_backoff_seconds) {
        body["retryPolicy"] =
            json!({ "minimumBackoff": format!("{min}s"), "maximumBackoff": format!("{max}s") });
    }
    if let Some(dead) = &s.dead_letter_policy {
        body["deadLetterPolicy"] = json!({
            "deadLetterTopic": topic_path(project, plan, &dead.dead_letter_topic)?,
            "maxDeliveryAttempts": dead.max_delivery_attempts,
        });
    }
    if let Some(filter) = &s.filter {
        body["filter"] = json!(filter);
    }
    Ok(body)
}

/// Creates the plan's topics and subscriptions on the emulator at `endpoint`, in `project`, as
/// the Terraform module would.
pub fn provision(endpoint: &str, project: &str, plan: &GcpPlan) -> Result<Emulator> {
    let emulator =
        Emulator { base: endpoint.trim_end_matches('/').to_string(), project: project.to_string() };
    for t in &plan.topics {
        emulator.put(&format!("topics/{}", t.name), &json!({ "labels": t.labels }))?;
    }
    for s in &plan.subscriptions {
        emulator
            .put(&format!("subscriptions/{}", s.name), &subscription_body(project, s, plan)?)?;
    }
    Ok(emulator)
}

pub fn run(
    endpoint: &str,
    model: &AppModel,
    plan: &GcpPlan,
    runtime: &[RuntimeSubscription],
) -> Result<()> {
    let emulator = provision(endpoint, PROJECT, plan)?;
    println!(
        "created {} topics and {} subscriptions (with dead-letter topics and their pull subscriptions)",
        plan.topics.len(),
        plan.subscriptions.len()
    );

    // Every subscription of a topic receives what is published to it.
    let run = format!("run{}", std::process::id());
    let mut published = 0;
    for t in plan.topics.iter().filter(|t| t.dead_letter_of.is_none()) {
        let topic = model.topics.iter().find(|m| m.name == t.topic).context("its topic")?;
        let attributes: BTreeMap<String, String> =
            topic.attributes.iter().map(|a| (a.clone(), format!("v-{a}"))).collect();
        let key = topic.ordering_attribute.as_ref().map(|a| attributes[a].clone());
        emulator.publish(&t.name, &format!("{run}:{}", t.topic), &attributes, key.as_deref())?;
        published += 1;
    }
    let mut problems = Vec::new();
    for s in plan.subscriptions.iter().filter(|s| !s.dead_letter) {
        let planned = plan.topic(&s.topic);
        let want = format!("{run}:{}", planned.map_or("", |t| t.topic.as_str()));
        let got = emulator.collect(&s.name, 1, Duration::from_secs(10))?;
        if got != [want.clone()] {
            problems.push(format!("{}: received {got:?}, expected [{want:?}]", s.name));
        }
    }
    ensure!(problems.is_empty(), "delivery differs:\n{}", problems.join("\n"));
    println!("delivery: {published} messages, each received by every subscription of its topic");

    dead_letter(&emulator, plan, runtime)?;
    ordering(&emulator, plan)?;
    Ok(())
}

/// Nacks a message on an unordered subscription until the emulator dead-letters it.
fn dead_letter(emulator: &Emulator, plan: &GcpPlan, runtime: &[RuntimeSubscription]) -> Result<()> {
    let s = plan
        .subscriptions
        .iter()
        .filter(|s| !s.dead_letter && !s.enable_message_ordering && s.dead_letter_policy.is_some())
        .min_by_key(|s| s.dead_letter_policy.as_ref().map_or(u64::MAX, |d| d.max_delivery_attempts))
        .context("an unordered subscription with a dead-letter policy")?;
    let policy = s.dead_letter_policy.as_ref().context("its dead-letter policy")?;
    let attempts = policy.max_delivery_attempts;
    let expected = runtime
        .iter()
        .find(|r| r.source == format!("google_pubsub_subscription.{}", s.address))
        .map(|r| u64::from(r.max_delivery_attempts));
    ensure!(
        expected == Some(attempts),
        "the runtime config and the subscription disagree on attempts"
    );
    let topic = plan.topic(&s.topic).context("its topic")?;
    let dead_topic = plan.topic(&policy.dead_letter_topic).context("its dead-letter topic")?;
    let keeper = plan
        .subscriptions
        .iter()
        .find(|k| k.dead_letter && k.topic == policy.dead_letter_topic)
        .context("the pull subscription on the dead-letter topic")?;
    let body = format!("poison{}", std::process::id());
    emulator.publish(&topic.name, &body, &BTreeMap::new(), None)?;
    let mut deliveries = 0;
    let started = Instant::now();
    // The emulator honours the retry policy's backoff between deliveries.
    let patience = Duration::from_secs(30 + 30 * attempts);
    while started.elapsed() < patience {
        let pulled = emulator.pull(&s.name)?;
        let ours: Vec<String> =
            pulled.iter().filter(|(_, d)| *d == body).map(|(id, _)| id.clone()).collect();
        let others: Vec<String> =
            pulled.iter().filter(|(_, d)| *d != body).map(|(id, _)| id.clone()).collect();
        emulator.ack(&s.name, &others)?;
        if !ours.is_empty() {
            deliveries += ours.len() as u64;
            emulator.nack(&s.name, &ours)?;
        }
        let kept = emulator.collect(&keeper.name, 1, Duration::from_millis(200))?;
        if kept.contains(&body) {
            ensure!(
                deliveries == attempts,
                "dead-lettered after {deliveries} deliveries; max_delivery_attempts is {attempts}"
            );
            println!(
                "dead-lettering: a message nacked {deliveries} times on {} moved to {} and was kept by {} ({:.0} s of backoff)",
                s.name,
                dead_topic.name,
                keeper.name,
                started.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("after {deliveries} deliveries, nothing reached {}", keeper.name)
}

/// Messages with one ordering key arrive on an ordered subscription in publish order.
fn ordering(emulator: &Emulator, plan: &GcpPlan) -> Result<()> {
    let Some(s) = plan.subscriptions.iter().find(|s| s.enable_message_ordering && !s.dead_letter)
    else {
        println!("ordering: the app has no ordered topic");
        return Ok(());
    };
    let topic = plan.topic(&s.topic).context("its topic")?;
    let sent: Vec<String> = (0..8).map(|i| format!("ordered{}-{i}", std::process::id())).collect();
    for body in &sent {
        emulator.publish(&topic.name, body, &BTreeMap::new(), Some("customer-1"))?;
    }
    let got = emulator.collect(&s.name, sent.len(), Duration::from_secs(20))?;
    ensure!(got == sent, "ordered subscription {} received {got:?}, published {sent:?}", s.name);
    println!(
        "ordering: {} messages with one ordering key arrived on {} in publish order",
        sent.len(),
        s.name
    );
    Ok(())
}
