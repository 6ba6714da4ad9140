//! Repository hygiene, checked like any other test: every diagnostic code is documented and
//! exercised by a test, fixtures and snapshots come in pairs, source files stay small, and the
//! documented JSON example is the one a fixture checks.

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    )
    .parent()
    .unwrap()
    .to_path_buf()
}

fn files_under(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, ext, out);
        } else if path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
}

#[test]
fn every_code_is_documented() {
    let doc = std::fs::read_to_string(repo().join("docs/diagnostics.md")).unwrap();
    for code in busbar_diagnostics::codes::ALL {
        let heading = format!("### {} {}", code.id, code.name);
        assert!(doc.contains(&heading), "docs/diagnostics.md lacks `{heading}`");
    }
    for line in doc.lines().filter(|l| l.starts_with("### BB")) {
        let id = &line[4..10];
        assert!(
            busbar_diagnostics::codes::by_id(id).is_some(),
            "docs/diagnostics.md documents unknown {id}"
        );
    }
}

#[test]
fn every_code_is_exercised_by_a_test() {
    let mut texts = String::new();
    let mut files = Vec::new();
    files_under(&repo().join("testdata"), "snap", &mut files);
    files_under(&repo().join("crates"), "rs", &mut files);
    for file in files {
        if file.ends_with("busbar_diagnostics/src/codes.rs") {
            continue;
        }
        texts.push_str(&std::fs::read_to_string(&file).unwrap());
    }
    let missing: Vec<&str> = busbar_diagnostics::codes::ALL
        .iter()
        .map(|c| c.id)
        .filter(|id| !texts.contains(id))
        .collect();
    assert!(missing.is_empty(), "codes no fixture or test shows: {missing:?}");
}

#[test]
fn fixtures_and_snapshots_come_in_pairs() {
    let mut fixtures = Vec::new();
    let mut snaps = Vec::new();
    for dir in ["testdata/analyze", "testdata/schema"] {
        files_under(&repo().join(dir), "txtar", &mut fixtures);
        files_under(&repo().join(dir), "snap", &mut snaps);
    }
    for f in &fixtures {
        assert!(f.with_extension("snap").exists(), "{} has no snapshot", f.display());
    }
    for s in &snaps {
        assert!(s.with_extension("txtar").exists(), "{} has no fixture", s.display());
    }
    assert!(fixtures.len() >= 40, "only {} fixtures", fixtures.len());
}

#[test]
fn source_files_stay_small() {
    let mut files = Vec::new();
    files_under(&repo().join("crates"), "rs", &mut files);
    files_under(&repo().join("xtask"), "rs", &mut files);
    files_under(&repo().join("testdata/tests"), "rs", &mut files);
    for file in files {
        let lines = std::fs::read_to_string(&file).unwrap().lines().count();
        assert!(lines <= 1000, "{} has {lines} lines; split it", file.display());
    }
}

/// Tests and tools find the repository through `CARGO_MANIFEST_DIR` at run time (cargo sets
/// it), never with `env!`: cargo's fingerprints hold paths relative to the workspace, so a
/// binary built in another checkout sharing the target directory can be reused, and an `env!`
/// path baked into it points at that checkout (once gone, the tests read nothing there).
#[test]
fn no_compile_time_manifest_dir() {
    let mut files = Vec::new();
    for dir in ["crates", "xtask", "testdata/tests", "examples/shop/fraud"] {
        files_under(&repo().join(dir), "rs", &mut files);
    }
    let needle = concat!("env!(\"CARGO_", "MANIFEST_DIR\")");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(!text.contains(needle), "{} uses {needle}", file.display());
    }
}

#[test]
fn documented_json_example_is_checked_by_a_fixture() {
    let doc = std::fs::read_to_string(repo().join("docs/json-contract.md")).unwrap();
    let example = doc.split("```json\n").nth(1).and_then(|rest| rest.split("```").next()).unwrap();
    let fixture = std::fs::read_to_string(repo().join("testdata/analyze/ok/basic.txtar")).unwrap();
    let expected = fixture.split("-- @expected.json --\n").nth(1).unwrap();
    let parse = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
    assert_eq!(
        parse(example),
        parse(expected),
        "docs/json-contract.md and ok/basic.txtar disagree"
    );
}

/// The workspace crates a manifest section names (`busbar*` keys).
fn workspace_deps(manifest: &toml::Table, section: &str) -> std::collections::BTreeSet<String> {
    manifest
        .get(section)
        .and_then(|d| d.as_table())
        .map(|t| t.keys().filter(|k| k.starts_with("busbar")).cloned().collect())
        .unwrap_or_default()
}

/// Invariant 2 and the crate table of ARCHITECTURE.md: each crate's workspace dependencies are
/// what the table's "depends on" column says (every normal dependency is listed; every listed
/// crate is a dependency of some kind), and parser crates stay in the crates that own them.
#[test]
fn crate_dependencies_match_the_architecture() {
    let doc = std::fs::read_to_string(repo().join("ARCHITECTURE.md")).unwrap();
    let mut documented: std::collections::BTreeMap<String, Option<Vec<String>>> =
        Default::default();
    for line in doc.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split(" | ").collect();
        let (Some(first), Some(deps)) = (cells.first(), cells.last()) else { continue };
        let name = first.trim_start_matches("| `").split('`').next().unwrap_or("").to_string();
        let deps = deps.trim_end_matches(" |").trim();
        let listed = match deps {
            "all" => None,
            d if d.starts_with('—') => Some(Vec::new()),
            d => Some(
                d.split(", ")
                    .filter_map(|piece| piece.split_whitespace().next())
                    .map(|w| format!("busbar_{w}"))
                    .collect(),
            ),
        };
        documented.insert(name, listed);
    }
    let mut manifests: Vec<PathBuf> = std::fs::read_dir(repo().join("crates"))
        .unwrap()
        .flatten()
        .map(|e| e.path().join("Cargo.toml"))
        .filter(|p| p.is_file())
        .collect();
    manifests.push(repo().join("testdata/Cargo.toml"));
    manifests.sort();
    let parsers = [
        ("swc_", &["busbar_ts"][..]),
        ("syn", &["busbar_rs", "busbar_macros"]),
        ("proc-macro2", &["busbar_rs", "busbar_macros"]),
    ];
    let mut problems = Vec::new();
    for path in manifests {
        let manifest: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
        let name = manifest["package"]["name"].as_str().unwrap().to_string();
        let normal = workspace_deps(&manifest, "dependencies");
        let mut any = normal.clone();
        any.extend(workspace_deps(&manifest, "dev-dependencies"));
        any.extend(workspace_deps(&manifest, "build-dependencies"));
        match documented.get(&name) {
            None => problems.push(format!("{name} has no row in ARCHITECTURE.md's crate table")),
            Some(None) => {}
            Some(Some(listed)) => {
                for dep in &normal {
                    if !listed.contains(dep) {
                        problems
                            .push(format!("{name} depends on {dep}, which its row does not list"));
                    }
                }
                for dep in listed {
                    if !any.contains(dep) {
                        problems
                            .push(format!("{name}'s row lists {dep}, which it does not depend on"));
                    }
                }
            }
        }
        let deps = manifest.get("dependencies").and_then(|d| d.as_table());
        for (prefix, owners) in parsers {
            let uses = deps.is_some_and(|d| d.keys().any(|k| k.starts_with(prefix)));
            if uses && !owners.contains(&name.as_str()) {
                problems.push(format!(
                    "{name} depends on a `{prefix}` crate: parser types belong to {owners:?}"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The broker seam (ARCHITECTURE.md, "The runtime"): the sidecar and `busbar dlq` use the
/// `Broker` interface and its `BrokerError`; the embedded implementation is named only where a
/// backend is chosen and opened, and its store's error type nowhere.
#[test]
fn the_sidecar_and_dlq_see_only_the_broker_interface() {
    let mut files = Vec::new();
    files_under(&repo().join("crates/busbar_sidecar/src"), "rs", &mut files);
    files.push(repo().join("crates/busbar_cli/src/dlq.rs"));
    let opens_a_backend = [
        Path::new("crates/busbar_sidecar/src/running.rs"),
        Path::new("crates/busbar_cli/src/dlq.rs"),
    ];
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let relative = file.strip_prefix(repo()).unwrap();
        assert!(!text.contains("StoreError"), "{} names the store's error", relative.display());
        for (n, line) in text.lines().enumerate() {
            if line.contains("EmbeddedBroker") {
                assert!(
                    opens_a_backend.contains(&relative) && line.contains("EmbeddedBroker::open"),
                    "{}:{}: only the place that opens a backend names it: {line}",
                    relative.display(),
                    n + 1
                );
            }
        }
    }
}
