//! Named constructors for the diagnostics of the TypeScript frontend. Messages say what is
//! wrong and why it matters; the help line says what to do.

use busbar_diagnostics::{Diagnostic, Span, codes};

/// What kind of declaration a message is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DeclKind {
    Topic,
    Subscription,
    Service,
}

impl DeclKind {
    pub fn noun(self) -> &'static str {
        match self {
            DeclKind::Topic => "topic",
            DeclKind::Subscription => "subscription",
            DeclKind::Service => "service",
        }
    }

    fn ctor(self) -> &'static str {
        match self {
            DeclKind::Topic => "new Topic<Event>(\"name\", { ... })",
            DeclKind::Subscription => "new Subscription(topic, \"name\", { handler })",
            DeclKind::Service => "new Service(\"name\")",
        }
    }
}

pub(crate) fn syntax_error(span: Span, message: &str) -> Diagnostic {
    Diagnostic::new(&codes::SYNTAX_ERROR, format!("syntax error: {message}"))
        .at(span)
        .with_help("fix the syntax; busbar analyzed the rest of the app without this file")
}

pub(crate) fn invalid_utf8(span: Span) -> Diagnostic {
    Diagnostic::new(&codes::INVALID_UTF8, "this file is not valid UTF-8")
        .at_labelled(span, "first invalid byte")
        .with_help(
            "save the file as UTF-8; if it is not TypeScript (an MPEG transport stream also ends \
             in `.ts`), list it in .gitignore or .busbarignore",
        )
}

pub(crate) fn unreadable(span: Option<Span>, path: &str, error: &str) -> Diagnostic {
    let d = Diagnostic::new(&codes::UNREADABLE_FILE, format!("cannot read `{path}`: {error}"))
        .with_help("check the permissions, or list the path in .gitignore or .busbarignore");
    match span {
        Some(span) => d.at(span),
        None => d,
    }
}

/// A config file around the app that was not read: `path`, why, and what that left out.
pub(crate) fn config_file_skipped(path: &str, why: &str, left_out: &str) -> Diagnostic {
    Diagnostic::new(&codes::CONFIG_FILE_SKIPPED, format!("`{path}` was skipped: {why}; {left_out}"))
        .with_help("make it a readable regular file, or remove it")
}

pub(crate) fn internal_error(span: Span, what: &str) -> Diagnostic {
    Diagnostic::new(
        &codes::INTERNAL_ERROR,
        format!("busbar failed while analyzing this file: {what}"),
    )
    .at(span)
    .with_help(
        "this is a bug in busbar; please report it with the file. The rest of the app was analyzed",
    )
}

pub(crate) fn nesting_too_deep(span: Span) -> Diagnostic {
    Diagnostic::new(
        &codes::NESTING_TOO_DEEP,
        "this file nests too deeply to be analyzed safely".to_string(),
    )
    .at_labelled(span, "a trial analysis of this file ran out of stack")
    .with_help(
        "split the most deeply nested expression or statement; generated code can be excluded with .busbarignore",
    )
}

pub(crate) fn symlink_loop(path: &str) -> Diagnostic {
    Diagnostic::new(&codes::SYMLINK_LOOP, format!("`{path}` is a symbolic link loop; skipped"))
        .with_help("nothing to do unless that directory holds source busbar should read")
}

pub(crate) fn dangling_symlink(path: &str) -> Diagnostic {
    Diagnostic::new(
        &codes::DANGLING_SYMLINK,
        format!("`{path}` is a symbolic link to nothing; skipped"),
    )
    .with_help("remove the link, or create what it points to if busbar should read it")
}

pub(crate) fn symlink_outside_root(path: &str) -> Diagnostic {
    Diagnostic::new(
        &codes::SYMLINK_OUTSIDE_ROOT,
        format!("`{path}` is a symbolic link that leads outside the app root; not followed"),
    )
    .with_help("analyze the directory it points to, or import its files through tsconfig `paths`")
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

pub(crate) fn invalid_name(kind: DeclKind, name: &str, span: Span) -> Diagnostic {
    Diagnostic::new(
        &codes::INVALID_NAME,
        format!("{} name `{name}` is not kebab-case", kind.noun()),
    )
    .at_labelled(span, "not kebab-case")
    .with_help(format!(
        "use lowercase letters, digits and dashes, starting with a letter: `{}`",
        busbar_model::names::suggest_kebab(name)
    ))
}

pub(crate) fn dotted_name(kind: DeclKind, name: &str, span: Span) -> Diagnostic {
    Diagnostic::new(&codes::DOTTED_NAME, format!("{} name `{name}` contains dots", kind.noun()))
        .at_labelled(span, "dotted name")
        .with_help(format!(
            "it works, but SNS and SQS reject dots, so cloud resources are named `{}`; prefer \
             that name in code (an error under --strict)",
            name.replace('.', "-")
        ))
}

pub(crate) fn name_too_long(kind: DeclKind, name: &str, span: Span) -> Diagnostic {
    Diagnostic::new(
        &codes::NAME_TOO_LONG,
        format!(
            "{} name `{name}` is {} characters long; the limit is {}",
            kind.noun(),
            name.chars().count(),
            busbar_model::names::MAX_NAME_LEN
        ),
    )
    .at_labelled(span, "too long")
    .with_help("shorten it; cloud resource names add a prefix and suffixes to it")
}

pub(crate) fn missing_message_type(span: Span) -> Diagnostic {
    Diagnostic::new(&codes::MISSING_MESSAGE_TYPE, "topic without a message type parameter")
        .at_labelled(span, "no `<Event>` here")
        .with_help("name the message type: `new Topic<SignupEvent>(\"signups\", { ... })`; busbar reads its `Attribute<...>` fields")
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

pub(crate) fn unknown_config_key(
    kind: DeclKind,
    key: &str,
    span: Span,
    known: &[&str],
) -> Diagnostic {
    let suggestion = if ["minBackoff", "maxBackoff", "maxRetries"].contains(&key)
        && known.contains(&"retryPolicy")
    {
        format!("`{key}` belongs inside `retryPolicy: {{ {key}: ... }}`; ")
    } else {
        known
            .iter()
            .find(|k| k.eq_ignore_ascii_case(key) || strsim_close(k, key))
            .map(|k| format!("did you mean `{k}`? "))
            .unwrap_or_default()
    };
    Diagnostic::new(
        &codes::UNKNOWN_CONFIG_KEY,
        format!("unknown {} configuration key `{key}`", kind.noun()),
    )
    .at_labelled(span, "unknown key")
    .with_help(format!("{suggestion}known keys: {}", known.join(", ")))
}

/// Same length ±1 and at most two differing characters: a typo.
fn strsim_close(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.len().abs_diff(b.len()) > 1 {
        return false;
    }
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let suffix = a.iter().rev().zip(b.iter().rev()).take_while(|(x, y)| x == y).count();
    prefix + suffix + 2 >= a.len().max(b.len())
}

pub(crate) fn duplicate_config_key(key: &str, span: Span, first: Span) -> Diagnostic {
    Diagnostic::new(&codes::DUPLICATE_CONFIG_KEY, format!("`{key}` is set twice"))
        .at_labelled(span, "set again here")
        .with_label(first, "first set here")
        .with_help("remove one of them; only the last would take effect at run time")
}

pub(crate) fn spread_in_config(span: Span) -> Diagnostic {
    Diagnostic::new(&codes::SPREAD_IN_CONFIG, "spread in a configuration object")
        .at_labelled(span, "cannot be read without running the code")
        .with_help("write every key inline")
}

pub(crate) fn wrong_value_type(key: &str, expected: &str, span: Span) -> Diagnostic {
    Diagnostic::new(&codes::WRONG_VALUE_TYPE, format!("`{key}` must be {expected}"))
        .at_labelled(span, "wrong type")
        .with_help(format!(
            "write {expected} in the declaration itself, not a variable or an expression; \
             busbar reads configuration without running code"
        ))
}

pub(crate) fn handler_not_function(span: Span) -> Diagnostic {
    Diagnostic::new(&codes::WRONG_VALUE_TYPE, "`handler` must be a function")
        .at_labelled(span, "not a function")
        .with_help("pass a function, `handler: async (event) => { ... }`, or the name of one")
}

pub(crate) fn invalid_duration(key: &str, value: &str, why: &str, span: Span) -> Diagnostic {
    Diagnostic::new(
        &codes::INVALID_DURATION,
        format!("`{key}`: \"{value}\" is not a duration: {why}"),
    )
    .at_labelled(span, "not a duration")
    .with_help(format!("write {}", busbar_model::duration::GRAMMAR))
}

pub(crate) fn value_out_of_range(message: String, span: Span, help: &str) -> Diagnostic {
    Diagnostic::new(&codes::VALUE_OUT_OF_RANGE, message)
        .at_labelled(span, "out of range")
        .with_help(help)
}

pub(crate) fn invalid_delivery_guarantee(value: &str, span: Span) -> Diagnostic {
    Diagnostic::new(
        &codes::INVALID_DELIVERY_GUARANTEE,
        format!("`deliveryGuarantee` \"{value}\" is not a delivery guarantee"),
    )
    .at_labelled(span, "unknown value")
    .with_help("use \"at-least-once\" or \"exactly-once\"")
}

pub(crate) fn not_an_attribute(
    code: &'static busbar_diagnostics::Code,
    what: &str,
    field: &str,
    message_type: &str,
    span: Span,
    field_span: Option<Span>,
    attributes: &[String],
) -> Diagnostic {
    let (message, label) = if field_span.is_some() {
        (
            format!("{what} `{field}` is a field of `{message_type}` but not an `Attribute<...>`"),
            "not an attribute",
        )
    } else {
        (format!("{what} `{field}` is not a field of `{message_type}`"), "no such field")
    };
    let known = if attributes.is_empty() {
        format!("`{message_type}` has no attributes; declare one as `{field}: Attribute<string>`")
    } else {
        format!(
            "declare `{field}` as `Attribute<...>` in `{message_type}`, or use one of its attributes: {}",
            attributes.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", ")
        )
    };
    let mut d = Diagnostic::new(code, message).at_labelled(span, label).with_help(known);
    if let Some(field_span) = field_span {
        d = d.with_label(field_span, "declared here");
    }
    d
}

pub(crate) fn reserved_attribute_prefix(name: &str, span: Span, topic_span: Span) -> Diagnostic {
    Diagnostic::new(
        &codes::RESERVED_ATTRIBUTE_PREFIX,
        format!("attribute `{name}` starts with a reserved prefix"),
    )
    .at_labelled(span, "reserved prefix")
    .with_label(topic_span, "a topic of this message type")
    .with_help(
        "attribute names starting with `encore` or `busbar` are used by the runtime: rename it",
    )
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

pub(crate) fn encore_union_attribute(name: &str, span: Span, topic: Span) -> Diagnostic {
    Diagnostic::new(
        &codes::ENCORE_UNION_ATTRIBUTE,
        format!("attribute `{name}` of a union message type is not sent as an attribute on Encore's runtime"),
    )
    .at_labelled(span, "in one branch of a union")
    .with_label(topic, "a topic of this message type")
    .with_help(
        "Encore's runtime finds no attributes on a union message type (filters on it match \
         nothing); make the message type one object type (an interface) with the attribute, \
         or run on busbar's runtime (remove `runtime = \"encore\"` from busbar.toml's [plan])",
    )
}

pub(crate) fn encore_union_ordering(name: &str, span: Span) -> Diagnostic {
    Diagnostic::new(
        &codes::ENCORE_UNION_ORDERING,
        format!("ordering attribute `{name}` of a union message type fails every publish on Encore's runtime"),
    )
    .at_labelled(span, "the message type is a union")
    .with_help(
        "Encore's runtime finds no attributes on a union message type, so it cannot order by \
         one; make the message type one interface with the attribute, or run on busbar's \
         runtime (remove `runtime = \"encore\"` from busbar.toml's [plan])",
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

pub(crate) fn unreached_publish(topic: &str, span: Span) -> Diagnostic {
    Diagnostic::new(
        &codes::UNREACHED_PUBLISH,
        format!("publish to `{topic}` in a file that no service imports"),
    )
    .at_labelled(span, "no service reaches this code")
    .with_help(
        "permissions are granted to the services whose files import this file; import it from \
         a service, or move the code into one",
    )
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

pub(crate) fn nested_service(
    inner: &str,
    inner_span: Option<Span>,
    outer: &str,
    outer_span: Option<Span>,
) -> Diagnostic {
    let mut d = Diagnostic::new(
        &codes::NESTED_SERVICE,
        format!("service `{inner}` is inside the directory of service `{outer}`"),
    )
    .with_help("move it next to the other service; a service owns its whole directory tree");
    if let Some(span) = inner_span {
        d = d.at_labelled(span, "nested service");
    }
    if let Some(span) = outer_span {
        d = d.with_label(span, "enclosing service");
    }
    d
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

pub(crate) fn overlapping_service_globs(
    file: &str,
    first: &str,
    first_span: Span,
    second: &str,
    second_span: Span,
) -> Diagnostic {
    Diagnostic::new(
        &codes::OVERLAPPING_SERVICE_GLOBS,
        format!("`{file}` matches the paths of both `{first}` and `{second}`"),
    )
    .at_labelled(second_span, "overlaps")
    .with_label(first_span, "also matches")
    .with_help("make the globs in [services] disjoint: each file belongs to one service")
}

pub(crate) fn unmatched_service_mapping(name: &str, span: Option<Span>) -> Diagnostic {
    let d = Diagnostic::new(
        &codes::UNMATCHED_SERVICE_MAPPING,
        format!("service `{name}` in busbar.toml matches no source file"),
    )
    .with_help("check the path: it is relative to the app root (where busbar.toml is)");
    match span {
        Some(span) => d.at_labelled(span, "matches nothing"),
        None => d,
    }
}
