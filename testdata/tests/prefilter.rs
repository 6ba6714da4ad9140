//! The pre-filter changes nothing (ARCHITECTURE.md, "The pre-filter"): `busbar analyze
//! --format json` prints the same bytes and exits the same with and without `--parse-all`, on
//! every fixture, the example app, generated apps and the benchmark's monorepo, and on apps
//! //! whose imports and re-exports are mutated at random, in TypeScript and in Rust
//! (`rust_apps`). The one documented difference: a diagnostic only a parse finds (a syntax
//! error, BB0002; nesting too deep, BB0012) in a file the pre-filter skips is reported only by
//! `--parse-all`; where that happens the outputs must be the same once those diagnostics are
//! taken out, and such a file must hold no other finding.

use std::path::{Path, PathBuf};

use serde_json::Value;

#[path = "support/harness.rs"]
mod harness;

use harness::{materialize, run};

#[path = "prefilter/rust_apps.rs"]
mod rust_apps;

fn analyze(dir: &Path, parse_all: bool) -> (u8, String) {
    let (code, out, _) = analyze_counting(dir, parse_all);
    (code, out)
}

/// Also how many files were skipped (from `--progress`).
fn analyze_counting(dir: &Path, parse_all: bool) -> (u8, String, usize) {
    let (code, out, skipped, _) = analyze_counting_files(dir, parse_all);
    (code, out, skipped)
}

/// Also how many files were skipped and how many were analyzed (from `--progress`).
fn analyze_counting_files(dir: &Path, parse_all: bool) -> (u8, String, usize, usize) {
    let mut args: Vec<String> =
        ["analyze", ".", "--format", "json", "--threads", "2", "--progress"]
            .map(String::from)
            .to_vec();
    if parse_all {
        args.push("--parse-all".into());
    }
    let out = run(dir, &args);
    let line = out.stderr.lines().find(|l| l.starts_with("busbar: analyzed ")).unwrap_or("");
    let number = |after: &str| -> usize {
        line.split(after).nth(1).and_then(|r| r.split(' ').next()?.parse().ok()).unwrap_or(0)
    };
    let (files, parsed) = (number("analyzed "), number("("));
    assert!(parsed <= files, "{}", out.stderr);
    (out.code, out.stdout, files - parsed, files)
}

/// How many files the pre-filter skips in the app at `dir`.
fn skipped(dir: &Path) -> usize {
    analyze_counting(dir, false).2
}

/// The codes of the diagnostics only a parse finds.
const PARSE_ONLY: [&str; 2] = ["BB0002", "BB0012"];

/// The diagnostics of a JSON output, without the parse-only ones in `files`.
fn without_syntax_errors(json: &str, files: &[String]) -> Value {
    let mut v: Value = serde_json::from_str(json).unwrap();
    if let Some(Value::Array(ds)) = v.get_mut("diagnostics") {
        ds.retain(|d| {
            let file = d["span"]["file"].as_str().unwrap_or_default();
            !(PARSE_ONLY.iter().any(|c| d["code"] == *c) && files.iter().any(|f| f == file))
        });
    }
    v
}

/// The same output with and without the pre-filter, but for parse-only diagnostics in skipped
/// files. Returns how many such diagnostics only `--parse-all` reported.
fn same_either_way(dir: &Path) -> Result<usize, String> {
    let (code, filtered) = analyze(dir, false);
    let (all_code, all) = analyze(dir, true);
    if (code, &filtered) == (all_code, &all) {
        return Ok(0);
    }
    // Syntax errors only the full parse saw: in which files?
    let f: Value = serde_json::from_str(&filtered).map_err(|e| e.to_string())?;
    let a: Value = serde_json::from_str(&all).map_err(|e| e.to_string())?;
    let key = |d: &Value| d.to_string();
    let seen: Vec<String> = f["diagnostics"].as_array().into_iter().flatten().map(key).collect();
    let extra: Vec<&Value> = a["diagnostics"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| !seen.contains(&key(d)))
        .collect();
    let files: Vec<String> = extra
        .iter()
        .filter(|d| PARSE_ONLY.iter().any(|c| d["code"] == *c))
        .filter_map(|d| d["span"]["file"].as_str().map(str::to_string))
        .collect();
    let reported_elsewhere = |file: &String| {
        f["diagnostics"].as_array().into_iter().flatten().any(|d| d["span"]["file"] == **file)
    };
    if extra.is_empty()
        || extra.iter().any(|d| !PARSE_ONLY.iter().any(|c| d["code"] == *c))
        || files.iter().any(reported_elsewhere)
        || without_syntax_errors(&all, &files) != f
    {
        return Err(format!(
            "the pre-filter changed the output in {}\n--- pre-filtered (exit {code})\n{filtered}\n--- --parse-all (exit {all_code})\n{all}",
            dir.display()
        ));
    }
    Ok(extra.len())
}

fn fixtures() -> Vec<PathBuf> {
    let root = std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    let mut out = Vec::new();
    for dir in [
        "analyze/ok",
        "analyze/err",
        "plan/ok",
        "plan/err",
        "schema/ok",
        "schema/err",
        "audit/ok",
        "audit/err",
        "diagram",
    ] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else { continue };
        for e in entries.flatten() {
            if e.path().extension().is_some_and(|x| x == "txtar") {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_fixture_is_the_same_with_and_without_the_prefilter() {
    let fixtures = fixtures();
    assert!(fixtures.len() > 90, "{} fixtures", fixtures.len());
    let mut failures = Vec::new();
    for path in &fixtures {
        let fixture = materialize(path);
        if let Err(e) = same_either_way(&fixture.app) {
            failures.push(format!("{}: {e}", path.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_example_and_generated_apps_are_the_same_with_and_without_the_prefilter() {
    let example = std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    )
    .join("../examples/shop");
    assert_eq!(same_either_way(&example), Ok(0));
    for (services, topics, seed) in [(5, 8, 1), (20, 30, 2), (50, 80, 3)] {
        let tmp = tempfile::tempdir().unwrap();
        busbar_testdata::write_generated_app(tmp.path(), services, topics, seed).unwrap();
        assert_eq!(same_either_way(tmp.path()), Ok(0), "{services} services, seed {seed}");
    }
}

/// The analyzer benchmark's monorepo (`cargo xtask bench analyze`), at a smaller shape: barrels,
/// tsconfig `paths`, a workspace package and ordinary code around the services.
#[test]
fn the_benchmark_corpus_is_the_same_with_and_without_the_prefilter() {
    use busbar_testdata::corpus::{Shape, write};
    for seed in [1, 2] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("corpus");
        let shape = Shape { services: 24, seed, ..Shape::default() };
        write(&dir, &shape).unwrap();
        assert_eq!(same_either_way(&dir), Ok(0));
    }
}

/// A syntax error in a file that cannot hold a fact is the documented difference.
#[test]
fn a_syntax_error_in_a_skipped_file_is_reported_only_when_parsing_all() {
    let tmp = tempfile::tempdir().unwrap();
    busbar_testdata::write_orders_billing_app(tmp.path()).unwrap();
    std::fs::write(tmp.path().join("orders/util.ts"), "export const = ;\n").unwrap();
    assert_eq!(same_either_way(tmp.path()), Ok(1));
    assert_eq!(skipped(tmp.path()), 1);
    // On an import chain to a topic, it is parsed and reported either way.
    std::fs::write(
        tmp.path().join("orders/util.ts"),
        "import { placed } from \"./topics\";\nexport const = ;\n",
    )
    .unwrap();
    assert_eq!(same_either_way(tmp.path()), Ok(0));
    let (code, out) = analyze(tmp.path(), false);
    assert_eq!(code, 1);
    assert!(out.contains("BB0002"), "{out}");
}

/// Writes `text` at `rel` under `root`.
fn put(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// The specifier `from` (a file path relative to the root) writes to import `to`, in the
/// generated apps' style (`.js` for a `.ts` file).
fn specifier(from: &str, to: &str) -> String {
    let up = from.matches('/').count();
    let base = if up == 0 { "./".to_string() } else { "../".repeat(up) };
    format!("{base}{}", to.replace(".ts", ".js"))
}

/// Plain modules that import each other and nothing of the framework: what most of a large
/// app is, and what the pre-filter skips until a mutation puts them on a topic's path.
fn write_library(root: &Path, n: usize) {
    for i in 0..n {
        let mut text = String::new();
        if i > 0 {
            text.push_str(&format!("import {{ helper{} }} from \"./h{}.js\";\n", i - 1, i - 1));
        }
        text.push_str(&format!(
            "export interface Shape{i} {{ id: string; n: number }}\nexport function helper{i}(x: number): number {{ return x + {i}; }}\nexport const value{i} = {{ a: 1 }};\n"
        ));
        put(root, &format!("lib/h{i}.ts"), &text);
    }
}

/// The files under `root` whose name ends with `suffix`, as sorted `/`-separated paths.
fn files_ending(root: &Path, suffix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.to_string_lossy().ends_with(suffix) {
                out.push(p.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/"));
            }
        }
    }
    out.sort();
    out
}

fn ts_files(root: &Path) -> Vec<String> {
    files_ending(root, ".ts")
}

/// One random change to the app's imports and re-exports.
fn mutate(root: &Path, rng: &mut fastrand::Rng, k: usize) {
    let files = ts_files(root);
    let f = files[rng.usize(0..files.len())].clone();
    let g = files[rng.usize(0..files.len())].clone();
    let text = std::fs::read_to_string(root.join(&f)).unwrap();
    let to_g = specifier(&f, &g);
    let names = ["topic00", "topic01", "topic02", "helper0", "helper1", "Event", "Shape1", "nope"];
    let name = names[rng.usize(0..names.len())];
    let new = match rng.usize(0..11) {
        // Drop an import or re-export.
        0 => {
            let lines: Vec<&str> = text.lines().collect();
            let imports: Vec<usize> = (0..lines.len())
                .filter(|&i| lines[i].starts_with("import") || lines[i].contains(" from "))
                .collect();
            if imports.is_empty() {
                return;
            }
            let drop = imports[rng.usize(0..imports.len())];
            let kept: Vec<&str> =
                lines.iter().enumerate().filter(|(i, _)| *i != drop).map(|(_, l)| *l).collect();
            kept.join("\n") + "\n"
        }
        // Point an import somewhere else.
        1 => match text.find(" from \"") {
            Some(at) => {
                let end = text[at + 7..].find('"').map_or(text.len(), |e| at + 7 + e);
                format!("{} from \"{to_g}{}", &text[..at], &text[end..])
            }
            None => return,
        },
        // A namespace import used as a value (an escape, if it holds a topic).
        2 => format!("import * as ns{k} from \"{to_g}\";\nexport const esc{k} = ns{k};\n{text}"),
        3 => format!("export * from \"{to_g}\";\n{text}"),
        4 => format!("export {{ {name} as re{k} }} from \"{to_g}\";\n{text}"),
        // A named import used in code, maybe a name the module does not export.
        5 => format!(
            "import {{ {name} as imp{k} }} from \"{to_g}\";\nexport function use{k}() {{ return imp{k}; }}\n{text}"
        ),
        // A publish through a name that may not be a topic, or not exist.
        6 => format!(
            "import {{ {name} as p{k} }} from \"{to_g}\";\nexport async function pub{k}() {{ await p{k}.publish({{ id: \"1\", key: \"k\", region: \"eu\" }}); }}\n{text}"
        ),
        // A new barrel in the library that re-exports a file, imported from another.
        7 => {
            let barrel = format!("lib/barrel{k}.ts");
            put(root, &barrel, &format!("export * from \"{}\";\n", specifier(&barrel, &g)));
            format!(
                "import {{ {name} as b{k} }} from \"{}\";\nexport const viaBarrel{k} = () => b{k};\n{text}",
                specifier(&f, &barrel)
            )
        }
        // An import that resolves nowhere, published through.
        8 => format!(
            "import {{ gone{k} }} from \"./missing{k}.js\";\nexport async function gone() {{ await gone{k}.publish({{}}); }}\n{text}"
        ),
        // A topics file that also re-exports a library module, and a file that imports a name
        // through it: found in the library (skipped at first), or missing.
        10 => {
            let topics = files.iter().find(|p| p.ends_with("topics.ts")).cloned();
            let Some(topics) = topics else { return };
            let lib = format!("lib/h{}.ts", rng.usize(0..6));
            let barrel = std::fs::read_to_string(root.join(&topics)).unwrap();
            let star = format!("export * from \"{}\";\n{barrel}", specifier(&topics, &lib));
            std::fs::write(root.join(&topics), star).unwrap();
            format!(
                "import {{ {name} as star{k} }} from \"{}\";\nexport const viaStar{k} = () => star{k};\n{text}",
                specifier(&f, &topics)
            )
        }
        // A topic whose message type comes from the library.
        _ => {
            let types = format!("lib/h{}.ts", rng.usize(0..4));
            format!(
                "import {{ Topic as T{k} }} from \"encore.dev/pubsub\";\nimport type {{ Shape1 as S{k} }} from \"{}\";\nexport const extra{k} = new T{k}<S{k}>(\"extra-{k}\", {{ deliveryGuarantee: \"at-least-once\" }});\n{text}",
                specifier(&f, &types)
            )
        }
    };
    std::fs::write(root.join(&f), new).unwrap();
}

/// The property test: random imports and re-exports never make the outputs differ.
#[test]
fn mutated_imports_and_reexports_never_change_the_output() {
    let mut rng = fastrand::Rng::with_seed(17);
    let (mut differed, mut skipping, mut skipped_files) = (0, 0, 0);
    for case in 0..48 {
        let tmp = tempfile::tempdir().unwrap();
        busbar_testdata::write_generated_app(tmp.path(), 4 + case % 5, 6 + case % 7, case as u64)
            .unwrap();
        write_library(tmp.path(), 6);
        for k in 0..1 + rng.usize(0..8) {
            mutate(tmp.path(), &mut rng, k);
        }
        let n = skipped(tmp.path());
        skipping += usize::from(n > 0);
        skipped_files += n;
        match same_either_way(tmp.path()) {
            Ok(0) => {}
            Ok(_) => differed += 1,
            Err(e) => {
                let files: String = ts_files(tmp.path())
                    .iter()
                    .map(|f| {
                        format!(
                            "-- {f} --\n{}",
                            std::fs::read_to_string(tmp.path().join(f)).unwrap()
                        )
                    })
                    .collect();
                panic!("case {case}: {e}\n\nthe app:\n{files}");
            }
        }
    }
    // No mutation writes a syntax error.
    assert_eq!(differed, 0);
    // The cases are not vacuous: most skip some files, and the mutations put others on a
    // topic's path (the library has 6 files, skipped unless something reaches into it).
    assert!(
        skipping >= 24 && skipped_files < 48 * 6,
        "{skipping} cases skipped {skipped_files} files"
    );
}

/// A random graph of modules re-exporting each other (cycles included) and the module that
/// declares the topic, with services that each import the topic through one of them.
struct Reexports {
    /// Module i's re-exports, in the order written: `n` (the module count) is the topic's.
    targets: Vec<Vec<usize>>,
    /// Module i is written under the name `names[i]`: the names shuffle the reading order.
    names: Vec<usize>,
    /// (service directory, the module it imports the topic from).
    services: Vec<(String, usize)>,
    /// Where the subscribing service imports the topic from: a module that reaches it (its
    /// lookup, first, runs into the cycles), else the declaring module itself.
    subscribe_from: Option<usize>,
}

impl Reexports {
    fn random(rng: &mut fastrand::Rng) -> Self {
        let n = 2 + rng.usize(0..5);
        let mut names: Vec<usize> = (0..n).collect();
        rng.shuffle(&mut names);
        let targets = (0..n)
            .map(|i| {
                let chance = |t: usize| if t == n { 3 } else { 4 };
                let mut t: Vec<usize> =
                    (0..=n).filter(|&t| t != i && rng.usize(0..10) < chance(t)).collect();
                rng.shuffle(&mut t);
                t
            })
            .collect();
        let services = (0..1 + rng.usize(0..4))
            .map(|s| (format!("s{}", rng.usize(0..100) * 10 + s), rng.usize(0..n)))
            .collect();
        let mut graph = Reexports { targets, names, services, subscribe_from: None };
        let reaching: Vec<usize> = (0..n).filter(|&m| graph.reaches(m)).collect();
        graph.subscribe_from =
            (!reaching.is_empty()).then(|| reaching[rng.usize(0..reaching.len())]);
        graph
    }

    /// Whether module `start` reaches the topic's module through re-exports.
    fn reaches(&self, start: usize) -> bool {
        let n = self.names.len();
        let (mut seen, mut stack) = (vec![false; n], vec![start]);
        while let Some(m) = stack.pop() {
            if std::mem::replace(&mut seen[m], true) {
                continue;
            }
            if self.targets[m].contains(&n) {
                return true;
            }
            stack.extend(self.targets[m].iter().filter(|&&t| t != n));
        }
        false
    }

    /// A module's re-export lines, `line` given each target's module name (`topics`, `b{name}`).
    fn reexports(&self, targets: &[usize], line: impl Fn(&str) -> String) -> String {
        let n = self.names.len();
        targets
            .iter()
            .map(|&t| if t == n { line("topics") } else { line(&format!("b{}", self.names[t])) })
            .collect()
    }

    /// The module name the subscription imports the topic from.
    fn subscribed_module(&self) -> String {
        self.subscribe_from.map_or("topics".to_string(), |m| format!("b{}", self.names[m]))
    }

    fn has_cycle(&self) -> bool {
        let t = &self.targets;
        (0..t.len()).any(|i| t[i].iter().any(|&j| t.get(j).is_some_and(|back| back.contains(&i))))
    }

    /// The services that publish the topic, as the language resolves the re-exports.
    fn publishers(&self) -> std::collections::BTreeSet<String> {
        self.services.iter().filter(|(_, m)| self.reaches(*m)).map(|(s, _)| s.clone()).collect()
    }

    /// The app in TypeScript: `events/b{name}.ts` barrels of `export * from`.
    fn write_typescript(&self, put: &dyn Fn(&str, &str)) {
        put(
            "events/topics.ts",
            "import { Topic } from \"encore.dev/pubsub\";\nexport const placed = new Topic<{ id: string }>(\"placed\", { deliveryGuarantee: \"at-least-once\" });\n",
        );
        for (i, targets) in self.targets.iter().enumerate() {
            let mut text = self.reexports(targets, |m| format!("export * from \"./{m}\";\n"));
            text.push_str(&format!("export const tag{i} = {i};\n"));
            put(&format!("events/b{}.ts", self.names[i]), &text);
        }
        let service = |s: &str| {
            format!(
                "import {{ Service }} from \"encore.dev/service\";\nexport default new Service(\"{s}\");\n"
            )
        };
        for (dir, m) in &self.services {
            put(&format!("{dir}/encore.service.ts"), &service(dir));
            put(
                &format!("{dir}/publish.ts"),
                &format!(
                    "import {{ placed }} from \"../events/b{}\";\nexport const go = () => placed.publish({{ id: \"1\" }});\n",
                    self.names[*m]
                ),
            );
        }
        put("sub/encore.service.ts", &service("sub"));
        put(
            "sub/charge.ts",
            &format!(
                "import {{ Subscription }} from \"encore.dev/pubsub\";\nimport {{ placed }} from \"../events/{}\";\nnew Subscription(placed, \"charge\", {{ handler: async () => {{}} }});\n",
                self.subscribed_module()
            ),
        );
    }

    /// The app in Rust: modules `events::b{name}` of `pub use crate::...::*;`, a crate per
    /// service.
    fn write_rust(&self, put: &dyn Fn(&str, &str)) {
        let mut members: Vec<String> = vec!["\"events\"".into(), "\"sub\"".into()];
        members.extend(self.services.iter().map(|(dir, _)| format!("\"{dir}\"")));
        put("Cargo.toml", &format!("[workspace]\nmembers = [{}]\n", members.join(", ")));
        let package = |name: &str, events: bool| {
            let dep = if events { "events = { path = \"../events\" }\n" } else { "" };
            format!(
                "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[dependencies]\nbusbar = {{ path = \"../sdk\" }}\nserde = {{ version = \"1\", features = [\"derive\"] }}\n{dep}"
            )
        };
        put("events/Cargo.toml", &package("events", false));
        let mut lib = "pub mod topics;\n".to_string();
        for (i, targets) in self.targets.iter().enumerate() {
            lib.push_str(&format!("pub mod b{};\n", self.names[i]));
            let mut text = self.reexports(targets, |m| format!("pub use crate::{m}::*;\n"));
            text.push_str(&format!("pub const TAG{i}: u32 = {i};\n"));
            put(&format!("events/src/b{}.rs", self.names[i]), &text);
        }
        put("events/src/lib.rs", &lib);
        put(
            "events/src/topics.rs",
            "use busbar::Topic;\n\n#[derive(serde::Serialize, serde::Deserialize, busbar::Message)]\npub struct Placed {\n    pub id: String,\n}\n\npub static PLACED: Topic<Placed> = Topic::new(\"placed\");\n",
        );
        for (dir, m) in &self.services {
            put(&format!("{dir}/Cargo.toml"), &package(dir, true));
            put(
                &format!("{dir}/src/main.rs"),
                &format!(
                    "use events::b{}::PLACED;\n\nasync fn go() {{ let _ = PLACED.publish(&todo!()).await; }}\n\nfn main() {{ busbar::run() }}\n",
                    self.names[*m]
                ),
            );
        }
        put("sub/Cargo.toml", &package("sub", true));
        put(
            "sub/src/main.rs",
            &format!(
                "use events::{}::PLACED;\nuse events::topics::Placed;\n\n#[busbar::subscribe(topic = PLACED, name = \"charge\")]\nasync fn charge(p: Placed) -> busbar::Result<()> {{ Ok(()) }}\n\nfn main() {{ busbar::run() }}\n",
                self.subscribed_module()
            ),
        );
    }
}

/// Modules that re-export each other at random (`export *` between TypeScript barrels, glob
/// `use`s between Rust modules; cycles included), under names that shuffle the order the link
/// reads them in: a service publishes exactly when the module it imports the topic from reaches
/// the declaring one through re-exports (as the language resolves it), with and without the
/// pre-filter.
#[test]
fn reexport_cycles_link_as_the_language_resolves_them() {
    let mut rng = fastrand::Rng::with_seed(2026);
    let (mut cyclic, mut unreachable) = (0, 0);
    for case in 0..60 {
        let graph = Reexports::random(&mut rng);
        cyclic += usize::from(graph.has_cycle());
        unreachable += graph.services.len() - graph.publishers().len();
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let put = |rel: &str, text: &str| {
            let path = root.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        let rust = case % 2 == 1;
        if rust {
            graph.write_rust(&put);
        } else {
            graph.write_typescript(&put);
        }
        let (_, filtered) = analyze(root, false);
        let (_, all) = analyze(root, true);
        assert_eq!(filtered, all, "case {case}: the pre-filter changed the output");
        let json: Value = serde_json::from_str(&filtered).unwrap();
        let publishers: std::collections::BTreeSet<String> = json["topics"][0]["publishers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["service"].as_str().unwrap().to_string())
            .collect();
        if publishers != graph.publishers() {
            let mut files = Vec::new();
            for entry in walk(root) {
                let rel = entry.strip_prefix(root).unwrap().display().to_string();
                files.push(format!("-- {rel} --\n{}", std::fs::read_to_string(&entry).unwrap()));
            }
            files.sort();
            panic!(
                "case {case} ({}): publishers {publishers:?}, expected {:?}\n{}\n{}",
                if rust { "Rust" } else { "TypeScript" },
                graph.publishers(),
                files.join(""),
                json["diagnostics"]
            );
        }
    }
    // Not vacuous: cycles and modules that reach no topic both come up.
    assert!(
        cyclic >= 15 && unreachable >= 8,
        "{cyclic} cases with a cycle, {unreachable} unreachable publishes"
    );
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
