//! The rule for cache and manager names, in one place: the runtime checks it at registration
//! ([`crate::store::files::check_name`]) and `#[cached]` checks its literal names against it at
//! compile time (the const [`assert_valid_name`]), so the two can never disagree.

/// The rule as error messages state it. A macro, so that `concat!` can build the compile-time
/// messages from it.
macro_rules! name_rule {
    () => {
        "a name is 1 to 200 ASCII letters, digits, `_`, `-` and `.`, does not start or end \
         with `.`, and is not a device name of Windows (`con`, `nul`, `com1`, ...)"
    };
}

/// [`name_rule!`] as a constant, for runtime messages.
pub(crate) const NAME_RULE: &str = name_rule!();

/// Device names of Windows, which cannot be file names there whatever their extension.
const WINDOWS_DEVICES: [&str; 4] = ["con", "prn", "aux", "nul"];

/// Declares [`NameProblem`] with each variant's reason, and the compile-time message that
/// joins the reason and the rule.
macro_rules! problems {
    ($($variant:ident => $reason:literal,)*) => {
        /// What is wrong with a name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum NameProblem {
            $($variant,)*
        }

        impl NameProblem {
            /// A short reason, for runtime messages (which add the name and the rule).
            pub(crate) const fn reason(self) -> &'static str {
                match self {
                    $(NameProblem::$variant => $reason,)*
                }
            }

            /// The reason and the rule in one message, for compile errors.
            const fn message(self) -> &'static str {
                match self {
                    $(NameProblem::$variant => concat!(
                        "invalid cache or manager name: ", $reason, "; ", name_rule!()
                    ),)*
                }
            }
        }
    };
}

problems! {
    Empty => "it is empty",
    TooLong => "it is longer than 200 bytes",
    LeadingDot => "it starts with `.`",
    TrailingDot => "it ends with `.` (which Windows drops)",
    Separator => "it contains a path separator",
    Colon => "it contains `:` (a drive or an alternate data stream on Windows)",
    Space => "it contains a space",
    Nul => "it contains a NUL byte",
    Control => "it contains a control character",
    NotAscii => "it contains a character that is not ASCII",
    Other => "it contains a character other than letters, digits, `_`, `-` and `.`",
    Device => "it is a device name on Windows",
}

/// What is wrong with `name`, if anything.
pub(crate) const fn name_problem(name: &str) -> Option<NameProblem> {
    let bytes = name.as_bytes();
    if bytes.is_empty() {
        return Some(NameProblem::Empty);
    }
    if bytes.len() > 200 {
        return Some(NameProblem::TooLong);
    }
    if bytes[0] == b'.' {
        return Some(NameProblem::LeadingDot);
    }
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if !(b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.') {
            return Some(match b {
                b'/' | b'\\' => NameProblem::Separator,
                b':' => NameProblem::Colon,
                b' ' => NameProblem::Space,
                0 => NameProblem::Nul,
                _ if b.is_ascii_control() => NameProblem::Control,
                _ if !b.is_ascii() => NameProblem::NotAscii,
                _ => NameProblem::Other,
            });
        }
        i += 1;
    }
    if bytes[bytes.len() - 1] == b'.' {
        return Some(NameProblem::TrailingDot);
    }
    if is_windows_device(bytes) {
        return Some(NameProblem::Device);
    }
    None
}

/// Whether the part of `name` before its first `.` is a Windows device name (`nul`, `COM1`).
const fn is_windows_device(name: &[u8]) -> bool {
    let mut stem = 0;
    while stem < name.len() && name[stem] != b'.' {
        stem += 1;
    }
    let mut d = 0;
    while d < WINDOWS_DEVICES.len() {
        if eq_ignore_case(name, stem, WINDOWS_DEVICES[d].as_bytes()) {
            return true;
        }
        d += 1;
    }
    // COM0-COM9 and LPT0-LPT9.
    stem == 4
        && (eq_ignore_case(name, 3, b"com") || eq_ignore_case(name, 3, b"lpt"))
        && name[3].is_ascii_digit()
}

/// Whether the first `len` bytes of `name` are `word`, ignoring ASCII case.
const fn eq_ignore_case(name: &[u8], len: usize, word: &[u8]) -> bool {
    if len != word.len() || name.len() < len {
        return false;
    }
    let mut i = 0;
    while i < len {
        if name[i].to_ascii_lowercase() != word[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Fails compilation when a name given to `#[cached]` breaks the rule; the macro spans the
/// call at the name.
#[doc(hidden)]
pub const fn assert_valid_name(name: &str) {
    if let Some(problem) = name_problem(name) {
        panic!("{}", problem.message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_accepts_plain_names() {
        for good in [
            "fib",
            "word_counts",
            "v1.2-beta",
            "A9",
            "console",
            "com10",
            "nul_x",
        ] {
            assert_eq!(name_problem(good), None, "{good}");
        }
    }

    #[test]
    fn the_rule_refuses_what_its_message_does_not_list() {
        for bad in [
            "",
            ".hidden",
            "trailing.",
            "a/b",
            "a\\b",
            "a:b",
            "a b",
            "nul\0",
            "tab\t",
            "café",
            "semi;colon",
            "NUL",
            "con.x",
            "Com1",
            "lpt9",
        ] {
            assert!(name_problem(bad).is_some(), "{bad:?}");
        }
        assert!(name_problem(&"x".repeat(201)).is_some());
        assert_eq!(name_problem(&"x".repeat(200)), None);
    }
}
