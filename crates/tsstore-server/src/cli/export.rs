//! `tsstore export`: a store's records as NDJSON or CSV (see `dump`),
//! streamed from a read-only snapshot (`Store::open_read_only`): it works
//! while a server holds the store, and needs memory for one read batch and
//! one output buffer, not for the store.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::ProgressBar;
use tsstore::{DataType, SchemaDoc, Store};

use super::{CliError, ExportArgs, existing_store, human_bytes, progress, time_span};
use crate::config::Settings;
use crate::dump::{self, Format, Header, csv};
use crate::records::encode::DataEncoding;
use crate::records::pipeline::{self, Shower};

/// Output is written in pieces of about this size.
const WRITE_CHUNK: usize = 256 * 1024;
/// Most distinct fields a CSV export makes columns of: records with
/// ever-new keys would otherwise make a header without end.
pub const MAX_CSV_COLUMNS: usize = 4096;
/// Records between progress updates.
const PROGRESS_EVERY: u64 = 8192;

pub(super) fn export(settings: &Settings, args: &ExportArgs) -> Result<String, CliError> {
    let base = &settings.base_path;
    existing_store(base, &args.store)?;
    let (from, to) = window(args)?;
    let store = Store::open_read_only(base, &args.store)?;
    let rollup = rollup_window(&store, args.resolution.as_deref())?;
    let dt = store.data_type();
    if args.format == Format::Csv && !matches!(dt, DataType::Json | DataType::Schema) {
        return Err(CliError::Usage(format!(
            "CSV export is for json and schema stores; '{}' is a {dt} store (use --format ndjson)",
            args.store
        )));
    }
    let started = Instant::now();
    let stats = store.stats();
    let span = match (stats.oldest_timestamp, stats.newest_timestamp) {
        (Some(old), Some(new)) => (from.max(old), to.min(new)),
        _ => (from, from),
    };
    let show = progress::wanted(args.quiet);
    let mut out = Output::open(args.output.as_deref())?;
    let mut job = Job {
        store: &store,
        rollup,
        from,
        to,
        span,
        show,
        out: &mut out,
        buf: Vec::with_capacity(WRITE_CHUNK + 64 * 1024),
        done: Done::default(),
    };
    match args.format {
        Format::Ndjson => job.ndjson(&args.store)?,
        Format::Csv => job.csv()?,
    }
    let done = job.done;
    let bytes = out.finish()?;
    let secs = started.elapsed().as_secs_f64();
    let mut summary = format!(
        "exported {} records of '{}'{} to {}: {} in {secs:.2} s ({:.0} records/s)",
        done.records,
        args.store,
        time_span(done.first, done.last),
        args.output
            .as_deref()
            .map_or("standard output".into(), |p| p.display().to_string()),
        human_bytes(bytes),
        done.records as f64 / secs.max(1e-9),
    );
    let skipped = store.stats().corruption_skips;
    if skipped > 0 {
        summary.push_str(&format!(
            "\nwarning: {skipped} times records were skipped: a running server wrapped the ring \
             over them while they were read, or they are damaged"
        ));
    }
    if done.inexact > 0 {
        summary.push_str(&format!(
            "\nwarning: {} records will not import back byte for byte from CSV (spacing, field \
             order or escapes differ from the compact form); NDJSON keeps every record exact",
            done.inexact
        ));
    }
    if args.output.is_some() {
        return Ok(summary);
    }
    if !args.quiet || skipped > 0 || done.inexact > 0 {
        eprintln!("{summary}");
    }
    Ok(String::new())
}

/// `--from`/`--since` and `--to` as an inclusive window of nanoseconds.
fn window(args: &ExportArgs) -> Result<(i64, i64), CliError> {
    let from = match (&args.from, &args.since) {
        (Some(t), _) => instant(t, "from")?,
        (None, Some(d)) => {
            let age = tsstore::parse_duration_ns(d)
                .map_err(|e| CliError::Usage(format!("--since: {e}")))?;
            tsstore::now_ns().saturating_sub(age)
        }
        (None, None) => i64::MIN,
    };
    let to = args
        .to
        .as_deref()
        .map(|t| instant(t, "to"))
        .transpose()?
        .unwrap_or(i64::MAX);
    if from > to {
        return Err(CliError::Usage(
            "the window is empty: --from (or --since) is after --to".into(),
        ));
    }
    Ok((from, to))
}

/// Nanoseconds since the epoch, or an RFC 3339 time.
pub(super) fn instant(text: &str, flag: &str) -> Result<i64, CliError> {
    if let Ok(ns) = text.parse::<i64>() {
        return Ok(ns);
    }
    tsstore::parse_rfc3339(text)
        .map_err(|e| CliError::Usage(format!("--{flag}: {e}, or nanoseconds since the epoch")))
}

/// What an export wrote.
#[derive(Debug, Default)]
struct Done {
    records: u64,
    first: Option<i64>,
    last: Option<i64>,
    /// CSV: records that would not import back byte for byte.
    inexact: u64,
}

/// The rollup `--resolution` names (`None`: raw records).
fn rollup_window(store: &Store, resolution: Option<&str>) -> Result<Option<i64>, CliError> {
    let window = match resolution {
        None | Some("raw") => return Ok(None),
        Some(text) => tsstore::parse_duration_ns(text).map_err(|e| {
            CliError::Usage(format!(
                "--resolution: '{text}' is not raw or a rollup's window such as 1h ({e})"
            ))
        })?,
    };
    if !store.rollups().iter().any(|r| r.window_ns == window) {
        let label = tsstore::window_label(window).unwrap_or_default();
        return Err(tsstore::Error::RollupNotFound(label).into());
    }
    Ok(Some(window))
}

/// Windows read from a rollup at a time.
const ROLLUP_CHUNK: usize = 10_000;

/// One export in progress.
struct Job<'a> {
    store: &'a Store,
    /// Export this rollup's windows instead of the raw records.
    rollup: Option<i64>,
    from: i64,
    to: i64,
    /// The part of the window that holds records, for progress.
    span: (i64, i64),
    show: bool,
    out: &'a mut Output,
    buf: Vec<u8>,
    done: Done,
}

impl Job<'_> {
    fn bar(&self, prefix: &'static str) -> ProgressBar {
        let bar = progress::bar(self.show, self.span.1.abs_diff(self.span.0), false);
        bar.set_prefix(prefix);
        bar
    }

    /// Walks the window; `each` gets every record as users see it.
    fn each(
        &mut self,
        bar: &ProgressBar,
        mut each: impl FnMut(i64, &[u8], &mut Vec<u8>) -> Result<(), CliError>,
    ) -> Result<(), CliError> {
        if let Some(window) = self.rollup {
            return self.each_window(window, bar, each);
        }
        // Every record whole, as users see it (the read pipeline's view).
        let spec = pipeline::whole(None);
        let mut shower = Shower::new(self.store, &spec);
        let mut n = 0u64;
        for rec in self.store.iter_range(self.from, self.to) {
            let rec = rec?;
            let ts = rec.timestamp();
            if let Some(data) = shower.show(&rec.data) {
                each(ts, data, &mut self.buf)?;
            }
            if self.buf.len() >= WRITE_CHUNK {
                self.out.write(&self.buf)?;
                self.buf.clear();
            }
            n += 1;
            if n.is_multiple_of(PROGRESS_EVERY) {
                bar.set_position(ts.abs_diff(self.span.0));
                bar.set_message(format!("{n} records"));
            }
        }
        self.out.write(&self.buf)?;
        self.buf.clear();
        bar.set_message(format!("{n} records"));
        bar.finish();
        Ok(())
    }

    /// `each` for a rollup: every window's data at the window's end.
    fn each_window(
        &mut self,
        window: i64,
        bar: &ProgressBar,
        mut each: impl FnMut(i64, &[u8], &mut Vec<u8>) -> Result<(), CliError>,
    ) -> Result<(), CliError> {
        let (mut from, mut n) = (self.from, 0u64);
        loop {
            let windows = self
                .store
                .rollup_windows(window, from, self.to, ROLLUP_CHUNK)?;
            for w in &windows {
                each(w.end, &w.data, &mut self.buf)?;
                if self.buf.len() >= WRITE_CHUNK {
                    self.out.write(&self.buf)?;
                    self.buf.clear();
                }
                n += 1;
            }
            match windows.last() {
                // The next windows end after this one.
                Some(last) if windows.len() == ROLLUP_CHUNK => {
                    from = last.end;
                    bar.set_position(last.end.abs_diff(self.span.0));
                }
                _ => break,
            }
        }
        self.out.write(&self.buf)?;
        self.buf.clear();
        bar.set_message(format!("{n} windows"));
        bar.finish();
        Ok(())
    }

    fn count(done: &mut Done, ts: i64) {
        done.records += 1;
        done.first.get_or_insert(ts);
        done.last = Some(ts);
    }

    fn ndjson(&mut self, name: &str) -> Result<(), CliError> {
        let config = self.store.config();
        let header = Header {
            tsstore_export: dump::FORMAT_VERSION,
            store: name.to_string(),
            data_type: config.data_type,
            encoding: config.encoding,
            num_blocks: config.num_blocks,
            data_block_size: config.data_block_size,
            index_block_size: config.index_block_size,
            schema: self.store.schema().map(|s| SchemaDoc::from(s.as_ref())),
            from: (self.from != i64::MIN).then_some(self.from),
            to: (self.to != i64::MAX).then_some(self.to),
            exported_at: tsstore::rfc3339(tsstore::now_ns()),
        };
        self.out.write(&header.line())?;
        let enc = DataEncoding::of(self.store);
        let bar = self.bar("exporting");
        let mut done = Done::default();
        self.each(&bar, |ts, data, buf| {
            dump::push_ndjson(buf, ts, data, enc);
            Job::count(&mut done, ts);
            Ok(())
        })?;
        self.done = done;
        Ok(())
    }

    fn csv(&mut self) -> Result<(), CliError> {
        let columns = self.columns()?;
        let mut header = Vec::new();
        csv::push_row(
            &mut header,
            std::iter::once("timestamp").chain(columns.iter().map(String::as_str)),
        );
        self.out.write(&header)?;
        let position: HashMap<&str, usize> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| (c.as_str(), i))
            .collect();
        let check = self.store.data_type() == DataType::Json;
        let bar = self.bar("exporting");
        let mut done = Done::default();
        let mut stamp = itoa::Buffer::new();
        self.each(&bar, |ts, data, buf| {
            let entries = dump::object_entries(data).ok_or_else(|| not_an_object(ts))?;
            let mut cells = vec![Cow::Borrowed(""); columns.len()];
            let mut exact = true;
            for (key, value) in &entries {
                match position.get(key.as_str()) {
                    Some(&i) if cells[i].is_empty() => cells[i] = csv::cell_of(value),
                    // A repeated key keeps its first value; either way the
                    // record cannot come back as it was.
                    _ => exact = false,
                }
            }
            if check && (!exact || !csv::would_round_trip(&columns, &cells, data)) {
                done.inexact += 1;
            }
            csv::push_row(
                buf,
                std::iter::once(stamp.format(ts)).chain(cells.iter().map(|c| c.as_ref())),
            );
            Job::count(&mut done, ts);
            Ok(())
        })?;
        self.done = done;
        Ok(())
    }

    /// The CSV columns: the schema's fields in order, then every other
    /// field the window's records have, in the order first seen.
    fn columns(&mut self) -> Result<Vec<String>, CliError> {
        let mut columns: Vec<String> = self
            .store
            .schema()
            .map(|s| s.fields().iter().map(|f| f.name.clone()).collect())
            .unwrap_or_default();
        let mut seen: HashSet<String> = columns.iter().cloned().collect();
        let bar = self.bar("scanning");
        self.each(&bar, |ts, data, _| {
            let entries = dump::object_entries(data).ok_or_else(|| not_an_object(ts))?;
            for (key, _) in entries {
                if !seen.contains(&key) {
                    if columns.len() >= MAX_CSV_COLUMNS {
                        return Err(CliError::Usage(format!(
                            "the records have more than {MAX_CSV_COLUMNS} distinct fields, \
                             too many for CSV columns (use --format ndjson)"
                        )));
                    }
                    seen.insert(key.clone());
                    columns.push(key);
                }
            }
            Ok(())
        })?;
        Ok(columns)
    }
}

fn not_an_object(ts: i64) -> CliError {
    CliError::Usage(format!(
        "the record at {ts} is not a JSON object, which CSV needs (use --format ndjson)"
    ))
}

/// Where an export goes: standard output, or a file that appears under
/// its name only once complete and synced (a failed export leaves
/// nothing behind, and never a half backup under the real name).
enum Output {
    Stdout(std::io::StdoutLock<'static>, u64),
    File {
        file: File,
        partial: PathBuf,
        path: PathBuf,
        written: u64,
        finished: bool,
    },
}

impl Output {
    fn open(path: Option<&Path>) -> Result<Output, CliError> {
        let Some(path) = path else {
            return Ok(Output::Stdout(std::io::stdout().lock(), 0));
        };
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(".partial");
        let partial = path.with_file_name(name);
        let file = File::create(&partial).map_err(|source| CliError::Write {
            path: partial.display().to_string(),
            source,
        })?;
        Ok(Output::File {
            file,
            partial,
            path: path.to_path_buf(),
            written: 0,
            finished: false,
        })
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), CliError> {
        let (result, written, path) = match self {
            Output::Stdout(out, written) => {
                (out.write_all(bytes), written, "standard output".into())
            }
            Output::File {
                file,
                partial,
                written,
                ..
            } => (
                file.write_all(bytes),
                written,
                partial.display().to_string(),
            ),
        };
        *written += bytes.len() as u64;
        result.map_err(|source| CliError::Write { path, source })
    }

    /// Flushes (and for a file, syncs and renames); returns the bytes written.
    fn finish(&mut self) -> Result<u64, CliError> {
        match self {
            Output::Stdout(out, written) => {
                out.flush().map_err(|source| CliError::Write {
                    path: "standard output".into(),
                    source,
                })?;
                Ok(*written)
            }
            Output::File {
                file,
                partial,
                path,
                written,
                finished,
            } => {
                let write_err = |source| CliError::Write {
                    path: path.display().to_string(),
                    source,
                };
                file.sync_all().map_err(write_err)?;
                std::fs::rename(&*partial, &*path).map_err(write_err)?;
                *finished = true;
                Ok(*written)
            }
        }
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if let Output::File {
            partial,
            finished: false,
            ..
        } = self
        {
            let _ = std::fs::remove_file(partial);
        }
    }
}
