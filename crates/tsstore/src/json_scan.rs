//! A fast structural JSON check for the insert path.
//!
//! `serde_json` validation costs about as much as the rest of an insert
//! for small sensor payloads, so JSON stores first run this allocation-free
//! scanner. It answers only "certainly valid": anything it is not sure
//! about (exponents, `\u` escapes, deep nesting, very long numbers) or
//! thinks is wrong goes to `serde_json`, which decides and words the error.
//! A property test checks that every payload it accepts `serde_json`
//! accepts too.

/// Deepest nesting the scanner handles itself (serde_json allows 128).
const MAX_DEPTH: u32 = 100;
/// Longer numbers go to serde_json, which knows where f64 overflows.
const MAX_NUMBER_LEN: usize = 64;

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
    let b = s.b;
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
            s.ws();
            if depth == 0 {
                return s.i == b.len();
            }
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

impl Scanner<'_> {
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
            while self.i < self.b.len() && !STRING_STOP[self.b[self.i] as usize] {
                self.i += 1;
            }
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
        if matches!(self.peek(), Some(b'e' | b'E')) {
            return false; // exponents may overflow f64: serde_json decides
        }
        self.i - start <= MAX_NUMBER_LEN
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
            "1e5",
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
        fn accepted_arbitrary_strings_are_valid_for_serde(s in "[\\[\\]{}\",:0-9.\\-a-z \\\\]{0,24}") {
            if surely_valid(s.as_bytes()) {
                prop_assert!(serde_ok(s.as_bytes()), "{:?}", s);
            }
        }
    }
}
