//! The e2e binary refuses what it cannot run with a usage line (exit 2), and reports an
//! unreachable endpoint as an error (exit 1) instead of hanging. Being an integration test, it
//! also makes the test build produce the binary that `cargo xtask e2e` runs.

use std::process::Command;

fn e2e() -> Command {
    Command::new(env!("CARGO_BIN_EXE_busbar_e2e"))
}

#[test]
fn bad_arguments_are_a_usage_error() {
    let no_app = ["aws", "--endpoint", "http://127.0.0.1:1"];
    for args in [&[][..], &["azure"][..], &["aws"][..], &["gcp", "--bogus"][..], &no_app[..]] {
        let out = e2e().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("usage: busbar-e2e"), "{args:?}");
    }
}

#[test]
fn an_unreachable_emulator_is_an_error() {
    // A port nothing listens on: bind one, then let it go.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let example = std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    )
    .join("../../examples/shop");
    let endpoint = format!("http://127.0.0.1:{port}");
    let out = e2e().args(["gcp", "--endpoint", &endpoint]).arg(example).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
}
