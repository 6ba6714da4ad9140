//! Message types: interfaces, type aliases and type literals, read far enough to know their
//! fields and which of them are `Attribute<...>`.

use busbar_model::AttributeType;
use swc_atoms::Atom;
use swc_common::Spanned;
use swc_ecma_ast as ast;

use super::{Extractor, unwrap};
use crate::facts::{Field, TypeDef, TypeExpr};

impl Extractor {
    pub(super) fn interface(&self, i: &ast::TsInterfaceDecl) -> TypeDef {
        let fields = self.fields(&i.body.body);
        let extends = i
            .extends
            .iter()
            .map(|e| match self.entity_path(unwrap(&e.expr)) {
                Some(path) => TypeExpr::Ref { path, span: crate::parse::to_raw(e.span) },
                None => TypeExpr::Unsupported { span: crate::parse::to_raw(e.span) },
            })
            .collect();
        TypeDef::Interface { fields, extends }
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
        match t {
            ast::TsType::TsTypeRef(r) => TypeExpr::Ref {
                path: type_name_path(&r.type_name),
                span: crate::parse::to_raw(r.span),
            },
            ast::TsType::TsTypeLit(lit) => TypeExpr::Literal(self.fields(&lit.members)),
            ast::TsType::TsParenthesizedType(p) => self.type_expr(&p.type_ann),
            ast::TsType::TsUnionOrIntersectionType(
                ast::TsUnionOrIntersectionType::TsIntersectionType(i),
            ) => TypeExpr::Intersection(i.types.iter().map(|t| self.type_expr(t)).collect()),
            other => TypeExpr::Unsupported { span: crate::parse::to_raw(other.span()) },
        }
    }

    fn fields(&self, members: &[ast::TsTypeElement]) -> Vec<Field> {
        let mut fields = Vec::new();
        for member in members {
            let ast::TsTypeElement::TsPropertySignature(p) = member else { continue };
            let name = match unwrap(&p.key) {
                ast::Expr::Ident(id) => id.sym.clone(),
                ast::Expr::Lit(ast::Lit::Str(s)) => Atom::from(&*s.value.to_string_lossy()),
                _ => continue,
            };
            let attribute = p.type_ann.as_ref().and_then(|ann| self.attribute_type(&ann.type_ann));
            fields.push(Field { name, attribute, span: crate::parse::to_raw(p.key.span()) });
        }
        fields
    }

    /// `Some` when the type is `Attribute<T>` from the pubsub module.
    fn attribute_type(&self, t: &ast::TsType) -> Option<AttributeType> {
        let ast::TsType::TsTypeRef(r) = t else { return None };
        let is_attribute = match &r.type_name {
            ast::TsEntityName::Ident(id) => self.known.attribute.contains(&id.sym),
            ast::TsEntityName::TsQualifiedName(q) => {
                &*q.right.sym == "Attribute"
                    && matches!(&q.left, ast::TsEntityName::Ident(ns) if self.known.pubsub_ns.contains(&ns.sym))
            }
        };
        if !is_attribute {
            return None;
        }
        Some(
            r.type_params
                .as_ref()
                .and_then(|p| p.params.first())
                .map_or(AttributeType::Other, |t| value_type(t)),
        )
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

fn value_type(t: &ast::TsType) -> AttributeType {
    match t {
        ast::TsType::TsKeywordType(k) => match k.kind {
            ast::TsKeywordTypeKind::TsStringKeyword => AttributeType::String,
            ast::TsKeywordTypeKind::TsNumberKeyword | ast::TsKeywordTypeKind::TsBigIntKeyword => {
                AttributeType::Number
            }
            ast::TsKeywordTypeKind::TsBooleanKeyword => AttributeType::Boolean,
            _ => AttributeType::Other,
        },
        ast::TsType::TsLitType(l) => match &l.lit {
            ast::TsLit::Str(_) | ast::TsLit::Tpl(_) => AttributeType::String,
            ast::TsLit::Number(_) | ast::TsLit::BigInt(_) => AttributeType::Number,
            ast::TsLit::Bool(_) => AttributeType::Boolean,
        },
        ast::TsType::TsParenthesizedType(p) => value_type(&p.type_ann),
        ast::TsType::TsUnionOrIntersectionType(ast::TsUnionOrIntersectionType::TsUnionType(u)) => {
            let mut kinds = u.types.iter().map(|t| value_type(t));
            let first = kinds.next().unwrap_or(AttributeType::Other);
            if kinds.all(|k| k == first) { first } else { AttributeType::Other }
        }
        _ => AttributeType::Other,
    }
}
