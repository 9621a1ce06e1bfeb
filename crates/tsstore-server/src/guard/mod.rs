//! The front door: what keeps one client from shutting the others out.
//! Transport-neutral (no HTTP here); `http::front` applies it to TCP and
//! TLS connections, `unixsock` and the key extractors to authentication.
//!
//! * `peer`: who a client is (an IP address, IPv6 by /64; a Unix uid) and
//!   the trusted-address list.
//! * `admission`: connection slots, in all and per address.
//! * `throttle`: the per-address budget of failed authentications.
//! * `incidents`: counters by reason for `/metrics`, and summary log
//!   lines instead of one line per refusal.
//!
//! Every bound is named in `FrontDoor`, with its default, and in
//! docs/SECURITY.md.

pub mod admission;
pub mod incidents;
pub mod peer;
pub mod throttle;

use std::sync::Arc;
use std::time::Duration;

pub use self::admission::{Admission, Refused, Ticket};
pub use self::incidents::{Incident, Incidents};
pub use self::peer::{Network, Peer};
pub use self::throttle::AuthThrottle;

/// The front door's settings (`server.*` in config.json).
#[derive(Debug, Clone, PartialEq)]
pub struct FrontDoor {
    /// Connections served at once (HTTP, TLS handshakes, WebSockets).
    pub max_connections: usize,
    /// Of those, from one client address.
    pub max_connections_per_address: usize,
    /// Exempt from the per-address bound.
    pub trusted: Vec<Network>,
    /// From a connection's first byte (or its accept) to a complete
    /// request head: protocol detection, TLS handshake and headers.
    pub request_header_timeout: Duration,
    /// An idle keep-alive connection is closed after this.
    pub keep_alive_timeout: Duration,
    /// A write the client takes nothing of for this long closes the
    /// connection (HTTP responses and WebSocket messages alike).
    pub send_timeout: Duration,
    /// A WebSocket write connection that sends no record for this long is
    /// closed, pings or not.
    pub ws_idle_timeout: Duration,
    /// Failed authentications an address may make at once...
    pub auth_failure_burst: u32,
    /// ...and per second after that, sustained.
    pub auth_failures_per_sec: f64,
}

impl Default for FrontDoor {
    fn default() -> Self {
        FrontDoor {
            max_connections: 512,
            max_connections_per_address: 64,
            trusted: Vec::new(),
            request_header_timeout: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(60),
            send_timeout: Duration::from_secs(30),
            ws_idle_timeout: Duration::from_secs(600),
            auth_failure_burst: 10,
            auth_failures_per_sec: 2.0,
        }
    }
}

/// What the server shares of the front door.
#[derive(Debug)]
pub struct Guard {
    pub settings: FrontDoor,
    pub admission: Arc<Admission>,
    pub throttle: AuthThrottle,
    pub incidents: Arc<Incidents>,
}

/// An attempt refused unchecked: its address failed too often.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    /// When one more attempt will be taken.
    pub retry_after: Duration,
}

impl Guard {
    pub fn new(settings: FrontDoor) -> Guard {
        Guard {
            admission: Arc::new(Admission::new(
                settings.max_connections,
                settings.max_connections_per_address,
                settings.trusted.clone(),
            )),
            throttle: AuthThrottle::new(
                settings.auth_failure_burst,
                settings.auth_failures_per_sec,
            ),
            incidents: Arc::default(),
            settings,
        }
    }

    /// Before a key is checked: whether `peer` may present one now.
    /// `None` (a client whose address is unknown) is never throttled.
    pub fn may_authenticate(&self, peer: Option<Peer>) -> Result<(), Throttled> {
        let Some(peer) = peer else { return Ok(()) };
        self.throttle.check(peer).map_err(|retry_after| {
            self.incidents.record(Incident::AuthThrottled, Some(peer));
            Throttled { retry_after }
        })
    }

    /// After a key did not verify.
    pub fn authentication_failed(&self, peer: Option<Peer>) {
        self.incidents.record(Incident::AuthFailed, peer);
        if let Some(peer) = peer {
            self.throttle.failed(peer);
        }
    }
}

impl Guard {
    /// Grows with every connection let in or turned away: what
    /// `serve::trim_when_idle` watches.
    pub fn activity(&self) -> u64 {
        self.admission.admitted() + self.incidents.all()
    }

    /// The front door's series for `/metrics`.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write as _;
        let _ = writeln!(
            out,
            "# HELP tsstore_connections_open TCP connections open (HTTP, TLS, WebSocket).\n# TYPE tsstore_connections_open gauge\ntsstore_connections_open {}",
            self.admission.total()
        );
        self.incidents.render(out);
    }
}

impl Default for Guard {
    fn default() -> Self {
        Guard::new(FrontDoor::default())
    }
}
