//! Who may do what: the admin key (creates stores) and the per-store API
//! keys, taken from headers or the query string.
//!
//! Keys are only ever compared as SHA-256 hashes in constant time, and
//! never logged. The admin key is either configured (kept in memory only)
//! or generated on the first start, shown once, and kept as a hash in
//! `<data path>/.admin_key` (mode 0600).

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use axum::http::HeaderMap;
use axum::http::StatusCode;
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::keys::sha256_hex;

pub const ADMIN_KEY_FILE: &str = ".admin_key";

/// The admin key, as a hash.
#[derive(Debug, Clone)]
pub struct AdminKey {
    hash: String,
}

/// How the admin key was set up on this start.
#[derive(Debug)]
pub enum AdminKeySource {
    Configured,
    /// Generated now; the key is to be shown once.
    Generated(String),
    /// Generated on an earlier start; its hash is in this file.
    Stored(std::path::PathBuf),
}

impl AdminKey {
    pub fn from_key(key: &str) -> AdminKey {
        AdminKey {
            hash: sha256_hex(key),
        }
    }

    /// The configured key, else the stored hash, else a new key whose hash
    /// is saved under `base`.
    pub fn load_or_generate(
        configured: Option<&str>,
        base: &Path,
    ) -> Result<(AdminKey, AdminKeySource), String> {
        if let Some(key) = configured {
            return Ok((AdminKey::from_key(key), AdminKeySource::Configured));
        }
        let path = base.join(ADMIN_KEY_FILE);
        match fs::read_to_string(&path) {
            Ok(text) => {
                let hash = text.trim().to_string();
                if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(format!(
                        "{} does not hold a SHA-256 hash; delete it to generate a new admin key",
                        path.display()
                    ));
                }
                Ok((AdminKey { hash }, AdminKeySource::Stored(path)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = format!("tsstore_admin_{}", uuid::Uuid::new_v4().simple());
                let hash = sha256_hex(&key);
                let write = || -> std::io::Result<()> {
                    fs::create_dir_all(base)?;
                    let mut f = OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o600)
                        .open(&path)?;
                    f.write_all(format!("{hash}\n").as_bytes())?;
                    f.sync_all()
                };
                write().map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                Ok((AdminKey { hash }, AdminKeySource::Generated(key)))
            }
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    pub fn check(&self, headers: &HeaderMap, query: Option<&str>) -> Result<(), ApiError> {
        let presented = headers
            .get("x-admin-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .or_else(|| query_param(query, "admin_key"));
        let Some(key) = presented else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing_admin_key",
                "this route needs the admin key: send X-Admin-Key or ?admin_key=",
            ));
        };
        if bool::from(sha256_hex(&key).as_bytes().ct_eq(self.hash.as_bytes())) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_admin_key",
                "the admin key is not valid",
            ))
        }
    }
}

/// The store API key of a request: `X-API-Key`, then `Authorization:
/// Bearer`, then `?api_key=`.
pub fn api_key(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    if let Some(v) = headers.get("x-api-key") {
        return v.to_str().ok().map(str::to_string);
    }
    if let Some(v) = headers.get(axum::http::header::AUTHORIZATION) {
        let v = v.to_str().ok()?;
        let (scheme, token) = v.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_string());
    }
    query_param(query, "api_key")
}

/// The first value of `name` in a raw query string, percent-decoded.
pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    let query = query?;
    serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn key_sources_in_order() {
        let mut h = HeaderMap::new();
        assert_eq!(api_key(&h, Some("api_key=q%2B")), Some("q+".into()));
        h.insert("authorization", HeaderValue::from_static("Bearer b"));
        assert_eq!(api_key(&h, Some("api_key=q")), Some("b".into()));
        h.insert("x-api-key", HeaderValue::from_static("x"));
        assert_eq!(api_key(&h, Some("api_key=q")), Some("x".into()));
        let mut basic = HeaderMap::new();
        basic.insert("authorization", HeaderValue::from_static("Basic abc"));
        assert_eq!(api_key(&basic, Some("api_key=q")), None);
    }

    #[test]
    fn admin_key_is_generated_once_and_kept_as_a_hash() {
        let dir = tempfile::tempdir().unwrap();
        let (admin, src) = AdminKey::load_or_generate(None, dir.path()).unwrap();
        let AdminKeySource::Generated(key) = src else {
            panic!("expected a new key")
        };
        let stored = fs::read_to_string(dir.path().join(ADMIN_KEY_FILE)).unwrap();
        assert!(!stored.contains(&key));
        let (again, src) = AdminKey::load_or_generate(None, dir.path()).unwrap();
        assert!(matches!(src, AdminKeySource::Stored(_)));
        let mut h = HeaderMap::new();
        h.insert("x-admin-key", HeaderValue::from_str(&key).unwrap());
        assert!(admin.check(&h, None).is_ok() && again.check(&h, None).is_ok());
        let err = again
            .check(&HeaderMap::new(), Some("admin_key=nope"))
            .unwrap_err();
        assert_eq!(err.code, "invalid_admin_key");

        fs::write(dir.path().join(ADMIN_KEY_FILE), "garbage").unwrap();
        let e = AdminKey::load_or_generate(None, dir.path()).unwrap_err();
        assert!(e.contains(".admin_key"), "{e}");
    }
}
