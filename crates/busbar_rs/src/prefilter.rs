//! The Rust pre-filter: which files of the module trees get syn's full parse.
//!
//! A file is parsed when its bytes may hold something the link reads from it:
//!
//! - an out-of-line `mod x;` ([`declares_file_mod`]): the module tree goes through it;
//! - a **trigger word** ([`Words`]) as an identifier: `busbar` (or the name a manifest renames
//!   it to), `Topic`, `subscribe`, `publish`, `publisher`. A topic, a handle, a subscription, a
//!   publish, a ref and a suppression comment cannot be written without one (the extractor
//!   matches these names syntactically, as `extract::topic_ctor` and `subscribe_attr` show);
//! - a name of the code graph's **backward closure** ([`interesting`]): the topic statics, the
//!   items whose code publishes or refs, and, transitively, the items whose code names an
//!   interesting item, and the `use` renames of one. Only such a file can add a runner on the
//!   way from a service to a publish, or name a topic where it may not (BB0201);
//! - a file a lookup of the link read (`Resolver::unread`): a message type, a `pub use` chain,
//!   a glob. These are found in rounds, as in TypeScript.
//!
//! Each test errs towards parsing: a non-ASCII byte where the `mod x;` scan looks counts as a
//! declaration, and a non-ASCII byte next to a word counts as a boundary.

use aho_corasick::AhoCorasick;
use memchr::memmem;
use rustc_hash::FxHashSet as HashSet;

use crate::facts::RsFile;

/// The words that make a file a seed, besides the names busbar's crate goes by.
pub(crate) const TRIGGERS: &[&str] = &["Topic", "subscribe", "publish", "publisher"];

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// A set of identifiers to look for in a file's bytes.
pub(crate) struct Words(AhoCorasick);

impl Words {
    /// `None` when there is no word (or the automaton cannot be built: then every file is
    /// parsed, see [`Words::any_in`]'s callers).
    pub fn new<S: AsRef<str>>(words: impl IntoIterator<Item = S>) -> Option<Words> {
        let words: Vec<String> = words.into_iter().map(|w| w.as_ref().to_string()).collect();
        if words.is_empty() {
            return None;
        }
        AhoCorasick::new(&words).ok().map(Words)
    }

    /// Whether one of the words stands in `text` as a whole identifier (ASCII letters,
    /// digits and `_` on neither side; `r#word` counts).
    pub fn any_in(&self, text: &[u8]) -> bool {
        self.0.find_overlapping_iter(text).any(|m| {
            let before = m.start() == 0 || !is_ident(text[m.start() - 1]);
            let after = m.end() == text.len() || !is_ident(text[m.end()]);
            before && after
        })
    }
}

/// Whether `text` may declare an out-of-line module: `mod`, a name, `;`, with whitespace and
/// comments between (a superset: in a string or a comment it counts too).
pub(crate) fn declares_file_mod(text: &[u8]) -> bool {
    for at in memmem::find_iter(text, b"mod") {
        if at > 0 && is_ident(text[at - 1]) {
            continue;
        }
        if after_mod(text, at + 3) {
            return true;
        }
    }
    false
}

/// After a `mod` at a word start: whether a name and a `;` (or something this scan does not
/// understand) follow.
fn after_mod(text: &[u8], i: usize) -> bool {
    match text.get(i) {
        Some(&b) if is_ident(b) => return false,
        Some(&b) if b >= 0x80 => return true,
        _ => {}
    }
    let Some(mut i) = skip_trivia(text, i) else { return true };
    if text[i..].starts_with(b"r#") {
        i += 2;
    }
    let start = i;
    while let Some(&b) = text.get(i) {
        if b >= 0x80 {
            return true;
        }
        if !is_ident(b) {
            break;
        }
        i += 1;
    }
    if i == start {
        return false;
    }
    skip_trivia(text, i).is_none_or(|i| text[i] == b';')
}

/// Skips whitespace and comments from `i`: the next byte's index, or `None` (meaning "may be
/// a declaration") at the end of the text, in an unterminated comment or at a non-ASCII byte.
fn skip_trivia(text: &[u8], mut i: usize) -> Option<usize> {
    loop {
        match text.get(i..)? {
            [] => return None,
            [b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c', ..] => i += 1,
            [b'/', b'/', ..] => i += memchr::memchr(b'\n', &text[i..])?,
            [b'/', b'*', ..] => {
                let mut depth = 0usize;
                loop {
                    match text.get(i..)? {
                        [] => return None,
                        [b'/', b'*', ..] => (depth, i) = (depth + 1, i + 2),
                        [b'*', b'/', ..] => {
                            (depth, i) = (depth - 1, i + 2);
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => i += 1,
                    }
                }
            }
            [b, ..] if *b >= 0x80 => return None,
            _ => return Some(i),
        }
    }
}

/// The names of the code graph's backward closure over the parsed files: from `seeds` (the
/// link's topic statics and the items whose code publishes or refs a topic), to a fixpoint,
/// the owners of a reference that names one and the `use` bindings whose path does. A skipped
/// file that names none of them cannot hold a runner on the way to a publish or a reference
/// to a topic.
pub(crate) fn interesting(files: &[RsFile], seeds: &[String]) -> HashSet<String> {
    let parsed: Vec<&RsFile> = files.iter().filter(|f| !f.skipped).collect();
    let mut names: HashSet<String> = seeds.iter().cloned().collect();
    if names.is_empty() {
        return names;
    }
    loop {
        let before = names.len();
        for f in &parsed {
            for r in &f.refs {
                if f.segments_of(r).any(|s| names.contains(s)) {
                    let owner = f.owner_of(r);
                    if !names.contains(owner) {
                        names.insert(owner.to_string());
                    }
                }
            }
            for m in &f.modules {
                #[expect(
                    clippy::iter_over_hash_type,
                    reason = "the fixpoint is a set: the order names are added in changes nothing"
                )]
                for (alias, binding) in &m.uses {
                    if !names.contains(alias) && binding.path.iter().any(|s| names.contains(s)) {
                        names.insert(alias.clone());
                    }
                }
            }
        }
        if names.len() == before {
            break;
        }
    }
    // `<impl>`, `<macro>`: owners no path can name.
    names.retain(|n| !n.starts_with('<') && !n.is_empty());
    names
}

#[cfg(test)]
mod tests {
    use super::{Words, declares_file_mod};

    #[test]
    fn file_mods_are_found_through_comments_and_raw_names() {
        for yes in [
            "mod a;",
            "pub mod a ;",
            "#[path = \"x.rs\"] mod a;",
            "mod /* c */ a /* d /* nested */ */ ;",
            "mod // line\n a\n;",
            "mod r#type;",
            "fn f() {}\nmod tail",
            "mod é;",
            "mod a /* unterminated",
        ] {
            assert!(declares_file_mod(yes.as_bytes()), "{yes:?}");
        }
        for no in
            ["mod a { }", "fn model() {}", "let x = amod;", "mod a {}\nfn modify(m: mode) {}", ""]
        {
            assert!(!declares_file_mod(no.as_bytes()), "{no:?}");
        }
    }

    #[test]
    fn words_are_whole_identifiers() {
        let w = Words::new(["publish", "publisher", "Topic"]).expect("words");
        for yes in ["X.publish(m)", "X.publisher()", "r#publish", "busbar::Topic", "(Topic)"] {
            assert!(w.any_in(yes.as_bytes()), "{yes:?}");
        }
        for no in ["republish()", "publishing", "Topics", "MyTopic", "publisher_x"] {
            assert!(!w.any_in(no.as_bytes()), "{no:?}");
        }
        assert!(Words::new(Vec::<String>::new()).is_none());
    }
}
