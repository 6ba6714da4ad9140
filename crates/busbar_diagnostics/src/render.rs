//! The human renderer: the message, the source line with the span underlined, labels and a help
//! line. codespan-reporting does the drawing; its types stay inside this module.

use std::ops::Range;

use codespan_reporting::diagnostic as cs;
use codespan_reporting::files::{Error as FilesError, Files};
use codespan_reporting::term::{self, termcolor};

use crate::{Diagnostic, Severity, SourceDb, SourceFile, Span};

/// Source lines longer than this many bytes are not shown; the location is given instead.
const MAX_SNIPPET_LINE: usize = 1000;

/// How to render for a human.
#[derive(Clone, Copy, Debug, Default)]
pub struct HumanOptions {
    /// ANSI colours (for a terminal).
    pub color: bool,
}

/// Renders diagnostics one after another, each followed by a blank line.
pub fn render_human(
    diagnostics: &[Diagnostic],
    sources: &SourceDb,
    options: HumanOptions,
) -> String {
    let mut out = String::new();
    for d in diagnostics {
        out.push_str(&render_human_one(d, sources, options));
    }
    out
}

/// Renders one diagnostic.
pub fn render_human_one(d: &Diagnostic, sources: &SourceDb, options: HumanOptions) -> String {
    let files = Db::new(sources, d);
    let severity = match d.severity {
        Severity::Error => cs::Severity::Error,
        Severity::Warning => cs::Severity::Warning,
        Severity::Note => cs::Severity::Note,
    };
    let mut diagnostic =
        cs::Diagnostic::new(severity).with_code(d.code.id).with_message(d.message.clone());
    let mut notes = Vec::new();
    let mut labels = Vec::new();
    let mut push_label = |span: &Span, message: &str, primary: bool, notes: &mut Vec<String>| {
        match files.id_of(span) {
            // A minified or generated line of megabytes is not worth printing: say where.
            Some(id) if files.line_len(id, span) > MAX_SNIPPET_LINE => {
                let at = format!("{} (the line is too long to show)", span.location());
                notes.push(if message.is_empty() {
                    format!("at {at}")
                } else {
                    format!("{message}: {at}")
                });
            }
            Some(id) => {
                let range = files.range(id, span);
                let label = if primary {
                    cs::Label::primary(id, range)
                } else {
                    cs::Label::secondary(id, range)
                };
                labels.push(label.with_message(message));
            }
            // The file's text is not at hand: say where, without a snippet.
            None if message.is_empty() => notes.push(format!("at {}", span.location())),
            None => notes.push(format!("{message}: {}", span.location())),
        }
    };
    if let Some(span) = &d.span {
        push_label(span, d.span_label.as_deref().unwrap_or(""), true, &mut notes);
    }
    for label in &d.labels {
        push_label(&label.span, &label.message, false, &mut notes);
    }
    if let Some(help) = &d.help {
        notes.push(format!("help: {help}"));
    }
    diagnostic = diagnostic.with_labels(labels).with_notes(notes);

    let config = term::Config::default();
    let mut buffer = Vec::new();
    let result = if options.color {
        let mut writer = termcolor::Ansi::new(&mut buffer);
        term::emit_to_write_style(&mut writer, &config, &files, &diagnostic)
    } else {
        term::emit_to_io_write(&mut buffer, &config, &files, &diagnostic)
    };
    match result {
        Ok(()) => String::from_utf8_lossy(&buffer).into_owned(),
        // Rendering can only fail on an inconsistent source database; fall back to one line
        // rather than losing the finding.
        Err(_) => plain_line(d),
    }
}

fn plain_line(d: &Diagnostic) -> String {
    let mut s = format!("{}[{}]: {}\n", d.severity.as_str(), d.code.id, d.message);
    if let Some(span) = &d.span {
        s.push_str(&format!("  --> {}\n", span.location()));
    }
    if let Some(help) = &d.help {
        s.push_str(&format!("  = help: {help}\n"));
    }
    s
}

/// The files one diagnostic touches, indexed for codespan.
struct Db<'a> {
    files: Vec<&'a SourceFile>,
}

impl<'a> Db<'a> {
    fn new(sources: &'a SourceDb, d: &Diagnostic) -> Self {
        let mut files: Vec<&SourceFile> = Vec::new();
        let spans = d.span.iter().chain(d.labels.iter().map(|l| &l.span));
        for span in spans {
            if let Some(file) = sources.get(&span.file)
                && !files.iter().any(|f| f.path() == file.path())
            {
                files.push(file);
            }
        }
        Db { files }
    }

    fn id_of(&self, span: &Span) -> Option<usize> {
        self.files.iter().position(|f| **f.path() == *span.file)
    }

    fn range(&self, id: usize, span: &Span) -> Range<usize> {
        let len = self.files[id].text().len();
        let start = (span.start as usize).min(len);
        let end = (span.end as usize).clamp(start, len);
        start..end
    }

    /// The length in bytes of the line a span starts on.
    fn line_len(&self, id: usize, span: &Span) -> usize {
        let start = self.range(id, span).start;
        let line = self.line_index(id, start).unwrap_or(0);
        self.line_range(id, line).map_or(0, |r| r.len())
    }

    fn file(&self, id: usize) -> Result<&'a SourceFile, FilesError> {
        self.files.get(id).copied().ok_or(FilesError::FileMissing)
    }
}

impl<'a> Files<'a> for Db<'a> {
    type FileId = usize;
    type Name = &'a str;
    type Source = &'a str;

    fn name(&'a self, id: usize) -> Result<&'a str, FilesError> {
        Ok(self.file(id)?.path())
    }

    fn source(&'a self, id: usize) -> Result<&'a str, FilesError> {
        Ok(self.file(id)?.text())
    }

    fn line_index(&'a self, id: usize, byte_index: usize) -> Result<usize, FilesError> {
        let starts = self.file(id)?.line_starts();
        Ok(match starts.binary_search(&(byte_index as u32)) {
            Ok(i) => i,
            Err(i) => i - 1,
        })
    }

    fn column_number(
        &'a self,
        id: usize,
        _line_index: usize,
        byte_index: usize,
    ) -> Result<usize, FilesError> {
        Ok(self.file(id)?.line_column(byte_index as u32).1 as usize)
    }

    fn line_range(&'a self, id: usize, line_index: usize) -> Result<Range<usize>, FilesError> {
        let file = self.file(id)?;
        let starts = file.line_starts();
        let start = *starts
            .get(line_index)
            .ok_or(FilesError::LineTooLarge { given: line_index, max: starts.len() - 1 })?
            as usize;
        let end = starts.get(line_index + 1).map_or(file.text().len(), |&s| s as usize);
        Ok(start..end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes;

    #[test]
    fn renders_snippet_label_and_help() {
        let mut db = SourceDb::new();
        let file = SourceFile::new(
            "svc/a.ts".into(),
            "import x from \"y\";\nconst t = new Topic<E>(\"Bad_Name\", {});\n",
        );
        let span = file.span(42, 52);
        db.insert(file);
        let d =
            crate::Diagnostic::new(&codes::INVALID_NAME, "topic name `Bad_Name` is not kebab-case")
                .at_labelled(span, "not kebab-case")
                .with_help("use lowercase letters, digits and dashes, e.g. `bad-name`");
        insta::assert_snapshot!(render_human_one(&d, &db, HumanOptions::default()), @r#"
        error[BB0103]: topic name `Bad_Name` is not kebab-case
          ┌─ svc/a.ts:2:24
          │
        2 │ const t = new Topic<E>("Bad_Name", {});
          │                        ^^^^^^^^^^ not kebab-case
          │
          = help: use lowercase letters, digits and dashes, e.g. `bad-name`
        "#);
    }

    #[test]
    fn a_very_long_line_is_located_not_shown() {
        let mut db = SourceDb::new();
        let text = format!("const x = 1;\nexport const y = [{}];\n", "1,".repeat(2000));
        let file = SourceFile::new("svc/min.ts".into(), text);
        let span = file.span(13, 19);
        db.insert(file);
        let d = crate::Diagnostic::new(&codes::SYNTAX_ERROR, "expected `;`")
            .at_labelled(span, "here")
            .with_help("fix the syntax");
        insta::assert_snapshot!(render_human_one(&d, &db, HumanOptions::default()), @"
        error[BB0002]: expected `;`
         = here: svc/min.ts:2:1 (the line is too long to show)
         = help: fix the syntax
        ");
    }

    #[test]
    fn renders_without_source_text() {
        let d =
            crate::Diagnostic::new(&codes::DIRECTORY_NOT_FOUND, "directory `nope` does not exist")
                .with_help("pass the directory of the app");
        insta::assert_snapshot!(render_human_one(&d, &SourceDb::new(), HumanOptions::default()), @"
        error[BB0013]: directory `nope` does not exist
         = help: pass the directory of the app
        ");
    }
}
