//! The outbound connections of every store: create, list, get, delete,
//! persisted per store in `ws_connections.json` (mode 0600, replaced
//! atomically) and restored when the server starts.
//!
//! Each connection is one task (started through `Shutdown::spawn`) that
//! dials, runs, and after a drop dials again with `Backoff`. A push runs a
//! `records::live` feed from its cursor: the last record written to a
//! healthy connection that the peer confirmed reading (a ping carrying the
//! cursor after each batch; the peer's pong proves it read everything
//! before), persisted at most every `CURSOR_SAVE_EVERY` and when the task
//! ends, so a reconnect or a restart resumes after it: records sent after
//! the last confirmation may be sent twice, none is skipped. A pull
//! stores every `{"timestamp"?, "data"}` it receives through
//! `records::intake`; invalid messages are counted and skipped. A push
//! with alert rules starts their evaluation (`alerts::start`) once, for
//! the life of the connection, and sends the alerts it makes. Bounds:
//! `Limits::max_outbound` connections per store.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use super::spec::{ConnectionSpec, Mode, SpecError};
use crate::alerts::{self, AlertCounters};
use crate::app::App;
use crate::records::intake;
use crate::records::live::{self, Ending, Feed, Incoming, Outgoing, Progress};
use crate::registry::{OpenStore, store_stopping};

pub const CONNECTIONS_FILE: &str = "ws_connections.json";
/// Longest a push's cursor goes unsaved while records flow.
const CURSOR_SAVE_EVERY: Duration = Duration::from_secs(1);
/// Longest a dial may take.
const DIAL_TIMEOUT: Duration = Duration::from_secs(10);
const PING_EVERY: Duration = Duration::from_secs(30);
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(
        "store '{store}' has {max} outbound connections already (server.max_outbound_connections)"
    )]
    TooMany { store: String, max: usize },
    #[error("no connection '{0}' on this store")]
    NotFound(String),
    #[error("cannot save {path}: {reason}")]
    Persist { path: String, reason: String },
}

/// A connection's state, as the API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Connecting,
    Connected,
    Disconnected,
    Error,
}

/// One outbound connection.
#[derive(Debug)]
pub struct Connection {
    pub id: String,
    pub spec: ConnectionSpec,
    pub created_at: String,
    /// Push: the last record the peer confirmed reading (resume point).
    cursor: AtomicI64,
    /// Push: the last record the feed has read from the store.
    pub read_timestamp: AtomicI64,
    pub messages_sent: AtomicU64,
    pub messages_received: AtomicU64,
    pub errors: AtomicU64,
    /// What its alert rules have done (zeros without rules).
    pub alerts: Arc<AlertCounters>,
    /// Alert rules see the records after this one (the newest when the
    /// connection was created or restored).
    pub alerts_from: i64,
    state: Mutex<(State, Option<String>)>,
    pub(crate) stop: CancellationToken,
}

impl Connection {
    /// A connection on `open` resuming after `cursor`, stopped with the
    /// server.
    fn new(
        id: String,
        created_at: String,
        cursor: i64,
        spec: ConnectionSpec,
        app: &App,
        open: &OpenStore,
    ) -> Arc<Connection> {
        Arc::new(Connection {
            id,
            created_at,
            cursor: AtomicI64::new(cursor),
            read_timestamp: AtomicI64::new(cursor),
            spec,
            messages_sent: AtomicU64::new(0),
            messages_received: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            alerts: Arc::default(),
            alerts_from: open.store.stats().newest_timestamp.unwrap_or(0),
            state: Mutex::new((State::Connecting, None)),
            stop: app.shutdown.token().child_token(),
        })
    }

    pub fn cursor(&self) -> i64 {
        self.cursor.load(Relaxed)
    }

    pub fn state(&self) -> (State, Option<String>) {
        self.state
            .lock()
            .map(|s| s.clone())
            .unwrap_or((State::Error, Some("a lock was poisoned".into())))
    }

    fn set_state(&self, state: State) {
        if let Ok(mut s) = self.state.lock() {
            s.0 = state;
        }
    }

    fn failed(&self, state: State, why: String) {
        tracing::info!(connection = %self.id, url = %self.spec.redacted_url(), "outbound connection: {why}");
        if let Ok(mut s) = self.state.lock() {
            *s = (state, Some(why));
        }
        // Counted after the message is in place: whoever sees the count
        // (reading it first) also sees why.
        self.errors
            .fetch_add(1, std::sync::atomic::Ordering::Release);
    }
}

/// What `ws_connections.json` holds for one connection.
#[derive(Debug, Serialize, Deserialize)]
struct Saved {
    id: String,
    created_at: String,
    #[serde(default)]
    cursor: i64,
    spec: ConnectionSpec,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct SavedFile {
    connections: Vec<Saved>,
}

/// Every store's outbound connections.
#[derive(Debug, Default)]
pub struct Outbound {
    /// Store name → its connections (at most `Limits::max_outbound` each).
    stores: Mutex<HashMap<String, Vec<Arc<Connection>>>>,
    /// Serialises writes of the connection files.
    saving: Mutex<()>,
}

impl Outbound {
    /// Creates, saves and starts a connection on `open`.
    pub fn create(
        &self,
        app: &App,
        name: &str,
        open: &Arc<OpenStore>,
        spec: ConnectionSpec,
    ) -> Result<Arc<Connection>, OutboundError> {
        let conn = {
            let mut stores = self.stores.lock().map_err(|_| poisoned())?;
            let list = stores.entry(name.to_string()).or_default();
            let max = app.limits.max_outbound;
            if list.len() >= max {
                return Err(OutboundError::TooMany {
                    store: name.to_string(),
                    max,
                });
            }
            let uuid = uuid::Uuid::new_v4().simple().to_string();
            let created_at = tsstore::rfc3339(tsstore::now_ns());
            let from = spec.from.unwrap_or(0);
            let conn = Connection::new(uuid[..8].to_string(), created_at, from, spec, app, open);
            list.push(Arc::clone(&conn));
            conn
        };
        if let Err(e) = self.save(open.store.path(), name) {
            self.remove(name, &conn.id);
            return Err(e);
        }
        start(app, name, open, &conn);
        Ok(conn)
    }

    /// Every connection of every store, for `/metrics`.
    pub fn all(&self) -> Vec<(String, Arc<Connection>)> {
        let Ok(stores) = self.stores.lock() else {
            return Vec::new();
        };
        let mut out: Vec<_> = stores
            .iter()
            .flat_map(|(name, list)| list.iter().map(move |c| (name.clone(), Arc::clone(c))))
            .collect();
        out.sort_by(|a, b| (&a.0, &a.1.id).cmp(&(&b.0, &b.1.id)));
        out
    }

    /// `/metrics` lines: per connection its state, messages and errors.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write as _;
        let all = self.all();
        type Get = fn(&Connection) -> u64;
        let series: [(&str, &str, &str, Get); 9] = [
            (
                "tsstore_connection_connected",
                "gauge",
                "1 while the outbound connection is up.",
                |c| u64::from(c.state().0 == State::Connected),
            ),
            (
                "tsstore_connection_messages_sent_total",
                "counter",
                "Messages a push sent.",
                |c| c.messages_sent.load(Relaxed),
            ),
            (
                "tsstore_connection_messages_received_total",
                "counter",
                "Messages a pull stored.",
                |c| c.messages_received.load(Relaxed),
            ),
            (
                "tsstore_connection_errors_total",
                "counter",
                "Failed dials, drops and skipped messages.",
                |c| c.errors.load(Relaxed),
            ),
            (
                "tsstore_connection_alerts_fired_total",
                "counter",
                "Alert rule firings.",
                |c| c.alerts.fired.load(Relaxed),
            ),
            (
                "tsstore_connection_alert_evaluation_gaps_total",
                "counter",
                "Times the ring overwrote records before the alert rules saw them.",
                |c| c.alerts.evaluation_gaps.load(Relaxed),
            ),
            (
                "tsstore_connection_alert_socket_drops_total",
                "counter",
                "Alerts not sent on the connection: its alert queue was full.",
                |c| c.alerts.socket_drops.load(Relaxed),
            ),
            (
                "tsstore_connection_webhook_failures_total",
                "counter",
                "Alerts whose webhook POST failed after its retries.",
                |c| c.alerts.webhook_failures.load(Relaxed),
            ),
            (
                "tsstore_connection_webhook_drops_total",
                "counter",
                "Alerts not POSTed: the webhook's queue was full.",
                |c| c.alerts.webhook_drops.load(Relaxed),
            ),
        ];
        for (name, kind, help, get) in series {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (store, c) in &all {
                let mode = c.spec.mode.as_str();
                let _ = writeln!(
                    out,
                    "{name}{{store=\"{store}\",id=\"{}\",mode=\"{mode}\"}} {}",
                    c.id,
                    get(c)
                );
            }
        }
    }

    pub fn list(&self, name: &str) -> Vec<Arc<Connection>> {
        self.stores
            .lock()
            .ok()
            .and_then(|s| s.get(name).cloned())
            .unwrap_or_default()
    }

    pub fn get(&self, name: &str, id: &str) -> Result<Arc<Connection>, OutboundError> {
        self.list(name)
            .into_iter()
            .find(|c| c.id == id)
            .ok_or_else(|| OutboundError::NotFound(id.to_string()))
    }

    /// Stops and forgets one connection.
    pub fn delete(&self, dir: &Path, name: &str, id: &str) -> Result<(), OutboundError> {
        let conn = self.get(name, id)?;
        conn.stop.cancel();
        self.remove(name, id);
        self.save(dir, name)
    }

    /// Stops every connection of a store about to be deleted.
    pub fn stop_store(&self, name: &str) {
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

    /// Writes the store's connection file (mode 0600: headers are secrets).
    fn save(&self, dir: &Path, name: &str) -> Result<(), OutboundError> {
        let _one_at_a_time = self.saving.lock().map_err(|_| poisoned())?;
        let file = SavedFile {
            connections: self
                .list(name)
                .iter()
                .map(|c| Saved {
                    id: c.id.clone(),
                    created_at: c.created_at.clone(),
                    cursor: c.cursor(),
                    spec: c.spec.clone(),
                })
                .collect(),
        };
        let path = dir.join(CONNECTIONS_FILE);
        let fail = |reason: String| OutboundError::Persist {
            path: path.display().to_string(),
            reason,
        };
        let bytes = serde_json::to_vec_pretty(&file).map_err(|e| fail(e.to_string()))?;
        tsstore::atomic_write(&path, &bytes, Some(0o600)).map_err(|e| fail(e.to_string()))
    }

    /// Starts the connections saved by every store that has any; called
    /// once at start. A store or file that cannot be read is logged and
    /// skipped.
    pub async fn restore(&self, app: &App) {
        let base = app.registry.base();
        let names = tsstore::Store::list(base).unwrap_or_default();
        for name in names {
            let path = base.join(&name).join(CONNECTIONS_FILE);
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            let file: SavedFile = match serde_json::from_slice(&bytes) {
                Ok(f) => f,
                Err(e) => {
                    tracing::error!(store = %name, "cannot read {}: {e}", path.display());
                    continue;
                }
            };
            if file.connections.is_empty() {
                continue;
            }
            let open = match app.registry.get(&name).await {
                Ok(open) => open,
                Err(e) => {
                    tracing::error!(store = %name, "connections not restored: {e}");
                    continue;
                }
            };
            for saved in file.connections {
                let conn = Connection::new(
                    saved.id,
                    saved.created_at,
                    saved.cursor,
                    saved.spec,
                    app,
                    &open,
                );
                if let Ok(mut stores) = self.stores.lock() {
                    stores
                        .entry(name.clone())
                        .or_default()
                        .push(Arc::clone(&conn));
                }
                start(app, &name, &open, &conn);
                tracing::info!(store = %name, connection = %conn.id, mode = conn.spec.mode.as_str(), "restored outbound connection");
            }
        }
    }
}

fn poisoned() -> OutboundError {
    OutboundError::Persist {
        path: CONNECTIONS_FILE.into(),
        reason: "a lock was poisoned by an earlier panic".into(),
    }
}

fn start(app: &App, name: &str, open: &Arc<OpenStore>, conn: &Arc<Connection>) {
    let (app2, name, open, conn) = (
        Arc::clone(app),
        name.to_string(),
        Arc::clone(open),
        Arc::clone(conn),
    );
    app.shutdown.spawn(async move {
        run(&app2, &name, open, conn).await;
    });
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Dials the connection's URL with its headers.
async fn dial(spec: &ConnectionSpec) -> Result<Socket, String> {
    let mut request = spec
        .url
        .as_str()
        .into_client_request()
        .map_err(|e| format!("bad request: {e}"))?;
    for (k, v) in &spec.headers {
        let name = HeaderName::from_bytes(k.as_bytes()).map_err(|e| e.to_string())?;
        let value = HeaderValue::from_str(v).map_err(|e| e.to_string())?;
        request.headers_mut().insert(name, value);
    }
    let connector = if spec.url.starts_with("wss://") {
        let config = spec.tls_config().map_err(|e| e.to_string())?;
        Some(tokio_tungstenite::Connector::Rustls(Arc::new(config)))
    } else {
        None
    };
    // Small messages go out at once instead of waiting for Nagle.
    let dialing = tokio_tungstenite::connect_async_tls_with_config(request, None, true, connector);
    match tokio::time::timeout(DIAL_TIMEOUT, dialing).await {
        Ok(Ok((socket, _))) => Ok(socket),
        Ok(Err(e)) => Err(format!("cannot connect: {e}")),
        Err(_) => Err(format!(
            "cannot connect within {} s",
            DIAL_TIMEOUT.as_secs()
        )),
    }
}

/// The connection's life: dial, run, and after a drop dial again.
async fn run(app: &App, name: &str, open: Arc<OpenStore>, conn: Arc<Connection>) {
    let seed = u64::from_str_radix(&conn.id, 16).unwrap_or(1);
    let mut backoff = Backoff::new(seed);
    let mut stopping = open.stopping.subscribe();
    // Alert rules follow the store whether the peer is there or not (a
    // webhook still fires); alerts for the socket wait for it (bounded).
    let mut notices = (!conn.spec.rules.is_empty()).then(|| alerts::start(app, &open, &conn));
    loop {
        if conn.stop.is_cancelled() || *stopping.borrow() {
            break;
        }
        conn.set_state(State::Connecting);
        let dialled = tokio::select! {
            d = dial(&conn.spec) => d,
            _ = conn.stop.cancelled() => break,
        };
        let ending = match dialled {
            Err(why) => {
                conn.failed(State::Error, why);
                None
            }
            Ok(socket) => {
                conn.set_state(State::Connected);
                backoff.reset();
                match conn.spec.mode {
                    Mode::Push => Some(push(app, &open, &conn, socket, notices.as_mut()).await),
                    Mode::Pull => Some(pull(&open, &conn, socket).await),
                }
            }
        };
        match ending {
            Some(Ending::ServerStopping | Ending::StoreDeleted | Ending::StoreClosed) => break,
            Some(Ending::StoreReset) => {
                // Everything before the reset is gone: start from the top.
                conn.cursor.store(0, Relaxed);
                continue;
            }
            Some(other) => conn.failed(State::Disconnected, describe(&other)),
            None => {}
        }
        let wait = backoff.next_delay();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = conn.stop.cancelled() => break,
            _ = store_stopping(&mut stopping) => break,
        }
    }
    // The final cursor, unless the connection was deleted meanwhile.
    let still_listed = app.outbound.get(name, &conn.id).is_ok();
    if conn.spec.mode == Mode::Push
        && still_listed
        && let Err(e) = app.outbound.save(open.store.path(), name)
    {
        tracing::warn!(connection = %conn.id, "cursor not saved: {e}");
    }
    conn.set_state(State::Disconnected);
}

fn describe(ending: &Ending) -> String {
    match ending {
        Ending::PeerGone => "the peer closed the connection".into(),
        Ending::Idle => "nothing heard from the peer; reconnecting".into(),
        Ending::ReadFailed(why) => format!("reading the store failed: {why}"),
        other => format!("{other:?}"),
    }
}

/// Push progress: the delivered cursor, saved at a bounded rate.
struct PushProgress<'a> {
    app: &'a App,
    name: &'a str,
    dir: &'a Path,
    conn: &'a Connection,
    saved_at: Instant,
}

impl Progress for PushProgress<'_> {
    fn reached(&mut self, cursor: i64) {
        self.conn.read_timestamp.store(cursor, Relaxed);
    }

    fn confirmed(&mut self, cursor: i64) {
        self.conn.cursor.store(cursor, Relaxed);
        if self.saved_at.elapsed() >= CURSOR_SAVE_EVERY {
            self.saved_at = Instant::now();
            if let Err(e) = self.app.outbound.save(self.dir, self.name) {
                tracing::warn!(connection = %self.conn.id, "cursor not saved: {e}");
            }
        }
    }
}

fn to_message(o: Outgoing) -> Message {
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    match o {
        Outgoing::Text(t) => Message::Text(t.into()),
        Outgoing::Ping => Message::Ping(Default::default()),
        Outgoing::Mark(c) => Message::Ping(c.to_le_bytes().to_vec().into()),
        Outgoing::Close { code, reason } => Message::Close(Some(CloseFrame {
            code: code.into(),
            reason: reason.into(),
        })),
    }
}

async fn push(
    app: &App,
    open: &Arc<OpenStore>,
    conn: &Arc<Connection>,
    socket: Socket,
    notices: Option<&mut mpsc::Receiver<String>>,
) -> Ending {
    let spec = match conn
        .spec
        .read_spec(open.store.data_type(), app.limits.max_records)
    {
        Ok(spec) => spec,
        Err(e) => return Ending::ReadFailed(e.to_string()),
    };
    let (tx, rx) = socket.split();
    let mut sink = tx.with(|o: Outgoing| {
        std::future::ready(Ok::<_, tokio_tungstenite::tungstenite::Error>(to_message(
            o,
        )))
    });
    let mut incoming = rx.map(|m| match m {
        Ok(Message::Close(_)) | Err(_) => Incoming::Gone,
        Ok(Message::Pong(p)) => match <[u8; 8]>::try_from(&p[..]) {
            Ok(bytes) => Incoming::Confirmed(i64::from_le_bytes(bytes)),
            Err(_) => Incoming::Alive,
        },
        Ok(_) => Incoming::Alive,
    });
    let feed = Feed {
        open: Arc::clone(open),
        spec,
        from: conn.cursor(),
        stop: conn.stop.clone(),
        ping_every: PING_EVERY,
        idle_timeout: IDLE_TIMEOUT,
        confirm: true,
        notices,
    };
    let name = open.store.name().to_string();
    let mut progress = PushProgress {
        app,
        name: &name,
        dir: open.store.path(),
        conn,
        saved_at: Instant::now(),
    };
    live::run(
        feed,
        &mut sink,
        &mut incoming,
        &mut progress,
        &conn.messages_sent,
    )
    .await
}

async fn pull(open: &Arc<OpenStore>, conn: &Arc<Connection>, socket: Socket) -> Ending {
    let (mut tx, mut rx) = socket.split();
    let mut stopping = open.stopping.subscribe();
    let dt = open.store.data_type();
    let ending = loop {
        let message = tokio::select! {
            _ = conn.stop.cancelled() => break Ending::ServerStopping,
            _ = store_stopping(&mut stopping) => break Ending::StoreDeleted,
            m = tokio::time::timeout(IDLE_TIMEOUT, rx.next()) => match m {
                Ok(m) => m,
                Err(_) => break Ending::Idle,
            },
        };
        match message {
            Some(Ok(Message::Text(t))) => {
                let stored = intake::store_one(open, intake::envelope(dt, t.as_bytes()));
                match stored {
                    Ok(_) => {
                        conn.messages_received.fetch_add(1, Relaxed);
                    }
                    Err(e) => conn.failed(State::Connected, format!("message skipped: {e}")),
                }
            }
            Some(Ok(Message::Binary(_))) => {
                conn.failed(
                    State::Connected,
                    "binary message skipped: send {\"timestamp\"?, \"data\"} as text".into(),
                );
            }
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break Ending::PeerGone,
            Some(Ok(_)) => {}
        }
    };
    if let Some(frame) = ending.close_frame() {
        let _ = tx.send(to_message(frame)).await;
    }
    let _ = tx.close().await;
    ending
}
