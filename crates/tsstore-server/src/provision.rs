//! Provisioning: the one way a store comes to exist, for the CLI and the
//! server alike: its configuration from the request and the defaults,
//! checked against the room there is (`check_room`), the store itself,
//! its first API key and its settings.
//!
//! All or nothing: the store is made in `<base>/.creating/<name>`, with
//! its key and settings, closed, and only then renamed to `<base>/<name>`
//! (one `rename`, atomic on the same filesystem). A failure at any point
//! (a full disk, no file descriptors left) leaves no directory under the
//! store's name, so there is never a store nobody can authenticate to;
//! what a crash leaves in `.creating` is swept at the next start
//! (`sweep`), which also reports store directories that are not complete
//! stores (made by hand, or by an older version).

use std::fs;
use std::path::Path;

use tsstore::{Config, DataType, Store, SyncPolicy};

use crate::keys::{KEYS_FILE, KeyError, KeyFile, NewKey};
use crate::store_settings::{SettingsError, StoreSettings};

/// Where stores are made before they get their name (not a store name:
/// those never start with a dot).
pub const CREATING_DIR: &str = ".creating";

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error(transparent)]
    Store(#[from] tsstore::Error),
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// Over the server's `max_store_bytes`.
    #[error(
        "the store would take {bytes} bytes on disk; this server creates stores of at most {max} bytes (server.max_store_bytes)"
    )]
    TooLarge { bytes: u64, max: u64 },
    /// Over the server's `max_total_store_bytes`, with the stores there are.
    #[error(
        "the store would take {bytes} bytes on disk and the stores already there take {used}; this server keeps at most {max} bytes of stores (server.max_total_store_bytes)"
    )]
    TotalTooLarge { bytes: u64, used: u64, max: u64 },
    /// The filesystem of the data path has not that much free.
    #[error(
        "the store would take {bytes} bytes on disk; the filesystem of the data path has {free} bytes free"
    )]
    NoRoom { bytes: u64, free: u64 },
}

/// What a caller asked of a new store's geometry and type; what it leaves
/// out comes from the configured defaults.
#[derive(Debug, Default, Clone, Copy)]
pub struct StoreRequest<'a> {
    pub num_blocks: Option<u32>,
    pub data_block_size: Option<u32>,
    pub index_block_size: Option<u32>,
    /// binary, text, json (default) or schema.
    pub data_type: Option<&'a str>,
    /// raw or compressed (default: the configured default, raw).
    pub encoding: Option<&'a str>,
}

impl StoreRequest<'_> {
    /// The checked configuration (`InvalidConfig` names what is wrong), at
    /// most `max_bytes` on disk when that is given.
    pub fn resolve(
        &self,
        defaults: &Config,
        max_bytes: Option<u64>,
    ) -> Result<Config, ProvisionError> {
        let data_type = match self.data_type {
            None => DataType::Json,
            Some(t) => t.parse()?,
        };
        let encoding = match self.encoding {
            None => defaults.encoding,
            Some(e) => e.parse()?,
        };
        let config = Config {
            num_blocks: self.num_blocks.unwrap_or(defaults.num_blocks),
            data_block_size: self.data_block_size.unwrap_or(defaults.data_block_size),
            index_block_size: self.index_block_size.unwrap_or(defaults.index_block_size),
            data_type,
            encoding,
        };
        let bytes = tsstore::Footprint::of(&config)?.total_bytes;
        match max_bytes {
            Some(max) if bytes > max => Err(ProvisionError::TooLarge { bytes, max }),
            _ => Ok(config),
        }
    }
}

/// Whether a store of `config` fits: in the free space of `base`'s
/// filesystem, and under `max_total` with the stores already in `base`.
/// Checked before anything is written, so a store too large for the
/// device is refused at once instead of after trying to allocate it.
pub fn check_room(
    base: &Path,
    config: &Config,
    max_total: Option<u64>,
) -> Result<(), ProvisionError> {
    check_room_for(base, tsstore::Footprint::of(config)?.total_bytes, max_total)
}

/// `check_room` for `bytes` more.
pub fn check_room_for(
    base: &Path,
    bytes: u64,
    max_total: Option<u64>,
) -> Result<(), ProvisionError> {
    if let Some(free) = free_bytes(base)
        && bytes > free
    {
        return Err(ProvisionError::NoRoom { bytes, free });
    }
    if let Some(max) = max_total {
        let used = footprint_of_stores(base);
        if used.saturating_add(bytes) > max {
            return Err(ProvisionError::TotalTooLarge { bytes, used, max });
        }
    }
    Ok(())
}

/// The footprint of every store in `base` (as their headers say).
pub fn footprint_of_stores(base: &Path) -> u64 {
    Store::list(base)
        .unwrap_or_default()
        .iter()
        .map(|name| {
            let rollups = base.join(name).join(tsstore::ROLLUPS_DIR);
            footprint_of(base, name) + footprint_of_all(&rollups)
        })
        .sum()
}

fn footprint_of(dir: &Path, name: &str) -> u64 {
    Store::read_config(dir, name)
        .ok()
        .and_then(|c| tsstore::Footprint::of(&c).ok())
        .map_or(0, |f| f.total_bytes)
}

/// The footprint of every store (or rollup ring) in `dir`.
fn footprint_of_all(dir: &Path) -> u64 {
    let names = Store::list(dir).unwrap_or_default();
    names.iter().map(|name| footprint_of(dir, name)).sum()
}

/// The footprint a store of `config` adds with `rollups` (each a raw JSON
/// ring of the store's block size, sized for an empty store), if within
/// `max` bytes (the server's `max_store_bytes`: rollups count in a
/// store's size).
pub fn footprint_with_rollups(
    config: &Config,
    rollups: &[tsstore::RollupConfig],
    max: Option<u64>,
) -> Result<u64, ProvisionError> {
    let blocks = rollups
        .iter()
        .map(|r| r.blocks(config.data_block_size, None));
    footprint_with_rings(config, blocks, max)
}

/// The footprint of a store of `config` with rollup rings of
/// `ring_blocks` blocks each, if within `max` bytes.
pub fn footprint_with_rings(
    config: &Config,
    ring_blocks: impl IntoIterator<Item = u32>,
    max: Option<u64>,
) -> Result<u64, ProvisionError> {
    let mut bytes = tsstore::Footprint::of(config)?.total_bytes;
    for blocks in ring_blocks {
        bytes = bytes.saturating_add(rollup_ring_bytes(config, blocks)?);
    }
    match max {
        Some(max) if bytes > max => Err(ProvisionError::TooLarge { bytes, max }),
        _ => Ok(bytes),
    }
}

/// The footprint of a rollup ring of `blocks` in a store of `config`.
pub fn rollup_ring_bytes(config: &Config, blocks: u32) -> Result<u64, ProvisionError> {
    let ring = Config {
        num_blocks: blocks,
        data_type: tsstore::DataType::Json,
        encoding: tsstore::Encoding::Raw,
        ..*config
    };
    Ok(tsstore::Footprint::of(&ring)?.total_bytes)
}

/// Bytes an unprivileged writer may still allocate on `path`'s filesystem
/// (`None`: the filesystem does not say).
fn free_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c_path` is a NUL-terminated path and `stat` a buffer of the
    // right type, which statvfs fills when it returns 0.
    let stat = unsafe {
        if libc::statvfs(c_path.as_ptr(), stat.as_mut_ptr()) != 0 {
            return None;
        }
        stat.assume_init()
    };
    Some((stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64))
}

/// Creates the store `base/name` and its first key (noted `note`).
pub fn create_store(
    base: &Path,
    name: &str,
    config: Config,
    sync: SyncPolicy,
    note: &str,
) -> Result<(Store, NewKey), ProvisionError> {
    create_store_with(
        base,
        name,
        config,
        sync,
        note,
        &StoreSettings::default(),
        None,
    )
}

/// Creates the store `base/name` with its first key and `settings`, all
/// or nothing (see the module's doc), if it fits (`check_room`, with
/// `max_total` bytes of stores at most).
pub fn create_store_with(
    base: &Path,
    name: &str,
    config: Config,
    sync: SyncPolicy,
    note: &str,
    settings: &StoreSettings,
    max_total: Option<u64>,
) -> Result<(Store, NewKey), ProvisionError> {
    tsstore::validate_store_name(name)?;
    let target = base.join(name);
    if target.exists() {
        return Err(tsstore::Error::StoreExists(name.to_string()).into());
    }
    let bytes = footprint_with_rollups(&config, &settings.rollups, None)?;
    check_room_for(base, bytes, max_total)?;
    let creating = base.join(CREATING_DIR);
    fs::create_dir_all(&creating).map_err(tsstore::Error::from)?;
    let staged = creating.join(name);
    // A crash in an earlier create of this name.
    if staged.exists() {
        fs::remove_dir_all(&staged).map_err(tsstore::Error::from)?;
    }
    let made = (|| {
        // Made with the sync policy `Always` whatever the store's own:
        // its files and key are on disk before the rename that names it.
        let store = Store::create_with(&creating, name, config, SyncPolicy::Always)?;
        for rollup in &settings.rollups {
            store.add_rollup(rollup)?;
        }
        let mut keys = KeyFile::new(name);
        let key = keys.add(note)?;
        let saved = keys
            .save(store.path())
            .map_err(ProvisionError::from)
            .and_then(|()| Ok(settings.save(store.path())?));
        let closed = store.close().map_err(ProvisionError::from);
        saved.and(closed)?;
        fs::rename(&staged, &target).map_err(tsstore::Error::from)?;
        sync_dir(base);
        Ok(key)
    })();
    let key = match made {
        Ok(key) => key,
        Err(e) => {
            // Best effort: what is left in `.creating` is swept at start.
            let _ = fs::remove_dir_all(&staged);
            return Err(e);
        }
    };
    // Named and complete from here on: if it cannot be opened now, it is
    // a store with its key that opens later.
    let store = Store::open_with(base, name, sync)?;
    Ok((store, key))
}

/// Makes a rename in `dir` durable (best effort: not every filesystem
/// syncs a directory).
fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// A directory under the data path with a store's name that holds no
/// complete store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incomplete {
    pub name: String,
    /// The file it lacks.
    pub missing: &'static str,
}

/// At start: removes what interrupted creates left, and lists the
/// directories with a store's name that are not complete stores.
pub fn sweep(base: &Path) -> Vec<Incomplete> {
    let creating = base.join(CREATING_DIR);
    if creating.exists()
        && let Err(e) = fs::remove_dir_all(&creating)
    {
        tracing::warn!("cannot remove {}: {e}", creating.display());
    }
    let Ok(entries) = fs::read_dir(base) else {
        return Vec::new();
    };
    let mut out: Vec<Incomplete> = entries
        .filter_map(|e| {
            let e = e.ok()?;
            let name = e.file_name().into_string().ok()?;
            if tsstore::validate_store_name(&name).is_err() || !e.file_type().ok()?.is_dir() {
                return None;
            }
            incomplete(base, &name)
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// What `base/name` lacks to be a complete store, if anything.
pub fn incomplete(base: &Path, name: &str) -> Option<Incomplete> {
    if !base.join(name).is_dir() {
        return None;
    }
    let missing = if !Store::exists(base, name) {
        "meta.tsdb"
    } else if !base.join(name).join(KEYS_FILE).is_file() {
        KEYS_FILE
    } else {
        return None;
    };
    Some(Incomplete {
        name: name.to_string(),
        missing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_fill_from_defaults_and_are_checked() {
        let d = Config::default();
        let c = StoreRequest {
            num_blocks: Some(8),
            data_type: Some("text"),
            ..StoreRequest::default()
        }
        .resolve(&d, None)
        .unwrap();
        assert_eq!((c.num_blocks, c.data_block_size), (8, d.data_block_size));
        assert_eq!(c.data_type, DataType::Text);
        let bad = StoreRequest {
            data_type: Some("xml"),
            ..StoreRequest::default()
        };
        let invalid = |r: Result<Config, ProvisionError>| {
            matches!(
                r,
                Err(ProvisionError::Store(tsstore::Error::InvalidConfig(_)))
            )
        };
        assert!(invalid(bad.resolve(&d, None)));
        let bad = StoreRequest {
            data_block_size: Some(100),
            ..StoreRequest::default()
        };
        assert!(invalid(bad.resolve(&d, None)));
        let big = StoreRequest {
            num_blocks: Some(1024),
            data_block_size: Some(4096),
            index_block_size: Some(4096),
            ..StoreRequest::default()
        };
        let footprint_of_big = (4 << 20) + 16384 + 64;
        let resolved = big.resolve(&d, None).unwrap();
        let footprint = tsstore::Footprint::of(&resolved).unwrap();
        assert_eq!(footprint.total_bytes, footprint_of_big);
        assert!(big.resolve(&d, Some(footprint_of_big)).is_ok());
        assert!(matches!(
            big.resolve(&d, Some(4 << 20)),
            Err(ProvisionError::TooLarge { .. })
        ));
    }

    #[test]
    fn a_store_comes_with_its_first_key() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            num_blocks: 4,
            ..Config::default()
        };
        let (store, key) =
            create_store(dir.path(), "s", config, SyncPolicy::Never, "test").unwrap();
        let keys = KeyFile::load(store.path(), "s").unwrap();
        assert!(keys.verify(&key.key).is_some());
        store.close().unwrap();
        assert!(matches!(
            create_store(dir.path(), "s", config, SyncPolicy::Never, "again"),
            Err(ProvisionError::Store(tsstore::Error::StoreExists(_)))
        ));
    }

    #[test]
    fn a_create_goes_through_staging_and_start_up_sweeps() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            num_blocks: 4,
            ..Config::default()
        };
        // What a crash in an earlier create left is cleared first.
        let stale = dir.path().join(CREATING_DIR).join("s");
        std::fs::create_dir_all(stale.join("junk")).unwrap();
        let settings = StoreSettings::new(Some("1h")).unwrap();
        let (store, key) = create_store_with(
            dir.path(),
            "s",
            config,
            SyncPolicy::Never,
            "n",
            &settings,
            None,
        )
        .unwrap();
        assert_eq!(store.path(), dir.path().join("s"));
        assert!(
            KeyFile::load(store.path(), "s")
                .unwrap()
                .verify(&key.key)
                .is_some()
        );
        assert_eq!(StoreSettings::load(store.path()).unwrap(), settings);
        assert!(!stale.exists());
        store.close().unwrap();

        // A first step that fails leaves nothing either.
        std::fs::remove_dir_all(dir.path().join(CREATING_DIR)).unwrap();
        std::fs::write(dir.path().join(CREATING_DIR), b"not a directory").unwrap();
        assert!(create_store(dir.path(), "t", config, SyncPolicy::Never, "n").is_err());
        assert!(!dir.path().join("t").exists());
        std::fs::remove_file(dir.path().join(CREATING_DIR)).unwrap();

        // A store directory made by hand, without its files, is reported,
        // and what interrupted creates left is swept.
        std::fs::create_dir(dir.path().join("half")).unwrap();
        std::fs::create_dir_all(dir.path().join(CREATING_DIR).join("left")).unwrap();
        let found = sweep(dir.path());
        assert_eq!(
            found,
            vec![Incomplete {
                name: "half".into(),
                missing: "meta.tsdb"
            }]
        );
        assert!(!dir.path().join(CREATING_DIR).exists());
        assert_eq!(Store::list(dir.path()).unwrap(), vec!["s".to_string()]);
    }

    #[test]
    fn room_is_checked_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let small = Config {
            num_blocks: 4,
            ..Config::default()
        };
        create_store(dir.path(), "a", small, SyncPolicy::Never, "n").unwrap();
        let used = footprint_of_stores(dir.path());
        assert!(used > 0);
        let each = tsstore::Footprint::of(&small).unwrap().total_bytes;
        assert!(check_room(dir.path(), &small, Some(used + each)).is_ok());
        let e = check_room(dir.path(), &small, Some(used + each - 1)).unwrap_err();
        assert!(matches!(e, ProvisionError::TotalTooLarge { .. }), "{e}");
        assert!(e.to_string().contains("max_total_store_bytes"), "{e}");
        // 92 million blocks of 4 KiB: more than this disk has free.
        let huge = Config {
            num_blocks: 92_000_000,
            ..Config::default()
        };
        let e = check_room(dir.path(), &huge, None).unwrap_err();
        assert!(matches!(e, ProvisionError::NoRoom { .. }), "{e}");
        assert!(e.to_string().contains("free"), "{e}");
    }
}
