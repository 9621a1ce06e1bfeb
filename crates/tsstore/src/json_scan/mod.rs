//! A fast structural JSON check for the insert path.
//!
//! `serde_json` validation costs about as much as the rest of an insert
//! for small sensor payloads, so JSON stores first run this allocation-free
//! scanner. It answers only "certainly valid": anything it is not sure
//! about (long exponents, `\u` escapes, deep nesting, very long numbers) or
//! thinks is wrong goes to `serde_json`, which decides and words the error.
//! A property test checks that every payload it accepts `serde_json`
//! accepts too.

/// Deepest nesting the scanner handles itself (serde_json allows 128).
mod compact;
mod flat;

pub(crate) use compact::{Compact, compact_object};
pub(crate) use flat::{FlatValue, flat_object, flat_value};

const MAX_DEPTH: u32 = 100;
/// Longer numbers go to serde_json, which knows where f64 overflows.
const MAX_NUMBER_LEN: usize = 64;
/// Digits of an exponent the scanner takes itself: with at most
/// `MAX_NUMBER_LEN` characters before it, a value stays within 1e-170
/// to 1e170, far from where f64 overflows. Small floats are written with
/// exponents by most languages (`4.9e-05` in Python), so they are common
/// in sensor payloads.
const MAX_EXPONENT_DIGITS: usize = 2;

/// Bytes that end the fast run through a string: quote, backslash,
/// control characters and non-ASCII (checked as UTF-8 afterwards).
static STRING_STOP: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = c < 0x20 || c == b'"' as usize || c == b'\\' as usize || c >= 0x80;
        c += 1;
    }
    t
};

/// True only if `b` is a single JSON value, possibly surrounded by
/// whitespace, that serde_json accepts, and valid UTF-8.
pub(crate) fn surely_valid(b: &[u8]) -> bool {
    let mut s = Scanner {
        b,
        i: 0,
        non_ascii: false,
    };
    structure_ok(&mut s) && (!s.non_ascii || std::str::from_utf8(b).is_ok())
}

fn structure_ok(s: &mut Scanner) -> bool {
    if !value(s) {
        return false;
    }
    s.ws();
    s.i == s.b.len()
}

/// One JSON value at `s.i`, after any whitespace: true if it is surely
/// valid, with `s.i` just after it.
fn value(s: &mut Scanner) -> bool {
    // Bit d of `arrays` tells whether the container at depth d is an array.
    let mut arrays: u128 = 0;
    let mut depth: u32 = 0;
    loop {
        // A value starts here.
        s.ws();
        match s.peek() {
            Some(b'{') => {
                s.i += 1;
                s.ws();
                if s.eat(b'}') {
                    // empty object: a complete value
                } else {
                    if depth >= MAX_DEPTH || !s.key() {
                        return false;
                    }
                    arrays &= !(1 << depth);
                    depth += 1;
                    continue;
                }
            }
            Some(b'[') => {
                s.i += 1;
                s.ws();
                if !s.eat(b']') {
                    if depth >= MAX_DEPTH {
                        return false;
                    }
                    arrays |= 1 << depth;
                    depth += 1;
                    continue;
                }
            }
            Some(b'"') => {
                if !s.string() {
                    return false;
                }
            }
            Some(b't') => {
                if !s.literal(b"true") {
                    return false;
                }
            }
            Some(b'f') => {
                if !s.literal(b"false") {
                    return false;
                }
            }
            Some(b'n') => {
                if !s.literal(b"null") {
                    return false;
                }
            }
            Some(b'-' | b'0'..=b'9') => {
                if !s.number() {
                    return false;
                }
            }
            _ => return false,
        }
        // A value ended: close containers or move to the next element.
        loop {
            if depth == 0 {
                return true;
            }
            s.ws();
            let in_array = arrays & (1 << (depth - 1)) != 0;
            match (s.peek(), in_array) {
                (Some(b','), true) => {
                    s.i += 1;
                    break;
                }
                (Some(b','), false) => {
                    s.i += 1;
                    s.ws();
                    if !s.key() {
                        return false;
                    }
                    break;
                }
                (Some(b']'), true) | (Some(b'}'), false) => {
                    s.i += 1;
                    depth -= 1;
                }
                _ => return false,
            }
        }
    }
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
    /// A string held bytes ≥ 0x80 (anywhere else they fail the scan).
    non_ascii: bool,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn literal(&mut self, word: &[u8]) -> bool {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            true
        } else {
            false
        }
    }

    /// An object key and its colon.
    fn key(&mut self) -> bool {
        if self.peek() != Some(b'"') || !self.string() {
            return false;
        }
        self.ws();
        self.eat(b':')
    }

    fn string(&mut self) -> bool {
        self.i += 1; // opening quote
        loop {
            self.skip_plain();
            let Some(c) = self.peek() else {
                return false;
            };
            self.i += 1;
            match c {
                b'"' => return true,
                b'\\' => match self.peek() {
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.i += 1,
                    _ => return false, // \u escapes (surrogates) are left to serde_json
                },
                0x80.. => self.non_ascii = true,
                _ => return false,
            }
        }
    }

    /// Moves to the next string-stop byte (see `STRING_STOP`), eight bytes
    /// at a time: for each word, the classic "has zero byte" bit trick
    /// flags quotes, backslashes, bytes < 0x20 and bytes ≥ 0x80. Bits above
    /// the first hit may be spurious, so only the lowest one is used.
    fn skip_plain(&mut self) {
        const ONES: u64 = 0x0101_0101_0101_0101;
        const HIGH: u64 = 0x8080_8080_8080_8080;
        while let Some(chunk) = self.b.get(self.i..self.i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            let v = u64::from_le_bytes(word);
            let zero_in = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
            let quote = zero_in(v ^ (ONES * u64::from(b'"')));
            let backslash = zero_in(v ^ (ONES * u64::from(b'\\')));
            let control = v.wrapping_sub(ONES * 0x20) & !v & HIGH;
            let hits = quote | backslash | control | (v & HIGH);
            if hits != 0 {
                self.i += (hits.trailing_zeros() / 8) as usize;
                return;
            }
            self.i += 8;
        }
        while self.i < self.b.len() && !STRING_STOP[self.b[self.i] as usize] {
            self.i += 1;
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        self.i - start
    }

    fn number(&mut self) -> bool {
        let start = self.i;
        self.eat(b'-');
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return false,
        }
        if self.eat(b'.') && self.digits() == 0 {
            return false;
        }
        let mantissa = self.i - start;
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            // Longer exponents may overflow f64: serde_json decides.
            if !(1..=MAX_EXPONENT_DIGITS).contains(&self.digits()) {
                return false;
            }
        }
        mantissa <= MAX_NUMBER_LEN
    }
}

#[cfg(test)]
mod tests {
    use super::surely_valid;
    use proptest::prelude::*;

    fn serde_ok(b: &[u8]) -> bool {
        std::str::from_utf8(b).is_ok() && serde_json::from_slice::<serde::de::IgnoredAny>(b).is_ok()
    }

    #[test]
    fn accepts_common_payloads() {
        for ok in [
            r#"{"temp":21.52,"hum":48.25,"room":"kitchen1","ok":true,"n":7}"#,
            r#" [1, -2.5, "a\"b\\c\n", null, false, {}, [], {"x": [{"y": 0}]}] "#,
            "0",
            "-0.0",
            r#"{"rain":0,"PM2_5":7.7e-05,"PM10":4.8E+05,"x":1e9}"#,
            r#""héllo""#,
        ] {
            assert!(surely_valid(ok.as_bytes()), "{ok}");
        }
    }

    #[test]
    fn unsure_or_invalid_inputs_are_not_accepted() {
        for bad in [
            "",
            " ",
            "{",
            "}",
            "[1,]",
            "{\"a\":1,}",
            "{\"a\" 1}",
            "01",
            "1.",
            "-",
            ".5",
            "+1",
            "tru",
            "nul",
            "[1 2]",
            "{1:2}",
            "\"abc",
            "\"a\x01\"",
            "1 2",
            "[]]",
            "{\"a\":1}}",
            "1e400",
            "1e",
            "1e+",
            "1.5E-",
            "\"\\u0041\"",
            "\"\\x\"",
            "[[[]]",
        ] {
            assert!(!surely_valid(bad.as_bytes()), "{bad:?}");
        }
        assert!(!surely_valid(b"\"\xff\""), "invalid UTF-8 in a string");
        assert!(!surely_valid(b"[1,\xc3]"), "non-ASCII outside a string");
        let deep = "[".repeat(102) + &"]".repeat(102);
        assert!(!surely_valid(deep.as_bytes()));
        let ok_deep = "[".repeat(100) + &"]".repeat(100);
        assert!(surely_valid(ok_deep.as_bytes()));
    }

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        use serde_json::Value;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            (-1e6f64..1e6).prop_map(Value::from),
            "[ -~é\"\\\\\n]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map("[a-z.]{0,6}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn serialized_values_are_accepted(v in json_value(), pretty in any::<bool>()) {
            let text = if pretty { serde_json::to_string_pretty(&v) } else { serde_json::to_string(&v) }.unwrap();
            let unsure = text.contains('e') && text.bytes().any(|c| c.is_ascii_digit()) || text.contains("\\u");
            prop_assert!(surely_valid(text.as_bytes()) || unsure, "{}", text);
        }

        #[test]
        fn accepted_mutations_are_valid_for_serde(v in json_value(), pos in any::<usize>(), byte in any::<u8>(), cut in any::<bool>()) {
            let mut b = serde_json::to_vec(&v).unwrap();
            let at = pos % (b.len() + 1);
            if cut { b.truncate(at) } else { b.insert(at, byte) }
            if surely_valid(&b) {
                prop_assert!(serde_ok(&b), "{:?}", String::from_utf8_lossy(&b));
            }
        }

        #[test]
        fn flat_object_reads_what_serde_reads(
            entries in proptest::collection::vec((
                "[a-z.é]{0,5}",
                prop_oneof![
                    any::<i64>().prop_map(|v| v.to_string()),
                    (any::<i32>(), 0u32..8).prop_map(|(m, k)| {
                        let s = format!("{:0>9}", m.unsigned_abs());
                        let (a, b) = s.split_at(9 - k as usize);
                        format!("{}{}.{}", if m < 0 { "-" } else { "" }, a.trim_start_matches('0').max("0"), if b.is_empty() { "0" } else { b })
                    }),
                    any::<f64>().prop_filter("finite", |v| v.is_finite()).prop_map(|v| serde_json::to_string(&v).unwrap()),
                    Just("true".to_string()),
                    Just("null".to_string()),
                    "[ -~é]{0,6}".prop_map(|s| serde_json::to_string(&s).unwrap()),
                    Just("[1]".to_string()),
                ],
            ), 0..6),
            spaces in any::<bool>(),
        ) {
            let sep = if spaces { " , " } else { "," };
            let body: Vec<String> = entries.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
            let text = format!("{{{}}}", body.join(sep));
            let mut seen = Vec::new();
            let sure = super::flat_object(text.as_bytes(), |k, v, _| seen.push((String::from_utf8(k.to_vec()).unwrap(), v)));
            if sure {
                prop_assert_eq!(seen.len(), entries.len());
                for ((key, got), (k, v)) in seen.iter().zip(&entries) {
                    prop_assert_eq!(key, k);
                    let want: serde_json::Value = serde_json::from_str(v).unwrap();
                    match got {
                        super::FlatValue::Int(i) => prop_assert_eq!(want.as_i64(), Some(*i), "{}", v),
                        super::FlatValue::Float(f) => prop_assert_eq!(want.as_f64(), Some(*f), "{}", v),
                        super::FlatValue::Other(raw) => prop_assert_eq!(*raw, v.as_bytes()),
                    }
                }
            } else {
                // Unsure only for what the fast path leaves to serde_json.
                let plain = entries.iter().all(|(_, v)| !v.contains(['[', 'e', 'E', '\\']) && v.len() < 16);
                prop_assert!(!(plain && entries.iter().all(|(k, _)| k.is_ascii())), "{}", text);
            }
        }

        #[test]
        fn compact_objects_are_valid_and_split_where_they_are_written(
            v in json_value(),
            pos in any::<usize>(),
            byte in any::<u8>(),
            mutate in any::<bool>(),
            same in any::<bool>(),
        ) {
            let mut b = serde_json::to_vec(&v).unwrap();
            if mutate {
                let at = pos % (b.len() + 1);
                b.insert(at, byte);
            }
            let (mut keys, mut ends) = (Vec::new(), Vec::new());
            // The keys it would find, given as expected (or none).
            let mut expect: Vec<Box<[u8]>> = Vec::new();
            if same && super::compact_object(&b, &[], &mut keys, &mut ends) != super::Compact::No {
                expect = keys.iter().map(|&(a, z)| b[a as usize..z as usize].into()).collect();
            }
            ends.clear();
            let found = super::compact_object(&b, &expect, &mut keys, &mut ends);
            if found == super::Compact::No {
                // Unsure only of what the fast check leaves to serde_json,
                // or of what is not a compact flat object.
                let object = matches!(&v, serde_json::Value::Object(m) if !m.is_empty());
                let text = String::from_utf8_lossy(&b);
                let unsure = text.contains("\\u") || text.contains('e') || !text.is_ascii();
                prop_assert!(mutate || !object || unsure, "{}", text);
                return Ok(());
            }
            prop_assert!(serde_ok(&b) && surely_valid(&b), "{:?}", String::from_utf8_lossy(&b));
            prop_assert_eq!(found == super::Compact::Expected, same && !expect.is_empty());
            // The pieces are `{"k":v,"k":v}` exactly.
            let mut rebuilt = b"{".to_vec();
            // Where the `{` or `,` before each key is.
            let mut at = 0;
            for (j, (&(k0, k1), &end)) in keys.iter().zip(&ends).enumerate() {
                if j > 0 {
                    rebuilt.push(b',');
                }
                prop_assert_eq!(k0 as usize, at + 2);
                rebuilt.push(b'"');
                rebuilt.extend_from_slice(&b[k0 as usize..k1 as usize]);
                rebuilt.extend_from_slice(b"\":");
                rebuilt.extend_from_slice(&b[k1 as usize + 2..end as usize]);
                at = end as usize;
            }
            rebuilt.push(b'}');
            prop_assert_eq!(rebuilt, b);
        }

        #[test]
        fn same_bytes_is_equality(
            a in proptest::collection::vec(any::<u8>(), 0..20),
            at in any::<usize>(),
            byte in any::<u8>(),
            longer in any::<bool>(),
        ) {
            let mut b = a.clone();
            if longer {
                b.push(byte);
            } else if !b.is_empty() {
                let at = at % b.len();
                b[at] = byte;
            }
            prop_assert_eq!(super::compact::same_bytes(&a, &b), a == b);
            prop_assert!(super::compact::same_bytes(&a, &a));
        }

        #[test]
        fn word_skip_stops_where_the_byte_loop_does(
            bytes in proptest::collection::vec(prop_oneof![0x20u8..0x7f, any::<u8>()], 0..40),
            from in 0usize..40,
        ) {
            let from = from.min(bytes.len());
            let mut s = super::Scanner { b: &bytes, i: from, non_ascii: false };
            s.skip_plain();
            let expected = (from..bytes.len())
                .find(|&i| super::STRING_STOP[bytes[i] as usize])
                .unwrap_or(bytes.len());
            prop_assert_eq!(s.i, expected);
        }

        #[test]
        fn accepted_arbitrary_strings_are_valid_for_serde(s in "[\\[\\]{}\",:0-9.\\-+a-zE \\\\]{0,24}") {
            if surely_valid(s.as_bytes()) {
                prop_assert!(serde_ok(s.as_bytes()), "{:?}", s);
            }
        }
    }
}
