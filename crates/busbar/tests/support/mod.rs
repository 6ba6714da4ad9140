//! What the SDK's tests against a broker share: the pieces of a hand-written app model (what
//! the analyzer would find in the test's own file).

#![allow(dead_code, reason = "each test binary uses its part")]

use std::collections::BTreeMap;

use busbar_diagnostics::Span;
use busbar_model::{
    Access, AccessKind, DeliveryGuarantee, Publisher, Service, ServiceOrigin, Subscription,
    SubscriptionSettings,
};

pub fn span() -> Span {
    Span {
        file: "src/main.rs".into(),
        line: 1,
        column: 1,
        end_line: 1,
        end_column: 2,
        start: 0,
        end: 1,
    }
}

pub fn publisher(service: &str) -> Publisher {
    let access = Access { kind: AccessKind::Publish, span: span(), imported_at: Vec::new() };
    Publisher::from_accesses(service.to_string(), vec![access])
}

/// A topic of `message_type` with one string attribute, `source`, declared and published by
/// `service`.
pub fn topic(
    name: &str,
    message_type: &str,
    service: &str,
    subscriptions: Vec<Subscription>,
) -> busbar_model::Topic {
    busbar_model::Topic {
        name: name.to_string(),
        service: Some(service.to_string()),
        message_type: message_type.to_string(),
        attributes: vec!["source".to_string()],
        attribute_types: [("source".to_string(), busbar_model::AttributeType::String)].into(),
        schema: busbar_model::schema::MessageSchema::default(),
        delivery_guarantee: DeliveryGuarantee::AtLeastOnce,
        ordering_attribute: None,
        span: span(),
        name_span: span(),
        doc: None,
        publishers: vec![publisher(service)],
        subscriptions,
    }
}

/// A subscription of `service` with its handler named after it.
pub fn subscription(name: &str, service: &str, settings: SubscriptionSettings) -> Subscription {
    Subscription {
        name: name.to_string(),
        service: service.to_string(),
        handler: Some(name.replace('-', "_")),
        settings,
        span: span(),
        name_span: span(),
        explicit: Vec::new(),
        setting_spans: BTreeMap::new(),
    }
}

pub fn service(name: &str) -> Service {
    Service {
        name: name.to_string(),
        root: name.to_string(),
        origin: ServiceOrigin::Config,
        span: None,
    }
}

/// A tool from `cargo xtask ci` (`BUSBAR_MOTO`, `BUSBAR_PUBSUB_EMULATOR`): required under
/// `BUSBAR_REQUIRE_TOOLS`, else a missing (or empty: no gcloud) one skips the test, saying so.
#[allow(clippy::print_stderr, reason = "a skipped check says so")]
pub fn tool(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => Some(value),
        _ if std::env::var_os("BUSBAR_REQUIRE_TOOLS").is_some()
            && var != "BUSBAR_PUBSUB_EMULATOR" =>
        {
            panic!("{var} is not set, and BUSBAR_REQUIRE_TOOLS says the tools are required")
        }
        _ => {
            eprintln!("SKIPPED: {var} is not set; `cargo xtask ci` installs the tool and sets it");
            None
        }
    }
}
