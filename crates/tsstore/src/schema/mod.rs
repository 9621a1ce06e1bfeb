//! Schema stores: typed flat records stored compact.
//!
//! A schema is a list of fields `{index, name, type}`. Records arrive as
//! flat JSON objects keyed by field name (or already by index), are checked
//! against the types and stored with each name replaced by its decimal
//! index, which is what makes schema stores smaller than JSON stores.
//! Evolution is append-only, so every record ever stored stays valid and
//! readable under the newest version; only that version is used.

mod codec;

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Most fields one schema may have; a bound on every per-record lookup table.
pub const MAX_FIELDS: usize = 1024;
/// Longest field name, in bytes.
pub const MAX_FIELD_NAME: usize = 128;

/// The value type of one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    Int8,
    Int16,
    Int32,
    Int64,
    Uint8,
    Uint16,
    Uint32,
    Uint64,
    Float32,
    Float64,
    Bool,
    String,
}

impl FieldType {
    pub const ALL: [FieldType; 12] = [
        FieldType::Int8,
        FieldType::Int16,
        FieldType::Int32,
        FieldType::Int64,
        FieldType::Uint8,
        FieldType::Uint16,
        FieldType::Uint32,
        FieldType::Uint64,
        FieldType::Float32,
        FieldType::Float64,
        FieldType::Bool,
        FieldType::String,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::Int8 => "int8",
            FieldType::Int16 => "int16",
            FieldType::Int32 => "int32",
            FieldType::Int64 => "int64",
            FieldType::Uint8 => "uint8",
            FieldType::Uint16 => "uint16",
            FieldType::Uint32 => "uint32",
            FieldType::Uint64 => "uint64",
            FieldType::Float32 => "float32",
            FieldType::Float64 => "float64",
            FieldType::Bool => "bool",
            FieldType::String => "string",
        }
    }

    /// The inclusive range of an integer type, as i128 so both signs fit.
    pub fn int_range(self) -> Option<(i128, i128)> {
        Some(match self {
            FieldType::Int8 => (i8::MIN.into(), i8::MAX.into()),
            FieldType::Int16 => (i16::MIN.into(), i16::MAX.into()),
            FieldType::Int32 => (i32::MIN.into(), i32::MAX.into()),
            FieldType::Int64 => (i64::MIN.into(), i64::MAX.into()),
            FieldType::Uint8 => (0, u8::MAX.into()),
            FieldType::Uint16 => (0, u16::MAX.into()),
            FieldType::Uint32 => (0, u32::MAX.into()),
            FieldType::Uint64 => (0, u64::MAX.into()),
            _ => return None,
        })
    }

    pub fn is_numeric(self) -> bool {
        !matches!(self, FieldType::Bool | FieldType::String)
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One field of a schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    /// Key of the field in compact records; ≥ 1 and never reused.
    pub index: u32,
    /// Name in full records; dots give structure (`cpu.pct`) without nesting.
    pub name: String,
    #[serde(rename = "type")]
    pub field_type: FieldType,
}

impl Field {
    pub fn new(index: u32, name: &str, field_type: FieldType) -> Field {
        Field {
            index,
            name: name.to_string(),
            field_type,
        }
    }
}

/// Everything that can be wrong with a schema or with a record checked
/// against one. Every message names the field at fault.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("this store has no schema yet: set one (PUT .../schema) before inserting")]
    NoSchema,
    #[error("only schema stores have a schema; this store's data type is {0}")]
    NotASchemaStore(&'static str),
    #[error("record is not valid JSON: {0}")]
    InvalidJson(#[source] serde_json::Error),
    #[error("a schema record must be a flat JSON object, not {0}")]
    NotAnObject(&'static str),
    #[error("unknown field '{0}': it is not in the schema")]
    UnknownField(String),
    #[error("field '{0}' appears more than once in the record (by name and by index counts twice)")]
    DuplicateField(String),
    #[error(
        "field '{0}' holds a nested object: schema records are flat, use dotted names such as '{0}.x'"
    )]
    NestedObject(String),
    #[error("field '{field}' must be {expected}, got {found}")]
    WrongType {
        field: String,
        expected: FieldType,
        found: String,
    },
    #[error("field '{field}' is {expected}, and {value} is out of its range")]
    OutOfRange {
        field: String,
        expected: FieldType,
        value: String,
    },
    #[error("field '{field}' is {expected}, and {value} is not a finite {expected}")]
    NonFinite {
        field: String,
        expected: FieldType,
        value: String,
    },
    #[error("a schema needs at least one field")]
    NoFields,
    #[error("a schema has at most {MAX_FIELDS} fields, this one has {0}")]
    TooManyFields(usize),
    #[error("field '{0}' has index 0: indices start at 1")]
    ZeroIndex(String),
    #[error("field name '{name}' is invalid: {reason}")]
    InvalidFieldName { name: String, reason: &'static str },
    #[error("field name '{0}' is used twice")]
    DuplicateName(String),
    #[error("field index {index} is used by both '{first}' and '{second}'")]
    DuplicateIndex {
        index: u32,
        first: String,
        second: String,
    },
    #[error(
        "field '{name}' (index {index}) is missing from the update: schemas are append-only, keep every existing field"
    )]
    FieldDropped { name: String, index: u32 },
    #[error(
        "field index {index} is '{from}' and cannot be renamed to '{to}': schemas are append-only"
    )]
    FieldRenamed {
        index: u32,
        from: String,
        to: String,
    },
    #[error("field '{name}' is {from} and cannot become {to}: schemas are append-only")]
    FieldRetyped {
        name: String,
        from: FieldType,
        to: FieldType,
    },
    #[error(
        "field '{name}' has index {from} and cannot move to index {to}: schemas are append-only"
    )]
    FieldReindexed { name: String, from: u32, to: u32 },
    #[error("schema.json is unreadable: {0}")]
    BadFile(#[source] SchemaFileError),
}

/// Why a store's `schema.json` cannot be used; each is a damaged or
/// foreign file, never a request the caller could change.
#[derive(Debug, thiserror::Error)]
pub enum SchemaFileError {
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    #[error("current_version {0} is not among its schemas")]
    NoCurrentVersion(u32),
    #[error("its current schema is invalid: {0}")]
    Invalid(Box<SchemaError>),
}

/// One version of a store's schema, with lookup tables for the codec.
#[derive(Debug, Clone)]
pub struct Schema {
    version: u32,
    /// Sorted by index.
    fields: Vec<Field>,
    by_name: HashMap<String, usize>,
    by_index: HashMap<u32, usize>,
    /// Each name as a JSON string literal with its quotes, for expansion.
    quoted_names: Vec<String>,
}

impl PartialEq for Schema {
    fn eq(&self, other: &Schema) -> bool {
        self.version == other.version && self.fields == other.fields
    }
}

impl Schema {
    /// Builds version `version` from `fields`, checking the definition:
    /// at least one field, indices ≥ 1, names and indices unique, names of
    /// `[A-Za-z0-9_-]` segments joined by dots and not all digits (a name
    /// of digits would read as an index in compact input).
    pub fn new(version: u32, fields: Vec<Field>) -> Result<Schema, SchemaError> {
        for f in &fields {
            check_field_name(&f.name)?;
        }
        Schema::build(version, fields)
    }

    /// `new` without the name rules, for schema files written by others.
    pub(crate) fn build(version: u32, mut fields: Vec<Field>) -> Result<Schema, SchemaError> {
        if fields.is_empty() {
            return Err(SchemaError::NoFields);
        }
        if fields.len() > MAX_FIELDS {
            return Err(SchemaError::TooManyFields(fields.len()));
        }
        fields.sort_by_key(|f| f.index);
        let mut by_name = HashMap::with_capacity(fields.len());
        let mut by_index = HashMap::with_capacity(fields.len());
        for (pos, f) in fields.iter().enumerate() {
            if f.index == 0 {
                return Err(SchemaError::ZeroIndex(f.name.clone()));
            }
            if by_name.insert(f.name.clone(), pos).is_some() {
                return Err(SchemaError::DuplicateName(f.name.clone()));
            }
            if let Some(first) = by_index.insert(f.index, pos) {
                return Err(SchemaError::DuplicateIndex {
                    index: f.index,
                    first: fields[first].name.clone(),
                    second: f.name.clone(),
                });
            }
        }
        let quoted_names = fields
            .iter()
            .map(|f| serde_json::Value::from(f.name.as_str()).to_string())
            .collect();
        Ok(Schema {
            version,
            fields,
            by_name,
            by_index,
            quoted_names,
        })
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    /// The fields, sorted by index.
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    pub fn field_by_name(&self, name: &str) -> Option<&Field> {
        self.by_name.get(name).map(|&i| &self.fields[i])
    }

    pub fn field_by_index(&self, index: u32) -> Option<&Field> {
        self.by_index.get(&index).map(|&i| &self.fields[i])
    }

    /// The next version with `fields`, which must keep every field of this
    /// one unchanged and may add fields with unused indices. `None` when
    /// `fields` adds nothing: the update is a no-op and no version is made.
    pub fn evolve(&self, fields: Vec<Field>) -> Result<Option<Schema>, SchemaError> {
        let next = Schema::new(self.version + 1, fields)?;
        for old in &self.fields {
            match next.field_by_index(old.index) {
                None => {
                    if let Some(moved) = next.field_by_name(&old.name) {
                        return Err(SchemaError::FieldReindexed {
                            name: old.name.clone(),
                            from: old.index,
                            to: moved.index,
                        });
                    }
                    return Err(SchemaError::FieldDropped {
                        name: old.name.clone(),
                        index: old.index,
                    });
                }
                Some(new) if new.name != old.name => {
                    return Err(match next.field_by_name(&old.name) {
                        Some(moved) => SchemaError::FieldReindexed {
                            name: old.name.clone(),
                            from: old.index,
                            to: moved.index,
                        },
                        None => SchemaError::FieldRenamed {
                            index: old.index,
                            from: old.name.clone(),
                            to: new.name.clone(),
                        },
                    });
                }
                Some(new) if new.field_type != old.field_type => {
                    return Err(SchemaError::FieldRetyped {
                        name: old.name.clone(),
                        from: old.field_type,
                        to: new.field_type,
                    });
                }
                Some(_) => {}
            }
        }
        Ok((next.fields.len() > self.fields.len()).then_some(next))
    }
}

/// The API shape of one version: `{"version": N, "fields": [...]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchemaDoc {
    pub version: u32,
    pub fields: Vec<Field>,
}

impl From<&Schema> for SchemaDoc {
    fn from(s: &Schema) -> SchemaDoc {
        SchemaDoc {
            version: s.version,
            fields: s.fields.clone(),
        }
    }
}

fn check_field_name(name: &str) -> Result<(), SchemaError> {
    let bad = |reason| {
        Err(SchemaError::InvalidFieldName {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > MAX_FIELD_NAME {
        return bad("it is longer than 128 bytes");
    }
    if name.bytes().all(|b| b.is_ascii_digit()) {
        return bad("it is all digits, which compact records use for indices");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
    {
        return bad("use letters, digits, '_', '-' and '.' only");
    }
    if name.split('.').any(str::is_empty) {
        return bad("dots must separate non-empty parts");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use FieldType::*;

    fn base() -> Schema {
        Schema::new(
            1,
            vec![
                Field::new(1, "temp", Float64),
                Field::new(2, "room", String),
            ],
        )
        .unwrap()
    }

    #[test]
    fn definition_errors_name_the_field() {
        let err = |fields| Schema::new(1, fields).unwrap_err();
        assert!(matches!(err(vec![]), SchemaError::NoFields));
        assert!(matches!(
            err(vec![Field::new(0, "a", Int8)]),
            SchemaError::ZeroIndex(name) if name == "a"
        ));
        assert!(matches!(
            err(vec![Field::new(1, "a", Int8), Field::new(2, "a", Bool)]),
            SchemaError::DuplicateName(name) if name == "a"
        ));
        let e = err(vec![Field::new(3, "a", Int8), Field::new(3, "b", Bool)]);
        assert!(
            e.to_string().contains("'a'") && e.to_string().contains("'b'"),
            "{e}"
        );
        for name in [
            "",
            "12",
            "a b",
            "a..b",
            ".a",
            "a.",
            "a\"b",
            &"x".repeat(129),
        ] {
            let e = err(vec![Field::new(1, name, Int8)]);
            assert!(matches!(&e, SchemaError::InvalidFieldName { name: n, .. } if n == name));
            assert!(e.to_string().contains(&format!("'{name}'")), "{e}");
        }
        assert!(Schema::new(1, vec![Field::new(1, "cpu.pct-1_a", Int8)]).is_ok());
    }

    #[test]
    fn evolution_is_append_only() {
        let s = base();
        let add = vec![
            Field::new(1, "temp", Float64),
            Field::new(2, "room", String),
            Field::new(5, "hum", Uint8),
        ];
        let next = s.evolve(add).unwrap().unwrap();
        assert_eq!(next.version(), 2);
        assert_eq!(next.field_by_name("hum").unwrap().index, 5);
        assert_eq!(s.evolve(s.fields().to_vec()).unwrap(), None);

        let e = s.evolve(vec![Field::new(1, "temp", Float64)]).unwrap_err();
        assert!(matches!(
            &e,
            SchemaError::FieldDropped { name, index: 2 } if name == "room"
        ));
        assert!(e.to_string().contains("'room'"));
        let e = s
            .evolve(vec![
                Field::new(1, "temp", Float32),
                Field::new(2, "room", String),
            ])
            .unwrap_err();
        assert!(matches!(e, SchemaError::FieldRetyped { ref name, .. } if name == "temp"));
        assert!(
            e.to_string().contains("'temp'") && e.to_string().contains("float32"),
            "{e}"
        );
        let e = s
            .evolve(vec![
                Field::new(1, "temp", Float64),
                Field::new(3, "room", String),
            ])
            .unwrap_err();
        assert!(
            matches!(e, SchemaError::FieldReindexed { ref name, from: 2, to: 3 } if name == "room")
        );
        assert!(e.to_string().contains("'room'"), "{e}");
        let e = s
            .evolve(vec![
                Field::new(1, "temp", Float64),
                Field::new(2, "place", String),
            ])
            .unwrap_err();
        assert!(
            matches!(e, SchemaError::FieldRenamed { index: 2, ref from, .. } if from == "room")
        );
        assert!(e.to_string().contains("'room'") && e.to_string().contains("'place'"));
        // A new field may not take an old one's index.
        let e = s
            .evolve(vec![
                Field::new(1, "temp", Float64),
                Field::new(2, "room", String),
                Field::new(2, "x", Bool),
            ])
            .unwrap_err();
        assert!(matches!(e, SchemaError::DuplicateIndex { index: 2, .. }));
        assert!(
            e.to_string().contains("'room'") && e.to_string().contains("'x'"),
            "{e}"
        );
    }

    #[test]
    fn field_json_shape() {
        let f = Field::new(3, "cpu.pct", Uint16);
        let text = serde_json::to_string(&f).unwrap();
        assert_eq!(text, r#"{"index":3,"name":"cpu.pct","type":"uint16"}"#);
        assert_eq!(serde_json::from_str::<Field>(&text).unwrap(), f);
        assert!(
            serde_json::from_str::<Field>(r#"{"index":1,"name":"a","type":"int128"}"#).is_err()
        );
    }
}
