//! The diagnostics of `#[cached]` (`ui/compile_fail`, each with its `.stderr`) and every shape
//! of function it accepts (`ui/pass`, compiled and run).

#[test]
fn ui() {
    // The pass cases run as programs and use the default manager: give them a cache directory
    // of their own, never the user's.
    let dir = tempfile::tempdir().unwrap();
    // SAFETY: this test binary has one test, so no other thread reads the environment now.
    unsafe { std::env::set_var("CACHEMAN_DIR", dir.path()) };
    let cases = trybuild::TestCases::new();
    cases.compile_fail("ui/compile_fail/*.rs");
    cases.pass("ui/pass/*.rs");
}
