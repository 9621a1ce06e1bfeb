//! Settings: built-in defaults, overridden by `config.json`, overridden by
//! `TSSTORE_*` environment variables, overridden by command-line flags.
//!
//! Every layer is an `Overrides` (all fields optional) so precedence is one
//! fold; `Settings::resolve` then checks the result once, and an unknown
//! key in the file or a malformed variable is an error, never ignored.

use std::path::PathBuf;

use tsstore::{Config, DataType, SyncPolicy};

use crate::guard::FrontDoor;

mod file;
mod front;
mod residency;

pub use file::from_file;
pub use front::future_skew;
pub use residency::EngineSettings;

pub const DEFAULT_PORT: u16 = 21080;
pub const DEFAULT_SOCKET: &str = "/var/run/tsstore/tsstore.sock";
pub const MIN_ADMIN_KEY_LEN: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    File {
        path: String,
        source: crate::json_file::JsonFileError,
    },
    #[error("environment variable {name}={value:?} is invalid: {reason}")]
    Env {
        name: &'static str,
        value: String,
        reason: String,
    },
    #[error("invalid setting {setting}: {reason}")]
    Invalid {
        setting: &'static str,
        reason: String,
    },
    /// A setting the engine refused (the store defaults' geometry, the
    /// sync policy).
    #[error("invalid setting {setting}: {source}")]
    Engine {
        setting: &'static str,
        source: tsstore::Error,
    },
    #[error("invalid setting trusted_addresses: {0}")]
    TrustedAddresses(#[from] crate::guard::peer::NetworkError),
}

/// One layer of settings; `None` leaves the value of the layer below.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub socket_path: Option<String>,
    pub admin_key: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub base_path: Option<PathBuf>,
    pub data_block_size: Option<u32>,
    pub index_block_size: Option<u32>,
    pub num_blocks: Option<u32>,
    pub sync: Option<String>,
    pub sync_interval_ms: Option<u64>,
    pub log_level: Option<String>,
    pub max_body_bytes: Option<usize>,
    pub max_records: Option<usize>,
    pub max_connections: Option<usize>,
    pub request_timeout_ms: Option<u64>,
    pub worker_threads: Option<usize>,
    pub max_store_bytes: Option<u64>,
    pub max_line_bytes: Option<usize>,
    pub max_socket_clients: Option<usize>,
    pub max_message_bytes: Option<usize>,
    pub max_live_readers: Option<usize>,
    pub max_outbound_connections: Option<usize>,
    pub max_connections_per_address: Option<usize>,
    pub trusted_addresses: Option<Vec<String>>,
    pub request_header_timeout_ms: Option<u64>,
    pub keep_alive_timeout_ms: Option<u64>,
    pub send_timeout_ms: Option<u64>,
    pub ws_idle_timeout_ms: Option<u64>,
    pub auth_failure_burst: Option<u32>,
    pub auth_failures_per_sec: Option<f64>,
    pub max_future_skew: Option<String>,
    pub max_total_store_bytes: Option<u64>,
    pub store_idle_close_ms: Option<u64>,
    pub max_open_stores: Option<usize>,
    pub metrics_stores: Option<String>,
    pub read_mapping: Option<bool>,
    pub background_workers: Option<usize>,
    pub frame_cache_bytes: Option<usize>,
    /// Rollups of new stores that do not give their own (`1h::365d`).
    pub rollups: Option<Vec<String>>,
}

macro_rules! take_over {
    ($self:ident, $top:ident, $($field:ident),*) => {
        $( if $top.$field.is_some() { $self.$field = $top.$field; } )*
    };
}

impl Overrides {
    /// `self` with every value `top` sets replacing its own.
    pub fn then(mut self, top: Overrides) -> Overrides {
        take_over!(
            self,
            top,
            host,
            port,
            socket_path,
            admin_key,
            tls_cert,
            tls_key,
            base_path,
            data_block_size,
            index_block_size,
            num_blocks,
            sync,
            sync_interval_ms,
            log_level,
            max_body_bytes,
            max_records,
            max_connections,
            request_timeout_ms,
            worker_threads,
            max_store_bytes,
            max_line_bytes,
            max_socket_clients,
            max_message_bytes,
            max_live_readers,
            max_outbound_connections,
            max_connections_per_address,
            trusted_addresses,
            request_header_timeout_ms,
            keep_alive_timeout_ms,
            send_timeout_ms,
            ws_idle_timeout_ms,
            auth_failure_burst,
            auth_failures_per_sec,
            max_future_skew,
            max_total_store_bytes,
            store_idle_close_ms,
            max_open_stores,
            metrics_stores,
            read_mapping,
            background_workers,
            frame_cache_bytes,
            rollups
        );
        self
    }
}

/// Reads the `TSSTORE_*` layer through `get` (the process environment in
/// production, a map in tests).
pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Overrides, ConfigError> {
    fn number<T: std::str::FromStr>(
        name: &'static str,
        value: Option<String>,
    ) -> Result<Option<T>, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        value
            .map(|v| {
                v.parse::<T>().map_err(|e| ConfigError::Env {
                    name,
                    value: v.clone(),
                    reason: e.to_string(),
                })
            })
            .transpose()
    }
    let log_level = match get("TSSTORE_MODE").as_deref() {
        None => None,
        Some("debug") => Some("debug".to_string()),
        Some("release") => Some("info".to_string()),
        Some(other) => {
            return Err(ConfigError::Env {
                name: "TSSTORE_MODE",
                value: other.to_string(),
                reason: "expected debug or release".into(),
            });
        }
    };
    Ok(Overrides {
        host: get("TSSTORE_HOST"),
        port: number("TSSTORE_PORT", get("TSSTORE_PORT"))?,
        socket_path: get("TSSTORE_SOCKET_PATH"),
        admin_key: get("TSSTORE_ADMIN_KEY"),
        tls_cert: get("TSSTORE_TLS_CERT").map(PathBuf::from),
        tls_key: get("TSSTORE_TLS_KEY").map(PathBuf::from),
        base_path: get("TSSTORE_DATA_PATH").map(PathBuf::from),
        data_block_size: None,
        index_block_size: None,
        num_blocks: None,
        sync: get("TSSTORE_SYNC"),
        sync_interval_ms: number("TSSTORE_SYNC_INTERVAL_MS", get("TSSTORE_SYNC_INTERVAL_MS"))?,
        log_level,
        ..Overrides::default()
    })
}

/// `v`, or `default` when it is not set; zero is refused, naming `setting`.
fn positive<T: PartialEq + Default>(
    setting: &'static str,
    v: Option<T>,
    default: T,
) -> Result<T, ConfigError> {
    match v {
        Some(n) if n == T::default() => Err(ConfigError::Invalid {
            setting,
            reason: "it must be at least 1".into(),
        }),
        Some(n) => Ok(n),
        None => Ok(default),
    }
}

/// Fully resolved and checked settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub host: String,
    pub port: u16,
    /// `None`: no Unix socket.
    pub socket_path: Option<PathBuf>,
    pub admin_key: Option<String>,
    /// Both set, or neither.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub base_path: PathBuf,
    /// Defaults for new stores (data type json).
    pub store_defaults: Config,
    /// Rollups of new stores that give none of their own.
    pub store_rollups: Vec<tsstore::RollupConfig>,
    pub sync: SyncPolicy,
    pub log_level: String,
    pub max_body_bytes: usize,
    pub max_records: usize,
    /// Connection bounds, timeouts and the auth throttle.
    pub front: FrontDoor,
    /// Client timestamps further ahead of the clock are refused (`None`:
    /// no guard).
    pub max_future_skew: Option<std::time::Duration>,
    /// Largest total footprint of all stores created over the API.
    pub max_total_store_bytes: Option<u64>,
    /// When unused stores close, and how many may be open.
    pub residency: crate::registry::StoreResidency,
    /// Which stores get their own series in `/metrics`.
    pub metrics_stores: crate::metrics::StoreSeries,
    /// The engine's process-wide settings, applied before any store opens.
    pub engine: EngineSettings,
    pub request_timeout: std::time::Duration,
    /// `None`: one per core.
    pub worker_threads: Option<usize>,
    /// Largest footprint of a store created over the API; `None`: no cap.
    pub max_store_bytes: Option<u64>,
    pub max_line_bytes: usize,
    pub max_socket_clients: usize,
    pub max_message_bytes: usize,
    pub max_live_readers: usize,
    pub max_outbound_connections: usize,
}

impl Settings {
    pub fn resolve(o: Overrides) -> Result<Settings, ConfigError> {
        let invalid = |setting, reason: String| ConfigError::Invalid { setting, reason };
        if let Some(key) = &o.admin_key
            && key.chars().count() < MIN_ADMIN_KEY_LEN
        {
            return Err(invalid(
                "admin_key",
                format!("it must be at least {MIN_ADMIN_KEY_LEN} characters"),
            ));
        }
        let front = front::resolve(&o)?;
        let max_future_skew = front::future_skew(o.max_future_skew.as_deref())?;
        let tls = match (o.tls_cert, o.tls_key) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => {
                return Err(invalid(
                    "tls",
                    "give both the certificate and the key file, or neither".into(),
                ));
            }
        };
        let defaults = Config::default();
        let store_defaults = Config {
            num_blocks: o.num_blocks.unwrap_or(defaults.num_blocks),
            data_block_size: o.data_block_size.unwrap_or(defaults.data_block_size),
            index_block_size: o.index_block_size.unwrap_or(defaults.index_block_size),
            data_type: DataType::Json,
            encoding: tsstore::Encoding::Raw,
        };
        store_defaults
            .validate()
            .map_err(|source| ConfigError::Engine {
                setting: "store",
                source,
            })?;
        let store_rollups = (o.rollups.iter().flatten())
            .map(|text| text.parse::<tsstore::RollupConfig>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| ConfigError::Engine {
                setting: "rollups",
                source,
            })?;
        let sync = SyncPolicy::parse(
            o.sync.as_deref().unwrap_or("interval"),
            o.sync_interval_ms.unwrap_or(1000),
        )
        .map_err(|source| ConfigError::Engine {
            setting: "sync",
            source,
        })?;
        let max_body_bytes = positive("max_body_bytes", o.max_body_bytes, 1 << 20)?;
        let max_records = positive("max_records", o.max_records, 100_000)?;
        if o.max_total_store_bytes == Some(0) {
            return Err(invalid(
                "max_total_store_bytes",
                "it must be at least 1".into(),
            ));
        }
        let timeout_ms = positive(
            "request_timeout_ms",
            o.request_timeout_ms.map(|v| v as usize),
            30_000,
        )?;
        if o.worker_threads == Some(0) {
            return Err(invalid("worker_threads", "it must be at least 1".into()));
        }
        let max_line_bytes = positive("max_line_bytes", o.max_line_bytes, 1 << 20)?;
        let max_socket_clients = positive("max_socket_clients", o.max_socket_clients, 64)?;
        let max_message_bytes = positive("max_message_bytes", o.max_message_bytes, 1 << 20)?;
        let max_live_readers = positive("max_live_readers", o.max_live_readers, 64)?;
        let max_outbound_connections =
            positive("max_outbound_connections", o.max_outbound_connections, 16)?;
        if o.max_store_bytes == Some(0) {
            return Err(invalid("max_store_bytes", "it must be at least 1".into()));
        }
        let residency = residency::resolve(o.store_idle_close_ms, o.max_open_stores)?;
        let metrics_stores = residency::store_series(o.metrics_stores.as_deref())?;
        let engine = residency::engine(o.read_mapping, o.background_workers, o.frame_cache_bytes)?;
        Ok(Settings {
            engine,
            residency,
            metrics_stores,
            max_store_bytes: o.max_store_bytes,
            max_line_bytes,
            max_socket_clients,
            max_message_bytes,
            max_live_readers,
            max_outbound_connections,
            worker_threads: o.worker_threads,
            max_body_bytes,
            max_records,
            front,
            max_future_skew,
            max_total_store_bytes: o.max_total_store_bytes,
            request_timeout: std::time::Duration::from_millis(timeout_ms as u64),
            host: o.host.unwrap_or_else(|| "0.0.0.0".to_string()),
            port: o.port.unwrap_or(DEFAULT_PORT),
            socket_path: match o.socket_path.as_deref() {
                Some("") => None,
                Some(p) => Some(PathBuf::from(p)),
                None => Some(PathBuf::from(DEFAULT_SOCKET)),
            },
            admin_key: o.admin_key,
            tls,
            base_path: o.base_path.unwrap_or_else(|| PathBuf::from("./data")),
            store_defaults,
            store_rollups,
            sync,
            log_level: o.log_level.unwrap_or_else(|| "info".to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::time::Duration;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn file_then_env_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            r#"{"server": {"host": "127.0.0.1", "port": 9000, "worker_threads": 1, "max_body_bytes": 10,
                           "max_store_bytes": 65536,
                           "tls": {"cert_file": "c.pem", "key_file": "k.pem"}},
                "store": {"base_path": "/file", "num_blocks": 64, "sync": "always"}}"#,
        )
        .unwrap();
        let file = from_file(&path).unwrap();
        let environment = from_env(env(&[
            ("TSSTORE_PORT", "9001"),
            ("TSSTORE_DATA_PATH", "/env"),
            ("TSSTORE_MODE", "debug"),
        ]))
        .unwrap();
        let flags = Overrides {
            port: Some(9002),
            ..Overrides::default()
        };
        let s = Settings::resolve(file.then(environment).then(flags)).unwrap();
        assert_eq!(s.host, "127.0.0.1");
        assert_eq!(s.port, 9002);
        assert_eq!(s.base_path, PathBuf::from("/env"));
        assert_eq!(s.store_defaults.num_blocks, 64);
        assert_eq!(s.sync, SyncPolicy::Always);
        assert_eq!(s.log_level, "debug");
        assert_eq!(s.tls, Some(("c.pem".into(), "k.pem".into())));
        assert_eq!((s.worker_threads, s.max_body_bytes), (Some(1), 10));
        assert_eq!(s.max_records, 100_000);
        assert_eq!(s.max_store_bytes, Some(65536));
    }

    #[test]
    fn defaults() {
        let s = Settings::resolve(Overrides::default()).unwrap();
        assert_eq!((s.host.as_str(), s.port), ("0.0.0.0", 21080));
        assert_eq!(s.base_path, PathBuf::from("./data"));
        assert_eq!(s.socket_path, Some(PathBuf::from(DEFAULT_SOCKET)));
        assert_eq!(s.sync, SyncPolicy::Interval(Duration::from_millis(1000)));
        assert!(s.tls.is_none() && s.admin_key.is_none());
    }

    #[test]
    fn bad_settings_are_errors_that_say_which() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        std::fs::write(&path, r#"{"server": {"prot": 1}}"#).unwrap();
        let e = from_file(&path).unwrap_err().to_string();
        assert!(e.contains("prot") && e.contains("c.json"), "{e}");
        let e = from_file(&dir.path().join("none.json"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("none.json"), "{e}");

        let e = from_env(env(&[("TSSTORE_PORT", "http")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("TSSTORE_PORT"), "{e}");
        let e = from_env(env(&[("TSSTORE_MODE", "fast")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("TSSTORE_MODE"), "{e}");

        let short = Overrides {
            admin_key: Some("short".into()),
            ..Overrides::default()
        };
        let e = Settings::resolve(short).unwrap_err().to_string();
        assert!(e.contains("admin_key") && e.contains("20"), "{e}");
        let half_tls = Overrides {
            tls_cert: Some("c".into()),
            ..Overrides::default()
        };
        assert!(
            Settings::resolve(half_tls)
                .unwrap_err()
                .to_string()
                .contains("tls")
        );
        let bad_sync = Overrides {
            sync: Some("sometimes".into()),
            ..Overrides::default()
        };
        assert!(
            Settings::resolve(bad_sync)
                .unwrap_err()
                .to_string()
                .contains("sync")
        );
        for zero in [
            Overrides {
                worker_threads: Some(0),
                ..Overrides::default()
            },
            Overrides {
                max_connections: Some(0),
                ..Overrides::default()
            },
        ] {
            let e = Settings::resolve(zero).unwrap_err().to_string();
            assert!(e.contains("at least 1"), "{e}");
        }
        let bad_blocks = Overrides {
            data_block_size: Some(1000),
            ..Overrides::default()
        };
        assert!(
            Settings::resolve(bad_blocks)
                .unwrap_err()
                .to_string()
                .contains("store")
        );
    }
}
