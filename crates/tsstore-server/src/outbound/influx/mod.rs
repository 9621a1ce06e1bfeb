//! Influx connections, as a `Kind` of the connection manager: ship a
//! store's records as line protocol to a central engine (VictoriaMetrics,
//! InfluxDB 1.x or 2.x) over HTTP(S), at least once.
//!
//! A session is a `records::live` feed (history after the cursor, then
//! records as they are committed, filtered and aggregated as asked) and a
//! `Shipper` that turns its messages into lines
//! (`tsstore::line_protocol::encode_record`) and POSTs them in batches of
//! `batch_size` lines, or after `max_delay`. The feed's marks (one after
//! each batch it reads) are confirmed, and the cursor written, only once
//! every line before them was answered 2xx. A 400 or 422 (the engine
//! refuses the points: a field that changed type) is counted, logged and
//! passed over, so one bad record cannot stall the stream; any other
//! answer, a timeout or a network error ends the session, which the
//! connection's loop starts again after a backoff pause, from the cursor.
//! So a batch may arrive twice (the same series and timestamps: the
//! engines keep one), and none is lost.

mod ship;
pub mod spec;

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::backoff::Backoff;
use super::connection::{
    Connection, CursorProgress, Env, Kind, Run, SessionError, feed_through, first_cursor_from,
};
use crate::alerts::SaveNow;
use crate::net::HttpClient;
use crate::records::live::{Confirm, Envelope, Feed};
use crate::records::session::Ending;
use crate::registry::OpenStore;
pub use spec::{InfluxSpec, InfluxSpecError};

pub const CONNECTIONS_FILE: &str = "influx_connections.json";
/// Longest one POST may take (connect, send, answer).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The feed's ping timer: the shipper answers each, so this only bounds
/// how long the feed goes without hearing from it.
const PING_EVERY: Duration = Duration::from_secs(30);
/// A POST may take `REQUEST_TIMEOUT`; the feed waits that and more.
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// How often the cursor is saved to the connection file besides its
/// cursor file (written on every confirmation).
const SAVE_EVERY: Duration = Duration::from_secs(1);

pub type InfluxConnection = Connection<InfluxSpec>;

impl Kind for InfluxSpec {
    const FILE: &'static str = CONNECTIONS_FILE;
    const LABEL: &'static str = "influx";

    fn mode(&self) -> &'static str {
        "ship"
    }

    fn shown_url(&self) -> String {
        self.redacted_url()
    }

    fn first_cursor(&self, open: &OpenStore) -> i64 {
        first_cursor_from(self.from, open)
    }

    const PEER: &'static str = "engine";

    type Life = ();

    fn start_life(_: &Env, _: &Arc<OpenStore>, _: &Arc<InfluxConnection>, _: SaveNow) {}

    async fn session(
        run: Run<'_, Self>,
        _: &mut (),
        backoff: &mut Backoff,
    ) -> Result<Ending, SessionError> {
        session(run, backoff).await
    }

    fn saves_cursor(&self) -> bool {
        true
    }
}

/// One session: ship until the feed ends (`Ok`) or a batch cannot be
/// delivered (`Err`, why).
async fn session(run: Run<'_, InfluxSpec>, backoff: &mut Backoff) -> Result<Ending, SessionError> {
    let Run {
        env,
        keeper,
        name,
        open,
        conn,
    } = run;
    let spec = &conn.spec;
    let read = spec.read_spec(open.store.data_type(), env.limits.max_records)?;
    let read = crate::records::pipeline::for_feed(read, &open.store)?;
    let client = HttpClient::new(
        crate::net::client_tls(spec.ca_file.as_deref())?,
        REQUEST_TIMEOUT,
    );
    let shipper = ship::Shipper::new(client, name, conn, backoff)?;
    let feed = Feed {
        open: Arc::clone(open),
        spec: read,
        from: conn.cursor(),
        stop: conn.stop.clone(),
        ping_every: PING_EVERY,
        idle_timeout: IDLE_TIMEOUT,
        confirm: Confirm::PerBatch,
        notices: None,
        envelope: Envelope::Plain,
        replaced: None,
    };
    let mut progress = CursorProgress {
        keeper,
        name,
        open,
        conn,
        save_every: Some(SAVE_EVERY),
        saved_at: Instant::now(),
    };
    feed_through(feed, &mut progress, conn, |out_rx, in_tx| {
        shipper.run(out_rx, in_tx)
    })
    .await
}
