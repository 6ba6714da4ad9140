//! Message types as data, language-neutral: what a frontend read from the code's type of a
//! topic's messages ([`Shape`], named parts under [`MessageSchema::defs`]), the attributes it
//! carries, and its JSON Schema (2020-12) rendering (`docs/json-contract.md` has the mapping).
//!
//! A frontend lowers its types into shapes; everything downstream (the contract, AsyncAPI, the
//! lockfile's compatibility check, validation at publish) reads only shapes or their JSON
//! Schema. Shapes are normalised as they are built (unions flattened, deduplicated and sorted;
//! properties sorted), so two spellings of one type are one shape.

use std::collections::{BTreeMap, BTreeSet};

use busbar_diagnostics::Span;
use serde_json::{Map, Value, json};

use crate::AttributeType;

/// The JSON Schema dialect of every schema busbar writes.
pub const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// The media type of messages whose body is their JSON.
pub const CONTENT_TYPE: &str = "application/json";

/// The annotation on a property that is an attribute (sent as message metadata too).
pub const ATTRIBUTE_KEYWORD: &str = "x-busbar-attribute";

/// What a value of a message (or of a part of it) may be.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Shape {
    /// Any JSON value: `unknown`, `any`, or a type busbar did not follow (with a note).
    Any,
    /// No value at all (`never`).
    Never,
    Null,
    Boolean,
    /// `number`.
    Number,
    /// `bigint`: an integer.
    Integer,
    String,
    /// `Date`: an RFC 3339 date-time string (`toJSON`).
    DateTime,
    /// One literal value.
    Const(Literal),
    Array(Box<Shape>),
    Tuple(Tuple),
    Object(Object),
    /// One of these (never fewer than two, flattened, sorted, no duplicates).
    Union(Vec<Shape>),
    /// All of these: an intersection that is not one object (a recursive part, a primitive with
    /// an object).
    AllOf(Vec<Shape>),
    /// A named type, under [`MessageSchema::defs`].
    Ref(String),
}

/// A literal type's value.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Literal {
    Bool(bool),
    /// A number as JSON writes it (`1`, `-2.5`).
    Number(String),
    String(String),
}

/// `[A, B?, ...C[]]`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tuple {
    pub items: Vec<Shape>,
    /// The fewest elements a value has: the leading `items` that are not optional, and any
    /// elements written after the rest element.
    pub required: usize,
    /// The type of the elements after `items`, when the tuple has a rest element.
    pub rest: Option<Box<Shape>>,
}

/// An object type: named properties, and the type of any other key (an index signature or
/// `Record<string, V>`).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Object {
    pub properties: BTreeMap<String, Property>,
    pub additional: Option<Box<Shape>>,
}

/// A property of an object type.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Property {
    pub shape: Shape,
    /// Present in every message (not `?`, and `undefined` is not one of its types).
    pub required: bool,
    /// `Some` when the property is an attribute (`Attribute<T>`), with its value type.
    pub attribute: Option<AttributeType>,
    /// The doc comment, without comment markers.
    pub doc: Option<String>,
    /// Where the property is declared; not part of the shape (ignored by comparisons).
    pub span: At,
}

impl Property {
    pub fn new(shape: Shape, required: bool) -> Self {
        Property { shape, required, attribute: None, doc: None, span: At(None) }
    }
}

/// A position carried along with a shape but never part of it: equal to every other `At`.
#[derive(Clone, Debug, Default)]
pub struct At(pub Option<Span>);

impl PartialEq for At {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for At {}
impl PartialOrd for At {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for At {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}
impl std::hash::Hash for At {
    fn hash<H: std::hash::Hasher>(&self, _: &mut H) {}
}

impl Shape {
    /// `A | B | ...`, normalised: nested unions flattened, `never` dropped, `any` absorbing,
    /// `true | false` as `boolean`, members deduplicated and sorted; one member is itself.
    pub fn union(members: impl IntoIterator<Item = Shape>) -> Shape {
        let mut all = BTreeSet::new();
        for member in members {
            match member {
                Shape::Union(inner) => all.extend(inner),
                Shape::Never => {}
                other => {
                    all.insert(other);
                }
            }
        }
        if all.contains(&Shape::Any) {
            return Shape::Any;
        }
        let t = Shape::Const(Literal::Bool(true));
        let f = Shape::Const(Literal::Bool(false));
        if all.contains(&t) && all.contains(&f) {
            all.remove(&t);
            all.remove(&f);
            all.insert(Shape::Boolean);
        }
        if all.contains(&Shape::Boolean) {
            all.remove(&t);
            all.remove(&f);
        }
        let mut all: Vec<Shape> = all.into_iter().collect();
        match all.len() {
            0 => Shape::Never,
            1 => all.pop().unwrap_or(Shape::Never),
            _ => Shape::Union(all),
        }
    }

    /// The shapes directly inside this one: array items, tuple elements, property types, the
    /// type of other keys, union and intersection members.
    pub fn children(&self) -> Vec<&Shape> {
        match self {
            Shape::Array(items) => vec![items],
            Shape::Tuple(t) => t.items.iter().chain(t.rest.as_deref()).collect(),
            Shape::Object(o) => {
                o.properties.values().map(|p| &p.shape).chain(o.additional.as_deref()).collect()
            }
            Shape::Union(m) | Shape::AllOf(m) => m.iter().collect(),
            _ => Vec::new(),
        }
    }

    /// Calls `f` on this shape and every shape inside it, depth first.
    pub fn visit(&self, f: &mut impl FnMut(&Shape)) {
        f(self);
        for child in self.children() {
            child.visit(f);
        }
    }

    /// The members of a union, or the shape itself.
    pub fn members(&self) -> &[Shape] {
        match self {
            Shape::Union(members) => members,
            other => std::slice::from_ref(other),
        }
    }
}

/// The message type of a topic: the root shape and the named types it refers to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MessageSchema {
    /// The message type as written (`OrderPlaced`, `Envelope<Order>`): the schema's title.
    pub title: String,
    pub root: Option<Shape>,
    /// Named types (interfaces, aliases, enums, instances of generic types), by name.
    pub defs: BTreeMap<String, Shape>,
}

/// An attribute of a message type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttributeInfo {
    pub kind: AttributeType,
    /// In every message (in every branch of a union, and not optional).
    pub required: bool,
    pub span: Option<Span>,
}

/// A top-level field of a message type (in any branch), for naming what a filter may use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldInfo {
    pub attribute: Option<AttributeType>,
    pub span: Option<Span>,
}

impl MessageSchema {
    /// The shape a reference names, following references (`None` for a cycle of references or
    /// a missing name).
    pub fn resolve<'a>(&'a self, shape: &'a Shape) -> Option<&'a Shape> {
        let mut shape = shape;
        let mut seen = 0;
        while let Shape::Ref(name) = shape {
            shape = self.defs.get(name)?;
            seen += 1;
            if seen > self.defs.len() {
                return None;
            }
        }
        Some(shape)
    }

    /// The objects a message is: the root's object, or one per branch of a union (through
    /// references and intersections). `None` when a branch is not an object (or not known).
    pub fn branches(&self) -> Option<Vec<&Object>> {
        let root = self.root.as_ref()?;
        let mut out = Vec::new();
        self.collect_branches(root, &mut out, 0).then_some(out)
    }

    fn collect_branches<'a>(
        &'a self,
        shape: &'a Shape,
        out: &mut Vec<&'a Object>,
        depth: usize,
    ) -> bool {
        if depth > 64 {
            return false;
        }
        match self.resolve(shape) {
            Some(Shape::Object(o)) => {
                out.push(o);
                true
            }
            Some(Shape::Union(members)) => {
                members.iter().all(|m| self.collect_branches(m, out, depth + 1))
            }
            _ => false,
        }
    }

    /// Every top-level field of any branch, with whether it is an attribute.
    pub fn fields(&self) -> Option<BTreeMap<String, FieldInfo>> {
        let branches = self.branches()?;
        let mut fields: BTreeMap<String, FieldInfo> = BTreeMap::new();
        for object in &branches {
            for (name, p) in &object.properties {
                let entry = fields
                    .entry(name.clone())
                    .or_insert(FieldInfo { attribute: None, span: p.span.0.clone() });
                if entry.attribute.is_none() && p.attribute.is_some() {
                    entry.attribute = p.attribute;
                    entry.span = p.span.0.clone();
                }
            }
        }
        Some(fields)
    }

    /// The attributes of the message type: a property that is an attribute in some branch.
    /// It is required when every branch has it, required, and as an attribute; its kind is the
    /// one every branch agrees on (else [`AttributeType::Other`]). `None` when the message
    /// type is not known as objects.
    pub fn attributes(&self) -> Option<BTreeMap<String, AttributeInfo>> {
        let branches = self.branches()?;
        let mut out: BTreeMap<String, AttributeInfo> = BTreeMap::new();
        for object in &branches {
            for (name, p) in &object.properties {
                let Some(kind) = p.attribute else { continue };
                match out.get_mut(name) {
                    Some(info) => {
                        if info.kind != kind {
                            info.kind = AttributeType::Other;
                        }
                    }
                    None => {
                        out.insert(
                            name.clone(),
                            AttributeInfo { kind, required: true, span: p.span.0.clone() },
                        );
                    }
                }
            }
        }
        for (name, info) in &mut out {
            info.required = branches.iter().all(|o| {
                o.properties.get(name).is_some_and(|p| p.required && p.attribute.is_some())
            });
        }
        Some(out)
    }

    /// Whether the root is a union of more than one object (attributes on it are not found by
    /// Encore's own runtime).
    pub fn is_union(&self) -> bool {
        self.branches().is_some_and(|b| b.len() > 1)
    }

    /// The JSON Schema (2020-12) document of the message type.
    pub fn to_json_schema(&self) -> Value {
        let mut doc = Map::new();
        doc.insert("$schema".into(), DIALECT.into());
        if !self.title.is_empty() {
            doc.insert("title".into(), self.title.clone().into());
        }
        let root = self.root.as_ref().map_or(json!({}), |r| self.render(r));
        if let Value::Object(fields) = root {
            for (k, v) in fields {
                doc.insert(k, v);
            }
        }
        if !self.defs.is_empty() {
            let defs: Map<String, Value> =
                self.defs.iter().map(|(name, shape)| (name.clone(), self.render(shape))).collect();
            doc.insert("$defs".into(), Value::Object(defs));
        }
        Value::Object(doc)
    }

    /// The JSON Schema of one shape (references as `#/$defs/NAME`).
    pub fn render(&self, shape: &Shape) -> Value {
        let refs = |name: &str| format!("#/$defs/{name}");
        self.render_in(shape, &Dialect { refs: &refs, draft07: false })
    }

    /// The JSON Schema of one shape in a dialect.
    pub fn render_in(&self, shape: &Shape, dialect: &Dialect<'_>) -> Value {
        let r = |s: &Shape| self.render_in(s, dialect);
        match shape {
            Shape::Any => json!({}),
            Shape::Never => json!({ "not": {} }),
            Shape::Null => json!({ "type": "null" }),
            Shape::Boolean => json!({ "type": "boolean" }),
            Shape::Number => json!({ "type": "number" }),
            Shape::Integer => json!({ "type": "integer" }),
            Shape::String => json!({ "type": "string" }),
            Shape::DateTime => json!({ "type": "string", "format": "date-time" }),
            Shape::Const(l) => json!({ "const": literal_value(l) }),
            Shape::Array(items) => json!({ "type": "array", "items": r(items) }),
            Shape::Tuple(t) => {
                let mut out = Map::new();
                out.insert("type".into(), "array".into());
                // With no leading elements (`[...T[]]`) it is an array of `T`: `items` in both
                // drafts (an empty `prefixItems` is invalid, and draft 07 ignores
                // `additionalItems` without an `items` array).
                let (items_key, rest_key) = match (t.items.is_empty(), dialect.draft07) {
                    (true, _) => ("", "items"),
                    (false, true) => ("items", "additionalItems"),
                    (false, false) => ("prefixItems", "items"),
                };
                if !t.items.is_empty() {
                    out.insert(items_key.into(), t.items.iter().map(r).collect());
                }
                out.insert("minItems".into(), t.required.into());
                match &t.rest {
                    Some(rest) => {
                        out.insert(rest_key.into(), r(rest));
                    }
                    None => {
                        out.insert(rest_key.into(), false.into());
                        out.insert("maxItems".into(), t.items.len().into());
                    }
                }
                Value::Object(out)
            }
            Shape::Object(o) => {
                let mut out = Map::new();
                out.insert("type".into(), "object".into());
                if !o.properties.is_empty() {
                    let props: Map<String, Value> = o
                        .properties
                        .iter()
                        .map(|(name, p)| (name.clone(), self.render_property(p, dialect)))
                        .collect();
                    out.insert("properties".into(), Value::Object(props));
                }
                let required: Vec<Value> = o
                    .properties
                    .iter()
                    .filter(|(_, p)| p.required)
                    .map(|(n, _)| n.clone().into())
                    .collect();
                if !required.is_empty() {
                    out.insert("required".into(), required.into());
                }
                if let Some(additional) = &o.additional {
                    out.insert("additionalProperties".into(), r(additional));
                }
                Value::Object(out)
            }
            Shape::Union(members) => {
                if members.iter().all(|m| matches!(m, Shape::Const(_))) {
                    let values: Vec<Value> = members
                        .iter()
                        .filter_map(|m| match m {
                            Shape::Const(l) => Some(literal_value(l)),
                            _ => None,
                        })
                        .collect();
                    return json!({ "enum": values });
                }
                let keyword = if self.discriminator(members).is_some() { "oneOf" } else { "anyOf" };
                json!({ keyword: members.iter().map(r).collect::<Vec<_>>() })
            }
            Shape::AllOf(members) => json!({ "allOf": members.iter().map(r).collect::<Vec<_>>() }),
            Shape::Ref(name) => json!({ "$ref": (dialect.refs)(name) }),
        }
    }

    fn render_property(&self, p: &Property, dialect: &Dialect<'_>) -> Value {
        let mut value = self.render_in(&p.shape, dialect);
        if let Value::Object(map) = &mut value {
            if let Some(doc) = &p.doc {
                map.insert("description".into(), doc.clone().into());
            }
            if p.attribute.is_some() {
                map.insert(ATTRIBUTE_KEYWORD.into(), true.into());
            }
        }
        value
    }

    /// The property that tells a union's branches apart: one every branch (an object) has,
    /// required, with a literal value different in each. `None` when there is none.
    pub fn discriminator(&self, members: &[Shape]) -> Option<String> {
        let objects: Vec<&Object> = members
            .iter()
            .map(|m| match self.resolve(m) {
                Some(Shape::Object(o)) => Some(o),
                _ => None,
            })
            .collect::<Option<_>>()?;
        let first = objects.first()?;
        'names: for (name, p) in &first.properties {
            if !matches!(p.shape, Shape::Const(_)) {
                continue;
            }
            let mut values = BTreeSet::new();
            for o in &objects {
                match o.properties.get(name) {
                    Some(Property { shape: Shape::Const(l), required: true, .. }) => {
                        if !values.insert(l) {
                            continue 'names;
                        }
                    }
                    _ => continue 'names,
                }
            }
            return Some(name.clone());
        }
        None
    }
}

/// How a schema is written: where references point, and the JSON Schema draft.
pub struct Dialect<'a> {
    /// The `$ref` of a named type.
    pub refs: &'a dyn Fn(&str) -> String,
    /// Draft 07 (AsyncAPI's schema format): tuples as `items: [...]` with `additionalItems`,
    /// instead of 2020-12's `prefixItems` with `items`.
    pub draft07: bool,
}

/// A literal as a JSON value.
pub fn literal_value(l: &Literal) -> Value {
    match l {
        Literal::Bool(b) => Value::Bool(*b),
        Literal::String(s) => Value::String(s.clone()),
        Literal::Number(n) => {
            n.parse::<serde_json::Number>().map(Value::Number).unwrap_or_else(|_| n.clone().into())
        }
    }
}

/// The value type of an attribute whose property has this shape (as far as it tells).
pub fn attribute_kind(schema: &MessageSchema, shape: &Shape) -> AttributeType {
    let Some(shape) = schema.resolve(shape) else { return AttributeType::Other };
    let kind = |s: &Shape| match schema.resolve(s) {
        Some(Shape::String | Shape::DateTime | Shape::Const(Literal::String(_))) => {
            AttributeType::String
        }
        Some(Shape::Number | Shape::Integer | Shape::Const(Literal::Number(_))) => {
            AttributeType::Number
        }
        Some(Shape::Boolean | Shape::Const(Literal::Bool(_))) => AttributeType::Boolean,
        _ => AttributeType::Other,
    };
    match shape {
        Shape::Union(members) => {
            let mut kinds = members.iter().map(kind);
            let first = kinds.next().unwrap_or(AttributeType::Other);
            if kinds.all(|k| k == first) { first } else { AttributeType::Other }
        }
        other => kind(other),
    }
}

impl serde::Serialize for MessageSchema {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json_schema().serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(props: &[(&str, Shape, bool)]) -> Shape {
        Shape::Object(Object {
            properties: props
                .iter()
                .map(|(n, s, r)| (n.to_string(), Property::new(s.clone(), *r)))
                .collect(),
            additional: None,
        })
    }

    #[test]
    fn unions_are_normalised() {
        let s = |v: &str| Shape::Const(Literal::String(v.into()));
        let a = Shape::union([s("b"), Shape::union([s("a"), s("b")]), Shape::Never]);
        assert_eq!(a, Shape::Union(vec![s("a"), s("b")]));
        let b = Shape::union([
            Shape::Const(Literal::Bool(true)),
            Shape::Const(Literal::Bool(false)),
            Shape::Null,
        ]);
        assert_eq!(b, Shape::Union(vec![Shape::Null, Shape::Boolean]));
        assert_eq!(Shape::union([Shape::String, Shape::Any]), Shape::Any);
        assert_eq!(Shape::union([Shape::String]), Shape::String);
        assert_eq!(Shape::union([]), Shape::Never);
    }

    #[test]
    fn discriminated_unions_are_one_of_and_others_any_of() {
        let kind = |v: &str| Shape::Const(Literal::String(v.into()));
        let mut schema = MessageSchema::default();
        schema
            .defs
            .insert("A".into(), obj(&[("kind", kind("a"), true), ("x", Shape::Number, true)]));
        schema.defs.insert("B".into(), obj(&[("kind", kind("b"), true)]));
        let u = Shape::union([Shape::Ref("A".into()), Shape::Ref("B".into())]);
        assert_eq!(schema.discriminator(u.members()).as_deref(), Some("kind"));
        assert!(schema.render(&u).get("oneOf").is_some());
        // The same value twice is no discriminator.
        schema.defs.insert("B".into(), obj(&[("kind", kind("a"), true)]));
        assert_eq!(schema.discriminator(u.members()), None);
        assert!(schema.render(&u).get("anyOf").is_some());
    }

    #[test]
    fn attributes_in_some_branches_are_optional() {
        let mut a = obj(&[("tenant", Shape::String, true), ("region", Shape::String, true)]);
        let mut b = obj(&[("tenant", Shape::String, true)]);
        for o in [&mut a, &mut b] {
            if let Shape::Object(o) = o {
                for p in o.properties.values_mut() {
                    p.attribute = Some(AttributeType::String);
                }
            }
        }
        let schema = MessageSchema {
            title: "E".into(),
            root: Some(Shape::union([a, b])),
            defs: BTreeMap::new(),
        };
        let attrs = schema.attributes().unwrap_or_default();
        assert!(attrs["tenant"].required);
        assert!(!attrs["region"].required);
        assert!(schema.is_union());
    }

    #[test]
    fn tuples_and_objects_render_as_json_schema() {
        let schema = MessageSchema::default();
        let t = Shape::Tuple(Tuple {
            items: vec![Shape::String, Shape::Number],
            required: 1,
            rest: None,
        });
        assert_eq!(
            schema.render(&t),
            json!({"type": "array", "prefixItems": [{"type": "string"}, {"type": "number"}], "minItems": 1, "maxItems": 2, "items": false})
        );
        let o = obj(&[("a", Shape::DateTime, true), ("b", Shape::Integer, false)]);
        assert_eq!(
            schema.render(&o),
            json!({"type": "object", "properties": {"a": {"type": "string", "format": "date-time"}, "b": {"type": "integer"}}, "required": ["a"]})
        );
    }
}
