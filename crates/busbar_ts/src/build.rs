//! Assembling the app model from every file's facts: services, topics with their message
//! types, subscriptions with their topics, and publishers with every code location that
//! needs the permission, including publishes in shared files reached through imports.

use std::collections::{BTreeMap, VecDeque};

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use busbar_diagnostics::{Diagnostic, FilePath, Span, codes};
use busbar_model::schema::FieldInfo;
use busbar_model::{Access, AccessKind, AppModel, ModelBuilder, Service, Subscription, Topic};

use crate::diagnostics as diag;
use crate::facts::{FileFacts, RawSpan, RefPermission, UseKind};
use crate::link::{Linker, Value};
use crate::resolve::Target;
use crate::schema;
use crate::services::Services;

/// Attributes of a topic as far as they could be read, for checking filters.
struct TopicInfo {
    message_type: String,
    /// Every top-level field of the message type; `None` when the message type is not known
    /// as objects (not found, or not followed: already reported).
    fields: Option<BTreeMap<String, FieldInfo>>,
}

/// Where to point at a topic declaration: its name.
fn topic_anchor(decl: &crate::facts::TopicDecl) -> Span {
    decl.name.as_ref().map(|(_, span)| span.clone()).unwrap_or_else(|| decl.span.clone())
}

/// Attribute names the runtime keeps for itself.
fn is_reserved(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.starts_with("encore") || lower.starts_with("busbar")
}

impl TopicInfo {
    /// Attributes a filter or an ordering may name (reserved ones excluded).
    fn usable_attributes(&self) -> Vec<String> {
        self.attributes().into_iter().filter(|a| !is_reserved(a)).collect()
    }

    fn attributes(&self) -> Vec<String> {
        self.fields
            .iter()
            .flatten()
            .filter(|(_, f)| f.attribute.is_some())
            .map(|(name, _)| name.clone())
            .collect()
    }
}

pub(crate) fn build(
    files: &[FileFacts],
    paths: &[FilePath],
    targets: &[Vec<Target>],
    services: &Services,
    runtime: busbar_config::Runtime,
) -> (AppModel, Vec<Diagnostic>) {
    let index: HashMap<FilePath, usize> =
        paths.iter().enumerate().map(|(i, p)| (p.clone(), i)).collect();
    let linker = Linker::new(files, targets, &index);
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

    // Topics, in path order so the first declaration of a name wins.
    let mut topic_names: HashMap<(usize, usize), String> = HashMap::default();
    let mut reserved_reported: HashSet<Span> = HashSet::default();
    let mut lowered_reported: HashSet<(&'static str, Option<Span>)> = HashSet::default();
    let mut topic_info: BTreeMap<String, TopicInfo> = BTreeMap::new();
    for (f, facts) in files.iter().enumerate() {
        for (t, decl) in facts.topics.iter().enumerate() {
            let Some((name, name_span)) = &decl.name else { continue };
            topic_names.insert((f, t), name.clone());
            let schema = match &decl.message_type {
                Some(ty) => {
                    let lowered = schema::lower_message(&linker, f, ty, &decl.message_type_text);
                    for d in lowered.diagnostics {
                        let key = (d.code.id, d.span.clone());
                        if lowered_reported.insert(key) {
                            diagnostics.push(d);
                        }
                    }
                    lowered.schema
                }
                None => busbar_model::schema::MessageSchema::default(),
            };
            if runtime == busbar_config::Runtime::Encore && schema.is_union() {
                encore_union_limits(&schema, decl, name_span, &mut diagnostics);
            }
            let fields = if decl.message_type.is_some() { schema.fields() } else { None };
            let info = TopicInfo { message_type: decl.message_type_text.clone(), fields };
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
                            name_span.clone(),
                        ));
                    }
                }
            }
            if let (Some((attr, span)), Some(fields)) = (&decl.ordering_attribute, &info.fields)
                && !attribute_types.contains_key(attr)
            {
                let field_span = fields.get(attr).and_then(|f| f.span.clone());
                diagnostics.push(diag::not_an_attribute(
                    &codes::ORDERING_ATTRIBUTE_NOT_ATTRIBUTE,
                    "`orderingAttribute`",
                    attr,
                    &info.message_type,
                    span.clone(),
                    field_span,
                    &info.usable_attributes(),
                ));
            }
            let added = builder.add_topic(Topic {
                name: name.clone(),
                service: services.name_of(f).map(str::to_string),
                message_type: decl.message_type_text.clone(),
                attributes,
                attribute_types,
                schema,
                delivery_guarantee: decl.delivery,
                ordering_attribute: decl.ordering_attribute.as_ref().map(|(a, _)| a.clone()),
                span: decl.span.clone(),
                name_span: name_span.clone(),
                doc: decl.doc.clone(),
                publishers: Vec::new(),
                subscriptions: Vec::new(),
            });
            if added {
                topic_info.insert(name.clone(), info);
            }
        }
    }

    // Subscriptions.
    for (f, facts) in files.iter().enumerate() {
        for sub in &facts.subscriptions {
            let topic = match sub.topic_use {
                Some(u) => {
                    let use_ = &facts.uses[u];
                    let (value, used) = linker.follow(linker.local(f, &use_.name), &use_.path);
                    match value {
                        Value::Topic { file, topic } if used == use_.path.len() => {
                            topic_names.get(&(file, topic)).cloned()
                        }
                        other => {
                            diagnostics.push(unresolved_topic(
                                &linker,
                                &use_.name,
                                &use_.path[..used],
                                other,
                                sub.topic_span.clone(),
                            ));
                            None
                        }
                    }
                }
                None => {
                    let why =
                        sub.topic_problem.as_deref().unwrap_or("it is not the name of a topic");
                    diagnostics
                        .push(diag::unresolved_subscription_topic(sub.topic_span.clone(), why));
                    None
                }
            };
            let (Some(topic), Some((name, name_span)), Some(service)) =
                (topic, &sub.name, services.name_of(f))
            else {
                continue;
            };
            let mut filter = None;
            if let Some(entries) = &sub.filter {
                let info = topic_info.get(&topic);
                let mut map = BTreeMap::new();
                for entry in entries {
                    if let Some(info) = info
                        && let Some(fields) = &info.fields
                        && fields.get(&entry.key).is_none_or(|fl| fl.attribute.is_none())
                    {
                        let field_span = fields.get(&entry.key).and_then(|fl| fl.span.clone());
                        diagnostics.push(diag::not_an_attribute(
                            &codes::FILTER_KEY_NOT_ATTRIBUTE,
                            "`filter` key",
                            &entry.key,
                            &info.message_type,
                            entry.key_span.clone(),
                            field_span,
                            &info.usable_attributes(),
                        ));
                        continue;
                    }
                    map.insert(entry.key.clone(), entry.values.clone());
                }
                filter = Some(map);
            }
            builder.add_subscription(
                &topic,
                Subscription {
                    name: name.clone(),
                    service: service.to_string(),
                    handler: sub.handler.clone(),
                    ack_deadline_ms: sub.ack_deadline_ms,
                    message_retention_ms: sub.message_retention_ms,
                    retry_policy: sub.retry_policy,
                    max_concurrency: sub.max_concurrency,
                    filter,
                    span: sub.span.clone(),
                    name_span: name_span.clone(),
                    explicit: sub.explicit.iter().map(|(k, _)| k.clone()).collect(),
                    setting_spans: sub.explicit.iter().cloned().collect(),
                },
            );
        }
    }

    // Publishes, refs and escapes. Every use is resolved once; the resolutions also say who
    // references which declaration, for attributing publishes in shared files.
    let resolved: Vec<Vec<(Value, usize)>> = files
        .iter()
        .enumerate()
        .map(|(f, facts)| {
            facts.uses.iter().map(|u| linker.follow(linker.local(f, &u.name), &u.path)).collect()
        })
        .collect();
    let reach = Reach::new(files, targets, &index, services, &resolved);
    let mut reach_cache: HashMap<(usize, Option<u32>), Vec<Grant>> = HashMap::default();
    let mut reported_escapes: HashSet<(usize, RawSpan)> = HashSet::default();
    let mut reported_missing: HashSet<(usize, RawSpan)> = HashSet::default();
    for (f, facts) in files.iter().enumerate() {
        for (u, use_) in facts.uses.iter().enumerate() {
            if matches!(use_.kind, UseKind::SubscriptionTopic(_)) {
                continue;
            }
            let (value, used) = resolved[f][u].clone();
            let rest = &use_.path[used..];
            match value {
                Value::Topic { file, topic } => {
                    let Some(name) = topic_names.get(&(file, topic)) else { continue };
                    let declared = topic_anchor(&files[file].topics[topic]);
                    let kind = match (&use_.kind, rest) {
                        (UseKind::Publish, []) => AccessKind::Publish,
                        (UseKind::Ref(RefPermission::Publisher), []) => AccessKind::Ref,
                        (UseKind::Ref(other), []) => {
                            let got = match other {
                                RefPermission::Other(t) => Some(t.as_str()),
                                _ => None,
                            };
                            diagnostics
                                .push(diag::invalid_ref_permission(facts.span_of(use_.span), got));
                            continue;
                        }
                        (UseKind::Other, [n]) if n == "name" => continue,
                        _ => {
                            if reported_escapes.insert((f, use_.span)) {
                                diagnostics.push(diag::invalid_topic_usage(
                                    name,
                                    facts.span_of(use_.span),
                                    declared,
                                ));
                            }
                            continue;
                        }
                    };
                    let access = |imported_at: Vec<Span>| Access {
                        kind,
                        span: facts.span_of(use_.span),
                        imported_at,
                    };
                    match services.name_of(f) {
                        Some(service) => builder.add_access(name, service, access(Vec::new())),
                        None => {
                            let reached = reach_cache
                                .entry((f, use_.owner))
                                .or_insert_with(|| reach.services_reaching(f, use_.owner));
                            if reached.is_empty() {
                                diagnostics
                                    .push(diag::unreached_publish(name, facts.span_of(use_.span)));
                            }
                            for (service, chain) in reached.iter() {
                                builder.add_access(name, service, access(chain.clone()));
                            }
                        }
                    }
                }
                Value::Namespace(ns) if rest.is_empty() && use_.kind == UseKind::Other => {
                    if let Some((file, topic)) = linker.some_topic(ns)
                        && let Some(name) = topic_names.get(&(file, topic))
                    {
                        let declared = topic_anchor(&files[file].topics[topic]);
                        diagnostics.push(diag::namespace_escapes(
                            &use_.name,
                            name,
                            facts.span_of(use_.span),
                            declared,
                        ));
                    }
                }
                Value::Unresolved { file, module, reason }
                    if matches!(use_.kind, UseKind::Publish | UseKind::Ref(_)) =>
                {
                    let m = &files[file].module_refs[module];
                    diagnostics.push(diag::unresolved_import(
                        &m.specifier,
                        files[file].span_of(m.span),
                        facts.span_of(use_.span),
                        &reason,
                    ));
                }
                Value::Missing { file: target, name } => {
                    // TypeScript refuses an import of a name the module does not export; a
                    // publish through it must not vanish from the graph unreported.
                    let import = facts.imports.iter().find(|i| i.local == use_.name);
                    let at = import.map_or(use_.span, |i| facts.module_refs[i.module].span);
                    if reported_missing.insert((f, at)) {
                        diagnostics.push(diag::missing_export(
                            &name,
                            files[target].source.path(),
                            facts.span_of(at),
                            facts.span_of(use_.span),
                        ));
                    }
                }
                Value::External { file, module }
                    if use_.kind == UseKind::Ref(RefPermission::Publisher) =>
                {
                    let m = &files[file].module_refs[module];
                    diagnostics.push(diag::unresolved_import(
                        &m.specifier,
                        files[file].span_of(m.span),
                        facts.span_of(use_.span),
                        "it is a third-party module, and busbar reads only the app's own source",
                    ));
                }
                _ => {}
            }
        }
    }

    let (model, mut found) = builder.finish();
    diagnostics.append(&mut found);
    (model, diagnostics)
}

/// What Encore's runtime cannot do with a union message type: find its attributes.
fn encore_union_limits(
    schema: &busbar_model::schema::MessageSchema,
    decl: &crate::facts::TopicDecl,
    name_span: &Span,
    diagnostics: &mut Vec<Diagnostic>,
) {
    for (name, info) in schema.attributes().into_iter().flatten() {
        let span = info.span.unwrap_or_else(|| name_span.clone());
        diagnostics.push(diag::encore_union_attribute(&name, span, name_span.clone()));
    }
    if let Some((attr, span)) = &decl.ordering_attribute {
        diagnostics.push(diag::encore_union_ordering(attr, span.clone()));
    }
}

fn unresolved_topic(
    linker: &Linker<'_>,
    name: &str,
    path: &[swc_atoms::Atom],
    value: Value,
    span: Span,
) -> Diagnostic {
    let shown =
        std::iter::once(name).chain(path.iter().map(|a| &**a)).collect::<Vec<_>>().join(".");
    let why = match value {
        Value::Unresolved { file, module, reason } => {
            let m = &linker.files[file].module_refs[module];
            return diag::unresolved_import(
                &m.specifier,
                linker.files[file].span_of(m.span),
                span,
                &reason,
            );
        }
        Value::External { file, module } => {
            format!(
                "`{shown}` comes from the third-party module `{}`",
                linker.files[file].module_refs[module].specifier
            )
        }
        Value::Missing { file: f, name: missing } => {
            format!("`{}` does not export `{missing}`", linker.files[f].source.path())
        }
        Value::Namespace(_) => format!("`{shown}` is a module, not a topic"),
        Value::Topic { .. } => format!("`{shown}` is a topic followed by a property"),
        Value::Decl { .. } | Value::Other => format!("`{shown}` is not a topic"),
    };
    diag::unresolved_subscription_topic(span, &why)
}

/// Who reaches what: for a publish in a shared file, which services run it.
///
/// A publish inside a module-level declaration (a function, a class, a constant) is reached by
/// code that references that declaration: an import of it in another file (through barrels and
/// namespaces), or another declaration of the same file. A publish in code that runs when the
/// module loads is reached by every import of the file. Shared files pass reachability on;
/// the first file inside a service ends a chain, and its service is granted.
struct Reach<'a> {
    files: &'a [FileFacts],
    services: &'a Services,
    /// For each file, the files that import it (code-carrying imports), with the import's
    /// byte range in the importer.
    importers: Vec<Vec<(usize, RawSpan)>>,
    /// Who references a declaration `(file, name)`.
    refs_to: HashMap<(usize, &'a str), Vec<Ref>>,
    /// Who uses a whole module as a value (`ns` passed around, `ns[key]`).
    ns_refs: HashMap<usize, Vec<Ref>>,
}

#[derive(Clone, Copy, Debug)]
struct Ref {
    from: usize,
    owner: Option<u32>,
    /// The import in `from` the reference goes through (`None` within one file).
    import: Option<RawSpan>,
}

/// A service reaching a shared publish, with the imports that lead to it.
type Grant = (String, Vec<Span>);

/// A chain of imports, each a byte range in a file.
type Chain = Vec<(usize, RawSpan)>;

impl<'a> Reach<'a> {
    fn new(
        files: &'a [FileFacts],
        targets: &[Vec<Target>],
        index: &HashMap<FilePath, usize>,
        services: &'a Services,
        resolved: &'a [Vec<(Value, usize)>],
    ) -> Self {
        let mut importers: Vec<Vec<(usize, RawSpan)>> = vec![Vec::new(); files.len()];
        for (f, facts) in files.iter().enumerate() {
            for (m, module) in facts.module_refs.iter().enumerate() {
                if module.type_only {
                    continue;
                }
                if let Target::File(path) = &targets[f][m]
                    && let Some(&t) = index.get(path)
                    && t != f
                {
                    importers[t].push((f, module.span));
                }
            }
        }
        for list in &mut importers {
            list.sort_by(|a, b| {
                (files[a.0].source.path(), a.1).cmp(&(files[b.0].source.path(), b.1))
            });
            list.dedup_by(|a, b| a.0 == b.0);
        }
        let mut refs_to: HashMap<(usize, &'a str), Vec<Ref>> = HashMap::default();
        let mut ns_refs: HashMap<usize, Vec<Ref>> = HashMap::default();
        for (f, facts) in files.iter().enumerate() {
            for (u, use_) in facts.uses.iter().enumerate() {
                let import = match facts.locals.get(&use_.name) {
                    Some(crate::facts::Local::Import(i)) => {
                        Some(facts.module_refs[facts.imports[*i].module].span)
                    }
                    _ => None,
                };
                let r = Ref { from: f, owner: use_.owner, import };
                match &resolved[f][u] {
                    (Value::Decl { file, name }, _) => {
                        refs_to.entry((*file, name.as_str())).or_default().push(r);
                    }
                    (Value::Namespace(file), used) if *used == use_.path.len() => {
                        ns_refs.entry(*file).or_default().push(r);
                    }
                    _ => {}
                }
            }
            for (owner, name) in &facts.local_refs {
                refs_to.entry((f, &**name)).or_default().push(Ref {
                    from: f,
                    owner: *owner,
                    import: None,
                });
            }
        }
        let sort = |refs: &mut Vec<Ref>| {
            refs.sort_by(|a, b| {
                (files[a.from].source.path(), a.import, a.owner).cmp(&(
                    files[b.from].source.path(),
                    b.import,
                    b.owner,
                ))
            });
        };
        refs_to.values_mut().for_each(sort);
        ns_refs.values_mut().for_each(sort);
        Reach { files, services, importers, refs_to, ns_refs }
    }

    /// The services that reach code of `file` owned by `owner`, each with the imports from the
    /// service's code to it (the first, shortest chain found).
    fn services_reaching(&self, file: usize, owner: Option<u32>) -> Vec<Grant> {
        // A node is a declaration of a file, or `None`: the file being loaded.
        let nodes_of = |f: usize, owner: Option<u32>| -> Vec<(usize, Option<&'a str>)> {
            match owner {
                None => vec![(f, None)],
                Some(o) => self.files[f]
                    .owners
                    .get(o as usize)
                    .into_iter()
                    .flatten()
                    .map(|n| (f, Some(n.as_str())))
                    .collect(),
            }
        };
        let mut found: BTreeMap<String, Chain> = BTreeMap::new();
        let mut visited: HashSet<(usize, Option<&str>)> = HashSet::default();
        let mut queue: VecDeque<((usize, Option<&str>), Chain)> = VecDeque::new();
        for node in nodes_of(file, owner) {
            if visited.insert(node) {
                queue.push_back((node, Vec::new()));
            }
        }
        let empty: Vec<Ref> = Vec::new();
        while let Some(((f, decl), chain)) = queue.pop_front() {
            let importers;
            let (direct, namespace): (&[Ref], &[Ref]) = match decl {
                None => {
                    importers = self.importers[f]
                        .iter()
                        .map(|(g, span)| Ref { from: *g, owner: None, import: Some(*span) })
                        .collect::<Vec<_>>();
                    (&importers, &[])
                }
                Some(name) => (
                    self.refs_to.get(&(f, name)).unwrap_or(&empty),
                    self.ns_refs.get(&f).unwrap_or(&empty),
                ),
            };
            for r in direct.iter().chain(namespace) {
                let next_chain: Chain = match r.import {
                    Some(span) => {
                        std::iter::once((r.from, span)).chain(chain.iter().copied()).collect()
                    }
                    None => chain.clone(),
                };
                match self.services.name_of(r.from) {
                    Some(service) => {
                        found.entry(service.to_string()).or_insert(next_chain);
                    }
                    None => {
                        for node in nodes_of(r.from, r.owner) {
                            if visited.insert(node) {
                                queue.push_back((node, next_chain.clone()));
                            }
                        }
                    }
                }
            }
        }
        found
            .into_iter()
            .map(|(service, chain)| {
                (service, chain.into_iter().map(|(f, span)| self.files[f].span_of(span)).collect())
            })
            .collect()
    }
}
