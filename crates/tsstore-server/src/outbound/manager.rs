//! The outbound connections of every store, of every kind: create, list,
//! get, delete, persisted per store and kind (`ws_connections.json`,
//! `mqtt_connections.json`; mode 0600 since they hold secrets, replaced
//! atomically) and restored when the server starts.
//!
//! Each connection is one task (started through `Shutdown::spawn`):
//! `connection::run`, the same loop for every kind around its
//! `Kind::session`, with `Backoff` between sessions. `Outbound` holds the
//! `Env` the tasks are handed (never the server's `App`) and is the
//! `Keeper` that saves their cursors. Bounds: `Limits::max_outbound`
//! connections per store, all kinds together.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::connection::{Connection, Env, Keeper, Kind, State, cursor_path};
use super::influx::{InfluxSpec, InfluxSpecError};
use super::mqtt::{MqttSpec, MqttSpecError};
use super::spec::{ConnectionSpec, SpecError};
use crate::cursor_file::CursorFile;
use crate::registry::{OpenStore, Registry};

#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    MqttSpec(#[from] MqttSpecError),
    #[error(transparent)]
    InfluxSpec(#[from] InfluxSpecError),
    #[error(
        "store '{store}' has {max} outbound connections already (server.max_outbound_connections)"
    )]
    TooMany { store: String, max: usize },
    #[error("no connection '{0}' on this store")]
    NotFound(String),
    #[error("cannot save {path}: {source}")]
    Persist {
        path: String,
        source: crate::json_file::JsonFileError,
    },
    #[error("a lock was poisoned by an earlier panic")]
    Poisoned,
}

/// What a connection file holds for one connection.
#[derive(Debug, Serialize, Deserialize)]
#[serde(bound = "S: Kind")]
struct Saved<S> {
    id: String,
    created_at: String,
    #[serde(default)]
    cursor: i64,
    /// Connections with alert rules: the records up to here have had
    /// their alerts delivered (`alerts::Ledger`). Absent in files written
    /// before it was kept: the rules then start at the newest record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    alerts_cursor: Option<i64>,
    spec: S,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(bound = "S: Kind")]
struct SavedFile<S> {
    connections: Vec<Saved<S>>,
}

/// The connections of one kind, by store.
#[derive(Debug)]
pub struct Connections<S> {
    /// Store name → its connections.
    stores: Mutex<HashMap<String, Vec<Arc<Connection<S>>>>>,
    /// Serialises writes of the connection files.
    saving: Mutex<()>,
}

impl<S> Default for Connections<S> {
    fn default() -> Self {
        Connections {
            stores: Mutex::default(),
            saving: Mutex::default(),
        }
    }
}

/// Every store's outbound connections.
#[derive(Debug, Default)]
pub struct Outbound {
    pub ws: Connections<ConnectionSpec>,
    pub mqtt: Connections<MqttSpec>,
    pub influx: Connections<InfluxSpec>,
    pub env: Env,
}

/// A kind of connection together with the registry of its kind.
pub trait Registered: Kind {
    fn registry(out: &Outbound) -> &Connections<Self>;
}

impl Registered for ConnectionSpec {
    fn registry(out: &Outbound) -> &Connections<Self> {
        &out.ws
    }
}

impl Registered for MqttSpec {
    fn registry(out: &Outbound) -> &Connections<Self> {
        &out.mqtt
    }
}

impl Registered for InfluxSpec {
    fn registry(out: &Outbound) -> &Connections<Self> {
        &out.influx
    }
}

impl<S: Registered> Keeper<S> for Outbound {
    fn save_cursor(&self, open: &OpenStore, name: &str, conn: &Connection<S>) {
        S::registry(self).save_cursor(open, name, conn);
    }
}

impl Outbound {
    /// No connections yet; they stop with `env.shutdown`.
    pub fn new(env: Env) -> Arc<Outbound> {
        Arc::new(Outbound {
            ws: Connections::default(),
            mqtt: Connections::default(),
            influx: Connections::default(),
            env,
        })
    }

    /// Connections of every kind on store `name`.
    fn count(&self, name: &str) -> usize {
        self.ws.list(name).len() + self.mqtt.list(name).len() + self.influx.list(name).len()
    }

    /// Stops every connection of a store about to be deleted.
    pub fn stop_store(&self, name: &str) {
        self.ws.stop_store(name);
        self.mqtt.stop_store(name);
        self.influx.stop_store(name);
    }

    /// Starts the connections every store has saved; called once at start.
    pub async fn restore(self: &Arc<Self>, registry: &Registry) {
        self.ws.restore(self, registry).await;
        self.mqtt.restore(self, registry).await;
        self.influx.restore(self, registry).await;
    }

    /// `/metrics` lines: per connection its state, messages, errors and
    /// alerts; and for a sending connection on a store `newest` knows (an
    /// open one: its newest record), how far behind it is.
    pub fn render(&self, out: &mut String, newest: &dyn Fn(&str) -> Option<i64>) {
        use std::fmt::Write as _;
        let mut rows = self.ws.rows();
        rows.extend(self.mqtt.rows());
        rows.extend(self.influx.rows());
        for (i, (name, kind, help)) in SERIES.iter().enumerate() {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for r in &rows {
                let _ = writeln!(
                    out,
                    "{name}{{store=\"{}\",id=\"{}\",kind=\"{}\",mode=\"{}\"}} {}",
                    r.store, r.id, r.kind, r.mode, r.values[i]
                );
            }
        }
        let name = "tsstore_connection_lag_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Record time between the store's newest record and the last one the peer confirmed (push, publish, ship).\n# TYPE {name} gauge"
        );
        for r in rows
            .iter()
            .filter(|r| matches!(r.mode, "push" | "publish" | "ship"))
        {
            if let Some(newest) = newest(&r.store) {
                let lag = newest.saturating_sub(r.cursor).max(0) as f64 / 1e9;
                let _ = writeln!(
                    out,
                    "{name}{{store=\"{}\",id=\"{}\",kind=\"{}\",mode=\"{}\"}} {lag}",
                    r.store, r.id, r.kind, r.mode
                );
            }
        }
    }
}

/// The `/metrics` series of a connection, in `Row::values` order.
const SERIES: [(&str, &str, &str); 13] = [
    (
        "tsstore_connection_connected",
        "gauge",
        "1 while the outbound connection is up.",
    ),
    (
        "tsstore_connection_messages_sent_total",
        "counter",
        "Messages a push or publish connection sent.",
    ),
    (
        "tsstore_connection_messages_received_total",
        "counter",
        "Messages a pull or subscribe connection stored.",
    ),
    (
        "tsstore_connection_errors_total",
        "counter",
        "Failed dials, drops and skipped messages.",
    ),
    (
        "tsstore_connection_in_flight",
        "gauge",
        "Messages sent and not yet acknowledged (MQTT publish, push with ack app).",
    ),
    (
        "tsstore_connection_cursor_timestamp",
        "gauge",
        "Push and publish: the last record the peer confirmed (ns; the resume point). Pull: the last record stored.",
    ),
    (
        "tsstore_connection_refused_acks_total",
        "counter",
        "Acks from the peer for timestamps never sent, refused and answered with an error.",
    ),
    (
        "tsstore_connection_skipped_total",
        "counter",
        "Pull: records the source sent again (at or before the newest stored), skipped. Ship: records with nothing to send, and points the engine refused.",
    ),
    (
        "tsstore_connection_points_sent_total",
        "counter",
        "Ship: points the engine answered 2xx for.",
    ),
    (
        "tsstore_connection_alerts_fired_total",
        "counter",
        "Alert rule firings.",
    ),
    (
        "tsstore_connection_alert_evaluation_gaps_total",
        "counter",
        "Times the ring overwrote records before the alert rules saw them.",
    ),
    (
        "tsstore_connection_alert_socket_drops_total",
        "counter",
        "Alerts not sent on the connection: made while its peer was away, with its alert queue full.",
    ),
    (
        "tsstore_connection_webhook_failures_total",
        "counter",
        "Alerts whose webhook POST failed after its retries.",
    ),
];

/// One connection's figures for `/metrics`.
struct Row {
    store: String,
    id: String,
    kind: &'static str,
    mode: &'static str,
    cursor: i64,
    values: [u64; SERIES.len()],
}

impl<S: Registered> Connections<S> {
    /// Creates, saves and starts a connection on `open`.
    pub fn create(
        &self,
        out: &Arc<Outbound>,
        name: &str,
        open: &Arc<OpenStore>,
        spec: S,
    ) -> Result<Arc<Connection<S>>, OutboundError> {
        let max = out.env.limits.max_outbound;
        if out.count(name) >= max {
            return Err(OutboundError::TooMany {
                store: name.to_string(),
                max,
            });
        }
        let conn = {
            let mut stores = self.stores.lock().map_err(|_| OutboundError::Poisoned)?;
            let uuid = uuid::Uuid::new_v4().simple().to_string();
            let created_at = tsstore::rfc3339(tsstore::now_ns());
            let cursor = spec.first_cursor(open);
            let conn = Connection::new(
                uuid[..8].to_string(),
                created_at,
                cursor,
                None,
                spec,
                &out.env,
                open,
            );
            let list = stores.entry(name.to_string()).or_default();
            list.push(Arc::clone(&conn));
            conn
        };
        if let Err(e) = self.save(open.store.path(), name) {
            self.remove(name, &conn.id);
            return Err(e);
        }
        start(out, name, open, &conn);
        Ok(conn)
    }

    /// Every connection of this kind, as `/metrics` rows.
    fn rows(&self) -> Vec<Row> {
        let Ok(stores) = self.stores.lock() else {
            return Vec::new();
        };
        let mut rows: Vec<Row> = stores
            .iter()
            .flat_map(|(store, list)| {
                list.iter().map(move |c| {
                    let a = &c.alerts;
                    Row {
                        store: store.clone(),
                        id: c.id.clone(),
                        kind: S::LABEL,
                        mode: c.spec.mode(),
                        cursor: c.cursor(),
                        values: [
                            u64::from(c.state().0 == State::Connected),
                            c.messages_sent.load(Relaxed),
                            c.messages_received.load(Relaxed),
                            c.errors.load(Relaxed),
                            c.in_flight.load(Relaxed),
                            u64::try_from(c.cursor()).unwrap_or(0),
                            c.refused_acks.load(Relaxed),
                            c.skipped.load(Relaxed),
                            c.points_sent.load(Relaxed),
                            a.fired.load(Relaxed),
                            a.evaluation_gaps.load(Relaxed),
                            a.socket_drops.load(Relaxed),
                            a.webhook_failures.load(Relaxed),
                        ],
                    }
                })
            })
            .collect();
        rows.sort_by(|a, b| (&a.store, &a.id).cmp(&(&b.store, &b.id)));
        rows
    }

    pub fn list(&self, name: &str) -> Vec<Arc<Connection<S>>> {
        self.stores
            .lock()
            .ok()
            .and_then(|s| s.get(name).cloned())
            .unwrap_or_default()
    }

    pub fn get(&self, name: &str, id: &str) -> Result<Arc<Connection<S>>, OutboundError> {
        self.list(name)
            .into_iter()
            .find(|c| c.id == id)
            .ok_or_else(|| OutboundError::NotFound(id.to_string()))
    }

    /// Stops and forgets one connection.
    pub fn delete(&self, dir: &Path, name: &str, id: &str) -> Result<(), OutboundError> {
        let conn = self.get(name, id)?;
        conn.stop.cancel();
        conn.forget_cursor_file();
        self.remove(name, id);
        self.save(dir, name)
    }

    fn stop_store(&self, name: &str) {
        let gone = self.stores.lock().ok().and_then(|mut s| s.remove(name));
        for conn in gone.unwrap_or_default() {
            conn.stop.cancel();
        }
    }

    fn remove(&self, name: &str, id: &str) {
        if let Ok(mut stores) = self.stores.lock()
            && let Some(list) = stores.get_mut(name)
        {
            list.retain(|c| c.id != id);
        }
    }

    /// Writes the store's connection file of this kind (mode 0600:
    /// headers and passwords are secrets).
    pub(crate) fn save(&self, dir: &Path, name: &str) -> Result<(), OutboundError> {
        let _one_at_a_time = self.saving.lock().map_err(|_| OutboundError::Poisoned)?;
        let file = SavedFile {
            connections: self
                .list(name)
                .iter()
                .map(|c| Saved {
                    id: c.id.clone(),
                    created_at: c.created_at.clone(),
                    cursor: c.cursor(),
                    alerts_cursor: c.spec.has_alerts().then(|| c.alerts.ledger.resume()),
                    spec: c.spec.clone(),
                })
                .collect(),
        };
        let path = dir.join(S::FILE);
        let fail = |source: crate::json_file::JsonFileError| OutboundError::Persist {
            path: path.display().to_string(),
            source,
        };
        let bytes = serde_json::to_vec_pretty(&file).map_err(|e| fail(e.into()))?;
        tsstore::atomic_write(&path, &bytes, Some(0o600)).map_err(|e| fail(e.into()))
    }

    /// Saves the cursor of `conn` unless it was deleted meanwhile.
    pub(crate) fn save_cursor(&self, open: &OpenStore, name: &str, conn: &Connection<S>) {
        if self.get(name, &conn.id).is_err() {
            return;
        }
        if let Err(e) = self.save(open.store.path(), name) {
            tracing::warn!(connection = %conn.id, "cursor not saved: {e}");
        }
    }

    /// Starts the connections of this kind saved by every store that has
    /// any. A store or file that cannot be read is logged and skipped.
    async fn restore(&self, out: &Arc<Outbound>, registry: &Registry) {
        let base = registry.base();
        let names = tsstore::Store::list(base).unwrap_or_default();
        for name in names {
            let path = base.join(&name).join(S::FILE);
            let file: SavedFile<S> = match crate::json_file::read_optional(&path) {
                Ok(Some(f)) => f,
                Ok(None) => continue,
                Err(e) => {
                    tracing::error!(store = %name, "cannot read {}: {e}", path.display());
                    continue;
                }
            };
            if file.connections.is_empty() {
                continue;
            }
            let open = match registry.get(&name).await {
                Ok(open) => open,
                Err(e) => {
                    tracing::error!(store = %name, "connections not restored: {e}");
                    continue;
                }
            };
            for saved in file.connections {
                // The cursor file is written on every ack, the connection
                // file once a second: the file's is the newer.
                let written = if saved.spec.saves_cursor() {
                    let path = cursor_path(open.store.path(), S::LABEL, &saved.id);
                    CursorFile::peek(&path).ok().flatten().map(|s| s.cursor)
                } else {
                    None
                };
                let cursor = saved
                    .spec
                    .restored_cursor(written.unwrap_or(saved.cursor), &open);
                let conn = Connection::new(
                    saved.id,
                    saved.created_at,
                    cursor,
                    saved.alerts_cursor,
                    saved.spec,
                    &out.env,
                    &open,
                );
                if let Ok(mut stores) = self.stores.lock() {
                    stores
                        .entry(name.clone())
                        .or_default()
                        .push(Arc::clone(&conn));
                }
                if let Err(why) = conn.spec.restarts() {
                    conn.set_ended(why.into());
                    continue;
                }
                start(out, &name, &open, &conn);
                tracing::info!(store = %name, connection = %conn.id, kind = S::LABEL, mode = conn.spec.mode(), "restored outbound connection");
            }
        }
    }
}

fn start<S: Registered>(
    out: &Arc<Outbound>,
    name: &str,
    open: &Arc<OpenStore>,
    conn: &Arc<Connection<S>>,
) {
    let keeper: Arc<dyn Keeper<S>> = Arc::clone(out) as Arc<dyn Keeper<S>>;
    let task = super::connection::run::<S>(
        out.env.clone(),
        keeper,
        name.to_string(),
        Arc::clone(open),
        Arc::clone(conn),
    );
    out.env.shutdown.spawn(task);
}
