//! Provider names from busbar names (CLOUD.md, "Names"): sanitised to the characters a provider
//! accepts, truncated deterministically with a short hash of the full name when too long, and
//! padded when too short. Collisions between two different objects are found by the planners.

use busbar_diagnostics::{Diagnostic, Span, codes};
use sha2::{Digest, Sha256};

/// The naming rules of one kind of provider resource.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rules {
    /// Accepted characters; any other becomes `-`.
    pub allowed: fn(char) -> bool,
    /// Longest accepted name, suffix included.
    pub max: usize,
    /// Shortest accepted name.
    pub min: usize,
    /// A fixed suffix the provider requires (`.fifo`), kept whole at the end.
    pub suffix: &'static str,
    /// Lowercase the name (GCP service account ids).
    pub lowercase: bool,
}

fn aws_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

fn gcp_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~' | '+' | '%')
}

fn gcp_account_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
}

/// SNS topic names: 1–256 of `[A-Za-z0-9_-]`, `.fifo` included for FIFO topics.
pub(crate) fn sns_topic(fifo: bool) -> Rules {
    Rules {
        allowed: aws_char,
        max: 256,
        min: 1,
        suffix: if fifo { ".fifo" } else { "" },
        lowercase: false,
    }
}

/// SQS queue names: 1–80 of `[A-Za-z0-9_-]`, `.fifo` included for FIFO queues.
pub(crate) fn sqs_queue(fifo: bool) -> Rules {
    Rules {
        allowed: aws_char,
        max: 80,
        min: 1,
        suffix: if fifo { ".fifo" } else { "" },
        lowercase: false,
    }
}

/// IAM policy and CloudWatch alarm names (kept to the SQS character set, which both accept).
pub(crate) const AWS_POLICY: Rules =
    Rules { allowed: aws_char, max: 128, min: 1, suffix: "", lowercase: false };

/// Pub/Sub topic and subscription names: 3–255 characters.
pub(crate) const GCP_PUBSUB: Rules =
    Rules { allowed: gcp_char, max: 255, min: 3, suffix: "", lowercase: false };

/// Service account ids: 6–30 of `[a-z0-9-]`.
pub(crate) const GCP_ACCOUNT: Rules =
    Rules { allowed: gcp_account_char, max: 30, min: 6, suffix: "", lowercase: true };

/// Length of the hash appended to a shortened or padded name.
const HASH_LEN: usize = 8;

/// A provider name and what was done to fit it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Name {
    pub name: String,
    /// The name was cut to fit the limit (with a hash).
    pub truncated: bool,
}

/// The first [`HASH_LEN`] hex digits of the SHA-256 of `s`.
pub(crate) fn short_hash(s: &str) -> String {
    let digest = Sha256::digest(s.as_bytes());
    let mut out = String::with_capacity(HASH_LEN);
    for byte in digest.iter().take(HASH_LEN / 2) {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// Applies `rules` to `raw` (a busbar name with its prefix, without the suffix).
pub(crate) fn apply(raw: &str, rules: Rules) -> Name {
    let mut base: String = raw
        .chars()
        .map(|c| if rules.lowercase { c.to_ascii_lowercase() } else { c })
        .map(|c| if (rules.allowed)(c) { c } else { '-' })
        .collect();
    let mut truncated = false;
    let room = rules.max - rules.suffix.len();
    if base.chars().count() > room {
        // Cut, then `-` and a hash of the whole original name, so two long names that share a
        // beginning still differ, and the same name always gives the same result.
        let keep = room - HASH_LEN - 1;
        let cut: String = base.chars().take(keep).collect();
        base = format!("{}-{}", cut.trim_end_matches(['-', '.', '_']), short_hash(raw));
        truncated = true;
    }
    let mut name = format!("{base}{}", rules.suffix);
    if name.chars().count() < rules.min {
        name = format!("{base}-{}{}", short_hash(raw), rules.suffix);
    }
    Name { name, truncated }
}

/// A Terraform resource name (the part after `aws_sns_topic.`): letters, digits, `_` and `-`,
/// starting with a letter or `_`. Derived from busbar names only, never from a truncation, so
/// that a change of prefix or limit never moves an address.
pub(crate) fn address(parts: &[&str]) -> String {
    let joined = parts.join("--");
    let mut out: String = joined.chars().map(|c| if aws_char(c) { c } else { '_' }).collect();
    if !out.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        out.insert(0, '_');
    }
    if out != joined {
        // `site.added` and `site_added` must not share an address.
        out = format!("{out}_{}", short_hash(&joined));
    }
    out
}

/// The names given so far in one provider namespace (SQS queues, SNS topics, ...), to report
/// two declarations that end up with the same name.
#[derive(Debug, Default)]
pub(crate) struct Namespace {
    taken: std::collections::BTreeMap<String, (String, Span)>,
}

impl Namespace {
    /// Records `name` for `what` (`topic \`a.b\``) declared at `span`; a name already taken by
    /// something else is a [`codes::PLAN_NAME_COLLISION`] error. A name shortened to fit is
    /// a [`codes::PLAN_NAME_SHORTENED`] note.
    pub(crate) fn claim(
        &mut self,
        name: &Name,
        kind: &str,
        what: &str,
        span: &Span,
        diagnostics: &mut Vec<Diagnostic>,
    ) {
        if name.truncated {
            diagnostics.push(
                Diagnostic::new(
                    &codes::PLAN_NAME_SHORTENED,
                    format!(
                        "the {kind} name of {what} is too long and is shortened to `{}`",
                        name.name
                    ),
                )
                .at(span.clone())
                .with_help("a shorter prefix, topic or subscription name keeps the full name"),
            );
        }
        match self.taken.get(&name.name) {
            Some((first, first_span)) if first != what => diagnostics.push(
                Diagnostic::new(
                    &codes::PLAN_NAME_COLLISION,
                    format!("{what} and {first} both get the {kind} name `{}`", name.name),
                )
                .at_labelled(span.clone(), format!("{what} is declared here"))
                .with_label(first_span.clone(), format!("{first} is declared here"))
                .with_help("rename one of them: the provider cannot tell them apart"),
            ),
            Some(_) => {}
            None => {
                self.taken.insert(name.name.clone(), (what.to_string(), span.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitises_dots_and_keeps_fifo_suffix() {
        assert_eq!(apply("shop-site.added", sns_topic(false)).name, "shop-site-added");
        assert_eq!(apply("shop-orders", sns_topic(true)).name, "shop-orders.fifo");
        assert_eq!(apply("a", GCP_PUBSUB).name, format!("a-{}", short_hash("a")));
        assert_eq!(apply("Mail", GCP_ACCOUNT).name, format!("mail-{}", short_hash("Mail")));
        assert_eq!(apply("Billing", GCP_ACCOUNT).name, "billing");
    }

    #[test]
    fn truncates_deterministically_within_the_limit() {
        let long = format!("{}--{}", "t".repeat(50), "s".repeat(50));
        let a = apply(&long, sqs_queue(true));
        assert!(a.truncated);
        assert_eq!(a.name.len(), 80);
        assert!(a.name.ends_with(&format!("-{}.fifo", short_hash(&long))), "{}", a.name);
        assert_eq!(a, apply(&long, sqs_queue(true)));
        let other = format!("{}--{}", "t".repeat(50), "s".repeat(49) + "x");
        assert_ne!(apply(&other, sqs_queue(true)).name, a.name, "same beginning, other hash");
        let fits = "t".repeat(75);
        assert_eq!(apply(&fits, sqs_queue(true)).name, format!("{fits}.fifo"));
        assert!(!apply(&fits, sqs_queue(true)).truncated);
    }

    #[test]
    fn addresses_are_stable_identifiers() {
        assert_eq!(address(&["user-added"]), "user-added");
        assert_eq!(address(&["user-added", "welcome"]), "user-added--welcome");
        let dotted = address(&["site.added"]);
        assert!(dotted.starts_with("site_added_"), "{dotted}");
        assert_ne!(dotted, address(&["site_added"]));
        assert!(address(&["9lives"]).starts_with('_'));
    }
}
