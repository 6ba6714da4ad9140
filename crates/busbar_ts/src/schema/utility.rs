//! The global types a message type may use without declaring them: `Array<T>`, `Date`, and the
//! utility types (`Partial`, `Required`, `Readonly`, `Pick`, `Omit`, `Record`, `NonNullable`,
//! `Exclude`, `Extract`), evaluated on lowered shapes. Globals JSON cannot carry are open,
//! with a note.

use busbar_model::schema::{Literal, Object, Property, Shape};
use swc_atoms::Atom;

use super::{Low, Lowerer, Scope};
use crate::facts::RawSpan;

impl Lowerer<'_, '_> {
    /// The meaning of a global type name (one not declared or imported in the file), or `None`
    /// when it is not one busbar knows.
    pub(super) fn builtin(
        &mut self,
        scope: &Scope,
        name: &Atom,
        args: &[Low],
        span: RawSpan,
    ) -> Option<Low> {
        let arg = |i: usize| args.get(i).cloned().unwrap_or(Low::of(Shape::Any));
        let open_input =
            matches!(
                name.as_str(),
                "Partial" | "Required" | "Pick" | "Omit" | "NonNullable" | "Exclude" | "Extract"
            ) && args.first().is_some_and(|a| matches!(self.peek(&a.shape), Some(Shape::Any)));
        if open_input {
            // What was not followed was noted there; the result is open too.
            return Some(Low::of(Shape::Any));
        }
        let low = match name.as_str() {
            "Array" | "ReadonlyArray" => Low::of(Shape::Array(Box::new(arg(0).shape))),
            "Date" => Low::of(Shape::DateTime),
            "String" => Low::of(Shape::String),
            "Number" => Low::of(Shape::Number),
            "Boolean" => Low::of(Shape::Boolean),
            "BigInt" => Low::of(Shape::Integer),
            "Object" => Low::of(Shape::Any),
            "Readonly" => arg(0),
            "Partial" | "Required" => {
                let required = name.as_str() == "Required";
                let t = arg(0);
                match self.map_objects(&t.shape, &mut |o| {
                    for p in o.properties.values_mut() {
                        p.required = required;
                    }
                }) {
                    Some(shape) => Low { shape, ..t },
                    None => self.open(
                        scope.file,
                        span,
                        &format!("`{name}` of a type that is not an object type"),
                    ),
                }
            }
            "Pick" | "Omit" => {
                let pick = name.as_str() == "Pick";
                let t = arg(0);
                let Some(keys) = self.string_literals(&arg(1).shape) else {
                    return Some(self.open(
                        scope.file,
                        span,
                        &format!("`{name}` with keys that are not string literals"),
                    ));
                };
                if !pick && matches!(self.peek(&t.shape), Some(Shape::Union(_))) {
                    return Some(self.open(scope.file, span, "`Omit` of a union"));
                }
                match self.map_objects(&t.shape, &mut |o| {
                    o.properties.retain(|k, _| keys.contains(k) == pick);
                    if pick {
                        o.additional = None;
                    }
                }) {
                    Some(shape) => Low { shape, ..t },
                    None => self.open(
                        scope.file,
                        span,
                        &format!("`{name}` of a type that is not an object type"),
                    ),
                }
            }
            "Record" => {
                let value = arg(1).shape;
                match self.peek(&arg(0).shape).cloned() {
                    Some(Shape::String | Shape::Number | Shape::Any) => {
                        Low::of(Shape::Object(Object {
                            properties: Default::default(),
                            additional: Some(Box::new(value)),
                        }))
                    }
                    Some(keys) => match self.string_literals(&keys) {
                        Some(keys) => Low::of(Shape::Object(Object {
                            properties: keys
                                .into_iter()
                                .map(|k| (k, Property::new(value.clone(), true)))
                                .collect(),
                            additional: None,
                        })),
                        None => {
                            self.open(scope.file, span, "`Record` with keys that are not strings")
                        }
                    },
                    None => self.open(scope.file, span, "`Record` with keys that are not strings"),
                }
            }
            "NonNullable" => {
                let t = arg(0);
                let members = self.members_of(&t.shape);
                Low {
                    shape: Shape::union(members.into_iter().filter(|m| *m != Shape::Null)),
                    undefined: false,
                    attribute: t.attribute,
                }
            }
            "Exclude" | "Extract" => {
                let keep = name.as_str() == "Extract";
                let t = arg(0);
                let u = self.members_of(&arg(1).shape);
                // Only literal members are compared exactly; an object or primitive pattern
                // would need assignability, which busbar does not decide.
                if !u.iter().all(|m| matches!(self.peek(m), Some(Shape::Const(_)))) {
                    return Some(self.open(
                        scope.file,
                        span,
                        &format!("`{name}` with a type that is not a union of literals"),
                    ));
                }
                let members = self.members_of(&t.shape);
                Low {
                    shape: Shape::union(members.into_iter().filter(|m| u.contains(m) == keep)),
                    undefined: t.undefined && !keep,
                    attribute: t.attribute,
                }
            }
            "Promise" | "Map" | "Set" | "WeakMap" | "WeakSet" | "Function" | "Symbol"
            | "RegExp" | "Error" | "Buffer" | "Uint8Array" | "ArrayBuffer" => {
                self.open(scope.file, span, &format!("`{name}` is not a JSON value busbar models"))
            }
            _ => return None,
        };
        Some(low)
    }

    /// `T[K]`: the type of the properties `K` names (an array's element for `T[number]`).
    pub(super) fn indexed(
        &mut self,
        scope: &Scope,
        object: &Shape,
        index: &Shape,
        span: RawSpan,
    ) -> Low {
        if let (Some(Shape::Array(items)), Some(Shape::Number)) =
            (self.peek(object), self.peek(index))
        {
            return Low::of((**items).clone());
        }
        let Some(keys) = self.string_literals(index) else {
            return self.open(
                scope.file,
                span,
                "an indexed access type with keys that are not string literals",
            );
        };
        let mut shapes = Vec::new();
        let mut undefined = false;
        for member in self.members_of(object) {
            let Some(Shape::Object(o)) = self.peek(&member) else {
                return self.open(
                    scope.file,
                    span,
                    "an indexed access type of a type that is not an object type",
                );
            };
            for key in &keys {
                match o.properties.get(key) {
                    Some(p) => {
                        undefined |= !p.required;
                        shapes.push(p.shape.clone());
                    }
                    None => {
                        return self.open(
                            scope.file,
                            span,
                            &format!(
                                "an indexed access type of a key `{key}` the type does not have"
                            ),
                        );
                    }
                }
            }
        }
        Low { shape: Shape::union(shapes), undefined, attribute: false }
    }

    /// `keyof T`: its property names (of an object type; the common ones of a union).
    pub(super) fn key_of(&mut self, scope: &Scope, of: &Shape, span: RawSpan) -> Low {
        if matches!(self.peek(of), Some(Shape::Any)) {
            return Low::of(Shape::Any);
        }
        let mut common: Option<Vec<String>> = None;
        for member in self.members_of(of) {
            let Some(Shape::Object(o)) = self.peek(&member) else {
                return self.open(scope.file, span, "`keyof` of a type that is not an object type");
            };
            if o.additional.is_some() {
                return Low::of(Shape::String);
            }
            let keys: Vec<String> = o.properties.keys().cloned().collect();
            common = Some(match common {
                None => keys,
                Some(c) => c.into_iter().filter(|k| keys.contains(k)).collect(),
            });
        }
        let keys = common.unwrap_or_default();
        Low::of(Shape::union(keys.into_iter().map(|k| Shape::Const(Literal::String(k)))))
    }

    /// The members of a (referenced) union, or the shape itself.
    fn members_of(&self, shape: &Shape) -> Vec<Shape> {
        match self.peek(shape) {
            Some(Shape::Union(members)) => members.clone(),
            Some(_) | None => vec![shape.clone()],
        }
    }

    /// The strings a key type stands for (`"a" | "b"`, an enum of strings), or `None`.
    fn string_literals(&self, shape: &Shape) -> Option<Vec<String>> {
        self.members_of(shape)
            .iter()
            .map(|m| match self.peek(m) {
                Some(Shape::Const(Literal::String(s))) => Some(s.clone()),
                _ => None,
            })
            .collect()
    }

    /// The object type (or each object of a union) changed by `f`, inlined; `None` when a
    /// member is not a known object type.
    fn map_objects(&self, shape: &Shape, f: &mut dyn FnMut(&mut Object)) -> Option<Shape> {
        let mut out = Vec::new();
        for member in self.members_of(shape) {
            let Some(Shape::Object(o)) = self.peek(&member) else { return None };
            let mut o = o.clone();
            f(&mut o);
            out.push(Shape::Object(o));
        }
        Some(Shape::union(out))
    }
}
