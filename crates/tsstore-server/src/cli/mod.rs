//! Command-line interface: store and key administration that works on the
//! store directories directly (no server needed), and the footprint
//! calculator. Errors are `CliError`s for `main` to print on stderr.

mod calc;
mod create;
mod export;
mod health;
mod import;
mod key;
mod progress;
mod remote;
mod status;
mod target;

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};
use tsstore::Store;

use crate::config::{self, ConfigError, Overrides, Settings};
use crate::keys::KeyError;
use crate::provision::ProvisionError;
use crate::serve::StartError;

/// Why a command failed; the message says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] tsstore::Error),
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error(transparent)]
    Provision(#[from] ProvisionError),
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("store '{name}' does not exist in {base} (see `tsstore status`)")]
    NoSuchStore { name: String, base: String },
    #[error("cannot list the data path {path}: {source}")]
    DataPath {
        path: String,
        source: tsstore::Error,
    },
    #[error(transparent)]
    Probe(#[from] crate::probe::ProbeError),
    /// Arguments that do not go together, or ask for the impossible.
    #[error("{0}")]
    Usage(String),
    #[error("cannot write JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Dump(#[from] crate::dump::DumpError),
    /// A record of an import did not check; nothing was written.
    #[error(
        "{0}\nnothing was imported (--skip-invalid imports the valid records and skips the rest)"
    )]
    Invalid(crate::dump::DumpError),
    #[error(
        "store '{store}' is held by a running server: import through it with \
         `tsstore import {store} FILE --url http://127.0.0.1:21080` and the store's key in \
         ${key_env} (or --api-key)",
        key_env = remote::KEY_ENV
    )]
    Held { store: String },
    /// Talking to a server (`import --url`) failed.
    #[error("{0}")]
    Remote(String),
}

#[derive(Debug, Parser)]
#[command(
    name = "tsstore",
    version,
    about = "Embedded ring-buffer time series store"
)]
pub struct Cli {
    /// Configuration file (default: $TSSTORE_CONFIG, if set).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a store and print its API key (shown once).
    Create(CreateArgs),
    /// Manage a store's API keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Show every store under the data path.
    Status(StatusArgs),
    /// Compute a store's disk footprint and how much it holds.
    Calc(CalcArgs),
    /// Write a store's records to NDJSON (exact, for backups) or CSV; works
    /// while a server runs.
    Export(ExportArgs),
    /// Add records from an export (NDJSON or CSV) to a store, or to a new
    /// one with --create; checks the whole file before writing any of it.
    Import(ImportArgs),
    /// Run the server: REST API and WebSockets on HTTP (HTTPS when a certificate is
    /// configured), line-protocol ingest on a Unix socket.
    Serve(ServeArgs),
    /// Ask the local server whether it is healthy (GET /health over plain
    /// HTTP; exit status 0 when it is): for container health checks.
    Health(HealthArgs),
    /// Print the version.
    Version,
}

#[derive(Debug, Args)]
pub struct HealthArgs {
    /// Port of the server (default: config, $TSSTORE_PORT, 21080).
    #[arg(long)]
    pub port: Option<u16>,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 5)]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (default: config, $TSSTORE_HOST, 0.0.0.0).
    #[arg(long)]
    pub host: Option<String>,
    /// Port to listen on; 0 picks a free one (default: config, $TSSTORE_PORT, 21080).
    #[arg(long)]
    pub port: Option<u16>,
    /// Unix socket for line-protocol ingest (default: config, $TSSTORE_SOCKET_PATH,
    /// /var/run/tsstore/tsstore.sock; if its directory cannot be made, no socket).
    #[arg(long, value_name = "PATH", conflicts_with = "no_socket")]
    pub socket: Option<String>,
    /// Do not open the Unix socket.
    #[arg(long = "no-socket")]
    pub no_socket: bool,
    #[command(flatten)]
    pub path: PathArg,
}

#[derive(Debug, Args)]
pub struct PathArg {
    /// Data directory holding the stores (default: config, $TSSTORE_DATA_PATH, ./data).
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Store name: 1–64 of A-Z a-z 0-9 _ -, not starting with '-'.
    pub name: String,
    /// Number of data blocks (the ring's length).
    #[arg(long)]
    pub blocks: Option<u32>,
    /// Data block size in bytes (a power of two, 64 B – 1 GiB).
    #[arg(long = "data-size")]
    pub data_size: Option<u32>,
    /// Index block size in bytes (a power of two).
    #[arg(long = "index-size")]
    pub index_size: Option<u32>,
    /// Data type: binary, text, json or schema.
    #[arg(long = "type", default_value = "json")]
    pub data_type: String,
    /// raw (ts-store's layout, readable by ts-store) or compressed (about
    /// ten times the readings in the same footprint; this tsstore only).
    #[arg(long, default_value = "raw")]
    pub encoding: String,
    /// A rollup to keep, WINDOW[:FUNCTIONS[:KEEP]] (`1h`, `1m:avg+max`,
    /// `1h::365d`); repeat for more. Default: the `rollups` setting.
    #[arg(long = "rollup", value_name = "SPEC")]
    pub rollups: Vec<String>,
    #[command(flatten)]
    pub path: PathArg,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Revoke every key of a store and print a new one (shown once).
    Regenerate {
        store: String,
        /// A note kept with the key (who or what uses it).
        #[arg(long, default_value = "")]
        note: String,
        #[command(flatten)]
        path: PathArg,
    },
    /// List a store's keys: ids, creation times and notes (never the keys).
    List {
        store: String,
        #[command(flatten)]
        path: PathArg,
    },
    /// Revoke one key by its id.
    Revoke {
        store: String,
        id: String,
        #[command(flatten)]
        path: PathArg,
    },
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub path: PathArg,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The store to export.
    pub store: String,
    /// First time to export: an RFC 3339 time or nanoseconds (default: the oldest record).
    #[arg(long, conflicts_with = "since")]
    pub from: Option<String>,
    /// Export only what is newer than this age, e.g. 24h or 7d.
    #[arg(long)]
    pub since: Option<String>,
    /// Last time to export: an RFC 3339 time or nanoseconds (default: the newest record).
    #[arg(long)]
    pub to: Option<String>,
    /// ndjson keeps every record exactly, with the store's settings;
    /// csv (json and schema stores) has one column per field.
    #[arg(long, value_enum, default_value = "ndjson")]
    pub format: crate::dump::Format,
    /// raw (default), or a rollup's window (1h): its windows' data, one
    /// record per window at the window's end.
    #[arg(long)]
    pub resolution: Option<String>,
    /// Write to FILE (it appears once complete) instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// No progress bar, and no summary when writing to standard output.
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub path: PathArg,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The store to import into.
    pub store: String,
    /// The file to import (an export, or NDJSON / CSV of the same shape).
    pub file: PathBuf,
    /// ndjson or csv (default: csv for a .csv file, else ndjson).
    #[arg(long, value_enum)]
    pub format: Option<crate::dump::Format>,
    /// Create the store first; type, geometry and schema come from the
    /// flags, else from the export header, else from the defaults.
    #[arg(long)]
    pub create: bool,
    /// Data type of the new store: binary, text, json or schema.
    #[arg(long = "type", requires = "create")]
    pub data_type: Option<String>,
    /// Encoding of the new store: raw or compressed.
    #[arg(long, requires = "create")]
    pub encoding: Option<String>,
    /// Number of data blocks of the new store.
    #[arg(long, requires = "create")]
    pub blocks: Option<u32>,
    /// Data block size of the new store, in bytes.
    #[arg(long = "data-size", requires = "create")]
    pub data_size: Option<u32>,
    /// Index block size of the new store, in bytes.
    #[arg(long = "index-size", requires = "create")]
    pub index_size: Option<u32>,
    /// Schema of a new schema store: a JSON file {"fields": [...]}, as
    /// GET /api/stores/{store}/schema returns it.
    #[arg(long, value_name = "FILE", requires = "create")]
    pub schema: Option<PathBuf>,
    /// Import the valid records and skip the others (and records already
    /// in the store, which resumes an interrupted import).
    #[arg(long)]
    pub skip_invalid: bool,
    /// Import through the server at this address (for a store it holds),
    /// e.g. http://127.0.0.1:21080.
    #[arg(long)]
    pub url: Option<String>,
    /// The store's API key for --url (default: $TSSTORE_API_KEY).
    #[arg(long, requires = "url")]
    pub api_key: Option<String>,
    /// No progress bar.
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub path: PathArg,
}

#[derive(Debug, Args)]
pub struct CalcArgs {
    /// Number of data blocks.
    #[arg(long, required_unless_present = "store")]
    pub blocks: Option<u32>,
    /// Data block size in bytes.
    #[arg(long = "block-size", required_unless_present = "store")]
    pub block_size: Option<u32>,
    /// Index block size in bytes.
    #[arg(long = "index-size", default_value_t = 4096)]
    pub index_size: u32,
    /// Payload size of one object, to count how many fit.
    #[arg(long = "object-size")]
    pub object_size: Option<u64>,
    /// One object every this long (e.g. 10s), to tell how much time fits.
    #[arg(long)]
    pub every: Option<String>,
    /// raw or compressed.
    #[arg(long, default_value = "raw")]
    pub encoding: String,
    /// Compressed stores: how many times the readings compress (raw bytes
    /// per frame byte). 10 is typical of sensor readings (11–14 measured on
    /// pvlib's weather data); `GET /api/stores/{store}/stats` measures it
    /// for a store's own data ("compression.ratio").
    #[arg(long, default_value_t = 10.0, requires = "object_size")]
    pub ratio: f64,
    /// A rollup to plan beside the store, WINDOW[:FUNCTIONS[:KEEP]]
    /// (`1h::365d`); repeat for more.
    #[arg(long = "rollup", value_name = "SPEC")]
    pub rollups: Vec<String>,
    /// Measure a store of the data directory instead (read-only, beside a
    /// running server): its records' size, how far back it and each of
    /// its rollups reach now and when full.
    #[arg(long, conflicts_with_all = ["blocks", "block_size", "object_size", "encoding", "ratio"])]
    pub store: Option<String>,
    #[command(flatten)]
    pub path: PathArg,
}

/// Settings from the config file and environment, with `--path` on top.
fn settings(config: Option<&Path>, path: &PathArg) -> Result<Settings, CliError> {
    let flags = Overrides {
        base_path: path.path.clone(),
        ..Overrides::default()
    };
    settings_with(config, flags)
}

/// Settings from the config file and environment, with `flags` on top.
fn settings_with(config: Option<&Path>, flags: Overrides) -> Result<Settings, CliError> {
    let file_path = config
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("TSSTORE_CONFIG").map(PathBuf::from));
    let file = match file_path {
        Some(p) => config::from_file(&p)?,
        None => Overrides::default(),
    };
    let env = config::from_env(|k| std::env::var(k).ok())?;
    Ok(Settings::resolve(file.then(env).then(flags))?)
}

/// Runs one command; the text is what to print on stdout.
pub fn run(cli: Cli) -> Result<String, CliError> {
    let config = cli.config.as_deref();
    match cli.command {
        Command::Version => Ok(format!("tsstore {}", env!("CARGO_PKG_VERSION"))),
        Command::Calc(args) if args.store.is_some() => {
            calc::measured(&settings(config, &args.path)?, &args)
        }
        Command::Calc(args) => calc::calc(&args),
        Command::Health(args) => health::health(config, &args),
        Command::Create(args) => create::create(&settings(config, &args.path)?, &args),
        Command::Status(args) => status::status(&settings(config, &args.path)?, args.json),
        Command::Key(cmd) => key::key(config, cmd),
        Command::Export(args) => export::export(&settings(config, &args.path)?, &args),
        Command::Import(args) => import::import(&settings(config, &args.path)?, &args),
        Command::Serve(args) => {
            let flags = Overrides {
                host: args.host,
                port: args.port,
                socket_path: if args.no_socket {
                    Some(String::new())
                } else {
                    args.socket
                },
                base_path: args.path.path,
                ..Overrides::default()
            };
            crate::serve::run(settings_with(config, flags)?)?;
            Ok(String::new())
        }
    }
}

pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// ` (first → last)` in RFC 3339, or nothing when there were no records.
fn time_span(first: Option<i64>, last: Option<i64>) -> String {
    match (first, last) {
        (Some(a), Some(b)) => format!(" ({} → {})", tsstore::rfc3339(a), tsstore::rfc3339(b)),
        _ => String::new(),
    }
}

pub(crate) fn human_duration(secs: f64) -> String {
    let units = [
        (604_800.0, "weeks"),
        (86_400.0, "days"),
        (3_600.0, "hours"),
        (60.0, "minutes"),
    ];
    for (size, name) in units {
        if secs >= size {
            return format!("{:.1} {name}", secs / size);
        }
    }
    format!("{secs:.1} seconds")
}

/// The directory of an existing store, or a message saying it is missing.
fn existing_store(base: &Path, name: &str) -> Result<PathBuf, CliError> {
    tsstore::validate_store_name(name)?;
    let dir = base.join(name);
    if !Store::exists(base, name) {
        return Err(CliError::NoSuchStore {
            name: name.to_string(),
            base: base.display().to_string(),
        });
    }
    Ok(dir)
}
