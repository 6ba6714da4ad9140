//! `#[subscribe(...)]`: the settings, checked as the TypeScript dialect's are, and the code
//! that registers the handler.

use busbar_model::{defaults, duration, limits, names};
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::spanned::Spanned;

/// Every setting, in the order the help line lists them.
const KEYS: &[&str] = &[
    "topic",
    "name",
    "max_retries",
    "min_backoff",
    "max_backoff",
    "ack_deadline",
    "message_retention",
    "max_concurrency",
    "filter",
];

/// A setting's value and where it was written.
type At<T> = Option<(T, Span)>;

#[derive(Default)]
pub(crate) struct Settings {
    topic: Option<syn::Path>,
    name: Option<syn::LitStr>,
    max_retries: At<u32>,
    min_backoff: At<u64>,
    max_backoff: At<u64>,
    ack_deadline: At<u64>,
    message_retention: At<u64>,
    max_concurrency: At<u32>,
    /// Attribute name, its span, and its accepted values (as strings, sorted).
    filter: Vec<(String, Span, Vec<String>)>,
    seen: Vec<String>,
}

impl Settings {
    pub(crate) fn parse(&mut self, meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<()> {
        let Some(key) = meta.path.get_ident().map(ToString::to_string) else {
            return Err(meta.error(format!("expected a setting: {}", KEYS.join(", "))));
        };
        if !KEYS.contains(&key.as_str()) {
            return Err(meta.error(unknown_key(&key)));
        }
        if self.seen.contains(&key) {
            return Err(meta.error(format!("`{key}` is set twice")));
        }
        self.seen.push(key.clone());
        let span = meta.path.span();
        match key.as_str() {
            "topic" => {
                let value = meta.value()?;
                let expr: syn::Expr = value.parse()?;
                match expr {
                    syn::Expr::Path(p) if p.qself.is_none() => self.topic = Some(p.path),
                    other => {
                        return Err(syn::Error::new_spanned(
                            other,
                            "`topic` is the path of a `static` `busbar::Topic` (`topic = SIGNUPS`)",
                        ));
                    }
                }
            }
            "name" => {
                let lit: syn::LitStr = meta.value()?.parse().map_err(|e| {
                    syn::Error::new(
                        e.span(),
                        "`name` is a string literal (`name = \"send-email\"`)",
                    )
                })?;
                self.name = Some(lit);
            }
            "max_retries" => self.max_retries = Some((integer(meta, &key, 0)?, span)),
            "max_concurrency" => {
                let n = integer(meta, &key, limits::MIN_MAX_CONCURRENCY)?;
                self.max_concurrency = Some((n, span));
            }
            "min_backoff" => {
                self.min_backoff = Some((duration_ms(meta, &key, limits::MIN_BACKOFF_MS)?, span));
            }
            "max_backoff" => {
                self.max_backoff = Some((duration_ms(meta, &key, limits::MIN_BACKOFF_MS)?, span));
            }
            "ack_deadline" => {
                let ms = duration_ms(meta, &key, limits::MIN_ACK_DEADLINE_MS)?;
                self.ack_deadline = Some((ms, span));
            }
            "message_retention" => {
                let ms = duration_ms(meta, &key, limits::MIN_MESSAGE_RETENTION_MS)?;
                self.message_retention = Some((ms, span));
            }
            _ => self.parse_filter(meta)?,
        }
        Ok(())
    }

    fn parse_filter(&mut self, meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<()> {
        if !meta.input.peek(syn::token::Paren) {
            return Err(meta.error(
                "`filter` lists attributes and values: `filter(source = [\"web\", \"app\"])`",
            ));
        }
        meta.parse_nested_meta(|inner| {
            let Some(attribute) = inner.path.get_ident().map(ToString::to_string) else {
                return Err(inner.error("expected an attribute field's name"));
            };
            if self.filter.iter().any(|(a, _, _)| *a == attribute) {
                return Err(inner.error(format!("the filter names `{attribute}` twice")));
            }
            let expr: syn::Expr = inner.value()?.parse()?;
            let mut values = match &expr {
                syn::Expr::Array(array) => {
                    if array.elems.is_empty() {
                        return Err(syn::Error::new_spanned(
                            array,
                            "a filter's list of values is not empty",
                        ));
                    }
                    array.elems.iter().map(filter_value).collect::<syn::Result<Vec<_>>>()?
                }
                other => vec![filter_value(other)?],
            };
            values.sort();
            values.dedup();
            self.filter.push((attribute, inner.path.span(), values));
            Ok(())
        })
    }
}

/// The error for a key that is not a setting, with the likely one.
fn unknown_key(key: &str) -> String {
    let mut snake = String::new();
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            snake.push('_');
            snake.push(c.to_ascii_lowercase());
        } else {
            snake.push(c);
        }
    }
    let hint = if KEYS.contains(&snake.as_str()) {
        format!(" (did you mean `{snake}`?)")
    } else if key == "retry_policy" {
        " (the retry policy's settings are top-level here: `min_backoff`, `max_backoff`, `max_retries`)".to_string()
    } else {
        String::new()
    };
    format!("unknown subscription setting `{key}`{hint}; the settings are {}", KEYS.join(", "))
}

/// A whole number in `min..=u32::MAX`.
fn integer(meta: &syn::meta::ParseNestedMeta<'_>, key: &str, min: u32) -> syn::Result<u32> {
    let expr: syn::Expr = meta.value()?.parse()?;
    let wrong =
        || syn::Error::new_spanned(&expr, format!("`{key}` is a whole number of at least {min}"));
    let syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Int(lit), .. }) = &expr else {
        return Err(wrong());
    };
    if !lit.suffix().is_empty() {
        return Err(syn::Error::new_spanned(
            lit,
            format!("`{key}` is a plain number, without a type suffix"),
        ));
    }
    match lit.base10_parse::<u32>() {
        Ok(n) if n >= min => Ok(n),
        _ => Err(wrong()),
    }
}

/// A duration literal in Encore's grammar, in milliseconds, at least `min_ms`.
fn duration_ms(meta: &syn::meta::ParseNestedMeta<'_>, key: &str, min_ms: u64) -> syn::Result<u64> {
    let expr: syn::Expr = meta.value()?.parse()?;
    let syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(lit), .. }) = &expr else {
        return Err(syn::Error::new_spanned(
            &expr,
            format!("`{key}` is a duration string such as \"10s\" ({})", duration::GRAMMAR),
        ));
    };
    let text = lit.value();
    match duration::parse_duration_ms(&text) {
        Ok(ms) if ms >= min_ms => Ok(ms),
        Ok(_) => Err(syn::Error::new_spanned(
            lit,
            format!("`{key}` must be at least {}, not \"{text}\"", duration::format_ms(min_ms)),
        )),
        Err(why) => Err(syn::Error::new_spanned(
            lit,
            format!("`{key}`: \"{text}\" is not a duration: {why}; use {}", duration::GRAMMAR),
        )),
    }
}

/// A filter value as the attribute's string form: strings as they are, integers and booleans
/// as JSON writes them.
fn filter_value(expr: &syn::Expr) -> syn::Result<String> {
    let wrong = || {
        syn::Error::new_spanned(
            expr,
            "a filter value is a string, integer or boolean literal, or a list of them",
        )
    };
    match expr {
        syn::Expr::Lit(syn::ExprLit { lit, .. }) => match lit {
            syn::Lit::Str(s) => Ok(s.value()),
            syn::Lit::Bool(b) => Ok(b.value.to_string()),
            syn::Lit::Int(i) => i.base10_parse::<i64>().map(|n| n.to_string()).map_err(|_| wrong()),
            _ => Err(wrong()),
        },
        syn::Expr::Unary(syn::ExprUnary { op: syn::UnOp::Neg(_), expr: inner, .. }) => {
            match &**inner {
                syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Int(i), .. }) => {
                    i.base10_parse::<i64>().map(|n| (-n).to_string()).map_err(|_| wrong())
                }
                _ => Err(wrong()),
            }
        }
        _ => Err(wrong()),
    }
}

/// The handler's message type, and whether it also takes the delivery's info.
fn handler_shape(function: &syn::ItemFn) -> syn::Result<(syn::Type, bool)> {
    let sig = &function.sig;
    if sig.asyncness.is_none() {
        return Err(syn::Error::new(
            sig.fn_token.span(),
            "a subscription handler is an `async fn` (write `async fn`)",
        ));
    }
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &sig.generics,
            "a subscription handler has no generic parameters: it takes its topic's message type",
        ));
    }
    let mut types = Vec::new();
    for input in &sig.inputs {
        match input {
            syn::FnArg::Receiver(r) => {
                return Err(syn::Error::new_spanned(
                    r,
                    "a subscription handler is a free function, not a method",
                ));
            }
            syn::FnArg::Typed(t) => types.push((*t.ty).clone()),
        }
    }
    let shape_error = || {
        syn::Error::new_spanned(
            &sig.inputs,
            "a subscription handler takes the message, and optionally `busbar::DeliveryInfo`: \
             `async fn handle(event: SignupEvent) -> busbar::Result<()>`",
        )
    };
    match types.len() {
        1 | 2 => Ok((types.swap_remove(0), sig.inputs.len() == 2)),
        _ => Err(shape_error()),
    }
}

pub(crate) fn expand(settings: &Settings, function: &syn::ItemFn) -> syn::Result<TokenStream> {
    let call_site = Span::call_site();
    let Some(topic) = settings.topic.clone() else {
        return Err(syn::Error::new(
            call_site,
            "#[busbar::subscribe] needs `topic = TOPIC`, the topic's static",
        ));
    };
    let Some(name) = settings.name.clone() else {
        return Err(syn::Error::new(
            call_site,
            "#[busbar::subscribe] needs `name = \"...\"`, the subscription's name",
        ));
    };
    check_name(&name)?;
    let (message_type, with_info) = handler_shape(function)?;
    let min_backoff = settings.min_backoff.map_or(defaults::MIN_BACKOFF_MS, |(v, _)| v);
    let max_backoff = settings.max_backoff.map_or(defaults::MAX_BACKOFF_MS, |(v, _)| v);
    if min_backoff > max_backoff {
        let at = settings.max_backoff.or(settings.min_backoff).map_or(call_site, |(_, s)| s);
        return Err(syn::Error::new(
            at,
            format!(
                "min_backoff ({}) is longer than max_backoff ({}): make min_backoff at most \
                 max_backoff (the default max_backoff is {})",
                duration::format_ms(min_backoff),
                duration::format_ms(max_backoff),
                duration::format_ms(defaults::MAX_BACKOFF_MS)
            ),
        ));
    }
    let ack_deadline = settings.ack_deadline.map_or(defaults::ACK_DEADLINE_MS, |(v, _)| v);
    let retention = settings.message_retention.map_or(defaults::MESSAGE_RETENTION_MS, |(v, _)| v);
    let max_retries = settings.max_retries.map_or(defaults::MAX_RETRIES, |(v, _)| v);
    let max_concurrency = match settings.max_concurrency {
        Some((n, _)) => quote!(::std::option::Option::Some(#n)),
        None => quote!(::std::option::Option::None),
    };
    let filter_entries =
        settings.filter.iter().map(|(attribute, _, values)| quote!((#attribute, &[#(#values),*])));
    let filter = if settings.filter.is_empty() {
        quote!(::std::option::Option::None)
    } else {
        quote!(::std::option::Option::Some(&[#(#filter_entries),*]))
    };
    // Each filter key is checked against the message type's attributes, at its own span.
    let filter_checks = settings.filter.iter().map(|(attribute, span, _)| {
        quote::quote_spanned! {*span=>
            const _: () = ::busbar::__private::check_filter_attribute::<#message_type>(#attribute);
        }
    });
    let handler = &function.sig.ident;
    let dispatch_fn = format_ident!("__busbar_dispatch_{}", handler);
    let call = if with_info {
        quote!(::busbar::__private::dispatch_with_info::<_, #message_type, _, _>(&#topic, delivery, #handler))
    } else {
        quote!(::busbar::__private::dispatch::<_, #message_type, _, _>(&#topic, delivery, #handler))
    };
    let handler_name = handler.to_string();
    Ok(quote! {
        #function

        #[doc(hidden)]
        fn #dispatch_fn(delivery: ::busbar::__private::Delivery) -> ::busbar::__private::HandlerFuture {
            #call
        }

        #(#filter_checks)*

        ::busbar::__private::inventory::submit! {
            ::busbar::Subscription::__new(
                ::busbar::__private::topic_ref(&#topic),
                #name,
                #handler_name,
                ::busbar::__private::Settings {
                    ack_deadline_ms: #ack_deadline,
                    message_retention_ms: #retention,
                    retry_policy: ::busbar::__private::RetryPolicy {
                        min_backoff_ms: #min_backoff,
                        max_backoff_ms: #max_backoff,
                        max_retries: #max_retries,
                    },
                    max_concurrency: #max_concurrency,
                    filter: #filter,
                },
                #dispatch_fn,
                ::std::module_path!(),
                ::std::file!(),
                ::std::line!(),
            )
        }
    })
}

/// A subscription name is kebab-case (dots allowed), at most 63 characters.
fn check_name(name: &syn::LitStr) -> syn::Result<()> {
    let text = name.value();
    match names::check_name(&text) {
        names::NameCheck::Ok | names::NameCheck::Dotted => Ok(()),
        names::NameCheck::TooLong => Err(syn::Error::new_spanned(
            name,
            format!("a subscription name is at most {} characters", names::MAX_NAME_LEN),
        )),
        names::NameCheck::Invalid => Err(syn::Error::new_spanned(
            name,
            format!(
                "subscription names are kebab-case: lowercase letters, digits and `-` (try \"{}\")",
                names::suggest_kebab(&text)
            ),
        )),
    }
}
