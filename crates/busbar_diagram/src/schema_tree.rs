//! A topic's message schema as a readable tree for the page's topic panel: one line per field
//! (`name?: type`, attributes marked), nested objects and the branches of a union indented
//! below their field, each named type expanded once per path (a recursion says so).

use busbar_model::schema::{Literal, MessageSchema, Object, Shape, literal_value};

/// At most this many lines; the rest is summarised.
const MAX_LINES: usize = 200;
const MAX_DEPTH: usize = 12;

/// One line of the tree: its depth, its text and where the field is declared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Line {
    pub depth: usize,
    pub text: String,
    pub location: Option<String>,
}

/// The tree of a message schema (empty when the schema is unknown).
pub(crate) fn lines(schema: &MessageSchema) -> Vec<Line> {
    let Some(root) = &schema.root else { return Vec::new() };
    let mut t = Tree { schema, out: Vec::new(), path: Vec::new() };
    t.out.push(Line { depth: 0, text: label(root), location: None });
    t.expand(root, 1);
    if t.out.len() > MAX_LINES {
        let more = t.out.len() - MAX_LINES;
        t.out.truncate(MAX_LINES);
        t.out.push(Line { depth: 0, text: format!("… and {more} more lines"), location: None });
    }
    t.out
}

struct Tree<'a> {
    schema: &'a MessageSchema,
    out: Vec<Line>,
    /// The named types being expanded (a recursion stops at the second).
    path: Vec<String>,
}

impl Tree<'_> {
    fn expand(&mut self, shape: &Shape, depth: usize) {
        if depth > MAX_DEPTH || self.out.len() > MAX_LINES {
            return;
        }
        match shape {
            Shape::Ref(name) => {
                if self.path.contains(name) {
                    return;
                }
                let Some(def) = self.schema.defs.get(name) else { return };
                self.path.push(name.clone());
                self.expand(def, depth);
                self.path.pop();
            }
            Shape::Object(o) => self.object(o, depth),
            Shape::Array(items) => self.expand(items, depth),
            Shape::Union(members) if !members.iter().all(|m| matches!(m, Shape::Const(_))) => {
                for member in members {
                    if matches!(member, Shape::Null) {
                        continue;
                    }
                    let text = format!("| {}", label(member));
                    self.out.push(Line { depth, text, location: None });
                    self.expand(member, depth + 1);
                }
            }
            Shape::AllOf(members) => {
                for member in members {
                    self.expand(member, depth);
                }
            }
            _ => {}
        }
    }

    fn object(&mut self, o: &Object, depth: usize) {
        for (name, p) in &o.properties {
            let mut text =
                format!("{name}{}: {}", if p.required { "" } else { "?" }, label(&p.shape));
            if p.attribute.is_some() {
                text.push_str("  [attribute]");
            }
            let recursive = matches!(&p.shape, Shape::Ref(n) if self.path.contains(n));
            if recursive {
                text.push_str("  (recursive)");
            }
            let location = p.span.0.as_ref().map(|s| s.location());
            self.out.push(Line { depth, text, location });
            if !recursive {
                self.expand(&p.shape, depth + 1);
            }
        }
        if let Some(additional) = &o.additional {
            let text = format!("[key: string]: {}", label(additional));
            self.out.push(Line { depth, text, location: None });
            self.expand(additional, depth + 1);
        }
    }
}

/// A short name of a shape: `string`, `Line[]`, `"eu" | "us"`, `Order`.
fn label(shape: &Shape) -> String {
    match shape {
        Shape::Any => "any".into(),
        Shape::Never => "never".into(),
        Shape::Null => "null".into(),
        Shape::Boolean => "boolean".into(),
        Shape::Number => "number".into(),
        Shape::Integer => "integer".into(),
        Shape::String => "string".into(),
        Shape::DateTime => "date-time".into(),
        Shape::Const(l) => literal(l),
        Shape::Array(items) => match **items {
            Shape::Union(_) => format!("({})[]", label(items)),
            _ => format!("{}[]", label(items)),
        },
        Shape::Tuple(t) => {
            let items: Vec<String> = t.items.iter().map(label).collect();
            format!("[{}]", items.join(", "))
        }
        Shape::Object(_) => "object".into(),
        Shape::Union(members) => {
            let all: Vec<String> = members.iter().map(label).collect();
            let text = all.join(" | ");
            if text.len() > 60 { format!("one of {} types", members.len()) } else { text }
        }
        Shape::AllOf(members) => {
            let all: Vec<String> = members.iter().map(label).collect();
            all.join(" & ")
        }
        Shape::Ref(name) => name.clone(),
    }
}

fn literal(l: &Literal) -> String {
    literal_value(l).to_string()
}
