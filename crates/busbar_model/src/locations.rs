//! Where an app's topics and subscriptions are on a cloud, for the runtime's cloud backends:
//! built from the plan's provider names (`busbar_plan`), or read from the Terraform module's
//! outputs (`terraform output -json`), so the runtime finds exactly what Terraform created.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The SNS topic and SQS queue of each topic and subscription on AWS.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwsLocations {
    /// The SNS topic of each busbar topic: its ARN, or its name (then resolved in the account
    /// and region of the credentials).
    pub topics: BTreeMap<String, String>,
    /// The SQS queue of each subscription, by busbar topic then subscription: its URL, or its
    /// name. Its dead-letter queue is the one its redrive policy names.
    pub queues: BTreeMap<String, BTreeMap<String, String>>,
}

impl AwsLocations {
    /// The queue of a subscription.
    pub fn queue(&self, topic: &str, subscription: &str) -> Option<&str> {
        self.queues.get(topic)?.get(subscription).map(String::as_str)
    }

    /// Reads the outputs of busbar's AWS Terraform module, as `terraform output -json` prints
    /// them: `topic_arns` (by topic) and `busbar_runtime_config` (each subscription's
    /// `queue_url`). The error says which output is missing or malformed.
    pub fn from_terraform_outputs(text: &str) -> Result<AwsLocations, String> {
        let outputs: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("it is not JSON: {e}"))?;
        let value = |name: &str| {
            outputs.get(name).and_then(|o| o.get("value")).ok_or_else(|| {
                format!(
                    "it has no output `{name}` (is it `terraform output -json` of busbar's AWS module?)"
                )
            })
        };
        let topics: BTreeMap<String, String> = serde_json::from_value(value("topic_arns")?.clone())
            .map_err(|e| format!("output `topic_arns`: {e}"))?;
        #[derive(Deserialize)]
        struct Runtime {
            subscriptions: Vec<Queue>,
        }
        #[derive(Deserialize)]
        struct Queue {
            topic: String,
            subscription: String,
            queue_url: String,
        }
        let runtime = value("busbar_runtime_config")?
            .as_str()
            .ok_or("output `busbar_runtime_config` is not a string of JSON")?;
        let runtime: Runtime = serde_json::from_str(runtime)
            .map_err(|e| format!("output `busbar_runtime_config`: {e}"))?;
        let mut queues: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for q in runtime.subscriptions {
            queues.entry(q.topic).or_default().insert(q.subscription, q.queue_url);
        }
        Ok(AwsLocations { topics, queues })
    }
}

/// The Pub/Sub topic and subscription of each topic and subscription on GCP.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcpLocations {
    /// The project of names that are not full (`projects/P/...`); else the credentials'.
    pub project: Option<String>,
    /// The Pub/Sub topic of each busbar topic: its name, or its full name.
    pub topics: BTreeMap<String, String>,
    /// The Pub/Sub subscription of each subscription, by busbar topic then subscription: its
    /// name, or its full name. Its dead-letter topic is the one its dead-letter policy names.
    pub subscriptions: BTreeMap<String, BTreeMap<String, String>>,
}

impl GcpLocations {
    /// The Pub/Sub subscription of a subscription.
    pub fn subscription(&self, topic: &str, subscription: &str) -> Option<&str> {
        self.subscriptions.get(topic)?.get(subscription).map(String::as_str)
    }

    /// Reads the outputs of busbar's GCP Terraform module, as `terraform output -json` prints
    /// them: `topic_names` (by topic) and `busbar_runtime_config` (the project, and each
    /// subscription's `subscription_name`). The error says which output is missing or
    /// malformed.
    pub fn from_terraform_outputs(text: &str) -> Result<GcpLocations, String> {
        let outputs: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("it is not JSON: {e}"))?;
        let value = |name: &str| {
            outputs.get(name).and_then(|o| o.get("value")).ok_or_else(|| {
                format!(
                    "it has no output `{name}` (is it `terraform output -json` of busbar's GCP module?)"
                )
            })
        };
        let topics: BTreeMap<String, String> =
            serde_json::from_value(value("topic_names")?.clone())
                .map_err(|e| format!("output `topic_names`: {e}"))?;
        #[derive(Deserialize)]
        struct Runtime {
            project: Option<String>,
            subscriptions: Vec<Sub>,
        }
        #[derive(Deserialize)]
        struct Sub {
            topic: String,
            subscription: String,
            subscription_name: String,
        }
        let runtime = value("busbar_runtime_config")?
            .as_str()
            .ok_or("output `busbar_runtime_config` is not a string of JSON")?;
        let runtime: Runtime = serde_json::from_str(runtime)
            .map_err(|e| format!("output `busbar_runtime_config`: {e}"))?;
        let mut subscriptions: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for s in runtime.subscriptions {
            subscriptions.entry(s.topic).or_default().insert(s.subscription, s.subscription_name);
        }
        Ok(GcpLocations { project: runtime.project, topics, subscriptions })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_modules_outputs_and_says_which_one_is_missing() {
        let runtime = serde_json::json!({
            "version": 1, "target": "aws", "region": "eu-west-1",
            "subscriptions": [{ "topic": "orders", "subscription": "mail", "service": "notify",
                "queue_url": "https://sqs.eu-west-1.amazonaws.com/1/p-orders--mail" }],
        });
        let outputs = serde_json::json!({
            "topic_arns": { "sensitive": false, "value": { "orders": "arn:aws:sns:eu-west-1:1:p-orders" } },
            "busbar_runtime_config": { "value": runtime.to_string() },
        });
        let locations = AwsLocations::from_terraform_outputs(&outputs.to_string()).unwrap();
        assert_eq!(locations.topics["orders"], "arn:aws:sns:eu-west-1:1:p-orders");
        assert_eq!(
            locations.queue("orders", "mail"),
            Some("https://sqs.eu-west-1.amazonaws.com/1/p-orders--mail")
        );
        let missing = AwsLocations::from_terraform_outputs("{\"topic_arns\": {\"value\": {}}}");
        assert!(missing.unwrap_err().contains("busbar_runtime_config"));
        assert!(AwsLocations::from_terraform_outputs("[").unwrap_err().contains("not JSON"));
    }

    #[test]
    fn reads_the_gcp_modules_outputs() {
        let runtime = serde_json::json!({
            "version": 1, "target": "gcp", "project": "shop-prod",
            "subscriptions": [{ "topic": "orders", "subscription": "mail", "service": "notify",
                "topic_name": "p-orders", "subscription_name": "p-orders--mail" }],
        });
        let outputs = serde_json::json!({
            "topic_names": { "value": { "orders": "p-orders" } },
            "busbar_runtime_config": { "value": runtime.to_string() },
        });
        let locations = GcpLocations::from_terraform_outputs(&outputs.to_string()).unwrap();
        assert_eq!(locations.project.as_deref(), Some("shop-prod"));
        assert_eq!(locations.topics["orders"], "p-orders");
        assert_eq!(locations.subscription("orders", "mail"), Some("p-orders--mail"));
        let missing = GcpLocations::from_terraform_outputs("{\"busbar_runtime_config\": {}}");
        assert!(missing.unwrap_err().contains("topic_names"));
    }
}
