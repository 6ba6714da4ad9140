//! What the fixture and diagram tests share: running busbar in-process, writing a txtar
//! fixture out as an app, snapshots beside the fixture, and the external tools.

#![allow(dead_code, reason = "each test crate uses part of the harness")]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

pub struct Outcome {
    pub code: u8,
    pub stdout: String,
    pub stderr: String,
}

pub fn run(dir: &Path, args: &[String]) -> Outcome {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let mut all = vec!["busbar".to_string()];
    all.extend(args.iter().cloned());
    let code = busbar_cli::run(all, dir, &busbar_cli::Host::default(), &mut out, &mut err);
    Outcome {
        code,
        stdout: String::from_utf8(out).unwrap(),
        stderr: String::from_utf8(err).unwrap(),
    }
}

/// Runs a command with `--threads 1` and `--threads 3`: the outcome, when both are the same and
/// exit with `want`.
pub fn run_on_1_and_3_threads(dir: &Path, args: &[String], want: u8) -> Result<Outcome, String> {
    let with_threads = |n: &str| {
        let mut a = args.to_vec();
        a.extend(["--threads".into(), n.into()]);
        run(dir, &a)
    };
    let one = with_threads("1");
    let three = with_threads("3");
    if (&one.stdout, &one.stderr, one.code) != (&three.stdout, &three.stderr, three.code) {
        return Err("the output differs between 1 and 3 threads".into());
    }
    if one.code != want {
        return Err(format!(
            "exit code {} (expected {want})\n{}{}",
            one.code, one.stdout, one.stderr
        ));
    }
    Ok(one)
}

pub struct Fixture {
    _tmp: tempfile::TempDir,
    pub app: PathBuf,
    pub comment: String,
    pub args: Vec<String>,
    pub expected_json: Option<String>,
    /// `-- @valid.jsonl --` / `-- @invalid.jsonl --`: lines `TOPIC JSON`, messages the topic's
    /// schema must accept / refuse (schema fixtures only).
    pub valid: Option<String>,
    pub invalid: Option<String>,
}

/// For runners whose fixtures carry no hand-written model: an `@expected.json` is a mistake.
pub fn no_model(fixture: &Fixture) -> Result<(), String> {
    if fixture.expected_json.is_some() {
        return Err("this kind of fixture has no model to compare: drop @expected.json".into());
    }
    no_messages(fixture)
}

/// For runners that check no messages: `@valid.jsonl` and `@invalid.jsonl` are a mistake.
pub fn no_messages(fixture: &Fixture) -> Result<(), String> {
    match (&fixture.valid, &fixture.invalid) {
        (None, None) => Ok(()),
        _ => {
            Err("this kind of fixture checks no messages: drop @valid.jsonl/@invalid.jsonl".into())
        }
    }
}

pub fn materialize(path: &Path) -> Fixture {
    let text = std::fs::read_to_string(path).unwrap();
    let archive = simple_txtar::Archive::from(text.as_str());
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    let mut args = Vec::new();
    let mut expected_json = None;
    let mut valid = None;
    let mut invalid = None;
    for file in archive.iter() {
        match file.name.as_str() {
            "@args" => args.extend(file.content.split_whitespace().map(str::to_string)),
            "@expected.json" => expected_json = Some(file.content.clone()),
            "@valid.jsonl" => valid = Some(file.content.clone()),
            "@invalid.jsonl" => invalid = Some(file.content.clone()),
            name if name.starts_with("@before/") => {
                let target = tmp.path().join("before").join(&name["@before/".len()..]);
                std::fs::create_dir_all(target.parent().unwrap()).unwrap();
                std::fs::write(target, &file.content).unwrap();
            }
            name if name.starts_with('@') => panic!("unknown special section {name}"),
            name => {
                let target = app.join(name);
                std::fs::create_dir_all(target.parent().unwrap()).unwrap();
                std::fs::write(target, &file.content).unwrap();
            }
        }
    }
    Fixture {
        _tmp: tmp,
        app,
        comment: archive.comment().trim().to_string(),
        args,
        expected_json,
        valid,
        invalid,
    }
}

/// Snapshots a command's outcome in `NAME.snap` beside the fixture.
pub fn snapshot(
    path: &Path,
    comment: &str,
    args: &[String],
    outcome: &Outcome,
) -> Result<(), String> {
    let name = path.file_stem().unwrap().to_string_lossy().into_owned();
    let snapshot = format!(
        "{comment}\n$ busbar {}\nexit {}\n--- stdout\n{}--- stderr\n{}",
        args.join(" "),
        outcome.code,
        outcome.stdout,
        outcome.stderr
    );
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(path.parent().unwrap());
    settings.set_prepend_module_to_snapshot(false);
    settings.set_input_file(path);
    settings.set_omit_expression(true);
    let result = catch_unwind(AssertUnwindSafe(|| {
        settings.bind(|| insta::assert_snapshot!(name, snapshot));
    }));
    result.map_err(|_| "snapshot differs (see above; `cargo insta review`)".to_string())
}

pub fn run_dir(dir: &Path, check: impl Fn(&Path) -> Result<(), String>) {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txtar"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no fixtures in {}", dir.display());
    let failures: Vec<String> = paths
        .iter()
        .filter_map(|p| check(p).err().map(|e| format!("{}: {e}", p.display())))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} fixtures failed:\n{}",
        failures.len(),
        paths.len(),
        failures.join("\n\n")
    );
}

/// An external validator from `cargo xtask ci` (which installs them into a venv), or `None`
/// when running outside it. Under `BUSBAR_REQUIRE_TOOLS` a missing tool is a failure.
#[allow(clippy::print_stderr, reason = "a skipped check says so")]
pub fn tool(var: &str) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(path) => Some(PathBuf::from(path)),
        None if std::env::var_os("BUSBAR_REQUIRE_TOOLS").is_some() => {
            panic!("{var} is not set, and BUSBAR_REQUIRE_TOOLS says the tools are required")
        }
        None => {
            eprintln!("SKIPPED: {var} is not set; `cargo xtask ci` installs and sets it");
            None
        }
    }
}
