//! Suppression comments (`// busbar-ignore BB0123: reason`), per-code severities from
//! `busbar.toml`, and `--strict`, applied to a finished list of diagnostics.

use std::collections::BTreeMap;

use crate::codes::{self, Code};
use crate::{Diagnostic, FilePath, Severity, SourceFile, Span};

/// A `// busbar-ignore CODE[, CODE...]: reason` comment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suppression {
    /// The comment.
    pub span: Span,
    /// The codes as written, each with its span.
    pub codes: Vec<(String, Span)>,
    /// The reason after the colon; required.
    pub reason: Option<String>,
    /// The line (1-based) whose diagnostics it silences: the first line after the comment that
    /// is not itself a `busbar-ignore` comment.
    pub target_line: u32,
}

const MARKER: &str = "busbar-ignore";

/// Finds the suppression comments of a file. Only `//` comments on a line of their own count,
/// so the marker inside a string or after code is never mistaken for one.
pub fn scan_suppressions(file: &SourceFile) -> Vec<Suppression> {
    let text = file.text();
    if !text.contains(MARKER) {
        return Vec::new();
    }
    let starts = file.line_starts();
    let mut found = Vec::new();
    let mut pending: Vec<usize> = Vec::new();
    for (index, &start) in starts.iter().enumerate() {
        let end = starts.get(index + 1).map_or(text.len(), |&s| s as usize);
        let line = &text[start as usize..end];
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let is_marker = trimmed
            .strip_prefix("//")
            .map(|rest| rest.trim_start().starts_with(MARKER))
            .unwrap_or(false);
        if is_marker {
            let offset = start as usize + indent;
            let comment = trimmed.trim_end();
            found.push(parse_comment(file, offset as u32, comment, index as u32 + 2));
            pending.push(found.len() - 1);
        } else if !pending.is_empty() {
            for &i in &pending {
                found[i].target_line = index as u32 + 1;
            }
            pending.clear();
        }
    }
    found
}

fn parse_comment(file: &SourceFile, offset: u32, comment: &str, target_line: u32) -> Suppression {
    let span = file.span(offset, offset + comment.len() as u32);
    let after_slashes = &comment[2..];
    let marker_at = 2 + after_slashes.find(MARKER).unwrap_or(0) + MARKER.len();
    let rest = &comment[marker_at..];
    let (codes_part, reason) = match rest.split_once(':') {
        Some((codes, reason)) => {
            let reason = reason.trim();
            (codes, (!reason.is_empty()).then(|| reason.to_string()))
        }
        None => (rest, None),
    };
    let codes_base = offset + marker_at as u32;
    let mut codes = Vec::new();
    let mut cursor = 0usize;
    for piece in codes_part.split(',') {
        let trimmed = piece.trim();
        if !trimmed.is_empty() {
            let lead = piece.len() - piece.trim_start().len();
            let start = codes_base + (cursor + lead) as u32;
            codes.push((trimmed.to_string(), file.span(start, start + trimmed.len() as u32)));
        }
        cursor += piece.len() + 1;
    }
    Suppression { span, codes, reason, target_line }
}

/// A severity set for one code in `busbar.toml` (`[diagnostics] BB0104 = "error"`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeverityOverride {
    pub code: String,
    pub level: Level,
    /// Where it is set, for diagnostics about the setting itself.
    pub span: Span,
}

/// What `busbar.toml` may set a code to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Error,
    Warning,
    Note,
    Off,
}

impl Level {
    pub fn parse(s: &str) -> Option<Level> {
        Some(match s {
            "error" => Level::Error,
            "warning" => Level::Warning,
            "note" => Level::Note,
            "off" => Level::Off,
            _ => return None,
        })
    }
}

/// Everything that changes which diagnostics are shown and how.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    pub overrides: Vec<SeverityOverride>,
    pub suppressions: BTreeMap<FilePath, Vec<Suppression>>,
    /// Every warning becomes an error.
    pub strict: bool,
}

/// Why a diagnostic is not shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SuppressedBy {
    Comment { span: Span, reason: String },
    Config { span: Span },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suppressed {
    pub diagnostic: Diagnostic,
    pub by: SuppressedBy,
}

/// Diagnostics after settings: those to show, and those silenced (for `--show-suppressed`).
#[derive(Clone, Debug, Default)]
pub struct Triaged {
    pub shown: Vec<Diagnostic>,
    pub suppressed: Vec<Suppressed>,
}

/// A valid suppression of one code, and whether it silenced something.
type ActiveSuppression<'a> = (&'static Code, &'a Suppression, bool);

/// Applies severities from `busbar.toml`, suppression comments and `--strict`, and reports
/// settings that are themselves wrong (no reason, unknown code, unused comment).
pub fn apply_settings(diagnostics: Vec<Diagnostic>, settings: &Settings) -> Triaged {
    let mut meta = Vec::new();
    let mut levels: BTreeMap<&str, (Level, &Span)> = BTreeMap::new();
    for o in &settings.overrides {
        match codes::by_id(&o.code) {
            None => meta.push(unknown_code(&o.code, o.span.clone())),
            Some(code) if !code.configurable => meta.push(not_configurable(code, o.span.clone())),
            Some(code) => {
                levels.insert(code.id, (o.level, &o.span));
            }
        }
    }

    // Valid suppressions, keyed by (file, target line), with a flag for "used".
    let mut active: BTreeMap<(FilePath, u32), Vec<ActiveSuppression<'_>>> = BTreeMap::new();
    for suppressions in settings.suppressions.values() {
        for s in suppressions {
            if s.reason.is_none() {
                meta.push(
                    Diagnostic::new(
                        &codes::SUPPRESSION_WITHOUT_REASON,
                        "this `busbar-ignore` comment has no reason, so it silences nothing",
                    )
                    .at_labelled(s.span.clone(), "reason missing")
                    .with_help("say why after a colon: `// busbar-ignore BB0104: legacy name kept for compatibility`"),
                );
                continue;
            }
            if s.codes.is_empty() {
                meta.push(
                    Diagnostic::new(
                        &codes::UNKNOWN_CODE,
                        "this `busbar-ignore` comment names no code",
                    )
                    .at(s.span.clone())
                    .with_help("name the code to silence: `// busbar-ignore BB0104: reason`"),
                );
            }
            for (name, span) in &s.codes {
                match codes::by_id(name) {
                    None => meta.push(unknown_code(name, span.clone())),
                    Some(code) if !code.configurable => {
                        meta.push(not_configurable(code, span.clone()));
                    }
                    Some(code) => active
                        .entry((s.span.file.clone(), s.target_line))
                        .or_default()
                        .push((code, s, false)),
                }
            }
        }
    }

    let mut triaged = Triaged::default();
    for mut d in diagnostics {
        if d.code.configurable
            && let Some((level, span)) = levels.get(d.code.id)
        {
            match level {
                Level::Off => {
                    triaged.suppressed.push(Suppressed {
                        diagnostic: d,
                        by: SuppressedBy::Config { span: (*span).clone() },
                    });
                    continue;
                }
                Level::Error => d.severity = Severity::Error,
                Level::Warning => d.severity = Severity::Warning,
                Level::Note => d.severity = Severity::Note,
            }
        }
        if d.code.configurable
            && let Some(span) = &d.span
            && let Some(entries) = active.get_mut(&(span.file.clone(), span.line))
            && let Some(entry) = entries.iter_mut().find(|(code, _, _)| code.id == d.code.id)
        {
            entry.2 = true;
            let by = SuppressedBy::Comment {
                span: entry.1.span.clone(),
                reason: entry.1.reason.clone().unwrap_or_default(),
            };
            triaged.suppressed.push(Suppressed { diagnostic: d, by });
            continue;
        }
        triaged.shown.push(d);
    }
    for entries in active.values() {
        for (code, s, used) in entries {
            if !used {
                let span = s.codes.iter().find(|(c, _)| c == code.id).map(|(_, sp)| sp.clone());
                let mut d = Diagnostic::new(
                    &codes::UNUSED_SUPPRESSION,
                    format!(
                        "`busbar-ignore {}` silences nothing on line {}",
                        code.id, s.target_line
                    ),
                )
                .at_labelled(span.unwrap_or_else(|| s.span.clone()), "unused")
                .with_help("remove the comment, or move it to the line just before the finding");
                if let Some((level, _)) = levels.get(codes::UNUSED_SUPPRESSION.id) {
                    match level {
                        Level::Off => continue,
                        Level::Error => d.severity = Severity::Error,
                        Level::Warning => d.severity = Severity::Warning,
                        Level::Note => d.severity = Severity::Note,
                    }
                }
                meta.push(d);
            }
        }
    }
    triaged.shown.extend(meta);
    if settings.strict {
        for d in &mut triaged.shown {
            if d.severity == Severity::Warning {
                d.severity = Severity::Error;
            }
        }
    }
    crate::sort_diagnostics(&mut triaged.shown);
    triaged.suppressed.sort_by(|a, b| a.diagnostic.sort_key_cmp(&b.diagnostic));
    triaged
}

fn unknown_code(name: &str, span: Span) -> Diagnostic {
    Diagnostic::new(&codes::UNKNOWN_CODE, format!("`{name}` is not a busbar diagnostic code"))
        .at_labelled(span, "unknown code")
        .with_help("codes look like `BB0104`; `docs/diagnostics.md` lists them all")
}

fn not_configurable(code: &Code, span: Span) -> Diagnostic {
    Diagnostic::new(
        &codes::NOT_CONFIGURABLE,
        format!("{} ({}) cannot be silenced or given another severity", code.id, code.name),
    )
    .at_labelled(span, "not configurable")
    .with_help("this code means part of the app could not be read; fix the input instead")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> SourceFile {
        SourceFile::new("a.ts".into(), text)
    }

    fn diag_at(file: &SourceFile, line: u32, code: &'static Code) -> Diagnostic {
        Diagnostic::new(code, "x").at(file.line_span(line))
    }

    #[test]
    fn scans_comment_codes_reason_and_target() {
        let f = file(
            "a\n  // busbar-ignore BB0104, BB0401: kept for the old client\n// busbar-ignore BB0103\nx\n",
        );
        let s = scan_suppressions(&f);
        assert_eq!(s.len(), 2);
        assert_eq!(
            s[0].codes.iter().map(|(c, _)| c.as_str()).collect::<Vec<_>>(),
            ["BB0104", "BB0401"]
        );
        assert_eq!(s[0].reason.as_deref(), Some("kept for the old client"));
        assert_eq!(s[0].target_line, 4, "stacked comments target the first code line");
        assert_eq!((s[0].codes[1].1.line, s[0].codes[1].1.column), (2, 28));
        assert_eq!(s[1].reason, None);
    }

    #[test]
    fn marker_in_code_or_string_is_not_a_comment() {
        let f = file("const s = \"// busbar-ignore BB0104: x\"; // busbar-ignore BB0104: y\n");
        assert!(scan_suppressions(&f).is_empty());
    }

    #[test]
    fn comment_silences_matching_code_on_next_line_only() {
        let f = file("// busbar-ignore BB0104: legacy\nline2\nline3\n");
        let mut settings = Settings::default();
        settings.suppressions.insert(f.path().clone(), scan_suppressions(&f));
        let triaged = apply_settings(
            vec![
                diag_at(&f, 2, &codes::DOTTED_NAME),
                diag_at(&f, 2, &codes::INVALID_NAME),
                diag_at(&f, 3, &codes::DOTTED_NAME),
            ],
            &settings,
        );
        assert_eq!(triaged.suppressed.len(), 1);
        assert_eq!(triaged.suppressed[0].diagnostic.code.id, "BB0104");
        let shown: Vec<_> =
            triaged.shown.iter().map(|d| (d.code.id, d.span.as_ref().unwrap().line)).collect();
        assert_eq!(shown, [("BB0103", 2), ("BB0104", 3)]);
    }

    #[test]
    fn bad_suppressions_are_reported() {
        let f = file(
            "// busbar-ignore BB0104\n// busbar-ignore BB9999: r\n// busbar-ignore BB0002: r\n// busbar-ignore BB0401: r\nx\n",
        );
        let mut settings = Settings::default();
        settings.suppressions.insert(f.path().clone(), scan_suppressions(&f));
        let triaged = apply_settings(Vec::new(), &settings);
        let codes: Vec<_> = triaged.shown.iter().map(|d| d.code.id).collect();
        assert_eq!(codes, ["BB0008", "BB0009", "BB0011", "BB0010"]);
    }

    #[test]
    fn config_levels_and_strict() {
        let f = file("a\nb\n");
        let over =
            |code: &str, level| SeverityOverride { code: code.into(), level, span: f.line_span(1) };
        let settings = Settings {
            overrides: vec![
                over("BB0402", Level::Off),
                over("BB0103", Level::Warning),
                over("BB0002", Level::Off),
            ],
            suppressions: BTreeMap::new(),
            strict: false,
        };
        let input = vec![
            diag_at(&f, 2, &codes::TOPIC_WITHOUT_SUBSCRIPTIONS),
            diag_at(&f, 2, &codes::INVALID_NAME),
            diag_at(&f, 2, &codes::SYNTAX_ERROR),
        ];
        let triaged = apply_settings(input.clone(), &settings);
        assert_eq!(triaged.suppressed.len(), 1);
        let shown: Vec<_> = triaged.shown.iter().map(|d| (d.code.id, d.severity)).collect();
        assert_eq!(
            shown,
            [
                ("BB0011", Severity::Warning),
                ("BB0002", Severity::Error),
                ("BB0103", Severity::Warning)
            ]
        );
        let strict = apply_settings(input, &Settings { strict: true, ..settings });
        assert!(strict.shown.iter().all(|d| d.severity == Severity::Error));
    }
}
