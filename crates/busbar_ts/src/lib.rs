//! The TypeScript frontend of busbar, on swc: [`FRONTEND`] for `busbar_analysis`.
//!
//! Given the app's TypeScript sources and `package.json` files, it parses and extracts them in
//! parallel, resolves imports across files (relative paths, tsconfig `paths`, barrels, workspace
//! packages), links every use to the topic it names, and hands back language-neutral facts
//! (`busbar_analysis::Facts`). swc types never leave this crate.

mod build;
mod diagnostics;
mod extract;
mod facts;
mod link;
mod parse;
mod prefilter;
mod resolve;
mod schema;
mod stack;

use std::path::{Path, PathBuf};

use rustc_hash::FxHashMap as HashMap;

use busbar_analysis::{Facts, File, Frontend, Input, Language, Laps, ServiceClaim};
use busbar_diagnostics::FilePath;
use busbar_model::ServiceOrigin;
use rayon::prelude::*;

use crate::facts::{FileContext, FileFacts};
use crate::resolve::{Resolver, Target, dir_of};

pub use crate::stack::{CHECK_SUBCOMMAND, check_file_main};

/// The file that declares a service in its directory.
pub(crate) const SERVICE_FILE: &str = "encore.service.ts";

/// The TypeScript frontend (Encore's dialect and `@busbar/pubsub`).
pub const FRONTEND: Frontend = Frontend {
    name: "typescript",
    is_source: is_source_name,
    manifest: Some(("package.json", "the workspace package it declares is not known to imports")),
    skip_dir,
    analyze,
};

/// Is this file name a TypeScript source busbar analyzes: `.ts`, `.tsx`, `.mts`, `.cts`,
/// without tests (`*.test.*`, `*.spec.*`) and declaration files (`*.d.ts`)?
pub fn is_source_name(name: &str) -> bool {
    let is_ts = [".ts", ".tsx", ".mts", ".cts"].iter().any(|ext| name.ends_with(ext));
    if !is_ts {
        return false;
    }
    let is_declaration = [".d.ts", ".d.mts", ".d.cts"].iter().any(|ext| name.ends_with(ext))
        || name.contains(".d.") && name.ends_with(".ts");
    let is_test = name.contains(".test.") || name.contains(".spec.");
    !is_declaration && !is_test
}

/// `node_modules`, `encore.gen` (Encore's generated clients) and `__tests__` (as Encore's
/// parser skips them) are never walked.
fn skip_dir(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n == "node_modules" || n == "encore.gen" || n == "__tests__")
}

pub(crate) fn is_service_file(rel: &str) -> bool {
    rel.rsplit('/').next() == Some(SERVICE_FILE)
}

/// The frontend's function: the facts of the app's TypeScript files.
fn analyze(input: &Input<'_>) -> Facts {
    let mut laps = Laps::start();
    let (root, checker) = (input.root, input.checker);
    let discovered = &input.found.files;
    let mut paths: Vec<FilePath> = discovered.iter().map(|f| f.rel.clone()).collect();
    let service_dirs =
        paths.iter().filter(|p| is_service_file(p) && !p.starts_with("../")).map(|p| dir_of(p));
    let mut in_service = busbar_analysis::known_before_parsing(
        &paths,
        service_dirs.collect::<Vec<_>>(),
        input.config,
    );
    let resolver =
        || Resolver::new(root.to_path_buf(), paths.iter().cloned(), &input.found.manifests);
    let mut skipped = if input.parse_all {
        HashMap::default()
    } else {
        let files: Vec<(FilePath, PathBuf)> =
            discovered.iter().map(|f| (f.rel.clone(), f.abs.clone())).collect();
        prefilter::plan(&files, resolver())
    };
    laps.lap("pre-filter");
    let mut files: Vec<FileFacts> = discovered
        .par_iter()
        .zip(in_service.par_iter())
        .map(|(f, &in_service)| {
            if let Some(s) = skipped.get(&f.rel) {
                return parse::skipped_file(f.rel.clone(), &f.abs, s);
            }
            let ctx = FileContext { declares_service: is_service_file(&f.rel), in_service };
            parse::analyze_file(f.rel.clone(), &f.abs, ctx, checker)
        })
        .collect();
    laps.lap("read, parse, extract");
    let mut resolver = resolver();
    let mut targets: Vec<Vec<Target>> = resolve_all(&resolver, &files, &paths);

    let mut index: HashMap<FilePath, usize> =
        paths.iter().enumerate().map(|(i, p)| (p.clone(), i)).collect();
    // Whether the link has been asked (a file it needs read since is counted as linking).
    let mut linking = false;
    let linked = loop {
        // Files outside the root, reached through tsconfig `paths` or `../` imports.
        loop {
            let mut new: Vec<FilePath> = targets
                .iter()
                .flatten()
                .filter_map(|t| match t {
                    Target::File(p) if !index.contains_key(p) => Some(p.clone()),
                    _ => None,
                })
                .collect();
            if new.is_empty() {
                break;
            }
            new.sort();
            new.dedup();
            let start = files.len();
            let abs: Vec<(FilePath, PathBuf)> =
                new.iter().map(|p| (p.clone(), resolver.abs(p))).collect();
            let parsed: Vec<FileFacts> = abs
                .par_iter()
                .map(|(rel, abs)| match skipped.get(rel) {
                    Some(s) => parse::skipped_file(rel.clone(), abs, s),
                    None => parse::analyze_file(rel.clone(), abs, FileContext::default(), checker),
                })
                .collect();
            for p in new {
                index.insert(p.clone(), paths.len());
                resolver.add_known(p.clone());
                paths.push(p);
                in_service.push(false);
            }
            files.extend(parsed);
            targets.extend(resolve_all(&resolver, &files[start..], &paths[start..]));
        }
        if !linking {
            laps.lap("resolve imports");
            linking = true;
        }
        let unread = match build::link(&files, &paths, &targets, &in_service) {
            Ok(linked) => break linked,
            Err(unread) => unread,
        };
        // The link would read files the pre-filter skipped: parse them, and ask again.
        let reparsed: Vec<(usize, FileFacts)> = unread
            .par_iter()
            .map(|&i| {
                let inside = i < discovered.len();
                let abs = if inside { discovered[i].abs.clone() } else { resolver.abs(&paths[i]) };
                let ctx = FileContext {
                    declares_service: inside && is_service_file(&paths[i]),
                    in_service: in_service[i],
                };
                (i, parse::analyze_file(paths[i].clone(), &abs, ctx, checker))
            })
            .collect();
        for (i, facts) in reparsed {
            skipped.remove(&paths[i]);
            targets[i] = facts
                .module_refs
                .iter()
                .map(|m| resolver.resolve(&paths[i], &m.specifier))
                .collect();
            files[i] = facts;
        }
    };
    skipped.clear();
    laps.lap("link");
    let mut facts = Facts {
        topics: linked.topics,
        topic_refs: linked.topic_refs,
        subscriptions: linked.subscriptions,
        accesses: linked.accesses,
        code: linked.code,
        diagnostics: resolver.skipped(),
        ..Facts::default()
    };
    facts.diagnostics.extend(linked.diagnostics);
    for (path, file) in paths.iter().zip(files) {
        if is_service_file(path) && !path.starts_with("../") {
            let decl = file.service.as_ref();
            facts.services.push(ServiceClaim {
                dir: dir_of(path).to_string(),
                name: decl.and_then(|d| d.name.as_ref()).map(|(n, _)| n.clone()),
                origin: ServiceOrigin::EncoreServiceFile,
                span: decl.map(|d| d.span.clone()).unwrap_or_else(|| file.source.span(0, 0)),
            });
        }
        facts.files.push(File {
            implies_service: !file.subscriptions.is_empty() || file.endpoint.is_some(),
            parsed: !file.skipped,
            language: Language::TypeScript,
            bytes: file.bytes,
            diagnostics: file.diagnostics,
            suppressions: file.suppressions,
            source: file.source,
        });
    }
    laps.lap("collect facts");
    facts.phases = laps.phases;
    facts
}

fn resolve_all(resolver: &Resolver, files: &[FileFacts], paths: &[FilePath]) -> Vec<Vec<Target>> {
    files
        .par_iter()
        .zip(paths.par_iter())
        .map(|(facts, path)| {
            facts.module_refs.iter().map(|m| resolver.resolve(path, &m.specifier)).collect()
        })
        .collect()
}

/// For benchmarks: parses a file with exactly the settings `analyze` uses, nothing more.
pub fn parse_only(abs: &Path, rel: &str) -> usize {
    parse::parse_only(abs, rel)
}

#[cfg(test)]
mod tests {
    use super::is_source_name;

    /// A file the pre-filter skips is not read again: its text stays on disk (a large app's
    /// memory is that of the files that can hold a fact).
    #[test]
    fn skipped_files_are_not_read_again() {
        let tmp = tempfile::tempdir().unwrap();
        let put = |rel: &str, text: &str| {
            let path = tmp.path().join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        put("package.json", r#"{ "name": "app", "dependencies": { "encore.dev": "1" } }"#);
        put(
            "orders/encore.service.ts",
            "import { Service } from \"encore.dev/service\";\nexport default new Service(\"orders\");\n",
        );
        put(
            "orders/topics.ts",
            "import { Topic } from \"encore.dev/pubsub\";\nexport const placed = new Topic<{ id: string }>(\"placed\", { deliveryGuarantee: \"at-least-once\" });\n",
        );
        for i in 0..20 {
            put(&format!("orders/util{i}.ts"), &format!("export const n{i} = {i};\n"));
        }
        let analysis = busbar_analysis::analyze(
            tmp.path(),
            &busbar_config::Config::default(),
            &busbar_analysis::Options { threads: 1, checker: None, parse_all: false },
            &[super::FRONTEND],
        );
        let stats = &analysis.stats;
        assert_eq!(stats.files - stats.parsed, 20, "{stats:?}");
        let loaded: Vec<_> =
            analysis.sources.files().filter(|f| f.is_loaded()).map(|f| f.path().clone()).collect();
        assert!(loaded.len() <= stats.parsed, "{loaded:?}");
        assert!(loaded.iter().all(|p| !p.contains("util")), "{loaded:?}");
    }

    #[test]
    fn source_names() {
        for yes in ["a.ts", "a.tsx", "a.mts", "a.cts", "encore.service.ts", "dots.in.name.ts"] {
            assert!(is_source_name(yes), "{yes}");
        }
        for no in [
            "a.js",
            "a.d.ts",
            "a.d.mts",
            "a.d.cts",
            "a.test.ts",
            "a.spec.tsx",
            "a.json",
            "ts",
            "a.ts.bak",
        ] {
            assert!(!is_source_name(no), "{no}");
        }
    }
}
