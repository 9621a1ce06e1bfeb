//! `flat_object`: reads the entries of a flat JSON object with their
//! numbers parsed, for aggregation, without building a `serde_json::Value`.

use super::Scanner;

/// A value of a flat object, as `flat_object` reads it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum FlatValue<'a> {
    Int(i64),
    Float(f64),
    /// The JSON text of a string, `true`, `false` or `null`: always a
    /// slice of the input, and UTF-8.
    Other(&'a [u8]),
}

/// `10^k` for the exact fast path of decimal parsing.
const POW10: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// Walks a flat object `{"k": scalar, ...}`, calling `f` for each entry in
/// order (keys are passed as bytes; they are ASCII). Returns false when unsure: nested values, escaped keys, numbers
/// with exponents or more than 15 significant digits, or anything invalid.
/// Then `f` may have seen some entries, and the caller must discard them
/// and ask serde_json instead. Numbers are read exactly: integers as they
/// are, decimals by one correctly rounded division of exact doubles.
/// `f` also gets where the value's text begins and ends in `b`.
pub(crate) fn flat_object<'a>(
    b: &'a [u8],
    mut f: impl FnMut(&'a [u8], FlatValue<'a>, (usize, usize)),
) -> bool {
    let mut s = Scanner {
        b,
        i: 0,
        non_ascii: false,
    };
    s.ws();
    if !s.eat(b'{') {
        return false;
    }
    s.ws();
    if !s.eat(b'}') {
        loop {
            let Some(key) = s.plain_key() else {
                return false;
            };
            s.ws();
            let start = s.i;
            let Some(value) = s.flat_value() else {
                return false;
            };
            f(key, value, (start, s.i));
            s.ws();
            match s.peek() {
                Some(b',') => {
                    s.i += 1;
                    s.ws();
                }
                Some(b'}') => {
                    s.i += 1;
                    break;
                }
                _ => return false,
            }
        }
    }
    s.ws();
    s.i == b.len()
}

/// The scalar value at `at` in `b`, as `flat_object` reads it, and where
/// its text ends; `None` when unsure (then `flat_object` is too).
pub(crate) fn flat_value(b: &[u8], at: usize) -> Option<(FlatValue<'_>, usize)> {
    let mut s = Scanner {
        b,
        i: at,
        non_ascii: false,
    };
    let value = s.flat_value()?;
    Some((value, s.i))
}

impl<'a> Scanner<'a> {
    /// A string, `true`, `false`, `null` or a plain number.
    fn flat_value(&mut self) -> Option<FlatValue<'a>> {
        let (b, start) = (self.b, self.i);
        // The text of a literal, as a slice of the input: callers
        // locate values by their place in it.
        let literal = |s: &Scanner<'a>| FlatValue::Other(&b[start..s.i]);
        Some(match self.peek()? {
            b'"' => {
                self.non_ascii = false;
                if !self.string() {
                    return None;
                }
                let raw = &b[start..self.i];
                if self.non_ascii && std::str::from_utf8(raw).is_err() {
                    return None;
                }
                FlatValue::Other(raw)
            }
            b't' if self.literal(b"true") => literal(self),
            b'f' if self.literal(b"false") => literal(self),
            b'n' if self.literal(b"null") => literal(self),
            b'-' | b'0'..=b'9' => self.number_value()?,
            _ => return None,
        })
    }

    /// An ASCII key without escapes, and its colon.
    fn plain_key(&mut self) -> Option<&'a [u8]> {
        if !self.eat(b'"') {
            return None;
        }
        let start = self.i;
        self.skip_plain();
        let end = self.i;
        if self.peek() != Some(b'"') {
            return None; // escapes, control or non-ASCII bytes: unsure
        }
        self.i += 1;
        self.ws();
        if !self.eat(b':') {
            return None;
        }
        Some(&self.b[start..end])
    }

    /// A number of at most 15 significant digits without exponent, or
    /// an integer of at most 18 digits; `None` for anything else.
    fn number_value(&mut self) -> Option<FlatValue<'a>> {
        let negative = self.eat(b'-');
        let mut mantissa: u64 = 0;
        let mut digits = 0u32;
        let mut take = |s: &mut Self| {
            let from = s.i;
            while let Some(d @ b'0'..=b'9') = s.peek() {
                mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(d - b'0'));
                digits += 1;
                s.i += 1;
            }
            s.i - from
        };
        match self.peek() {
            Some(b'0') => {
                self.i += 1;
                if matches!(self.peek(), Some(b'0'..=b'9')) {
                    return None;
                }
            }
            Some(b'1'..=b'9') => {
                take(self);
            }
            _ => return None,
        }
        let mut fraction = 0;
        if self.eat(b'.') {
            fraction = take(self);
            if fraction == 0 {
                return None;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            return None;
        }
        if fraction == 0 {
            if digits > 18 {
                return None;
            }
            // At most 18 digits: fits in i64 either sign.
            let v = mantissa as i64;
            return Some(FlatValue::Int(if negative { -v } else { v }));
        }
        if digits > 15 {
            return None;
        }
        // Both operands are exact doubles (< 2^53 and 10^k for k ≤ 15),
        // so the one division is correctly rounded.
        let v = mantissa as f64 / POW10[fraction];
        Some(FlatValue::Float(if negative { -v } else { v }))
    }
}
