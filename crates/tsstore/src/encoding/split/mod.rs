//! How a record becomes a template (its keys, in order) and value texts,
//! the rows of a frame's columns (`columns`).
//!
//! A JSON store's batch insert splits each record in the same pass that
//! checks it is JSON (`Splitter`, over `json_scan::compact_object`) and
//! lays its values out in columns (`laid::Laid`), so the framer only
//! copies runs of rows: splitting had been a third of the framer's time,
//! the thread that bounds batch ingest, and copying values one by one a
//! quarter of the rest. Records not
//! split then (a lone `put`, records read back from the staging ring on
//! open, schema records, anything the fast check is unsure of) are split
//! by the framer (`split_as`, `split_into`), which also takes records
//! spaced as `{"k": v, "k": v}` (Python's `json.dumps`). Either way a
//! record is split only if it is written exactly as its template writes
//! it, so putting its pieces back together gives the very same bytes.

pub mod laid;

use std::sync::Arc;

use laid::Laid;

/// Most keys a template has; wider records are raw.
pub const MAX_KEYS: usize = 256;

/// A record shape: its keys as written, in order. Shared (`Arc`) by the
/// records split with it, so the framer knows them the same without
/// comparing keys.
#[derive(Debug, PartialEq, Eq)]
pub struct Template {
    pub keys: Box<[Box<[u8]>]>,
}

/// What the framer knows of a record's split.
#[derive(Debug, Clone, Copy)]
pub enum Split<'a> {
    /// Not looked at: the framer splits it.
    Unknown,
    /// Not a flat object written compactly: kept whole.
    Whole,
    /// Its template, and the row its values are laid out in.
    Laid(&'a Template, &'a Laid, u32),
}

/// A record as the framer packs it.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    pub timestamp: i64,
    pub payload: &'a [u8],
    pub split: Split<'a>,
}

impl<'a> Record<'a> {
    /// A record not split yet.
    pub fn new(timestamp: i64, payload: &'a [u8]) -> Record<'a> {
        Record {
            timestamp,
            payload,
            split: Split::Unknown,
        }
    }
}

/// What `Splitter::check_json` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    /// Valid JSON, split with `Splitter::template` (its ends appended).
    Split,
    /// Valid JSON, to be kept whole (more keys than a template takes).
    Whole,
    /// Not sure: the caller checks it the usual way.
    Unsure,
}

/// A frame template: a record shape's keys as written, in order, and how
/// its pairs are spaced. `spaced`: written `{"k": v, "k": v}` (the
/// spacing of Python's `json.dumps`), else `{"k":v,"k":v}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FrameTemplate<'a> {
    pub keys: Vec<&'a [u8]>,
    pub spaced: bool,
}

/// In a body's templates, a key count of at least this says the template
/// is spaced (`FrameTemplate::spaced`), with the count less this many
/// keys; counts below it (every count before spaced templates, at most
/// `MAX_KEYS`) are compact templates.
pub const SPACED_KEYS: usize = 1024;
const _: () = assert!(MAX_KEYS < SPACED_KEYS);

impl<'a> FrameTemplate<'a> {
    /// Writes the template as a body's templates section holds it.
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        let marker = if self.spaced { SPACED_KEYS } else { 0 };
        crate::encoding::varint::put_varint(out, (self.keys.len() + marker) as u64);
        for k in &self.keys {
            crate::encoding::varint::put_varint(out, k.len() as u64);
            out.extend_from_slice(k);
        }
    }

    /// Reads a template written by `write`.
    pub(crate) fn read(
        c: &mut crate::encoding::varint::Cursor<'a>,
    ) -> Result<FrameTemplate<'a>, crate::encoding::varint::BodyError> {
        // Not `count`: the marker may exceed what is left of the body.
        let count = c.varint()?;
        let (k, spaced) = match count.checked_sub(SPACED_KEYS as u64) {
            Some(k) => (k, true),
            None => (count, false),
        };
        if k > MAX_KEYS as u64 || (spaced && k == 0) {
            return Err(crate::encoding::varint::BodyError("bad key count"));
        }
        let k = k as usize;
        let mut keys = Vec::with_capacity(k);
        for _ in 0..k {
            let len = c.count()?;
            keys.push(c.bytes(len)?);
        }
        Ok(FrameTemplate { keys, spaced })
    }

    /// Rebuilds a record of this template from its values into `out`.
    pub(crate) fn rebuild(&self, out: &mut Vec<u8>, values: &[&[u8]]) {
        for (j, (k, v)) in self.keys.iter().zip(values).enumerate() {
            self.separator(out, j, k);
            out.extend_from_slice(v);
        }
        out.extend_from_slice(closing(self.keys.len()));
    }

    /// What comes before the value of key `j` (`key`): `{"key":` for the
    /// first, `,"key":` after it (spaced: `{"key": `, `, "key": `).
    pub(crate) fn separator(&self, out: &mut Vec<u8>, j: usize, key: &[u8]) {
        out.extend_from_slice(match (j, self.spaced) {
            (0, _) => b"{\"",
            (_, false) => b",\"",
            (_, true) => b", \"",
        });
        out.extend_from_slice(key);
        out.extend_from_slice(if self.spaced { b"\": " } else { b"\":" });
    }
}

/// What ends a templated record of `pairs` keys and values.
pub(crate) fn closing(pairs: usize) -> &'static [u8] {
    if pairs == 0 { b"{}" } else { b"}" }
}

/// Templates a `Splitter` remembers besides the last one: records of a
/// few interleaved shapes (sensors sharing a store) share their templates
/// instead of making one each.
const RECENT_TEMPLATES: usize = 8;

/// Splits JSON records as an insert checks them. Remembers the last
/// template (consecutive records mostly share it) and a few before it.
#[derive(Debug, Default)]
pub struct Splitter {
    template: Option<Arc<Template>>,
    /// Most recent last; at most `RECENT_TEMPLATES`.
    recent: Vec<Arc<Template>>,
    keys: Vec<(u32, u32)>,
}

impl Splitter {
    /// Starts from a template a previous insert found.
    pub fn with_template(template: Option<Arc<Template>>) -> Splitter {
        Splitter {
            template,
            ..Splitter::default()
        }
    }

    /// The template of the last record split.
    pub fn template(&self) -> Option<&Arc<Template>> {
        self.template.as_ref()
    }

    pub fn into_template(self) -> Option<Arc<Template>> {
        self.template
    }

    /// Checks `p` as a JSON payload and, in the same pass, splits it if
    /// it is a compact flat object: its values' ends are appended to
    /// `ends` (relative to `p`), and its template is `template()`.
    pub fn check_json(&mut self, p: &[u8], ends: &mut Vec<u32>) -> Checked {
        use crate::json_scan::{Compact, compact_object};
        let mark = ends.len();
        let expect = self.template.as_ref().map_or(&[][..], |t| &t.keys[..]);
        match compact_object(p, expect, &mut self.keys, ends) {
            Compact::No => {
                ends.truncate(mark);
                Checked::Unsure
            }
            _ if self.keys.len() > MAX_KEYS => {
                ends.truncate(mark);
                Checked::Whole
            }
            Compact::Expected => Checked::Split,
            Compact::Keys => {
                self.switch_to_keys_of(p);
                Checked::Split
            }
        }
    }

    /// Makes the template of the keys just found (`self.keys`, in `p`)
    /// the current one: a recent one if it has them, else a new one.
    fn switch_to_keys_of(&mut self, p: &[u8]) {
        let key = |&(a, b): &(u32, u32)| &p[a as usize..b as usize];
        let found = self.recent.iter().rposition(|t| {
            t.keys.len() == self.keys.len()
                && t.keys
                    .iter()
                    .zip(&self.keys)
                    .all(|(k, span)| **k == *key(span))
        });
        let template = match found {
            Some(i) => self.recent.remove(i),
            None => Arc::new(Template {
                keys: self.keys.iter().map(|span| key(span).into()).collect(),
            }),
        };
        if let Some(last) = self.template.replace(Arc::clone(&template))
            && !Arc::ptr_eq(&last, &template)
        {
            self.recent.retain(|t| !Arc::ptr_eq(t, &last));
            self.recent.push(last);
        }
        if self.recent.len() > RECENT_TEMPLATES {
            self.recent.remove(0);
        }
    }
}

/// Splits a flat object written as `{"k":v,...}` or `{"k": v, ...}`
/// (keys without escapes) into its keys (into `keys`, cleared first) and
/// value texts (appended to `values`); the spacing, or `None` for
/// anything else, after which `values` may hold some of its values (the
/// caller truncates). Spaced is tried when the first `":` is followed by
/// a space, and compact after it fails (a compact record's values may
/// start with spaces: they are part of the value text).
pub(super) fn split_into<'a>(
    p: &'a [u8],
    keys: &mut Vec<&'a [u8]>,
    values: &mut Vec<&'a [u8]>,
) -> Option<bool> {
    let mark = values.len();
    let spaced = p
        .iter()
        .position(|&b| b == b':')
        .is_some_and(|at| at > 0 && p[at - 1] == b'"' && p.get(at + 1) == Some(&b' '));
    if spaced && split_keys(p, true, keys, values) {
        return Some(true);
    }
    values.truncate(mark);
    split_keys(p, false, keys, values).then_some(false)
}

fn split_keys<'a>(
    p: &'a [u8],
    spaced: bool,
    keys: &mut Vec<&'a [u8]>,
    values: &mut Vec<&'a [u8]>,
) -> bool {
    keys.clear();
    if p.len() < 2 || p[0] != b'{' || p[p.len() - 1] != b'}' || p == b"{}" {
        return false;
    }
    let (colon, comma): (&[u8], &[u8]) = if spaced {
        (b"\": ", b", ")
    } else {
        (b"\":", b",")
    };
    let mut i = 1;
    loop {
        if p.get(i) != Some(&b'"') {
            return false;
        }
        let start = i + 1;
        let Some(len) = p[start..].iter().position(|&b| b == b'"' || b == b'\\') else {
            return false;
        };
        if !p[start + len..].starts_with(colon) {
            return false;
        }
        keys.push(&p[start..start + len]);
        i = start + len + colon.len();
        let Some(end) = value_end(p, i) else {
            return false;
        };
        if spaced && matches!(p[i], b' ' | b'\t' | b'\n' | b'\r') {
            // More space than the template's: not this spacing.
            return false;
        }
        values.push(&p[i..end]);
        if keys.len() > MAX_KEYS {
            return false;
        }
        if end + 1 == p.len() && p[end] == b'}' {
            return true;
        }
        if !p[end..].starts_with(comma) {
            return false;
        }
        i = end + comma.len();
    }
}

/// Splits `p` into `values` (appended) if it is written as `template`
/// writes it, with exactly its keys, in order: the check for a record
/// shaped like the one before, without collecting its keys. False for
/// anything else, after which `values` may hold some of its values (the
/// caller truncates).
pub(super) fn split_as<'a>(
    p: &'a [u8],
    template: &FrameTemplate<'_>,
    values: &mut Vec<&'a [u8]>,
) -> bool {
    let (colon, comma): (&[u8], &[u8]) = if template.spaced {
        (b"\": ", b", \"")
    } else {
        (b"\":", b",\"")
    };
    let mut i = 0;
    for (j, key) in template.keys.iter().enumerate() {
        // `{"` (first) or `,"` / `, "`, the key, `":` / `": `, the value.
        let open: &[u8] = if j == 0 { b"{\"" } else { comma };
        let end = i + open.len() + key.len() + colon.len();
        let Some(head) = p.get(i..end) else {
            return false;
        };
        if !head.starts_with(open)
            || head[open.len()..open.len() + key.len()] != **key
            || !head.ends_with(colon)
        {
            return false;
        }
        if template.spaced && matches!(p.get(end), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            return false;
        }
        let Some(value) = value_end(p, end) else {
            return false;
        };
        values.push(&p[end..value]);
        i = value;
    }
    i + 1 == p.len() && p[i] == b'}'
}

/// Where the JSON value starting at `i` ends: before the `,` or `}` that
/// follows it at depth 0 (strings and nesting skipped whole). Any split
/// it makes rebuilds exactly; it only has to find the usual ones fast.
fn value_end(p: &[u8], i: usize) -> Option<usize> {
    // Judged by its first byte after any whitespace, as JSON reads it.
    let first = p
        .get(i..)?
        .iter()
        .find(|&&b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))?;
    match *first {
        b'"' | b'{' | b'[' => nested_end(p, i),
        // A number or a literal: up to the next separator.
        _ => {
            let len = p[i..].iter().position(|&b| b == b',' || b == b'}')?;
            (len > 0).then_some(i + len)
        }
    }
}

/// `value_end` for a string, an object or an array.
fn nested_end(p: &[u8], mut i: usize) -> Option<usize> {
    let start = i;
    let mut depth = 0u32;
    while i < p.len() {
        match p[i] {
            b'"' => {
                i += 1;
                loop {
                    i += p.get(i..)?.iter().position(|&b| b == b'"' || b == b'\\')?;
                    if p[i] == b'"' {
                        break;
                    }
                    i += 2;
                }
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' if depth > 0 => depth -= 1,
            b',' | b'}' if depth == 0 => return (i > start).then_some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleaved_shapes_share_their_templates() {
        let mut splitter = Splitter::default();
        let mut ends = Vec::new();
        let mut seen: Vec<Arc<Template>> = Vec::new();
        for i in 0..40 {
            let p = match i % 3 {
                0 => format!(r#"{{"t":{i},"h":1}}"#),
                1 => format!(r#"{{"rain":{i}}}"#),
                _ => format!(r#"{{"t":{i},"room":"lab"}}"#),
            };
            assert_eq!(splitter.check_json(p.as_bytes(), &mut ends), Checked::Split);
            let t = splitter.template().unwrap();
            if !seen.iter().any(|s| Arc::ptr_eq(s, t)) {
                seen.push(Arc::clone(t));
            }
        }
        assert_eq!(seen.len(), 3, "one template per shape");
        assert_eq!(
            splitter.check_json(br#"{"t":1e500}"#, &mut ends),
            Checked::Unsure
        );
        let wide: Vec<String> = (0..=MAX_KEYS).map(|k| format!("\"k{k}\":1")).collect();
        let wide = format!("{{{}}}", wide.join(","));
        let before = ends.len();
        assert_eq!(
            splitter.check_json(wide.as_bytes(), &mut ends),
            Checked::Whole
        );
        assert_eq!(ends.len(), before, "a record kept whole leaves no ends");
    }
}
