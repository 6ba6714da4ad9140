//! Message types from Rust structs and enums, with serde's attributes (`rename`,
//! `rename_all`, `skip`, `default`, `flatten`, `transparent`, `Option`, `tag`/`content`/
//! `untagged` enums), into the same language-neutral shapes (`busbar_model::schema`) that the
//! equivalent TypeScript type gives: the JSON serde writes and reads.

use std::collections::BTreeMap;

use busbar_diagnostics::Diagnostic;
use busbar_model::schema::{
    At, Literal, MessageSchema, Object, Property, Shape, Tuple, attribute_kind,
};

use crate::diagnostics as diag;
use crate::facts::*;
use crate::resolve::{NodeId, Res, Resolver};

pub(crate) struct Lowered {
    pub schema: MessageSchema,
    pub diagnostics: Vec<Diagnostic>,
}

struct Lower<'r, 'a> {
    resolver: &'r Resolver<'a>,
    defs: BTreeMap<String, Shape>,
    /// Named types being lowered (a recursive type refers to itself by name).
    active: Vec<String>,
    diagnostics: Vec<Diagnostic>,
    /// Attributes found, applied once every def is known.
    attributes: Vec<(String, String)>,
}

pub(crate) fn lower_message(
    resolver: &Resolver<'_>,
    node: NodeId,
    ty: &RsType,
    title: &str,
) -> Lowered {
    let mut l = Lower {
        resolver,
        defs: BTreeMap::new(),
        active: Vec::new(),
        diagnostics: Vec::new(),
        attributes: Vec::new(),
    };
    let root = l.shape(node, ty);
    let mut schema = MessageSchema { title: title.to_string(), root: Some(root), defs: l.defs };
    // Attribute kinds need the whole schema (a field may name another def).
    let kinds: Vec<(String, String, busbar_model::AttributeType)> = l
        .attributes
        .iter()
        .filter_map(|(def, field)| {
            let Some(Shape::Object(o)) = schema.defs.get(def) else { return None };
            let p = o.properties.get(field)?;
            Some((def.clone(), field.clone(), attribute_kind(&schema, &p.shape)))
        })
        .collect();
    for (def, field, kind) in kinds {
        if let Some(Shape::Object(o)) = schema.defs.get_mut(&def)
            && let Some(p) = o.properties.get_mut(&field)
        {
            p.attribute = Some(kind);
        }
    }
    Lowered { schema, diagnostics: l.diagnostics }
}

const INTEGERS: &[&str] =
    &["i8", "i16", "i32", "i64", "i128", "isize", "u8", "u16", "u32", "u64", "u128", "usize"];

impl Lower<'_, '_> {
    fn shape(&mut self, node: NodeId, ty: &RsType) -> Shape {
        match ty {
            RsType::Tuple(items) if items.is_empty() => Shape::Null,
            RsType::Tuple(items) => {
                let items: Vec<Shape> = items.iter().map(|t| self.shape(node, t)).collect();
                Shape::Tuple(Tuple { required: items.len(), items, rest: None })
            }
            RsType::Slice(elem) => Shape::Array(Box::new(self.shape(node, elem))),
            RsType::Unsupported { what, span } => self.open(node, *span, what),
            RsType::Path { segments, args, span } => self.path(node, segments, args, *span),
        }
    }

    fn open(&mut self, node: NodeId, span: RawSpan, what: &str) -> Shape {
        let file = &self.resolver.files[self.resolver.nodes[node].file];
        self.diagnostics.push(diag::unsupported_message_part(file.span_of(span), what));
        Shape::Any
    }

    fn arg(&mut self, node: NodeId, args: &[RsType], i: usize) -> Shape {
        args.get(i).map_or(Shape::Any, |t| self.shape(node, t))
    }

    fn path(&mut self, node: NodeId, segments: &[String], args: &[RsType], span: RawSpan) -> Shape {
        let last = segments.last().map(String::as_str).unwrap_or("");
        let (res, used) = self.resolver.resolve(node, segments, false);
        match res {
            Res::Type(at, name) if used == segments.len() => return self.named(at, &name, span),
            Res::Value(..) | Res::Module(_) => {
                let shown = segments.join("::");
                return self.unresolved(node, &shown, span, "it is not a type");
            }
            _ => {}
        }
        match last {
            "String" | "str" | "char" | "Uuid" | "PathBuf" | "Path" => Shape::String,
            "bool" => Shape::Boolean,
            "f32" | "f64" => Shape::Number,
            n if INTEGERS.contains(&n) => Shape::Integer,
            n if n.starts_with("NonZero") => Shape::Integer,
            "Option" => Shape::union([self.arg(node, args, 0), Shape::Null]),
            "Vec" | "VecDeque" | "HashSet" | "BTreeSet" | "LinkedList" | "BinaryHeap" => {
                Shape::Array(Box::new(self.arg(node, args, 0)))
            }
            "HashMap" | "BTreeMap" | "IndexMap" => Shape::Object(Object {
                properties: BTreeMap::new(),
                additional: Some(Box::new(self.arg(node, args, 1))),
            }),
            "Box" | "Rc" | "Arc" | "Cow" | "RefCell" | "Cell" => self.arg(node, args, 0),
            "Value"
                if segments.len() == 1 || segments.first().is_some_and(|s| s == "serde_json") =>
            {
                Shape::Any
            }
            "DateTime" | "OffsetDateTime" | "SystemTime" => Shape::DateTime,
            _ => match self.resolver.resolve(node, segments, false).0 {
                Res::Extern(c, _) => self.open(
                    node,
                    span,
                    &format!("`{}` comes from the crate `{c}`", segments.join("::")),
                ),
                _ => self.unresolved(
                    node,
                    &segments.join("::"),
                    span,
                    "it is declared nowhere in the workspace",
                ),
            },
        }
    }

    fn unresolved(&mut self, node: NodeId, name: &str, span: RawSpan, why: &str) -> Shape {
        let file = &self.resolver.files[self.resolver.nodes[node].file];
        self.diagnostics.push(diag::unresolved_type(name, file.span_of(span), why));
        Shape::Any
    }

    /// A struct, enum or alias of the workspace, by name under `defs`.
    fn named(&mut self, at: NodeId, name: &str, span: RawSpan) -> Shape {
        if self.defs.contains_key(name) || self.active.iter().any(|a| a == name) {
            return Shape::Ref(name.to_string());
        }
        let Some(item) = self.resolver.type_item(at, name) else { return Shape::Any };
        let shape = match item {
            TypeItem::Alias(ty) => {
                if self.active.len() > 64 {
                    return Shape::Any;
                }
                self.active.push(name.to_string());
                let s = self.shape(at, ty);
                self.active.pop();
                return s;
            }
            TypeItem::Other => {
                return self.open(at, span, &format!("`{name}` is a trait or a union"));
            }
            TypeItem::Struct(def) | TypeItem::Enum(def) => {
                self.active.push(name.to_string());
                let s = self.def(at, name, def);
                self.active.pop();
                s
            }
        };
        self.defs.insert(name.to_string(), shape);
        Shape::Ref(name.to_string())
    }

    fn def(&mut self, at: NodeId, name: &str, def: &TypeDef) -> Shape {
        match &def.body {
            TypeBody::Variants(variants) => self.enumeration(at, def, variants),
            body if def.serde.transparent => match body {
                TypeBody::Fields(f) if f.len() == 1 => self.shape(at, &f[0].ty),
                TypeBody::Tuple(t) if t.len() == 1 => self.shape(at, &t[0]),
                _ => Shape::Any,
            },
            body => self.body(at, Some(name), &def.serde, body),
        }
    }

    fn body(
        &mut self,
        at: NodeId,
        def_name: Option<&str>,
        serde: &SerdeContainer,
        body: &TypeBody,
    ) -> Shape {
        match body {
            TypeBody::Unit => Shape::Null,
            TypeBody::Tuple(items) if items.len() == 1 => self.shape(at, &items[0]),
            TypeBody::Tuple(items) => self.shape(at, &RsType::Tuple(items.clone())),
            TypeBody::Fields(fields) => Shape::Object(self.object(at, def_name, serde, fields)),
            TypeBody::Variants(_) => Shape::Any,
        }
    }

    fn object(
        &mut self,
        at: NodeId,
        def_name: Option<&str>,
        serde: &SerdeContainer,
        fields: &[Field],
    ) -> Object {
        let mut object = Object::default();
        for field in fields {
            if field.serde.skip {
                continue;
            }
            let shape = self.shape(at, &field.ty);
            if field.serde.flatten {
                let resolved = match &shape {
                    Shape::Ref(n) => self.defs.get(n).cloned(),
                    other => Some(other.clone()),
                };
                if let Some(Shape::Object(inner)) = resolved {
                    object.properties.extend(inner.properties);
                }
                continue;
            }
            let key = field
                .serde
                .rename
                .clone()
                .unwrap_or_else(|| rename(&field.name, serde.rename_all.as_deref(), false));
            let optional = matches!(&field.ty, RsType::Path { segments, .. } if segments.last().is_some_and(|s| s == "Option"));
            let required = !(optional
                || field.serde.default
                || serde.default
                || field.serde.skip_serializing_if);
            let file = &self.resolver.files[self.resolver.nodes[at].file];
            let mut p = Property::new(shape, required);
            p.doc = field.doc.and_then(|at| crate::types::doc_text(file.source.text(), at));
            p.span = At(Some(file.span_of(field.span)));
            if field.attribute
                && let Some(def) = def_name
            {
                // The kind is set once the whole schema is known.
                p.attribute = Some(busbar_model::AttributeType::Other);
                self.attributes.push((def.to_string(), key.clone()));
            }
            object.properties.insert(key, p);
        }
        object
    }

    fn enumeration(&mut self, at: NodeId, def: &TypeDef, variants: &[Variant]) -> Shape {
        let serde = &def.serde;
        let mut members = Vec::new();
        for v in variants.iter().filter(|v| !v.serde.skip) {
            let tag_value = v
                .serde
                .rename
                .clone()
                .unwrap_or_else(|| rename(&v.name, serde.rename_all.as_deref(), true));
            let konst = Shape::Const(Literal::String(tag_value.clone()));
            let inner = || SerdeContainer::default();
            let shape = if serde.untagged {
                self.body(at, None, &inner(), &v.body)
            } else if let Some(tag) = &serde.tag {
                match (&serde.content, &v.body) {
                    (Some(content), TypeBody::Unit) => {
                        object_of([(tag.clone(), konst)]).tap_content(content, None)
                    }
                    (Some(content), body) => {
                        let value = self.body(at, None, &inner(), body);
                        object_of([(tag.clone(), konst)]).tap_content(content, Some(value))
                    }
                    (None, TypeBody::Fields(fields)) => {
                        let mut o = self.object(at, None, &inner(), fields);
                        o.properties.insert(tag.clone(), Property::new(konst, true));
                        Shape::Object(o)
                    }
                    (None, TypeBody::Unit) => Shape::Object(object_of([(tag.clone(), konst)])),
                    (None, body) => {
                        // A newtype of a struct: the struct's fields with the tag.
                        let value = self.body(at, None, &inner(), body);
                        let resolved = match &value {
                            Shape::Ref(n) => self.defs.get(n).cloned(),
                            other => Some(other.clone()),
                        };
                        match resolved {
                            Some(Shape::Object(mut o)) => {
                                o.properties.insert(tag.clone(), Property::new(konst, true));
                                Shape::Object(o)
                            }
                            _ => Shape::Any,
                        }
                    }
                }
            } else {
                match &v.body {
                    TypeBody::Unit => konst,
                    body => {
                        let value = self.body(at, None, &inner(), body);
                        Shape::Object(object_of([(tag_value, value)]))
                    }
                }
            };
            members.push(shape);
        }
        Shape::union(members)
    }
}

fn object_of<const N: usize>(props: [(String, Shape); N]) -> Object {
    Object {
        properties: props.into_iter().map(|(k, s)| (k, Property::new(s, true))).collect(),
        additional: None,
    }
}

trait TapContent {
    fn tap_content(self, content: &str, value: Option<Shape>) -> Shape;
}

impl TapContent for Object {
    fn tap_content(mut self, content: &str, value: Option<Shape>) -> Shape {
        if let Some(value) = value {
            self.properties.insert(content.to_string(), Property::new(value, true));
        }
        Shape::Object(self)
    }
}

/// serde's `rename_all`: fields are written in snake_case, variants in PascalCase.
pub(crate) fn rename(name: &str, rule: Option<&str>, variant: bool) -> String {
    let Some(rule) = rule else { return name.to_string() };
    let words: Vec<String> = if variant {
        let mut words: Vec<String> = Vec::new();
        for c in name.chars() {
            if c.is_uppercase() || words.is_empty() {
                words.push(String::new());
            }
            if let Some(w) = words.last_mut() {
                w.extend(c.to_lowercase());
            }
        }
        words
    } else {
        name.split('_').filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
    };
    let capitalized = |w: &String| {
        let mut c = w.chars();
        c.next().map(|f| f.to_uppercase().chain(c).collect::<String>()).unwrap_or_default()
    };
    match rule {
        "lowercase" => words.concat(),
        "UPPERCASE" => words.concat().to_uppercase(),
        "PascalCase" => words.iter().map(capitalized).collect(),
        "camelCase" => {
            let mut out = words.first().cloned().unwrap_or_default();
            out.extend(words.iter().skip(1).map(capitalized));
            out
        }
        "snake_case" => words.join("_"),
        "SCREAMING_SNAKE_CASE" => words.join("_").to_uppercase(),
        "kebab-case" => words.join("-"),
        "SCREAMING-KEBAB-CASE" => words.join("-").to_uppercase(),
        _ => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::rename;

    #[test]
    fn serde_rename_rules() {
        assert_eq!(rename("user_id", Some("camelCase"), false), "userId");
        assert_eq!(rename("user_id", Some("PascalCase"), false), "UserId");
        assert_eq!(rename("user_id", Some("SCREAMING-KEBAB-CASE"), false), "USER-ID");
        assert_eq!(rename("OrderPlaced", Some("snake_case"), true), "order_placed");
        assert_eq!(rename("OrderPlaced", Some("kebab-case"), true), "order-placed");
        assert_eq!(rename("OrderPlaced", Some("camelCase"), true), "orderPlaced");
        assert_eq!(rename("OrderPlaced", Some("lowercase"), true), "orderplaced");
        assert_eq!(rename("OrderPlaced", None, true), "OrderPlaced");
    }
}
