//! The pub/sub section of Encore's `infra.config.json`, for Encore apps hosted without Encore's
//! cloud: every topic and subscription with the ARN and queue URL (AWS) or the Pub/Sub names and
//! project (GCP) that busbar's Terraform module created, so nobody writes them by hand.
//!
//! The shape follows Encore's documented schema (`https://encore.dev/schemas/infra.schema.json`)
//! as Encore's CLI reads it: `pubsub` is an array of providers selected by `type`; under
//! `topics` the keys are the topic names of the code and under `subscriptions` the
//! subscription names. Encore's CLI reads an AWS subscription's queue as `url` (its
//! documentation's examples say `arn`, but both of its runtimes pass the value to SQS as the
//! queue URL); it is the queue's URL here. None of these fields take `$env` references.

use std::collections::{BTreeMap, BTreeSet};

use busbar_model::locations::{AwsLocations, GcpLocations};
use busbar_model::runtime::RuntimeConfig;
use serde::{Deserialize, Serialize};

/// Encore's schema of the file, in its `$schema` field.
pub const ENCORE_INFRA_SCHEMA: &str = "https://encore.dev/schemas/infra.schema.json";

/// An `infra.config.json` with only its pub/sub section (every other section of the file is
/// optional).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncoreInfraConfig {
    #[serde(rename = "$schema")]
    pub schema: String,
    pub pubsub: Vec<EncorePubsub>,
}

/// One pub/sub provider of the file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum EncorePubsub {
    #[serde(rename = "aws_sns_sqs")]
    Aws { topics: BTreeMap<String, EncoreAwsTopic> },
    #[serde(rename = "gcp_pubsub")]
    Gcp { project_id: String, topics: BTreeMap<String, EncoreGcpTopic> },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncoreAwsTopic {
    /// The SNS topic's ARN.
    pub arn: String,
    pub subscriptions: BTreeMap<String, EncoreAwsSubscription>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncoreAwsSubscription {
    /// The SQS queue's URL.
    pub url: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncoreGcpTopic {
    /// The Pub/Sub topic's name (not its full `projects/…` name).
    pub name: String,
    /// Set when the topic is in another project than the provider's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    pub subscriptions: BTreeMap<String, EncoreGcpSubscription>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncoreGcpSubscription {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
}

impl EncoreInfraConfig {
    /// The file for AWS. The locations must be the module's outputs (ARNs and URLs, which the
    /// plan alone cannot know: they carry the account and region); the error says what is not.
    pub fn aws(locations: &AwsLocations) -> Result<EncoreInfraConfig, String> {
        let mut topics = BTreeMap::new();
        for (topic, arn) in &locations.topics {
            if !arn.starts_with("arn:") {
                return Err(format!(
                    "topic `{topic}` is at `{arn}`, not an ARN: Encore needs the ARNs and queue URLs of the Terraform module's outputs (`terraform output -json`)"
                ));
            }
            let mut subscriptions = BTreeMap::new();
            for (subscription, url) in locations.queues.get(topic).into_iter().flatten() {
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    return Err(format!(
                        "subscription `{topic}/{subscription}` is at `{url}`, not a queue URL: Encore needs the queue URLs of the Terraform module's outputs (`terraform output -json`)"
                    ));
                }
                subscriptions
                    .insert(subscription.clone(), EncoreAwsSubscription { url: url.clone() });
            }
            topics.insert(topic.clone(), EncoreAwsTopic { arn: arn.clone(), subscriptions });
        }
        if let Some(topic) = locations.queues.keys().find(|t| !locations.topics.contains_key(*t)) {
            return Err(format!("subscriptions of topic `{topic}` but no ARN for the topic"));
        }
        Ok(EncoreInfraConfig::new(EncorePubsub::Aws { topics }))
    }

    /// The file for GCP: the names of the locations in their project (the module's
    /// `var.project`, in its outputs); a full name (`projects/P/topics/N`) in another project
    /// keeps its own.
    pub fn gcp(locations: &GcpLocations) -> Result<EncoreInfraConfig, String> {
        let project = locations.project.clone().ok_or(
            "the GCP project is unknown: Encore needs it (give the Terraform module's outputs, which carry `var.project`)",
        )?;
        let split = |full: &str, kind: &str| -> (String, Option<String>) {
            let parts: Vec<&str> = full.split('/').collect();
            match parts.as_slice() {
                ["projects", p, k, name] if *k == kind => {
                    let p = (*p != project).then(|| (*p).to_string());
                    ((*name).to_string(), p)
                }
                _ => (full.to_string(), None),
            }
        };
        let mut topics = BTreeMap::new();
        for (topic, full) in &locations.topics {
            let (name, project_id) = split(full, "topics");
            let mut subscriptions = BTreeMap::new();
            for (subscription, full) in locations.subscriptions.get(topic).into_iter().flatten() {
                let (name, project_id) = split(full, "subscriptions");
                subscriptions
                    .insert(subscription.clone(), EncoreGcpSubscription { name, project_id });
            }
            topics.insert(topic.clone(), EncoreGcpTopic { name, project_id, subscriptions });
        }
        if let Some(topic) =
            locations.subscriptions.keys().find(|t| !locations.topics.contains_key(*t))
        {
            return Err(format!("subscriptions of topic `{topic}` but no name for the topic"));
        }
        Ok(EncoreInfraConfig::new(EncorePubsub::Gcp { project_id: project, topics }))
    }

    /// The file from the outputs of the app's Terraform module (`terraform output -json`),
    /// AWS or GCP (told apart by their `topic_arns` or `topic_names` output). The outputs must
    /// have exactly the app's topics and subscriptions: outputs of another app, or of a build
    /// not yet applied, are refused naming what differs.
    pub fn from_terraform_outputs(
        text: &str,
        app: &RuntimeConfig,
    ) -> Result<EncoreInfraConfig, String> {
        let outputs: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("it is not JSON: {e}"))?;
        let (topics, subscriptions, file) = if outputs.get("topic_arns").is_some() {
            let locations = AwsLocations::from_terraform_outputs(text)?;
            (keys(&locations.topics), nested_keys(&locations.queues), Self::aws(&locations)?)
        } else if outputs.get("topic_names").is_some() {
            let locations = GcpLocations::from_terraform_outputs(text)?;
            let subscriptions = nested_keys(&locations.subscriptions);
            (keys(&locations.topics), subscriptions, Self::gcp(&locations)?)
        } else {
            return Err("it has neither `topic_arns` nor `topic_names`: is it `terraform output -json` of busbar's AWS or GCP module?".to_string());
        };
        let want_topics: BTreeSet<String> = app.topics.iter().map(|t| t.name.clone()).collect();
        let want_subscriptions: BTreeSet<(String, String)> = app
            .topics
            .iter()
            .flat_map(|t| t.subscriptions.iter().map(|s| (t.name.clone(), s.name.clone())))
            .collect();
        let stale = "(outputs of another app, or of a build not yet applied: run `terraform apply` on this build's module and `terraform output -json` again)";
        if let Some(t) = want_topics.difference(&topics).next() {
            return Err(format!("they have no topic `{t}` of the app {stale}"));
        }
        if let Some(t) = topics.difference(&want_topics).next() {
            return Err(format!("they have a topic `{t}` that the app does not declare {stale}"));
        }
        if let Some((t, s)) = want_subscriptions.difference(&subscriptions).next() {
            return Err(format!("they have no subscription `{s}` of `{t}` {stale}"));
        }
        if let Some((t, s)) = subscriptions.difference(&want_subscriptions).next() {
            return Err(format!(
                "they have a subscription `{s}` of `{t}` that the app does not declare {stale}"
            ));
        }
        Ok(file)
    }

    fn new(provider: EncorePubsub) -> EncoreInfraConfig {
        EncoreInfraConfig { schema: ENCORE_INFRA_SCHEMA.to_string(), pubsub: vec![provider] }
    }

    /// The file's text: pretty JSON, keys sorted, one final newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }
}

fn keys(map: &BTreeMap<String, String>) -> BTreeSet<String> {
    map.keys().cloned().collect()
}

fn nested_keys(map: &BTreeMap<String, BTreeMap<String, String>>) -> BTreeSet<(String, String)> {
    map.iter().flat_map(|(t, subs)| subs.keys().map(|s| (t.clone(), s.clone()))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_takes_arns_and_urls_and_refuses_plain_names() {
        let mut locations = AwsLocations::default();
        locations.topics.insert("orders".into(), "arn:aws:sns:eu-west-1:1:shop-orders".into());
        locations.queues.entry("orders".into()).or_default().insert(
            "bill".into(),
            "https://sqs.eu-west-1.amazonaws.com/1/shop-orders--bill".into(),
        );
        let file = EncoreInfraConfig::aws(&locations).expect("ARNs and URLs");
        let back: EncoreInfraConfig = serde_json::from_str(&file.to_json()).expect("reads back");
        assert_eq!(back, file);
        let EncorePubsub::Aws { topics } = &back.pubsub[0] else { panic!("not AWS") };
        assert_eq!(
            topics["orders"].subscriptions["bill"].url,
            "https://sqs.eu-west-1.amazonaws.com/1/shop-orders--bill"
        );
        assert!(file.to_json().contains("\"type\": \"aws_sns_sqs\""));

        locations.topics.insert("orders".into(), "shop-orders".into());
        let e = EncoreInfraConfig::aws(&locations).expect_err("a name is not an ARN");
        assert!(e.contains("not an ARN") && e.contains("terraform output -json"), "{e}");
    }

    #[test]
    fn gcp_splits_full_names_and_needs_the_project() {
        let mut locations = GcpLocations { project: Some("p1".into()), ..Default::default() };
        locations.topics.insert("orders".into(), "projects/p1/topics/shop-orders".into());
        locations.topics.insert("users".into(), "projects/other/topics/users".into());
        locations
            .subscriptions
            .entry("orders".into())
            .or_default()
            .insert("bill".into(), "shop-orders--bill".into());
        let file = EncoreInfraConfig::gcp(&locations).expect("names");
        let EncorePubsub::Gcp { project_id, topics } = &file.pubsub[0] else { panic!("not GCP") };
        assert_eq!(project_id, "p1");
        assert_eq!(topics["orders"].name, "shop-orders");
        assert_eq!(topics["orders"].project_id, None);
        assert_eq!(topics["users"].project_id.as_deref(), Some("other"));
        assert_eq!(topics["orders"].subscriptions["bill"].name, "shop-orders--bill");
        assert!(file.to_json().contains("\"type\": \"gcp_pubsub\""));

        locations.project = None;
        let e = EncoreInfraConfig::gcp(&locations).expect_err("no project");
        assert!(e.contains("project"), "{e}");
    }
}
