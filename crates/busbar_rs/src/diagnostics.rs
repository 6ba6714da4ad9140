//! Named constructors for the diagnostics of the Rust frontend: the same codes as TypeScript
//! where the meaning is the same, with help lines in Rust. File-level and shared ones come
//! from `busbar_analysis::diagnostics`.

use busbar_diagnostics::{Diagnostic, Span, codes};

pub(crate) use busbar_analysis::diagnostics::{
    config_file_skipped, dotted_name, internal_error, invalid_duration, invalid_name,
    name_too_long, nesting_too_deep, syntax_error, unknown_config_key, unreadable,
    value_out_of_range, wrong_value_type,
};

pub(crate) fn invalid_utf8(span: Span) -> Diagnostic {
    Diagnostic::new(&codes::INVALID_UTF8, "this file is not valid UTF-8")
        .at_labelled(span, "first invalid byte")
        .with_help("save the file as UTF-8; rustc refuses it too")
}

pub(crate) fn topic_in_function(span: Span) -> Diagnostic {
    Diagnostic::new(&codes::DECLARED_IN_FUNCTION, "topic declared inside a function or block")
        .at_labelled(span, "not a module-level `static`")
        .with_help(
            "declare it as a module-level item: `pub static ORDERS: Topic<Order> = \
             Topic::new(\"orders\");` and use it from the function",
        )
}

pub(crate) fn subscription_not_module_level(span: Span) -> Diagnostic {
    Diagnostic::new(
        &codes::DECLARED_IN_FUNCTION,
        "subscription declared on a function that is not a module-level item",
    )
    .at_labelled(span, "inside a function, an impl or a trait")
    .with_help("put `#[busbar::subscribe(...)]` on a free `async fn` at module level")
}

pub(crate) fn name_not_literal(noun: &str, span: Span) -> Diagnostic {
    let example = match noun {
        "topic" => "`Topic::new(\"orders\")`",
        _ => "`#[busbar::subscribe(topic = ORDERS, name = \"ship-order\")]`",
    };
    Diagnostic::new(&codes::NAME_NOT_LITERAL, format!("the {noun} name must be a string literal"))
        .at_labelled(span, "not a string literal")
        .with_help(format!(
            "write the name inline, e.g. {example}; infrastructure is named before any code runs"
        ))
}

pub(crate) fn missing_message_type(span: Span) -> Diagnostic {
    Diagnostic::new(&codes::MISSING_MESSAGE_TYPE, "topic without a message type")
        .at_labelled(span, "no `Topic<Event>` here")
        .with_help(
            "give the static its type: `pub static SIGNUPS: Topic<SignupEvent> = \
             Topic::new(\"signups\");`; busbar reads its `#[busbar(attribute)]` fields",
        )
}

pub(crate) fn invalid_delivery_guarantee(span: Span) -> Diagnostic {
    Diagnostic::new(
        &codes::INVALID_DELIVERY_GUARANTEE,
        "`delivery` must be `DeliveryGuarantee::AtLeastOnce` or `DeliveryGuarantee::ExactlyOnce`",
    )
    .at_labelled(span, "unknown value")
    .with_help("write the variant inline; busbar reads configuration without running code")
}

pub(crate) fn unresolved_subscription_topic(span: Span, why: &str) -> Diagnostic {
    Diagnostic::new(
        &codes::UNRESOLVED_SUBSCRIPTION_TOPIC,
        format!("the topic of this subscription cannot be resolved: {why}"),
    )
    .at_labelled(span, "not a declared topic")
    .with_help(
        "name a module-level `static` declared with `Topic::new(...)` (or \
         `Topic::declared_elsewhere(...)`), by a path or a `use`",
    )
}

pub(crate) fn invalid_topic_usage(topic: &str, span: Span, declared: Span) -> Diagnostic {
    Diagnostic::new(
        &codes::INVALID_TOPIC_USAGE,
        format!("topic `{topic}` is used as a value, so its publishers cannot be followed"),
    )
    .at_labelled(span, "the topic escapes here")
    .with_label(declared, "declared here")
    .with_help(
        "call `.publish(...)` on the static itself, or pass `.publisher()` (a `Publisher`) \
         to code that publishes elsewhere",
    )
}

pub(crate) fn unresolved_path(path: &str, span: Span, why: &str) -> Diagnostic {
    Diagnostic::new(&codes::UNRESOLVED_IMPORT, format!("`{path}` cannot be resolved: {why}"))
        .at_labelled(span, "leads nowhere")
        .with_help(
            "check the `use` and the `mod` declarations, and that the crate is a dependency \
             in Cargo.toml; rustc refuses this too",
        )
}

pub(crate) fn missing_subscription_setting(key: &str, span: Span) -> Diagnostic {
    Diagnostic::new(&codes::MISSING_CONFIG, format!("subscription without `{key}`"))
        .at_labelled(span, "incomplete")
        .with_help(format!(
            "write `#[busbar::subscribe(topic = ORDERS, name = \"ship-order\", ...)]` with \
             `{key}` set"
        ))
}

pub(crate) fn config_not_literal(span: Span) -> Diagnostic {
    Diagnostic::new(
        &codes::CONFIG_NOT_LITERAL,
        "the subscription settings must be `key = value` pairs",
    )
    .at_labelled(span, "cannot be read")
    .with_help(
        "write `#[busbar::subscribe(topic = ORDERS, name = \"ship-order\", max_retries = 5)]`",
    )
}

pub(crate) fn unsupported_message_part(span: Span, what: &str) -> Diagnostic {
    Diagnostic::new(
        &codes::MESSAGE_TYPE_OPEN,
        format!("{what}: this part of the message schema accepts any value"),
    )
    .at_labelled(span, "not followed")
    .with_help(
        "declare the shape with the app's own structs and enums (with serde's derives) for a \
         schema that checks it; or leave it open",
    )
}

pub(crate) fn unresolved_type(name: &str, span: Span, why: &str) -> Diagnostic {
    Diagnostic::new(
        &codes::UNRESOLVED_MESSAGE_TYPE,
        format!("cannot find the type `{name}` of a message: {why}"),
    )
    .at_labelled(span, "not found")
    .with_help("declare the type in the workspace or `use` it from where it is declared")
}
