//! Counters and histograms behind `GET /metrics` (Prometheus text format).
//!
//! Everything is a fixed set of atomics: per open store a handful of
//! counters, per route one latency histogram. Routes come from the
//! router's fixed table (unmatched requests share one label), so the
//! number of series is bounded by the code, never by the traffic.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 1.0, 5.0,
];

#[derive(Debug, Default)]
pub struct Histogram {
    /// Per bucket (not cumulative); the last slot is +Inf.
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_ns: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let slot = BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(BUCKETS.len());
        self.counts[slot].fetch_add(1, Relaxed);
        self.sum_ns
            .fetch_add(d.as_nanos().min(u64::MAX as u128) as u64, Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (i, count) in self.counts.iter().enumerate() {
            cumulative += count.load(Relaxed);
            let le = BUCKETS.get(i).map_or("+Inf".to_string(), |b| b.to_string());
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
        }
        let sum = self.sum_ns.load(Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {cumulative}");
    }
}

/// Why an insert was refused; one counter each.
pub const REJECT_REASONS: [&str; 8] = [
    "out_of_order",
    "future_timestamp",
    "invalid_timestamp",
    "invalid_data",
    "schema",
    "too_large",
    "content_type",
    "internal",
];

/// Counters of one open store, each also counted into the server's
/// totals (`within`), which outlive stores closing.
#[derive(Debug, Default)]
pub struct StoreMetrics {
    pub inserts: AtomicU64,
    pub bytes: AtomicU64,
    rejected: [AtomicU64; REJECT_REASONS.len()],
    totals: Option<Arc<StoreMetrics>>,
}

impl StoreMetrics {
    /// A store's counters that also count into `totals`.
    pub fn within(totals: &Arc<StoreMetrics>) -> StoreMetrics {
        StoreMetrics {
            totals: Some(Arc::clone(totals)),
            ..StoreMetrics::default()
        }
    }

    pub fn inserted(&self, records: u64, bytes: u64) {
        self.inserts.fetch_add(records, Relaxed);
        self.bytes.fetch_add(bytes, Relaxed);
        if let Some(t) = &self.totals {
            t.inserted(records, bytes);
        }
    }

    pub fn rejected(&self, reason: &str) {
        let slot = REJECT_REASONS
            .iter()
            .position(|r| *r == reason)
            .unwrap_or(REJECT_REASONS.len() - 1);
        self.rejected[slot].fetch_add(1, Relaxed);
        if let Some(t) = &self.totals {
            t.rejected(reason);
        }
    }
}

/// Which stores get their own series in `/metrics`: with thousands of
/// stores, all of them would make every scrape megabytes long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreSeries {
    All,
    None,
    /// The N open stores with the most inserts since they opened.
    Busiest(usize),
}

impl Default for StoreSeries {
    fn default() -> StoreSeries {
        StoreSeries::Busiest(20)
    }
}

impl StoreSeries {
    /// The stores to list, out of `open` (name, its store), busiest first
    /// for `Busiest` and by name otherwise.
    pub fn pick<'a, T>(
        &self,
        open: &'a [(String, T)],
        inserts: impl Fn(&T) -> u64,
    ) -> Vec<&'a (String, T)> {
        match *self {
            StoreSeries::None => Vec::new(),
            StoreSeries::All => open.iter().collect(),
            StoreSeries::Busiest(n) => {
                let mut by_use: Vec<_> = open.iter().collect();
                by_use.sort_by(|a, b| inserts(&b.1).cmp(&inserts(&a.1)).then(a.0.cmp(&b.0)));
                by_use.truncate(n);
                by_use
            }
        }
    }
}

/// Server-wide store figures, always in `/metrics` whatever
/// `StoreSeries` lists: totals over every store since start (closed ones
/// too) and what is open now.
pub fn render_totals(out: &mut String, totals: &StoreMetrics, open: usize, idle_closes: u64) {
    let lines: [(&str, &str, &str, f64); 6] = [
        (
            "tsstore_inserts_total",
            "counter",
            "Records inserted into any store since start.",
            totals.inserts.load(Relaxed) as f64,
        ),
        (
            "tsstore_inserted_bytes_total",
            "counter",
            "Payload bytes inserted into any store since start.",
            totals.bytes.load(Relaxed) as f64,
        ),
        (
            "tsstore_stores_open",
            "gauge",
            "Stores open now (the others open on their next use).",
            open as f64,
        ),
        (
            "tsstore_stores_idle_closed_total",
            "counter",
            "Stores closed because nothing used them (or to stay within max_open_stores).",
            idle_closes as f64,
        ),
        (
            "tsstore_background_threads",
            "gauge",
            "The engine's background workers (syncs, compression), shared by every store.",
            tsstore::background_threads() as f64,
        ),
        (
            "tsstore_frame_cache_bytes",
            "gauge",
            "Decoded compressed frames kept for the next read (all stores; bounded).",
            tsstore::frame_cache_bytes() as f64,
        ),
    ];
    for (name, kind, help, value) in lines {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
    let name = "tsstore_rejected_inserts_total";
    let _ = writeln!(
        out,
        "# HELP {name} Inserts refused in any store since start, by reason.\n# TYPE {name} counter"
    );
    for (reason, count) in REJECT_REASONS.iter().zip(&totals.rejected) {
        let _ = writeln!(out, "{name}{{reason=\"{reason}\"}} {}", count.load(Relaxed));
    }
}

/// The streaming transports: connections open, and what they took in.
#[derive(Debug, Default)]
pub struct TransportMetrics {
    pub socket_connections: AtomicU64,
    pub socket_lines_accepted: AtomicU64,
    pub socket_lines_rejected: AtomicU64,
    pub ws_write_connections: AtomicU64,
    pub ws_messages_accepted: AtomicU64,
    pub ws_messages_rejected: AtomicU64,
    pub ws_read_connections: AtomicU64,
    pub ws_records_sent: AtomicU64,
}

/// Counts one open connection while it lives.
pub struct Open<'a>(&'a AtomicU64);

impl<'a> Open<'a> {
    pub fn new(gauge: &'a AtomicU64) -> Open<'a> {
        gauge.fetch_add(1, Relaxed);
        Open(gauge)
    }
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

impl TransportMetrics {
    pub fn render(&self, out: &mut String) {
        let series: [(&str, &str, &str, &AtomicU64); 8] = [
            (
                "tsstore_socket_connections",
                "gauge",
                "Unix-socket clients connected.",
                &self.socket_connections,
            ),
            (
                "tsstore_socket_lines_accepted_total",
                "counter",
                "Unix-socket lines stored.",
                &self.socket_lines_accepted,
            ),
            (
                "tsstore_socket_lines_rejected_total",
                "counter",
                "Unix-socket lines answered with ERROR.",
                &self.socket_lines_rejected,
            ),
            (
                "tsstore_ws_write_connections",
                "gauge",
                "WebSocket ingest connections open.",
                &self.ws_write_connections,
            ),
            (
                "tsstore_ws_messages_accepted_total",
                "counter",
                "WebSocket ingest messages stored.",
                &self.ws_messages_accepted,
            ),
            (
                "tsstore_ws_messages_rejected_total",
                "counter",
                "WebSocket ingest messages answered with an error.",
                &self.ws_messages_rejected,
            ),
            (
                "tsstore_ws_read_connections",
                "gauge",
                "Live readers (WebSocket read) connected.",
                &self.ws_read_connections,
            ),
            (
                "tsstore_ws_records_sent_total",
                "counter",
                "Records and windows sent to live readers.",
                &self.ws_records_sent,
            ),
        ];
        for (name, kind, help, v) in series {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}",
                v.load(Relaxed)
            );
        }
    }
}

/// Latency per route.
#[derive(Debug, Default)]
pub struct HttpMetrics {
    routes: RwLock<HashMap<String, Arc<Histogram>>>,
}

impl HttpMetrics {
    pub fn observe(&self, route: &str, d: Duration) {
        let hit = self.routes.read().ok().and_then(|m| m.get(route).cloned());
        let hist = match hit {
            Some(h) => h,
            None => {
                let Ok(mut m) = self.routes.write() else {
                    return;
                };
                Arc::clone(m.entry(route.to_string()).or_default())
            }
        };
        hist.observe(d);
    }

    pub fn render(&self, out: &mut String) {
        out.push_str(
            "# HELP tsstore_http_request_duration_seconds HTTP request latency by route.\n",
        );
        out.push_str("# TYPE tsstore_http_request_duration_seconds histogram\n");
        let Ok(routes) = self.routes.read() else {
            return;
        };
        let mut names: Vec<&String> = routes.keys().collect();
        names.sort();
        for name in names {
            let labels = format!("route=\"{}\"", escape_label(name));
            routes[name].render(out, "tsstore_http_request_duration_seconds", &labels);
        }
    }
}

/// One store's figures for a scrape.
pub struct StoreSample<'a> {
    pub name: &'a str,
    pub metrics: &'a StoreMetrics,
    pub stats: tsstore::Stats,
    /// Live readers connected.
    pub live_readers: usize,
    /// Record time between the newest record and the slowest live reader.
    pub reader_lag_ns: Option<i64>,
}

pub fn render_stores(out: &mut String, samples: &[StoreSample]) {
    type Getter = fn(&StoreSample) -> f64;
    let series: [(&str, &str, &str, Getter); 8] = [
        (
            "tsstore_store_live_readers",
            "gauge",
            "Live readers (WebSocket read) on the store.",
            |s| s.live_readers as f64,
        ),
        (
            "tsstore_store_live_reader_lag_seconds",
            "gauge",
            "Record time between the newest record and what the slowest live reader was sent.",
            |s| s.reader_lag_ns.unwrap_or(0) as f64 / 1e9,
        ),
        (
            "tsstore_store_inserts_total",
            "counter",
            "Records inserted since the store was opened.",
            |s| s.metrics.inserts.load(Relaxed) as f64,
        ),
        (
            "tsstore_store_inserted_bytes_total",
            "counter",
            "Payload bytes inserted since the store was opened.",
            |s| s.metrics.bytes.load(Relaxed) as f64,
        ),
        (
            "tsstore_store_fill_ratio",
            "gauge",
            "Share of the ring in use (0 to 1).",
            |s| s.stats.bytes_used as f64 / s.stats.capacity_bytes.max(1) as f64,
        ),
        (
            "tsstore_store_retention_seconds",
            "gauge",
            "Time between the oldest and the newest record.",
            |s| match (s.stats.oldest_timestamp, s.stats.newest_timestamp) {
                (Some(o), Some(n)) => (n - o) as f64 / 1e9,
                _ => 0.0,
            },
        ),
        (
            "tsstore_store_compression_ratio",
            "gauge",
            "Bytes the readings would take in the raw layout per byte they take: \
             measured on a compressed store's frames, 1 for a raw store or before its first frame.",
            |s| s.stats.compression.map_or(1.0, |c| c.ratio),
        ),
        (
            "tsstore_store_corruption_skips_total",
            "counter",
            "Reads that skipped damaged data.",
            |s| s.stats.corruption_skips as f64,
        ),
    ];
    for (name, kind, help, get) in series {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for s in samples {
            let _ = writeln!(out, "{name}{{store=\"{}\"}} {}", s.name, get(s));
        }
    }
    let name = "tsstore_store_rejected_inserts_total";
    let _ = writeln!(
        out,
        "# HELP {name} Inserts refused, by reason.\n# TYPE {name} counter"
    );
    for s in samples {
        for (reason, count) in REJECT_REASONS.iter().zip(&s.metrics.rejected) {
            let _ = writeln!(
                out,
                "{name}{{store=\"{}\",reason=\"{reason}\"}} {}",
                s.name,
                count.load(Relaxed)
            );
        }
    }
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative_with_sum_and_count() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(50));
        h.observe(Duration::from_millis(2));
        h.observe(Duration::from_secs(10));
        let mut out = String::new();
        h.render(&mut out, "x", "route=\"/r\"");
        assert!(
            out.contains("x_bucket{route=\"/r\",le=\"0.0001\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("x_bucket{route=\"/r\",le=\"0.0025\"} 2\n"),
            "{out}"
        );
        assert!(out.contains("x_bucket{route=\"/r\",le=\"5\"} 2\n"), "{out}");
        assert!(
            out.contains("x_bucket{route=\"/r\",le=\"+Inf\"} 3\n"),
            "{out}"
        );
        assert!(out.contains("x_count{route=\"/r\"} 3\n"), "{out}");
        assert!(out.contains("x_sum{route=\"/r\"} 10.00205"), "{out}");
    }

    #[test]
    fn unknown_reject_reason_counts_as_internal() {
        let m = StoreMetrics::default();
        m.rejected("out_of_order");
        m.rejected("whatever");
        assert_eq!(m.rejected[0].load(Relaxed), 1);
        assert_eq!(m.rejected[REJECT_REASONS.len() - 1].load(Relaxed), 1);
    }
}
