//! The model from every frontend's facts: services, topics with their message types and the
//! checks of attributes, subscriptions with their filters, and publishers with every code
//! location that needs the permission, including publishes in shared code.

use std::collections::BTreeMap;

use rustc_hash::FxHashSet as HashSet;

use busbar_diagnostics::{Diagnostic, Span, codes};
use busbar_model::schema::{FieldInfo, MessageSchema};
use busbar_model::{Access, AppModel, ModelBuilder, Service, Subscription, Topic};

use crate::Merged;
use crate::diagnostics::{self as diag, Attributes};
use crate::facts::{Language, SubscriptionFact, TopicFact};
use crate::reach::Reach;
use crate::services::Services;

/// Attributes of a topic as far as they could be read, for checking filters.
struct TopicInfo {
    message_type: String,
    language: Language,
    /// Every top-level field of the message type; `None` when the message type is not known
    /// as objects (not found, or not followed: already reported).
    fields: Option<BTreeMap<String, FieldInfo>>,
}

/// Attribute names the runtime keeps for itself.
fn is_reserved(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.starts_with("encore") || lower.starts_with("busbar")
}

impl TopicInfo {
    fn attributes(&self) -> Vec<String> {
        self.fields
            .iter()
            .flatten()
            .filter(|(_, f)| f.attribute.is_some())
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// What a message about a key that is not an attribute needs; `usable` holds the
    /// attributes a filter or an ordering may name (reserved ones excluded).
    fn report<'a>(&'a self, usable: &'a [String]) -> Attributes<'a> {
        Attributes { message_type: &self.message_type, usable, language: self.language }
    }

    fn usable_attributes(&self) -> Vec<String> {
        self.attributes().into_iter().filter(|a| !is_reserved(a)).collect()
    }
}

pub(crate) fn build(
    merged: &Merged,
    services: &Services,
    runtime: busbar_config::Runtime,
) -> (AppModel, Vec<Diagnostic>) {
    let mut builder = ModelBuilder::new();
    let mut diagnostics = Vec::new();

    let mut order: Vec<usize> = (0..services.services.len()).collect();
    order.sort_by(|&a, &b| services.services[a].root.cmp(&services.services[b].root));
    for s in order {
        let info = &services.services[s];
        builder.add_service(Service {
            name: info.name.clone(),
            root: info.root.clone(),
            origin: info.origin,
            span: info.span.clone(),
        });
    }

    let topic_info = add_topics(merged, services, runtime, &mut builder, &mut diagnostics);
    for handle in &merged.topic_refs {
        if !builder.has_topic(&handle.name) {
            diagnostics.push(diag::undeclared_topic(&handle.name, handle.name_span.clone()));
        }
    }
    for sub in &merged.subscriptions {
        add_subscription(sub, services, &topic_info, &mut builder, &mut diagnostics);
    }

    let mut reach = Reach::new(&merged.files, &merged.code, services);
    for access in &merged.accesses {
        let add = |builder: &mut ModelBuilder, service: &str, imported_at: Vec<Span>| {
            let found = Access { kind: access.kind, span: access.span.clone(), imported_at };
            builder.add_access(&access.topic, service, found);
        };
        match services.name_of(access.file) {
            Some(service) => add(&mut builder, service, Vec::new()),
            None => {
                let reached = access.node.map_or(&[][..], |n| reach.services_reaching(n));
                if reached.is_empty() {
                    diagnostics.push(diag::unreached_publish(&access.topic, access.span.clone()));
                }
                for (service, chain) in reached {
                    add(&mut builder, service, chain.clone());
                }
            }
        }
    }

    let (model, mut found) = builder.finish();
    diagnostics.append(&mut found);
    (model, diagnostics)
}

/// Topics, in the frontends' file order so the first declaration of a name wins.
fn add_topics(
    merged: &Merged,
    services: &Services,
    runtime: busbar_config::Runtime,
    builder: &mut ModelBuilder,
    diagnostics: &mut Vec<Diagnostic>,
) -> BTreeMap<String, TopicInfo> {
    let mut reserved_reported: HashSet<Span> = HashSet::default();
    let mut topic_info: BTreeMap<String, TopicInfo> = BTreeMap::new();
    for decl in &merged.topics {
        let schema = decl.schema.clone().unwrap_or_default();
        if runtime == busbar_config::Runtime::Encore && schema.is_union() {
            encore_union_limits(&schema, decl, diagnostics);
        }
        let fields = if decl.schema.is_some() { schema.fields() } else { None };
        let language = merged.files[decl.file].language;
        let info = TopicInfo { message_type: decl.message_type.clone(), language, fields };
        let attributes = info.attributes();
        let mut attribute_types = BTreeMap::new();
        for (field_name, field) in info.fields.iter().flatten() {
            if let Some(kind) = field.attribute {
                attribute_types.insert(field_name.clone(), kind);
                if is_reserved(field_name)
                    && let Some(span) = &field.span
                    && reserved_reported.insert(span.clone())
                {
                    diagnostics.push(diag::reserved_attribute_prefix(
                        field_name,
                        span.clone(),
                        decl.name_span.clone(),
                    ));
                }
            }
        }
        if let (Some((attr, span)), Some(fields)) = (&decl.ordering_attribute, &info.fields)
            && !attribute_types.contains_key(attr)
        {
            let field_span = fields.get(attr).and_then(|f| f.span.clone());
            let usable = info.usable_attributes();
            diagnostics.push(diag::not_an_attribute(
                &codes::ORDERING_ATTRIBUTE_NOT_ATTRIBUTE,
                ordering_key(language),
                attr,
                span.clone(),
                field_span,
                &info.report(&usable),
            ));
        }
        let added = builder.add_topic(Topic {
            name: decl.name.clone(),
            service: services.name_of(decl.file).map(str::to_string),
            message_type: decl.message_type.clone(),
            attributes,
            attribute_types,
            schema,
            delivery_guarantee: decl.delivery,
            ordering_attribute: decl.ordering_attribute.as_ref().map(|(a, _)| a.clone()),
            span: decl.span.clone(),
            name_span: decl.name_span.clone(),
            doc: decl.doc.clone(),
            publishers: Vec::new(),
            subscriptions: Vec::new(),
        });
        if added {
            topic_info.insert(decl.name.clone(), info);
        }
    }
    topic_info
}

/// How the ordering setting is written, for messages.
fn ordering_key(language: Language) -> &'static str {
    match language {
        Language::TypeScript => "`orderingAttribute`",
        Language::Rust => "`ordering_attribute`",
    }
}

fn add_subscription(
    sub: &SubscriptionFact,
    services: &Services,
    topic_info: &BTreeMap<String, TopicInfo>,
    builder: &mut ModelBuilder,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let Some(service) = services.name_of(sub.file) else {
        diagnostics.push(diag::subscription_outside_service(&sub.name, sub.span.clone()));
        return;
    };
    let mut filter = None;
    if let Some(entries) = &sub.settings.filter {
        let info = topic_info.get(&sub.topic);
        let mut map = BTreeMap::new();
        for entry in entries {
            if let Some(info) = info
                && let Some(fields) = &info.fields
                && fields.get(&entry.key).is_none_or(|fl| fl.attribute.is_none())
            {
                let field_span = fields.get(&entry.key).and_then(|fl| fl.span.clone());
                let usable = info.usable_attributes();
                diagnostics.push(diag::not_an_attribute(
                    &codes::FILTER_KEY_NOT_ATTRIBUTE,
                    "`filter` key",
                    &entry.key,
                    entry.key_span.clone(),
                    field_span,
                    &info.report(&usable),
                ));
                continue;
            }
            map.insert(entry.key.clone(), entry.values.clone());
        }
        filter = Some(map);
    }
    builder.add_subscription(
        &sub.topic,
        Subscription {
            name: sub.name.clone(),
            service: service.to_string(),
            handler: sub.handler.clone(),
            settings: sub.settings.clone().with_filter(filter),
            span: sub.span.clone(),
            name_span: sub.name_span.clone(),
            explicit: sub.explicit.iter().map(|(k, _)| k.clone()).collect(),
            setting_spans: sub.explicit.iter().cloned().collect(),
        },
    );
}

/// What Encore's runtime cannot do with a union message type: find its attributes.
fn encore_union_limits(
    schema: &MessageSchema,
    decl: &TopicFact,
    diagnostics: &mut Vec<Diagnostic>,
) {
    for (name, info) in schema.attributes().into_iter().flatten() {
        let span = info.span.unwrap_or_else(|| decl.name_span.clone());
        diagnostics.push(diag::encore_union_attribute(&name, span, decl.name_span.clone()));
    }
    if let Some((attr, span)) = &decl.ordering_attribute {
        diagnostics.push(diag::encore_union_ordering(attr, span.clone()));
    }
}
