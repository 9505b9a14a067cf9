//! Compile-time behaviour of `#[kinesis_processor]`: every signature and option mistake is
//! an error with a clear message on the right span (`ui/fail/*.stderr`, each reviewed),
//! and every accepted form compiles, under `#![deny(warnings)]` and
//! `#![no_implicit_prelude]` too.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("ui/pass/*.rs");
    cases.compile_fail("ui/fail/*.rs");
}
