//! Runs the fixtures; `TRYBUILD=overwrite cargo test -p rpc-ui-tests`
//! rewrites the expected output after a reviewed change.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/pass/*.rs");
    cases.compile_fail("tests/fail/*.rs");
}
