//! Named constructors for the diagnostics of the language-neutral half of analysis
//! (discovery, services, the model), and of files whatever their language. Frontends use the
//! file-level ones too, so one code reads the same in every language.

use busbar_diagnostics::{Diagnostic, Span, codes};

use crate::facts::Language;

pub fn unreadable(span: Option<Span>, path: &str, error: &str) -> Diagnostic {
    let d = Diagnostic::new(&codes::UNREADABLE_FILE, format!("cannot read `{path}`: {error}"))
        .with_help("check the permissions, or list the path in .gitignore or .busbarignore");
    match span {
        Some(span) => d.at(span),
        None => d,
    }
}

/// A config file around the app that was not read: `path`, why, and what that left out.
pub fn config_file_skipped(path: &str, why: &str, left_out: &str) -> Diagnostic {
    Diagnostic::new(&codes::CONFIG_FILE_SKIPPED, format!("`{path}` was skipped: {why}; {left_out}"))
        .with_help("make it a readable regular file, or remove it")
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

/// A message type's attributes, for messages about a key that is not one of them.
pub(crate) struct Attributes<'a> {
    pub message_type: &'a str,
    /// The attributes a filter or an ordering may name.
    pub usable: &'a [String],
    pub language: Language,
}

pub(crate) fn not_an_attribute(
    code: &'static busbar_diagnostics::Code,
    what: &str,
    field: &str,
    span: Span,
    field_span: Option<Span>,
    of: &Attributes<'_>,
) -> Diagnostic {
    let message_type = of.message_type;
    let (not, declare_as, declare_one) = match of.language {
        Language::TypeScript => (
            "an `Attribute<...>`".to_string(),
            format!("declare `{field}` as `Attribute<...>`"),
            format!("declare one as `{field}: Attribute<string>`"),
        ),
        Language::Rust => (
            "a `#[busbar(attribute)]` field".to_string(),
            format!("mark `{field}` with `#[busbar(attribute)]`"),
            "mark one field with `#[busbar(attribute)]`".to_string(),
        ),
    };
    let (message, label) = if field_span.is_some() {
        (
            format!("{what} `{field}` is a field of `{message_type}` but not {not}"),
            "not an attribute",
        )
    } else {
        (format!("{what} `{field}` is not a field of `{message_type}`"), "no such field")
    };
    let known = if of.usable.is_empty() {
        format!("`{message_type}` has no attributes; {declare_one}")
    } else {
        format!(
            "{declare_as} in `{message_type}`, or use one of its attributes: {}",
            of.usable.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", ")
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

pub(crate) fn subscription_outside_service(name: &str, span: Span) -> Diagnostic {
    Diagnostic::new(
        &codes::SUBSCRIPTION_OUTSIDE_SERVICE,
        format!("subscription `{name}` is in code that belongs to no service"),
    )
    .at_labelled(span, "no service runs this subscription")
    .with_help(
        "declare it in the binary package of the service that handles these messages, or map \
         this directory to a service in busbar.toml's [services]",
    )
}

pub(crate) fn undeclared_topic(topic: &str, span: Span) -> Diagnostic {
    Diagnostic::new(
        &codes::UNDECLARED_TOPIC,
        format!("topic `{topic}` is declared elsewhere, but no file of the app declares it"),
    )
    .at_labelled(span, "declared nowhere")
    .with_help(
        "declare the topic in the service that owns it (`Topic::new(\"name\")` in Rust, \
         `new Topic<Event>(\"name\", { ... })` in TypeScript), or fix the name",
    )
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

pub fn syntax_error(span: Span, message: &str) -> Diagnostic {
    Diagnostic::new(&codes::SYNTAX_ERROR, format!("syntax error: {message}"))
        .at(span)
        .with_help("fix the syntax; busbar analyzed the rest of the app without this file")
}

pub fn internal_error(span: Span, what: &str) -> Diagnostic {
    Diagnostic::new(
        &codes::INTERNAL_ERROR,
        format!("busbar failed while analyzing this file: {what}"),
    )
    .at(span)
    .with_help(
        "this is a bug in busbar; please report it with the file. The rest of the app was analyzed",
    )
}

pub fn nesting_too_deep(span: Span) -> Diagnostic {
    Diagnostic::new(
        &codes::NESTING_TOO_DEEP,
        "this file nests too deeply to be analyzed safely".to_string(),
    )
    .at_labelled(span, "a trial analysis of this file ran out of stack")
    .with_help(
        "split the most deeply nested expression or statement; generated code can be excluded with .busbarignore",
    )
}

pub fn invalid_duration(key: &str, value: &str, why: &str, span: Span) -> Diagnostic {
    Diagnostic::new(
        &codes::INVALID_DURATION,
        format!("`{key}`: \"{value}\" is not a duration: {why}"),
    )
    .at_labelled(span, "not a duration")
    .with_help(format!("write {}", busbar_model::duration::GRAMMAR))
}

pub fn value_out_of_range(message: String, span: Span, help: &str) -> Diagnostic {
    Diagnostic::new(&codes::VALUE_OUT_OF_RANGE, message)
        .at_labelled(span, "out of range")
        .with_help(help)
}

pub fn wrong_value_type(key: &str, expected: &str, span: Span) -> Diagnostic {
    Diagnostic::new(&codes::WRONG_VALUE_TYPE, format!("`{key}` must be {expected}"))
        .at_labelled(span, "wrong type")
        .with_help(format!(
            "write {expected} in the declaration itself, not a variable or an expression; \
             busbar reads configuration without running code"
        ))
}

pub fn duplicate_config_key(key: &str, span: Span, first: Span) -> Diagnostic {
    Diagnostic::new(&codes::DUPLICATE_CONFIG_KEY, format!("`{key}` is set twice"))
        .at_labelled(span, "set again here")
        .with_label(first, "first set here")
        .with_help("remove one of them; only the last would take effect at run time")
}

pub fn invalid_name(noun: &str, name: &str, span: Span) -> Diagnostic {
    Diagnostic::new(&codes::INVALID_NAME, format!("{noun} name `{name}` is not kebab-case"))
        .at_labelled(span, "not kebab-case")
        .with_help(format!(
            "use lowercase letters, digits and dashes, starting with a letter: `{}`",
            busbar_model::names::suggest_kebab(name)
        ))
}

pub fn dotted_name(noun: &str, name: &str, span: Span) -> Diagnostic {
    Diagnostic::new(&codes::DOTTED_NAME, format!("{noun} name `{name}` contains dots"))
        .at_labelled(span, "dotted name")
        .with_help(format!(
            "it works, but SNS and SQS reject dots, so cloud resources are named `{}`; prefer \
             that name in code (an error under --strict)",
            name.replace('.', "-")
        ))
}

pub fn name_too_long(noun: &str, name: &str, span: Span) -> Diagnostic {
    Diagnostic::new(
        &codes::NAME_TOO_LONG,
        format!(
            "{} name `{name}` is {} characters long; the limit is {}",
            noun,
            name.chars().count(),
            busbar_model::names::MAX_NAME_LEN
        ),
    )
    .at_labelled(span, "too long")
    .with_help("shorten it; cloud resource names add a prefix and suffixes to it")
}

pub fn unknown_config_key(noun: &str, key: &str, span: Span, known: &[&str]) -> Diagnostic {
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
    Diagnostic::new(&codes::UNKNOWN_CONFIG_KEY, format!("unknown {noun} configuration key `{key}`"))
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
