//! The registry of diagnostic codes: append-only. A code, once released, keeps its number and
//! meaning forever; retire a code by leaving it here with a note, never by reusing its number.
//!
//! `docs/diagnostics.md` documents every code (a test checks it).

use crate::Severity;

/// A stable diagnostic code.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Code {
    /// `BB` and four digits; the first two digits are the area.
    pub id: &'static str,
    /// A short kebab-case name, shown in documentation.
    pub name: &'static str,
    /// The severity before `busbar.toml` and `--strict` are applied.
    pub severity: Severity,
    /// Whether `busbar.toml` may change its severity and a `busbar-ignore` comment may silence
    /// it. Codes that mean "part of the input could not be read at all" are not: silencing them
    /// would hide that the model is incomplete.
    pub configurable: bool,
    /// One line on what it means, for documentation and `--explain`-style listings.
    pub summary: &'static str,
}

macro_rules! codes {
    ($( $(#[$doc:meta])* $konst:ident = $id:literal $name:literal $sev:ident $conf:literal $summary:literal; )*) => {
        $( $(#[$doc])* pub const $konst: Code = Code {
            id: $id, name: $name, severity: Severity::$sev, configurable: $conf, summary: $summary,
        }; )*
        /// Every code, in number order.
        pub const ALL: &[&Code] = &[$( &$konst ),*];
    };
}

codes! {
    // BB00xx: input, environment, configuration, suppression.
    INTERNAL_ERROR = "BB0001" "internal-error" Error false
        "busbar failed on this file; this is a bug in busbar, please report it";
    SYNTAX_ERROR = "BB0002" "syntax-error" Error false
        "the file is not valid TypeScript; the rest of the app is still analyzed";
    INVALID_UTF8 = "BB0003" "invalid-utf8" Error false
        "the file is not valid UTF-8";
    UNREADABLE_FILE = "BB0004" "unreadable-file" Error false
        "a source file or directory could not be read";
    SYMLINK_LOOP = "BB0005" "symlink-loop" Note true
        "a symbolic link leads back into a directory being walked; it was skipped";
    SYMLINK_OUTSIDE_ROOT = "BB0006" "symlink-outside-root" Note true
        "a symbolic link leads outside the app root; it was not followed";
    INVALID_CONFIG = "BB0007" "invalid-config" Error false
        "busbar.toml is not valid: a syntax error, an unknown key or a value of the wrong type";
    SUPPRESSION_WITHOUT_REASON = "BB0008" "suppression-without-reason" Error false
        "a `busbar-ignore` comment without a reason; it silences nothing";
    UNKNOWN_CODE = "BB0009" "unknown-code" Warning false
        "a `busbar-ignore` comment or a busbar.toml severity names a code that does not exist";
    UNUSED_SUPPRESSION = "BB0010" "unused-suppression" Warning true
        "a `busbar-ignore` comment silences nothing on the next line";
    NOT_CONFIGURABLE = "BB0011" "code-not-configurable" Warning false
        "a `busbar-ignore` comment or a busbar.toml severity names a code that cannot be silenced";
    NESTING_TOO_DEEP = "BB0012" "nesting-too-deep" Error false
        "the file nests expressions or blocks too deeply to be analyzed safely";
    DIRECTORY_NOT_FOUND = "BB0013" "directory-not-found" Error false
        "the app directory does not exist or is not a directory";
    DANGLING_SYMLINK = "BB0014" "dangling-symlink" Note true
        "a symbolic link points to nothing; it was skipped";
    CONFIG_FILE_SKIPPED = "BB0015" "config-file-skipped" Warning false
        "a tsconfig.json, package.json or ignore file is unreadable or not a regular file; what it says was not applied";

    // BB01xx: declarations of topics and subscriptions.
    DECLARED_IN_FUNCTION = "BB0101" "declared-in-function" Error true
        "a topic or subscription is declared inside a function or block instead of at module level";
    NAME_NOT_LITERAL = "BB0102" "name-not-literal" Error true
        "a topic, subscription or service name is not a string literal";
    INVALID_NAME = "BB0103" "invalid-name" Error true
        "a name is not kebab-case (`^[a-z]([-a-z0-9]*[a-z0-9])?$`)";
    DOTTED_NAME = "BB0104" "dotted-name" Warning true
        "a name contains dots; it works, but is sanitised for clouds that reject dots";
    NAME_TOO_LONG = "BB0105" "name-too-long" Error true
        "a name is longer than 63 characters";
    DUPLICATE_TOPIC = "BB0106" "duplicate-topic" Error true
        "two topics in the app have the same name";
    DUPLICATE_SUBSCRIPTION = "BB0107" "duplicate-subscription" Error true
        "two subscriptions on one topic have the same name";
    MISSING_MESSAGE_TYPE = "BB0108" "missing-message-type" Error true
        "a topic has no message type parameter (`new Topic<Event>(...)`)";
    MISSING_CONFIG = "BB0109" "missing-config" Error true
        "a topic or subscription has no configuration object";
    CONFIG_NOT_LITERAL = "BB0110" "config-not-literal" Error true
        "a configuration is not an object literal, so it cannot be read without running the code";
    UNKNOWN_CONFIG_KEY = "BB0111" "unknown-config-key" Error true
        "a configuration object has a key busbar does not know";
    DUPLICATE_CONFIG_KEY = "BB0112" "duplicate-config-key" Error true
        "a configuration object sets the same key twice";
    SPREAD_IN_CONFIG = "BB0113" "spread-in-config" Error true
        "a configuration object uses `...spread`, which cannot be read without running the code";
    WRONG_VALUE_TYPE = "BB0114" "wrong-value-type" Error true
        "a configuration value has the wrong type or is not a literal";
    INVALID_DURATION = "BB0115" "invalid-duration" Error true
        "a duration string cannot be parsed (`\"10s\"`, `\"500ms\"`, `\"1h30m\"`)";
    VALUE_OUT_OF_RANGE = "BB0116" "value-out-of-range" Error true
        "a configuration value is outside the range busbar accepts";
    INVALID_DELIVERY_GUARANTEE = "BB0117" "invalid-delivery-guarantee" Error true
        "`deliveryGuarantee` is not `\"at-least-once\"` or `\"exactly-once\"`";
    ORDERING_ATTRIBUTE_NOT_ATTRIBUTE = "BB0118" "ordering-attribute-not-attribute" Error true
        "`orderingAttribute` does not name an `Attribute<...>` field of the message type";
    FILTER_KEY_NOT_ATTRIBUTE = "BB0119" "filter-key-not-attribute" Error true
        "a `filter` key does not name an `Attribute<...>` field of the message type";
    RESERVED_ATTRIBUTE_PREFIX = "BB0120" "reserved-attribute-prefix" Error true
        "an attribute name starts with a reserved prefix (`encore`, `busbar`)";
    UNRESOLVED_MESSAGE_TYPE = "BB0121" "unresolved-message-type" Error true
        "the message type of a topic cannot be found, so its attributes are unknown";
    MISSING_HANDLER = "BB0122" "missing-handler" Error true
        "a subscription has no `handler`";
    MESSAGE_TYPE_OPEN = "BB0123" "message-type-open" Note true
        "part of a message type is not followed (a third-party type, a construct busbar does not evaluate); its schema accepts any value there";
    CIRCULAR_TYPE_ALIAS = "BB0124" "circular-type-alias" Error true
        "a type alias refers to itself other than through an object or array, so it has no values";
    ENCORE_UNION_ATTRIBUTE = "BB0125" "encore-union-attribute" Warning true
        "on Encore's runtime (`[plan] runtime = \"encore\"`), an attribute of a union message type is not sent as an attribute";
    ENCORE_UNION_ORDERING = "BB0126" "encore-union-ordering" Error true
        "on Encore's runtime (`[plan] runtime = \"encore\"`), an ordering attribute on a union message type fails every publish";

    // BB02xx: references to topics across files.
    INVALID_TOPIC_USAGE = "BB0201" "invalid-topic-usage" Error true
        "a topic object escapes (passed, stored or returned), so its publishers cannot be followed";
    UNRESOLVED_SUBSCRIPTION_TOPIC = "BB0202" "unresolved-subscription-topic" Error true
        "the topic argument of a subscription does not resolve to a declared topic";
    UNRESOLVED_IMPORT = "BB0203" "unresolved-import" Error true
        "an import that leads to a topic cannot be resolved";
    UNREACHED_PUBLISH = "BB0204" "unreached-publish" Error true
        "a publish outside every service that no service imports, so no service can be granted it";
    INVALID_REF_PERMISSION = "BB0205" "invalid-ref-permission" Error true
        "`ref<...>()` without the `Publisher` permission type";
    MISSING_EXPORT = "BB0206" "missing-export" Error true
        "an import names something the module does not export";
    UNDECLARED_TOPIC = "BB0207" "undeclared-topic" Error true
        "a handle on a topic declared elsewhere names a topic no file of the app declares";

    // BB03xx: services.
    NESTED_SERVICE = "BB0301" "nested-service" Error true
        "a service directory is inside another service";
    DUPLICATE_SERVICE = "BB0302" "duplicate-service" Error true
        "two services have the same name";
    MISSING_SERVICE_DECLARATION = "BB0303" "missing-service-declaration" Error true
        "an `encore.service.ts` file without `export default new Service(\"name\")`";
    OVERLAPPING_SERVICE_GLOBS = "BB0304" "overlapping-service-globs" Error true
        "a file matches the busbar.toml paths of two services";
    UNMATCHED_SERVICE_MAPPING = "BB0305" "unmatched-service-mapping" Warning true
        "a busbar.toml service mapping matches no source file";
    SUBSCRIPTION_OUTSIDE_SERVICE = "BB0306" "subscription-outside-service" Error true
        "a subscription in code that belongs to no service (a Rust library crate), so no service runs it";

    // BB04xx: checks over the permission graph.
    TOPIC_WITHOUT_PUBLISHERS = "BB0401" "topic-without-publishers" Warning true
        "no service publishes to a topic";
    TOPIC_WITHOUT_SUBSCRIPTIONS = "BB0402" "topic-without-subscriptions" Note true
        "a topic has no subscriptions, so its messages go nowhere";

    // BB05xx: cloud plans (provider limits and names).
    PLAN_VALUE_CLAMPED = "BB0501" "plan-value-clamped" Warning true
        "a subscription setting is outside a provider's range; the plan uses the nearest bound";
    PLAN_VALUE_UNSUPPORTED = "BB0502" "plan-value-unsupported" Error false
        "a declaration asks for something a target provider cannot do";
    PLAN_NAME_SHORTENED = "BB0503" "plan-name-shortened" Note true
        "a resource name was too long for a provider and was cut, with a hash of the full name";
    PLAN_NAME_COLLISION = "BB0504" "plan-name-collision" Error false
        "two declarations give the same provider resource name";
    PLAN_CHANGE_LOSES_MESSAGES = "BB0505" "plan-change-loses-messages" Warning true
        "compared with the previous plan, a queue, subscription or topic is destroyed or replaced";

    // BB06xx: the permission audit.
    AUDIT_NO_LOCKFILE = "BB0601" "audit-no-lockfile" Error false
        "there is no busbar.lock to compare the code's grants with";
    AUDIT_INVALID_LOCKFILE = "BB0602" "audit-invalid-lockfile" Error false
        "busbar.lock cannot be read as a permission lockfile";
    AUDIT_UNLOCKED_GRANT = "BB0603" "audit-unlocked-grant" Error true
        "the code needs a grant that busbar.lock does not list";
    AUDIT_STALE_GRANT = "BB0604" "audit-stale-grant" Warning true
        "busbar.lock lists a grant the code no longer needs";
    AUDIT_POLICY_DENIED = "BB0605" "audit-policy-denied" Error true
        "a grant breaks a deny or allow rule of busbar.toml";
    AUDIT_CROSS_SERVICE_PUBLISH = "BB0606" "audit-cross-service-publish" Error true
        "a service publishes to a topic declared in another service, against `cross-service-publish`";
    AUDIT_FOREIGN_TOPIC = "BB0607" "audit-foreign-topic" Warning true
        "a topic is declared in a service that never publishes to it, while other services do";
    AUDIT_IMPLICIT_PUBLISH = "BB0608" "audit-implicit-publish" Note true
        "a service may publish only because it imports a shared file that publishes";
    IAM_INVALID_INPUT = "BB0609" "iam-invalid-input" Error false
        "an --iam file is not one of the supported formats";
    IAM_OVER_PRIVILEGE = "BB0610" "iam-over-privilege" Error true
        "deployed IAM lets a service do more than its code needs";
    IAM_WILDCARD = "BB0611" "iam-wildcard" Error true
        "deployed IAM uses a wildcard action or resource, NotAction or NotResource";
    IAM_UNDER_PRIVILEGE = "BB0612" "iam-under-privilege" Error true
        "deployed IAM lacks a grant the code needs: a runtime failure waiting to happen";
    IAM_UNMAPPED = "BB0613" "iam-unmapped" Warning true
        "a role, policy or member in the IAM input belongs to no service of the app";
    AUDIT_SCHEMA_BREAKING = "BB0614" "audit-schema-breaking" Error true
        "a topic's message schema changed in a way that breaks its subscribers, against busbar.lock";
    AUDIT_SCHEMA_COMPATIBLE = "BB0615" "audit-schema-compatible" Note true
        "a topic's message schema changed compatibly, against busbar.lock";
}

/// The code with this id, if it exists.
pub fn by_id(id: &str) -> Option<&'static Code> {
    ALL.iter().copied().find(|c| c.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_sorted_and_well_formed() {
        for pair in ALL.windows(2) {
            assert!(pair[0].id < pair[1].id, "{} is not before {}", pair[0].id, pair[1].id);
        }
        for code in ALL {
            assert!(code.id.len() == 6 && code.id.starts_with("BB"), "{}", code.id);
            assert!(code.id[2..].bytes().all(|b| b.is_ascii_digit()), "{}", code.id);
            assert!(
                code.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "{}",
                code.name
            );
        }
        let mut names: Vec<_> = ALL.iter().map(|c| c.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len(), "code names must be unique");
    }
}
