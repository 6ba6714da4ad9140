//! AsyncAPI 3.0 documents of an app, built as data from the model (and the plans, for the
//! cloud bindings): each topic a channel whose message carries the topic's schema (attributes
//! also as headers); one `send` operation per publishing service and one `receive` operation
//! per subscription, with its settings under `x-busbar`; the AWS SNS/SQS and Google Pub/Sub
//! bindings AsyncAPI defines, with the names the plans give. Named types of every topic share
//! `components/schemas` (a name used by two different types is numbered). Deterministic:
//! objects are sorted maps.

mod names;

use std::collections::BTreeMap;

use busbar_model::schema::{Dialect, MessageSchema};
use busbar_model::{AppModel, AttributeType, Subscription, Topic};
use busbar_plan::{AwsPlan, GcpPlan};
use serde_json::{Map, Value, json};

/// The AsyncAPI version of every document.
pub const ASYNCAPI_VERSION: &str = "3.0.0";
const SNS_BINDING: &str = "0.1.0";
const SQS_BINDING: &str = "0.2.0";
const GOOGLE_PUBSUB_BINDING: &str = "0.2.0";

/// The document's `info`.
#[derive(Clone, Debug)]
pub struct Info {
    pub title: String,
    pub version: String,
}

/// The plans whose names go into the bindings (none: no bindings).
#[derive(Clone, Copy, Debug, Default)]
pub struct Bindings<'a> {
    pub aws: Option<&'a AwsPlan>,
    pub gcp: Option<&'a GcpPlan>,
}

/// The AsyncAPI document of an app.
pub fn document(model: &AppModel, info: &Info, bindings: Bindings<'_>) -> Value {
    let names = names::SchemaNames::of(model);
    let mut channels = Map::new();
    let mut operations = Map::new();
    let mut messages = Map::new();
    for topic in &model.topics {
        let message_id = topic.name.clone();
        messages.insert(message_id.clone(), message(topic, &names, bindings));
        channels.insert(topic.name.clone(), channel(topic, &message_id, bindings));
        let message_ref =
            json!({ "$ref": format!("#/channels/{}/messages/{message_id}", pointer(&topic.name)) });
        for publisher in &topic.publishers {
            let op = json!({
                "action": "send",
                "channel": { "$ref": format!("#/channels/{}", pointer(&topic.name)) },
                "messages": [message_ref],
                "summary": format!("{} publishes to {}", publisher.service, topic.name),
                "x-busbar": { "service": publisher.service, "via": publisher.via },
            });
            operations.insert(format!("send.{}.{}", topic.name, publisher.service), op);
        }
        for sub in &topic.subscriptions {
            let op = receive(topic, sub, &message_ref, bindings);
            operations.insert(format!("receive.{}.{}", topic.name, sub.name), op);
        }
    }
    let mut components = Map::new();
    let schemas = names.rendered(model);
    if !schemas.is_empty() {
        components.insert("schemas".into(), Value::Object(schemas));
    }
    if !messages.is_empty() {
        components.insert("messages".into(), Value::Object(messages));
    }
    let mut doc = Map::new();
    doc.insert("asyncapi".into(), ASYNCAPI_VERSION.into());
    doc.insert(
        "info".into(),
        json!({
            "title": info.title,
            "version": info.version,
            "description": "The app's topics, their message schemas, publishers and subscriptions, read from its code by busbar.",
        }),
    );
    doc.insert("defaultContentType".into(), busbar_model::schema::CONTENT_TYPE.into());
    doc.insert("channels".into(), Value::Object(channels));
    doc.insert("operations".into(), Value::Object(operations));
    doc.insert("components".into(), Value::Object(components));
    Value::Object(doc)
}

/// The document as YAML.
pub fn to_yaml(doc: &Value) -> String {
    serde_yaml_ng::to_string(doc).unwrap_or_default()
}

/// The document as pretty JSON with a final newline.
pub fn to_json(doc: &Value) -> String {
    let mut text = serde_json::to_string_pretty(doc).unwrap_or_default();
    text.push('\n');
    text
}

/// A key as a JSON pointer token (`~` and `/` escaped).
fn pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn message(topic: &Topic, names: &names::SchemaNames, bindings: Bindings<'_>) -> Value {
    let schema = &topic.schema;
    let refs = |local: &str| format!("#/components/schemas/{}", names.global(&topic.name, local));
    let dialect = Dialect { refs: &refs, draft07: true };
    let payload = schema.root.as_ref().map_or(json!({}), |root| schema.render_in(root, &dialect));
    let mut m = Map::new();
    m.insert("name".into(), schema.title.clone().into());
    m.insert("title".into(), format!("{} message", topic.name).into());
    m.insert("contentType".into(), busbar_model::schema::CONTENT_TYPE.into());
    m.insert("payload".into(), payload);
    if let Some(doc) = &topic.doc {
        m.insert("description".into(), doc.clone().into());
    }
    if let Some(headers) = headers(schema, &dialect) {
        m.insert("headers".into(), headers);
    }
    if bindings.gcp.is_some()
        && let Some(key) = &topic.ordering_attribute
    {
        m.insert(
            "bindings".into(),
            json!({ "googlepubsub": { "orderingKey": key, "bindingVersion": GOOGLE_PUBSUB_BINDING } }),
        );
    }
    Value::Object(m)
}

/// The attributes, as the headers (message attributes) every message carries: each with its
/// property's schema (of the first branch that has it).
fn headers(schema: &MessageSchema, dialect: &Dialect<'_>) -> Option<Value> {
    let attributes = schema.attributes()?;
    if attributes.is_empty() {
        return None;
    }
    let branches = schema.branches().unwrap_or_default();
    let mut properties = Map::new();
    let mut required = Vec::new();
    for (name, info) in &attributes {
        let declared = branches
            .iter()
            .find_map(|o| o.properties.get(name).filter(|p| p.attribute.is_some()))
            .map(|p| schema.render_in(&p.shape, dialect));
        let shape = declared.unwrap_or_else(|| match info.kind {
            AttributeType::String => json!({ "type": "string" }),
            AttributeType::Number => json!({ "type": "number" }),
            AttributeType::Boolean => json!({ "type": "boolean" }),
            AttributeType::Other => json!({}),
        });
        properties.insert(name.clone(), shape);
        if info.required {
            required.push(Value::from(name.clone()));
        }
    }
    let mut h = Map::new();
    h.insert("type".into(), "object".into());
    h.insert("properties".into(), Value::Object(properties));
    if !required.is_empty() {
        h.insert("required".into(), required.into());
    }
    Some(Value::Object(h))
}

fn channel(topic: &Topic, message_id: &str, bindings: Bindings<'_>) -> Value {
    let mut c = Map::new();
    c.insert("address".into(), topic.name.clone().into());
    c.insert(
        "messages".into(),
        json!({ message_id: { "$ref": format!("#/components/messages/{}", pointer(message_id)) } }),
    );
    if let Some(doc) = &topic.doc {
        c.insert("description".into(), doc.clone().into());
    }
    let mut b = Map::new();
    if let Some(sns) = bindings.aws.and_then(|p| p.topics.iter().find(|t| t.topic == topic.name)) {
        let ordering = if sns.fifo {
            json!({ "type": "FIFO", "contentBasedDeduplication": false })
        } else {
            json!({ "type": "standard" })
        };
        let mut binding = Map::new();
        binding.insert("name".into(), sns.name.clone().into());
        binding.insert("ordering".into(), ordering);
        if !sns.tags.is_empty() {
            binding.insert("tags".into(), json!(sns.tags));
        }
        binding.insert("bindingVersion".into(), SNS_BINDING.into());
        b.insert("sns".into(), Value::Object(binding));
    }
    // Google Pub/Sub's channel binding requires `schemaSettings` (a Pub/Sub schema resource,
    // Avro or Protocol Buffers): busbar creates none, so the topic's Pub/Sub name is under
    // `x-busbar` and only the message binding (the ordering key) is given.
    if let Some(gcp) = bindings.gcp
        && let Some(t) =
            gcp.topics.iter().find(|t| t.topic == topic.name && t.dead_letter_of.is_none())
    {
        c.insert("x-busbar".into(), json!({ "googlePubsubTopic": t.name }));
    }
    if !b.is_empty() {
        c.insert("bindings".into(), Value::Object(b));
    }
    Value::Object(c)
}

fn receive(
    topic: &Topic,
    sub: &Subscription,
    message_ref: &Value,
    bindings: Bindings<'_>,
) -> Value {
    let mut settings = Map::new();
    settings.insert("subscription".into(), sub.name.clone().into());
    settings.insert("service".into(), sub.service.clone().into());
    if let Some(handler) = &sub.handler {
        settings.insert("handler".into(), handler.clone().into());
    }
    settings.insert("ackDeadlineMs".into(), sub.settings.ack_deadline_ms.into());
    settings.insert("messageRetentionMs".into(), sub.settings.message_retention_ms.into());
    settings.insert("retryPolicy".into(), json!(sub.settings.retry_policy));
    if let Some(n) = sub.settings.max_concurrency {
        settings.insert("maxConcurrency".into(), n.into());
    }
    if let Some(filter) = &sub.settings.filter {
        settings.insert("filter".into(), json!(filter));
    }
    settings.insert("deliveryGuarantee".into(), topic.delivery_guarantee.as_str().into());
    if let Some(gcp) = bindings.gcp
        && let Some(s) = gcp.subscriptions.iter().find(|s| {
            s.subscription == sub.name
                && !s.dead_letter
                && gcp.topic(&s.topic).is_some_and(|t| t.topic == topic.name)
        })
    {
        settings.insert("googlePubsubSubscription".into(), s.name.clone().into());
    }
    let mut op = Map::new();
    op.insert("action".into(), "receive".into());
    op.insert("channel".into(), json!({ "$ref": format!("#/channels/{}", pointer(&topic.name)) }));
    op.insert("messages".into(), json!([message_ref]));
    op.insert(
        "summary".into(),
        format!("{} receives {} as {}", sub.service, topic.name, sub.name).into(),
    );
    if let Some(queues) = bindings.aws.map(|p| sqs_queues(p, topic, sub)).filter(|q| !q.is_empty())
    {
        op.insert(
            "bindings".into(),
            json!({ "sqs": { "queues": queues, "bindingVersion": SQS_BINDING } }),
        );
    }
    op.insert("x-busbar".into(), Value::Object(settings));
    Value::Object(op)
}

/// The subscription's queue and its dead-letter queue, as the SQS binding describes queues.
fn sqs_queues(plan: &AwsPlan, topic: &Topic, sub: &Subscription) -> Vec<Value> {
    let mut out = Vec::new();
    let Some(queue) = plan
        .queues
        .iter()
        .find(|q| q.topic == topic.name && q.subscription == sub.name && !q.dead_letter)
    else {
        return out;
    };
    let mut q = BTreeMap::new();
    q.insert("name", json!(queue.name));
    q.insert("fifoQueue", json!(queue.fifo));
    q.insert("visibilityTimeout", json!(queue.visibility_timeout_seconds));
    q.insert("messageRetentionPeriod", json!(queue.message_retention_seconds));
    // A redrive names its dead-letter queue by Terraform address.
    let dlq = queue.redrive.as_ref().and_then(|r| {
        let address = r.dead_letter_queue.strip_prefix("aws_sqs_queue.")?;
        plan.queues.iter().find(|d| d.address == address).map(|d| (d, r.max_receive_count))
    });
    if let Some((dlq, max_receive_count)) = dlq {
        q.insert(
            "redrivePolicy",
            json!({ "deadLetterQueue": { "name": dlq.name }, "maxReceiveCount": max_receive_count }),
        );
    }
    out.push(json!(q));
    if let Some((dlq, _)) = dlq {
        out.push(json!({
            "name": dlq.name,
            "fifoQueue": dlq.fifo,
            "messageRetentionPeriod": dlq.message_retention_seconds,
        }));
    }
    out
}
