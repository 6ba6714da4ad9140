//! Finds, before serving, every SNS topic and SQS queue the broker will use, and checks each:
//! that it exists and the credentials may read it, that FIFO is what the topic's semantics
//! need, and that each queue has the redrive policy that names its dead-letter queue. Each
//! error names the busbar topic or subscription and the AWS resource.

use std::collections::BTreeMap;

use aws_sdk_sqs::types::QueueAttributeName;
use busbar_model::locations::AwsLocations;
use busbar_runtime::{BrokerError, RuntimeConfig};

use crate::Clients;
use crate::errors::at_start;

/// An SNS topic, found.
#[derive(Clone, Debug)]
pub(crate) struct Topic {
    pub arn: String,
    pub fifo: bool,
}

/// A subscription's queue, found.
#[derive(Clone, Debug)]
pub(crate) struct Queue {
    pub url: String,
    pub dead_letter_url: String,
    pub fifo: bool,
    /// The redrive policy's `maxReceiveCount`.
    pub max_receive_count: u32,
}

/// What the broker serves: the topics it publishes to, the subscriptions it consumes.
pub(crate) struct Found {
    pub topics: BTreeMap<String, Topic>,
    pub queues: BTreeMap<(String, String), Queue>,
}

/// The topics and subscriptions of `wanted`, found and checked.
pub(crate) async fn resolve(
    clients: &Clients,
    config: &RuntimeConfig,
    locations: &AwsLocations,
    topics: &[String],
    subscriptions: &[(String, String)],
) -> Result<Found, BrokerError> {
    let mut found = Found { topics: BTreeMap::new(), queues: BTreeMap::new() };
    let mut account = None;
    for name in topics {
        let t = config
            .topic(name)
            .ok_or_else(|| BrokerError::Failed(format!("there is no topic `{name}`")))?;
        let located = locations.topics.get(name).ok_or_else(|| {
            BrokerError::Failed(format!(
                "where topic `{name}` is on SNS is not known (no name or ARN for it)"
            ))
        })?;
        let arn = if located.starts_with("arn:") {
            located.clone()
        } else {
            if account.is_none() {
                account = Some(caller_account(clients).await?);
            }
            let region = clients.region.as_deref().ok_or_else(|| {
                BrokerError::Failed(
                    "no AWS region: set AWS_REGION, or a region in the profile".into(),
                )
            })?;
            format!("arn:aws:sns:{region}:{}:{located}", account.as_deref().unwrap_or_default())
        };
        let attributes = clients
            .sns
            .get_topic_attributes()
            .topic_arn(&arn)
            .send()
            .await
            .map_err(|e| at_start(format_args!("topic `{name}` (SNS topic {arn})"), &e))?;
        let fifo =
            attributes.attributes().and_then(|a| a.get("FifoTopic")).is_some_and(|v| v == "true");
        let wants_fifo = t.ordering_attribute.is_some() || t.exactly_once();
        if fifo != wants_fifo {
            return Err(BrokerError::Failed(format!(
                "topic `{name}` (SNS topic {arn}) is {}a FIFO topic, but the code declares it {}",
                if fifo { "" } else { "not " },
                if wants_fifo {
                    "ordered or exactly-once"
                } else {
                    "neither ordered nor exactly-once"
                }
            )));
        }
        found.topics.insert(name.clone(), Topic { arn, fifo });
    }
    for (topic, subscription) in subscriptions {
        config.subscription(topic, subscription).ok_or_else(|| {
            BrokerError::UnknownSubscription {
                topic: topic.clone(),
                subscription: subscription.clone(),
            }
        })?;
        let queue = queue(clients, locations, topic, subscription).await?;
        found.queues.insert((topic.clone(), subscription.clone()), queue);
    }
    Ok(found)
}

/// The account of the credentials (for topic ARNs from names).
async fn caller_account(clients: &Clients) -> Result<String, BrokerError> {
    let identity = clients
        .sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| at_start("checking the AWS credentials (sts:GetCallerIdentity)", &e))?;
    identity
        .account()
        .map(str::to_string)
        .ok_or_else(|| BrokerError::Failed("sts:GetCallerIdentity gave no account".into()))
}

/// A subscription's queue: its URL, its attributes, and its dead-letter queue.
async fn queue(
    clients: &Clients,
    locations: &AwsLocations,
    topic: &str,
    subscription: &str,
) -> Result<Queue, BrokerError> {
    let what = format!("subscription `{subscription}` of `{topic}`");
    let located = locations.queue(topic, subscription).ok_or_else(|| {
        BrokerError::Failed(format!(
            "where the queue of {what} is is not known (no name or URL for it)"
        ))
    })?;
    let url = if located.starts_with("https://") || located.starts_with("http://") {
        located.to_string()
    } else {
        let got = clients
            .sqs
            .get_queue_url()
            .queue_name(located)
            .send()
            .await
            .map_err(|e| at_start(format_args!("{what} (SQS queue {located})"), &e))?;
        got.queue_url()
            .map(str::to_string)
            .ok_or_else(|| BrokerError::Failed(format!("{what}: SQS gave no URL for {located}")))?
    };
    let got = clients
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .map_err(|e| at_start(format_args!("{what} (SQS queue {url})"), &e))?;
    let attributes = got.attributes().cloned().unwrap_or_default();
    let fifo = attributes.get(&QueueAttributeName::FifoQueue).is_some_and(|v| v == "true");
    let redrive = attributes.get(&QueueAttributeName::RedrivePolicy).ok_or_else(|| {
        BrokerError::Failed(format!(
            "{what} (SQS queue {url}) has no redrive policy: its dead letters would have nowhere to go"
        ))
    })?;
    let (dead_letter_arn, max_receive_count) = redrive_policy(redrive).ok_or_else(|| {
        BrokerError::Failed(format!(
            "{what} (SQS queue {url}): its redrive policy `{redrive}` is not one SQS writes"
        ))
    })?;
    // A dead-letter queue is in the queue's account and region: only the name differs.
    let dead_name = dead_letter_arn.rsplit(':').next().unwrap_or_default();
    let dead_letter_url = match url.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{dead_name}"),
        None => return Err(BrokerError::Failed(format!("{what}: `{url}` is not a queue URL"))),
    };
    Ok(Queue { url, dead_letter_url, fifo, max_receive_count })
}

/// The dead-letter queue's ARN and `maxReceiveCount` of a redrive policy.
fn redrive_policy(text: &str) -> Option<(String, u32)> {
    let policy: serde_json::Value = serde_json::from_str(text).ok()?;
    let arn = policy.get("deadLetterTargetArn")?.as_str()?.to_string();
    let count = policy.get("maxReceiveCount")?;
    // SQS writes it as a number or a string, depending on who set it.
    let count = count.as_u64().or_else(|| count.as_str()?.parse().ok())?;
    Some((arn, u32::try_from(count).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_redrive_policy_with_the_count_as_a_number_or_a_string() {
        let arn = "arn:aws:sqs:us-east-1:1:q--dlq";
        let number = format!("{{\"deadLetterTargetArn\":\"{arn}\",\"maxReceiveCount\":4}}");
        let string = format!("{{\"deadLetterTargetArn\":\"{arn}\",\"maxReceiveCount\":\"4\"}}");
        assert_eq!(redrive_policy(&number), Some((arn.to_string(), 4)));
        assert_eq!(redrive_policy(&string), Some((arn.to_string(), 4)));
        assert_eq!(redrive_policy("{}"), None);
    }
}
