//! The MQTT sink: one session publishes a `records::live` feed (history
//! after the cursor, then records as they are committed, aggregated when
//! asked) with QoS 1.
//!
//! The feed writes into a channel of one message; a driver takes from it
//! only while fewer than `in_flight` publishes await their PUBACK, so a
//! slow broker holds the feed back instead of filling memory. The feed's
//! cursor marks (one after each batch) come back as confirmations once
//! every publish before them is acknowledged, in order: the cursor, and
//! what is saved every `cursor_persist_interval`, only ever moves past
//! records the broker has. A lost connection ends the session; the next
//! one starts a clean MQTT session and publishes again from that cursor,
//! so only unacknowledged records may arrive twice.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, Packet, QoS};
use tokio::sync::mpsc;

use super::{Events, MqttConnection, MqttSpec, dial};
use crate::outbound::backoff::Backoff;
use crate::outbound::connection::{CursorProgress, Run, SessionError, State, feed_through};
use crate::records::live::{Confirm, Envelope, Feed};
use crate::records::session::{Ending, Incoming, Outgoing};

/// Longest the goodbye (DISCONNECT) to the broker may take.
const DISCONNECT_WAIT: Duration = Duration::from_secs(1);
/// The feed's ping timer: MQTT has its own keep-alive, so this only
/// bounds how long the feed goes without hearing from the driver.
const PING_EVERY: Duration = Duration::from_secs(30);
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// One session: dial, publish until the feed or the connection ends.
/// `Err`: the broker could not be reached (nothing was sent).
pub(super) async fn session(
    run: Run<'_, MqttSpec>,
    backoff: &mut Backoff,
) -> Result<Ending, SessionError> {
    let Run {
        env,
        keeper,
        name,
        open,
        conn,
    } = run;
    let spec = &conn.spec;
    let window = usize::from(spec.in_flight());
    let read = spec.read_spec(open.store.data_type(), env.limits.max_records)?;
    let read = crate::records::pipeline::for_feed(read, &open.store)?;
    let mut options = spec.options(name, &conn.id, env.limits.max_message)?;
    options
        .set_clean_session(true)
        .set_inflight(spec.in_flight());
    let (client, events, _pump) = dial(options, window + 8, &conn.stop).await?;
    conn.set_state(State::Connected);
    backoff.reset();

    let feed = Feed {
        open: Arc::clone(open),
        spec: read,
        from: conn.cursor(),
        stop: conn.stop.clone(),
        ping_every: PING_EVERY,
        idle_timeout: IDLE_TIMEOUT,
        confirm: Confirm::PerMessage,
        notices: None,
        envelope: if spec.include_timestamp() {
            Envelope::Plain
        } else {
            Envelope::Bare
        },
        replaced: None,
    };
    let every = spec.persist_every();
    let mut progress = CursorProgress {
        keeper,
        name,
        open,
        conn,
        save_every: (every > 0).then(|| Duration::from_secs(every as u64)),
        saved_at: Instant::now(),
    };
    let topic = spec.topic.clone();
    feed_through(feed, &mut progress, conn, |out_rx, confirms| {
        Driver {
            client,
            events,
            topic,
            window,
            conn: Arc::clone(conn),
            confirms,
        }
        .run(out_rx)
    })
    .await
}

/// A publish handed to rumqttc, in the order of the feed.
struct Sent {
    /// Known once rumqttc has sent it.
    pkid: Option<u16>,
    acked: bool,
}

/// Moves the feed's messages to the broker within the in-flight window
/// and turns PUBACKs into confirmations.
struct Driver {
    client: AsyncClient,
    events: Events,
    topic: String,
    window: usize,
    conn: Arc<MqttConnection>,
    confirms: mpsc::Sender<Incoming>,
}

impl Driver {
    /// Runs until the feed ends (`Ok`) or the connection fails (`Err`).
    async fn run(mut self, mut from_feed: mpsc::Receiver<Outgoing>) -> Result<(), SessionError> {
        let mut sent: VecDeque<Sent> = VecDeque::new();
        // Marks of the feed: (publishes before it, cursor).
        let mut marks: VecDeque<(u64, i64)> = VecDeque::new();
        let (mut published, mut acked) = (0u64, 0u64);
        loop {
            let room = sent.len() < self.window;
            tokio::select! {
                event = self.events.recv() => match event {
                    Some(Ok(Event::Outgoing(rumqttc::Outgoing::Publish(pkid)))) => {
                        if let Some(s) = sent.iter_mut().find(|s| s.pkid.is_none()) {
                            s.pkid = Some(pkid);
                        }
                    }
                    Some(Ok(Event::Incoming(Packet::PubAck(ack)))) => {
                        if let Some(s) = sent.iter_mut().find(|s| s.pkid == Some(ack.pkid) && !s.acked) {
                            s.acked = true;
                        }
                        while sent.front().is_some_and(|s| s.acked) {
                            sent.pop_front();
                            acked += 1;
                        }
                        self.confirm(&mut marks, acked);
                    }
                    Some(Ok(Event::Incoming(Packet::PingResp))) => {
                        let _ = self.confirms.try_send(Incoming::Alive);
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(SessionError::Lost(Box::new(e))),
                    None => return Err(SessionError::Closed),
                },
                message = from_feed.recv(), if room => match message {
                    Some(Outgoing::Text(text)) => {
                        self.publish(text.into_bytes())?;
                        sent.push_back(Sent { pkid: None, acked: false });
                        published += 1;
                    }
                    Some(Outgoing::Binary(bytes)) => {
                        self.publish(bytes)?;
                        sent.push_back(Sent { pkid: None, acked: false });
                        published += 1;
                    }
                    Some(Outgoing::Mark(cursor)) => {
                        marks.push_back((published, cursor));
                        self.confirm(&mut marks, acked);
                    }
                    Some(Outgoing::Ping) => {}
                    Some(Outgoing::Close { .. }) | None => {
                        self.goodbye().await;
                        return Ok(());
                    }
                },
            }
            self.conn.in_flight.store(sent.len() as u64, Relaxed);
        }
    }

    fn publish(&self, payload: Vec<u8>) -> Result<(), SessionError> {
        // The request queue holds the window and more, so it is never full
        // here: a refusal means the event loop has gone with the
        // connection (its error may still be on its way to us).
        self.client
            .try_publish(self.topic.as_str(), QoS::AtLeastOnce, false, payload)
            .map_err(SessionError::Publish)
    }

    /// Confirms every mark whose publishes are all acknowledged.
    fn confirm(&self, marks: &mut VecDeque<(u64, i64)>, acked: u64) {
        let mut last = None;
        while marks.front().is_some_and(|&(before, _)| before <= acked) {
            last = marks.pop_front().map(|(_, cursor)| cursor);
        }
        if let Some(cursor) = last {
            // The resume point moves here, not when the feed next looks:
            // a session lost meanwhile resumes after every acknowledged
            // record.
            self.conn.cursor.store(cursor, Relaxed);
            // The feed hears of it too (it only proves the broker alive);
            // one lost to a full channel is overtaken by the next.
            let _ = self.confirms.try_send(Incoming::Confirmed(cursor));
        }
    }

    /// A DISCONNECT, so the broker does not publish a will or wait.
    async fn goodbye(&mut self) {
        if self.client.try_disconnect().is_err() {
            return;
        }
        let _ = tokio::time::timeout(DISCONNECT_WAIT, async {
            loop {
                match self.events.recv().await {
                    Some(Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)))
                    | Some(Err(_))
                    | None => {
                        break;
                    }
                    Some(Ok(_)) => {}
                }
            }
        })
        .await;
    }
}
