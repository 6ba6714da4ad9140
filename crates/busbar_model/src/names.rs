//! Resource names: the kebab-case rule, dotted names, the length limit.

/// The longest name busbar accepts (GCP and the suffixes busbar adds need room).
pub const MAX_NAME_LEN: usize = 63;

/// What is wrong with a name, if anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameCheck {
    Ok,
    /// Kebab-case but for dots (`site.added`): accepted with a warning.
    Dotted,
    Invalid,
    TooLong,
}

/// `^[a-z]([-a-z0-9]*[a-z0-9])?$`
pub fn is_kebab_case(name: &str) -> bool {
    let bytes = name.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_lowercase()
                && (last.is_ascii_lowercase() || last.is_ascii_digit())
                && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        }
        _ => false,
    }
}

pub fn check_name(name: &str) -> NameCheck {
    if name.chars().count() > MAX_NAME_LEN {
        return NameCheck::TooLong;
    }
    if is_kebab_case(name) {
        return NameCheck::Ok;
    }
    if name.contains('.') && !name.contains("..") && is_kebab_case(&name.replace('.', "-")) {
        return NameCheck::Dotted;
    }
    NameCheck::Invalid
}

/// A kebab-case suggestion for an invalid name, for help lines.
pub fn suggest_kebab(name: &str) -> String {
    let mut out = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            if prev_lower {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
            prev_lower = false;
        } else if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
            prev_lower = true;
        } else {
            if !out.ends_with('-') && !out.is_empty() {
                out.push('-');
            }
            prev_lower = false;
        }
    }
    let trimmed =
        out.trim_matches('-').trim_start_matches(|c: char| c.is_ascii_digit() || c == '-');
    if trimmed.is_empty() { "my-topic".to_string() } else { trimmed.to_string() }
}

/// The name a subscription's own resources derive from (its SQS queue, Dapr's subscription):
/// `{topic}--{subscription}`. Plans prepend their prefix and apply the provider's rules.
pub fn subscription_resource(topic: &str, subscription: &str) -> String {
    format!("{topic}--{subscription}")
}

/// The dead-letter topic (or queue) of a subscription, `{topic}--{subscription}--dlq`: the one
/// derivation every plan and the runtime use.
pub fn dead_letter(topic: &str, subscription: &str) -> String {
    format!("{}--dlq", subscription_resource(topic, subscription))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kebab_case() {
        for ok in ["a", "signups", "user-added", "a1", "v2-events-3"] {
            assert_eq!(check_name(ok), NameCheck::Ok, "{ok}");
        }
        for bad in ["", "A", "1a", "a-", "-a", "a_b", "userAdded", "a b", "é"] {
            assert_eq!(check_name(bad), NameCheck::Invalid, "{bad}");
        }
        assert_eq!(check_name("site.added"), NameCheck::Dotted);
        assert_eq!(check_name("site..added"), NameCheck::Invalid);
        assert_eq!(check_name(".site"), NameCheck::Invalid);
        assert_eq!(check_name(&"a".repeat(63)), NameCheck::Ok);
        assert_eq!(check_name(&"a".repeat(64)), NameCheck::TooLong);
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest_kebab("UserAdded"), "user-added");
        assert_eq!(suggest_kebab("user_added"), "user-added");
        assert_eq!(suggest_kebab("Bad Name!"), "bad-name");
    }

    #[test]
    fn derived_names() {
        assert_eq!(subscription_resource("orders", "mail"), "orders--mail");
        assert_eq!(dead_letter("orders", "mail"), "orders--mail--dlq");
    }
}
