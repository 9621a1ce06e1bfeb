//! A JSON number's text as integers, and back to the very same text.
//!
//! Sensor values arrive as decimal text (`21.30`, `0.000387`, `4.9e-05`):
//! kept as the integer of all their digits (the mantissa) and how many of
//! those follow the point (the scale), a column of them is a column of
//! small integers whose differences are smaller still. Anything the
//! integers cannot say exactly is not a `Number` and stays text: every
//! text that parses formats back byte for byte (the round-trip tests
//! below and in `typed`).

/// Most digits a mantissa or an exponent keeps: 10^18 fits an i64.
pub(crate) const MAX_DIGITS: usize = 18;

/// Mantissas are below this: 10^18.
pub(crate) const MAX_MAGNITUDE: u64 = POW10[MAX_DIGITS];

/// A number text taken apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Number {
    /// Every digit of the integer and fraction parts as one integer,
    /// negative if the text is (except for a negative zero: `form`).
    pub mantissa: i64,
    /// Digits after the point (0: no point).
    pub scale: u8,
    /// `FORM_*` bits: a negative zero's sign, and the exponent's spelling.
    pub form: u8,
    /// The exponent's digits as written: how many (with leading zeros)
    /// and their value; (0, 0) without one.
    pub exponent: (u8, u64),
}

/// Form bit 0: a `-` before a mantissa of zero (`-0`, `-0.0`).
pub(crate) const FORM_NEGATIVE_ZERO: u8 = 1;
/// Form bits 1 to 3: the exponent's letter and sign, 0 for none, else
/// 1 + 3 × (letter is `E`) + (sign: 0 none, 1 `+`, 2 `-`).
const EXPONENT_SHIFT: u8 = 1;
/// Whether a number of this form has an exponent.
pub(crate) fn form_has_exponent(form: u8) -> bool {
    form >> EXPONENT_SHIFT != 0
}
/// Forms above this are not numbers (`typed` gives them meanings).
pub(crate) const MAX_FORM: u8 = FORM_NEGATIVE_ZERO | (6 << EXPONENT_SHIFT);

impl Number {
    /// Whether the text had an exponent.
    pub fn has_exponent(&self) -> bool {
        form_has_exponent(self.form)
    }

    /// Takes a JSON number's text apart, if it is one the integers say
    /// exactly (at most `MAX_DIGITS` digits in mantissa and exponent).
    pub fn parse(t: &[u8]) -> Option<Number> {
        let mut i = 0;
        let negative = t.first() == Some(&b'-');
        if negative {
            i = 1;
        }
        let mut mantissa: u64 = 0;
        // The integer part: `0` alone, or digits without a leading zero.
        let digits = match t.get(i) {
            Some(b'0') => {
                i += 1;
                1
            }
            Some(b'1'..=b'9') => take_digits(t, &mut i, &mut mantissa, MAX_DIGITS)?,
            _ => return None,
        };
        let mut scale = 0;
        if t.get(i) == Some(&b'.') {
            i += 1;
            scale = take_digits(t, &mut i, &mut mantissa, MAX_DIGITS - digits)?;
            if scale == 0 {
                return None;
            }
        }
        let mut form = 0;
        let mut exponent = (0, 0);
        if let Some(&letter @ (b'e' | b'E')) = t.get(i) {
            i += 1;
            let sign = match t.get(i) {
                Some(b'+') => 1,
                Some(b'-') => 2,
                _ => 0,
            };
            if sign != 0 {
                i += 1;
            }
            let mut value = 0;
            let width = take_digits(t, &mut i, &mut value, MAX_DIGITS)?;
            if width == 0 {
                return None;
            }
            form |= (1 + 3 * u8::from(letter == b'E') + sign) << EXPONENT_SHIFT;
            exponent = (width as u8, value);
        }
        if i != t.len() {
            return None;
        }
        let magnitude = mantissa as i64;
        if negative && magnitude == 0 {
            form |= FORM_NEGATIVE_ZERO;
        }
        Some(Number {
            mantissa: if negative { -magnitude } else { magnitude },
            scale: scale as u8,
            form,
            exponent,
        })
    }

    /// Whether it can be formatted as a number text: what a damaged body
    /// might break. Cheap: a few comparisons.
    pub fn is_valid(&self) -> bool {
        usize::from(self.scale) < MAX_DIGITS
            && self.mantissa.unsigned_abs() < MAX_MAGNITUDE
            && self.form <= MAX_FORM
            && (self.form & FORM_NEGATIVE_ZERO == 0 || self.mantissa == 0)
            && if self.has_exponent() {
                let width = usize::from(self.exponent.0);
                (1..=MAX_DIGITS).contains(&width) && self.exponent.1 < POW10[width]
            } else {
                self.exponent == (0, 0)
            }
    }

    /// Appends the text it was parsed from (`is_valid` must hold).
    pub fn write(&self, out: &mut Vec<u8>) {
        let mut buf = [0; 2 * TEXT_END];
        let (start, end) = self.text(&mut buf);
        out.extend_from_slice(&buf[start..end]);
    }

    /// Writes its text into `buf` (`is_valid` must hold); returns where
    /// it starts and ends: the mantissa ends at `TEXT_END`, the exponent
    /// (letter, sign, at most `MAX_DIGITS` digits) follows.
    pub fn text(&self, buf: &mut [u8; 2 * TEXT_END]) -> (usize, usize) {
        let negative = self.mantissa < 0 || self.form & FORM_NEGATIVE_ZERO != 0;
        let start = decimal_text(buf, self.mantissa.unsigned_abs(), negative, self.scale);
        let kind = self.form >> EXPONENT_SHIFT;
        if kind == 0 {
            return (start, TEXT_END);
        }
        let kind = kind - 1;
        let mut at = TEXT_END;
        buf[at] = if kind >= 3 { b'E' } else { b'e' };
        at += 1;
        match kind % 3 {
            1 => {
                buf[at] = b'+';
                at += 1;
            }
            2 => {
                buf[at] = b'-';
                at += 1;
            }
            _ => {}
        }
        let end = at + usize::from(self.exponent.0);
        let mut v = self.exponent.1;
        for i in (at..end).rev() {
            buf[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
        (start, end)
    }
}

/// 10^k for k up to 19.
const POW10: [u64; 20] = {
    let mut p = [1u64; 20];
    let mut k = 1;
    while k < 20 {
        p[k] = p[k - 1] * 10;
        k += 1;
    }
    p
};

/// "00" to "99": two digits per division when formatting.
const PAIRS: [[u8; 2]; 100] = {
    let mut t = [[0u8; 2]; 100];
    let mut k = 0;
    while k < 100 {
        t[k] = [b'0' + (k / 10) as u8, b'0' + (k % 10) as u8];
        k += 1;
    }
    t
};

/// Where `decimal_text` ends its text in its buffer: the buffer has as
/// many bytes again after it, so that a fixed-size copy of `TEXT_END`
/// bytes from the text's start is always in bounds.
pub(crate) const TEXT_END: usize = 24;
const _: () = assert!(TEXT_END + 2 + MAX_DIGITS <= 2 * TEXT_END);

/// Writes `magnitude` as a decimal with `scale` digits after the point
/// (zeros before its digits as needed: 5 at scale 2 is `0.05`), after a
/// `-` if `negative`, into `buf`, ending at `TEXT_END`; returns where it
/// starts. Any `u64` and any `scale` up to `MAX_DIGITS` fit.
#[inline]
pub(crate) fn decimal_text(
    buf: &mut [u8; 2 * TEXT_END],
    magnitude: u64,
    negative: bool,
    scale: u8,
) -> usize {
    let mut at = TEXT_END;
    let mut v = magnitude;
    fn pair(buf: &mut [u8], at: &mut usize, v: &mut u64) {
        *at -= 2;
        buf[*at..*at + 2].copy_from_slice(&PAIRS[(*v % 100) as usize]);
        *v /= 100;
    }
    let scale = scale.min(MAX_DIGITS as u8);
    let mut k = scale;
    while k >= 2 {
        pair(buf, &mut at, &mut v);
        k -= 2;
    }
    if k == 1 {
        at -= 1;
        buf[at] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    if scale > 0 {
        at -= 1;
        buf[at] = b'.';
    }
    while v >= 100 {
        pair(buf, &mut at, &mut v);
    }
    if v >= 10 {
        pair(buf, &mut at, &mut v);
    } else {
        at -= 1;
        buf[at] = b'0' + v as u8;
    }
    if negative {
        at -= 1;
        buf[at] = b'-';
    }
    at
}

/// Reads the digits at `t[*i..]` into `value` (times ten per digit);
/// returns how many, or `None` past `limit`.
fn take_digits(t: &[u8], i: &mut usize, value: &mut u64, limit: usize) -> Option<usize> {
    let mut count = 0;
    while let Some(&d @ b'0'..=b'9') = t.get(*i) {
        count += 1;
        if count > limit {
            return None;
        }
        *value = *value * 10 + u64::from(d - b'0');
        *i += 1;
    }
    Some(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn again(text: &str) -> Option<String> {
        let n = Number::parse(text.as_bytes())?;
        assert!(n.is_valid(), "{text}: {n:?}");
        let mut out = Vec::new();
        n.write(&mut out);
        Some(String::from_utf8(out).unwrap())
    }

    #[test]
    fn numbers_come_back_as_written() {
        for text in [
            "0",
            "-0",
            "0.0",
            "-0.000",
            "10.0",
            "6.1",
            "993",
            "0.000387",
            "4.9e-05",
            "1E+3",
            "-12.50e0",
            "7e00012",
            "999999999999999999",
            "-99999999.9999999999",
            "0.00000000000000001",
        ] {
            assert_eq!(again(text).as_deref(), Some(text), "{text}");
        }
    }

    #[test]
    fn what_the_integers_cannot_say_stays_text() {
        for text in [
            "",
            "-",
            "01",
            "1.",
            ".5",
            "1e",
            "1e+",
            "+1",
            "1.5.2",
            "NaN",
            "Infinity",
            "0x10",
            "1 ",
            " 1",
            "\"1\"",
            "true",
            "null",
            // Nineteen digits: more than an i64 keeps for every value.
            "1000000000000000000",
            "0.000000000000000001",
            "1e0000000000000000001",
        ] {
            assert_eq!(Number::parse(text.as_bytes()), None, "{text:?}");
        }
    }

    #[test]
    fn a_damaged_number_is_not_valid() {
        let bad = [
            Number {
                mantissa: 5,
                scale: 18,
                form: 0,
                exponent: (0, 0),
            },
            Number {
                mantissa: 1,
                scale: 0,
                form: FORM_NEGATIVE_ZERO,
                exponent: (0, 0),
            },
            Number {
                mantissa: 1,
                scale: 0,
                form: MAX_FORM + 2,
                exponent: (0, 0),
            },
            Number {
                mantissa: 1,
                scale: 0,
                form: 1 << EXPONENT_SHIFT,
                exponent: (0, 0),
            },
            Number {
                mantissa: 1,
                scale: 0,
                form: 0,
                exponent: (1, 0),
            },
            Number {
                mantissa: 1,
                scale: 0,
                form: 1 << EXPONENT_SHIFT,
                exponent: (1, 10),
            },
            Number {
                mantissa: i64::MIN,
                scale: 0,
                form: 0,
                exponent: (0, 0),
            },
        ];
        for n in bad {
            assert!(!n.is_valid(), "{n:?}");
        }
    }

    proptest! {
        #[test]
        fn any_json_number_text_round_trips_or_is_refused(
            negative in any::<bool>(),
            int in "(0|[1-9][0-9]{0,20})",
            frac in proptest::option::of("[0-9]{1,20}"),
            exp in proptest::option::of(("[eE]", "[+-]?", "[0-9]{1,20}")),
        ) {
            let mut text = String::new();
            if negative { text.push('-'); }
            text.push_str(&int);
            if let Some(f) = &frac { text.push('.'); text.push_str(f); }
            if let Some((e, s, d)) = &exp { text.push_str(e); text.push_str(s); text.push_str(d); }
            let digits = int.len() + frac.as_ref().map_or(0, |f| f.len());
            let exp_digits = exp.as_ref().map_or(0, |(_, _, d)| d.len());
            match again(&text) {
                Some(back) => prop_assert_eq!(back, text),
                None => prop_assert!(digits > MAX_DIGITS || exp_digits > MAX_DIGITS, "{} refused", text),
            }
        }
    }
}
