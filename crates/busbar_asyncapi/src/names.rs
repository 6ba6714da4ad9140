//! One `components/schemas` for every topic's named types: a type keeps its name; two
//! different types of one name (different shapes, or the same shape referring to different
//! types) get `Name`, `Name_2`, ... in topic order. "The same type" is compared with everything
//! it refers to, so a shared name always means one schema.

use std::collections::{BTreeMap, BTreeSet};

use busbar_model::AppModel;
use busbar_model::schema::{Dialect, MessageSchema, Shape};
use serde_json::{Map, Value};

/// A def with every def it reaches, by local name: what makes two defs the same type.
type Closure = BTreeMap<String, Shape>;

pub(crate) struct SchemaNames {
    /// (topic, local name) → global name.
    global: BTreeMap<(String, String), String>,
    /// Global name → (the topic whose def it renders, the local name there).
    owners: BTreeMap<String, (String, String)>,
}

impl SchemaNames {
    pub fn of(model: &AppModel) -> Self {
        let mut global = BTreeMap::new();
        let mut owners: BTreeMap<String, (String, String)> = BTreeMap::new();
        let mut by_name: BTreeMap<String, Vec<(Closure, String)>> = BTreeMap::new();
        for topic in &model.topics {
            for local in topic.schema.defs.keys() {
                let closure = closure(&topic.schema, local);
                let taken = by_name.entry(local.clone()).or_default();
                let name = match taken.iter().find(|(c, _)| *c == closure) {
                    Some((_, name)) => name.clone(),
                    None => {
                        let name = (1..)
                            .map(|i| if i == 1 { local.clone() } else { format!("{local}_{i}") })
                            .find(|n| !owners.contains_key(n))
                            .unwrap_or_else(|| local.clone());
                        taken.push((closure, name.clone()));
                        owners.insert(name.clone(), (topic.name.clone(), local.clone()));
                        name
                    }
                };
                global.insert((topic.name.clone(), local.clone()), name);
            }
        }
        SchemaNames { global, owners }
    }

    /// The global name of a topic's local def name.
    pub fn global(&self, topic: &str, local: &str) -> String {
        self.global
            .get(&(topic.to_string(), local.to_string()))
            .cloned()
            .unwrap_or_else(|| local.to_string())
    }

    /// Every schema under its global name, as AsyncAPI's schema format (draft 07) writes it.
    pub fn rendered(&self, model: &AppModel) -> Map<String, Value> {
        let mut out = Map::new();
        for (name, (topic_name, local)) in &self.owners {
            let Some(topic) = model.topics.iter().find(|t| &t.name == topic_name) else { continue };
            let Some(shape) = topic.schema.defs.get(local) else { continue };
            let refs = |l: &str| format!("#/components/schemas/{}", self.global(topic_name, l));
            let dialect = Dialect { refs: &refs, draft07: true };
            out.insert(name.clone(), topic.schema.render_in(shape, &dialect));
        }
        out
    }
}

fn closure(schema: &MessageSchema, start: &str) -> Closure {
    let mut out = Closure::new();
    let mut todo = vec![start.to_string()];
    let mut seen = BTreeSet::new();
    while let Some(name) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let Some(shape) = schema.defs.get(&name) else { continue };
        refs(shape, &mut todo);
        out.insert(name, shape.clone());
    }
    out
}

/// The names a shape refers to.
fn refs(shape: &Shape, out: &mut Vec<String>) {
    shape.visit(&mut |s| {
        if let Shape::Ref(n) = s {
            out.push(n.clone());
        }
    });
}
