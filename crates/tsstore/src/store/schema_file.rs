//! `schema.json`: every version of a store's schema, replaced with
//! `atomic_write` so a crash leaves either the old or the new file, never a
//! torn one. Here rather than in `schema`, which stays free of I/O and of
//! the engine's error type.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use serde::{Deserialize, Serialize};

use crate::atomic_file::atomic_write;
use crate::error::Result;
use crate::schema::{Field, Schema, SchemaDoc, SchemaError, SchemaFileError};

pub const SCHEMA_FILE: &str = "schema.json";

/// The file's shape: `{"current_version": N, "schemas": {"1": {...}}}`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct SchemaFile {
    current_version: u32,
    schemas: BTreeMap<String, SchemaDoc>,
}

/// A store's schema history and its current version, shared by writers
/// (which compact with it) and readers (which expand with it).
#[derive(Debug)]
pub(crate) struct SchemaState {
    /// Where `schema.json` lives; `None` keeps the schema in memory only
    /// (stores on simulated files).
    dir: Option<PathBuf>,
    /// Serializes updates; holds every version, as the file does.
    history: Mutex<SchemaFile>,
    current: RwLock<Option<Arc<Schema>>>,
}

impl SchemaState {
    /// Reads `dir/schema.json` if there is one.
    pub(crate) fn load(dir: Option<&Path>) -> Result<SchemaState> {
        let mut history = SchemaFile::default();
        let mut current = None;
        if let Some(dir) = dir {
            match fs::read(dir.join(SCHEMA_FILE)) {
                Ok(bytes) => {
                    history = serde_json::from_slice(&bytes)
                        .map_err(|e| SchemaError::BadFile(SchemaFileError::Json(e)))?;
                    let doc = history
                        .schemas
                        .get(&history.current_version.to_string())
                        .ok_or(SchemaError::BadFile(SchemaFileError::NoCurrentVersion(
                            history.current_version,
                        )))?;
                    // Names are not re-checked: a file written by another
                    // implementation may use names tsstore would not create.
                    let schema = Schema::build(doc.version, doc.fields.clone())
                        .map_err(|e| SchemaError::BadFile(SchemaFileError::Invalid(Box::new(e))))?;
                    current = Some(Arc::new(schema));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(SchemaState {
            dir: dir.map(Path::to_path_buf),
            history: Mutex::new(history),
            current: RwLock::new(current),
        })
    }

    pub(crate) fn current(&self) -> Option<Arc<Schema>> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Makes `fields` the next version (the first if there is none yet)
    /// and persists it before anyone can compact with it. An update that
    /// adds nothing returns the current version unchanged.
    pub(crate) fn set(&self, fields: Vec<Field>) -> Result<Arc<Schema>> {
        let mut history = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        let next = match self.current() {
            None => Schema::new(1, fields)?,
            Some(current) => match current.evolve(fields)? {
                Some(next) => next,
                None => return Ok(current),
            },
        };
        history
            .schemas
            .insert(next.version().to_string(), SchemaDoc::from(&next));
        let previous = std::mem::replace(&mut history.current_version, next.version());
        if let Err(e) = self.persist(&history) {
            history.schemas.remove(&next.version().to_string());
            history.current_version = previous;
            return Err(e);
        }
        let next = Arc::new(next);
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(&next));
        Ok(next)
    }

    fn persist(&self, history: &SchemaFile) -> Result<()> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        let bytes = serde_json::to_vec_pretty(history)?;
        atomic_write(&dir.join(SCHEMA_FILE), &bytes, None)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::FieldType;

    #[test]
    fn versions_persist_and_reload() {
        let dir = tempfile::tempdir().unwrap();
        let state = SchemaState::load(Some(dir.path())).unwrap();
        assert!(state.current().is_none());
        let v1 = vec![Field::new(1, "a", FieldType::Int32)];
        assert_eq!(state.set(v1.clone()).unwrap().version(), 1);
        let mut v2 = v1.clone();
        v2.push(Field::new(2, "b", FieldType::String));
        assert_eq!(state.set(v2.clone()).unwrap().version(), 2);
        assert_eq!(state.set(v2.clone()).unwrap().version(), 2, "no-op update");
        assert!(state.set(v1).is_err());

        let text = fs::read_to_string(dir.path().join(SCHEMA_FILE)).unwrap();
        let raw: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(raw["current_version"], 2);
        assert_eq!(raw["schemas"]["1"]["fields"][0]["name"], "a");
        assert_eq!(raw["schemas"]["2"]["fields"][1]["type"], "string");
        assert!(!dir.path().join("schema.json.tmp").exists());

        let again = SchemaState::load(Some(dir.path())).unwrap();
        assert_eq!(again.current().unwrap().fields(), &v2[..]);
        assert_eq!(again.current().unwrap().version(), 2);
    }

    #[test]
    fn damaged_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(SCHEMA_FILE), "{").unwrap();
        let e = SchemaState::load(Some(dir.path())).unwrap_err();
        assert!(e.to_string().contains("schema.json"), "{e}");
        fs::write(
            dir.path().join(SCHEMA_FILE),
            r#"{"current_version":2,"schemas":{"1":{"version":1,"fields":[]}}}"#,
        )
        .unwrap();
        let e = SchemaState::load(Some(dir.path())).unwrap_err();
        assert!(e.to_string().contains("current_version 2"), "{e}");
    }
}
