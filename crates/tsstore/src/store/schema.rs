//! The schema half of `Store`'s API: set and read the schema, and show
//! stored records the way the user wrote them.

use std::borrow::Cow;
use std::sync::Arc;

use super::{Core, Store};
use crate::error::Result;
use crate::format::DataType;
use crate::schema::{Field, Schema, SchemaError};

impl Store {
    /// The current schema of a schema store (`None` before the first
    /// `set_schema`, and for stores of other types).
    pub fn schema(&self) -> Option<Arc<Schema>> {
        self.core.schema.current()
    }

    /// Sets the schema of a schema store: the first call makes version 1,
    /// later ones must keep every existing field (append-only) and make
    /// version N+1. An update that adds no field changes nothing and
    /// returns the current version.
    pub fn set_schema(&self, fields: Vec<Field>) -> Result<Arc<Schema>> {
        if self.data_type() != DataType::Schema {
            return Err(SchemaError::NotASchemaStore(self.data_type().as_str()).into());
        }
        self.core.main.check_writable()?;
        self.core.schema.set(fields)
    }

    /// A stored payload as users see it: schema records expanded to field
    /// names, everything else unchanged.
    pub fn expand<'a>(&self, stored: &'a [u8]) -> Cow<'a, [u8]> {
        self.core.expand(stored)
    }
}

impl Core {
    pub(crate) fn expand<'a>(&self, stored: &'a [u8]) -> Cow<'a, [u8]> {
        // The type first: the schema is behind a lock, and every record
        // a list shows of any store comes through here.
        if self.main.data_type() != DataType::Schema {
            return Cow::Borrowed(stored);
        }
        match self.schema.current() {
            Some(schema) => schema.expand(stored),
            None => Cow::Borrowed(stored),
        }
    }
}
