//! Compaction (names → indices, with type checks) and expansion back.
//!
//! Records are read with a borrowing serde visitor instead of going through
//! `serde_json::Value`: keys and strings stay slices of the input, and
//! expansion copies each stored value's text untouched, so a float keeps
//! exactly the digits that were stored.

use std::borrow::Cow;
use std::fmt;
use std::io::Write;

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::flat_json::{Shape, for_each_entry};

use super::{FieldType, Schema, SchemaError};

/// One value of a flat record, as parsed.
enum Scalar<'a> {
    Null,
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    Str(Cow<'a, str>),
    Array,
    Object,
}

impl Scalar<'_> {
    fn describe(&self) -> String {
        match self {
            Scalar::Null => "null".into(),
            Scalar::Bool(b) => format!("a boolean ({b})"),
            Scalar::I64(v) => format!("a number ({v})"),
            Scalar::U64(v) => format!("a number ({v})"),
            Scalar::F64(v) => format!("a number ({v})"),
            Scalar::Str(_) => "a string".into(),
            Scalar::Array => "an array".into(),
            Scalar::Object => "an object".into(),
        }
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::I64(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::U64(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::F64(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_string())))
    }
    fn visit_string<E>(self, v: String) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Str(Cow::Owned(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Array)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar<'de>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Object)
    }
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

/// A value that passed its field's type check, ready to be written.
enum Checked<'a> {
    Int(i128),
    Float(f64),
    Bool(bool),
    Str(Cow<'a, str>),
}

fn check_value<'a>(
    name: &str,
    ty: FieldType,
    value: Scalar<'a>,
) -> Result<Checked<'a>, SchemaError> {
    let wrong = |value: &Scalar| SchemaError::WrongType {
        field: name.to_string(),
        expected: ty,
        found: value.describe(),
    };
    let int = |v: i128, shown: String| match ty.int_range() {
        Some((lo, hi)) if v < lo || v > hi => Err(SchemaError::OutOfRange {
            field: name.to_string(),
            expected: ty,
            value: shown,
        }),
        _ => Ok(Checked::Int(v)),
    };
    match (ty, value) {
        (_, Scalar::Object) => Err(SchemaError::NestedObject(name.to_string())),
        (FieldType::Bool, Scalar::Bool(b)) => Ok(Checked::Bool(b)),
        (FieldType::String, Scalar::Str(s)) => Ok(Checked::Str(s)),
        (ty, Scalar::I64(v)) if ty.is_numeric() => int(v.into(), v.to_string()),
        (ty, Scalar::U64(v)) if ty.is_numeric() => int(v.into(), v.to_string()),
        (FieldType::Float32, Scalar::F64(v)) if !(v as f32).is_finite() => {
            Err(SchemaError::NonFinite {
                field: name.to_string(),
                expected: ty,
                value: v.to_string(),
            })
        }
        (FieldType::Float32 | FieldType::Float64, Scalar::F64(v)) => Ok(Checked::Float(v)),
        // A whole float (`5.0`) is accepted by an integer field and stored
        // as the integer: clients that only have doubles can still write.
        (ty, Scalar::F64(v)) if ty.int_range().is_some() && v.fract() == 0.0 => {
            int(v as i128, v.to_string())
        }
        (_, other) => Err(wrong(&other)),
    }
}

fn write_checked(out: &mut Vec<u8>, value: &Checked) {
    // Writing to a Vec cannot fail.
    let _ = match value {
        Checked::Int(v) => write!(out, "{v}"),
        Checked::Float(v) => serde_json::to_writer(&mut *out, v).map_err(std::io::Error::other),
        Checked::Bool(b) => write!(out, "{b}"),
        Checked::Str(s) => serde_json::to_writer(&mut *out, &**s).map_err(std::io::Error::other),
    };
}

impl Schema {
    /// Position in `fields` of a record key: a decimal index (compact
    /// input) or a field name.
    fn position(&self, key: &str) -> Option<usize> {
        if !key.is_empty() && key.bytes().all(|b| b.is_ascii_digit()) {
            let index: u32 = key.parse().ok()?;
            self.by_index.get(&index).copied()
        } else {
            self.by_name.get(key).copied()
        }
    }

    /// Validates a flat JSON record (keys by name or by index, fields
    /// optional) and returns its compact form: `{"1":72.5,"2":"room-1"}`,
    /// keys in index order.
    pub fn compact(&self, record: &[u8]) -> Result<Vec<u8>, SchemaError> {
        let mut out = Vec::with_capacity(record.len());
        self.compact_into(record, &mut out)?;
        Ok(out)
    }

    /// `compact`, appending to `out`; on error `out` is left as it was.
    pub fn compact_into(&self, record: &[u8], out: &mut Vec<u8>) -> Result<(), SchemaError> {
        let mut entries = Vec::new();
        match for_each_entry(record, |key, value: Scalar| entries.push((key, value))) {
            Ok(Shape::Object) => {}
            Ok(Shape::Other(kind)) => return Err(SchemaError::NotAnObject(kind)),
            Err(e) => return Err(SchemaError::InvalidJson(e)),
        }
        let mut checked = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            if matches!(value, Scalar::Object) {
                return Err(SchemaError::NestedObject(key.into_owned()));
            }
            let pos = self
                .position(&key)
                .ok_or_else(|| SchemaError::UnknownField(key.to_string()))?;
            let field = &self.fields[pos];
            checked.push((pos, check_value(&field.name, field.field_type, value)?));
        }
        checked.sort_unstable_by_key(|(pos, _)| *pos);
        if let Some(w) = checked.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(SchemaError::DuplicateField(
                self.fields[w[0].0].name.clone(),
            ));
        }
        out.push(b'{');
        for (i, (pos, value)) in checked.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let _ = write!(out, "\"{}\":", self.fields[*pos].index);
            write_checked(out, value);
        }
        out.push(b'}');
        Ok(())
    }

    /// The full form of a stored record: index keys replaced by names,
    /// values copied byte for byte. Data that is not a compact object
    /// (written by another tool, say) is returned unchanged rather than
    /// failing the read; keys that are not indices of this schema stay.
    pub fn expand<'a>(&self, stored: &'a [u8]) -> Cow<'a, [u8]> {
        let mut out = Vec::with_capacity(stored.len() * 2);
        if self.expand_into(stored, &mut out) {
            Cow::Owned(out)
        } else {
            Cow::Borrowed(stored)
        }
    }

    /// `expand` appending to `out`; false (and `out` untouched) when
    /// `stored` is not a JSON object.
    pub fn expand_into(&self, stored: &[u8], out: &mut Vec<u8>) -> bool {
        let before = out.len();
        out.push(b'{');
        let shape = for_each_entry(stored, |key, raw: &RawValue| {
            if out.len() > before + 1 {
                out.push(b',');
            }
            match self.position(&key) {
                Some(pos) if key.bytes().all(|b| b.is_ascii_digit()) => {
                    out.extend_from_slice(self.quoted_names[pos].as_bytes())
                }
                _ => {
                    let _ = serde_json::to_writer(&mut *out, &*key);
                }
            }
            out.push(b':');
            out.extend_from_slice(raw.get().as_bytes());
        });
        if matches!(shape, Ok(Shape::Object)) {
            out.push(b'}');
            true
        } else {
            out.truncate(before);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Field, FieldType};
    use super::*;
    use FieldType::{Bool, Float32, Float64, Int8, Int64, Uint64};

    fn schema() -> Schema {
        Schema::new(
            1,
            vec![
                Field::new(1, "temp", Float64),
                Field::new(2, "room", FieldType::String),
                Field::new(3, "level", Int8),
                Field::new(4, "ok", Bool),
                Field::new(5, "ratio", Float32),
                Field::new(10, "count", Uint64),
                Field::new(11, "cpu.pct", Int64),
            ],
        )
        .unwrap()
    }

    fn compact(s: &str) -> Result<String, SchemaError> {
        schema()
            .compact(s.as_bytes())
            .map(|v| String::from_utf8(v).unwrap())
    }

    #[test]
    fn compacts_in_index_order_and_expands_back() {
        let full = r#"{"cpu.pct":-3,"room":"r\"1","temp":72.5,"count":18446744073709551615,"ok":true,"level":5}"#;
        let c = compact(full).unwrap();
        assert_eq!(
            c,
            r#"{"1":72.5,"2":"r\"1","3":5,"4":true,"10":18446744073709551615,"11":-3}"#
        );
        let e = schema().expand(c.as_bytes()).into_owned();
        assert_eq!(
            String::from_utf8(e).unwrap(),
            r#"{"temp":72.5,"room":"r\"1","level":5,"ok":true,"count":18446744073709551615,"cpu.pct":-3}"#
        );
        // Already compact, or mixed, input is accepted.
        assert_eq!(compact(&c).unwrap(), c);
        assert_eq!(
            compact(r#"{"1":1,"room":"x"}"#).unwrap(),
            r#"{"1":1,"2":"x"}"#
        );
        assert_eq!(compact("{}").unwrap(), "{}");
    }

    #[test]
    fn numbers_keep_their_kind() {
        assert_eq!(compact(r#"{"temp":72}"#).unwrap(), r#"{"1":72}"#);
        assert_eq!(compact(r#"{"temp":0.1}"#).unwrap(), r#"{"1":0.1}"#);
        assert_eq!(compact(r#"{"ratio":0.1}"#).unwrap(), r#"{"5":0.1}"#);
        assert_eq!(compact(r#"{"level":-128.0}"#).unwrap(), r#"{"3":-128}"#);
        assert_eq!(compact(r#"{"temp":1e300}"#).unwrap(), r#"{"1":1e+300}"#);
    }

    #[test]
    fn record_errors_name_the_field() {
        let err = |s: &str| compact(s).unwrap_err();
        let named = |e: SchemaError, name: &str| {
            assert!(e.to_string().contains(&format!("'{name}'")), "{e}");
            e
        };
        assert!(matches!(
            named(err(r#"{"nope":1}"#), "nope"),
            SchemaError::UnknownField(_)
        ));
        assert!(matches!(
            named(err(r#"{"99":1}"#), "99"),
            SchemaError::UnknownField(_)
        ));
        assert!(matches!(
            named(err(r#"{"cpu":{"pct":1}}"#), "cpu"),
            SchemaError::NestedObject(_)
        ));
        assert!(matches!(
            named(err(r#"{"temp":{}}"#), "temp"),
            SchemaError::NestedObject(_)
        ));
        for bad in [r#""7""#, "true", "null", "[1]"] {
            let e = named(err(&format!(r#"{{"temp":{bad}}}"#)), "temp");
            assert!(
                matches!(
                    e,
                    SchemaError::WrongType {
                        expected: Float64,
                        ..
                    }
                ),
                "{e}"
            );
        }
        assert!(matches!(
            named(err(r#"{"room":7}"#), "room"),
            SchemaError::WrongType { .. }
        ));
        assert!(matches!(
            named(err(r#"{"ok":1}"#), "ok"),
            SchemaError::WrongType { .. }
        ));
        assert!(matches!(
            named(err(r#"{"level":1.5}"#), "level"),
            SchemaError::WrongType { .. }
        ));
        for v in ["128", "-129", "1e3"] {
            let e = named(err(&format!(r#"{{"level":{v}}}"#)), "level");
            assert!(
                matches!(e, SchemaError::OutOfRange { expected: Int8, .. }),
                "{e}"
            );
        }
        assert!(matches!(
            named(err(r#"{"count":-1}"#), "count"),
            SchemaError::OutOfRange { .. }
        ));
        assert!(matches!(
            named(err(r#"{"cpu.pct":9223372036854775808}"#), "cpu.pct"),
            SchemaError::OutOfRange { .. }
        ));
        let e = named(err(r#"{"ratio":1e39}"#), "ratio");
        assert!(
            matches!(
                e,
                SchemaError::NonFinite {
                    expected: Float32,
                    ..
                }
            ),
            "{e}"
        );
        assert!(matches!(
            named(err(r#"{"temp":1,"1":2}"#), "temp"),
            SchemaError::DuplicateField(_)
        ));
        assert!(matches!(err("[1]"), SchemaError::NotAnObject("an array")));
        assert!(matches!(err("{"), SchemaError::InvalidJson(_)));
        assert!(matches!(
            err(r#"{"temp":1} x"#),
            SchemaError::InvalidJson(_)
        ));
    }

    #[test]
    fn expand_leaves_foreign_data_alone() {
        let s = schema();
        assert_eq!(&*s.expand(b"[1,2]"), b"[1,2]");
        assert_eq!(&*s.expand(b"not json"), b"not json");
        assert_eq!(
            &*s.expand(br#"{"1":1,"77":2,"x":3}"#),
            br#"{"temp":1,"77":2,"x":3}"#
        );
    }
}
