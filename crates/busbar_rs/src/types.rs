//! Message types as written: structs and enums with their serde attributes, and type
//! expressions, into [`crate::facts`] (lowered to schemas in [`crate::schema`]).

use syn::spanned::Spanned;

use crate::extract::{Extractor, string_lit};
use crate::facts::*;

pub(crate) fn rs_type(x: &Extractor<'_>, ty: &syn::Type) -> RsType {
    match ty {
        syn::Type::Path(p) if p.qself.is_none() => {
            let segments =
                p.path.segments.iter().map(|s| crate::extract::ident_name(&s.ident)).collect();
            let args = match p.path.segments.last().map(|s| &s.arguments) {
                Some(syn::PathArguments::AngleBracketed(a)) => a
                    .args
                    .iter()
                    .filter_map(|g| match g {
                        syn::GenericArgument::Type(t) => Some(rs_type(x, t)),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            RsType::Path { segments, args, span: x.raw(type_path_span(p)) }
        }
        syn::Type::Reference(r) => rs_type(x, &r.elem),
        syn::Type::Paren(p) => rs_type(x, &p.elem),
        syn::Type::Group(g) => rs_type(x, &g.elem),
        syn::Type::Tuple(t) => RsType::Tuple(t.elems.iter().map(|e| rs_type(x, e)).collect()),
        syn::Type::Array(a) => RsType::Slice(Box::new(rs_type(x, &a.elem))),
        syn::Type::Slice(s) => RsType::Slice(Box::new(rs_type(x, &s.elem))),
        syn::Type::BareFn(_) => {
            RsType::Unsupported { what: "a function pointer", span: x.raw(ty.span()) }
        }
        syn::Type::ImplTrait(_) | syn::Type::TraitObject(_) => {
            RsType::Unsupported { what: "a trait type", span: x.raw(ty.span()) }
        }
        _ => RsType::Unsupported { what: "a type busbar does not read", span: x.raw(ty.span()) },
    }
}

/// A type path's span as syn's `Spanned::span` gives it (through the closing `>` of its last
/// segment's arguments), without printing the type to a token stream.
pub(crate) fn type_path_span(p: &syn::TypePath) -> proc_macro2::Span {
    let path = crate::extract::path_span(&p.path);
    let end = match p.path.segments.last().map(|s| &s.arguments) {
        Some(syn::PathArguments::AngleBracketed(a)) => a.gt_token.span,
        Some(syn::PathArguments::Parenthesized(_)) => return p.span(),
        _ => return path,
    };
    path.join(end).unwrap_or(path)
}

/// The `#[serde(...)]` entries of some attributes: `(key, string value)`; a flag has none.
fn serde_entries(attrs: &[syn::Attribute]) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    for a in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        let _ = a.parse_nested_meta(|meta| {
            let key = meta.path.get_ident().map(|i| i.to_string()).unwrap_or_default();
            let value = match meta.value() {
                Ok(v) => v.parse::<syn::Expr>().ok().and_then(|e| string_lit(&e)).map(|(s, _)| s),
                Err(_) => {
                    // `rename(serialize = "...")` and other nested forms: read what they hold.
                    if meta.input.peek(syn::token::Paren) {
                        let _ = meta.parse_nested_meta(|inner| {
                            if let Ok(v) = inner.value() {
                                let _ = v.parse::<syn::Expr>();
                            }
                            Ok(())
                        });
                    }
                    None
                }
            };
            out.push((key, value));
            Ok(())
        });
    }
    out
}

fn container(attrs: &[syn::Attribute]) -> SerdeContainer {
    let mut c = SerdeContainer::default();
    for (key, value) in serde_entries(attrs) {
        match key.as_str() {
            "rename_all" => c.rename_all = value,
            "tag" => c.tag = value,
            "content" => c.content = value,
            "untagged" => c.untagged = true,
            "default" => c.default = true,
            "transparent" => c.transparent = true,
            _ => {}
        }
    }
    c
}

fn field_attrs(attrs: &[syn::Attribute]) -> SerdeField {
    let mut f = SerdeField::default();
    for (key, value) in serde_entries(attrs) {
        match key.as_str() {
            "rename" => f.rename = value.or(f.rename),
            "skip" | "skip_serializing" | "skip_deserializing" => f.skip = true,
            "default" => f.default = true,
            "flatten" => f.flatten = true,
            "skip_serializing_if" => f.skip_serializing_if = true,
            _ => {}
        }
    }
    f
}

/// `#[busbar(attribute)]`.
fn is_attribute(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().filter(|a| a.path().is_ident("busbar")).any(|a| {
        let mut found = false;
        let _ = a.parse_nested_meta(|meta| {
            found |= meta.path.is_ident("attribute");
            Ok(())
        });
        found
    })
}

fn body(x: &Extractor<'_>, fields: &syn::Fields) -> TypeBody {
    match fields {
        syn::Fields::Named(named) => TypeBody::Fields(
            named
                .named
                .iter()
                .map(|f| Field {
                    name: f.ident.as_ref().map(crate::extract::ident_name).unwrap_or_default(),
                    ty: rs_type(x, &f.ty),
                    serde: field_attrs(&f.attrs),
                    attribute: is_attribute(&f.attrs),
                    span: x.raw(f.ident.as_ref().map_or_else(|| f.span(), |i| i.span())),
                    doc: doc_attrs(x, &f.attrs),
                })
                .collect(),
        ),
        syn::Fields::Unnamed(u) => {
            TypeBody::Tuple(u.unnamed.iter().map(|f| rs_type(x, &f.ty)).collect())
        }
        syn::Fields::Unit => TypeBody::Unit,
    }
}

pub(crate) fn struct_def(x: &Extractor<'_>, s: &syn::ItemStruct) -> TypeDef {
    TypeDef { serde: container(&s.attrs), body: body(x, &s.fields) }
}

pub(crate) fn enum_def(x: &Extractor<'_>, e: &syn::ItemEnum) -> TypeDef {
    let variants = e
        .variants
        .iter()
        .map(|v| Variant {
            name: crate::extract::ident_name(&v.ident),
            serde: field_attrs(&v.attrs),
            body: body(x, &v.fields),
        })
        .collect();
    TypeDef { serde: container(&e.attrs), body: TypeBody::Variants(variants) }
}

/// The range from the first to the last `#[doc]` attribute (a `///` comment) in `attrs`, found
/// without reading the literals.
fn doc_attrs(x: &Extractor<'_>, attrs: &[syn::Attribute]) -> Option<RawSpan> {
    let mut docs = attrs.iter().filter(|a| a.path().is_ident("doc"));
    let first = docs.next()?;
    let last = docs.next_back().unwrap_or(first);
    let lo = x.raw(first.pound_token.span).lo;
    let hi = x.raw(last.bracket_token.span.close()).hi;
    Some(RawSpan { lo, hi })
}

/// The doc comment of the attributes in `span` of `text` (see [`doc_attrs`]).
pub(crate) fn doc_text(text: &str, span: RawSpan) -> Option<String> {
    let attrs = text.get(span.lo as usize..span.hi as usize)?;
    let parsed = syn::parse::Parser::parse_str(syn::Attribute::parse_outer, attrs).ok()?;
    crate::extract::doc_of(&parsed)
}
