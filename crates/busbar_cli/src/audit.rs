//! `busbar audit`: the grants the code needs, checked against busbar.lock, busbar.toml's
//! `[audit]` policy, and deployed IAM (`--iam`).

use std::io::Write;
use std::path::Path;

use busbar_audit::{Finding, iam, lock, report, rules};
use busbar_diagnostics::{
    Counts, Diagnostic, HumanOptions, Severity, SourceDb, SourceFile, codes, render_human_one,
};
use busbar_plan::Target;

use crate::{AuditArgs, AuditFormat, EXIT_FAILED, EXIT_OK, EXIT_USAGE, Host, pipeline, use_color};

pub(crate) fn run(
    args: &AuditArgs,
    cwd: &Path,
    host: &Host,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let options = HumanOptions { color: use_color(args.app.color, host) };
    let usage = |err: &mut dyn Write, d: Diagnostic| {
        let _ = err.write_all(render_human_one(&d, &SourceDb::new(), options).as_bytes());
        EXIT_USAGE
    };
    let loaded = match pipeline::load_or_report(&args.app, cwd, "audit", host, err) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let model = &loaded.analysis.model;
    let grants = busbar_audit::grants(&loaded.graph);
    let mut sources = loaded.analysis.sources.clone();
    let mut findings: Vec<Finding> = Vec::new();
    // The analysis's errors make every other answer unreliable: with one, only the app's
    // findings are reported.
    let has_errors = loaded
        .triage(loaded.diagnostics.clone(), args.app.strict)
        .shown
        .iter()
        .any(Diagnostic::is_error);

    let lock_path = match &args.lock {
        Some(p) => cwd.join(p),
        None => loaded.dir.join(lock::FILE_NAME),
    };
    let shown_lock = root_relative(&lock_path, &loaded.dir);
    if !has_errors {
        if args.update {
            let text = lock::render(&grants, model);
            if let Err(e) = crate::files::write_atomic(&lock_path, text.as_bytes()) {
                let _ = writeln!(err, "error: cannot write {}: {e}", lock_path.display());
                return EXIT_USAGE;
            }
            let services =
                grants.iter().map(|g| &g.service).collect::<std::collections::BTreeSet<_>>().len();
            let _ =
                writeln!(err, "wrote {shown_lock}: {} grants of {services} services", grants.len());
        }
        match busbar_config::files::read_regular(&lock_path).map_err(busbar_config::files::ReadError::into_io) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => {
                    let file = SourceFile::new(shown_lock.as_str().into(), text);
                    sources.insert(file.clone());
                    match lock::parse(&file) {
                        Ok(locked) => {
                            findings.extend(lock::compare(&grants, &locked));
                            findings.extend(busbar_audit::compat::compare(model, &locked.schemas));
                        }
                        Err(d) => findings.push(Finding { service: None, diagnostic: *d }),
                    }
                }
                Err(_) => findings.push(Finding {
                    service: None,
                    diagnostic: Diagnostic::new(&codes::AUDIT_INVALID_LOCKFILE, format!("{shown_lock} is not UTF-8"))
                        .with_help("restore it from version control, or write it again with `busbar audit --update`"),
                }),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => findings.push(Finding {
                service: None,
                diagnostic: Diagnostic::new(
                    &codes::AUDIT_NO_LOCKFILE,
                    format!("no {shown_lock}: review the grants and run `busbar audit --update`"),
                )
                .with_help(format!(
                    "`busbar audit --update` writes the {} grants the code needs; commit the file, and every later change to a permission shows in review",
                    grants.len()
                )),
            }),
            Err(e) => {
                return usage(
                    err,
                    Diagnostic::new(&codes::AUDIT_INVALID_LOCKFILE, format!("cannot read {}: {e}", lock_path.display()))
                        .with_help("make the lockfile readable"),
                );
            }
        }
        findings.extend(rules::check(&grants, model, &loaded.config.audit));
        if !args.iam.is_empty() {
            let settings = loaded.plan_settings();
            let (aws, _) = busbar_plan::plan(model, &loaded.graph, Target::Aws, &settings);
            let (gcp, _) = busbar_plan::plan(model, &loaded.graph, Target::Gcp, &settings);
            let cx = iam::Context {
                model,
                grants: &grants,
                aws: &aws,
                gcp: &gcp,
                config: &loaded.config.audit,
            };
            for path in &args.iam {
                let shown = root_relative(&cwd.join(path), &loaded.dir);
                let text = match std::fs::read(cwd.join(path)).map(String::from_utf8) {
                    Ok(Ok(text)) => text,
                    Ok(Err(_)) => {
                        return usage(
                            err,
                            Diagnostic::new(
                                &codes::IAM_INVALID_INPUT,
                                format!("{shown} is not UTF-8"),
                            )
                            .with_help("pass a JSON file"),
                        );
                    }
                    Err(e) => {
                        return usage(
                            err,
                            Diagnostic::new(
                                &codes::IAM_INVALID_INPUT,
                                format!("cannot read {shown}: {e}"),
                            )
                            .with_help("pass the path of a JSON file"),
                        );
                    }
                };
                let file = SourceFile::new(shown.as_str().into(), text);
                sources.insert(file.clone());
                findings.extend(iam::check(&file, &cx));
            }
        }
    }

    // busbar.toml severities, suppressions and --strict apply to the audit's codes too. The
    // app's diagnostics go through the same pass (suppressions are matched against all), and
    // only their errors are shown: the audit is not the place for analyzer warnings.
    let is_audit = |d: &Diagnostic| d.code.id.starts_with("BB06");
    let mut all: Vec<Diagnostic> = loaded.diagnostics.clone();
    all.extend(findings.iter().map(|f| f.diagnostic.clone()));
    let triaged = loaded.triage(all, args.app.strict);
    let service_of = |d: &Diagnostic| {
        findings
            .iter()
            .find(|f| {
                f.diagnostic.code == d.code
                    && f.diagnostic.message == d.message
                    && f.diagnostic.span == d.span
            })
            .and_then(|f| f.service.clone())
    };
    let mut findings: Vec<Finding> = triaged
        .shown
        .into_iter()
        .filter(|d| is_audit(d) || d.is_error())
        .map(|d| Finding { service: service_of(&d), diagnostic: d })
        .collect();
    findings.sort_by(|a, b| {
        (&a.service, &a.diagnostic.span, a.diagnostic.code.id, &a.diagnostic.message).cmp(&(
            &b.service,
            &b.diagnostic.span,
            b.diagnostic.code.id,
            &b.diagnostic.message,
        ))
    });
    let diagnostics: Vec<Diagnostic> = findings.iter().map(|f| f.diagnostic.clone()).collect();
    let counts = Counts::of(&diagnostics);
    let root = &loaded.shown_root;
    let text = match args.format {
        AuditFormat::Human => {
            let _ = err.write_all(report::human(&findings, &sources, options).as_bytes());
            let services =
                grants.iter().map(|g| &g.service).collect::<std::collections::BTreeSet<_>>().len();
            format!(
                "audit: {} grants of {services} services; {} error{}, {} warning{}\n",
                grants.len(),
                counts.errors,
                if counts.errors == 1 { "" } else { "s" },
                counts.warnings,
                if counts.warnings == 1 { "" } else { "s" },
            )
        }
        AuditFormat::Json => report::json(&findings, grants.len()),
        AuditFormat::Sarif => report::sarif(&findings, root, env!("CARGO_PKG_VERSION")),
        AuditFormat::Github => report::github(&findings, root),
    };
    let _ = out.write_all(text.as_bytes());
    if diagnostics.iter().any(|d| d.severity == Severity::Error) { EXIT_FAILED } else { EXIT_OK }
}

/// A file's name in diagnostics: relative to the app root, like every source file, when it is
/// inside it (so SARIF and GitHub paths, which start with the app directory, stay right); else
/// its absolute path.
fn root_relative(path: &Path, root: &Path) -> String {
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let (path, root) = (abs(path), abs(root));
    match path.strip_prefix(&root) {
        Ok(rel) => rel.to_string_lossy().replace('\\', "/"),
        Err(_) => path.to_string_lossy().replace('\\', "/"),
    }
}
