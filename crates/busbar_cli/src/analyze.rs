//! `busbar analyze`.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use busbar_diagnostics::{
    Counts, Diagnostic, HumanOptions, SourceDb, SuppressedBy, render_human, render_human_one,
};
use busbar_model::{AppModel, JsonOptions, to_json, write_json};

use crate::{
    AnalyzeArgs, EXIT_FAILED, EXIT_OK, EXIT_USAGE, Format, Host, display_dir, pipeline, summary,
    use_color,
};

pub(crate) fn run(
    args: &AnalyzeArgs,
    cwd: &Path,
    host: &Host,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let started = Instant::now();
    let color = use_color(args.app.color, host);
    if args.progress {
        let _ = writeln!(err, "busbar: analyzing {}", display_dir(&args.app.dir));
    }
    let mut loaded = match pipeline::load(
        &args.app.dir,
        cwd,
        "analyze",
        args.app.threads,
        args.app.parse_all,
        host,
    ) {
        Ok(loaded) => loaded,
        Err(d) => {
            return environment_error(
                args.format,
                &display_dir(&args.app.dir),
                &d,
                color,
                out,
                err,
            );
        }
    };
    let diagnostics = std::mem::take(&mut loaded.diagnostics);
    let triaged = loaded.triage(diagnostics, args.app.strict);
    let (analysis, graph, shown_root) = (&loaded.analysis, &loaded.graph, &loaded.shown_root);
    if args.progress {
        for (phase, took) in &analysis.stats.phases {
            let _ = writeln!(err, "busbar:   {phase}: {:.1} ms", took.as_secs_f64() * 1e3);
        }
        let _ = writeln!(
            err,
            "busbar: analyzed {} files ({} parsed, {} KiB) in {} ms",
            analysis.stats.files,
            analysis.stats.parsed,
            analysis.stats.bytes / 1024,
            started.elapsed().as_millis()
        );
    }
    let counts = Counts::of(&triaged.shown);
    match args.format {
        Format::Json => {
            let suppressed = args.show_suppressed.then_some(triaged.suppressed.as_slice());
            let options = JsonOptions { suppressed };
            let _ = write_json(&analysis.model, shown_root, &triaged.shown, options, out);
        }
        Format::Human => {
            let _ = out.write_all(summary::render(&analysis.model, graph).as_bytes());
            let options = HumanOptions { color };
            let _ =
                err.write_all(render_human(&triaged.shown, &analysis.sources, options).as_bytes());
            if args.show_suppressed {
                let _ = err.write_all(
                    render_suppressed(&triaged.suppressed, &analysis.sources, options).as_bytes(),
                );
            }
            let line = counts_line(counts, triaged.suppressed.len(), args.show_suppressed);
            if !line.is_empty() {
                let _ = writeln!(err, "{line}");
            }
        }
    }
    let _ = out.flush();
    if counts.errors > 0 { EXIT_FAILED } else { EXIT_OK }
}

fn environment_error(
    format: Format,
    root: &str,
    d: &Diagnostic,
    color: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    match format {
        Format::Json => {
            let json = to_json(
                &AppModel::default(),
                root,
                std::slice::from_ref(d),
                JsonOptions::default(),
            );
            let _ = out.write_all(json.as_bytes());
        }
        Format::Human => {
            let _ = err.write_all(
                render_human_one(d, &SourceDb::new(), HumanOptions { color }).as_bytes(),
            );
        }
    }
    EXIT_USAGE
}

fn render_suppressed(
    list: &[busbar_diagnostics::Suppressed],
    sources: &SourceDb,
    options: HumanOptions,
) -> String {
    let mut out = String::new();
    for s in list {
        let why = match &s.by {
            SuppressedBy::Comment { span, reason } => {
                format!("suppressed by the comment at {}: {reason}", span.location())
            }
            SuppressedBy::Config { span } => {
                format!("suppressed by busbar.toml at {}", span.location())
            }
        };
        let d = s.diagnostic.clone();
        let help = d.help.clone();
        let d = Diagnostic {
            help: Some(match help {
                Some(h) => format!("{h}\n{why}"),
                None => why,
            }),
            ..d
        };
        out.push_str(&render_human_one(&d, sources, options));
    }
    out
}

fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

fn counts_line(counts: Counts, suppressed: usize, shown_suppressed: bool) -> String {
    let mut parts = Vec::new();
    if counts.errors > 0 {
        parts.push(plural(counts.errors, "error"));
    }
    if counts.warnings > 0 {
        parts.push(plural(counts.warnings, "warning"));
    }
    if counts.notes > 0 {
        parts.push(plural(counts.notes, "note"));
    }
    if suppressed > 0 {
        parts.push(if shown_suppressed {
            format!("{suppressed} suppressed")
        } else {
            format!("{suppressed} suppressed (--show-suppressed lists them)")
        });
    }
    parts.join(", ")
}
