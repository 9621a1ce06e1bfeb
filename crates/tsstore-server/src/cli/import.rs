//! `tsstore import`: records from an export (or any NDJSON or CSV of the
//! same shape) into a store. Directly when no process holds the store,
//! through a running server's batch endpoint with `--url` when one does.
//!
//! All or nothing: the whole file is checked (every line parsed, every
//! payload validated as the store would, timestamps increasing past the
//! store's newest) before the first record is written, so a bad line
//! changes nothing. `--skip-invalid` instead imports in one pass and skips
//! what does not check, which also resumes an interrupted import (what is
//! already in is "not after the newest" and skipped). Memory holds one
//! batch, whatever the size of the file.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::time::Instant;

use tsstore::{DataType, Field, Store, SyncPolicy};

use super::remote::Remote;
use super::target::{Refusal, Target};
use super::{CliError, ImportArgs, progress, time_span};
use crate::config::Settings;
use crate::dump::{DumpError, Entry, Format, Reader};
use crate::provision::{self, StoreRequest};

/// Records per batch written directly (one `put_many`: one lock, one
/// pass over each block), and the payload bytes that also end a batch.
const LOCAL_BATCH: (usize, usize) = (8192, 4 << 20);
/// File bytes between progress updates.
const PROGRESS_BYTES: u64 = 1 << 20;
/// Skipped lines whose reasons the summary quotes.
const SKIP_SAMPLES: usize = 5;

/// A store opened (or created) by the import itself.
struct Local {
    store: Store,
    created: bool,
}

impl Target for Local {
    fn data_type(&self) -> DataType {
        self.store().data_type()
    }

    fn newest(&self) -> i64 {
        self.store().newest_timestamp().unwrap_or(0)
    }

    fn check(&self, payload: &[u8]) -> Result<(), tsstore::Error> {
        self.store().check(payload)
    }

    fn batch_limit(&self) -> (usize, usize) {
        LOCAL_BATCH
    }

    fn put(&mut self, batch: &[(i64, Vec<u8>)]) -> Result<(), CliError> {
        let items = batch.iter().map(|(ts, p)| (Some(*ts), p.as_slice()));
        self.store().put_many(items)?;
        Ok(())
    }
}

impl Local {
    fn store(&self) -> &Store {
        &self.store
    }

    /// Closes the store (one checkpoint and sync for the whole import),
    /// or, after a failure, removes a store this import created.
    fn end(self, ok: bool) -> Result<(), CliError> {
        if !ok && self.created {
            self.store.delete()?;
        } else {
            self.store.close()?;
        }
        Ok(())
    }
}

pub(super) fn import(settings: &Settings, args: &ImportArgs) -> Result<String, CliError> {
    let format = args.format.unwrap_or_else(|| {
        let csv = args
            .file
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        if csv { Format::Csv } else { Format::Ndjson }
    });
    let size = std::fs::metadata(&args.file)
        .map_err(|source| read_error(&args.file, source))?
        .len();
    let reader = open(&args.file, format)?;
    let started = Instant::now();
    let mut key_note = None;
    let mut loaded;
    if let Some(url) = &args.url {
        if args.create {
            return Err(CliError::Usage(
                "--create works on the data path; with --url, create the store through the \
                 server first (POST /api/stores)"
                    .into(),
            ));
        }
        let mut remote = Remote::connect(url, &args.store, args.api_key.as_deref())?;
        loaded = load(&mut remote, args, format, size, reader);
    } else {
        let (mut local, key) = local_target(settings, args, reader.header())?;
        key_note = key;
        loaded = load(&mut local, args, format, size, reader);
        let ended = local.end(loaded.is_ok());
        if let Err(e) = ended {
            loaded = loaded.and(Err(e));
        }
    }
    let loaded = loaded?;
    let secs = started.elapsed().as_secs_f64();
    let mut out = key_note.unwrap_or_default();
    out.push_str(&format!(
        "imported {} records into '{}'{} in {secs:.2} s ({:.0} records/s)",
        loaded.records,
        args.store,
        time_span(loaded.first, loaded.last),
        loaded.records as f64 / secs.max(1e-9),
    ));
    if loaded.skipped > 0 {
        out.push_str(&format!("\nskipped {} invalid records:", loaded.skipped));
        for sample in &loaded.samples {
            out.push_str(&format!("\n  {sample}"));
        }
        if loaded.skipped > loaded.samples.len() as u64 {
            out.push_str("\n  ...");
        }
    }
    Ok(out)
}

fn read_error(path: &Path, source: std::io::Error) -> CliError {
    CliError::Read {
        path: path.display().to_string(),
        source,
    }
}

fn open(path: &Path, format: Format) -> Result<Reader<BufReader<File>>, CliError> {
    let file = File::open(path).map_err(|source| read_error(path, source))?;
    Ok(Reader::new(
        BufReader::with_capacity(256 * 1024, file),
        format,
    )?)
}

/// Opens the store, or creates it (`--create`) from the flags and the
/// export header; the text is the new key's notice.
fn local_target(
    settings: &Settings,
    args: &ImportArgs,
    header: Option<&crate::dump::Header>,
) -> Result<(Local, Option<String>), CliError> {
    let base = &settings.base_path;
    if Store::exists(base, &args.store) {
        if args.create {
            return Err(CliError::Usage(format!(
                "store '{}' already exists; leave out --create to add the records to it",
                args.store
            )));
        }
        let store = match Store::open_with(base, &args.store, SyncPolicy::Never) {
            Err(tsstore::Error::InUse(_)) => {
                return Err(CliError::Held {
                    store: args.store.clone(),
                });
            }
            other => other?,
        };
        let local = Local {
            store,
            created: false,
        };
        return Ok((local, None));
    }
    if !args.create {
        tsstore::validate_store_name(&args.store)?;
        return Err(CliError::Usage(format!(
            "store '{}' does not exist in {}; add --create to make it (with --type, \
             unless the file is an export)",
            args.store,
            base.display()
        )));
    }
    let data_type = args
        .data_type
        .clone()
        .or_else(|| header.map(|h| h.data_type.as_str().to_string()))
        .ok_or_else(|| {
            CliError::Usage(
                "--create needs --type: the file has no export header to take it from".into(),
            )
        })?;
    let config = StoreRequest {
        num_blocks: args.blocks.or(header.map(|h| h.num_blocks)),
        data_block_size: args.data_size.or(header.map(|h| h.data_block_size)),
        index_block_size: args.index_size.or(header.map(|h| h.index_block_size)),
        data_type: Some(&data_type),
        encoding: args
            .encoding
            .as_deref()
            .or(header.map(|h| h.encoding.as_str())),
    }
    .resolve(&settings.store_defaults, None)?;
    let fields = schema_fields(args, header, config.data_type)?;
    let (store, key) = provision::create_store(
        base,
        &args.store,
        config,
        SyncPolicy::Never,
        "created by tsstore import",
    )?;
    let local = Local {
        store,
        created: true,
    };
    if let Some(fields) = fields
        && let Err(e) = local.store().set_schema(fields)
    {
        local.end(false)?;
        return Err(e.into());
    }
    let note = format!(
        "created store '{}' ({}, {} blocks of {} bytes)\nAPI key (shown only now; keep it): {}\nkey id: {}\n",
        args.store, config.data_type, config.num_blocks, config.data_block_size, key.key, key.id
    );
    Ok((local, Some(note)))
}

/// The schema of a new schema store: `--schema FILE`, else the header's.
fn schema_fields(
    args: &ImportArgs,
    header: Option<&crate::dump::Header>,
    data_type: DataType,
) -> Result<Option<Vec<Field>>, CliError> {
    if data_type != DataType::Schema {
        if args.schema.is_some() {
            return Err(CliError::Usage(format!(
                "--schema is for schema stores, not {data_type}"
            )));
        }
        return Ok(None);
    }
    #[derive(serde::Deserialize)]
    struct Fields {
        fields: Vec<Field>,
    }
    if let Some(path) = &args.schema {
        let bytes = std::fs::read(path).map_err(|source| read_error(path, source))?;
        let doc: Fields = serde_json::from_slice(&bytes).map_err(|e| {
            CliError::Usage(format!(
                "--schema {}: expected {{\"fields\": [{{\"index\", \"name\", \"type\"}}, ...]}}: {e}",
                path.display()
            ))
        })?;
        return Ok(Some(doc.fields));
    }
    match header.and_then(|h| h.schema.clone()) {
        Some(doc) => Ok(Some(doc.fields)),
        None => Err(CliError::Usage(
            "a new schema store needs its schema: --schema FILE (the file has none)".into(),
        )),
    }
}

/// What an import did.
#[derive(Debug, Default)]
struct Loaded {
    records: u64,
    first: Option<i64>,
    last: Option<i64>,
    skipped: u64,
    samples: Vec<String>,
}

fn load(
    target: &mut dyn Target,
    args: &ImportArgs,
    format: Format,
    size: u64,
    mut reader: Reader<BufReader<File>>,
) -> Result<Loaded, CliError> {
    let dt = target.data_type();
    if let Some(h) = reader.header()
        && h.data_type != dt
    {
        return Err(CliError::Usage(format!(
            "the file holds the records of a {} store; '{}' is a {dt} store",
            h.data_type, args.store
        )));
    }
    if format == Format::Csv && !matches!(dt, DataType::Json | DataType::Schema) {
        return Err(CliError::Usage(format!(
            "CSV import is for json and schema stores; '{}' is a {dt} store",
            args.store
        )));
    }
    let show = progress::wanted(args.quiet);
    let newest = target.newest();
    if !args.skip_invalid {
        let bar = progress::bar(show, size, true);
        bar.set_prefix("checking");
        let mut prev = newest;
        let mut at = 0;
        while let Some(entry) = reader.next_entry(dt)? {
            let (line, ts) = match entry {
                Entry::Invalid(e) => return Err(CliError::Invalid(e)),
                Entry::Record {
                    line,
                    timestamp,
                    payload,
                } => {
                    check(&*target, prev, newest, timestamp, &payload).map_err(|refusal| {
                        CliError::Invalid(DumpError::Record {
                            line,
                            message: refusal.to_string(),
                        })
                    })?;
                    (line, timestamp)
                }
            };
            prev = ts;
            if reader.bytes_read() >= at + PROGRESS_BYTES {
                at = reader.bytes_read();
                bar.set_position(at);
                bar.set_message(format!("line {line}"));
            }
        }
        bar.finish_and_clear();
        reader = open(&args.file, format)?;
    }
    let bar = progress::bar(show, size, true);
    bar.set_prefix("importing");
    let (max_records, max_bytes) = target.batch_limit();
    let mut batch: Vec<(i64, Vec<u8>)> = Vec::with_capacity(max_records.min(8192));
    let mut batch_bytes = 0;
    let mut done = Loaded::default();
    let mut prev = newest;
    let mut at = 0;
    while let Some(entry) = reader.next_entry(dt)? {
        let checked = match entry {
            Entry::Invalid(e) => Err(e),
            Entry::Record {
                line,
                timestamp,
                payload,
            } => {
                // Checked whole in the first pass (the store checks each
                // payload again as it stores it); only the order here.
                let checked = if args.skip_invalid {
                    check(&*target, prev, newest, timestamp, &payload)
                } else {
                    in_order(prev, newest, timestamp)
                };
                match checked {
                    Ok(()) => Ok((timestamp, payload)),
                    Err(refusal) => Err(DumpError::Record {
                        line,
                        message: refusal.to_string(),
                    }),
                }
            }
        };
        match checked {
            Ok((ts, payload)) => {
                prev = ts;
                batch_bytes += payload.len();
                batch.push((ts, payload));
                if batch.len() >= max_records || batch_bytes >= max_bytes {
                    put(target, &mut batch, &mut done)?;
                    batch_bytes = 0;
                }
            }
            // The file changed since it was checked: what is in stays in.
            Err(e) if !args.skip_invalid => {
                put(target, &mut batch, &mut done)?;
                return Err(CliError::Usage(format!(
                    "the file changed while it was imported ({e}); {} records went in",
                    done.records
                )));
            }
            Err(e) => {
                done.skipped += 1;
                if done.samples.len() < SKIP_SAMPLES {
                    done.samples.push(e.to_string());
                }
            }
        }
        if reader.bytes_read() >= at + PROGRESS_BYTES {
            at = reader.bytes_read();
            bar.set_position(at);
            bar.set_message(format!("{} records", done.records + batch.len() as u64));
        }
    }
    put(target, &mut batch, &mut done)?;
    bar.set_position(size);
    bar.finish();
    Ok(done)
}

/// Whether a record can follow `prev` in a store whose newest record was
/// `newest` when the import began.
fn check(
    target: &dyn Target,
    prev: i64,
    newest: i64,
    ts: i64,
    payload: &[u8],
) -> Result<(), Refusal> {
    in_order(prev, newest, ts)?;
    Ok(target.check(payload)?)
}

fn in_order(prev: i64, newest: i64, ts: i64) -> Result<(), Refusal> {
    if ts <= prev {
        let after = if prev == newest {
            "the store's newest record"
        } else {
            "the record before it"
        };
        return Err(Refusal::OutOfOrder { ts, prev, after });
    }
    Ok(())
}

fn put(
    target: &mut dyn Target,
    batch: &mut Vec<(i64, Vec<u8>)>,
    done: &mut Loaded,
) -> Result<(), CliError> {
    if batch.is_empty() {
        return Ok(());
    }
    target.put(batch).map_err(|e| match e {
        CliError::Store(e) if done.records > 0 => CliError::Usage(format!(
            "{e}; the first {} records went in (rerun with --skip-invalid to resume)",
            done.records
        )),
        e => e,
    })?;
    done.records += batch.len() as u64;
    done.first.get_or_insert(batch[0].0);
    done.last = batch.last().map(|b| b.0);
    batch.clear();
    Ok(())
}
