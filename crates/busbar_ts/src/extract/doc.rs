//! Doc comments above a declaration, read from the text (busbar parses without keeping
//! comments, which is faster; the few it needs are found here).

/// The `/** ... */` block or the run of `//` lines that ends right before `start` (only
/// whitespace between), without comment markers. `None` when there is none.
pub(super) fn doc_comment(text: &str, start: usize) -> Option<String> {
    let start = start.min(text.len());
    let mut before = text.get(..start)?.trim_end();
    // Suppression comments between the doc comment and the declaration are not documentation.
    while let Some(line_start) = before.rfind('\n').map(|i| i + 1).or(Some(0)) {
        let last = before[line_start..].trim();
        if last.starts_with("//") && last[2..].trim_start().starts_with("busbar-ignore") {
            before = before[..line_start].trim_end();
        } else {
            break;
        }
    }
    if let Some(body) = before.strip_suffix("*/") {
        let open = body.rfind("/*")?;
        let inner = &body[open + 2..];
        let inner = inner.strip_prefix('*').unwrap_or(inner);
        let lines: Vec<&str> = inner
            .lines()
            .map(|l| {
                let l = l.trim();
                l.strip_prefix('*').map(str::trim).unwrap_or(l)
            })
            .collect();
        return tidy(&lines);
    }
    let mut lines = Vec::new();
    for line in before.lines().rev() {
        let trimmed = line.trim();
        match trimmed.strip_prefix("//") {
            Some(rest) if !rest.trim_start().starts_with("busbar-ignore") => {
                lines.push(rest.strip_prefix('/').unwrap_or(rest).trim());
            }
            Some(_) => continue,
            None => break,
        }
    }
    lines.reverse();
    tidy(&lines)
}

fn tidy(lines: &[&str]) -> Option<String> {
    let start = lines.iter().position(|l| !l.is_empty())?;
    let end = lines.iter().rposition(|l| !l.is_empty())?;
    Some(lines[start..=end].join("\n"))
}

#[cfg(test)]
mod tests {
    use super::doc_comment;

    #[test]
    fn block_and_line_comments() {
        let text =
            "import x;\n\n/**\n * Users who signed up.\n * Sent once.\n */\nexport const a = 1;\n";
        let at = text.find("export").unwrap();
        assert_eq!(doc_comment(text, at).as_deref(), Some("Users who signed up.\nSent once."));
        let text = "x;\n// one\n/// two\n// busbar-ignore BB0104: r\nconst a = 1;";
        let at = text.find("const").unwrap();
        assert_eq!(doc_comment(text, at).as_deref(), Some("one\ntwo"));
        let text = "/** Kept. */\n// busbar-ignore BB0402: r\nexport const a = 1;";
        let at = text.find("export").unwrap();
        assert_eq!(doc_comment(text, at).as_deref(), Some("Kept."));
        let text = "x;\nconst a = 1;";
        assert_eq!(doc_comment(text, 3), None);
    }
}
