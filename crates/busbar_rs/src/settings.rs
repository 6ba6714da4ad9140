//! `#[busbar::subscribe(...)]`: the settings of the TypeScript dialect in snake case, read
//! without running code, into the model's names and types (`explicit` keys use the model's
//! setting names, as for TypeScript).

use syn::punctuated::Punctuated;
use syn::spanned::Spanned;

use busbar_analysis::FilterEntry;
use busbar_diagnostics::Span;
use busbar_model::duration::{format_ms, parse_duration_ms};
use busbar_model::names::{NameCheck, check_name as check};
use busbar_model::{SubscriptionSettings, limits};

use crate::diagnostics as diag;
use crate::extract::{Extractor, string_lit};
use crate::facts::SubscriptionDecl;

/// The settings a subscription may write.
pub(crate) const KEYS: &[&str] = &[
    "topic",
    "name",
    "ack_deadline",
    "message_retention",
    "min_backoff",
    "max_backoff",
    "max_retries",
    "max_concurrency",
    "filter",
];

/// The model's name of a setting (as `explicit` lists it).
fn model_key(key: &str) -> &'static str {
    match key {
        "ack_deadline" => "ackDeadline",
        "message_retention" => "messageRetention",
        "min_backoff" => "retryPolicy.minBackoff",
        "max_backoff" => "retryPolicy.maxBackoff",
        "max_retries" => "retryPolicy.maxRetries",
        "max_concurrency" => "maxConcurrency",
        "filter" => "filter",
        _ => "",
    }
}

pub(crate) fn check_name(x: &mut Extractor<'_>, noun: &str, name: &str, span: &Span) {
    let d = match check(name) {
        NameCheck::Ok => return,
        NameCheck::Dotted => diag::dotted_name(noun, name, span.clone()),
        NameCheck::Invalid => diag::invalid_name(noun, name, span.clone()),
        NameCheck::TooLong => diag::name_too_long(noun, name, span.clone()),
    };
    x.facts.diagnostics.push(d);
}

pub(crate) fn subscription(
    x: &mut Extractor<'_>,
    module: usize,
    attr: &syn::Attribute,
    f: &syn::ItemFn,
) -> SubscriptionDecl {
    let span = x.sp(attr.span());
    let mut sub = SubscriptionDecl {
        module,
        attr_path: attr
            .path()
            .segments
            .iter()
            .map(|s| crate::extract::ident_name(&s.ident))
            .collect(),
        name: None,
        topic: None,
        topic_span: span.clone(),
        handler: crate::extract::ident_name(&f.sig.ident),
        settings: SubscriptionSettings::default(),
        explicit: Vec::new(),
        span: span.clone(),
    };
    let metas =
        match attr.parse_args_with(Punctuated::<syn::Meta, syn::Token![,]>::parse_terminated) {
            Ok(metas) => metas,
            Err(_) => {
                x.facts.diagnostics.push(diag::config_not_literal(span));
                return sub;
            }
        };
    let mut min_set = None;
    let mut max_set = None;
    for meta in &metas {
        let key = meta.path().get_ident().map(|i| i.to_string()).unwrap_or_default();
        let key_span = x.sp(meta.path().span());
        let entry_span = x.sp(meta.span());
        if !KEYS.contains(&key.as_str()) {
            x.facts.diagnostics.push(diag::unknown_config_key(
                "subscription",
                &key,
                key_span,
                KEYS,
            ));
            continue;
        }
        if !model_key(&key).is_empty() {
            sub.explicit.push((model_key(&key).to_string(), entry_span.clone()));
        }
        if key == "filter" {
            sub.settings.filter = filter(x, meta);
            continue;
        }
        let syn::Meta::NameValue(nv) = meta else {
            x.facts.diagnostics.push(diag::config_not_literal(entry_span));
            continue;
        };
        let value = &nv.value;
        match key.as_str() {
            "topic" => match value {
                syn::Expr::Path(p) if p.qself.is_none() => {
                    let path = p
                        .path
                        .segments
                        .iter()
                        .map(|s| crate::extract::ident_name(&s.ident))
                        .collect();
                    sub.topic_span = x.sp(p.span());
                    sub.topic = Some((path, x.raw(p.span())));
                }
                other => {
                    sub.topic_span = x.sp(other.span());
                }
            },
            "name" => match string_lit(value) {
                Some((name, lit)) => {
                    let name_span = x.sp(lit);
                    check_name(x, "subscription", &name, &name_span);
                    sub.name = Some((name, name_span));
                }
                None => {
                    let at = x.sp(value.span());
                    x.facts.diagnostics.push(diag::name_not_literal("subscription", at));
                }
            },
            "ack_deadline" => {
                if let Some(ms) = duration(x, &key, value, limits::MIN_ACK_DEADLINE_MS, "1s") {
                    sub.settings.ack_deadline_ms = ms;
                }
            }
            "message_retention" => {
                if let Some(ms) = duration(x, &key, value, limits::MIN_MESSAGE_RETENTION_MS, "1m") {
                    sub.settings.message_retention_ms = ms;
                }
            }
            "min_backoff" => {
                if let Some(ms) = duration(x, &key, value, limits::MIN_BACKOFF_MS, "1s") {
                    sub.settings.retry_policy.min_backoff_ms = ms;
                    min_set = Some(entry_span);
                }
            }
            "max_backoff" => {
                if let Some(ms) = duration(x, &key, value, limits::MIN_BACKOFF_MS, "1s") {
                    sub.settings.retry_policy.max_backoff_ms = ms;
                    max_set = Some(entry_span);
                }
            }
            "max_retries" => {
                if let Some(n) = integer(x, &key, value, 0) {
                    sub.settings.retry_policy.max_retries = n;
                }
            }
            "max_concurrency" => {
                if let Some(n) = integer(x, &key, value, limits::MIN_MAX_CONCURRENCY) {
                    sub.settings.max_concurrency = Some(n);
                }
            }
            _ => {}
        }
    }
    if sub.topic.is_none() && !metas.iter().any(|m| m.path().is_ident("topic")) {
        x.facts.diagnostics.push(diag::missing_subscription_setting("topic", span.clone()));
    }
    if sub.name.is_none() && !metas.iter().any(|m| m.path().is_ident("name")) {
        x.facts.diagnostics.push(diag::missing_subscription_setting("name", span.clone()));
    }
    let policy = sub.settings.retry_policy;
    if policy.min_backoff_ms > policy.max_backoff_ms {
        let at = max_set.clone().or(min_set.clone()).unwrap_or(span);
        let mut d = diag::value_out_of_range(
            format!(
                "min_backoff ({}) is longer than max_backoff ({})",
                format_ms(policy.min_backoff_ms),
                format_ms(policy.max_backoff_ms)
            ),
            at,
            "make min_backoff at most max_backoff (the default max_backoff is 10m)",
        );
        if let (Some(min), Some(_)) = (min_set, max_set) {
            d = d.with_label(min, "min_backoff set here");
        }
        x.facts.diagnostics.push(d);
    }
    sub
}

fn duration(
    x: &mut Extractor<'_>,
    key: &str,
    e: &syn::Expr,
    min_ms: u64,
    min_text: &str,
) -> Option<u64> {
    const EXPECTED: &str = "a duration string such as \"10s\"";
    let span = x.sp(e.span());
    let Some((text, _)) = string_lit(e) else {
        x.facts.diagnostics.push(diag::wrong_value_type(key, EXPECTED, span));
        return None;
    };
    match parse_duration_ms(&text) {
        Ok(ms) if ms >= min_ms => Some(ms),
        Ok(_) => {
            x.facts.diagnostics.push(diag::value_out_of_range(
                format!("`{key}` must be at least {min_text}, not \"{text}\""),
                span,
                &format!("use \"{min_text}\" or more"),
            ));
            None
        }
        Err(why) => {
            x.facts.diagnostics.push(diag::invalid_duration(key, &text, &why.to_string(), span));
            None
        }
    }
}

fn integer(x: &mut Extractor<'_>, key: &str, e: &syn::Expr, min: u32) -> Option<u32> {
    let span = x.sp(e.span());
    let value = match e {
        syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Int(i), .. }) => i.base10_parse::<u64>().ok(),
        _ => None,
    };
    match value {
        Some(n) if n >= u64::from(min) && n <= u64::from(u32::MAX) => u32::try_from(n).ok(),
        Some(n) => {
            x.facts.diagnostics.push(diag::value_out_of_range(
                format!("`{key}` must be between {min} and {}, not {n}", u32::MAX),
                span,
                &format!("use a whole number of at least {min}"),
            ));
            None
        }
        None => {
            x.facts.diagnostics.push(diag::wrong_value_type(key, "a whole number", span));
            None
        }
    }
}

/// `filter(key = "value", other = ["a", "b"])`.
fn filter(x: &mut Extractor<'_>, meta: &syn::Meta) -> Option<Vec<FilterEntry>> {
    let syn::Meta::List(list) = meta else {
        let span = x.sp(meta.span());
        x.facts.diagnostics.push(diag::config_not_literal(span));
        return None;
    };
    let parsed =
        list.parse_args_with(Punctuated::<syn::MetaNameValue, syn::Token![,]>::parse_terminated);
    let Ok(entries) = parsed else {
        let span = x.sp(list.span());
        x.facts.diagnostics.push(diag::config_not_literal(span));
        return None;
    };
    const EXPECTED: &str = "a literal or a non-empty array of literals (string, number, boolean)";
    let mut out = Vec::new();
    for nv in &entries {
        let key = nv.path.get_ident().map(|i| i.to_string()).unwrap_or_default();
        let values = match &nv.value {
            syn::Expr::Array(a) if !a.elems.is_empty() => {
                a.elems.iter().map(filter_literal).collect::<Option<Vec<_>>>()
            }
            syn::Expr::Array(_) => None,
            other => filter_literal(other).map(|v| vec![v]),
        };
        match values {
            Some(mut values) => {
                values.sort();
                values.dedup();
                let key_span = x.sp(nv.path.span());
                out.push(FilterEntry { key, key_span, values });
            }
            None => {
                let span = x.sp(nv.value.span());
                x.facts.diagnostics.push(diag::wrong_value_type(
                    &format!("filter.{key}"),
                    EXPECTED,
                    span,
                ));
            }
        }
    }
    Some(out)
}

fn filter_literal(e: &syn::Expr) -> Option<String> {
    let syn::Expr::Lit(lit) = e else { return None };
    match &lit.lit {
        syn::Lit::Str(s) => Some(s.value()),
        syn::Lit::Int(i) => i.base10_parse::<i64>().ok().map(|n| n.to_string()),
        syn::Lit::Float(f) => {
            f.base10_parse::<f64>().ok().filter(|f| f.is_finite()).map(|f| f.to_string())
        }
        syn::Lit::Bool(b) => Some(b.value.to_string()),
        _ => None,
    }
}
