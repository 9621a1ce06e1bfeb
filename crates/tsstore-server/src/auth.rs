//! Who may do what: the admin key (creates stores) and the per-store API
//! keys (checked by `Registry::authorize`). How a key travels (headers,
//! query string, a socket's AUTH line) is each transport's business.
//!
//! Keys are only ever compared as SHA-256 hashes in constant time, and
//! never logged. The admin key is either configured (kept in memory only)
//! or generated on the first start, shown once, and kept as a hash in
//! `<data path>/.admin_key` (mode 0600).

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use subtle::ConstantTimeEq;

use crate::guard::{Guard, Peer};
use crate::keys::{KeyError, sha256_hex};

pub const ADMIN_KEY_FILE: &str = ".admin_key";

/// Why a request is not let in. Transports say how a key is sent; these
/// messages do not.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no API key was given")]
    MissingKey,
    /// A wrong key and an unknown store alike, so names cannot be probed.
    #[error("the API key is not valid for this store")]
    BadKey,
    #[error("no admin key was given")]
    MissingAdminKey,
    #[error("the admin key is not valid")]
    BadAdminKey,
    #[error(transparent)]
    InvalidStoreName(tsstore::Error),
    /// The store's `keys.json` cannot be read.
    #[error(transparent)]
    KeyFile(#[from] KeyError),
    #[error("a lock was poisoned by an earlier panic")]
    Poisoned,
    /// Too many failed attempts from the client's address; the key was
    /// not checked.
    #[error(
        "too many failed authentications from your address; retry in {} s",
        retry_after.as_secs().max(1)
    )]
    Throttled { retry_after: std::time::Duration },
}

impl AuthError {
    /// Whether this is a key that did not verify (what the throttle
    /// counts; a missing key or a bad store name guesses nothing).
    pub fn is_wrong_key(&self) -> bool {
        matches!(self, AuthError::BadKey | AuthError::BadAdminKey)
    }
}

/// Runs a key `check` for a client at `peer` under `guard`'s throttle:
/// refused unchecked while the address is throttled, and a failure is
/// counted against it.
pub fn throttled<T>(
    guard: &Guard,
    peer: Option<Peer>,
    check: impl FnOnce() -> Result<T, AuthError>,
) -> Result<T, AuthError> {
    guard
        .may_authenticate(peer)
        .map_err(|t| AuthError::Throttled {
            retry_after: t.retry_after,
        })?;
    let result = check();
    if let Err(e) = &result
        && e.is_wrong_key()
    {
        guard.authentication_failed(peer);
    }
    result
}

/// Why the admin key could not be set up at start.
#[derive(Debug, thiserror::Error)]
pub enum AdminKeyError {
    #[error("{0} does not hold a SHA-256 hash; delete it to generate a new admin key")]
    BadFile(PathBuf),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

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
    Stored(PathBuf),
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
    ) -> Result<(AdminKey, AdminKeySource), AdminKeyError> {
        if let Some(key) = configured {
            return Ok((AdminKey::from_key(key), AdminKeySource::Configured));
        }
        let path = base.join(ADMIN_KEY_FILE);
        match fs::read_to_string(&path) {
            Ok(text) => {
                let hash = text.trim().to_string();
                if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(AdminKeyError::BadFile(path));
                }
                Ok((AdminKey { hash }, AdminKeySource::Stored(path)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = format!("tsstore_admin_{}", uuid::Uuid::new_v4().simple());
                let hash = sha256_hex(&key);
                let write = || -> std::io::Result<()> {
                    fs::create_dir_all(base)?;
                    // create_new: two servers starting at once never
                    // overwrite each other's key.
                    let mut f = OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o600)
                        .open(&path)?;
                    f.write_all(format!("{hash}\n").as_bytes())?;
                    f.sync_all()
                };
                write().map_err(|source| AdminKeyError::Write {
                    path: path.clone(),
                    source,
                })?;
                Ok((AdminKey { hash }, AdminKeySource::Generated(key)))
            }
            Err(source) => Err(AdminKeyError::Read { path, source }),
        }
    }

    /// Checks a presented admin key, comparing hashes in constant time.
    pub fn verify(&self, presented: Option<&str>) -> Result<(), AuthError> {
        let key = presented.ok_or(AuthError::MissingAdminKey)?;
        if bool::from(sha256_hex(key).as_bytes().ct_eq(self.hash.as_bytes())) {
            Ok(())
        } else {
            Err(AuthError::BadAdminKey)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(admin.verify(Some(&key)).is_ok() && again.verify(Some(&key)).is_ok());
        assert!(matches!(
            again.verify(Some("nope")),
            Err(AuthError::BadAdminKey)
        ));
        assert!(matches!(
            again.verify(None),
            Err(AuthError::MissingAdminKey)
        ));
        // Under the throttle: wrong keys are counted, then refused unchecked.
        let guard = Guard::new(crate::guard::FrontDoor {
            auth_failure_burst: 2,
            auth_failures_per_sec: 0.01,
            ..Default::default()
        });
        let peer = Some(Peer::Unix(Some(7)));
        for _ in 0..2 {
            let r = throttled(&guard, peer, || again.verify(Some("nope")));
            assert!(matches!(r, Err(AuthError::BadAdminKey)));
        }
        let r = throttled(&guard, peer, || again.verify(Some(&key)));
        assert!(matches!(r, Err(AuthError::Throttled { .. })), "{r:?}");
        assert!(r.unwrap_err().to_string().contains("retry in"));
        // Another client is not slowed; a missing key is not counted.
        let other = Some(Peer::Unix(Some(8)));
        for _ in 0..5 {
            assert!(throttled(&guard, other, || again.verify(None)).is_err());
        }
        assert!(throttled(&guard, other, || again.verify(Some(&key))).is_ok());

        fs::write(dir.path().join(ADMIN_KEY_FILE), "garbage").unwrap();
        let e = AdminKey::load_or_generate(None, dir.path()).unwrap_err();
        assert!(e.to_string().contains(".admin_key"), "{e}");
    }
}
