//! Types as written: interfaces, type aliases and enums, read into [`TypeExpr`]s (plain data)
//! that `crate::schema` lowers into message schemas once every file is read.

use busbar_model::schema::Literal;
use swc_atoms::Atom;
use swc_common::Spanned;
use swc_ecma_ast as ast;

use super::{Extractor, unwrap};
use crate::facts::{Keyword, Member, ObjectType, TupleElement, TypeDef, TypeExpr, TypeParam};

impl Extractor {
    pub(super) fn interface(&self, i: &ast::TsInterfaceDecl) -> TypeDef {
        let extends = i
            .extends
            .iter()
            .map(|e| match self.entity_path(unwrap(&e.expr)) {
                Some(path) => TypeExpr::Ref {
                    path,
                    args: self.type_args(e.type_args.as_deref()),
                    span: crate::parse::to_raw(e.span),
                },
                None => TypeExpr::Unsupported {
                    what: "an `extends` clause that is not a type name",
                    span: crate::parse::to_raw(e.span),
                },
            })
            .collect();
        TypeDef::Interface {
            params: self.type_params(i.type_params.as_deref()),
            body: self.object_type(&i.body.body),
            extends,
        }
    }

    pub(super) fn type_alias(&self, a: &ast::TsTypeAliasDecl) -> TypeDef {
        TypeDef::Alias {
            params: self.type_params(a.type_params.as_deref()),
            ty: self.type_expr(&a.type_ann),
        }
    }

    /// An enum's members with their values: strings as written, numbers as written or counted
    /// on from the previous number (`None` once a value is computed).
    pub(super) fn enum_def(&self, e: &ast::TsEnumDecl) -> TypeDef {
        let mut members = Vec::new();
        let mut next: Option<f64> = Some(0.0);
        for m in &e.members {
            let name = match &m.id {
                ast::TsEnumMemberId::Ident(id) => id.sym.clone(),
                ast::TsEnumMemberId::Str(s) => Atom::from(&*s.value.to_string_lossy()),
            };
            let value = match m.init.as_deref().map(unwrap) {
                None => next.map(|n| Literal::Number(number_text(n))),
                Some(ast::Expr::Lit(ast::Lit::Str(s))) => {
                    next = None;
                    Some(Literal::String(s.value.to_string_lossy().into_owned()))
                }
                Some(init) => match number_value(init) {
                    Some(n) => {
                        next = Some(n);
                        Some(Literal::Number(number_text(n)))
                    }
                    None => {
                        next = None;
                        None
                    }
                },
            };
            if let Some(Literal::Number(_)) = &value {
                next = next.map(|n| n + 1.0);
            }
            members.push((name, value));
        }
        TypeDef::Enum { members }
    }

    fn type_params(&self, decl: Option<&ast::TsTypeParamDecl>) -> Vec<TypeParam> {
        decl.map(|d| {
            d.params
                .iter()
                .map(|p| TypeParam {
                    name: p.name.sym.clone(),
                    default: p.default.as_deref().map(|t| self.type_expr(t)),
                })
                .collect()
        })
        .unwrap_or_default()
    }

    fn type_args(&self, args: Option<&ast::TsTypeParamInstantiation>) -> Vec<TypeExpr> {
        args.map(|a| a.params.iter().map(|t| self.type_expr(t)).collect()).unwrap_or_default()
    }

    fn entity_path(&self, e: &ast::Expr) -> Option<Vec<Atom>> {
        match e {
            ast::Expr::Ident(id) => Some(vec![id.sym.clone()]),
            ast::Expr::Member(m) => {
                let mut path = self.entity_path(unwrap(&m.obj))?;
                let ast::MemberProp::Ident(p) = &m.prop else { return None };
                path.push(p.sym.clone());
                Some(path)
            }
            _ => None,
        }
    }

    pub(super) fn type_expr(&self, t: &ast::TsType) -> TypeExpr {
        let unsupported = |what: &'static str, span: swc_common::Span| TypeExpr::Unsupported {
            what,
            span: crate::parse::to_raw(span),
        };
        match t {
            ast::TsType::TsKeywordType(k) => keyword(k.kind),
            ast::TsType::TsTypeRef(r) => {
                if self.is_attribute(&r.type_name) {
                    let inner = r
                        .type_params
                        .as_ref()
                        .and_then(|p| p.params.first())
                        .map_or(TypeExpr::Keyword(Keyword::Unknown), |t| self.type_expr(t));
                    return TypeExpr::Attribute(Box::new(inner));
                }
                TypeExpr::Ref {
                    path: type_name_path(&r.type_name),
                    args: self.type_args(r.type_params.as_deref()),
                    span: crate::parse::to_raw(r.span),
                }
            }
            ast::TsType::TsTypeLit(lit) => TypeExpr::Object(self.object_type(&lit.members)),
            ast::TsType::TsParenthesizedType(p) => self.type_expr(&p.type_ann),
            ast::TsType::TsArrayType(a) => TypeExpr::Array(Box::new(self.type_expr(&a.elem_type))),
            ast::TsType::TsTupleType(tuple) => TypeExpr::Tuple(
                tuple
                    .elem_types
                    .iter()
                    .map(|e| {
                        // A labelled element carries `?` and `...` on its label.
                        let optional =
                            matches!(&e.label, Some(ast::Pat::Ident(b)) if b.id.optional);
                        let rest = matches!(&e.label, Some(ast::Pat::Rest(_)));
                        match &*e.ty {
                            ast::TsType::TsOptionalType(o) => TupleElement {
                                ty: self.type_expr(&o.type_ann),
                                optional: true,
                                rest,
                            },
                            ast::TsType::TsRestType(r) => TupleElement {
                                ty: self.type_expr(&r.type_ann),
                                optional: false,
                                rest: true,
                            },
                            ty => TupleElement { ty: self.type_expr(ty), optional, rest },
                        }
                    })
                    .collect(),
            ),
            ast::TsType::TsUnionOrIntersectionType(
                ast::TsUnionOrIntersectionType::TsUnionType(u),
            ) => TypeExpr::Union(u.types.iter().map(|t| self.type_expr(t)).collect()),
            ast::TsType::TsUnionOrIntersectionType(
                ast::TsUnionOrIntersectionType::TsIntersectionType(i),
            ) => TypeExpr::Intersection(i.types.iter().map(|t| self.type_expr(t)).collect()),
            ast::TsType::TsLitType(l) => match &l.lit {
                ast::TsLit::Str(s) => {
                    TypeExpr::Lit(Literal::String(s.value.to_string_lossy().into_owned()))
                }
                ast::TsLit::Number(n) => TypeExpr::Lit(Literal::Number(number_text(n.value))),
                ast::TsLit::Bool(b) => TypeExpr::Lit(Literal::Bool(b.value)),
                ast::TsLit::BigInt(b) => TypeExpr::Lit(Literal::Number(b.value.to_string())),
                ast::TsLit::Tpl(_) => TypeExpr::Template,
            },
            ast::TsType::TsTypeOperator(op) => match op.op {
                ast::TsTypeOperatorOp::ReadOnly => self.type_expr(&op.type_ann),
                ast::TsTypeOperatorOp::KeyOf => TypeExpr::KeyOf {
                    of: Box::new(self.type_expr(&op.type_ann)),
                    span: crate::parse::to_raw(op.span),
                },
                ast::TsTypeOperatorOp::Unique => unsupported("`unique symbol`", op.span),
            },
            ast::TsType::TsOptionalType(o) => self.type_expr(&o.type_ann),
            ast::TsType::TsRestType(r) => self.type_expr(&r.type_ann),
            ast::TsType::TsThisType(x) => unsupported("`this`", x.span),
            ast::TsType::TsFnOrConstructorType(f) => {
                TypeExpr::Function { span: crate::parse::to_raw(f.span()) }
            }
            ast::TsType::TsTypeQuery(q) => unsupported("`typeof`", q.span),
            ast::TsType::TsConditionalType(c) => unsupported("a conditional type", c.span),
            ast::TsType::TsInferType(i) => unsupported("`infer`", i.span),
            ast::TsType::TsIndexedAccessType(i) => TypeExpr::Index {
                object: Box::new(self.type_expr(&i.obj_type)),
                index: Box::new(self.type_expr(&i.index_type)),
                span: crate::parse::to_raw(i.span),
            },
            ast::TsType::TsMappedType(m) => unsupported("a mapped type", m.span),
            ast::TsType::TsTypePredicate(p) => unsupported("a type predicate", p.span),
            ast::TsType::TsImportType(i) => unsupported("an `import(...)` type", i.span),
        }
    }

    fn object_type(&self, members: &[ast::TsTypeElement]) -> ObjectType {
        let mut object = ObjectType::default();
        for member in members {
            match member {
                ast::TsTypeElement::TsPropertySignature(p) => {
                    let name = match unwrap(&p.key) {
                        ast::Expr::Ident(id) => id.sym.clone(),
                        ast::Expr::Lit(ast::Lit::Str(s)) => Atom::from(&*s.value.to_string_lossy()),
                        ast::Expr::Lit(ast::Lit::Num(n)) => Atom::from(number_text(n.value)),
                        _ => continue,
                    };
                    let doc = super::doc::doc_comment(
                        self.facts.source.text(),
                        p.span.lo.0.saturating_sub(1) as usize,
                    );
                    object.members.push(Member {
                        name,
                        ty: p.type_ann.as_ref().map(|ann| self.type_expr(&ann.type_ann)),
                        optional: p.optional,
                        span: crate::parse::to_raw(p.key.span()),
                        doc,
                    });
                }
                ast::TsTypeElement::TsIndexSignature(i) if object.index.is_none() => {
                    let value =
                        i.type_ann.as_ref().map_or(TypeExpr::Keyword(Keyword::Unknown), |a| {
                            self.type_expr(&a.type_ann)
                        });
                    object.index = Some(Box::new(value));
                }
                // Methods, getters, call and construct signatures: not data.
                _ => {}
            }
        }
        object
    }

    /// Whether a type name is `Attribute` from the pubsub module.
    fn is_attribute(&self, name: &ast::TsEntityName) -> bool {
        match name {
            ast::TsEntityName::Ident(id) => self.known.attribute.contains(&id.sym),
            ast::TsEntityName::TsQualifiedName(q) => {
                &*q.right.sym == "Attribute"
                    && matches!(&q.left, ast::TsEntityName::Ident(ns) if self.known.pubsub_ns.contains(&ns.sym))
            }
        }
    }

    /// The text of a type (or expression) as written, whitespace collapsed.
    pub(super) fn type_text(&self, span: swc_common::Span) -> String {
        let text = self.facts.source.text();
        let start = (span.lo.0.saturating_sub(1) as usize).min(text.len());
        let end = (span.hi.0.saturating_sub(1) as usize).clamp(start, text.len());
        text.get(start..end)
            .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    }

    /// Is this `ref<T>` type argument the `Publisher` permission?
    pub(super) fn is_publisher(&self, t: &ast::TsType) -> bool {
        let ast::TsType::TsTypeRef(r) = t else { return false };
        match &r.type_name {
            ast::TsEntityName::Ident(id) => self.known.publisher.contains(&id.sym),
            ast::TsEntityName::TsQualifiedName(q) => {
                &*q.right.sym == "Publisher"
                    && matches!(&q.left, ast::TsEntityName::Ident(ns) if self.known.pubsub_ns.contains(&ns.sym))
            }
        }
    }
}

fn type_name_path(name: &ast::TsEntityName) -> Vec<Atom> {
    match name {
        ast::TsEntityName::Ident(id) => vec![id.sym.clone()],
        ast::TsEntityName::TsQualifiedName(q) => {
            let mut path = type_name_path(&q.left);
            path.push(q.right.sym.clone());
            path
        }
    }
}

fn keyword(kind: ast::TsKeywordTypeKind) -> TypeExpr {
    use ast::TsKeywordTypeKind as K;
    TypeExpr::Keyword(match kind {
        K::TsStringKeyword => Keyword::String,
        K::TsNumberKeyword => Keyword::Number,
        K::TsBooleanKeyword => Keyword::Boolean,
        K::TsBigIntKeyword => Keyword::BigInt,
        K::TsNullKeyword => Keyword::Null,
        K::TsUndefinedKeyword | K::TsVoidKeyword => Keyword::Undefined,
        K::TsAnyKeyword | K::TsUnknownKeyword | K::TsIntrinsicKeyword => Keyword::Unknown,
        K::TsNeverKeyword => Keyword::Never,
        K::TsObjectKeyword => Keyword::Object,
        K::TsSymbolKeyword => Keyword::Symbol,
    })
}

/// A number as JSON writes it: integers without a fraction.
pub(crate) fn number_text(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
        format!("{}", n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or_else(|| n.to_string(), |n| n.to_string())
    }
}

/// The value of a numeric enum initializer written as a literal (`5`, `-1`).
fn number_value(e: &ast::Expr) -> Option<f64> {
    match e {
        ast::Expr::Lit(ast::Lit::Num(n)) => Some(n.value),
        ast::Expr::Unary(u) if u.op == ast::UnaryOp::Minus => {
            number_value(unwrap(&u.arg)).map(|n| -n)
        }
        _ => None,
    }
}
