//! Repository hygiene, checked like any other test: every diagnostic code is documented and
//! exercised by a test, fixtures and snapshots come in pairs, source files stay small, and the
//! documented JSON example is the one a fixture checks.

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
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
