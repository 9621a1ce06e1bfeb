//! Many stores on one gateway: idle stores close their files and reopen
//! on the next request, transparently; at most `max_open_stores` stay
//! open; `/metrics` lists only the busiest stores (totals always); and a
//! thousand small stores, written, read and left idle, cost the process
//! a bounded number of threads, descriptors and resident memory.
//! (`benches/many_stores.rs` measures ten thousand, and the latencies.)

mod common;

use common::{Options, Server};
use serde_json::json;
use std::time::{Duration, Instant};

/// A value of an unlabelled series in `/metrics`.
fn metric(s: &Server, name: &str) -> f64 {
    let text = s.get("/metrics").text();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics"))
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn start(dir: &std::path::Path, server: serde_json::Value) -> Server {
    let config = dir.join("config.json");
    std::fs::write(&config, json!({ "server": server }).to_string()).unwrap();
    Server::start_with(
        dir,
        Options {
            args: vec!["--config", config.to_str().unwrap()],
            // The production default: a flusher job per store.
            env: vec![("TSSTORE_SYNC", "interval".into())],
            ..Options::default()
        },
    )
}

fn put(s: &Server, store: &str, key: &str, ts: i64) {
    let r = s
        .req("POST", &format!("/api/stores/{store}/data"))
        .key(key)
        .json(&json!({"timestamp": ts, "data": {"n": ts}}))
        .send();
    assert_eq!(r.status, 201, "{}", r.text());
}

fn newest(s: &Server, store: &str, key: &str) -> serde_json::Value {
    let r = s
        .req("GET", &format!("/api/stores/{store}/data/newest?limit=10"))
        .key(key)
        .send();
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// (threads, open descriptors, resident KiB) of a process.
fn footprint(pid: u32) -> (usize, usize, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("{name} in /proc/{pid}/status"))
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    (field("Threads:") as usize, fds, field("VmRSS:"))
}

#[test]
fn an_idle_store_closes_and_reopens_on_the_next_request() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), json!({"store_idle_close_ms": 200}));
    let key = s.create_store(json!({"name": "sleepy", "num_blocks": 16}));
    put(&s, "sleepy", &key, 1);
    put(&s, "sleepy", &key, 2);
    wait_for("the idle store to close", || {
        metric(&s, "tsstore_stores_open") == 0.0
    });
    assert!(metric(&s, "tsstore_stores_idle_closed_total") >= 1.0);
    // Opened again by the next request, with everything it had.
    assert_eq!(common::timestamps(&newest(&s, "sleepy", &key)), vec![2, 1]);
    put(&s, "sleepy", &key, 3);
    assert_eq!(metric(&s, "tsstore_stores_open"), 1.0);
    assert_eq!(metric(&s, "tsstore_inserts_total"), 3.0);
    // A live reader holds its store open: it is in use.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let _reader =
            common::ws_connect(&s, &format!("/api/stores/sleepy/ws/read?api_key={key}")).await;
        let closed = metric(&s, "tsstore_stores_idle_closed_total");
        std::thread::sleep(Duration::from_millis(600));
        assert_eq!(metric(&s, "tsstore_stores_open"), 1.0);
        assert_eq!(metric(&s, "tsstore_stores_idle_closed_total"), closed);
    });
}

#[test]
fn at_most_max_open_stores_stay_open_and_metrics_list_the_busiest() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(
        dir.path(),
        json!({"store_idle_close_ms": 0, "max_open_stores": 3, "metrics_stores": "2"}),
    );
    let mut keys = Vec::new();
    for i in 0..6 {
        let name = format!("s{i}");
        let key = s.create_store(json!({"name": name, "num_blocks": 16}));
        // s5 gets the most inserts, then s4.
        for ts in 0..=i {
            put(&s, &name, &key, ts as i64 + 1);
        }
        keys.push((name, key));
    }
    wait_for("the least recently used stores to close", || {
        metric(&s, "tsstore_stores_open") <= 3.0
    });
    let text = s.get("/metrics").text();
    assert!(
        text.contains("tsstore_store_inserts_total{store=\"s5\"} 6"),
        "{text}"
    );
    assert!(
        text.contains("tsstore_store_inserts_total{store=\"s4\"} 5"),
        "{text}"
    );
    assert!(
        !text.contains("store=\"s3\""),
        "only the busiest two: {text}"
    );
    assert!(text.contains("tsstore_inserts_total 21"), "{text}");
    // Every store still answers, reopened as needed.
    for (i, (name, key)) in keys.iter().enumerate() {
        assert_eq!(common::timestamps(&newest(&s, name, key)).len(), i + 1);
    }
}

/// A thousand small stores, each written and read once, then idle: the
/// server's threads, descriptors and memory stay within the bounds of
/// a gateway, and a restart answers at once.
#[test]
fn a_thousand_idle_stores_cost_little() {
    const STORES: usize = 1000;
    let dir = tempfile::tempdir().unwrap();
    let config = json!({"store_idle_close_ms": 500, "max_open_stores": 64});
    let s = start(dir.path(), config.clone());
    let mut keys = Vec::with_capacity(STORES);
    for i in 0..STORES {
        let name = format!("sensor{i:05}");
        let key = s.create_store(json!({"name": name, "num_blocks": 16}));
        put(&s, &name, &key, 1);
        assert_eq!(common::timestamps(&newest(&s, &name, &key)), vec![1]);
        keys.push((name, key));
    }
    wait_for("every store to close", || {
        metric(&s, "tsstore_stores_open") == 0.0
    });
    let (threads, fds, rss_kib) = footprint(s.pid());
    eprintln!("{STORES} idle stores: {threads} threads, {fds} descriptors, {rss_kib} KiB resident");
    assert!(threads <= 32, "{threads} threads");
    assert!(fds <= 512, "{fds} descriptors");
    assert!(rss_kib <= 64 * 1024, "{rss_kib} KiB resident");
    let metrics = s.get("/metrics").text();
    assert!(
        metrics.len() <= 100 * 1024,
        "/metrics is {} bytes",
        metrics.len()
    );
    assert_eq!(metric(&s, "tsstore_inserts_total"), STORES as f64);
    s.stop();
    let s = start(dir.path(), config);
    let (name, key) = &keys[STORES / 2];
    assert_eq!(common::timestamps(&newest(&s, name, key)), vec![1]);
    assert_eq!(metric(&s, "tsstore_stores_open"), 1.0, "stores open lazily");
}
