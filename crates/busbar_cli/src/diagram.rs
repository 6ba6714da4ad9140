//! `busbar diagram`: the app as a Mermaid, DOT, SVG or HTML diagram.

use std::io::Write;
use std::path::Path;

use busbar_diagram::{Diagram, Focus, Format, Options};

use crate::{DiagramArgs, DiagramFormat, EXIT_FAILED, EXIT_USAGE, Host, pipeline};

pub(crate) fn run(
    args: &DiagramArgs,
    cwd: &Path,
    host: &Host,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let focus = match args.focus.as_deref().map(Focus::parse).transpose() {
        Ok(focus) => focus,
        Err(e) => {
            let _ = writeln!(err, "error: --focus: {e}");
            return EXIT_USAGE;
        }
    };
    let loaded = match pipeline::load_checked(&args.app, cwd, "diagram", host, err) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let options = Options { focus, dlq: args.dlq };
    let model = &loaded.analysis.model;
    let diagram = match Diagram::build(model, &loaded.graph, &options) {
        Ok(diagram) => diagram,
        Err(e) => {
            let _ = writeln!(err, "error: --focus: {e}");
            return EXIT_USAGE;
        }
    };
    let format = match args.format {
        DiagramFormat::Mermaid => Format::Mermaid,
        DiagramFormat::Dot => Format::Dot,
        DiagramFormat::Svg => Format::Svg,
        DiagramFormat::Html => Format::Html,
    };
    let text =
        match busbar_diagram::render(format, &loaded.app_name(), &diagram, model, &loaded.graph) {
            Ok(text) => text,
            Err(e) => {
                let _ = writeln!(err, "error: internal: {e}");
                return EXIT_FAILED;
            }
        };
    crate::files::emit(args.out.as_deref(), cwd, &text, out, err)
}
