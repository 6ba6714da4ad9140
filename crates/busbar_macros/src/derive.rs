//! `#[derive(Message)]`: the attribute fields of a message type, by their JSON names.
//!
//! An attribute's name is the field's name as serde writes it (`#[serde(rename = "...")]` on
//! the field, else the container's `rename_all` applied to it), because the sidecar reads
//! attribute values from the JSON body and filters and ordering name them that way.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Data, DeriveInput};

/// The most attributes a message may carry (as on SNS; the broker refuses more).
const MAX_ATTRIBUTES: usize = 10;

pub(crate) fn expand(input: &DeriveInput) -> syn::Result<TokenStream> {
    let rename_all = container_rename_all(&input.attrs)?;
    let mut names: Vec<String> = Vec::new();
    let mut values = Vec::new();
    match &input.data {
        Data::Struct(data) => {
            for field in &data.fields {
                if !is_attribute(&field.attrs)? {
                    continue;
                }
                let Some(ident) = &field.ident else {
                    return Err(syn::Error::new(
                        field.span(),
                        "`#[busbar(attribute)]` goes on a named field (a tuple struct's fields \
                         have no name to filter or order by)",
                    ));
                };
                let serde = field_serde(&field.attrs)?;
                if let Some(why) = serde.unusable {
                    return Err(syn::Error::new(field.span(), why));
                }
                let unraw = ident.to_string().trim_start_matches("r#").to_string();
                let name =
                    serde.rename.unwrap_or_else(|| apply_rename(rename_all.as_deref(), &unraw));
                if names.contains(&name) {
                    return Err(syn::Error::new(
                        ident.span(),
                        format!("two attribute fields are named `{name}` in JSON"),
                    ));
                }
                let ty = &field.ty;
                values.push(quote_spanned! {ty.span()=>
                    if let ::std::option::Option::Some(value) =
                        <#ty as ::busbar::AttributeValue>::attribute_value(&self.#ident)
                    {
                        out.push((#name, value));
                    }
                });
                names.push(name);
            }
        }
        Data::Enum(data) => {
            for variant in &data.variants {
                for field in &variant.fields {
                    if is_attribute(&field.attrs)? {
                        return Err(syn::Error::new(
                            field.span(),
                            "`#[busbar(attribute)]` goes on a field of a struct: a variant's \
                             field is not in every message",
                        ));
                    }
                }
            }
        }
        Data::Union(u) => {
            return Err(syn::Error::new(
                u.union_token.span(),
                "a message type is a struct or an enum that serde serializes",
            ));
        }
    }
    if names.len() > MAX_ATTRIBUTES {
        return Err(syn::Error::new(
            input.ident.span(),
            format!(
                "`{}` has {} attribute fields; a message carries at most {MAX_ATTRIBUTES} \
                 (as on SNS)",
                input.ident,
                names.len()
            ),
        ));
    }
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    Ok(quote! {
        impl #impl_generics ::busbar::Message for #ident #ty_generics #where_clause {
            const ATTRIBUTES: &'static [&'static str] = &[#(#names),*];

            fn attributes(&self) -> ::std::vec::Vec<(&'static str, ::std::string::String)> {
                #[allow(unused_mut)]
                let mut out = ::std::vec::Vec::new();
                #(#values)*
                out
            }
        }
    })
}

/// Whether the field says `#[busbar(attribute)]`; any other `busbar` key is an error.
fn is_attribute(attrs: &[syn::Attribute]) -> syn::Result<bool> {
    let mut found = false;
    for attr in attrs.iter().filter(|a| a.path().is_ident("busbar")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("attribute") {
                found = true;
                Ok(())
            } else {
                Err(meta.error("the only `busbar` field setting is `attribute`"))
            }
        })?;
    }
    Ok(found)
}

/// What serde says about a field, as far as its JSON name goes.
#[derive(Default)]
struct FieldSerde {
    rename: Option<String>,
    /// Why the field cannot be an attribute (serde leaves it out, or flattens it).
    unusable: Option<&'static str>,
}

fn field_serde(attrs: &[syn::Attribute]) -> syn::Result<FieldSerde> {
    let mut out = FieldSerde::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename") {
                out.rename = Some(serialize_name(&meta)?);
            } else if meta.path.is_ident("skip") || meta.path.is_ident("skip_serializing") {
                out.unusable = Some(
                    "an attribute field must be serialized: serde skips this one, so its value \
                     never travels",
                );
            } else if meta.path.is_ident("flatten") {
                out.unusable = Some(
                    "an attribute field is a string, number or boolean field, not a flattened one",
                );
            } else {
                skip_meta(&meta)?;
            }
            Ok(())
        })?;
    }
    Ok(out)
}

/// The container's `rename_all` (its `serialize` rule when it has two).
fn container_rename_all(attrs: &[syn::Attribute]) -> syn::Result<Option<String>> {
    let mut out = None;
    for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename_all") {
                let rule = serialize_name(&meta)?;
                if !RULES.contains(&rule.as_str()) {
                    return Err(meta.error(format!("serde has no rename rule `{rule}`")));
                }
                out = Some(rule);
            } else {
                skip_meta(&meta)?;
            }
            Ok(())
        })?;
    }
    Ok(out)
}

/// `key = "x"` or `key(serialize = "x", deserialize = "y")`: the serialized name.
fn serialize_name(meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<String> {
    if meta.input.peek(syn::Token![=]) {
        let lit: syn::LitStr = meta.value()?.parse()?;
        return Ok(lit.value());
    }
    let mut name = None;
    meta.parse_nested_meta(|inner| {
        let lit: syn::LitStr = inner.value()?.parse()?;
        if inner.path.is_ident("serialize") {
            name = Some(lit.value());
        }
        Ok(())
    })?;
    name.ok_or_else(|| meta.error("expected `serialize = \"...\"`"))
}

/// Consumes a serde setting this derive does not read.
fn skip_meta(meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(syn::Token![=]) {
        let _: syn::Expr = meta.value()?.parse()?;
    } else if meta.input.peek(syn::token::Paren) {
        meta.parse_nested_meta(|inner| skip_meta(&inner))?;
    }
    Ok(())
}

/// serde's rename rules.
const RULES: &[&str] = &[
    "lowercase",
    "UPPERCASE",
    "PascalCase",
    "camelCase",
    "snake_case",
    "SCREAMING_SNAKE_CASE",
    "kebab-case",
    "SCREAMING-KEBAB-CASE",
];

/// A snake_case field name under a serde `rename_all` rule, as serde renames fields.
fn apply_rename(rule: Option<&str>, field: &str) -> String {
    let pascal = || {
        let mut out = String::new();
        let mut upper = true;
        for c in field.chars() {
            if c == '_' {
                upper = true;
            } else if upper {
                out.push(c.to_ascii_uppercase());
                upper = false;
            } else {
                out.push(c);
            }
        }
        out
    };
    match rule {
        Some("UPPERCASE" | "SCREAMING_SNAKE_CASE") => field.to_ascii_uppercase(),
        Some("PascalCase") => pascal(),
        Some("camelCase") => {
            let p = pascal();
            let mut chars = p.chars();
            match chars.next() {
                Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
                None => p,
            }
        }
        Some("kebab-case") => field.replace('_', "-"),
        Some("SCREAMING-KEBAB-CASE") => field.to_ascii_uppercase().replace('_', "-"),
        _ => field.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::apply_rename;

    #[test]
    fn fields_are_renamed_as_serde_renames_them() {
        let cases = [
            (None, "user_id"),
            (Some("lowercase"), "user_id"),
            (Some("UPPERCASE"), "USER_ID"),
            (Some("PascalCase"), "UserId"),
            (Some("camelCase"), "userId"),
            (Some("snake_case"), "user_id"),
            (Some("SCREAMING_SNAKE_CASE"), "USER_ID"),
            (Some("kebab-case"), "user-id"),
            (Some("SCREAMING-KEBAB-CASE"), "USER-ID"),
        ];
        for (rule, want) in cases {
            assert_eq!(apply_rename(rule, "user_id"), want, "{rule:?}");
        }
        assert_eq!(apply_rename(Some("camelCase"), "source"), "source");
    }
}
