//! Outbound WebSocket connections (push: send a store's records to the
//! peer; pull: store what the peer sends), as a `Kind`
//! of the connection manager. A push runs a `records::live` feed from
//! its cursor: the last record written to a healthy connection that the
//! peer confirmed reading (a ping carrying the cursor after each batch;
//! the peer's pong proves it read everything before), persisted at most
//! every `CURSOR_SAVE_EVERY` and when the task ends, so a reconnect or a
//! restart resumes after it: records sent after the last confirmation
//! may be sent twice, none is skipped. A push with alert rules starts
//! their evaluation (`alerts::start`) once, for the life of the
//! connection, and sends the alerts it makes. A pull stores every
//! `{"timestamp"?, "data"}` it receives through `records::intake`, what
//! arrived together with one `put_many`; invalid messages are counted and
//! skipped.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::backoff::Backoff;
use super::connection::{Connection, CursorProgress, Env, Keeper, Kind, Run, SessionError, State};
use super::spec::{ConnectionSpec, Mode};
use crate::alerts;
use crate::net::header_map;
use crate::records::intake;
use crate::records::live::{self, Confirm, Envelope, Feed};
use crate::records::session::{Ending, Incoming, Outgoing};
use crate::registry::{OpenStore, store_stopping};

pub const CONNECTIONS_FILE: &str = "ws_connections.json";
/// Longest a push's cursor goes unsaved while records flow.
const CURSOR_SAVE_EVERY: Duration = Duration::from_secs(1);
/// Longest a dial may take.
const DIAL_TIMEOUT: Duration = Duration::from_secs(10);
const PING_EVERY: Duration = Duration::from_secs(30);
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

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

    fn first_cursor(&self, _open: &OpenStore) -> i64 {
        self.from.unwrap_or(0)
    }

    const PEER: &'static str = "peer";

    /// Alerts for the socket (when it has rules), waiting for it (bounded).
    type Life = Option<mpsc::Receiver<String>>;

    fn start_life(env: &Env, open: &Arc<OpenStore>, conn: &Arc<WsConnection>) -> Self::Life {
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
            d = dial(&conn.spec) => d?,
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
            Mode::Pull => pull(run.open, conn, socket).await,
        })
    }

    fn saves_cursor(&self) -> bool {
        self.mode == Mode::Push
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Dials the connection's URL with its headers.
async fn dial(spec: &ConnectionSpec) -> Result<Socket, SessionError> {
    let mut request = spec.url.as_str().into_client_request()?;
    request.headers_mut().extend(header_map(&spec.headers)?);
    let connector = if spec.url.starts_with("wss://") {
        let config = spec.tls_config()?;
        Some(tokio_tungstenite::Connector::Rustls(Arc::new(config)))
    } else {
        None
    };
    // Small messages go out at once instead of waiting for Nagle.
    let dialing = tokio_tungstenite::connect_async_tls_with_config(request, None, true, connector);
    match tokio::time::timeout(DIAL_TIMEOUT, dialing).await {
        Ok(Ok((socket, _))) => Ok(socket),
        Ok(Err(e)) => Err(SessionError::WebSocket(e)),
        Err(_) => Err(SessionError::DialTimeout(DIAL_TIMEOUT)),
    }
}

fn to_message(o: Outgoing) -> Message {
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    match o {
        Outgoing::Text(t) => Message::Text(t.into()),
        Outgoing::Binary(b) => Message::Binary(b.into()),
        Outgoing::Ping => Message::Ping(Default::default()),
        Outgoing::Mark(c) => Message::Ping(c.to_le_bytes().to_vec().into()),
        Outgoing::Close { code, reason } => Message::Close(Some(CloseFrame {
            code: code.into(),
            reason: reason.into(),
        })),
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
    let spec = match conn
        .spec
        .read_spec(open.store.data_type(), env.limits.max_records)
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
        confirm: Confirm::PerBatch,
        notices,
        envelope: Envelope::Typed,
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

async fn pull(open: &Arc<OpenStore>, conn: &Arc<WsConnection>, socket: Socket) -> Ending {
    let (mut tx, mut rx) = socket.split();
    let mut stopping = open.stopping.subscribe();
    let dt = open.store.data_type();
    // Checked when the connection was made.
    let precision = conn.spec.precision().unwrap_or(tsstore::Precision::Ns);
    let ending = loop {
        let message = tokio::select! {
            _ = conn.stop.cancelled() => break Ending::ServerStopping,
            _ = store_stopping(&mut stopping) => break Ending::StoreDeleted,
            m = tokio::time::timeout(IDLE_TIMEOUT, rx.next()) => match m {
                Ok(m) => m,
                Err(_) => break Ending::Idle,
            },
        };
        // What else has arrived is stored with it, in one `put_many`.
        let messages = intake::join_ready(message, &mut rx, intake::MAX_MESSAGE_BATCH);
        let mut texts = Vec::with_capacity(messages.len());
        let mut end = None;
        for m in messages {
            match m {
                Some(Ok(Message::Text(t))) => texts.push(t),
                Some(Ok(Message::Binary(_))) => conn.failed(
                    State::Connected,
                    "binary message skipped: send {\"timestamp\"?, \"data\"} as text".into(),
                ),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => end = Some(Ending::PeerGone),
                Some(Ok(_)) => {}
            }
        }
        let items = texts
            .iter()
            .map(|t| intake::envelope(dt, t.as_bytes(), precision))
            .collect();
        for stored in intake::store_each(open, items) {
            match stored {
                Ok(_) => {
                    conn.messages_received.fetch_add(1, Relaxed);
                }
                Err(e) => conn.failed(State::Connected, format!("message skipped: {e}")),
            }
        }
        if let Some(end) = end {
            break end;
        }
    };
    if let Some(frame) = ending.close_frame() {
        let _ = tx.send(to_message(frame)).await;
    }
    let _ = tx.close().await;
    ending
}
