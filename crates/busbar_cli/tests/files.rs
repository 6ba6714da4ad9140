//! The files around an app: busbar opens only regular files (a FIFO named like a config file
//! is a diagnostic, never a block), and writes every output through a temporary file renamed
//! into place (a failure mid-write leaves the old file whole).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

fn busbar() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin("busbar"))
}

fn example() -> PathBuf {
    std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    )
    .join("../../examples/shop")
    .canonicalize()
    .unwrap()
}

/// Runs busbar, killed after 20 s (a run blocked on a FIFO would never end).
fn run_bounded(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = assert_cmd::Command::from_std(busbar());
    cmd.current_dir(dir).args(args).timeout(Duration::from_secs(20));
    let out = cmd.output().unwrap();
    assert!(out.status.code().is_some(), "busbar {args:?} was killed (blocked?): {out:?}");
    out
}

fn mkfifo(path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let made = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(made.success());
}

fn copy_example(to: &Path) {
    let copied = Command::new("cp").arg("-r").arg(example()).arg(to).status().unwrap();
    assert!(copied.success());
}

/// A FIFO as busbar.toml, busbar.lock, .gitignore (at the root and below), tsconfig.json or
/// package.json: each run ends, and says which file it skipped.
#[test]
fn fifos_named_like_config_files_are_diagnostics_not_blocks() {
    // (file made a FIFO, command, exit code, what the output says)
    let cases: [(&str, &[&str], i32, &str); 6] = [
        ("busbar.toml", &["analyze", "."], 2, "not a regular file"),
        ("busbar.lock", &["audit", "."], 2, "not a regular file"),
        (".gitignore", &["analyze", "."], 0, "`.gitignore` was skipped: it is a FIFO"),
        ("users/.gitignore", &["analyze", "."], 0, "the directory `users` was not analyzed"),
        ("tsconfig.json", &["analyze", "."], 0, "`tsconfig.json` was skipped: it is a FIFO"),
        ("users/package.json", &["analyze", "."], 0, "`users/package.json` was skipped"),
    ];
    for (fifo, args, code, says) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let app = tmp.path().join("app");
        copy_example(&app);
        let _ = std::fs::remove_file(app.join(fifo));
        mkfifo(&app.join(fifo));
        let out = run_bounded(&app, args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains(says), "{fifo}: {text}");
        if code == 0 {
            assert!(out.status.code().is_some_and(|c| c <= 1), "{fifo}: {text}");
            assert!(text.contains("BB0015"), "{fifo}: {text}");
        } else {
            assert_eq!(out.status.code(), Some(code), "{fifo}: {text}");
        }
    }
}

/// Killed mid-write (a file-size limit: SIGXFSZ at 4 KiB), `busbar diagram --out` and
/// `busbar build --out` leave the files they were replacing whole, not cut at 4,096 bytes.
#[test]
fn a_failed_write_leaves_the_old_file_whole() {
    let prlimit = which("prlimit").expect("prlimit (util-linux) is on PATH");
    let tmp = tempfile::tempdir().unwrap();
    let svg = tmp.path().join("d.svg");
    let old = "old diagram\n".repeat(1000);
    std::fs::write(&svg, &old).unwrap();
    let out = Command::new(&prlimit)
        .arg("--fsize=4096")
        .arg(assert_cmd::cargo::cargo_bin("busbar"))
        .args(["diagram", ".", "--format", "svg", "--out"])
        .arg(&svg)
        .current_dir(example())
        .output()
        .unwrap();
    assert!(!out.status.success(), "the write was expected to fail at 4 KiB");
    assert_eq!(std::fs::read_to_string(&svg).unwrap(), old, "the old diagram is whole");
    // Without the limit it is replaced, whole.
    let out = Command::new(assert_cmd::cargo::cargo_bin("busbar"))
        .args(["diagram", ".", "--format", "svg", "--out"])
        .arg(&svg)
        .current_dir(example())
        .output()
        .unwrap();
    assert!(out.status.success());
    let new = std::fs::read_to_string(&svg).unwrap();
    assert!(new.len() > 4096 && new.trim_end().ends_with("</svg>"));
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "d.svg" && !n.starts_with(".d.svg."))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let build = tmp.path().join("build");
    let first = Command::new(assert_cmd::cargo::cargo_bin("busbar"))
        .args(["build", ".", "--out"])
        .arg(&build)
        .current_dir(example())
        .output()
        .unwrap();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let plan = build.join("plan.json");
    let whole = std::fs::read(&plan).unwrap();
    assert!(whole.len() > 4096, "{} bytes", whole.len());
    let _ = Command::new(&prlimit)
        .arg("--fsize=4096")
        .arg(assert_cmd::cargo::cargo_bin("busbar"))
        .args(["build", ".", "--out"])
        .arg(&build)
        .current_dir(example())
        .output()
        .unwrap();
    assert_eq!(std::fs::read(&plan).unwrap(), whole, "plan.json is whole");
}

fn which(name: &str) -> Result<PathBuf, ()> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or(())
}
