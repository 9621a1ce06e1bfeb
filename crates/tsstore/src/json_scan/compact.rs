//! `compact_object`: the JSON check of a compressed JSON store's insert,
//! which also finds where each key and value of a compactly written flat
//! object lies, so the record is split into columns in the same pass.

use super::{Scanner, value};

/// What `compact_object` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compact {
    /// Not so written, or unsure.
    No,
    /// Its keys are exactly the expected ones.
    Expected,
    /// Other keys: their spans are in `keys`.
    Keys,
}

/// For the columns of the compressed encoding, in the same pass as the
/// check: whether `b` is an object written `{"k":v,...}`, nothing between
/// its top-level tokens, keys plain (no escapes, no control or non-ASCII
/// bytes), and every value surely valid; such a payload is valid JSON.
/// Each value's end is appended to `ends` (which may hold some after
/// `No`; the caller truncates). Keys equal to `expect` (the last
/// record's, already checked plain) are compared, not scanned.
pub(crate) fn compact_object(
    b: &[u8],
    expect: &[Box<[u8]>],
    keys: &mut Vec<(u32, u32)>,
    ends: &mut Vec<u32>,
) -> Compact {
    keys.clear();
    if b.len() > u32::MAX as usize {
        return Compact::No;
    }
    let mut s = Scanner {
        b,
        i: 0,
        non_ascii: false,
    };
    if !s.eat(b'{') {
        return Compact::No;
    }
    let mut expected = true;
    loop {
        if !s.eat(b'"') {
            return Compact::No;
        }
        let start = s.i;
        let known = expect.get(keys.len()).filter(|k| {
            let end = start + k.len();
            b.get(end) == Some(&b'"') && same_bytes(&b[start..end], k)
        });
        match known {
            Some(k) => s.i += k.len(),
            None => {
                expected = false;
                s.skip_plain();
                if s.peek() != Some(b'"') {
                    return Compact::No;
                }
            }
        }
        keys.push((start as u32, s.i as u32));
        s.i += 1;
        if !s.eat(b':') {
            return Compact::No;
        }
        // Sensor values are numbers and strings: taken here, as `value`
        // takes them at the top level, without its walk of containers.
        let valid = match s.peek() {
            Some(b'-' | b'0'..=b'9') => s.number(),
            Some(b'"') => s.string(),
            _ => value(&mut s),
        };
        if !valid {
            return Compact::No;
        }
        ends.push(s.i as u32);
        match s.peek() {
            Some(b',') => s.i += 1,
            Some(b'}') if s.i + 1 == b.len() => break,
            _ => return Compact::No,
        }
    }
    if s.non_ascii && std::str::from_utf8(b).is_err() {
        Compact::No
    } else if expected && keys.len() == expect.len() {
        Compact::Expected
    } else {
        Compact::Keys
    }
}

/// `a == b` for the short keys and values of sensor records, in a few
/// word compares instead of a call to `memcmp` (a fifth of the insert had
/// gone to comparing keys that way).
#[inline]
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word = |s: &[u8], i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&s[i..i + 8]);
        u64::from_le_bytes(w)
    };
    if n >= 8 {
        // Whole words, the last one overlapping the one before.
        let mut i = 0;
        while i + 8 < n {
            if word(a, i) != word(b, i) {
                return false;
            }
            i += 8;
        }
        word(a, n - 8) == word(b, n - 8)
    } else if n >= 4 {
        // Two words of four, overlapping when `n` < 8.
        let half = |s: &[u8], i: usize| {
            let mut w = [0u8; 4];
            w.copy_from_slice(&s[i..i + 4]);
            u32::from_le_bytes(w)
        };
        half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4)
    } else {
        // The first, middle and last bytes are all of them.
        n == 0 || (a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1])
    }
}
