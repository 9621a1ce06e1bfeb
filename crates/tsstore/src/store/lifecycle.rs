//! Store lifecycle: create (files at full size, meta last), open (lock,
//! length repair, recovery, the flusher), the read-only open (no lock, no
//! writes: a snapshot), close, delete, destroy, and the directory-level
//! queries (`exists`, `list`, `read_config`, `is_held`).

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use super::SchemaState;
use super::rollup::Rollups;
use super::{Core, Store, StoreFiles};
use crate::atomic_file::atomic_write;
use crate::compressed::{Compressed, STAGING};
use crate::config::{Config, staging_blocks, validate_store_name};
use crate::durability::SyncPolicy;
use crate::error::{Error, Result};
use crate::format::{
    DataType, Encoding, FEATURE_CHECKSUMS, FORMAT_VERSION_PREDICTED, META_SIZE, Meta,
    index_file_len,
};
use crate::io::{OverlayFile, RealFile, StoreFile};
use crate::ring::{DATA_FILE, INDEX_FILE, META_FILE, Ring, RingFiles};

impl Core {
    /// The rings back, for a close: only once the rollups' job, the one
    /// other holder, has stopped.
    fn into_rings(self) -> Result<(Option<Compressed>, Ring)> {
        let Core {
            compressed, main, ..
        } = self;
        let shared = || Error::InUse("a ring still read by a background job".into());
        let compressed = match compressed {
            Some(c) => Some(Arc::into_inner(c).ok_or_else(shared)?),
            None => None,
        };
        Ok((compressed, Arc::into_inner(main).ok_or_else(shared)?))
    }
}

fn store_dir(dir: &Path, name: &str) -> Result<PathBuf> {
    validate_store_name(name)?;
    Ok(dir.join(name))
}

/// Refuses a store whose meta header says raw layout when it has a
/// staging ring: only a compressed store has one, and one bit flipped in
/// its header's version would otherwise open its main ring as a raw
/// store's and serve its frames as records.
fn refuse_stray_staging(has_staging: bool) -> Result<()> {
    if has_staging {
        return Err(Error::Corrupt(
            "meta.tsdb says raw layout, but the store has a staging ring: \
             the header of a compressed store is damaged"
                .into(),
        ));
    }
    Ok(())
}

fn open_rw(path: &Path) -> Result<File> {
    Ok(OpenOptions::new().read(true).write(true).open(path)?)
}

/// Attempts of a read-only open that met a checkpoint being written.
const READ_ONLY_ATTEMPTS: u32 = 5;
/// Pause between them: a checkpoint writes a few index entries and 48
/// bytes of meta, so it is over long before this.
const READ_ONLY_PAUSE: std::time::Duration = std::time::Duration::from_millis(20);

/// Takes the store's advisory lock on `meta.tsdb`, or reports `InUse`.
fn lock_meta(file: &File, name: &str) -> Result<()> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::InUse(name.to_string())),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::Io(e)),
    }
}

impl Store {
    /// Creates the store `dir/name` with its files at full size, then opens
    /// it with the default sync policy (`Interval(1 s)`).
    pub fn create(dir: impl AsRef<Path>, name: &str, config: Config) -> Result<Store> {
        Store::create_with(dir, name, config, SyncPolicy::default())
    }

    /// Opens an existing store with the default sync policy (`Interval(1 s)`).
    pub fn open(dir: impl AsRef<Path>, name: &str) -> Result<Store> {
        Store::open_with(dir, name, SyncPolicy::default())
    }

    /// Whether `dir/name` is a complete store (its `meta.tsdb` exists;
    /// create writes that file last).
    pub fn exists(dir: impl AsRef<Path>, name: &str) -> bool {
        validate_store_name(name).is_ok() && dir.as_ref().join(name).join(META_FILE).is_file()
    }

    /// Names of every store in `dir`, sorted; other entries are ignored.
    pub fn list(dir: impl AsRef<Path>) -> Result<Vec<String>> {
        let dir = dir.as_ref();
        let mut names: Vec<String> = fs::read_dir(dir)?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|name| Store::exists(dir, name))
            .collect();
        names.sort();
        Ok(names)
    }

    /// The configuration of a store without opening it: reads only its
    /// header, takes no lock, so it works while another process has it open.
    pub fn read_config(dir: impl AsRef<Path>, name: &str) -> Result<Config> {
        let path = store_dir(dir.as_ref(), name)?.join(META_FILE);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::StoreNotFound(name.to_string()));
            }
            Err(e) => return Err(e.into()),
        };
        let meta = Meta::decode(&bytes)?;
        let staging = match meta.encoding {
            Encoding::Raw => 0,
            Encoding::Compressed => {
                let path = store_dir(dir.as_ref(), name)?.join(STAGING).join(META_FILE);
                Meta::decode(&fs::read(path)?)?.num_blocks
            }
        };
        Ok(Config {
            num_blocks: meta.num_blocks + staging,
            data_block_size: meta.data_block_size,
            index_block_size: meta.index_block_size,
            data_type: meta.data_type,
            encoding: meta.encoding,
        })
    }

    /// Creates the store `dir/name` with its files at full size, then opens it.
    pub fn create_with(
        dir: impl AsRef<Path>,
        name: &str,
        config: Config,
        sync: SyncPolicy,
    ) -> Result<Store> {
        let path = store_dir(dir.as_ref(), name)?;
        config.validate()?;
        if path.join(META_FILE).exists() {
            return Err(Error::StoreExists(name.to_string()));
        }
        let existed = path.exists();
        fs::create_dir_all(&path)?;
        let (main, staging) = split(&config);
        let made = (|| -> Result<()> {
            if let Some(staging) = staging {
                let dir = path.join(STAGING);
                fs::create_dir_all(&dir)?;
                create_files(&dir, &staging)?;
            }
            // The main ring's meta appears last: a store directory with a
            // meta.tsdb is always complete.
            create_files(&path, &main)
        })();
        if let Err(e) = made {
            // A failed create (the disk too small for the ring, say)
            // leaves nothing behind, not even the directory it made.
            let _ = if existed {
                let _ = fs::remove_dir_all(path.join(STAGING));
                [DATA_FILE, INDEX_FILE]
                    .iter()
                    .try_for_each(|f| fs::remove_file(path.join(f)))
            } else {
                fs::remove_dir_all(&path)
            };
            return Err(e);
        }
        Store::open_with(dir, name, sync)
    }

    /// Opens an existing store, takes its lock, and recovers what was
    /// written after its last checkpoint.
    pub fn open_with(dir: impl AsRef<Path>, name: &str, sync: SyncPolicy) -> Result<Store> {
        let (path, meta, files) = lock_ring(dir.as_ref(), name)?;
        let staging = match meta.encoding {
            Encoding::Raw => {
                refuse_stray_staging(path.join(STAGING).join(META_FILE).exists())?;
                None
            }
            Encoding::Compressed => {
                let (_, meta, files) = lock_ring(&path, STAGING)?;
                Some(open_staging(meta, files, sync, false)?)
            }
        };
        Store::assemble(name, path, meta, files, sync, false, staging)
    }

    /// Opens a store for reading only, without taking its lock, so it works
    /// while a server (or any other process) has the store open for
    /// writing: for backups, exports and `status`.
    ///
    /// The result is a snapshot as of the open: the checkpoint plus what
    /// recovery finds written after it (records a running writer has not
    /// yet checkpointed included). Nothing is ever written, not even the
    /// recovery. Records inserted later are not seen, and records the writer
    /// overwrites while the snapshot is read are skipped and counted in
    /// `Stats::corruption_skips` (their block no longer starts where the
    /// snapshot's index says), never served as something else.
    pub fn open_read_only(dir: impl AsRef<Path>, name: &str) -> Result<Store> {
        snapshot(dir.as_ref(), name, |path, meta, files| {
            // The staging ring's snapshot is taken first: a record framed
            // meanwhile is then in the main ring's snapshot too.
            let staging = match meta.encoding {
                Encoding::Raw => {
                    refuse_stray_staging(path.join(STAGING).join(META_FILE).exists())?;
                    None
                }
                Encoding::Compressed => Some(snapshot(path, STAGING, |_, meta, files| {
                    open_staging(meta, files, SyncPolicy::Never, true)
                })?),
            };
            Store::assemble(
                name,
                path.to_path_buf(),
                meta,
                files,
                SyncPolicy::Never,
                true,
                staging,
            )
        })
    }

    /// Whether some process (a server, say) has the store open for
    /// writing. Takes the lock shared for an instant to find out.
    pub fn is_held(dir: impl AsRef<Path>, name: &str) -> Result<bool> {
        let path = store_dir(dir.as_ref(), name)?.join(META_FILE);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::StoreNotFound(name.to_string()));
            }
            Err(e) => return Err(e.into()),
        };
        match file.try_lock_shared() {
            Ok(()) => Ok(false),
            Err(std::fs::TryLockError::WouldBlock) => Ok(true),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::Io(e)),
        }
    }

    /// Creates a store on files that are not on the local filesystem (a
    /// simulated disk in tests): `data` and `index` must already have their
    /// full, zero-filled size. There is no directory and no lock.
    pub fn create_on(
        name: &str,
        files: StoreFiles,
        config: Config,
        sync: SyncPolicy,
    ) -> Result<Store> {
        validate_store_name(name)?;
        config.validate()?;
        let (main, staging) = split(&config);
        if let Some(staging) = staging {
            let files = files.staging.as_deref().ok_or_else(|| {
                Error::InvalidConfig("a compressed store needs files for its staging ring".into())
            })?;
            files.meta.write_all_at(&new_meta(&staging).encode(), 0)?;
            files.meta.sync_data()?;
        }
        files.meta.write_all_at(&new_meta(&main).encode(), 0)?;
        files.meta.sync_data()?;
        Store::open_on(name, files, sync)
    }

    /// Opens (and recovers) a store on files given by the caller; see `create_on`.
    pub fn open_on(name: &str, files: StoreFiles, sync: SyncPolicy) -> Result<Store> {
        validate_store_name(name)?;
        let meta = read_meta(files.meta.as_ref())?;
        let staging = match (meta.encoding, &files.staging) {
            (Encoding::Raw, staging) => {
                refuse_stray_staging(staging.is_some())?;
                None
            }
            (Encoding::Compressed, Some(staging)) => {
                let staging_meta = read_meta(staging.meta.as_ref())?;
                let ring = ring_files(staging);
                Some(open_staging(staging_meta, ring, sync, false)?)
            }
            (Encoding::Compressed, None) => {
                return Err(Error::InvalidConfig(
                    "a compressed store needs files for its staging ring".into(),
                ));
            }
        };
        let ring = ring_files(&files);
        let mut store = Store::assemble(name, PathBuf::new(), meta, ring, sync, false, staging)?;
        if let Some(home) = files.rollups {
            store.rollups = Rollups::open(&store.path, Some(home), &store.core, false)?;
        }
        Ok(store)
    }

    /// The store around its main ring's files and, if compressed, its
    /// opened staging ring: loads the schema, recovers the main ring,
    /// starts the framer, finishes a truncate a crash interrupted, and
    /// only then starts the main ring's flusher.
    fn assemble(
        name: &str,
        path: PathBuf,
        meta: Meta,
        files: RingFiles,
        sync: SyncPolicy,
        read_only: bool,
        staging: Option<Ring>,
    ) -> Result<Store> {
        let schema = SchemaState::load((!path.as_os_str().is_empty()).then_some(path.as_path()))?;
        if !read_only && meta.encoding == Encoding::Compressed {
            mark_current(files.meta.as_ref(), &meta)?;
        }
        let main = Ring::open(name, meta, files, sync, read_only)?;
        let compressed = match staging {
            Some(staging) => Some(Compressed::start(&main, staging, !read_only)?),
            None => None,
        };
        let mut store = Store {
            name: name.to_string(),
            path,
            core: Core {
                compressed: compressed.map(Arc::new),
                main: Arc::new(main),
                schema: Arc::new(schema),
            },
            rollups: Rollups::none(),
            max_future_skew: AtomicI64::new(0),
        };
        store.finish_truncate()?;
        // Nothing holds a clone yet: the rollups start below.
        Arc::get_mut(&mut store.core.main)
            .ok_or_else(|| Error::InUse(name.to_string()))?
            .start_flusher();
        store.rollups = Rollups::open(&store.path, None, &store.core, read_only)?;
        Ok(store)
    }

    /// Checkpoints, syncs and releases the store.
    pub fn close(self) -> Result<()> {
        let Store { core, rollups, .. } = self;
        // The rollups' job holds a clone of the rings: it goes first.
        let rolled = rollups.close();
        let (compressed, mut main) = core.into_rings()?;
        let staging = match compressed {
            Some(c) => Some(c.stop()?),
            None => None,
        };
        let staged = staging.map_or(Ok(()), |mut staging| staging.close());
        let out = main.close();
        rolled.and(staged).and(out)
    }

    /// Releases the store *without* a checkpoint, leaving the files as a
    /// killed process would (everything written is in the OS, pointers are
    /// as of the last checkpoint). For recovery tests.
    #[doc(hidden)]
    pub fn abandon(self) {
        let Store { core, rollups, .. } = self;
        rollups.abandon();
        let Ok((compressed, mut main)) = core.into_rings() else {
            return;
        };
        if let Some(c) = compressed
            && let Ok(mut staging) = c.stop()
        {
            staging.abandon();
        }
        main.abandon();
    }

    /// Closes the store and removes its directory.
    pub fn delete(self) -> Result<()> {
        self.core.main.check_writable()?;
        let Store {
            core,
            rollups,
            path,
            ..
        } = self;
        rollups.abandon();
        let (compressed, mut main) = core.into_rings()?;
        drop(compressed);
        main.abandon();
        drop(main);
        fs::remove_dir_all(path)?;
        Ok(())
    }

    /// Removes a store that is not open anywhere.
    pub fn destroy(dir: impl AsRef<Path>, name: &str) -> Result<()> {
        let path = store_dir(dir.as_ref(), name)?;
        let meta_path = path.join(META_FILE);
        if !meta_path.exists() {
            return Err(Error::StoreNotFound(name.to_string()));
        }
        let lock = open_rw(&meta_path)?;
        lock_meta(&lock, name)?;
        fs::remove_dir_all(&path)?;
        Ok(())
    }
}

/// Opens the ring in `dir/name` for writing: takes its lock, reads its
/// header, and gives its files back their full length if one lost some.
fn lock_ring(dir: &Path, name: &str) -> Result<(PathBuf, Meta, RingFiles)> {
    let path = store_dir(dir, name)?;
    let meta_path = path.join(META_FILE);
    if !meta_path.exists() {
        return Err(Error::StoreNotFound(name.to_string()));
    }
    let meta_file = open_rw(&meta_path)?;
    lock_meta(&meta_file, name)?;
    let meta_file: Arc<dyn StoreFile> = Arc::new(RealFile::new(meta_file));
    let meta = read_meta(meta_file.as_ref())?;
    let mut data = RealFile::new(open_rw(&path.join(DATA_FILE))?);
    let index = RealFile::new(open_rw(&path.join(INDEX_FILE))?);
    repair_lengths(&meta, &data, &index)?;
    // Only now: the mapping must not reach past the file's end.
    data.map_for_reads(meta.num_blocks as u64 * meta.data_block_size as u64);
    let files = RingFiles {
        meta: meta_file,
        data: Arc::new(data),
        index: Arc::new(index),
    };
    Ok((path, meta, files))
}

/// Opens the ring in `dir/name` for reading only, without its lock, and
/// builds what `open` makes of it. A writer's checkpoint can be caught
/// half written (meta and index disagree), and so can a truncate under
/// way: then it reads the ring again, a few times, once that is done.
fn snapshot<T>(
    dir: &Path,
    name: &str,
    open: impl Fn(&Path, Meta, RingFiles) -> Result<T>,
) -> Result<T> {
    let path = store_dir(dir, name)?;
    let meta_path = path.join(META_FILE);
    if !meta_path.exists() {
        return Err(Error::StoreNotFound(name.to_string()));
    }
    let file = |file: &str| -> Result<Arc<dyn StoreFile>> {
        Ok(Arc::new(RealFile::new(File::open(path.join(file))?)))
    };
    let (meta_file, data_file, index) = (file(META_FILE)?, file(DATA_FILE)?, file(INDEX_FILE)?);
    let mut attempt = 1;
    loop {
        let meta = read_meta(meta_file.as_ref())?;
        let data_len = meta.num_blocks as u64 * meta.data_block_size as u64;
        let index_len = index_file_len(meta.num_blocks, meta.index_block_size);
        if data_file.size()? < data_len || index.size()? < index_len {
            return Err(Error::Corrupt(
                "data.tsdb or index.tsdb is shorter than meta.tsdb describes; \
                 opening the store for writing repairs that"
                    .into(),
            ));
        }
        // Recovery may seal a block header a crashed writer left
        // unwritten; here that stays in memory.
        let files = RingFiles {
            meta: Arc::clone(&meta_file),
            data: Arc::new(OverlayFile::new(Arc::clone(&data_file))),
            index: Arc::clone(&index),
        };
        match open(&path, meta, files) {
            Err(Error::Corrupt(_) | Error::TruncateIncomplete(_))
                if attempt < READ_ONLY_ATTEMPTS =>
            {
                attempt += 1;
                std::thread::sleep(READ_ONLY_PAUSE);
            }
            other => return other,
        }
    }
}

/// Opens a compressed store's staging ring as the store needs it: a
/// truncate a crash interrupted is finished (a read-only snapshot refuses
/// one), then its flusher runs.
fn open_staging(meta: Meta, files: RingFiles, sync: SyncPolicy, read_only: bool) -> Result<Ring> {
    let mut ring = Ring::open(STAGING, meta, files, sync, read_only)?;
    ring.finish_truncate()?;
    ring.start_flusher();
    Ok(ring)
}

/// Marks a compressed store's header with the version this build writes
/// (`FORMAT_VERSION_PREDICTED`: typed frames, predicted columns),
/// durably, before its framer can write a frame: a build that reads only
/// earlier versions then refuses the store instead of failing on its
/// frames. `meta` is the header as read, so only the version changes.
fn mark_current(file: &dyn StoreFile, meta: &Meta) -> Result<()> {
    let mut version = [0u8; 4];
    file.read_exact_at(&mut version, 8)
        .map_err(|e| Error::Corrupt(format!("cannot read meta.tsdb: {e}")))?;
    if u32::from_le_bytes(version) != FORMAT_VERSION_PREDICTED {
        file.write_all_at(&meta.encode(), 0)?;
        file.sync_data()?;
    }
    Ok(())
}

/// The meta header in `file`.
fn read_meta(file: &dyn StoreFile) -> Result<Meta> {
    let mut raw = [0u8; META_SIZE];
    file.read_exact_at(&mut raw, 0)
        .map_err(|e| Error::Corrupt(format!("cannot read meta.tsdb: {e}")))?;
    Meta::decode(&raw)
}

/// A store's main ring files (the staging ring's are apart).
fn ring_files(files: &StoreFiles) -> RingFiles {
    RingFiles {
        meta: Arc::clone(&files.meta),
        data: Arc::clone(&files.data),
        index: Arc::clone(&files.index),
    }
}

/// The rings of a new store: its main ring and, if compressed, its
/// staging ring (taken from the footprint, a raw binary ring).
fn split(config: &Config) -> (Config, Option<Config>) {
    match config.encoding {
        Encoding::Raw => (*config, None),
        Encoding::Compressed => {
            let staging = staging_blocks(config.num_blocks);
            let main = Config {
                num_blocks: config.num_blocks - staging,
                ..*config
            };
            let staging = Config {
                num_blocks: staging,
                index_block_size: crate::config::STAGING_INDEX_BLOCK_SIZE,
                data_type: DataType::Binary,
                encoding: Encoding::Raw,
                ..*config
            };
            (main, Some(staging))
        }
    }
}

/// Creates a ring's data and index files at full size, then its meta
/// file, atomically.
fn create_files(path: &Path, config: &Config) -> Result<()> {
    let data_len = config.num_blocks as u64 * config.data_block_size as u64;
    let index_len = index_file_len(config.num_blocks, config.index_block_size);
    for (file, len) in [(DATA_FILE, data_len), (INDEX_FILE, index_len)] {
        let f = RealFile::new(
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(path.join(file))?,
        );
        f.allocate(len)?;
        f.sync_data()?;
    }
    atomic_write(&path.join(META_FILE), &new_meta(config).encode(), None)?;
    Ok(())
}

/// The meta header of a new, empty store with checksums.
fn new_meta(config: &Config) -> Meta {
    Meta {
        num_blocks: config.num_blocks,
        data_block_size: config.data_block_size,
        index_block_size: config.index_block_size,
        head_block: 0,
        tail_block: 0,
        write_offset: 0,
        data_type: config.data_type,
        features: FEATURE_CHECKSUMS,
        encoding: config.encoding,
        epoch: 0,
        live_blocks: 0,
        truncate_pending: 0,
    }
}

/// Gives back a truncated `data.tsdb` or `index.tsdb` its full size (the
/// lost part reads as zeros, which recovery treats as "nothing written"),
/// but only when the other file confirms the geometry in the meta header:
/// if neither matches, it is the header that is wrong.
fn repair_lengths(meta: &Meta, data: &RealFile, index: &RealFile) -> Result<()> {
    let data_len = meta.num_blocks as u64 * meta.data_block_size as u64;
    let index_len = index_file_len(meta.num_blocks, meta.index_block_size);
    let (have_data, have_index) = (data.size()?, index.size()?);
    let data_ok = have_data >= data_len;
    let index_ok = have_index >= index_len;
    match (data_ok, index_ok) {
        (true, true) => Ok(()),
        (false, false) => Err(Error::Corrupt(format!(
            "meta.tsdb describes {data_len} data bytes and {index_len} index bytes, \
             the files hold {have_data} and {have_index}"
        ))),
        (false, true) => Ok(data.allocate(data_len)?),
        (true, false) => Ok(index.allocate(index_len)?),
    }
}
