//! Source files and spans.
//!
//! A [`Span`] is resolved at creation time: it carries the byte range (for renderers) and the
//! 1-based line and character column of both ends (for the JSON contract), so downstream stages
//! never need the source text to say where something is.

use std::fmt;
use std::sync::{Arc, OnceLock};

use serde::Serialize;

/// A path relative to the app root, with `/` separators (`../` when it leads outside the root).
pub type FilePath = Arc<str>;

/// A region of a source file. `end_line`/`end_column` point just past the last character, as in
/// LSP and SARIF. Columns count Unicode characters, starting at 1.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Span {
    pub file: FilePath,
    pub line: u32,
    pub column: u32,
    pub end_line: u32,
    pub end_column: u32,
    /// Byte offset of the start in the file.
    #[serde(skip)]
    pub start: u32,
    /// Byte offset just past the end in the file.
    #[serde(skip)]
    pub end: u32,
}

impl Span {
    /// `file:line:column`, the form editors and terminals turn into links.
    pub fn location(&self) -> String {
        format!("{}:{}:{}", self.file, self.line, self.column)
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// A source file's text with a line index, used to turn byte offsets into spans and to render
/// snippets. Cloning is cheap (shared); the text is never copied.
///
/// A file can also be *on disk*: its text is read the first time something needs it. Analysis
/// uses this for files it is unlikely to point into, so it does not keep every file of a large
/// app in memory. (If the file changes in between, positions follow the new text.)
#[derive(Clone, Debug)]
pub struct SourceFile {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: FilePath,
    text: OnceLock<String>,
    /// Where to read the text from when it is not in memory.
    on_disk: Option<std::path::PathBuf>,
    /// Computed on first use: most files never need a position.
    line_starts: OnceLock<Vec<u32>>,
}

impl SourceFile {
    pub fn new(path: FilePath, text: impl Into<String>) -> Self {
        let text = OnceLock::from(text.into());
        SourceFile {
            inner: Arc::new(Inner { path, text, on_disk: None, line_starts: OnceLock::new() }),
        }
    }

    /// A file whose text is read from `abs` when first needed.
    pub fn on_disk(path: FilePath, abs: std::path::PathBuf) -> Self {
        SourceFile {
            inner: Arc::new(Inner {
                path,
                text: OnceLock::new(),
                on_disk: Some(abs),
                line_starts: OnceLock::new(),
            }),
        }
    }

    pub fn path(&self) -> &FilePath {
        &self.inner.path
    }

    /// Whether the text is in memory: always for [`SourceFile::new`], for a file
    /// [`SourceFile::on_disk`] once something has needed it.
    pub fn is_loaded(&self) -> bool {
        self.inner.text.get().is_some()
    }

    pub fn text(&self) -> &str {
        self.inner.text.get_or_init(|| match &self.inner.on_disk {
            Some(abs) => std::fs::read(abs)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default(),
            None => String::new(),
        })
    }

    /// Length in bytes of a leading byte-order mark, which editors do not show as a column.
    fn bom(&self) -> u32 {
        if self.text().starts_with('\u{feff}') { 3 } else { 0 }
    }

    pub fn line_starts(&self) -> &[u32] {
        let text = self.text();
        self.inner.line_starts.get_or_init(|| {
            let mut starts = Vec::with_capacity(text.len() / 32 + 1);
            starts.push(0);
            starts.extend(
                text.bytes().enumerate().filter(|&(_, b)| b == b'\n').map(|(i, _)| (i + 1) as u32),
            );
            starts
        })
    }

    /// Line (1-based) and character column (1-based) of a byte offset. Offsets inside a
    /// multi-byte character or past the end are clamped.
    pub fn line_column(&self, offset: u32) -> (u32, u32) {
        let text = self.text();
        let offset = offset.min(text.len() as u32);
        let line_starts = self.line_starts();
        let line_index = match line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let line_start = line_starts[line_index] as usize;
        let mut prefix_start = line_start;
        if line_index == 0 {
            prefix_start += self.bom() as usize;
        }
        let mut end = offset as usize;
        while end > prefix_start && !text.is_char_boundary(end) {
            end -= 1;
        }
        let column = if end <= prefix_start { 0 } else { text[prefix_start..end].chars().count() };
        (line_index as u32 + 1, column as u32 + 1)
    }

    /// The span of the byte range `start..end`.
    pub fn span(&self, start: u32, end: u32) -> Span {
        let end = end.max(start);
        let (line, column) = self.line_column(start);
        let (end_line, end_column) = self.line_column(end);
        Span { file: self.inner.path.clone(), line, column, end_line, end_column, start, end }
    }

    /// The span of a whole 1-based line, without its line terminator.
    pub fn line_span(&self, line: u32) -> Span {
        let index = (line.max(1) - 1) as usize;
        let line_starts = self.line_starts();
        let len = self.text().len() as u32;
        let start = line_starts.get(index).copied().unwrap_or(len);
        let mut end = line_starts.get(index + 1).map(|&s| s - 1).unwrap_or(len);
        if end > start && self.text().as_bytes()[end as usize - 1] == b'\r' {
            end -= 1;
        }
        self.span(start, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> SourceFile {
        SourceFile::new("a.ts".into(), text)
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let f = file("const é = 1;\nlet ünïcode = \"x\";\n");
        let span = f.span(14, 17);
        assert_eq!((span.line, span.column, span.end_line, span.end_column), (2, 1, 2, 4));
        // "é" is two bytes: the `=` after it is at byte 9 but column 9 (character 9).
        assert_eq!(f.line_column(9), (1, 9));
    }

    #[test]
    fn byte_order_mark_is_not_a_column() {
        let f = file("\u{feff}abc\n");
        assert_eq!(f.line_column(3), (1, 1));
        assert_eq!(f.line_column(4), (1, 2));
    }

    #[test]
    fn line_span_drops_carriage_return() {
        let f = file("one\r\ntwo\r\n");
        let span = f.line_span(2);
        assert_eq!((span.start, span.end, span.column, span.end_column), (5, 8, 1, 4));
    }

    #[test]
    fn text_on_disk_is_read_when_first_needed() {
        let path = std::env::temp_dir().join(format!("busbar-span-{}.ts", std::process::id()));
        std::fs::write(&path, "let a;\nlet é = 1;\n").unwrap();
        let f = SourceFile::on_disk("x.ts".into(), path.clone());
        let span = f.span(13, 14);
        std::fs::remove_file(&path).unwrap();
        assert_eq!((span.line, span.column, span.end_column), (2, 6, 7));
        assert_eq!(f.text(), "let a;\nlet é = 1;\n", "read once, then kept");
        let gone = SourceFile::on_disk("gone.ts".into(), path);
        assert_eq!(
            (gone.text(), gone.span(5, 9).line),
            ("", 1),
            "a vanished file is empty, not a panic"
        );
    }

    #[test]
    fn offsets_past_the_end_are_clamped() {
        let f = file("ab");
        assert_eq!(f.line_column(99), (1, 3));
    }
}
