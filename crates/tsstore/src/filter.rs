//! Substring filter over payloads, as users see them (schema records
//! expanded first: see `Store::expand`), optionally ignoring ASCII case.
//!
//! Bytes are matched, not characters, so the filter works on any data
//! type; "ignore case" folds ASCII letters only, which never splits a
//! multi-byte UTF-8 character.

use memchr::memmem;

/// A compiled substring filter; cheap to share between readers.
#[derive(Debug, Clone)]
pub struct Filter {
    /// Lowercased when `ignore_case`.
    needle: Vec<u8>,
    ignore_case: bool,
    finder: memmem::Finder<'static>,
}

impl Filter {
    pub fn new(needle: &str, ignore_case: bool) -> Filter {
        let needle = if ignore_case {
            needle.to_ascii_lowercase().into_bytes()
        } else {
            needle.as_bytes().to_vec()
        };
        Filter {
            finder: memmem::Finder::new(&needle).into_owned(),
            needle,
            ignore_case,
        }
    }

    pub fn needle(&self) -> &[u8] {
        &self.needle
    }

    pub fn ignore_case(&self) -> bool {
        self.ignore_case
    }

    /// Whether `payload` contains the filter string. The empty filter
    /// matches everything.
    pub fn matches(&self, payload: &[u8]) -> bool {
        if !self.ignore_case {
            return self.finder.find(payload).is_some();
        }
        let Some((&first, rest)) = self.needle.split_first() else {
            return true;
        };
        if payload.len() < self.needle.len() {
            return false;
        }
        // Candidates are found with memchr on both cases of the first byte;
        // only they are compared in full.
        let last_start = payload.len() - self.needle.len();
        let mut from = 0;
        while from <= last_start {
            let window = &payload[from..=last_start];
            let hit = if first.is_ascii_alphabetic() {
                memchr::memchr2(first, first.to_ascii_uppercase(), window)
            } else {
                memchr::memchr(first, window)
            };
            let Some(offset) = hit else {
                return false;
            };
            let at = from + offset;
            if payload[at + 1..at + self.needle.len()].eq_ignore_ascii_case(rest) {
                return true;
            }
            from = at + 1;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cases() {
        let f = Filter::new("Error", false);
        assert!(f.matches(br#"{"status":"Error"}"#));
        assert!(!f.matches(br#"{"status":"error"}"#));
        let f = Filter::new("eRRor", true);
        assert!(f.matches(br#"{"status":"ERROR"}"#));
        assert!(f.matches(b"error"));
        assert!(!f.matches(b"erro"));
        assert!(Filter::new("", true).matches(b""));
        assert!(Filter::new("", false).matches(b"x"));
        assert!(Filter::new("é", true).matches("CAFé".as_bytes()));
        assert!(
            !Filter::new("é", true).matches("CAFÉ".as_bytes()),
            "ASCII folding only"
        );
    }

    proptest! {
        #[test]
        fn agrees_with_naive_search(hay in "[aAbB\\-é]{0,40}", needle in "[aAbB\\-é]{0,4}", ic: bool) {
            let (h, n) = if ic {
                (hay.to_ascii_lowercase(), needle.to_ascii_lowercase())
            } else {
                (hay.clone(), needle.clone())
            };
            prop_assert_eq!(Filter::new(&needle, ic).matches(hay.as_bytes()), h.contains(&n));
        }
    }
}
