use busbar_diagnostics::SourceFile;
use busbar_model::*;

use super::*;

fn span(line: u32) -> Span {
    let file = SourceFile::new("a.ts".into(), "x\n".repeat(20));
    file.line_span(line)
}

fn model() -> AppModel {
    let access =
        |line| Access { kind: AccessKind::Publish, span: span(line), imported_at: Vec::new() };
    let sub = |name: &str, service: &str, line| Subscription {
        name: name.into(),
        service: service.into(),
        handler: None,
        settings: SubscriptionSettings { message_retention_ms: 1, ..Default::default() },
        span: span(line),
        name_span: span(line),
        explicit: Vec::new(),
        setting_spans: Default::default(),
    };
    let topic =
        |name: &str, service: Option<&str>, publishers: Vec<Publisher>, subscriptions| Topic {
            name: name.into(),
            service: service.map(Into::into),
            message_type: "E".into(),
            attributes: Vec::new(),
            attribute_types: Default::default(),
            schema: Default::default(),
            delivery_guarantee: DeliveryGuarantee::AtLeastOnce,
            ordering_attribute: None,
            span: span(1),
            name_span: span(1),
            doc: None,
            publishers,
            subscriptions,
        };
    let service = |name: &str| Service {
        name: name.into(),
        root: name.into(),
        origin: ServiceOrigin::Implicit,
        span: None,
    };
    let mut m = AppModel {
        services: vec![service("email"), service("user"), service("billing")],
        topics: vec![
            topic(
                "user-added",
                Some("user"),
                vec![Publisher::from_accesses("user".into(), vec![access(3)])],
                vec![sub("welcome", "email", 4), sub("invoice", "billing", 5)],
            ),
            topic("orphan", None, Vec::new(), Vec::new()),
        ],
    };
    m.sort();
    m
}

#[test]
fn permission_sets_say_what_and_why() {
    let g = PermissionGraph::build(&model());
    assert_eq!(g.services().collect::<Vec<_>>(), ["billing", "email", "user"]);
    let user = g.permissions("user").unwrap();
    assert!(user.may_publish("user-added"));
    assert!(!user.may_publish("orphan"));
    assert_eq!(user.publish[0].accesses[0].span.line, 3);
    assert_eq!(user.declares.len(), 1);
    let email = g.permissions("email").unwrap();
    assert!(email.publish.is_empty());
    assert!(email.may_consume("user-added", "welcome"));
    assert!(!email.may_consume("user-added", "invoice"));
    assert_eq!(email.consume[0].span.line, 4);
    assert!(g.permissions("nope").is_none());
    assert_eq!(g.subscriptions_of("user-added"), [("invoice", "billing"), ("welcome", "email")]);
    assert_eq!(g.publishers_of("user-added"), [("user", PublishVia::Publish)]);
}

#[test]
fn lints_find_dead_topics() {
    let m = model();
    let g = PermissionGraph::build(&m);
    let codes: Vec<_> = lints(&m, &g).iter().map(|d| d.code.id).collect();
    assert_eq!(codes, ["BB0401", "BB0402"]);
}
