//! Lines and points of the InfluxDB line protocol, as InfluxDB 1.6 reads
//! them (its error messages too), with two liberties: `u` (unsigned)
//! integers, which 2.x takes, and a line ending in `\r\n`, which 1.6
//! refuses as a bad timestamp.

use std::borrow::Cow;

/// A field's value as written.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue<'a> {
    /// Finite, always (the syntax has no NaN or infinity).
    Float(f64),
    Integer(i64),
    Unsigned(u64),
    String(Cow<'a, str>),
    Boolean(bool),
}

/// One line: `measurement[,tag=value...] field=value[,...] [timestamp]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Point<'a> {
    pub measurement: Cow<'a, str>,
    /// As written (not sorted); keys unique.
    pub tags: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    /// As written, keys unique: a key written twice keeps its last value,
    /// as InfluxDB does.
    pub fields: Vec<(Cow<'a, str>, FieldValue<'a>)>,
    /// As written, in the unit of the write's precision.
    pub timestamp: Option<i64>,
}

/// The lines of a body that hold points, with their 1-based numbers:
/// blank lines and `#` comments are skipped, leading spaces and a trailing
/// `\r` trimmed. A newline inside a quoted string field does not end a
/// line.
pub fn lines(body: &[u8]) -> Lines<'_> {
    Lines {
        body,
        at: 0,
        number: 0,
    }
}

/// See `lines`.
pub struct Lines<'a> {
    body: &'a [u8],
    at: usize,
    number: usize,
}

impl<'a> Iterator for Lines<'a> {
    type Item = (usize, &'a [u8]);

    fn next(&mut self) -> Option<(usize, &'a [u8])> {
        while self.at < self.body.len() {
            let rest = &self.body[self.at..];
            // Most lines have no quote: the next newline ends them.
            let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
            let len = if memchr::memchr(b'"', &rest[..end]).is_none() {
                end
            } else {
                line_length(rest)
            };
            self.number += 1;
            let number = self.number;
            let text = &rest[..len];
            // A newline inside a string counts as a line, for the numbers
            // of the lines after it to match an editor's.
            if len > end {
                self.number += memchr::memchr_iter(b'\n', text).count();
            }
            self.at += len + 1;
            let start = text
                .iter()
                .position(|&b| b != b' ' && b != b'\t')
                .unwrap_or(text.len());
            let mut text = &text[start..];
            if let Some(t) = text.strip_suffix(b"\r") {
                text = t;
            }
            if text.is_empty() || text[0] == b'#' {
                continue;
            }
            return Some((number, text));
        }
        None
    }
}

/// Bytes up to the newline that ends the line starting `rest`: one that is
/// not inside a quoted field value (quotes count after the first unescaped
/// space, where fields begin).
fn line_length(rest: &[u8]) -> usize {
    let mut in_fields = false;
    let mut quoted = false;
    let mut i = 0;
    while i < rest.len() {
        match rest[i] {
            b'\\' => {
                i += 2;
                continue;
            }
            b'\n' if !quoted => return i,
            b' ' if !in_fields => in_fields = true,
            b'"' if in_fields => quoted = !quoted,
            _ => {}
        }
        i += 1;
    }
    rest.len()
}

/// Why a line is refused, in InfluxDB 1.6's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("invalid UTF-8")]
    InvalidUtf8,
    #[error("missing measurement")]
    MissingMeasurement,
    #[error("missing tag key")]
    MissingTagKey,
    #[error("missing tag value")]
    MissingTagValue,
    #[error("duplicate tags")]
    DuplicateTags,
    #[error("missing fields")]
    MissingFields,
    #[error("invalid field format")]
    InvalidFieldFormat,
    #[error("missing field key")]
    MissingFieldKey,
    #[error("bad timestamp")]
    BadTimestamp,
    #[error("timestamp out of range")]
    TimestampOutOfRange,
    #[error("unbalanced quotes")]
    UnbalancedQuotes,
    #[error("missing field value")]
    MissingFieldValue,
    #[error("invalid number")]
    InvalidNumber,
    #[error("invalid boolean")]
    InvalidBoolean,
    #[error("integer value out of range")]
    IntegerOutOfRange,
    #[error("unsigned value out of range")]
    UnsignedOutOfRange,
    #[error("invalid float")]
    InvalidFloat,
}

impl Default for Point<'_> {
    fn default() -> Self {
        Point {
            measurement: Cow::Borrowed(""),
            tags: Vec::new(),
            fields: Vec::new(),
            timestamp: None,
        }
    }
}

/// Parses one line (as `lines` gives it).
pub fn parse_line(line: &[u8]) -> Result<Point<'_>, LineError> {
    let mut point = Point::default();
    parse_line_into(line, &mut point)?;
    Ok(point)
}

/// Parses one line into `point`, whose vectors are reused (a body's lines
/// one after the other cost no allocation then). On error `point` holds
/// nothing of use.
pub fn parse_line_into<'a>(line: &'a [u8], point: &mut Point<'a>) -> Result<(), LineError> {
    point.tags.clear();
    point.fields.clear();
    point.timestamp = None;
    let text = std::str::from_utf8(line).map_err(|_| LineError::InvalidUtf8)?;
    let mut p = Parser { s: text, at: 0 };
    let measurement = p.token(b", ", MEASUREMENT_ESCAPES);
    if measurement.is_empty() {
        return Err(LineError::MissingMeasurement);
    }
    point.measurement = measurement;
    let tags = &mut point.tags;
    while p.peek() == Some(b',') {
        p.at += 1;
        let key = p.token(b"=, ", KEY_ESCAPES);
        if p.peek() != Some(b'=') {
            return Err(if key.is_empty() {
                LineError::MissingTagKey
            } else {
                LineError::MissingTagValue
            });
        }
        p.at += 1;
        let value = p.token(b", ", KEY_ESCAPES);
        if key.is_empty() {
            return Err(LineError::MissingTagKey);
        }
        if value.is_empty() {
            return Err(LineError::MissingTagValue);
        }
        if tags.iter().any(|(k, _)| *k == key) {
            return Err(LineError::DuplicateTags);
        }
        tags.push((key, value));
    }
    if p.skip_spaces() == 0 || p.at_end() {
        return Err(LineError::MissingFields);
    }
    let fields = &mut point.fields;
    loop {
        let key = p.token(b"=, ", KEY_ESCAPES);
        if p.peek() != Some(b'=') {
            return Err(LineError::InvalidFieldFormat);
        }
        if key.is_empty() {
            return Err(LineError::MissingFieldKey);
        }
        p.at += 1;
        let value = p.field_value()?;
        match fields.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => fields.push((key, value)),
        }
        match p.peek() {
            Some(b',') => p.at += 1,
            _ => break,
        }
    }
    p.skip_spaces();
    point.timestamp = match p.rest() {
        "" => None,
        rest => {
            let digits = rest.trim_end_matches([' ', '\t']);
            let body = digits.strip_prefix('-').unwrap_or(digits);
            if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit()) {
                return Err(LineError::BadTimestamp);
            }
            Some(
                digits
                    .parse::<i64>()
                    .map_err(|_| LineError::TimestampOutOfRange)?,
            )
        }
    };
    Ok(())
}

/// What a backslash escapes in a measurement; in tag keys and values and
/// field keys (`=` too). Before anything else it is a backslash.
const MEASUREMENT_ESCAPES: &[u8] = b", ";
const KEY_ESCAPES: &[u8] = b",= ";

struct Parser<'a> {
    s: &'a str,
    at: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.at).copied()
    }

    fn at_end(&self) -> bool {
        self.at >= self.s.len()
    }

    fn rest(&self) -> &'a str {
        &self.s[self.at..]
    }

    fn skip_spaces(&mut self) -> usize {
        let start = self.at;
        while self.peek() == Some(b' ') {
            self.at += 1;
        }
        self.at - start
    }

    /// Text up to the first unescaped byte of `stops`, unescaped.
    fn token(&mut self, stops: &[u8], escapes: &[u8]) -> Cow<'a, str> {
        let bytes = self.s.as_bytes();
        let start = self.at;
        let mut owned: Option<String> = None;
        let mut copied = start;
        while let Some(&b) = bytes.get(self.at) {
            if b == b'\\' && bytes.get(self.at + 1).is_some_and(|n| escapes.contains(n)) {
                let o = owned.get_or_insert_with(String::new);
                o.push_str(&self.s[copied..self.at]);
                self.at += 1;
                copied = self.at;
                self.at += 1;
                continue;
            }
            if stops.contains(&b) {
                break;
            }
            self.at += 1;
        }
        match owned {
            Some(mut o) => {
                o.push_str(&self.s[copied..self.at]);
                Cow::Owned(o)
            }
            None => Cow::Borrowed(&self.s[start..self.at]),
        }
    }

    fn field_value(&mut self) -> Result<FieldValue<'a>, LineError> {
        if self.peek() == Some(b'"') {
            return self.string().map(FieldValue::String);
        }
        let start = self.at;
        while let Some(b) = self.peek() {
            if b == b',' || b == b' ' {
                break;
            }
            self.at += 1;
        }
        scalar(&self.s[start..self.at])
    }

    /// A quoted string: `\"` and `\\` are escapes, any other backslash is
    /// itself.
    fn string(&mut self) -> Result<Cow<'a, str>, LineError> {
        let bytes = self.s.as_bytes();
        self.at += 1;
        let start = self.at;
        let mut owned: Option<String> = None;
        let mut copied = start;
        loop {
            match bytes.get(self.at) {
                None => return Err(LineError::UnbalancedQuotes),
                Some(b'"') => break,
                Some(b'\\') if matches!(bytes.get(self.at + 1), Some(b'"' | b'\\')) => {
                    let o = owned.get_or_insert_with(String::new);
                    o.push_str(&self.s[copied..self.at]);
                    self.at += 1;
                    copied = self.at;
                    self.at += 1;
                }
                Some(_) => self.at += 1,
            }
        }
        let value = match owned {
            Some(mut o) => {
                o.push_str(&self.s[copied..self.at]);
                Cow::Owned(o)
            }
            None => Cow::Borrowed(&self.s[start..self.at]),
        };
        self.at += 1;
        match self.peek() {
            None | Some(b',' | b' ') => Ok(value),
            Some(_) => Err(LineError::InvalidFieldFormat),
        }
    }
}

/// A number or boolean field value.
fn scalar(text: &str) -> Result<FieldValue<'static>, LineError> {
    match text {
        "" => return Err(LineError::MissingFieldValue),
        "t" | "T" | "true" | "True" | "TRUE" => return Ok(FieldValue::Boolean(true)),
        "f" | "F" | "false" | "False" | "FALSE" => return Ok(FieldValue::Boolean(false)),
        _ => {}
    }
    match text.as_bytes()[0] {
        b'0'..=b'9' | b'-' | b'.' => {}
        // InfluxDB reads N as the start of NaN, which it refuses.
        b'N' | b'n' => return Err(LineError::InvalidNumber),
        _ => return Err(LineError::InvalidBoolean),
    }
    if let Some(digits) = text.strip_suffix('i') {
        if !is_integer(digits) {
            return Err(LineError::InvalidNumber);
        }
        return digits
            .parse()
            .map(FieldValue::Integer)
            .map_err(|_| LineError::IntegerOutOfRange);
    }
    if let Some(digits) = text.strip_suffix('u') {
        if !digits.bytes().all(|b| b.is_ascii_digit()) || digits.is_empty() {
            return Err(LineError::InvalidNumber);
        }
        return digits
            .parse()
            .map(FieldValue::Unsigned)
            .map_err(|_| LineError::UnsignedOutOfRange);
    }
    float(text)
}

fn is_integer(text: &str) -> bool {
    let body = text.strip_prefix('-').unwrap_or(text);
    !body.is_empty() && body.bytes().all(|b| b.is_ascii_digit())
}

/// `-?(d+\.?d*|\.d+)([eE][-+]?d+)?`: what Rust's parser takes besides
/// (`inf`, `NaN`, a leading `+`) is refused first.
fn float(text: &str) -> Result<FieldValue<'static>, LineError> {
    let b = text.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let int_digits = digits(b, &mut i);
    let mut frac_digits = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        frac_digits = digits(b, &mut i);
    }
    if int_digits + frac_digits == 0 {
        return Err(LineError::InvalidNumber);
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        if digits(b, &mut i) == 0 {
            return Err(LineError::InvalidFloat);
        }
    }
    if i != b.len() {
        return Err(LineError::InvalidNumber);
    }
    match text.parse::<f64>() {
        Ok(f) if f.is_finite() => Ok(FieldValue::Float(f)),
        _ => Err(LineError::InvalidNumber),
    }
}

fn digits(b: &[u8], i: &mut usize) -> usize {
    let start = *i;
    while b.get(*i).is_some_and(u8::is_ascii_digit) {
        *i += 1;
    }
    *i - start
}
