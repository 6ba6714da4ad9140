//! Misuse the compiler can catch fails to compile, with the message in `ui/*.stderr`.
//! (`TRYBUILD=overwrite` rewrites the .stderr files after a deliberate change of wording.)

#[test]
fn misuse_fails_to_compile_with_a_clear_message() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
