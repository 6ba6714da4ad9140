//! Reading the literal arguments of `new Topic(...)` and `new Subscription(...)`: names,
//! configuration objects, durations, numbers and filters. Every rejected value is a diagnostic
//! at the value; the declaration still enters the model with defaults, so one typo does not
//! cascade into "topic not found" errors elsewhere.

use busbar_diagnostics::Span;
use busbar_model::duration::parse_duration_ms;
use busbar_model::names::{NameCheck, check_name};
use busbar_model::{DeliveryGuarantee, SubscriptionSettings, limits};
use swc_common::Spanned;
use swc_ecma_ast as ast;

use super::{Extractor, unwrap};
use crate::diagnostics::{self as diag, DeclKind};
use crate::facts::{FilterEntry, Local, SubscriptionDecl, TopicDecl, TypeExpr, Use, UseKind};

const TOPIC_KEYS: &[&str] = &["deliveryGuarantee", "orderingAttribute"];
const SUBSCRIPTION_KEYS: &[&str] =
    &["handler", "ackDeadline", "messageRetention", "retryPolicy", "maxConcurrency", "filter"];
const RETRY_KEYS: &[&str] = &["minBackoff", "maxBackoff", "maxRetries"];

/// A value in a configuration object.
enum Value<'e> {
    Expr(&'e ast::Expr),
    /// `{ handler }`
    Shorthand(&'e ast::Ident),
    /// `{ handler(event) { ... } }`
    Method,
}

struct Entry<'e> {
    key: String,
    key_span: Span,
    value: Value<'e>,
    /// The whole `key: value`.
    span: Span,
}

impl Extractor {
    /// A string literal or a template literal without substitutions.
    pub(super) fn string_lit(&self, e: &ast::Expr) -> Option<(String, Span)> {
        match unwrap(e) {
            ast::Expr::Lit(ast::Lit::Str(s)) => {
                Some((s.value.to_string_lossy().into_owned(), self.sp(s.span)))
            }
            ast::Expr::Tpl(t) if t.exprs.is_empty() && t.quasis.len() == 1 => {
                let q = &t.quasis[0];
                let text = q
                    .cooked
                    .as_ref()
                    .map(|c| c.to_string_lossy().into_owned())
                    .unwrap_or_else(|| q.raw.to_string());
                Some((text, self.sp(t.span)))
            }
            _ => None,
        }
    }

    /// The name argument of a declaration, checked.
    fn decl_name(
        &mut self,
        kind: DeclKind,
        arg: Option<&ast::ExprOrSpread>,
        fallback: &Span,
    ) -> Option<(String, Span)> {
        let Some(arg) = arg else {
            self.facts.diagnostics.push(diag::name_not_literal(kind, fallback.clone()));
            return None;
        };
        let literal = if arg.spread.is_none() { self.string_lit(&arg.expr) } else { None };
        let Some((name, span)) = literal else {
            let span = self.sp(arg.expr.span());
            self.facts.diagnostics.push(diag::name_not_literal(kind, span));
            return None;
        };
        match check_name(&name) {
            NameCheck::Ok => {}
            NameCheck::Dotted => {
                self.facts.diagnostics.push(diag::dotted_name(kind, &name, span.clone()));
            }
            NameCheck::Invalid => {
                self.facts.diagnostics.push(diag::invalid_name(kind, &name, span.clone()));
            }
            NameCheck::TooLong => {
                self.facts.diagnostics.push(diag::name_too_long(kind, &name, span.clone()));
            }
        }
        Some((name, span))
    }

    /// The entries of a configuration object literal; `None` (reported) when it is not one.
    fn object_entries<'e>(&mut self, kind: DeclKind, e: &'e ast::Expr) -> Option<Vec<Entry<'e>>> {
        let ast::Expr::Object(obj) = unwrap(e) else {
            let span = self.sp(e.span());
            self.facts.diagnostics.push(diag::config_not_literal(kind, span));
            return None;
        };
        let mut entries: Vec<Entry<'e>> = Vec::new();
        for prop in &obj.props {
            let prop = match prop {
                ast::PropOrSpread::Spread(s) => {
                    let span = self.sp(swc_common::Span::new(s.dot3_token.lo, s.expr.span().hi));
                    self.facts.diagnostics.push(diag::spread_in_config(span));
                    continue;
                }
                ast::PropOrSpread::Prop(p) => p,
            };
            let (key, key_span, value) = match &**prop {
                ast::Prop::KeyValue(kv) => match self.prop_name(&kv.key) {
                    Some((k, s)) => (k, s, Value::Expr(&kv.value)),
                    None => continue,
                },
                ast::Prop::Shorthand(id) => {
                    (id.sym.to_string(), self.sp(id.span), Value::Shorthand(id))
                }
                ast::Prop::Method(m) => match self.prop_name(&m.key) {
                    Some((k, s)) => (k, s, Value::Method),
                    None => continue,
                },
                ast::Prop::Getter(g) => match self.prop_name(&g.key) {
                    Some((k, s)) => (k, s, Value::Method),
                    None => continue,
                },
                ast::Prop::Setter(g) => match self.prop_name(&g.key) {
                    Some((k, s)) => (k, s, Value::Method),
                    None => continue,
                },
                ast::Prop::Assign(a) => (a.key.sym.to_string(), self.sp(a.key.span), Value::Method),
            };
            let span = self.sp(prop.span());
            if let Some(first) = entries.iter().find(|e| e.key == key) {
                let first = first.key_span.clone();
                self.facts.diagnostics.push(diag::duplicate_config_key(&key, key_span, first));
                continue;
            }
            entries.push(Entry { key, key_span, value, span });
        }
        Some(entries)
    }

    fn prop_name(&mut self, key: &ast::PropName) -> Option<(String, Span)> {
        match key {
            ast::PropName::Ident(id) => Some((id.sym.to_string(), self.sp(id.span))),
            ast::PropName::Str(s) => {
                Some((s.value.to_string_lossy().into_owned(), self.sp(s.span)))
            }
            ast::PropName::Num(n) => Some((n.value.to_string(), self.sp(n.span))),
            ast::PropName::BigInt(b) => Some((b.value.to_string(), self.sp(b.span))),
            ast::PropName::Computed(c) => match self.string_lit(&c.expr) {
                Some(found) => Some(found),
                None => {
                    let span = self.sp(c.span);
                    self.facts.diagnostics.push(diag::wrong_value_type(
                        "a configuration key",
                        "a plain key",
                        span,
                    ));
                    None
                }
            },
        }
    }

    fn expr_of<'e>(&mut self, entry: &Entry<'e>, expected: &str) -> Option<&'e ast::Expr> {
        match entry.value {
            Value::Expr(e) => Some(e),
            _ => {
                self.facts.diagnostics.push(diag::wrong_value_type(
                    &entry.key,
                    expected,
                    entry.span.clone(),
                ));
                None
            }
        }
    }

    fn duration_value(&mut self, entry: &Entry<'_>, min_ms: u64, min_text: &str) -> Option<u64> {
        const EXPECTED: &str = "a duration string such as \"10s\"";
        let e = self.expr_of(entry, EXPECTED)?;
        let span = self.sp(e.span());
        let Some(super::consts::Const::String(text)) = self.constant(e) else {
            self.facts.diagnostics.push(diag::wrong_value_type(&entry.key, EXPECTED, span));
            return None;
        };
        match parse_duration_ms(&text) {
            Ok(ms) if ms >= min_ms => Some(ms),
            Ok(_) => {
                self.facts.diagnostics.push(diag::value_out_of_range(
                    format!("`{}` must be at least {min_text}, not \"{text}\"", entry.key),
                    span,
                    &format!("use \"{min_text}\" or more"),
                ));
                None
            }
            Err(why) => {
                self.facts.diagnostics.push(diag::invalid_duration(
                    &entry.key,
                    &text,
                    &why.to_string(),
                    span,
                ));
                None
            }
        }
    }

    /// A whole number in `min..=u32::MAX`.
    fn integer_value(&mut self, entry: &Entry<'_>, min: i64) -> Option<u32> {
        const EXPECTED: &str = "a whole number";
        let e = self.expr_of(entry, EXPECTED)?;
        let span = self.sp(e.span());
        let value = match self.constant(e) {
            Some(super::consts::Const::Number(n)) => Some(n),
            _ => None,
        };
        let Some(value) = value.filter(|v| v.fract() == 0.0 && v.is_finite()) else {
            self.facts.diagnostics.push(diag::wrong_value_type(&entry.key, EXPECTED, span));
            return None;
        };
        if value < min as f64 || value > u32::MAX as f64 {
            self.facts.diagnostics.push(diag::value_out_of_range(
                format!("`{}` must be at least {min}, not {value}", entry.key),
                span,
                &format!("use a whole number from {min} to {}", u32::MAX),
            ));
            return None;
        }
        Some(value as u32)
    }

    pub(super) fn topic_decl(
        &mut self,
        new: &ast::NewExpr,
        span: swc_common::Span,
        stmt_lo: u32,
    ) -> usize {
        let args = new.args.as_deref().unwrap_or(&[]);
        let decl_span = self.sp(span);
        let name = self.decl_name(DeclKind::Topic, args.first(), &decl_span);
        let (message_type, message_type_text) =
            self.message_type_arg(DeclKind::Topic, new.type_args.as_deref(), new.callee.span());
        let mut delivery = DeliveryGuarantee::default();
        let mut ordering_attribute = None;
        match args.get(1) {
            None => self
                .facts
                .diagnostics
                .push(diag::missing_config(DeclKind::Topic, decl_span.clone())),
            Some(arg) if arg.spread.is_some() => {
                let s = self.sp(arg.expr.span());
                self.facts.diagnostics.push(diag::config_not_literal(DeclKind::Topic, s));
            }
            Some(arg) => {
                for entry in self.object_entries(DeclKind::Topic, &arg.expr).unwrap_or_default() {
                    match entry.key.as_str() {
                        "deliveryGuarantee" => {
                            let expected = "\"at-least-once\" or \"exactly-once\"";
                            let Some(e) = self.expr_of(&entry, expected) else { continue };
                            match self.string_lit(e) {
                                Some((value, span)) => match DeliveryGuarantee::parse(&value) {
                                    Some(d) => delivery = d,
                                    None => self
                                        .facts
                                        .diagnostics
                                        .push(diag::invalid_delivery_guarantee(&value, span)),
                                },
                                None => {
                                    let s = self.sp(e.span());
                                    self.facts
                                        .diagnostics
                                        .push(diag::wrong_value_type(&entry.key, expected, s));
                                }
                            }
                        }
                        "orderingAttribute" => {
                            let expected = "a string naming an attribute";
                            let Some(e) = self.expr_of(&entry, expected) else { continue };
                            match self.string_lit(e) {
                                Some(found) => ordering_attribute = Some(found),
                                None => {
                                    let s = self.sp(e.span());
                                    self.facts
                                        .diagnostics
                                        .push(diag::wrong_value_type(&entry.key, expected, s));
                                }
                            }
                        }
                        other => self.facts.diagnostics.push(diag::unknown_config_key(
                            DeclKind::Topic,
                            other,
                            entry.key_span.clone(),
                            TOPIC_KEYS,
                        )),
                    }
                }
            }
        }
        let doc =
            super::doc::doc_comment(self.facts.source.text(), stmt_lo.saturating_sub(1) as usize);
        self.facts.topics.push(TopicDecl {
            name,
            message_type,
            message_type_text,
            delivery,
            ordering_attribute,
            span: decl_span,
            doc,
            elsewhere: false,
        });
        self.facts.topics.len() - 1
    }

    /// A module-level `Topic.declaredElsewhere<T>("name")`: a handle, recorded with the
    /// topics (so that uses link to it) but configured by the declaration elsewhere.
    pub(super) fn topic_handle(
        &mut self,
        call: &ast::CallExpr,
        span: swc_common::Span,
        stmt_lo: u32,
    ) -> usize {
        let decl_span = self.sp(span);
        let name = self.decl_name(DeclKind::TopicHandle, call.args.first(), &decl_span);
        let (message_type, message_type_text) = self.message_type_arg(
            DeclKind::TopicHandle,
            call.type_args.as_deref(),
            call.callee.span(),
        );
        let doc =
            super::doc::doc_comment(self.facts.source.text(), stmt_lo.saturating_sub(1) as usize);
        self.facts.topics.push(TopicDecl {
            name,
            message_type,
            message_type_text,
            delivery: DeliveryGuarantee::default(),
            ordering_attribute: None,
            span: decl_span,
            doc,
            elsewhere: true,
        });
        self.facts.topics.len() - 1
    }

    /// The message type argument `<T>` of a topic declaration or handle, and its text; its
    /// absence is reported at `callee`.
    fn message_type_arg(
        &mut self,
        kind: DeclKind,
        type_args: Option<&ast::TsTypeParamInstantiation>,
        callee: swc_common::Span,
    ) -> (Option<TypeExpr>, String) {
        match type_args.and_then(|t| t.params.first()) {
            Some(t) => (Some(self.type_expr(t)), self.type_text(t.span())),
            None => {
                let callee = self.sp(callee);
                self.facts.diagnostics.push(diag::missing_message_type(kind, callee));
                (None, String::new())
            }
        }
    }

    /// A module-level name chain (`t`, `ns.t`) whose root may be a topic.
    fn module_chain(&self, e: &ast::Expr) -> Option<(swc_atoms::Atom, Vec<swc_atoms::Atom>)> {
        match unwrap(e) {
            ast::Expr::Ident(id) => {
                let root = id.sym.clone();
                match self.facts.locals.get(&root) {
                    Some(Local::Topic(_)) => Some((root, Vec::new())),
                    Some(Local::Import(i)) if !self.facts.imports[*i].type_only => {
                        Some((root, Vec::new()))
                    }
                    _ => None,
                }
            }
            ast::Expr::Member(m) => {
                let (root, mut path) = self.module_chain(&m.obj)?;
                match &m.prop {
                    ast::MemberProp::Ident(p) => path.push(p.sym.clone()),
                    ast::MemberProp::Computed(c) => path.push(self.string_lit(&c.expr)?.0.into()),
                    ast::MemberProp::PrivateName(_) => return None,
                }
                Some((root, path))
            }
            _ => None,
        }
    }

    /// Why a subscription's topic argument cannot lead to a topic.
    fn not_a_topic_name(&self, arg: &ast::ExprOrSpread) -> String {
        if arg.spread.is_some() {
            return "a spread argument cannot be followed".to_string();
        }
        let mut e = unwrap(&arg.expr);
        while let ast::Expr::Member(m) = e {
            e = unwrap(&m.obj);
        }
        match e {
            ast::Expr::Ident(id) => match self.facts.locals.get(&id.sym) {
                Some(Local::Import(i)) if self.facts.imports[*i].type_only => {
                    format!("`{}` is imported with `import type`, which brings no value", id.sym)
                }
                Some(Local::Function) => {
                    format!("`{}` is a function of this file, not a topic", id.sym)
                }
                Some(_) => format!(
                    "`{}` is a value of this file, not a topic declaration; pass the topic itself",
                    id.sym
                ),
                None => format!("`{}` is not declared at module level or imported", id.sym),
            },
            ast::Expr::Call(_) | ast::Expr::New(_) => {
                "it is computed at run time; pass a topic declared at module level".to_string()
            }
            _ => "it is not the name of a topic".to_string(),
        }
    }

    pub(super) fn subscription_decl(&mut self, new: &ast::NewExpr, span: swc_common::Span) {
        let args = new.args.as_deref().unwrap_or(&[]);
        let decl_span = self.sp(span);
        let index = self.facts.subscriptions.len();
        let mut topic_problem = None;
        let (topic_use, topic_span) = match args.first() {
            Some(arg) => {
                let topic_span = self.sp(arg.expr.span());
                let chain = if arg.spread.is_none() { self.module_chain(&arg.expr) } else { None };
                if chain.is_none() {
                    topic_problem = Some(self.not_a_topic_name(arg));
                }
                let topic_use = chain.map(|(name, path)| {
                    self.facts.uses.push(Use {
                        name,
                        path,
                        kind: UseKind::SubscriptionTopic(index),
                        span: crate::parse::to_raw(arg.expr.span()),
                        owner: None,
                    });
                    self.facts.uses.len() - 1
                });
                (topic_use, topic_span)
            }
            None => {
                topic_problem = Some("there is no topic argument".to_string());
                (None, decl_span.clone())
            }
        };
        let name = self.decl_name(DeclKind::Subscription, args.get(1), &decl_span);
        let mut sub = SubscriptionDecl {
            name,
            topic_use,
            topic_span,
            topic_problem,
            handler: None,
            settings: SubscriptionSettings::default(),
            explicit: Vec::new(),
            span: decl_span.clone(),
        };
        match args.get(2) {
            None => {
                self.facts
                    .diagnostics
                    .push(diag::missing_config(DeclKind::Subscription, decl_span));
            }
            Some(arg) if arg.spread.is_some() => {
                let s = self.sp(arg.expr.span());
                self.facts.diagnostics.push(diag::config_not_literal(DeclKind::Subscription, s));
            }
            Some(arg) => {
                if let Some(entries) = self.object_entries(DeclKind::Subscription, &arg.expr) {
                    self.subscription_config(&mut sub, &entries, decl_span);
                }
            }
        }
        sub.explicit.sort_by(|a, b| a.0.cmp(&b.0));
        self.facts.subscriptions.push(sub);
    }

    fn subscription_config(
        &mut self,
        sub: &mut SubscriptionDecl,
        entries: &[Entry<'_>],
        decl_span: Span,
    ) {
        let mut has_handler = false;
        for entry in entries {
            let known = SUBSCRIPTION_KEYS.contains(&entry.key.as_str());
            if known {
                sub.explicit.push((entry.key.clone(), entry.span.clone()));
            }
            match entry.key.as_str() {
                "handler" => {
                    has_handler = true;
                    sub.handler = self.handler_name(entry);
                }
                "ackDeadline" => {
                    if let Some(ms) = self.duration_value(entry, limits::MIN_ACK_DEADLINE_MS, "1s")
                    {
                        sub.settings.ack_deadline_ms = ms;
                    }
                }
                "messageRetention" => {
                    if let Some(ms) =
                        self.duration_value(entry, limits::MIN_MESSAGE_RETENTION_MS, "1m")
                    {
                        sub.settings.message_retention_ms = ms;
                    }
                }
                "maxConcurrency" => {
                    if let Some(n) = self.integer_value(entry, limits::MIN_MAX_CONCURRENCY as i64) {
                        sub.settings.max_concurrency = Some(n);
                    }
                }
                "retryPolicy" => self.retry_policy(sub, entry),
                "filter" => sub.settings.filter = self.filter(entry),
                other => self.facts.diagnostics.push(diag::unknown_config_key(
                    DeclKind::Subscription,
                    other,
                    entry.key_span.clone(),
                    SUBSCRIPTION_KEYS,
                )),
            }
        }
        if !has_handler {
            self.facts.diagnostics.push(diag::missing_handler(decl_span));
        }
    }

    fn handler_name(&mut self, entry: &Entry<'_>) -> Option<String> {
        let e = match entry.value {
            Value::Shorthand(id) => return Some(id.sym.to_string()),
            Value::Method => return None,
            Value::Expr(e) => e,
        };
        match unwrap(e) {
            ast::Expr::Arrow(_) | ast::Expr::Call(_) => None,
            ast::Expr::Fn(f) => f.ident.as_ref().map(|i| i.sym.to_string()),
            ast::Expr::Ident(id) => Some(id.sym.to_string()),
            ast::Expr::Member(_) => {
                let text = self.type_text(e.span());
                Some(text)
            }
            _ => {
                let span = self.sp(e.span());
                self.facts.diagnostics.push(diag::handler_not_function(span));
                None
            }
        }
    }

    fn retry_policy(&mut self, sub: &mut SubscriptionDecl, entry: &Entry<'_>) {
        let Some(e) = self.expr_of(entry, "an object literal") else { return };
        let Some(entries) = self.object_entries(DeclKind::Subscription, e) else { return };
        let mut min_entry = None;
        let mut max_entry = None;
        for inner in &entries {
            if RETRY_KEYS.contains(&inner.key.as_str()) {
                sub.explicit.push((format!("retryPolicy.{}", inner.key), inner.span.clone()));
            }
            match inner.key.as_str() {
                "minBackoff" => {
                    if let Some(ms) = self.duration_value(inner, limits::MIN_BACKOFF_MS, "1s") {
                        sub.settings.retry_policy.min_backoff_ms = ms;
                        min_entry = Some(inner.span.clone());
                    }
                }
                "maxBackoff" => {
                    if let Some(ms) = self.duration_value(inner, limits::MIN_BACKOFF_MS, "1s") {
                        sub.settings.retry_policy.max_backoff_ms = ms;
                        max_entry = Some(inner.span.clone());
                    }
                }
                "maxRetries" => {
                    if let Some(n) = self.integer_value(inner, 0) {
                        sub.settings.retry_policy.max_retries = n;
                    }
                }
                other => self.facts.diagnostics.push(diag::unknown_config_key(
                    DeclKind::Subscription,
                    other,
                    inner.key_span.clone(),
                    RETRY_KEYS,
                )),
            }
        }
        let policy = sub.settings.retry_policy;
        if policy.min_backoff_ms > policy.max_backoff_ms {
            let (at, other) = match (max_entry, min_entry) {
                (Some(max), min) => (max, min),
                (None, Some(min)) => (min, None),
                (None, None) => (entry.span.clone(), None),
            };
            let mut d = diag::value_out_of_range(
                format!(
                    "`retryPolicy`: minBackoff ({}) is longer than maxBackoff ({})",
                    busbar_model::duration::format_ms(policy.min_backoff_ms),
                    busbar_model::duration::format_ms(policy.max_backoff_ms)
                ),
                at,
                "make minBackoff at most maxBackoff (the default maxBackoff is 10m)",
            );
            if let Some(other) = other {
                d = d.with_label(other, "minBackoff set here");
            }
            self.facts.diagnostics.push(d);
        }
    }

    fn filter(&mut self, entry: &Entry<'_>) -> Option<Vec<FilterEntry>> {
        let e = self.expr_of(entry, "an object literal")?;
        let entries = self.object_entries(DeclKind::Subscription, e)?;
        let mut filter = Vec::new();
        for inner in &entries {
            const EXPECTED: &str =
                "a literal or a non-empty array of literals (string, number, boolean)";
            let Some(value) = self.expr_of(inner, EXPECTED) else { continue };
            let values = match unwrap(value) {
                ast::Expr::Array(array) => {
                    let mut values = Vec::new();
                    let mut ok = !array.elems.is_empty();
                    for elem in array.elems.iter() {
                        match elem
                            .as_ref()
                            .filter(|e| e.spread.is_none())
                            .and_then(|e| self.filter_literal(&e.expr))
                        {
                            Some(v) => values.push(v),
                            None => ok = false,
                        }
                    }
                    ok.then_some(values)
                }
                other => self.filter_literal(other).map(|v| vec![v]),
            };
            match values {
                Some(mut values) => {
                    values.sort();
                    values.dedup();
                    filter.push(FilterEntry {
                        key: inner.key.clone(),
                        key_span: inner.key_span.clone(),
                        values,
                    });
                }
                None => {
                    let span = self.sp(value.span());
                    self.facts.diagnostics.push(diag::wrong_value_type(
                        &format!("filter.{}", inner.key),
                        EXPECTED,
                        span,
                    ));
                }
            }
        }
        Some(filter)
    }

    /// A filter value as a string: strings as they are, numbers and booleans in JSON form.
    fn filter_literal(&self, e: &ast::Expr) -> Option<String> {
        match self.constant(e)? {
            super::consts::Const::String(s) => Some(s.to_string()),
            super::consts::Const::Number(n) if n.is_finite() => Some(super::types::number_text(n)),
            super::consts::Const::Number(_) => None,
            super::consts::Const::Bool(b) => Some(b.to_string()),
        }
    }
}
