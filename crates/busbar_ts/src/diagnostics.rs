//! Named constructors for the diagnostics of the TypeScript frontend. Messages say what is
//! wrong and why it matters; the help line says what to do.

use busbar_diagnostics::{Diagnostic, Span, codes};

use busbar_analysis::diagnostics as common;
pub(crate) use busbar_analysis::diagnostics::{
    config_file_skipped, duplicate_config_key, internal_error, invalid_duration, nesting_too_deep,
    syntax_error, unreadable, value_out_of_range, wrong_value_type,
};

/// What kind of declaration a message is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DeclKind {
    Topic,
    /// `Topic.declaredElsewhere<T>("name")`.
    TopicHandle,
    Subscription,
    Service,
}

impl DeclKind {
    pub fn noun(self) -> &'static str {
        match self {
            DeclKind::Topic | DeclKind::TopicHandle => "topic",
            DeclKind::Subscription => "subscription",
            DeclKind::Service => "service",
        }
    }

    fn ctor(self) -> &'static str {
        match self {
            DeclKind::Topic => "new Topic<Event>(\"name\", { ... })",
            DeclKind::TopicHandle => "Topic.declaredElsewhere<Event>(\"name\")",
            DeclKind::Subscription => "new Subscription(topic, \"name\", { handler })",
            DeclKind::Service => "new Service(\"name\")",
        }
    }
}

pub(crate) fn invalid_utf8(span: Span) -> Diagnostic {
    Diagnostic::new(&codes::INVALID_UTF8, "this file is not valid UTF-8")
        .at_labelled(span, "first invalid byte")
        .with_help(
            "save the file as UTF-8; if it is not TypeScript (an MPEG transport stream also ends \
             in `.ts`), list it in .gitignore or .busbarignore",
        )
}

/// Where a declaration that is not at module level was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Nesting {
    Function,
    Block,
    Expression,
}

pub(crate) fn declared_in_function(kind: DeclKind, span: Span, nesting: Nesting) -> Diagnostic {
    let (message, label) = if nesting != Nesting::Expression {
        let label =
            if nesting == Nesting::Function { "inside a function" } else { "inside a block" };
        (format!("{} declared inside a function or block", kind.noun()), label)
    } else {
        (
            format!(
                "{} declared in an expression instead of as a module-level `const`",
                kind.noun()
            ),
            "not a module-level declaration",
        )
    };
    Diagnostic::new(&codes::DECLARED_IN_FUNCTION, message).at_labelled(span, label).with_help(
        format!(
            "declare it at the top level of the file: `export const x = {}`; busbar reads \
         declarations without running code, so it cannot see one that is created at run time",
            kind.ctor()
        ),
    )
}

pub(crate) fn name_not_literal(kind: DeclKind, span: Span) -> Diagnostic {
    Diagnostic::new(
        &codes::NAME_NOT_LITERAL,
        format!("the {} name must be a string literal", kind.noun()),
    )
    .at_labelled(span, "not a string literal")
    .with_help(format!(
        "write the name inline, e.g. `{}`; infrastructure is named before any code runs",
        kind.ctor()
    ))
}

pub(crate) fn missing_message_type(kind: DeclKind, span: Span) -> Diagnostic {
    let example = match kind {
        DeclKind::TopicHandle => "Topic.declaredElsewhere<SignupEvent>(\"signups\")",
        _ => "new Topic<SignupEvent>(\"signups\", { ... })",
    };
    Diagnostic::new(&codes::MISSING_MESSAGE_TYPE, "topic without a message type parameter")
        .at_labelled(span, "no `<Event>` here")
        .with_help(format!(
            "name the message type: `{example}`; busbar reads its `Attribute<...>` fields"
        ))
}

pub(crate) fn missing_config(kind: DeclKind, span: Span) -> Diagnostic {
    let help = match kind {
        DeclKind::Subscription => {
            "add the configuration: `new Subscription(topic, \"name\", { handler: async (event) => { ... } })`"
        }
        _ => {
            "add the configuration: `new Topic<Event>(\"name\", { deliveryGuarantee: \"at-least-once\" })`"
        }
    };
    Diagnostic::new(
        &codes::MISSING_CONFIG,
        format!("{} without a configuration object", kind.noun()),
    )
    .at_labelled(span, "no configuration object")
    .with_help(help)
}

pub(crate) fn config_not_literal(kind: DeclKind, span: Span) -> Diagnostic {
    Diagnostic::new(
        &codes::CONFIG_NOT_LITERAL,
        format!("the {} configuration must be an object literal", kind.noun()),
    )
    .at_labelled(span, "not an object literal")
    .with_help("write the object inline; busbar reads configuration without running code")
}

pub(crate) fn spread_in_config(span: Span) -> Diagnostic {
    Diagnostic::new(&codes::SPREAD_IN_CONFIG, "spread in a configuration object")
        .at_labelled(span, "cannot be read without running the code")
        .with_help("write every key inline")
}

pub(crate) fn handler_not_function(span: Span) -> Diagnostic {
    Diagnostic::new(&codes::WRONG_VALUE_TYPE, "`handler` must be a function")
        .at_labelled(span, "not a function")
        .with_help("pass a function, `handler: async (event) => { ... }`, or the name of one")
}

pub(crate) fn invalid_delivery_guarantee(value: &str, span: Span) -> Diagnostic {
    Diagnostic::new(
        &codes::INVALID_DELIVERY_GUARANTEE,
        format!("`deliveryGuarantee` \"{value}\" is not a delivery guarantee"),
    )
    .at_labelled(span, "unknown value")
    .with_help("use \"at-least-once\" or \"exactly-once\"")
}

pub(crate) fn unresolved_type_name(name: &str, span: Span, why: &str) -> Diagnostic {
    Diagnostic::new(
        &codes::UNRESOLVED_MESSAGE_TYPE,
        format!("cannot find the type `{name}` of a message: {why}"),
    )
    .at_labelled(span, "not found")
    .with_help(
        "declare the type in the app (this file or an import) or import it from where it is \
         exported; the TypeScript compiler refuses this too",
    )
}

pub(crate) fn message_type_open(span: Span, what: &str) -> Diagnostic {
    Diagnostic::new(
        &codes::MESSAGE_TYPE_OPEN,
        format!("{what}: this part of the message schema accepts any value"),
    )
    .at_labelled(span, "not followed")
    .with_help(
        "declare the shape in the app's own types (an interface or type alias) for a schema \
         that checks it; or leave it open",
    )
}

pub(crate) fn circular_type_alias(name: &str, span: Span) -> Diagnostic {
    Diagnostic::new(
        &codes::CIRCULAR_TYPE_ALIAS,
        format!("type alias `{name}` refers to itself, other than through an object or array"),
    )
    .at_labelled(span, "used here")
    .with_help(
        "a recursive type must recurse inside an object property or an array element \
         (`type Tree = { children: Tree[] }`); the TypeScript compiler refuses this alias",
    )
}

pub(crate) fn missing_handler(span: Span) -> Diagnostic {
    Diagnostic::new(&codes::MISSING_HANDLER, "subscription without a `handler`")
        .at_labelled(span, "no handler")
        .with_help("add `handler: async (event) => { ... }` or the name of a function")
}

pub(crate) fn invalid_topic_usage(topic: &str, span: Span, declared: Span) -> Diagnostic {
    Diagnostic::new(
        &codes::INVALID_TOPIC_USAGE,
        format!("invalid use of topic `{topic}`: the topic object escapes here"),
    )
    .at_labelled(span, "passed, stored or returned")
    .with_label(declared, "topic declared here")
    .with_help(
        "busbar follows only `topic.publish(...)` and `topic.ref<Publisher>()`; to hand the \
         topic to other code, pass `topic.ref<Publisher>()` instead, which also declares the \
         publish permission of this service",
    )
}

pub(crate) fn namespace_escapes(
    namespace: &str,
    topic: &str,
    span: Span,
    declared: Span,
) -> Diagnostic {
    Diagnostic::new(
        &codes::INVALID_TOPIC_USAGE,
        format!("invalid use of topic `{topic}`: the module object `{namespace}`, which holds it, escapes here"),
    )
    .at_labelled(span, "passed, stored or returned")
    .with_label(declared, "topic declared here")
    .with_help(
        "busbar follows `namespace.topic.publish(...)` but not a module object handed to other \
         code; pass `topic.ref<Publisher>()` instead",
    )
}

pub(crate) fn unresolved_subscription_topic(span: Span, why: &str) -> Diagnostic {
    Diagnostic::new(
        &codes::UNRESOLVED_SUBSCRIPTION_TOPIC,
        format!("the topic of this subscription cannot be resolved: {why}"),
    )
    .at_labelled(span, "not a declared topic")
    .with_help("pass a topic declared with `new Topic(...)` at module level, imported by name")
}

pub(crate) fn unresolved_import(
    specifier: &str,
    span: Span,
    use_span: Span,
    why: &str,
) -> Diagnostic {
    Diagnostic::new(
        &codes::UNRESOLVED_IMPORT,
        format!("cannot resolve `{specifier}`, which this code needs to find a topic: {why}"),
    )
    .at_labelled(use_span, "used as a topic here")
    .with_label(span, "imported here")
    .with_help(
        "check the path; busbar follows relative imports, tsconfig `paths`/`baseUrl` and \
         workspace packages, and skips .gitignored files and `.d.ts` declarations",
    )
}

pub(crate) fn missing_export(name: &str, module: &str, import: Span, use_span: Span) -> Diagnostic {
    Diagnostic::new(&codes::MISSING_EXPORT, format!("`{module}` does not export `{name}`"))
        .at_labelled(import, "imported here")
        .with_label(use_span, "used here")
        .with_help(format!(
            "export `{name}` from `{module}` or import it from the module that declares it; the \
         TypeScript compiler refuses this import too, and busbar cannot follow it to a topic"
        ))
}

pub(crate) fn invalid_ref_permission(span: Span, got: Option<&str>) -> Diagnostic {
    let message = match got {
        Some(got) => format!("`ref<{got}>()` does not declare a known permission"),
        None => "`ref()` without a permission type".to_string(),
    };
    Diagnostic::new(&codes::INVALID_REF_PERMISSION, message)
        .at_labelled(span, "expected `ref<Publisher>()`")
        .with_help(
            "write `topic.ref<Publisher>()` with `Publisher` imported from the pubsub module",
        )
}

pub(crate) fn missing_service_declaration(span: Span) -> Diagnostic {
    Diagnostic::new(
        &codes::MISSING_SERVICE_DECLARATION,
        "`encore.service.ts` does not declare a service",
    )
    .at_labelled(span, "no `export default new Service(...)` in this file")
    .with_help(
        "add `export default new Service(\"name\");` with `Service` from \"encore.dev/service\" or \"@busbar/pubsub\"",
    )
}

pub(crate) fn invalid_name(kind: DeclKind, name: &str, span: Span) -> Diagnostic {
    common::invalid_name(kind.noun(), name, span)
}

pub(crate) fn dotted_name(kind: DeclKind, name: &str, span: Span) -> Diagnostic {
    common::dotted_name(kind.noun(), name, span)
}

pub(crate) fn name_too_long(kind: DeclKind, name: &str, span: Span) -> Diagnostic {
    common::name_too_long(kind.noun(), name, span)
}

pub(crate) fn unknown_config_key(
    kind: DeclKind,
    key: &str,
    span: Span,
    known: &[&str],
) -> Diagnostic {
    common::unknown_config_key(kind.noun(), key, span, known)
}
