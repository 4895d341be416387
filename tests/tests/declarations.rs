//! Problems among the caches that `#[cached]` functions declare: an unknown dependency (with a
//! suggestion), two functions declaring one name, a cycle. `check_declarations` returns them;
//! the function itself panics with the same message at its first call.

use std::panic::catch_unwind;

use cacheman::{CacheManager, Error, cached};
use tests::support::install;

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(text) => *text,
        Err(payload) => payload.downcast_ref::<&str>().unwrap_or(&"").to_string(),
    }
}

#[cached(manager = "typo", name = "root")]
fn typo_root(id: u32) -> u32 {
    id
}

#[cached(manager = "typo", depends_on = "rooot")]
fn typo_edge(id: u32) -> u32 {
    typo_root(id) * 5
}

#[test]
fn an_unknown_dependency_suggests_the_closest_declared_name() {
    let (_dir, manager) = install("typo");
    let err = manager.check_declarations().unwrap_err();
    assert!(matches!(&err, Error::UnknownDependency { dependency, .. } if dependency == "rooot"));
    let text = err.to_string();
    assert!(text.contains("did you mean `root`?"), "{text}");
    assert!(text.contains("declarations::typo_edge"), "{text}");

    let message = panic_message(catch_unwind(|| typo_edge(1)).unwrap_err());
    assert!(
        message.contains("#[cached] function `declarations::typo_edge`"),
        "{message}"
    );
    assert!(message.contains("did you mean `root`?"), "{message}");
    let again = panic_message(catch_unwind(|| typo_edge(1)).unwrap_err());
    assert_eq!(
        again, message,
        "every call reports the problem, not a poisoned lock"
    );
    // The function whose own declaration is sound still works.
    assert_eq!(typo_root(2), 2);
}

#[cached(manager = "dupes", name = "same")]
fn first(id: u32) -> u32 {
    id
}

#[cached(manager = "dupes", name = "same")]
fn second(id: u32) -> u32 {
    id + 1
}

struct Circle;
struct Square;

impl Circle {
    #[cached(manager = "same_method_name")]
    fn area(&self, r: u32) -> u32 {
        3 * r * r
    }
}

impl Square {
    #[cached(manager = "same_method_name")]
    fn area(&self, side: u32) -> u32 {
        side * side
    }
}

#[test]
fn methods_of_two_types_are_told_apart_by_their_location() {
    let (_dir, manager) = install("same_method_name");
    let err = manager.check_declarations().unwrap_err();
    let text = err.to_string();
    assert!(text.contains("cache `area`"), "{text}");
    assert!(
        text.contains("declarations::area at tests/tests/declarations.rs:"),
        "{text}"
    );
    let Error::DuplicateDeclaration { functions, .. } = &err else {
        panic!("unexpected: {err:?}");
    };
    assert_ne!(functions[0], functions[1]);
    assert!(catch_unwind(|| Circle.area(1)).is_err());
    assert!(catch_unwind(|| Square.area(1)).is_err());
}

#[test]
fn two_functions_cannot_declare_one_name() {
    let (_dir, manager) = install("dupes");
    let err = manager.check_declarations().unwrap_err();
    let Error::DuplicateDeclaration {
        cache, functions, ..
    } = &err
    else {
        panic!("unexpected: {err:?}");
    };
    assert_eq!(cache, "same");
    assert_eq!(functions.len(), 2);
    assert!(functions[0].starts_with("declarations::first at tests/tests/declarations.rs:"));
    assert!(functions[1].starts_with("declarations::second at tests/tests/declarations.rs:"));
    assert!(catch_unwind(|| first(1)).is_err());
    assert!(catch_unwind(|| second(1)).is_err());
}

#[cached(manager = "cycle", name = "a", depends_on = "b")]
fn cycle_a(id: u32) -> u32 {
    id
}

#[cached(manager = "cycle", name = "b", depends_on = "a")]
fn cycle_b(id: u32) -> u32 {
    id
}

#[test]
fn a_cycle_of_declared_dependencies_is_reported_with_its_path() {
    let (_dir, manager) = install("cycle");
    let err = manager.check_declarations().unwrap_err();
    let Error::DependencyCycle { path, .. } = &err else {
        panic!("unexpected: {err:?}");
    };
    assert_eq!(path.first(), path.last());
    assert_eq!(path.len(), 3);
    let message = panic_message(catch_unwind(|| cycle_a(1)).unwrap_err());
    assert!(message.contains("dependency cycle"), "{message}");
    assert!(catch_unwind(|| cycle_b(1)).is_err());
}

#[cached(manager = "by_hand", depends_on = "registered_by_hand")]
fn derived(id: u32) -> u32 {
    id * 2
}

#[test]
fn a_dependency_registered_by_hand_satisfies_the_check() {
    let (_dir, manager) = install("by_hand");
    assert!(matches!(
        manager.check_declarations(),
        Err(Error::UnknownDependency { .. })
    ));
    let source = manager
        .register_cache::<u32, u32>("registered_by_hand")
        .unwrap();
    manager.check_declarations().unwrap();
    assert_eq!(derived(2), 4);
    source.insert(1, 1);
    manager.invalidate_cache("registered_by_hand").unwrap();
    assert!(
        derived_cache().is_empty(),
        "the declared edge reaches the function's cache"
    );
}

#[test]
fn managers_without_declarations_have_nothing_to_check() {
    let dir = tempfile::tempdir().unwrap();
    let manager = CacheManager::new("undeclared", dir.path());
    manager.check_declarations().unwrap();
    assert!(manager.declared_cache_names().is_empty());
}
