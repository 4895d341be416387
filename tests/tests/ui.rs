//! The diagnostics of `#[cached]` (`ui/compile_fail`, each with its `.stderr`) and every shape
//! of function it accepts (`ui/pass`, compiled and run).

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("ui/compile_fail/*.rs");
    cases.pass("ui/pass/*.rs");
}
