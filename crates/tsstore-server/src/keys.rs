//! Store API keys: `tsstore_<uuid-v4>`, of which only the SHA-256 is kept,
//! in the store's `keys.json` (mode 0600, replaced atomically).
//!
//! Checking a key hashes it and compares against every stored hash in
//! constant time, without stopping at the first match, so neither timing
//! nor the result tells which part of a key was wrong.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const KEYS_FILE: &str = "keys.json";
/// Keys per store; a bound on the work of each check.
pub const MAX_KEYS: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("no key with id '{0}' (see `tsstore key list`)")]
    UnknownId(String),
    #[error("store '{store}' already has {MAX_KEYS} keys; revoke one first")]
    TooMany { store: String },
    #[error("{path} is unreadable: {source}")]
    BadFile {
        path: String,
        source: crate::json_file::JsonFileError,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// One key as stored: never the key itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// First 8 hex digits of the key's UUID: safe to show and log.
    pub id: String,
    /// SHA-256 of the whole key, lowercase hex.
    pub hash: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    #[serde(default)]
    pub note: String,
}

/// A key as handed out once, at creation.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub key: String,
    pub id: String,
}

/// The content of `keys.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyFile {
    pub store_name: String,
    pub keys: Vec<KeyRecord>,
}

pub fn sha256_hex(text: &str) -> String {
    hex_digest(text).iter().map(|&b| b as char).collect()
}

/// The SHA-256 of `text` in lowercase hex, on the stack: what every
/// request's key check compares, with no allocation.
fn hex_digest(text: &str) -> [u8; 64] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 64];
    for (i, b) in Sha256::digest(text.as_bytes()).into_iter().enumerate() {
        out[2 * i] = HEX[(b >> 4) as usize];
        out[2 * i + 1] = HEX[(b & 15) as usize];
    }
    out
}

/// A fresh random key and its id.
pub fn generate() -> NewKey {
    let uuid = uuid::Uuid::new_v4();
    let simple = uuid.simple().to_string();
    NewKey {
        key: format!("tsstore_{}", uuid.hyphenated()),
        id: simple[..8].to_string(),
    }
}

impl KeyFile {
    pub fn new(store_name: &str) -> KeyFile {
        KeyFile {
            store_name: store_name.to_string(),
            keys: Vec::new(),
        }
    }

    /// Reads `store_dir/keys.json`; a missing file is a store without keys.
    pub fn load(store_dir: &Path, store_name: &str) -> Result<KeyFile, KeyError> {
        let path = store_dir.join(KEYS_FILE);
        match crate::json_file::read_optional(&path) {
            Ok(Some(file)) => Ok(file),
            Ok(None) => Ok(KeyFile::new(store_name)),
            Err(source) => Err(KeyError::BadFile {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    /// Replaces `store_dir/keys.json` atomically, readable by the owner only.
    pub fn save(&self, store_dir: &Path) -> Result<(), KeyError> {
        let path = store_dir.join(KEYS_FILE);
        let write = || -> std::io::Result<()> {
            let bytes = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
            tsstore::atomic_write(&path, &bytes, Some(0o600))
        };
        write().map_err(|source| KeyError::Write {
            path: path.display().to_string(),
            source,
        })
    }

    /// Adds a new key and returns it; only its hash is kept.
    pub fn add(&mut self, note: &str) -> Result<NewKey, KeyError> {
        if self.keys.len() >= MAX_KEYS {
            return Err(KeyError::TooMany {
                store: self.store_name.clone(),
            });
        }
        let key = generate();
        self.keys.push(KeyRecord {
            id: key.id.clone(),
            hash: sha256_hex(&key.key),
            created_at: tsstore::rfc3339(tsstore::now_ns()),
            note: note.to_string(),
        });
        Ok(key)
    }

    pub fn revoke(&mut self, id: &str) -> Result<KeyRecord, KeyError> {
        let pos = self
            .keys
            .iter()
            .position(|k| k.id == id)
            .ok_or_else(|| KeyError::UnknownId(id.to_string()))?;
        Ok(self.keys.remove(pos))
    }

    /// The record of the key `presented`, if it is one of this store's.
    pub fn verify(&self, presented: &str) -> Option<&KeyRecord> {
        let hash = hex_digest(presented);
        let mut found = None;
        for k in &self.keys {
            if bool::from(k.hash.as_bytes().ct_eq(&hash[..])) {
                found = Some(k);
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn keys_are_random_hashed_and_verified() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = KeyFile::new("s");
        let a = file.add("first").unwrap();
        let b = file.add("").unwrap();
        assert!(a.key.starts_with("tsstore_") && a.key.len() == 8 + 36);
        assert_eq!(a.id.len(), 8);
        assert!(a.key[8..].replace('-', "").starts_with(&a.id));
        assert_ne!(a.key, b.key);
        file.save(dir.path()).unwrap();

        let text = fs::read_to_string(dir.path().join(KEYS_FILE)).unwrap();
        assert!(!text.contains(&a.key[8..]), "only hashes are stored");
        let mode = fs::metadata(dir.path().join(KEYS_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);

        let file = KeyFile::load(dir.path(), "s").unwrap();
        assert_eq!(file.verify(&a.key).unwrap().note, "first");
        assert_eq!(file.verify(&b.key).unwrap().id, b.id);
        assert!(file.verify("tsstore_wrong").is_none());
        assert!(file.verify("").is_none());
    }

    #[test]
    fn sha256_is_lowercase_hex() {
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn revoke_and_errors() {
        let mut file = KeyFile::new("s");
        let a = file.add("").unwrap();
        assert!(matches!(file.revoke("nope"), Err(KeyError::UnknownId(id)) if id == "nope"));
        assert_eq!(file.revoke(&a.id).unwrap().id, a.id);
        assert!(file.verify(&a.key).is_none());
        for _ in 0..MAX_KEYS {
            file.add("").unwrap();
        }
        assert!(matches!(file.add(""), Err(KeyError::TooMany { .. })));

        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(KEYS_FILE), "{").unwrap();
        let e = KeyFile::load(dir.path(), "s").unwrap_err();
        assert!(e.to_string().contains("keys.json"), "{e}");
        let empty = KeyFile::load(&dir.path().join("missing"), "s").unwrap();
        assert!(empty.keys.is_empty());
    }
}
