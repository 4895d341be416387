//! How a lookup finds an entry without an owned key: anything that hashes as the key does and
//! can tell whether it equals a stored key.

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};

/// A borrowed form of a key `K`. Its `Hash` must write exactly what `K`'s does for an equal
/// key, or lookups miss.
pub(crate) trait Query<K: ?Sized>: Hash {
    fn matches(&self, key: &K) -> bool;
}

/// `Borrow` promises that `Q` hashes and compares as `K` does (`str` for `String`).
impl<Q, K> Query<K> for Q
where
    Q: Hash + Eq + ?Sized,
    K: Borrow<Q>,
{
    #[inline]
    fn matches(&self, key: &K) -> bool {
        *self == *key.borrow()
    }
}

/// A query made by `#[cached]` from the arguments of a call: `view` is a tuple of references
/// to them, which hashes as the owned key tuple does (a reference hashes as what it points
/// to, and each owned part borrows as its argument), and `eq` compares the parts.
pub(crate) struct Probe<'a, Q: ?Sized, F> {
    pub(crate) view: &'a Q,
    pub(crate) eq: F,
}

impl<Q: Hash + ?Sized, F> Hash for Probe<'_, Q, F> {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.view.hash(state);
    }
}

impl<K, Q, F> Query<K> for Probe<'_, Q, F>
where
    Q: Hash + ?Sized,
    F: Fn(&K) -> bool,
{
    #[inline]
    fn matches(&self, key: &K) -> bool {
        (self.eq)(key)
    }
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use super::*;

    #[test]
    fn a_tuple_of_borrowed_parts_hashes_as_the_owned_tuple() {
        let hasher = foldhash::fast::RandomState::default();
        let owned = (String::from("abc"), 7_u64, vec![1_u8, 2]);
        let view: (&str, &u64, &[u8]) = ("abc", &7, &[1, 2]);
        assert_eq!(hasher.hash_one(&owned), hasher.hash_one(view));
        let probe = Probe {
            view: &view,
            eq: |k: &(String, u64, Vec<u8>)| k.0 == view.0 && k.1 == *view.1 && k.2 == view.2,
        };
        assert_eq!(hasher.hash_one(&owned), hasher.hash_one(&probe));
        assert!(probe.matches(&owned));
        assert!(!probe.matches(&(String::from("abd"), 7, vec![1, 2])));
    }

    #[test]
    fn a_borrowed_key_matches_its_owned_form() {
        assert!(Query::<String>::matches("abc", &String::from("abc")));
        assert!(!Query::<String>::matches("abc", &String::from("ab")));
    }
}
