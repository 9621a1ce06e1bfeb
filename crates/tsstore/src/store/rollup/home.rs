//! Where a store keeps its rollup rings: in its directory
//! (`<store>/rollups/<window>/`), or, for a store on caller-given files
//! (`Store::create_on`, the simulated disk of the crash tests), wherever
//! the caller's `RollupFiles` puts them. Either way a ring's `rollup.json`
//! is written after the ring and removed before it, and a ring found
//! without one is an add or a remove a crash interrupted: it goes.

use std::path::PathBuf;
use std::sync::Arc;

use super::spec::{ROLLUP_FILE, RollupFile};
use crate::config::Config;
use crate::durability::SyncPolicy;
use crate::error::Result;
use crate::store::{Store, StoreFiles};

/// One rollup ring kept by a `RollupFiles`.
#[derive(Debug, Clone)]
pub struct RollupRing {
    /// Its window as a label (`1h`).
    pub label: String,
    /// Its `rollup.json`, once written.
    pub description: Option<Vec<u8>>,
    pub files: StoreFiles,
}

/// Files for the rollups of a store on caller-given files.
pub trait RollupFiles: Send + Sync + std::fmt::Debug {
    /// Every ring there is.
    fn list(&self) -> std::io::Result<Vec<RollupRing>>;
    /// Files for a new ring of `config`: `data` and `index` zero-filled at
    /// full size, as `Store::create_on` wants them.
    fn create(&self, label: &str, config: &Config) -> std::io::Result<StoreFiles>;
    /// Writes the ring's `rollup.json`, durably and whole.
    fn write_description(&self, label: &str, bytes: &[u8]) -> std::io::Result<()>;
    /// Removes the ring's `rollup.json` (first), then its files.
    fn remove(&self, label: &str) -> std::io::Result<()>;
}

#[derive(Debug, Clone)]
pub(super) enum Home {
    /// A store being assembled: no rollups yet.
    Nowhere,
    /// `<store>/rollups`.
    Dir(PathBuf),
    Files(Arc<dyn RollupFiles>),
}

impl Home {
    /// The rings there are, opened, with what each holds; the ones an
    /// interrupted add or remove left are removed (unless `read_only`).
    pub(super) fn open_all(
        &self,
        sync: SyncPolicy,
        read_only: bool,
    ) -> Result<Vec<(RollupFile, Store)>> {
        let mut out = Vec::new();
        match self {
            Home::Nowhere => {}
            Home::Dir(dir) => {
                let entries = match std::fs::read_dir(dir) {
                    Ok(entries) => entries,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
                    Err(e) => return Err(e.into()),
                };
                let mut names: Vec<String> = entries
                    .filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .collect();
                names.sort();
                for name in names {
                    let ring_dir = dir.join(&name);
                    if !ring_dir.join(ROLLUP_FILE).is_file() {
                        if !read_only && Store::exists(dir, &name) {
                            Store::destroy(dir, &name)?;
                        }
                        continue;
                    }
                    let file = RollupFile::read(&ring_dir)?;
                    let ring = if read_only {
                        Store::open_read_only(dir, &name)?
                    } else {
                        Store::open_with(dir, &name, sync)?
                    };
                    out.push((file, ring));
                }
            }
            Home::Files(files) => {
                for ring in files.list()? {
                    let Some(bytes) = ring.description else {
                        if !read_only {
                            files.remove(&ring.label)?;
                        }
                        continue;
                    };
                    let file = RollupFile::parse(&bytes, &ring.label)?;
                    out.push((file, Store::open_on(&ring.label, ring.files, sync)?));
                }
            }
        }
        Ok(out)
    }

    /// A new ring for `file`: made, then described (last).
    pub(super) fn create(
        &self,
        file: &RollupFile,
        config: Config,
        sync: SyncPolicy,
    ) -> Result<Store> {
        let label = &file.window;
        match self {
            Home::Nowhere => Err(crate::Error::InvalidConfig(
                "this store has nowhere to keep rollups".into(),
            )),
            Home::Dir(dir) => {
                std::fs::create_dir_all(dir)?;
                let ring = Store::create_with(dir, label, config, sync)?;
                if let Err(e) = file.write(&dir.join(label)) {
                    let _ = ring.delete();
                    return Err(e);
                }
                Ok(ring)
            }
            Home::Files(files) => {
                let ring_files = files.create(label, &config)?;
                let ring = Store::create_on(label, ring_files, config, sync)?;
                files.write_description(label, &file.bytes()?)?;
                Ok(ring)
            }
        }
    }

    /// Removes `ring`: its description first.
    pub(super) fn remove(&self, ring: Store, label: &str) -> Result<()> {
        match self {
            Home::Nowhere => Ok(()),
            Home::Dir(_) => {
                let path = ring.path().to_path_buf();
                std::fs::remove_file(path.join(ROLLUP_FILE))?;
                ring.delete()
            }
            Home::Files(files) => {
                ring.abandon();
                Ok(files.remove(label)?)
            }
        }
    }
}
