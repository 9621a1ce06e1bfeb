//! One outbound connection, whatever it speaks: its settings (`S`, a
//! `Kind`), its resume cursor, its counters and its state, shared by the
//! task that runs it and the API that shows it; and that task's loop
//! (`run`), the same for every kind around the kind's own session.

use std::future::Future;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::{CancellationToken, PollSender};

use super::backoff::Backoff;
use super::mqtt::MqttSpecError;
use crate::alerts::{AlertCounters, SaveNow};
use crate::cursor_file::{CURSORS_DIR, CursorFile};
use crate::limits::Limits;
use crate::net::{HeaderError, TlsError};
use crate::records::RecordError;
use crate::records::live::{self, Feed, Progress};
use crate::records::session::{Ending, Incoming, Outgoing};
use crate::registry::{OpenStore, store_stopping};
use crate::shutdown::Shutdown;

/// What differs between the kinds of outbound connection (WebSocket,
/// MQTT): where they are kept, how they show in logs and metrics, and
/// the task that runs one.
pub trait Kind:
    Serialize + DeserializeOwned + Clone + std::fmt::Debug + Send + Sync + 'static
{
    /// The file in the store's directory that keeps them.
    const FILE: &'static str;
    /// The `kind` label of their `/metrics` series.
    const LABEL: &'static str;

    /// `push`, `pull`, `publish` or `subscribe`.
    fn mode(&self) -> &'static str;

    /// Where it connects, as logs may show it (no secret).
    fn shown_url(&self) -> String;

    /// The cursor a new connection starts after.
    fn first_cursor(&self, open: &OpenStore) -> i64;

    /// The cursor a connection restored at start resumes after, given
    /// the one saved.
    fn restored_cursor(&self, saved: i64, _open: &OpenStore) -> i64 {
        saved
    }

    /// Whether a connection restored at start runs again (a one-shot
    /// connection does not: why, otherwise).
    fn restarts(&self) -> Result<(), &'static str> {
        Ok(())
    }

    /// Who is at the other end ("peer", "broker"), for messages.
    const PEER: &'static str;

    /// What a connection keeps from one session to the next (a push's
    /// alert notices, which follow the store whether the peer is there or
    /// not), made when its task starts. `save` writes the connection's
    /// file (for the alerts' resume point).
    type Life: Send;

    fn start_life(
        env: &Env,
        open: &Arc<OpenStore>,
        conn: &Arc<Connection<Self>>,
        save: SaveNow,
    ) -> Self::Life;

    /// Whether it has alert rules (whose resume point its file keeps).
    fn has_alerts(&self) -> bool {
        false
    }

    /// One session: connect, then work until the connection drops or must
    /// end (`Err`: it could not connect, why). A session ends by itself
    /// soon after `conn.stop` or the store's `stopping`.
    fn session<'a>(
        run: Run<'a, Self>,
        life: &'a mut Self::Life,
        backoff: &'a mut Backoff,
    ) -> impl Future<Output = Result<Ending, SessionError>> + Send + 'a;

    /// A connection that runs one session only (why it ended, for the API).
    fn one_shot(&self) -> Option<&'static str> {
        None
    }

    /// Whether its cursor is saved when its task ends.
    fn saves_cursor(&self) -> bool;
}

/// Why a session could not start, or broke off (it is retried after a
/// pause; the message is what the connection's state shows).
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("cannot connect: {0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
    #[error("cannot connect within {} s", .0.as_secs())]
    DialTimeout(Duration),
    #[error(transparent)]
    Header(#[from] HeaderError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Spec(#[from] MqttSpecError),
    #[error(transparent)]
    Read(#[from] RecordError),
    #[error("cannot connect: {0}")]
    Mqtt(Box<rumqttc::ConnectionError>),
    #[error("stopped while connecting")]
    Stopped,
    #[error("connection lost: {0}")]
    Lost(Box<rumqttc::ConnectionError>),
    #[error("connection lost")]
    Closed,
    #[error("connection lost: cannot publish ({0})")]
    Publish(rumqttc::ClientError),
    #[error("cannot subscribe: {0}")]
    Subscribe(rumqttc::ClientError),
    #[error("the broker refused the subscription to '{0}'")]
    SubscriptionRefused(String),
    #[error(transparent)]
    InfluxSpec(#[from] super::influx::InfluxSpecError),
    #[error("cannot send: {0}")]
    Http(#[from] crate::net::HttpError),
    /// An engine answered a write with other than 2xx (or 400/422,
    /// which refuse points and are passed over).
    #[error("the engine answered {status}: {answer}")]
    EngineAnswered { status: u16, answer: String },
    #[error("gzip: {0}")]
    Gzip(#[source] std::io::Error),
    #[error("the credentials are not a valid header value")]
    Credentials,
}

/// What outbound connections take from the server: its stop signal and
/// request bounds, handed over instead of the server's whole state.
#[derive(Debug, Clone, Default)]
pub struct Env {
    pub shutdown: Shutdown,
    pub limits: Limits,
}

/// Where a connection's cursor is kept: its kind's connection file
/// (`manager::Connections`), which the task writes through this so that
/// a connection does not depend on the registry that holds it.
pub trait Keeper<S>: Send + Sync {
    /// Writes the connection file holding `conn`'s cursor, unless `conn`
    /// was deleted meanwhile.
    fn save_cursor(&self, open: &OpenStore, name: &str, conn: &Connection<S>);
}

/// What a running connection's session works with.
pub struct Run<'a, S> {
    pub env: &'a Env,
    pub keeper: &'a dyn Keeper<S>,
    pub name: &'a str,
    pub open: &'a Arc<OpenStore>,
    pub conn: &'a Arc<Connection<S>>,
}

impl<S> Clone for Run<'_, S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S> Copy for Run<'_, S> {}

/// A connection's life, the same for every kind: a session, and after
/// it drops a pause (growing, with jitter) and another, until the
/// connection is stopped or deleted, the store goes, or a one-shot
/// connection has had its session. A reset store restarts the cursor.
pub(crate) async fn run<S: Kind>(
    env: Env,
    keeper: Arc<dyn Keeper<S>>,
    name: String,
    open: Arc<OpenStore>,
    conn: Arc<Connection<S>>,
) {
    let seed = u64::from_str_radix(&conn.id, 16).unwrap_or(1);
    let mut backoff = Backoff::new(seed);
    let mut stopping = open.stopping.subscribe();
    let save: SaveNow = {
        let (keeper, name, open, conn) = (
            Arc::clone(&keeper),
            name.clone(),
            Arc::clone(&open),
            Arc::clone(&conn),
        );
        Arc::new(move || keeper.save_cursor(&open, &name, &conn))
    };
    let mut life = S::start_life(&env, &open, &conn, save);
    let at = Run {
        env: &env,
        keeper: &*keeper,
        name: &name,
        open: &open,
        conn: &conn,
    };
    loop {
        if conn.stop.is_cancelled() || *stopping.borrow() {
            break;
        }
        conn.set_state(State::Connecting);
        let ended = S::session(at, &mut life, &mut backoff).await;
        if conn.stop.is_cancelled() {
            break;
        }
        match ended {
            Ok(Ending::ServerStopping | Ending::StoreDeleted | Ending::StoreClosed) => break,
            Ok(Ending::StoreReset) => {
                // Everything before the reset is gone: start from the top.
                conn.set_cursor(0);
                continue;
            }
            Ok(other) => conn.failed(State::Disconnected, describe(&other, S::PEER)),
            Err(e) => conn.failed(State::Error, e.to_string()),
        }
        if let Some(why) = conn.spec.one_shot() {
            conn.set_ended(why.into());
            break;
        }
        let wait = backoff.next_delay();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = conn.stop.cancelled() => break,
            _ = store_stopping(&mut stopping) => break,
        }
    }
    // The final cursor (and the alerts' resume point), unless the
    // connection was deleted meanwhile.
    if conn.spec.saves_cursor() || conn.spec.has_alerts() {
        keeper.save_cursor(&open, &name, &conn);
    }
    conn.set_state(State::Disconnected);
}

/// Where a sending connection starts when it is made: after `from` (0:
/// the oldest record), or after the newest record for `-1` (now).
pub(crate) fn first_cursor_from(from: Option<i64>, open: &OpenStore) -> i64 {
    match from.unwrap_or(0) {
        -1 => open.store.newest_timestamp().unwrap_or(0),
        from => from,
    }
}

/// One session of a sending connection that has a driver of its own
/// between the feed and the peer (MQTT's publisher, influx's shipper):
/// the feed writes into a channel of one message, so a slow driver holds
/// it back, and the driver sends confirmations back. The session's end is
/// the feed's, unless the feed saw the driver go: the driver says why.
pub(crate) async fn feed_through<S, D>(
    feed: Feed<'_>,
    progress: &mut CursorProgress<'_, S>,
    conn: &Connection<S>,
    driver: impl FnOnce(mpsc::Receiver<Outgoing>, mpsc::Sender<Incoming>) -> D,
) -> Result<Ending, SessionError>
where
    S: Kind,
    D: Future<Output = Result<(), SessionError>>,
{
    let (out_tx, out_rx) = mpsc::channel::<Outgoing>(1);
    let (in_tx, mut in_rx) = mpsc::channel::<Incoming>(64);
    let mut sink = PollSender::new(out_tx);
    let mut incoming = futures_util::stream::poll_fn(move |cx| in_rx.poll_recv(cx));
    let (ending, driven) = tokio::join!(
        live::run(
            feed,
            &mut sink,
            &mut incoming,
            progress,
            &conn.messages_sent
        ),
        driver(out_rx, in_tx),
    );
    conn.in_flight.store(0, Relaxed);
    match (ending, driven) {
        (Ending::PeerGone, Err(why)) => Err(why),
        (ending, _) => Ok(ending),
    }
}

/// Where the cursor file of connection `id` of kind `label` lives in
/// the store directory `dir`.
pub(crate) fn cursor_path(dir: &std::path::Path, label: &str, id: &str) -> std::path::PathBuf {
    dir.join(CURSORS_DIR).join(format!("{label}-{id}.cursor"))
}

/// Why a session ended, for the API and the log.
fn describe(ending: &Ending, peer: &str) -> String {
    match ending {
        Ending::PeerGone => format!("the connection to the {peer} was lost"),
        Ending::Idle => format!("nothing heard from the {peer}; reconnecting"),
        Ending::ReadFailed(why) => format!("reading the store failed: {why}"),
        other => format!("{other:?}"),
    }
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
pub struct Connection<S> {
    pub id: String,
    pub spec: S,
    pub created_at: String,
    /// Sending kinds: the last record the peer confirmed (resume point).
    pub(crate) cursor: AtomicI64,
    /// Sending kinds: the last record read from the store.
    pub read_timestamp: AtomicI64,
    pub messages_sent: AtomicU64,
    pub messages_received: AtomicU64,
    /// Influx: points the engine answered 2xx for, and the records they
    /// came from.
    pub points_sent: AtomicU64,
    pub records_sent: AtomicU64,
    pub errors: AtomicU64,
    /// Messages sent and not yet acknowledged (MQTT publish, `ack: app`
    /// push).
    pub in_flight: AtomicU64,
    /// Acks the peer sent for what was never sent (refused, answered).
    pub refused_acks: AtomicU64,
    /// Pull: records the source sent again, skipped.
    pub skipped: AtomicU64,
    /// Where the cursor is written as it moves (`cursor_file`); `None`
    /// for kinds whose cursor lives in memory, or when it cannot be
    /// opened (then the connection file's copy, saved every second, is
    /// the resume point).
    cursor_file: Mutex<Option<CursorFile>>,
    /// What its alert rules have done (zeros without rules), and their
    /// resume point.
    pub alerts: Arc<AlertCounters>,
    /// Alert rules see the records after this one: the newest when the
    /// connection was created; when restored, the saved resume point (or
    /// the newest, for a file written before there was one).
    pub alerts_from: i64,
    state: Mutex<(State, Option<String>)>,
    /// Whether the state is `Connected`, for the alert rules (a full
    /// socket queue pauses them only then).
    connected: watch::Sender<bool>,
    pub(crate) stop: CancellationToken,
}

impl<S: Kind> Connection<S> {
    /// A connection on `open` resuming after `cursor` (its alert rules
    /// after `alerts_from`, if saved), stopped with the server.
    pub(crate) fn new(
        id: String,
        created_at: String,
        cursor: i64,
        alerts_from: Option<i64>,
        spec: S,
        env: &Env,
        open: &OpenStore,
    ) -> Arc<Connection<S>> {
        let cursor_file = if spec.saves_cursor() {
            let path = cursor_path(open.store.path(), S::LABEL, &id);
            let opened = path
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| CursorFile::open(&path));
            match opened {
                Ok((mut file, _)) => {
                    // Starts from the cursor the connection starts at.
                    if let Err(e) = file.write(cursor) {
                        tracing::warn!(connection = %id, "cursor file not written: {e}");
                    }
                    Some(file)
                }
                Err(e) => {
                    tracing::warn!(connection = %id, "cursor file {} not opened: {e}; the connection file keeps the cursor", path.display());
                    None
                }
            }
        } else {
            None
        };
        let alerts_from = alerts_from.unwrap_or_else(|| open.store.newest_timestamp().unwrap_or(0));
        Arc::new(Connection {
            id,
            created_at,
            cursor: AtomicI64::new(cursor),
            read_timestamp: AtomicI64::new(cursor),
            spec,
            messages_sent: AtomicU64::new(0),
            messages_received: AtomicU64::new(0),
            points_sent: AtomicU64::new(0),
            records_sent: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            refused_acks: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            cursor_file: Mutex::new(cursor_file),
            alerts: Arc::new(AlertCounters::starting_after(alerts_from)),
            alerts_from,
            state: Mutex::new((State::Connecting, None)),
            connected: watch::Sender::new(false),
            stop: env.shutdown.token().child_token(),
        })
    }

    pub fn cursor(&self) -> i64 {
        self.cursor.load(Relaxed)
    }

    /// Writes the cursor as it is now to the cursor file (one `pwrite`).
    pub(crate) fn write_cursor(&self) {
        let Ok(mut file) = self.cursor_file.lock() else {
            return;
        };
        if let Some(f) = file.as_mut()
            && let Err(e) = f.write(self.cursor())
        {
            tracing::warn!(connection = %self.id, "cursor file not written: {e}");
        }
    }

    /// Moves the cursor (a reset puts it back to 0) and writes it.
    pub(crate) fn set_cursor(&self, cursor: i64) {
        self.cursor.store(cursor, Relaxed);
        self.read_timestamp.store(cursor, Relaxed);
        self.write_cursor();
    }

    /// Removes the cursor file of a deleted connection; later writes do
    /// nothing.
    pub(crate) fn forget_cursor_file(&self) {
        if let Ok(mut file) = self.cursor_file.lock()
            && let Some(f) = file.take()
        {
            let _ = std::fs::remove_file(f.path());
        }
    }

    pub fn state(&self) -> (State, Option<String>) {
        self.state
            .lock()
            .map(|s| s.clone())
            .unwrap_or((State::Error, Some("a lock was poisoned".into())))
    }

    pub(crate) fn set_state(&self, state: State) {
        if let Ok(mut s) = self.state.lock() {
            s.0 = state;
        }
        self.tell_connected(state);
    }

    /// Follows the state: connected or not (woken on a change only).
    pub(crate) fn connected(&self) -> watch::Receiver<bool> {
        self.connected.subscribe()
    }

    fn tell_connected(&self, state: State) {
        let up = state == State::Connected;
        self.connected
            .send_if_modified(|was| std::mem::replace(was, up) != up);
    }

    /// Ends the connection for good (not a failure): disconnected, why.
    pub(crate) fn set_ended(&self, why: String) {
        if let Ok(mut s) = self.state.lock() {
            *s = (State::Disconnected, Some(why));
        }
        self.tell_connected(State::Disconnected);
    }

    /// Records a failure: the state, why (logged), one more error.
    pub(crate) fn failed(&self, state: State, why: String) {
        tracing::info!(connection = %self.id, url = %self.spec.shown_url(), "outbound connection: {why}");
        if let Ok(mut s) = self.state.lock() {
            *s = (state, Some(why));
        }
        self.tell_connected(state);
        // Counted after the message is in place: whoever sees the count
        // (reading it first) also sees why.
        self.errors
            .fetch_add(1, std::sync::atomic::Ordering::Release);
    }

    /// The error count and the state, read so that a counted failure is
    /// also described.
    pub fn errors_and_state(&self) -> (u64, State, Option<String>) {
        let errors = self.errors.load(std::sync::atomic::Ordering::Acquire);
        let (state, why) = self.state();
        (errors, state, why)
    }
}

/// The progress of a sending connection's feed: how far it has read, and
/// the confirmed cursor (the resume point), saved at most once per
/// `save_every` (`None`: kept in memory only).
pub(crate) struct CursorProgress<'a, S> {
    pub keeper: &'a dyn Keeper<S>,
    pub name: &'a str,
    pub open: &'a OpenStore,
    pub conn: &'a Connection<S>,
    pub save_every: Option<Duration>,
    pub saved_at: Instant,
}

impl<S: Kind> Progress for CursorProgress<'_, S> {
    fn reached(&mut self, cursor: i64) {
        self.conn.read_timestamp.store(cursor, Relaxed);
    }

    fn in_flight(&mut self, messages: usize) {
        self.conn.in_flight.store(messages as u64, Relaxed);
    }

    fn refused_ack(&mut self, why: &str) {
        self.conn.refused_acks.fetch_add(1, Relaxed);
        self.conn
            .failed(State::Connected, format!("refused an ack: {why}"));
    }

    fn rewound(&mut self, cursor: i64) {
        self.conn.cursor.fetch_min(cursor, Relaxed);
        self.conn.read_timestamp.fetch_min(cursor, Relaxed);
        self.conn.write_cursor();
        if self.save_every.is_some() {
            self.saved_at = Instant::now();
            self.keeper.save_cursor(self.open, self.name, self.conn);
        }
    }

    fn confirmed(&mut self, cursor: i64) {
        // A maximum: a confirmation the feed reads late never moves the
        // cursor back past one recorded meanwhile (MQTT's driver records
        // them as the PUBACKs come).
        self.conn.cursor.fetch_max(cursor, Relaxed);
        self.conn.write_cursor();
        if let Some(every) = self.save_every
            && self.saved_at.elapsed() >= every
        {
            self.saved_at = Instant::now();
            self.keeper.save_cursor(self.open, self.name, self.conn);
        }
    }
}
