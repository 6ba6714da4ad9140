//! From every file's facts to the language-neutral facts (`busbar_analysis::Facts`): topics
//! with their message types read across files, subscriptions with their topics, publishes and
//! refs linked to the topics they name (through imports, barrels, namespaces), and the code
//! graph that attributes publishes in shared files. Each phase is a function of its own.

mod graph;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use busbar_analysis::{AccessFact, SubscriptionFact, TopicFact, TopicRefFact};
use busbar_diagnostics::{Diagnostic, FilePath, Span};
use busbar_model::AccessKind;

use crate::diagnostics as diag;
use crate::facts::{FileFacts, RawSpan, RefPermission, UseKind};
use crate::link::{Linker, Value};
use crate::resolve::Target;
use crate::schema;

/// Where to point at a topic declaration: its name.
fn topic_anchor(decl: &crate::facts::TopicDecl) -> Span {
    decl.name.as_ref().map(|(_, span)| span.clone()).unwrap_or_else(|| decl.span.clone())
}

/// What linking found.
#[derive(Debug, Default)]
pub(crate) struct Linked {
    pub topics: Vec<TopicFact>,
    pub topic_refs: Vec<TopicRefFact>,
    pub subscriptions: Vec<SubscriptionFact>,
    pub accesses: Vec<AccessFact>,
    pub code: busbar_analysis::CodeGraph,
    pub diagnostics: Vec<Diagnostic>,
}

/// Links every file, or says which files the pre-filter skipped that the link must read to
/// be right (sorted): those a message type's lookup, a subscription's topic or the import chain
/// of a `.publish`/`.ref` reads (every other lookup that reaches a skipped file cannot end at a
/// topic, see [`reaches_topic`]). They are parsed, and the link is asked again, until there are
/// none. The topics and subscriptions found while asking are the link's own (the lookups of
/// the import chains are forgotten, so the link's lookups run in the order a link of fully
/// parsed files runs them).
pub(crate) fn link(
    files: &[FileFacts],
    paths: &[FilePath],
    targets: &[Vec<Target>],
    in_service: &[bool],
) -> Result<Linked, Vec<usize>> {
    let index: HashMap<FilePath, usize> =
        paths.iter().enumerate().map(|(i, p)| (p.clone(), i)).collect();
    let linker = Linker::new(files, targets, &index);
    let mut out = Linked::default();
    let topic_names = topics(&linker, &mut out);
    subscriptions(&linker, &topic_names, &mut out);
    if files.iter().any(|f| f.skipped) {
        let memos = linker.checkpoint();
        for (f, facts) in files.iter().enumerate() {
            for u in &facts.uses {
                if matches!(u.kind, UseKind::Publish | UseKind::Ref(_)) {
                    linker.follow(linker.local(f, &u.name), &u.path);
                }
            }
        }
        let mut unread = linker.unread.take();
        if !unread.is_empty() {
            unread.sort_unstable();
            unread.dedup();
            return Err(unread);
        }
        linker.restore(memos);
    }
    // Every use is resolved once; the resolutions also say who references which declaration,
    // for the code graph.
    let resolved: Vec<Vec<(Value, usize)>> = files
        .iter()
        .enumerate()
        .map(|(f, facts)| {
            facts.uses.iter().map(|u| linker.follow(linker.local(f, &u.name), &u.path)).collect()
        })
        .collect();
    let mut graph = graph::Graph::new(files, targets, &index, in_service, &resolved);
    let reaches = reaches_topic(files, targets, &index);
    let ctx = UseContext {
        topic_names: &topic_names,
        resolved: &resolved,
        in_service,
        reaches: &reaches,
    };
    uses(&linker, &ctx, &mut graph, &mut out);
    out.code = graph.graph;
    Ok(out)
}

/// The names of the topics declared with a literal name, by (file, topic index).
type TopicNames = HashMap<(usize, usize), String>;

/// Topics with a literal name, their message types lowered.
fn topics(linker: &Linker<'_>, out: &mut Linked) -> TopicNames {
    let mut topic_names = TopicNames::default();
    let mut lowered_reported: HashSet<(&'static str, Option<Span>)> = HashSet::default();
    for (f, facts) in linker.files.iter().enumerate() {
        for (t, decl) in facts.topics.iter().enumerate() {
            let Some((name, name_span)) = &decl.name else { continue };
            topic_names.insert((f, t), name.clone());
            if decl.elsewhere {
                out.topic_refs.push(TopicRefFact {
                    file: f,
                    name: name.clone(),
                    name_span: name_span.clone(),
                });
                continue;
            }
            let schema = decl.message_type.as_ref().map(|ty| {
                let lowered = schema::lower_message(linker, f, ty, &decl.message_type_text);
                for d in lowered.diagnostics {
                    if lowered_reported.insert((d.code.id, d.span.clone())) {
                        out.diagnostics.push(d);
                    }
                }
                lowered.schema
            });
            out.topics.push(TopicFact {
                file: f,
                name: name.clone(),
                name_span: name_span.clone(),
                span: decl.span.clone(),
                message_type: decl.message_type_text.clone(),
                schema,
                delivery: decl.delivery,
                ordering_attribute: decl.ordering_attribute.clone(),
                doc: decl.doc.clone(),
            });
        }
    }
    topic_names
}

/// Subscriptions whose topic argument leads to a named topic.
fn subscriptions(linker: &Linker<'_>, topic_names: &TopicNames, out: &mut Linked) {
    for (f, facts) in linker.files.iter().enumerate() {
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
                            out.diagnostics.push(unresolved_topic(
                                linker,
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
                    out.diagnostics
                        .push(diag::unresolved_subscription_topic(sub.topic_span.clone(), why));
                    None
                }
            };
            let (Some(topic), Some((name, name_span))) = (topic, &sub.name) else { continue };
            out.subscriptions.push(SubscriptionFact {
                file: f,
                topic,
                name: name.clone(),
                name_span: name_span.clone(),
                handler: sub.handler.clone(),
                settings: sub.settings.clone(),
                explicit: sub.explicit.clone(),
                span: sub.span.clone(),
            });
        }
    }
}

/// Publishes, refs and escapes.
/// Which modules are known to miss a name they do not export: those a topic can be reached
/// from (they declare one, or import or re-export from such a file, transitively: exactly
/// what the pre-filter keeps of the files that import, `crate::prefilter`) whose `export *`
/// lead only to such modules too. A name missing from any other module cannot be a topic, and
/// is left to the TypeScript compiler to report.
fn reaches_topic(
    files: &[FileFacts],
    targets: &[Vec<Target>],
    index: &HashMap<FilePath, usize>,
) -> Vec<bool> {
    let mut importers: Vec<Vec<usize>> = vec![Vec::new(); files.len()];
    for (f, file_targets) in targets.iter().enumerate() {
        for t in file_targets {
            if let Target::File(p) = t
                && let Some(&t) = index.get(p)
            {
                importers[t].push(f);
            }
        }
    }
    let mut reaches: Vec<bool> = files.iter().map(|f| !f.topics.is_empty()).collect();
    let mut stack: Vec<usize> = (0..files.len()).filter(|&f| reaches[f]).collect();
    while let Some(f) = stack.pop() {
        for &i in &importers[f] {
            if !std::mem::replace(&mut reaches[i], true) {
                stack.push(i);
            }
        }
    }
    // A module whose `export *` reaches a module no topic can be reached from is not known to
    // miss a name: that module may export it (and the pre-filter does not read it).
    let star_targets = |f: usize| -> Vec<usize> {
        files[f]
            .star_exports
            .iter()
            .filter_map(|&m| match &targets[f][m] {
                Target::File(p) => index.get(p).copied(),
                _ => None,
            })
            .collect()
    };
    let mut open: Vec<bool> = (0..files.len()).map(|f| !reaches[f]).collect();
    let mut changed = true;
    while changed {
        changed = false;
        for f in 0..files.len() {
            if !open[f] && star_targets(f).iter().any(|&t| open[t]) {
                open[f] = true;
                changed = true;
            }
        }
    }
    open.iter().map(|&o| !o).collect()
}

/// What [`uses`] reads besides the linker.
struct UseContext<'c> {
    topic_names: &'c TopicNames,
    resolved: &'c [Vec<(Value, usize)>],
    in_service: &'c [bool],
    reaches: &'c [bool],
}

fn uses<'a>(
    linker: &Linker<'a>,
    ctx: &UseContext<'_>,
    graph: &mut graph::Graph<'a>,
    out: &mut Linked,
) {
    let UseContext { topic_names, resolved, in_service, reaches } = *ctx;
    let files = linker.files;
    let mut diagnostics = Vec::new();
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
                    let node = (!in_service[f]).then(|| graph.node_of(f, use_.owner));
                    out.accesses.push(AccessFact {
                        file: f,
                        topic: name.clone(),
                        kind,
                        span: facts.span_of(use_.span),
                        node,
                    });
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
                Value::Missing { file: target, name } if reaches[target] => {
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
    out.diagnostics.append(&mut diagnostics);
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
