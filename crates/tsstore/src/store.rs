//! `Store`: one named ring on disk: lifecycle, inserts, deletes, stats.
//!
//! Lock order: the writer mutex, then the `RingIndex` lock. Readers
//! (see `query`) take only the `RingIndex` read lock, briefly, never across
//! I/O.

use std::borrow::Cow;
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::config::{Config, validate_store_name};
use crate::durability::{FlushTarget, Flusher, GroupCommit, SyncPolicy};
use crate::error::{Error, Result};
use crate::format::{DataType, FEATURE_CHECKSUMS, META_SIZE, Meta, OBJ_DELETED, index_file_len};
use crate::index::RingIndex;
use crate::io::{RealFile, StoreFile};
use crate::lock::{mutex_lock, read_lock, write_lock};
use crate::notify::{
    CommitEvent, CommitNotifier, CommitSubscription, CommitWatch, TooManyCallbacks,
};
use crate::record::ObjectHandle;
use crate::schema::{SchemaError, SchemaState};
use crate::writer::{Ctx, Writer};

pub(crate) const META_FILE: &str = "meta.tsdb";
pub(crate) const DATA_FILE: &str = "data.tsdb";
pub(crate) const INDEX_FILE: &str = "index.tsdb";

/// A point-in-time view of a store's geometry and fill.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    pub num_blocks: u32,
    pub data_block_size: u32,
    pub index_block_size: u32,
    pub data_type: crate::DataType,
    pub head_block: u32,
    pub tail_block: u32,
    pub write_offset: u32,
    pub active_blocks: u32,
    /// Timestamp of the oldest stored object (deleted ones included).
    pub oldest_timestamp: Option<i64>,
    pub newest_timestamp: Option<i64>,
    pub oldest_time: Option<String>,
    pub newest_time: Option<String>,
    /// Live objects, when known: blocks found on disk at open are not
    /// counted until the ring has moved past them.
    pub object_count: Option<u64>,
    /// Bytes of the ring in use (full blocks plus the head's used part).
    pub bytes_used: u64,
    pub capacity_bytes: u64,
    /// Times reads since open skipped damaged data (an object failing its
    /// checksum, or the rest of a block whose structure is broken).
    pub corruption_skips: u64,
}

/// The three files of a store, for `Store::create_on` / `Store::open_on`.
#[derive(Debug, Clone)]
pub struct StoreFiles {
    pub meta: Arc<dyn StoreFile>,
    pub data: Arc<dyn StoreFile>,
    pub index: Arc<dyn StoreFile>,
}

/// An open store. `Send + Sync`: share it by reference or `Arc`; one
/// writer at a time, readers concurrently with it and each other.
#[derive(Debug)]
pub struct Store {
    name: String,
    path: PathBuf,
    meta: Meta,
    pub(crate) data: Arc<dyn StoreFile>,
    index: Arc<dyn StoreFile>,
    /// Holds the advisory lock for as long as the store is open.
    meta_file: Arc<dyn StoreFile>,
    pub(crate) ring: Arc<RwLock<RingIndex>>,
    writer: Arc<Mutex<Writer>>,
    /// Times a read skipped damaged data: an object whose checksum did not
    /// verify, or the rest of a block whose structure is broken.
    pub(crate) corruption_skips: AtomicU64,
    sync: SyncPolicy,
    commit: GroupCommit,
    flusher: Option<Flusher>,
    /// A failure of the background flusher, reported by the next `sync`.
    flush_error: Arc<Mutex<Option<String>>>,
    /// The schema of a schema store (empty for other types).
    pub(crate) schema: SchemaState,
    /// Signals commits and resets to watchers and callbacks.
    commits: CommitNotifier,
    closed: bool,
}

fn store_dir(dir: &Path, name: &str) -> Result<PathBuf> {
    validate_store_name(name)?;
    Ok(dir.join(name))
}

fn open_rw(path: &Path) -> Result<File> {
    Ok(OpenOptions::new().read(true).write(true).open(path)?)
}

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
        Ok(Config {
            num_blocks: meta.num_blocks,
            data_block_size: meta.data_block_size,
            index_block_size: meta.index_block_size,
            data_type: meta.data_type,
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
        fs::create_dir_all(&path)?;
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
        let meta = new_meta(&config);
        // The meta file appears last and atomically: a store directory with
        // a meta.tsdb is always complete.
        let tmp = path.join("meta.tsdb.tmp");
        fs::write(&tmp, meta.encode())?;
        File::open(&tmp)?.sync_all()?;
        fs::rename(&tmp, path.join(META_FILE))?;
        File::open(&path)?.sync_all()?;
        Store::open_with(dir, name, sync)
    }

    /// Opens an existing store, takes its lock, and recovers what was
    /// written after its last checkpoint.
    pub fn open_with(dir: impl AsRef<Path>, name: &str, sync: SyncPolicy) -> Result<Store> {
        let path = store_dir(dir.as_ref(), name)?;
        let meta_path = path.join(META_FILE);
        if !meta_path.exists() {
            return Err(Error::StoreNotFound(name.to_string()));
        }
        let meta_file = open_rw(&meta_path)?;
        lock_meta(&meta_file, name)?;
        let meta_file: Arc<dyn StoreFile> = Arc::new(RealFile::new(meta_file));
        let mut raw = [0u8; META_SIZE];
        meta_file
            .read_exact_at(&mut raw, 0)
            .map_err(|e| Error::Corrupt(format!("cannot read meta.tsdb: {e}")))?;
        let meta = Meta::decode(&raw)?;
        let data = RealFile::new(open_rw(&path.join(DATA_FILE))?);
        let index = RealFile::new(open_rw(&path.join(INDEX_FILE))?);
        repair_lengths(&meta, &data, &index)?;
        let files = StoreFiles {
            meta: meta_file,
            data: Arc::new(data),
            index: Arc::new(index),
        };
        Store::open_files(name, path, meta, files, sync)
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
        let meta = new_meta(&config);
        files.meta.write_all_at(&meta.encode(), 0)?;
        files.meta.sync_data()?;
        Store::open_on(name, files, sync)
    }

    /// Opens (and recovers) a store on files given by the caller; see `create_on`.
    pub fn open_on(name: &str, files: StoreFiles, sync: SyncPolicy) -> Result<Store> {
        validate_store_name(name)?;
        let mut raw = [0u8; META_SIZE];
        files
            .meta
            .read_exact_at(&mut raw, 0)
            .map_err(|e| Error::Corrupt(format!("cannot read meta.tsdb: {e}")))?;
        let meta = Meta::decode(&raw)?;
        Store::open_files(name, PathBuf::new(), meta, files, sync)
    }

    fn open_files(
        name: &str,
        path: PathBuf,
        meta: Meta,
        files: StoreFiles,
        sync: SyncPolicy,
    ) -> Result<Store> {
        let StoreFiles {
            meta: meta_file,
            data,
            index,
        } = files;
        let schema = SchemaState::load((!path.as_os_str().is_empty()).then_some(path.as_path()))?;
        let mut loaded = crate::recovery::load_state(&meta, data.as_ref(), index.as_ref())?;
        // Before the recorded head is reused, a checkpoint must be durable
        // too, or a power cut could leave recovery nowhere to start.
        loaded
            .writer
            .set_durable_checkpoints(sync != SyncPolicy::Never);
        let mut store = Store {
            name: name.to_string(),
            path,
            meta,
            data,
            index,
            meta_file,
            ring: Arc::new(RwLock::new(loaded.ring)),
            writer: Arc::new(Mutex::new(loaded.writer)),
            corruption_skips: AtomicU64::new(0),
            sync,
            commit: GroupCommit::default(),
            flusher: None,
            flush_error: Arc::new(Mutex::new(None)),
            schema,
            commits: CommitNotifier::default(),
            closed: false,
        };
        if loaded.recovered {
            // Make the recovered log the new checkpoint before accepting writes.
            store.sync()?;
        }
        if let SyncPolicy::Interval(every) = sync {
            store.flusher = Some(Flusher::start(
                every,
                Checkpointer {
                    writer: Arc::clone(&store.writer),
                    ring: Arc::clone(&store.ring),
                    data: Arc::clone(&store.data),
                    index: Arc::clone(&store.index),
                    meta: Arc::clone(&store.meta_file),
                },
                Arc::clone(&store.flush_error),
            )?);
        }
        Ok(store)
    }

    /// Checkpoints, syncs and releases the store.
    pub fn close(mut self) -> Result<()> {
        self.stop_flusher();
        let out = self.sync();
        self.closed = true;
        out
    }

    fn stop_flusher(&mut self) {
        if let Some(mut f) = self.flusher.take() {
            f.stop();
        }
    }

    /// Releases the store *without* a checkpoint, leaving the files as a
    /// killed process would (everything written is in the OS, pointers are
    /// as of the last checkpoint). For recovery tests.
    #[doc(hidden)]
    pub fn abandon(mut self) {
        self.stop_flusher();
        self.closed = true;
    }

    /// The store's sync policy.
    pub fn sync_policy(&self) -> SyncPolicy {
        self.sync
    }

    /// Closes the store and removes its directory.
    pub fn delete(mut self) -> Result<()> {
        self.stop_flusher();
        self.closed = true;
        let path = self.path.clone();
        drop(self);
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

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn config(&self) -> Config {
        Config {
            num_blocks: self.meta.num_blocks,
            data_block_size: self.meta.data_block_size,
            index_block_size: self.meta.index_block_size,
            data_type: self.meta.data_type,
        }
    }

    pub fn data_type(&self) -> crate::DataType {
        self.meta.data_type
    }

    /// Whether objects carry checksums (false for stores written by ts-store (Go)).
    pub fn has_checksums(&self) -> bool {
        self.meta.has_checksums()
    }

    /// Largest payload one object can have in this store.
    pub fn max_object_size(&self) -> u64 {
        crate::format::max_object_len(self.meta.num_blocks, self.meta.data_block_size)
    }

    pub(crate) fn block_size(&self) -> u32 {
        self.meta.data_block_size
    }

    fn ctx(&self) -> Ctx<'_> {
        Ctx {
            data: self.data.as_ref(),
            index: self.index.as_ref(),
            meta: self.meta_file.as_ref(),
            ring: &self.ring,
        }
    }

    /// Runs `f` with the writer; on failure, unpublished work is rolled back.
    /// If `f` made records readable (even when it then failed: a batch may
    /// publish its first blocks before an error), a commit is signalled
    /// once the writer lock is released.
    fn with_writer<T>(&self, f: impl FnOnce(&mut Writer, &Ctx) -> Result<T>) -> Result<T> {
        let mut w = mutex_lock(&self.writer);
        let before = w.publishes();
        let ctx = self.ctx();
        let out = f(&mut w, &ctx);
        if out.is_err() {
            w.rollback(&ctx);
        }
        let published = w.publishes() != before;
        drop(w);
        if published {
            self.commits.committed();
        }
        out
    }

    /// Runs a modification under the writer and, under `Always`, returns
    /// only once it is durable (sharing the fsync with concurrent writers).
    fn write<T>(&self, f: impl FnOnce(&mut Writer, &Ctx) -> Result<T>) -> Result<T> {
        let entered = (self.sync == SyncPolicy::Always).then(|| self.commit.enter());
        let (out, ticket) = self.with_writer(|w, ctx| {
            let out = f(w, ctx)?;
            Ok((out, entered.as_ref().map(|e| self.commit.ticket(e))))
        })?;
        if let Some(ticket) = ticket {
            self.commit.wait(ticket, self.data.as_ref())?;
        }
        Ok(out)
    }

    /// Checks `payload` against the data type (schema stores: validates
    /// and compacts it) and the object size limit; returns what to store.
    fn check_payload<'a>(&self, payload: &'a [u8]) -> Result<Cow<'a, [u8]>> {
        let stored = if self.meta.data_type == DataType::Schema {
            let schema = self.schema.current().ok_or(SchemaError::NoSchema)?;
            Cow::Owned(schema.compact(payload)?)
        } else {
            crate::payload::validate(self.meta.data_type, payload)?;
            Cow::Borrowed(payload)
        };
        let max = self.max_object_size();
        if stored.len() as u64 > max {
            return Err(Error::TooLarge {
                size: stored.len() as u64,
                max,
            });
        }
        Ok(stored)
    }

    /// Inserts `payload` at `timestamp`, which must be after every stored one.
    pub fn put(&self, timestamp: i64, payload: &[u8]) -> Result<ObjectHandle> {
        let payload = self.check_payload(payload)?;
        self.write(|w, ctx| {
            check_timestamp(timestamp, w.newest())?;
            let h = w.append(ctx, timestamp, &payload)?;
            w.flush(ctx, false)?;
            Ok(h)
        })
    }

    /// Inserts at `max(now, newest + 1)`, so it never collides or goes back.
    pub fn put_now(&self, payload: &[u8]) -> Result<ObjectHandle> {
        let payload = self.check_payload(payload)?;
        self.write(|w, ctx| {
            let ts = next_timestamp(w.newest());
            let h = w.append(ctx, ts, &payload)?;
            w.flush(ctx, false)?;
            Ok(h)
        })
    }

    /// Inserts a batch under one lock, each touched block written once.
    /// Every payload and timestamp is checked before anything is written;
    /// entries without a timestamp get `max(now, previous + 1)`.
    pub fn put_many<I, B>(&self, items: I) -> Result<Vec<ObjectHandle>>
    where
        I: IntoIterator<Item = (Option<i64>, B)>,
        B: AsRef<[u8]>,
    {
        let owned: Vec<(Option<i64>, B)> = items.into_iter().collect();
        let mut items = Vec::with_capacity(owned.len());
        for (ts, p) in &owned {
            items.push((*ts, self.check_payload(p.as_ref())?));
        }
        self.write(|w, ctx| {
            let mut prev = w.newest();
            let mut stamps = Vec::with_capacity(items.len());
            for (ts, _) in &items {
                let ts = match *ts {
                    Some(ts) => {
                        check_timestamp(ts, prev)?;
                        ts
                    }
                    None => next_timestamp(prev),
                };
                stamps.push(ts);
                prev = ts;
            }
            let mut handles = Vec::with_capacity(items.len());
            for ((_, p), ts) in items.iter().zip(stamps) {
                handles.push(w.append(ctx, ts, p.as_ref())?);
            }
            w.flush(ctx, false)?;
            Ok(handles)
        })
    }

    /// Soft-deletes exactly the object at `timestamp`; its neighbours stay.
    pub fn delete_by_time(&self, timestamp: i64) -> Result<()> {
        self.write(|w, ctx| {
            let (phys, found) = self.locate(timestamp)?.ok_or(Error::NotFound(timestamp))?;
            let low_byte = (found.header.flags | OBJ_DELETED) as u8;
            w.mark_deleted(ctx, phys, found.offset, low_byte)?;
            write_lock(&self.ring).note_deleted(phys);
            Ok(())
        })
    }

    /// Empties the store in O(1); configuration stays. Signals
    /// `CommitEvent::Reset` even if the checkpoint after it fails: readers
    /// see an empty store either way.
    pub fn reset(&self) -> Result<()> {
        let out = self.with_writer(|w, ctx| {
            w.reset(ctx);
            w.checkpoint(ctx, true)
        });
        self.commits.reset();
        out
    }

    /// Writes every pointer and index entry and makes the store durable.
    /// Also reports a failure of the background flusher since the last call.
    pub fn sync(&self) -> Result<()> {
        if let Some(e) = mutex_lock(&self.flush_error).take() {
            return Err(Error::Io(std::io::Error::other(format!(
                "background sync failed: {e}"
            ))));
        }
        self.with_writer(|w, ctx| w.checkpoint(ctx, true))
    }

    /// A handle to wait for commits on from any thread; see `CommitWatch`.
    ///
    /// A commit is signalled when `put`, `put_now` or `put_many` made
    /// records readable: once per call (a batch signals once), after the
    /// writer lock is released and before the call returns (under
    /// `SyncPolicy::Always`, before the fsync it waits for, since readers
    /// can already see the records). `reset` signals a reset. Deletes and
    /// syncs signal nothing: they make no new record readable.
    pub fn commits(&self) -> CommitWatch {
        self.commits.watch()
    }

    /// Registers `callback` to run on every commit, reset and at close,
    /// until the returned guard is dropped. At most
    /// `MAX_COMMIT_CALLBACKS` (64) may be registered at once.
    ///
    /// The callback runs on the thread that inserted, after the writer
    /// lock and every notifier lock are released, before that insert
    /// returns: it may read the store or drop its own guard without
    /// deadlock, but it delays the insert, so it should only signal
    /// something (a tokio `Notify`, a channel send that does not block).
    /// It must not insert into the same store (that would signal again,
    /// recursively) and must not panic (the panic reaches the inserter,
    /// whose write has already succeeded). With `Closed` it runs from the
    /// store's drop.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use tsstore::{CommitEvent, Config, Store};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let store = Store::create(dir.path(), "s", Config::default())?;
    /// let commits = Arc::new(AtomicU64::new(0));
    /// let seen = Arc::clone(&commits);
    /// let guard = store.on_commit(Box::new(move |event| {
    ///     if let CommitEvent::NewRecords(_) = event {
    ///         seen.fetch_add(1, Ordering::Relaxed);
    ///     }
    /// }))?;
    /// store.put_many([(Some(1), b"{}"), (Some(2), b"{}")])?;
    /// assert_eq!(commits.load(Ordering::Relaxed), 1);
    /// drop(guard);
    /// store.put(3, b"{}")?;
    /// assert_eq!(commits.load(Ordering::Relaxed), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn on_commit(
        &self,
        callback: Box<dyn Fn(CommitEvent) + Send + Sync>,
    ) -> std::result::Result<CommitSubscription, TooManyCallbacks> {
        self.commits.subscribe(callback)
    }

    pub fn stats(&self) -> Stats {
        let ring = read_lock(&self.ring);
        let bs = self.meta.data_block_size as u64;
        let oldest = ring.oldest();
        let newest = (ring.len() > 0).then(|| ring.newest());
        let head_end = ring.head_end();
        let bytes_used = match ring.len() {
            0 => 0,
            len => (len as u64 - 1) * bs + if head_end > 0 { head_end as u64 } else { bs },
        };
        Stats {
            num_blocks: self.meta.num_blocks,
            data_block_size: self.meta.data_block_size,
            index_block_size: self.meta.index_block_size,
            data_type: self.meta.data_type,
            head_block: ring.head_phys().unwrap_or(ring.tail()),
            tail_block: ring.tail(),
            write_offset: head_end,
            active_blocks: ring.len(),
            oldest_timestamp: oldest,
            newest_timestamp: newest,
            oldest_time: oldest.map(crate::time::rfc3339),
            newest_time: newest.map(crate::time::rfc3339),
            object_count: ring.object_count(),
            bytes_used,
            capacity_bytes: self.meta.num_blocks as u64 * bs,
            corruption_skips: self.corruption_skips.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // Best effort: an explicit close() reports errors, a drop cannot.
        self.stop_flusher();
        if !self.closed {
            let mut w = mutex_lock(&self.writer);
            let _ = w.checkpoint(&self.ctx(), true);
        }
        self.commits.close();
    }
}

/// The flusher's view of a store: its writer and files, not the `Store`
/// (which owns the flusher and must be able to stop it).
struct Checkpointer {
    writer: Arc<Mutex<Writer>>,
    ring: Arc<RwLock<RingIndex>>,
    data: Arc<dyn StoreFile>,
    index: Arc<dyn StoreFile>,
    meta: Arc<dyn StoreFile>,
}

impl FlushTarget for Checkpointer {
    fn write_back(&self) -> Result<()> {
        if mutex_lock(&self.writer).is_dirty() {
            self.data.sync_data()?;
        }
        Ok(())
    }

    fn checkpoint(&self) -> Result<()> {
        let mut w = mutex_lock(&self.writer);
        if !w.is_dirty() {
            return Ok(());
        }
        let ctx = Ctx {
            data: self.data.as_ref(),
            index: self.index.as_ref(),
            meta: self.meta.as_ref(),
            ring: &self.ring,
        };
        w.checkpoint(&ctx, true)
    }
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
        epoch: 0,
        live_blocks: 0,
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

fn check_timestamp(ts: i64, newest: i64) -> Result<()> {
    if ts <= 0 {
        return Err(Error::InvalidTimestamp(ts));
    }
    if ts <= newest {
        return Err(Error::TimestampOutOfOrder {
            timestamp: ts,
            newest,
        });
    }
    Ok(())
}

fn next_timestamp(newest: i64) -> i64 {
    crate::time::now_ns().max(newest.saturating_add(1))
}
