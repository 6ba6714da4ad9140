//! From every file's facts to the language-neutral facts: topics (and handles on topics
//! declared elsewhere) with their message types, subscriptions with their topics, publishes
//! and publisher refs linked through `use`s and paths, and the code graph: an item is run by
//! the items whose code names it, so a publish in a library crate is granted to the services
//! whose code reaches it (with the `use` or path that crosses into it in `importedAt`).

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use busbar_analysis::{
    AccessFact, ByteRange, CodeGraph, Runner, SubscriptionFact, TopicFact, TopicRefFact,
};
use busbar_diagnostics::{Diagnostic, Span};
use busbar_model::AccessKind;

use crate::diagnostics as diag;
use crate::facts::{PathRef, RawSpan, RefKind, ValueItem};
use crate::resolve::{NodeId, Res, Resolver};
use crate::schema;

#[derive(Debug, Default)]
pub(crate) struct Linked {
    pub topics: Vec<TopicFact>,
    pub topic_refs: Vec<TopicRefFact>,
    pub subscriptions: Vec<SubscriptionFact>,
    pub accesses: Vec<AccessFact>,
    pub code: CodeGraph,
    pub diagnostics: Vec<Diagnostic>,
    /// The pre-filter's seeds (`prefilter::interesting`): the names of the topic statics and
    /// of the items whose code publishes or refs a topic.
    pub seeds: Vec<String>,
}

struct Link<'r, 'a> {
    r: &'r Resolver<'a>,
    interesting: Option<&'r HashSet<String>>,
    /// The first module node of each (file, module of the file).
    node_of: HashMap<(usize, usize), NodeId>,
    /// Topics by (file, topic index): name and where it is declared.
    topics: HashMap<(usize, usize), (String, Span)>,
    graph_ids: HashMap<(NodeId, String), u32>,
    out: Linked,
}

fn range(r: RawSpan) -> ByteRange {
    ByteRange { lo: r.lo, hi: r.hi }
}

/// `interesting`: with the pre-filter, the names of `prefilter::interesting`; a reference that
/// names none of them is resolved without noting the skipped files it reads (whatever they
/// hold, its answer changes nothing: it is no topic and no runner of a publish).
pub(crate) fn link(r: &Resolver<'_>, interesting: Option<&HashSet<String>>) -> Linked {
    let mut node_of = HashMap::default();
    for (id, n) in r.nodes.iter().enumerate() {
        node_of.entry((n.file, n.local)).or_insert(id);
    }
    let mut l = Link {
        r,
        interesting,
        node_of,
        topics: HashMap::default(),
        graph_ids: HashMap::default(),
        out: Linked::default(),
    };
    l.declarations();
    l.subscriptions();
    l.references();
    r.noting(true);
    l.out
}

impl Link<'_, '_> {
    fn is_busbar(&self, node: NodeId, path: &[String]) -> bool {
        if path.first().is_some_and(|s| s == "busbar") {
            return true;
        }
        matches!(self.r.resolve(node, path, false).0, Res::Extern(c, _) if c == "busbar")
    }

    fn declarations(&mut self) {
        for (f, file) in self.r.files.iter().enumerate() {
            for (t, decl) in file.topics.iter().enumerate() {
                let Some(&node) = self.node_of.get(&(f, decl.module)) else { continue };
                let ty_path = &decl.topic_path[..decl.topic_path.len().saturating_sub(1)];
                if !self.is_busbar(node, ty_path) {
                    continue;
                }
                let Some((name, name_span)) = &decl.name else { continue };
                self.topics.insert((f, t), (name.clone(), name_span.clone()));
                let values = &file.modules[decl.module].values;
                let is_this = |v: &ValueItem| matches!(v, ValueItem::Topic(i) if *i == t);
                if let Some((item, _)) = values.iter().find(|(_, v)| is_this(v)) {
                    self.out.seeds.push(item.clone());
                }
                if decl.handle {
                    self.out.topic_refs.push(TopicRefFact {
                        file: f,
                        name: name.clone(),
                        name_span: name_span.clone(),
                    });
                    continue;
                }
                let schema = decl.message_type.as_ref().map(|ty| {
                    let lowered = schema::lower_message(self.r, node, ty, &decl.message_type_text);
                    self.out.diagnostics.extend(lowered.diagnostics);
                    lowered.schema
                });
                self.out.topics.push(TopicFact {
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
    }

    /// The topic a path names in `node`, or why not.
    fn topic_at(&self, node: NodeId, path: &[String]) -> Result<(String, Span), String> {
        let shown = path.join("::");
        match self.r.resolve(node, path, false) {
            (Res::Value(n, _, ValueItem::Topic(t)), used) if used == path.len() => self
                .topics
                .get(&(self.r.nodes[n].file, t))
                .cloned()
                .ok_or_else(|| format!("`{shown}` is a topic without a literal name")),
            (Res::Value(..), _) => Err(format!("`{shown}` is not a topic")),
            (Res::Type(..), _) => Err(format!("`{shown}` is a type, not a topic")),
            (Res::Module(_), _) => Err(format!("`{shown}` is a module, not a topic")),
            (Res::Extern(c, _), _) => {
                Err(format!("`{shown}` comes from the crate `{c}`, outside the workspace"))
            }
            (Res::None, _) => Err(format!("`{shown}` is declared nowhere in scope")),
        }
    }

    fn subscriptions(&mut self) {
        for (f, file) in self.r.files.iter().enumerate() {
            for sub in &file.subscriptions {
                let Some(&node) = self.node_of.get(&(f, sub.module)) else { continue };
                if !self.is_busbar(node, &sub.attr_path) {
                    continue;
                }
                let Some((path, _)) = &sub.topic else {
                    if sub.topic_span != sub.span {
                        let why = "it is not a path to a topic";
                        self.out
                            .diagnostics
                            .push(diag::unresolved_subscription_topic(sub.topic_span.clone(), why));
                    }
                    continue;
                };
                let topic = match self.topic_at(node, path) {
                    Ok((name, _)) => name,
                    Err(why) => {
                        self.out.diagnostics.push(diag::unresolved_subscription_topic(
                            sub.topic_span.clone(),
                            &why,
                        ));
                        continue;
                    }
                };
                let Some((name, name_span)) = &sub.name else { continue };
                self.out.subscriptions.push(SubscriptionFact {
                    file: f,
                    topic,
                    name: name.clone(),
                    name_span: name_span.clone(),
                    handler: Some(sub.handler.clone()),
                    settings: sub.settings.clone(),
                    explicit: sub.explicit.clone(),
                    span: sub.span.clone(),
                });
            }
        }
    }

    fn graph_node(&mut self, node: NodeId, item: &str) -> u32 {
        if let Some(&id) = self.graph_ids.get(&(node, item.to_string())) {
            return id;
        }
        let id = self.out.code.add(self.r.nodes[node].file);
        self.graph_ids.insert((node, item.to_string()), id);
        id
    }

    fn references(&mut self) {
        let mut escapes: HashSet<(usize, RawSpan)> = HashSet::default();
        for (f, file) in self.r.files.iter().enumerate() {
            let mut path: Vec<&str> = Vec::new();
            for re in &file.refs {
                let Some(&node) = self.node_of.get(&(f, re.module)) else { continue };
                path.clear();
                path.extend(file.segments_of(re));
                if let Some(names) = self.interesting {
                    self.r.noting(path.iter().any(|s| names.contains(*s)));
                }
                let (res, used) = self.r.resolve(node, &path, re.absolute);
                match res {
                    Res::Value(n, _, ValueItem::Topic(t)) if used == path.len() => {
                        let Some((name, declared)) =
                            self.topics.get(&(self.r.nodes[n].file, t)).cloned()
                        else {
                            continue;
                        };
                        let kind = match re.kind {
                            RefKind::Publish => AccessKind::Publish,
                            RefKind::Publisher => AccessKind::Ref,
                            RefKind::Name => continue,
                            RefKind::Other => {
                                if escapes.insert((f, re.span)) {
                                    let span = file.span_of(re.span);
                                    self.out
                                        .diagnostics
                                        .push(diag::invalid_topic_usage(&name, span, declared));
                                }
                                continue;
                            }
                        };
                        self.out.seeds.push(file.owner_of(re).to_string());
                        let owner = self.graph_node(node, file.owner_of(re));
                        self.out.accesses.push(AccessFact {
                            file: f,
                            topic: name,
                            kind,
                            span: file.span_of(re.span),
                            node: Some(owner),
                        });
                    }
                    Res::Value(n, item, _) | Res::Type(n, item) => {
                        let via = self.via(node, path[0], re, self.r.nodes[n].file != f);
                        let target = self.graph_node(n, &item);
                        let runner = self.graph_node(node, file.owner_of(re));
                        if target != runner {
                            self.out.code.nodes[target as usize]
                                .runners
                                .push(Runner { node: runner, via });
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// The `use` a reference goes through, or the path itself when it names another file's
    /// item directly.
    fn via(&self, node: NodeId, first: &str, re: &PathRef, other_file: bool) -> Option<ByteRange> {
        let n = &self.r.nodes[node];
        let m = &self.r.files[n.file].modules[n.local];
        let own = m.values.contains_key(first)
            || m.types.contains_key(first)
            || n.children.contains_key(first);
        match m.uses.get(first) {
            Some(binding) if !own => Some(range(binding.span)),
            _ if other_file => Some(range(re.span)),
            _ => None,
        }
    }
}
