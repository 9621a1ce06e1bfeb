//! Command-line interface: store and key administration that works on the
//! store directories directly (no server needed), and the footprint
//! calculator. Errors are `CliError`s for `main` to print on stderr.

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};
use tsstore::{Config, DataType, Store, SyncPolicy};

use crate::config::{self, ConfigError, Overrides, Settings};
use crate::keys::{KeyError, KeyFile};
use crate::provision::{self, ProvisionError, StoreRequest};
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
pub struct CalcArgs {
    /// Number of data blocks.
    #[arg(long)]
    pub blocks: u32,
    /// Data block size in bytes.
    #[arg(long = "block-size")]
    pub block_size: u32,
    /// Index block size in bytes.
    #[arg(long = "index-size", default_value_t = 4096)]
    pub index_size: u32,
    /// Payload size of one object, to count how many fit.
    #[arg(long = "object-size")]
    pub object_size: Option<u64>,
    /// One object every this long (e.g. 10s), to tell how much time fits.
    #[arg(long)]
    pub every: Option<String>,
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
        Command::Calc(args) => calc(&args),
        Command::Health(args) => health(config, &args),
        Command::Create(args) => create(&settings(config, &args.path)?, &args),
        Command::Status(args) => status(&settings(config, &args.path)?, args.json),
        Command::Key(cmd) => key(config, cmd),
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

fn human_duration(secs: f64) -> String {
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

fn create(settings: &Settings, args: &CreateArgs) -> Result<String, CliError> {
    let config = StoreRequest {
        num_blocks: args.blocks,
        data_block_size: args.data_size,
        index_block_size: args.index_size,
        data_type: Some(&args.data_type),
    }
    .resolve(&settings.store_defaults, None)?;
    let note = "created by tsstore create";
    let (store, key) = provision::create_store(
        &settings.base_path,
        &args.name,
        config,
        SyncPolicy::Always,
        note,
    )?;
    let dir = store.path().to_path_buf();
    store.close()?;
    let size = config.num_blocks as u64 * config.data_block_size as u64;
    Ok(format!(
        "created store '{}' ({}, {} blocks of {} bytes: {}) in {}\n\
         API key (shown only now; keep it): {}\nkey id: {}",
        args.name,
        config.data_type,
        config.num_blocks,
        config.data_block_size,
        human_bytes(size),
        dir.display(),
        key.key,
        key.id
    ))
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

impl KeyCommand {
    /// The store the command acts on and where to find it.
    fn target(&self) -> (&str, &PathArg) {
        match self {
            KeyCommand::Regenerate { store, path, .. }
            | KeyCommand::List { store, path }
            | KeyCommand::Revoke { store, path, .. } => (store, path),
        }
    }
}

fn key(config: Option<&Path>, cmd: KeyCommand) -> Result<String, CliError> {
    let (store, path) = cmd.target();
    let dir = existing_store(&settings(config, path)?.base_path, store)?;
    match &cmd {
        KeyCommand::Regenerate { store, note, .. } => {
            let mut keys = KeyFile::new(store);
            let key = keys.add(note)?;
            keys.save(&dir)?;
            Ok(format!(
                "every earlier key of '{store}' is revoked\nAPI key (shown only now; keep it): {}\nkey id: {}",
                key.key, key.id
            ))
        }
        KeyCommand::List { store, .. } => {
            let keys = KeyFile::load(&dir, store)?;
            if keys.keys.is_empty() {
                return Ok(format!("store '{store}' has no keys"));
            }
            let mut out = format!("{:<8}  {:<30}  note", "id", "created");
            for k in &keys.keys {
                out.push_str(&format!("\n{:<8}  {:<30}  {}", k.id, k.created_at, k.note));
            }
            Ok(out)
        }
        KeyCommand::Revoke { store, id, .. } => {
            let mut keys = KeyFile::load(&dir, store)?;
            keys.revoke(id)?;
            keys.save(&dir)?;
            Ok(format!("key {id} of '{store}' is revoked"))
        }
    }
}

/// One row of `status`.
#[derive(Debug, serde::Serialize)]
struct StoreStatus {
    name: String,
    /// `null` when the store could not be opened; `error` says why.
    #[serde(skip_serializing_if = "Option::is_none")]
    stats: Option<tsstore::Stats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

fn status(settings: &Settings, json: bool) -> Result<String, CliError> {
    let base = &settings.base_path;
    let names = Store::list(base).map_err(|source| CliError::DataPath {
        path: base.display().to_string(),
        source,
    })?;
    let rows: Vec<StoreStatus> = names
        .into_iter()
        .map(
            |name| match Store::open_with(base, &name, SyncPolicy::Never) {
                Ok(store) => {
                    let stats = store.stats();
                    let _ = store.close();
                    StoreStatus {
                        name,
                        stats: Some(stats),
                        error: None,
                    }
                }
                Err(e) => StoreStatus {
                    name,
                    stats: None,
                    error: Some(e.to_string()),
                },
            },
        )
        .collect();
    if json {
        return Ok(serde_json::to_string_pretty(&rows)?);
    }
    if rows.is_empty() {
        return Ok(format!("no stores in {}", base.display()));
    }
    let mut out = format!(
        "{:<24} {:<7} {:>10} {:>6}  {:<30}  newest",
        "name", "type", "size", "fill", "oldest"
    );
    for row in rows {
        match row.stats {
            Some(s) => out.push_str(&format!(
                "\n{:<24} {:<7} {:>10} {:>5.1}%  {:<30}  {}",
                row.name,
                s.data_type.as_str(),
                human_bytes(s.capacity_bytes),
                100.0 * s.bytes_used as f64 / s.capacity_bytes.max(1) as f64,
                s.oldest_time.as_deref().unwrap_or("-"),
                s.newest_time.as_deref().unwrap_or("-"),
            )),
            None => out.push_str(&format!(
                "\n{:<24} {}",
                row.name,
                row.error.unwrap_or_default()
            )),
        }
    }
    Ok(out)
}

fn health(config: Option<&Path>, args: &HealthArgs) -> Result<String, CliError> {
    let flags = Overrides {
        port: args.port,
        ..Overrides::default()
    };
    let settings = settings_with(config, flags)?;
    if settings.tls.is_some() {
        return Err(CliError::Usage(
            "the server speaks HTTPS only (server.tls): `tsstore health` asks over plain HTTP"
                .into(),
        ));
    }
    // A server listening on every address answers on loopback.
    let host = match settings.host.as_str() {
        "0.0.0.0" | "" => "127.0.0.1",
        "::" | "[::]" => "::1",
        other => other,
    };
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    let timeout = std::time::Duration::from_secs(args.timeout.max(1));
    Ok(crate::probe::health(&host, settings.port, timeout)?)
}

fn calc(args: &CalcArgs) -> Result<String, CliError> {
    let config = Config {
        num_blocks: args.blocks,
        data_block_size: args.block_size,
        index_block_size: args.index_size,
        data_type: DataType::Binary,
    };
    let footprint = tsstore::Footprint::of(&config)?;
    let mut out = format!(
        "data.tsdb   {} ({} blocks of {} bytes)\nindex.tsdb  {}\nmeta.tsdb   {}\ntotal       {}",
        human_bytes(footprint.data_bytes),
        args.blocks,
        args.block_size,
        human_bytes(footprint.index_bytes),
        human_bytes(footprint.meta_bytes),
        human_bytes(footprint.total_bytes)
    );
    let Some(size) = args.object_size else {
        if args.every.is_some() {
            return Err(CliError::Usage("--every needs --object-size".into()));
        }
        return Ok(out);
    };
    let capacity = tsstore::Capacity::of(&config, size)?;
    if !capacity.fits() {
        return Err(CliError::Usage(format!(
            "an object of {size} bytes needs {} blocks; the ring has only {}",
            capacity.blocks_per_object, args.blocks
        )));
    }
    if capacity.packs() {
        out.push_str(&format!(
            "\nobjects of {size} bytes: {} per block (packed)",
            capacity.objects_per_block
        ));
    } else {
        out.push_str(&format!(
            "\nobjects of {size} bytes: each spans {} blocks",
            capacity.blocks_per_object
        ));
    }
    out.push_str(&format!(
        "\nthe ring holds {} objects",
        capacity.max_objects
    ));
    if let Some(every) = &args.every {
        let d =
            tsstore::parse_duration(every).map_err(|e| CliError::Usage(format!("--every: {e}")))?;
        out.push_str(&format!(
            "\nat one object every {every}: {} of history",
            human_duration(capacity.history(d).as_secs_f64())
        ));
    }
    Ok(out)
}
