//! Fixture apps live in `analyze/{ok,err}/*.txtar`; the runner is `tests/fixtures.rs`.
