//! MQTT connections, as a `Kind` of the connection manager:
//! publish a store's records to a broker (the sink, `publish`), or store
//! what is published on a topic filter (ingest, `subscribe`). Both run
//! over rumqttc with QoS 1, dial `tcp://` or `ssl://` (rustls on ring,
//! system roots plus a CA file), and reconnect with `Backoff`, except a
//! publish connection with `cursor_persist_interval: -1` (one shot).

mod publish;
pub mod spec;
mod subscribe;

use std::sync::Arc;
use std::time::Duration;

use rumqttc::{
    AsyncClient, ConnectionError, Event, MqttOptions, Packet, TlsConfiguration, Transport,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use super::backoff::Backoff;
use super::connection::{Connection, Env, Kind, Run, SessionError};

use crate::alerts::SaveNow;
use crate::records::session::Ending;
use crate::registry::OpenStore;
pub use spec::{MqttMode, MqttSpec, MqttSpecError};

pub const CONNECTIONS_FILE: &str = "mqtt_connections.json";
/// Longest a dial (TCP, TLS, CONNECT/CONNACK) may take, seconds.
const DIAL_TIMEOUT_SECS: u64 = 10;
/// How often the client pings an idle broker.
const KEEP_ALIVE: Duration = Duration::from_secs(30);
/// Largest packet sent (a record, or a window) or received (a message
/// to store is at most `Limits::max_message`).
const MAX_OUTGOING_PACKET: usize = 16 << 20;

pub type MqttConnection = Connection<MqttSpec>;

const ONE_SHOT: &str =
    "one-shot connection (cursor_persist_interval -1): it ran once and does not reconnect";

impl Kind for MqttSpec {
    const FILE: &'static str = CONNECTIONS_FILE;
    const LABEL: &'static str = "mqtt";

    fn mode(&self) -> &'static str {
        self.mode.as_str()
    }

    fn shown_url(&self) -> String {
        self.redacted_url()
    }

    fn first_cursor(&self, open: &OpenStore) -> i64 {
        super::connection::first_cursor_from(self.from, open)
    }

    fn restored_cursor(&self, saved: i64, open: &OpenStore) -> i64 {
        // Only a persisted cursor outlives the process.
        if self.persist_every() > 0 {
            saved
        } else {
            self.first_cursor(open)
        }
    }

    fn restarts(&self) -> Result<(), &'static str> {
        if self.is_one_shot() {
            return Err(ONE_SHOT);
        }
        Ok(())
    }

    const PEER: &'static str = "broker";

    type Life = ();

    fn start_life(_: &Env, _: &Arc<OpenStore>, _: &Arc<MqttConnection>, _: SaveNow) {}

    async fn session(
        run: Run<'_, Self>,
        _: &mut (),
        backoff: &mut Backoff,
    ) -> Result<Ending, SessionError> {
        let Run { conn, .. } = run;
        // Not raced with the stop signal: each session ends itself on it
        // (a publish flushes its partial window, says DISCONNECT).
        match conn.spec.mode {
            MqttMode::Publish => publish::session(run, backoff).await,
            MqttMode::Subscribe => subscribe::session(run, backoff).await,
        }
    }

    fn one_shot(&self) -> Option<&'static str> {
        self.is_one_shot().then_some(ONE_SHOT)
    }

    fn saves_cursor(&self) -> bool {
        self.mode == MqttMode::Publish && self.persist_every() > 0
    }
}

impl MqttSpec {
    /// A publish connection that runs once: no reconnect, no restart.
    fn is_one_shot(&self) -> bool {
        self.mode == MqttMode::Publish && self.persist_every() < 0
    }

    /// The client id: given, or `tsstore-<store>-<id>` (stable, so that a
    /// subscription's session survives restarts).
    pub fn client_id_for(&self, store: &str, id: &str) -> String {
        self.client_id
            .clone()
            .unwrap_or_else(|| format!("tsstore-{store}-{id}"))
    }

    /// rumqttc's options for this connection.
    fn options(
        &self,
        store: &str,
        id: &str,
        max_incoming: usize,
    ) -> Result<MqttOptions, SessionError> {
        let broker = self.broker()?;
        let mut o = MqttOptions::new(self.client_id_for(store, id), broker.host, broker.port);
        o.set_keep_alive(KEEP_ALIVE)
            .set_max_packet_size(max_incoming, MAX_OUTGOING_PACKET);
        if let Some(user) = &self.username {
            o.set_credentials(user.clone(), self.password.clone().unwrap_or_default());
        }
        if broker.tls {
            let tls = crate::net::client_tls(self.ca_file.as_deref())?;
            o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
                Arc::new(tls),
            )));
        }
        Ok(o)
    }
}

/// What rumqttc's event loop reports, in order.
type Events = mpsc::Receiver<Result<Event, ConnectionError>>;

/// Events waiting for the session, at most (the pump waits when full).
const EVENT_QUEUE: usize = 64;

/// Opens the session: polls until the broker accepts the connection,
/// then hands the event loop to a pump task (`AbortOnDropHandle`: it
/// ends with the session).
///
/// rumqttc's `poll` must not be cancelled halfway: it may have taken a
/// request (a publish, an acknowledgement) from its queue and not yet
/// written it. So it runs alone in the pump, and sessions wait on the
/// pump's channel, which they may leave at any point.
async fn dial(
    options: MqttOptions,
    requests: usize,
    stop: &CancellationToken,
) -> Result<(AsyncClient, Events, AbortOnDropHandle<()>), SessionError> {
    let (client, mut events) = AsyncClient::new(options, requests);
    let mut net = events.network_options();
    net.set_connection_timeout(DIAL_TIMEOUT_SECS);
    net.set_tcp_nodelay(true);
    events.set_network_options(net);
    let connected = async {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(SessionError::Mqtt(Box::new(e))),
            }
        }
    };
    tokio::select! {
        connected = connected => connected?,
        _ = stop.cancelled() => return Err(SessionError::Stopped),
    }
    let (tx, rx) = mpsc::channel(EVENT_QUEUE);
    let pump = tokio::spawn(async move {
        loop {
            let event = events.poll().await;
            let failed = event.is_err();
            if tx.send(event).await.is_err() || failed {
                // The session has gone, or the connection: a new session
                // dials anew.
                return;
            }
        }
    });
    Ok((client, rx, AbortOnDropHandle::new(pump)))
}
