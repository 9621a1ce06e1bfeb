//! Refusals, timeouts and failed authentications: counted for `/metrics`
//! by reason, and logged as summary lines, never one line per event.
//!
//! Under an attack the events come by the thousand per second; one log
//! line each would fill an SD card faster than the attack itself. So the
//! first event of a reason is logged at once (an operator sees trouble
//! start), and the rest are summed: at most one line per reason per
//! `REPORT_EVERY`, with the count and the few client addresses that
//! caused most of it. Memory is fixed: `MAX_PEERS_NAMED` addresses per
//! reason per interval, the others only counted.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::peer::Peer;

/// Longest a summed count waits before its line is written.
pub const REPORT_EVERY: Duration = Duration::from_secs(10);
/// Client addresses named in one summary line.
const MAX_PEERS_NAMED: usize = 4;

/// Something the front door did to a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incident {
    /// A connection refused at the server's connection limit.
    GlobalLimit,
    /// A connection refused at its address's connection limit.
    AddressLimit,
    /// A connection closed for not completing a request in time.
    RequestDeadline,
    /// A keep-alive connection closed after its idle timeout (routine:
    /// counted, not logged).
    Idle,
    /// A connection closed because the client took nothing of what was
    /// sent to it for the send timeout.
    SendStalled,
    /// A WebSocket write connection closed for sending no message.
    WsIdle,
    /// A key that did not verify.
    AuthFailed,
    /// An attempt refused unchecked: too many failures from its address.
    AuthThrottled,
}

const ALL: [Incident; 8] = [
    Incident::GlobalLimit,
    Incident::AddressLimit,
    Incident::RequestDeadline,
    Incident::Idle,
    Incident::SendStalled,
    Incident::WsIdle,
    Incident::AuthFailed,
    Incident::AuthThrottled,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Silent,
    Info,
    Warn,
}

impl Incident {
    fn slot(self) -> usize {
        self as usize
    }

    /// The Prometheus family and the `reason` label.
    fn series(self) -> (&'static str, &'static str) {
        match self {
            Incident::GlobalLimit => ("tsstore_connections_refused_total", "global_limit"),
            Incident::AddressLimit => ("tsstore_connections_refused_total", "address_limit"),
            Incident::RequestDeadline => ("tsstore_connections_closed_total", "request_deadline"),
            Incident::Idle => ("tsstore_connections_closed_total", "idle"),
            Incident::SendStalled => ("tsstore_connections_closed_total", "send_stalled"),
            Incident::WsIdle => ("tsstore_connections_closed_total", "ws_idle"),
            Incident::AuthFailed => ("tsstore_auth_failures_total", "invalid_key"),
            Incident::AuthThrottled => ("tsstore_auth_failures_total", "throttled"),
        }
    }

    fn level(self) -> Level {
        match self {
            Incident::Idle => Level::Silent,
            Incident::RequestDeadline | Incident::WsIdle | Incident::SendStalled => Level::Info,
            _ => Level::Warn,
        }
    }

    /// What happened `n` times, for the summary line.
    fn describe(self, n: u64) -> String {
        let s = if n == 1 { "" } else { "s" };
        match self {
            Incident::GlobalLimit => format!(
                "{n} connection{s} refused: the server's connection limit (server.max_connections) was reached"
            ),
            Incident::AddressLimit => format!(
                "{n} connection{s} refused: the client address had server.max_connections_per_address open"
            ),
            Incident::RequestDeadline => format!(
                "{n} connection{s} closed: no complete request within server.request_header_timeout_ms"
            ),
            Incident::Idle => format!("{n} idle keep-alive connection{s} closed"),
            Incident::SendStalled => format!(
                "{n} connection{s} closed: the client took nothing sent to it for server.send_timeout_ms"
            ),
            Incident::WsIdle => format!(
                "{n} WebSocket write connection{s} closed: no message for server.ws_idle_timeout_ms"
            ),
            Incident::AuthFailed => format!("{n} failed authentication{s} (wrong or unknown key)"),
            Incident::AuthThrottled => format!(
                "{n} authentication attempt{s} refused unchecked: too many failures from the address"
            ),
        }
    }
}

/// What one reason gathered since its last line.
#[derive(Debug, Default)]
struct Window {
    count: u64,
    peers: Vec<(Peer, u64)>,
    /// Events from addresses beyond the first `MAX_PEERS_NAMED`.
    others: u64,
    last_line: Option<Instant>,
}

impl Window {
    fn add(&mut self, peer: Option<Peer>) {
        self.count += 1;
        let Some(peer) = peer else { return };
        if let Some(entry) = self.peers.iter_mut().find(|(p, _)| *p == peer) {
            entry.1 += 1;
        } else if self.peers.len() < MAX_PEERS_NAMED {
            self.peers.push((peer, 1));
        } else {
            self.others += 1;
        }
    }

    /// The line for what was gathered, which is then cleared.
    fn take_line(&mut self, incident: Incident, now: Instant) -> String {
        let mut line = incident.describe(self.count);
        if let Some(last) = self.last_line {
            let secs = now.duration_since(last).as_secs().max(1);
            let _ = write!(line, " in the last {secs} s");
        }
        self.peers.sort_by_key(|p| std::cmp::Reverse(p.1));
        for (i, (peer, n)) in self.peers.iter().enumerate() {
            line.push_str(if i == 0 { "; from " } else { ", " });
            let _ = write!(line, "{peer} ({n})");
        }
        if self.others > 0 {
            let _ = write!(line, " and {} from other addresses", self.others);
        }
        self.count = 0;
        self.others = 0;
        self.peers.clear();
        self.last_line = Some(now);
        line
    }
}

/// The counters and the summary log.
#[derive(Debug, Default)]
pub struct Incidents {
    totals: [AtomicU64; ALL.len()],
    windows: Mutex<[Window; ALL.len()]>,
}

impl Incidents {
    /// Counts one event (by `peer` when known) and logs it if its reason
    /// has had no line for `REPORT_EVERY`.
    pub fn record(&self, incident: Incident, peer: Option<Peer>) {
        self.totals[incident.slot()].fetch_add(1, Relaxed);
        if incident.level() == Level::Silent {
            return;
        }
        let now = Instant::now();
        let line = {
            let Ok(mut windows) = self.windows.lock() else {
                return;
            };
            let w = &mut windows[incident.slot()];
            w.add(peer);
            let due = w
                .last_line
                .is_none_or(|last| now.duration_since(last) >= REPORT_EVERY);
            due.then(|| w.take_line(incident, now))
        };
        if let Some(line) = line {
            emit(incident, &line);
        }
    }

    /// Every incident since the start, whatever its reason.
    pub fn all(&self) -> u64 {
        self.totals.iter().map(|t| t.load(Relaxed)).sum()
    }

    /// How many `incident`s since the start.
    pub fn total(&self, incident: Incident) -> u64 {
        self.totals[incident.slot()].load(Relaxed)
    }

    /// Writes the lines that are due (every `REPORT_EVERY`, and once more
    /// when the server stops, so nothing counted goes unsaid).
    pub fn flush(&self, force: bool) {
        let now = Instant::now();
        let mut lines = Vec::new();
        if let Ok(mut windows) = self.windows.lock() {
            for incident in ALL {
                let w = &mut windows[incident.slot()];
                let due = w
                    .last_line
                    .is_none_or(|last| now.duration_since(last) >= REPORT_EVERY);
                if w.count > 0 && (due || force) {
                    lines.push((incident, w.take_line(incident, now)));
                }
            }
        }
        for (incident, line) in lines {
            emit(incident, &line);
        }
    }

    /// Flushes every `REPORT_EVERY` until `stop`, then a last time.
    pub async fn run(self: std::sync::Arc<Self>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(REPORT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => self.flush(false),
            }
        }
        self.flush(true);
    }

    /// The counters in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let mut family = "";
        for incident in ALL {
            let (name, reason) = incident.series();
            if name != family {
                family = name;
                let help = match name {
                    "tsstore_connections_refused_total" => "Connections refused, by reason.",
                    "tsstore_connections_closed_total" => {
                        "Connections closed by a timeout, by reason."
                    }
                    _ => "Failed or refused authentications, by reason.",
                };
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            }
            let _ = writeln!(
                out,
                "{name}{{reason=\"{reason}\"}} {}",
                self.total(incident)
            );
        }
    }
}

fn emit(incident: Incident, line: &str) {
    match incident.level() {
        Level::Warn => tracing::warn!("{line}"),
        Level::Info => tracing::info!("{line}"),
        Level::Silent => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_events_make_one_line_naming_the_busiest_addresses() {
        let mut w = Window::default();
        let a = Peer::ip("192.0.2.1".parse().unwrap());
        for i in 0..1000u32 {
            w.add(Some(a));
            let other = Peer::ip(std::net::Ipv4Addr::from(0x0a00_0000 + i % 10).into());
            w.add(Some(other));
        }
        let line = w.take_line(Incident::AddressLimit, Instant::now());
        assert!(line.starts_with("2000 connections refused"), "{line}");
        assert!(line.contains("from 192.0.2.1 (1000)"), "{line}");
        assert!(line.contains("from other addresses"), "{line}");
        assert_eq!(w.count, 0);
        assert!(w.peers.is_empty());
    }

    #[test]
    fn counted_by_reason_and_rendered() {
        let incidents = Incidents::default();
        for _ in 0..3 {
            incidents.record(Incident::AuthFailed, Some(Peer::Unix(Some(1000))));
        }
        incidents.record(Incident::Idle, None);
        assert_eq!(incidents.total(Incident::AuthFailed), 3);
        let mut out = String::new();
        incidents.render(&mut out);
        assert!(out.contains("tsstore_auth_failures_total{reason=\"invalid_key\"} 3"));
        assert!(out.contains("tsstore_connections_closed_total{reason=\"idle\"} 1"));
        assert_eq!(out.matches("# TYPE").count(), 3, "{out}");
        // The first event was logged at once; the other two wait.
        let pending = incidents.windows.lock().unwrap()[Incident::AuthFailed.slot()].count;
        assert_eq!(pending, 2);
        incidents.flush(true);
        let pending = incidents.windows.lock().unwrap()[Incident::AuthFailed.slot()].count;
        assert_eq!(pending, 0);
    }
}
