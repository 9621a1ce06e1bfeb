//! Outbound WebSocket connections (push: send a store's records to the
//! peer; pull: store what the peer sends), as a `Kind`
//! of the connection manager. A push runs a `records::live` feed from
//! its cursor: the last record written to a healthy connection that the
//! peer confirmed reading (a ping carrying the cursor after each batch;
//! the peer's pong proves it read everything before), written to its
//! cursor file as it moves and to the connection file at most every
//! `CURSOR_SAVE_EVERY` and when the task ends, so a reconnect or a
//! restart resumes after it: records sent after the last confirmation
//! may be sent twice, none is skipped. A push with alert rules starts
//! their evaluation (`alerts::start`) once, for the life of the
//! connection, and sends the alerts it makes; the connection's state
//! tells evaluation whether the peer is there to wait for, and its file
//! keeps the alerts' resume point beside the cursor. With `ack: app` the
//! peer confirms instead, `{"type":"ack","timestamp":T}` once it has
//! handled `T`, and at most the connection's window is in flight
//! (`records::ack_window`); the cursor file (`cursor_file`) is written on
//! every ack, so a crash of either side re-sends at most one window. A
//! pull is `pull`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::backoff::Backoff;
use super::connection::{Connection, CursorProgress, Env, Keeper, Kind, Run, SessionError, State};
use super::dial::{MISSED_PINGS, Socket, dial, to_message};
use super::spec::{ConnectionSpec, Mode};
use crate::alerts;
use crate::records::live::{self, Confirm, Envelope, Feed};
use crate::records::session::{Ending, Incoming, Outgoing};
use crate::registry::OpenStore;

pub const CONNECTIONS_FILE: &str = "ws_connections.json";
/// Longest a push's cursor goes unsaved while records flow.
const CURSOR_SAVE_EVERY: Duration = Duration::from_secs(1);

pub type WsConnection = Connection<ConnectionSpec>;

impl Kind for ConnectionSpec {
    const FILE: &'static str = CONNECTIONS_FILE;
    const LABEL: &'static str = "ws";

    fn mode(&self) -> &'static str {
        self.mode.as_str()
    }

    fn shown_url(&self) -> String {
        self.redacted_url()
    }

    fn first_cursor(&self, open: &OpenStore) -> i64 {
        super::connection::first_cursor_from(self.from, open)
    }

    const PEER: &'static str = "peer";

    /// Alerts for the socket (when it has rules), waiting for it (bounded).
    type Life = Option<mpsc::Receiver<String>>;

    fn start_life(
        env: &Env,
        open: &Arc<OpenStore>,
        conn: &Arc<WsConnection>,
        save: alerts::SaveNow,
    ) -> Self::Life {
        // Alert rules follow the store whether the peer is there or not
        // (a webhook still fires).
        if conn.spec.rules.is_empty() {
            return None;
        }
        let spec = &conn.spec;
        let filter = spec
            .read_spec(open.store.data_type(), env.limits.max_records)
            .ok()
            .and_then(|s| s.filter);
        let alerting = alerts::Alerting {
            connection_id: conn.id.clone(),
            rules: spec.rules.clone(),
            ca_file: spec.ca_file.clone(),
            filter,
            counters: Arc::clone(&conn.alerts),
            from: conn.alerts_from,
            connected: conn.connected(),
            save,
            stop: conn.stop.clone(),
        };
        Some(alerts::start(&env.shutdown, open, alerting))
    }

    async fn session(
        run: Run<'_, Self>,
        notices: &mut Self::Life,
        backoff: &mut Backoff,
    ) -> Result<Ending, SessionError> {
        let conn = run.conn;
        let socket = tokio::select! {
            d = dial(&conn.spec, conn.cursor()) => d?,
            _ = conn.stop.cancelled() => return Ok(Ending::ServerStopping),
        };
        conn.set_state(State::Connected);
        backoff.reset();
        Ok(match conn.spec.mode {
            Mode::Push => {
                push(
                    run.env,
                    run.keeper,
                    run.open,
                    conn,
                    socket,
                    notices.as_mut(),
                )
                .await
            }
            Mode::Pull => super::pull::pull(run.open, conn, socket).await,
        })
    }

    fn saves_cursor(&self) -> bool {
        // A push's resume point; a pull's last record stored.
        true
    }

    fn has_alerts(&self) -> bool {
        self.mode == Mode::Push && !self.rules.is_empty()
    }
}

async fn push(
    env: &Env,
    keeper: &dyn Keeper<ConnectionSpec>,
    open: &Arc<OpenStore>,
    conn: &Arc<WsConnection>,
    socket: Socket,
    notices: Option<&mut mpsc::Receiver<String>>,
) -> Ending {
    let spec = conn
        .spec
        .read_spec(open.store.data_type(), env.limits.max_records)
        .and_then(|spec| crate::records::pipeline::for_feed(spec, &open.store));
    let spec = match spec {
        Ok(spec) => spec,
        Err(e) => return Ending::ReadFailed(e.to_string()),
    };
    let (tx, rx) = socket.split();
    let mut sink = tx.with(|o: Outgoing| {
        std::future::ready(Ok::<_, tokio_tungstenite::tungstenite::Error>(to_message(
            o,
        )))
    });
    let window = conn.spec.ack_window();
    // Checked when the connection was made.
    let keepalive = conn.spec.keepalive().unwrap_or(Duration::from_secs(30));
    let mut incoming = rx.map(move |m| match m {
        Ok(Message::Close(_)) | Err(_) => Incoming::Gone,
        // With app acks a pong only shows the peer is alive.
        Ok(Message::Pong(p)) if window.is_none() => match <[u8; 8]>::try_from(&p[..]) {
            Ok(bytes) => Incoming::Confirmed(i64::from_le_bytes(bytes)),
            Err(_) => Incoming::Alive,
        },
        Ok(Message::Text(t)) if window.is_some() => Incoming::from_text(&t),
        Ok(_) => Incoming::Alive,
    });
    let feed = Feed {
        open: Arc::clone(open),
        spec,
        from: conn.cursor(),
        stop: conn.stop.clone(),
        ping_every: keepalive,
        idle_timeout: keepalive * MISSED_PINGS,
        confirm: window.map_or(Confirm::PerBatch, Confirm::App),
        notices,
        envelope: Envelope::Typed,
        replaced: None,
    };
    let name = open.store.name().to_string();
    let mut progress = CursorProgress {
        keeper,
        name: &name,
        open,
        conn,
        save_every: Some(CURSOR_SAVE_EVERY),
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
