//! MQTT ingest: one session subscribes with QoS 1 to a topic filter and
//! stores each message as a record.
//!
//! The session is persistent (clean session off, a stable client id), so
//! the broker keeps what is published while the gateway is away and
//! delivers it afterwards. Messages are acknowledged by hand, after they
//! are stored: a crash between the two makes the broker deliver again,
//! never lose. Messages that arrive together (up to `BATCH`) are stored
//! with one `put_many` (`intake::store_each`, which stores the good ones
//! when one is bad). A message the store refuses is counted and logged,
//! and acknowledged so that the broker does not offer it forever.

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;

use rumqttc::{AsyncClient, Event, Packet, Publish, QoS};

use super::{MqttConnection, MqttSpec, dial};
use crate::outbound::backoff::Backoff;
use crate::outbound::connection::{Run, SessionError, State};
use crate::records::intake;
use crate::records::session::Ending;
use crate::registry::{OpenStore, store_stopping};

/// Messages stored together, at most.
const BATCH: usize = 256;
/// Acknowledgements (and the subscription) waiting in rumqttc's request
/// queue, at most. Past it they wait in the session's `Acks`, which the
/// broker bounds: it stops sending when too many are unacknowledged.
const ACK_QUEUE: usize = 4096;
/// How soon acknowledgements that found rumqttc's queue full are tried
/// again, when nothing else happens.
const ACK_RETRY: std::time::Duration = std::time::Duration::from_millis(5);

/// One session: dial, subscribe, store until the connection or the
/// store ends. `Err`: the broker could not be reached or refused the
/// subscription.
pub(super) async fn session(
    run: Run<'_, MqttSpec>,
    backoff: &mut Backoff,
) -> Result<Ending, SessionError> {
    let Run {
        env,
        keeper: _,
        name,
        open,
        conn,
    } = run;
    let spec = &conn.spec;
    // A message is at most `max_message` bytes, plus its topic.
    let max_incoming = env.limits.max_message + spec.topic.len() + 1024;
    let mut options = spec.options(name, &conn.id, max_incoming)?;
    options.set_clean_session(false).set_manual_acks(true);
    let (client, mut events, _pump) = dial(options, ACK_QUEUE, &conn.stop).await?;
    client
        .try_subscribe(spec.topic.as_str(), QoS::AtLeastOnce)
        .map_err(SessionError::Subscribe)?;
    conn.set_state(State::Connected);
    backoff.reset();
    let mut stopping = open.stopping.subscribe();
    let mut acks = Acks::default();
    loop {
        acks.flush(&client);
        let first = tokio::select! {
            _ = conn.stop.cancelled() => {
                if !drain(&client, &mut events, acks).await {
                    tracing::warn!(
                        connection = %conn.id,
                        "stopping: not every acknowledgement reached the broker in {DRAIN_TIMEOUT:?}; it will deliver those messages again"
                    );
                }
                return Ok(Ending::ServerStopping);
            }
            _ = store_stopping(&mut stopping) => return Ok(Ending::StoreDeleted),
            _ = tokio::time::sleep(ACK_RETRY), if !acks.is_empty() => continue,
            event = events.recv() => event,
        };
        let mut batch = Vec::new();
        let mut next = Some(first);
        // What has already arrived joins the batch; nothing waits for more.
        while let Some(event) = next.take() {
            match event {
                Some(Ok(Event::Incoming(Packet::Publish(p)))) => batch.push(p),
                Some(Ok(Event::Incoming(Packet::SubAck(ack)))) => {
                    let refused = ack
                        .return_codes
                        .iter()
                        .any(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure));
                    if refused {
                        store(open, conn, &mut acks, batch);
                        return Err(SessionError::SubscriptionRefused(spec.topic.clone()));
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    store(open, conn, &mut acks, batch);
                    return Err(SessionError::Lost(Box::new(e)));
                }
                None => {
                    store(open, conn, &mut acks, batch);
                    return Err(SessionError::Closed);
                }
            }
            if batch.len() < BATCH {
                next = events.try_recv().ok().map(Some);
            }
        }
        store(open, conn, &mut acks, batch);
    }
}

/// On a server stop: hands the broker every acknowledgement of a stored
/// message, then disconnects, so that a graceful restart is not sent
/// stored messages again (which it would store twice). Without it, a
/// burst's last acknowledgements, still queued, were lost with the
/// session, and the broker redelivered thousands of stored messages.
/// Bounded by `DRAIN_TIMEOUT`: what is not sent by then the broker
/// delivers again, as after a crash. False when the bound cut it short.
async fn drain(client: &AsyncClient, events: &mut super::Events, mut acks: Acks) -> bool {
    let work = async {
        loop {
            acks.flush(client);
            if acks.is_empty() {
                break;
            }
            // The pump sends what rumqttc queued as it polls: its events
            // are read (a message that arrives now is left unacknowledged,
            // for the next session) so that it never waits on us.
            tokio::select! {
                event = events.recv() => if event.is_none() { return },
                _ = tokio::time::sleep(ACK_RETRY) => {}
            }
        }
        // Queued behind the acknowledgements; the pump ends with the
        // connection once it has sent it.
        if client.try_disconnect().is_ok() {
            while events.recv().await.is_some() {}
        }
    };
    tokio::time::timeout(DRAIN_TIMEOUT, work).await.is_ok()
}

/// Longest a stopping session spends handing over acknowledgements.
const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Acknowledgements of stored messages, in order, not yet handed to
/// rumqttc.
#[derive(Default)]
struct Acks(VecDeque<Publish>);

impl Acks {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Hands over what rumqttc's queue takes.
    fn flush(&mut self, client: &AsyncClient) {
        while let Some(p) = self.0.front() {
            match client.try_ack(p) {
                Ok(()) => {
                    self.0.pop_front();
                }
                // Full: the next flush goes on.
                Err(_) => return,
            }
        }
    }
}

/// Stores a batch of messages, then queues their acknowledgements.
fn store(open: &OpenStore, conn: &MqttConnection, acks: &mut Acks, batch: Vec<Publish>) {
    if batch.is_empty() {
        return;
    }
    let field = conn.spec.timestamp_field.as_deref();
    // Checked when the connection was made.
    let precision = crate::records::options::parse_precision(conn.spec.precision.as_deref())
        .unwrap_or(tsstore::Precision::Ns);
    let items = batch
        .iter()
        .map(|p| intake::bare(&p.payload, field, precision))
        .collect();
    let stored = intake::store_each(open, items);
    for (p, result) in batch.iter().zip(stored) {
        match result {
            Ok(_) => {
                conn.messages_received.fetch_add(1, Relaxed);
            }
            Err(e) => conn.failed(
                State::Connected,
                format!("message on '{}' skipped: {e}", p.topic),
            ),
        }
    }
    acks.0.extend(batch);
}
