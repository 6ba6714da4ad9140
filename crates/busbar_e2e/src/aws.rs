//! The AWS run: the plan's topics, queues, dead-letter queues, queue policies and subscriptions
//! created on an SNS/SQS endpoint; every topic published to with message attributes; exactly
//! the queues whose filters accept a message receive it; a message received `maxReceiveCount`
//! times moves to its dead-letter queue.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use aws_sdk_sns::types::MessageAttributeValue;
use aws_sdk_sqs::types::QueueAttributeName;
use busbar_model::{AppModel, AttributeType, Filter, Topic};
use busbar_plan::{AwsPlan, SqsQueue};

struct Endpoints {
    sns: aws_sdk_sns::Client,
    sqs: aws_sdk_sqs::Client,
    iam: aws_sdk_iam::Client,
}

/// What [`provision`] created: ARNs by Terraform address (`aws_sns_topic.x`), queues by
/// Terraform address (`aws_sqs_queue.x`).
pub struct Provisioned {
    endpoints: Endpoints,
    pub topic_arns: BTreeMap<String, String>,
    pub queues: BTreeMap<String, Created>,
}

/// A queue as created: its URL and ARN.
#[derive(Clone, Debug)]
pub struct Created {
    pub url: String,
    pub arn: String,
}

pub async fn run(endpoint: &str, model: &AppModel, plan: &AwsPlan) -> Result<()> {
    let Provisioned { endpoints: aws, topic_arns, queues } = provision(endpoint, plan).await?;
    println!(
        "created {} topics, {} queues (with dead-letter queues), {} queue policies, {} subscriptions, {} IAM policies",
        plan.topics.len(),
        plan.queues.len(),
        plan.queue_policies.len(),
        plan.subscriptions.len(),
        plan.policies.len()
    );

    let delivered = check_delivery(&aws, model, plan, &topic_arns, &queues).await?;
    println!(
        "delivery: {delivered} messages, each received by exactly the queues whose filters accept it"
    );
    let (queue, count) = check_dead_letter(&aws, model, plan, &topic_arns, &queues).await?;
    println!(
        "dead-lettering: a message received {count} times from {queue} moved to its dead-letter queue"
    );
    Ok(())
}

/// Creates a plan's resources on an SNS/SQS/IAM endpoint (moto) as Terraform would: topics,
/// queues with their redrive and redrive-allow policies, queue policies, subscriptions with
/// their filter policies, and one IAM policy per service (checked to read back the same).
pub async fn provision(endpoint: &str, plan: &AwsPlan) -> Result<Provisioned> {
    let credentials = aws_sdk_sns::config::Credentials::new("e2e", "e2e", None, None, "busbar-e2e");
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(credentials)
        .load()
        .await;
    let aws = Endpoints {
        sns: aws_sdk_sns::Client::new(&config),
        sqs: aws_sdk_sqs::Client::new(&config),
        iam: aws_sdk_iam::Client::new(&config),
    };

    // Topics.
    let mut topic_arns = BTreeMap::new();
    for t in &plan.topics {
        let mut create = aws.sns.create_topic().name(&t.name);
        if t.fifo {
            create = create.attributes("FifoTopic", "true");
        }
        create = create.attributes("KmsMasterKeyId", &t.kms_master_key_id);
        let arn = create.send().await.with_context(|| format!("creating topic {}", t.name))?;
        let arn = arn.topic_arn().context("no topic ARN")?.to_string();
        topic_arns.insert(format!("aws_sns_topic.{}", t.address), arn);
    }
    // Dead-letter queues first: the queues' redrive policies name them.
    let mut queues: BTreeMap<String, Created> = BTreeMap::new();
    let (dlqs, sources): (Vec<&SqsQueue>, Vec<&SqsQueue>) =
        plan.queues.iter().partition(|q| q.dead_letter);
    for q in dlqs.into_iter().chain(sources) {
        let created = create_queue(&aws, q, &queues).await?;
        queues.insert(format!("aws_sqs_queue.{}", q.address), created);
    }
    // Redrive-allow policies of the DLQs, now that their sources exist.
    for q in plan.queues.iter().filter(|q| q.dead_letter) {
        let Some(source) = &q.redrive_allow_source else { continue };
        let policy = serde_json::json!({
            "redrivePermission": "byQueue",
            "sourceQueueArns": [queues[source].arn],
        });
        aws.sqs
            .set_queue_attributes()
            .queue_url(&queues[&format!("aws_sqs_queue.{}", q.address)].url)
            .attributes(QueueAttributeName::RedriveAllowPolicy, policy.to_string())
            .send()
            .await
            .with_context(|| format!("redrive-allow policy of {}", q.name))?;
    }
    // Queue policies: only the subscription's topic may send.
    for p in &plan.queue_policies {
        let queue = &queues[&p.queue];
        let policy = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "TopicDelivers",
                "Effect": "Allow",
                "Principal": { "Service": "sns.amazonaws.com" },
                "Action": "sqs:SendMessage",
                "Resource": queue.arn,
                "Condition": { "ArnEquals": { "aws:SourceArn": topic_arns[&p.topic] } },
            }],
        });
        aws.sqs
            .set_queue_attributes()
            .queue_url(&queue.url)
            .attributes(QueueAttributeName::Policy, policy.to_string())
            .send()
            .await
            .context("setting a queue policy")?;
    }
    // Subscriptions.
    for s in &plan.subscriptions {
        let mut subscribe = aws
            .sns
            .subscribe()
            .topic_arn(&topic_arns[&s.topic])
            .protocol("sqs")
            .endpoint(&queues[&s.queue].arn)
            .return_subscription_arn(true)
            .attributes("RawMessageDelivery", s.raw_message_delivery.to_string());
        if let (Some(policy), Some(scope)) = (&s.filter_policy, &s.filter_policy_scope) {
            subscribe =
                subscribe.attributes("FilterPolicy", policy).attributes("FilterPolicyScope", scope);
        }
        subscribe.send().await.with_context(|| format!("subscribing {}", s.queue))?;
    }
    // One IAM policy per service, its statements' resources resolved to the created ARNs.
    for p in &plan.policies {
        let statements: Vec<serde_json::Value> = p
            .statements
            .iter()
            .map(|s| {
                let resources: Vec<&String> = s
                    .resources
                    .iter()
                    .map(|r| topic_arns.get(r).or_else(|| queues.get(r).map(|q| &q.arn)))
                    .collect::<Option<_>>()
                    .context("a statement names a resource that was not created")?;
                ensure!(
                    resources.iter().copied().chain(&s.actions).all(|v| !v.contains('*')),
                    "wildcard in {}",
                    s.sid
                );
                Ok(serde_json::json!({
                    "Sid": s.sid,
                    "Effect": "Allow",
                    "Action": s.actions,
                    "Resource": resources,
                }))
            })
            .collect::<Result<_>>()?;
        let document = serde_json::json!({ "Version": "2012-10-17", "Statement": statements });
        let created = aws
            .iam
            .create_policy()
            .policy_name(&p.name)
            .policy_document(document.to_string())
            .send()
            .await
            .with_context(|| format!("creating IAM policy {}", p.name))?;
        let arn = created.policy().and_then(|p| p.arn()).context("no policy ARN")?;
        let version = aws.iam.get_policy_version().policy_arn(arn).version_id("v1").send().await?;
        let stored = version.policy_version().and_then(|v| v.document()).unwrap_or_default();
        // IAM returns documents URL-encoded (RFC 3986); moto returns them as they were.
        let stored = percent_encoding::percent_decode_str(stored).decode_utf8()?;
        let stored: serde_json::Value =
            serde_json::from_str(&stored).context("the stored policy is JSON")?;
        ensure!(stored == document, "IAM stored a different policy for {}: {stored}", p.name);
    }
    Ok(Provisioned { endpoints: aws, topic_arns, queues })
}

async fn create_queue(
    aws: &Endpoints,
    q: &SqsQueue,
    made: &BTreeMap<String, Created>,
) -> Result<Created> {
    let mut create = aws
        .sqs
        .create_queue()
        .queue_name(&q.name)
        .attributes(QueueAttributeName::VisibilityTimeout, q.visibility_timeout_seconds.to_string())
        .attributes(
            QueueAttributeName::MessageRetentionPeriod,
            q.message_retention_seconds.to_string(),
        )
        .attributes(
            QueueAttributeName::SqsManagedSseEnabled,
            q.sqs_managed_sse_enabled.to_string(),
        );
    if q.fifo {
        create = create.attributes(QueueAttributeName::FifoQueue, "true");
    }
    if let Some(redrive) = &q.redrive {
        let dlq = made.get(&redrive.dead_letter_queue).context("DLQ created first")?;
        let policy = serde_json::json!({
            "deadLetterTargetArn": dlq.arn,
            "maxReceiveCount": redrive.max_receive_count,
        });
        create = create.attributes(QueueAttributeName::RedrivePolicy, policy.to_string());
    }
    let url = create.send().await.with_context(|| format!("creating queue {}", q.name))?;
    let url = url.queue_url().context("no queue URL")?.to_string();
    let attributes = aws
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await?;
    let arn = attributes
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .context("no queue ARN")?
        .clone();
    Ok(Created { url, arn })
}

/// A test message: its body (unique) and attributes.
struct Message {
    body: String,
    attributes: BTreeMap<String, String>,
}

/// Whether a subscription's filter accepts these attribute values.
fn accepts(filter: Option<&Filter>, attributes: &BTreeMap<String, String>, topic: &Topic) -> bool {
    filter.is_none_or(|f| {
        f.iter().all(|(key, values)| {
            attributes.get(key).is_some_and(|v| {
                let numeric = topic.attribute_types.get(key) == Some(&AttributeType::Number);
                values.iter().any(|want| {
                    if numeric {
                        want.parse::<f64>().ok() == v.parse::<f64>().ok()
                    } else {
                        want == v
                    }
                })
            })
        })
    })
}

/// A message for `topic` whose attributes match no filter value, except that `filter`'s
/// attributes take their first accepted value (so that filter accepts it).
fn message(topic: &Topic, body: String, filter: Option<&Filter>) -> Message {
    let mut attributes: BTreeMap<String, String> = topic
        .attributes
        .iter()
        .map(|a| {
            let value = match topic.attribute_types.get(a) {
                Some(AttributeType::Number) => "987654".to_string(),
                Some(AttributeType::Boolean) => "false".to_string(),
                _ => format!("none-{a}"),
            };
            (a.clone(), value)
        })
        .collect();
    for (key, values) in filter.into_iter().flatten() {
        if let Some(first) = values.first() {
            attributes.insert(key.clone(), first.clone());
        }
    }
    Message { body, attributes }
}

/// Messages for a topic: one that matches no filter, and one per filtered subscription that
/// its filter accepts.
fn messages(topic: &Topic, run: &str) -> Vec<Message> {
    let mut out = vec![message(topic, format!("{run}:{}:plain", topic.name), None)];
    for sub in &topic.subscriptions {
        if let Some(filter) = &sub.settings.filter {
            let body = format!("{run}:{}:for-{}", topic.name, sub.name);
            out.push(message(topic, body, Some(filter)));
        }
    }
    out
}

async fn publish(aws: &Endpoints, arn: &str, topic: &Topic, fifo: bool, m: &Message) -> Result<()> {
    let mut publish = aws.sns.publish().topic_arn(arn).message(&m.body);
    for (name, value) in &m.attributes {
        let data_type = match topic.attribute_types.get(name) {
            Some(AttributeType::Number) => "Number",
            _ => "String",
        };
        let attribute =
            MessageAttributeValue::builder().data_type(data_type).string_value(value).build()?;
        publish = publish.message_attributes(name, attribute);
    }
    if fifo {
        let group = topic
            .ordering_attribute
            .as_ref()
            .and_then(|a| m.attributes.get(a))
            .cloned()
            .unwrap_or_else(|| m.body.clone());
        publish =
            publish.message_group_id(group).message_deduplication_id(m.body.replace(':', "-"));
    }
    publish.send().await.with_context(|| format!("publishing to {}", topic.name))?;
    Ok(())
}

/// Every message body waiting in a queue (received, then left invisible).
async fn drain(aws: &Endpoints, url: &str) -> Result<Vec<String>> {
    let mut bodies = Vec::new();
    for _ in 0..20 {
        let got = aws
            .sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(600)
            .wait_time_seconds(0)
            .send()
            .await?;
        let messages = got.messages();
        if messages.is_empty() {
            break;
        }
        for m in messages {
            bodies.push(m.body().unwrap_or_default().to_string());
            if let Some(handle) = m.receipt_handle() {
                aws.sqs.delete_message().queue_url(url).receipt_handle(handle).send().await?;
            }
        }
    }
    bodies.sort();
    Ok(bodies)
}

fn queue_of<'a>(
    plan: &'a AwsPlan,
    topic: &str,
    subscription: &str,
    dead_letter: bool,
) -> Result<&'a SqsQueue> {
    plan.queues
        .iter()
        .find(|q| {
            q.topic == topic && q.subscription == subscription && q.dead_letter == dead_letter
        })
        .with_context(|| format!("no queue for {topic}/{subscription}"))
}

async fn check_delivery(
    aws: &Endpoints,
    model: &AppModel,
    plan: &AwsPlan,
    topic_arns: &BTreeMap<String, String>,
    queues: &BTreeMap<String, Created>,
) -> Result<usize> {
    let run = format!("run{}", std::process::id());
    let mut expected: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    let mut sent_to: BTreeMap<&str, usize> = BTreeMap::new();
    for topic in &model.topics {
        let planned =
            plan.topics.iter().find(|t| t.topic == topic.name).context("planned topic")?;
        let arn = &topic_arns[&format!("aws_sns_topic.{}", planned.address)];
        for m in messages(topic, &run) {
            publish(aws, arn, topic, planned.fifo, &m).await?;
            *sent_to.entry(&topic.name).or_default() += 1;
            for sub in &topic.subscriptions {
                let set = expected.entry((topic.name.clone(), sub.name.clone())).or_default();
                if accepts(sub.settings.filter.as_ref(), &m.attributes, topic) {
                    set.insert(m.body.clone());
                }
            }
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut problems = Vec::new();
    let mut filtered_out = 0;
    for ((topic, sub), want) in &expected {
        let queue = queue_of(plan, topic, sub, false)?;
        let got: BTreeSet<String> =
            drain(aws, &queues[&format!("aws_sqs_queue.{}", queue.address)].url)
                .await?
                .into_iter()
                .collect();
        filtered_out += sent_to.get(topic.as_str()).copied().unwrap_or(0) - want.len();
        if &got != want {
            problems.push(format!("{topic}/{sub}: received {got:?}, expected {want:?}"));
        }
        let dlq = queue_of(plan, topic, sub, true)?;
        let in_dlq = drain(aws, &queues[&format!("aws_sqs_queue.{}", dlq.address)].url).await?;
        if !in_dlq.is_empty() {
            problems.push(format!("{topic}/{sub}: dead-letter queue holds {in_dlq:?}"));
        }
    }
    ensure!(problems.is_empty(), "delivery differs from the plan:\n{}", problems.join("\n"));
    ensure!(filtered_out > 0, "no message was filtered out: the filters were not exercised");
    println!("filters kept {filtered_out} deliveries from queues whose filter rejects them");
    Ok(sent_to.values().sum())
}

async fn check_dead_letter(
    aws: &Endpoints,
    model: &AppModel,
    plan: &AwsPlan,
    topic_arns: &BTreeMap<String, String>,
    queues: &BTreeMap<String, Created>,
) -> Result<(String, u64)> {
    // The subscription with the fewest deliveries before dead-lettering.
    let queue = plan
        .queues
        .iter()
        .filter(|q| !q.dead_letter)
        .min_by_key(|q| q.redrive.as_ref().map_or(u64::MAX, |r| r.max_receive_count))
        .context("a queue")?;
    let max = queue.redrive.as_ref().context("a redrive policy")?.max_receive_count;
    let topic = model.topics.iter().find(|t| t.name == queue.topic).context("its topic")?;
    let sub = topic
        .subscriptions
        .iter()
        .find(|s| s.name == queue.subscription)
        .context("its subscription")?;
    let planned = plan.topics.iter().find(|t| t.topic == topic.name).context("planned topic")?;
    // A message its filter accepts.
    let poison =
        message(topic, format!("poison{}", std::process::id()), sub.settings.filter.as_ref());
    publish(
        aws,
        &topic_arns[&format!("aws_sns_topic.{}", planned.address)],
        topic,
        planned.fifo,
        &poison,
    )
    .await?;
    let url = &queues[&format!("aws_sqs_queue.{}", queue.address)].url;
    let dlq = queue_of(plan, &topic.name, &sub.name, true)?;
    let dlq_url = &queues[&format!("aws_sqs_queue.{}", dlq.address)].url;
    let mut receives = 0;
    for _ in 0..(max * 2 + 5) {
        let got = aws
            .sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(1)
            .visibility_timeout(0)
            .send()
            .await?;
        // Received and not deleted: a failed delivery.
        receives +=
            got.messages().iter().filter(|m| m.body() == Some(poison.body.as_str())).count() as u64;
        if got.messages().is_empty() {
            break;
        }
    }
    let in_dlq = drain(aws, dlq_url).await?;
    ensure!(
        in_dlq == vec![poison.body.clone()],
        "after {receives} receives, the dead-letter queue of {} holds {in_dlq:?}",
        queue.name
    );
    ensure!(
        receives == max,
        "the message moved after {receives} receives; maxReceiveCount is {max}"
    );
    Ok((queue.name.clone(), receives))
}
