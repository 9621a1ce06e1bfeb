//! Ten thousand stores on one gateway (issue "Reads at memory speed, and
//! ten thousand stores"). Creates `MANY_STORES` (default 10 000) stores of
//! 16 blocks on the release server, writes one record into each and reads
//! it back, waits for them to go idle, then reports the process's threads,
//! open descriptors and resident memory, the size of `/metrics`, the first
//! read of an idle store (p50, p99 over 1 000 of them), and the time from
//! a restart to the first answer.
//! Run: `cargo bench -p tsstore-server --bench many_stores`.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{ADMIN, connect_http, http};

struct Server {
    child: Child,
    port: u16,
    /// Kept open: the server's stdout must not become a broken pipe.
    _out: std::io::BufReader<std::process::ChildStdout>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &std::path::Path) -> (Server, Instant) {
    let config = dir.join("config.json");
    std::fs::write(
        &config,
        r#"{"server": {"store_idle_close_ms": 2000, "max_open_stores": 256}}"#,
    )
    .expect("config");
    let began = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tsstore"))
        .args(["serve", "--host", "127.0.0.1", "--port", "0", "--no-socket"])
        .arg("--config")
        .arg(&config)
        .arg("--path")
        .arg(dir.join("data"))
        .env("TSSTORE_ADMIN_KEY", ADMIN)
        .env("TSSTORE_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the server");
    let (port, out) = common::listening(&mut child);
    (
        Server {
            child,
            port,
            _out: out,
        },
        began,
    )
}

fn metric(port: u16, name: &str) -> (f64, usize) {
    let text = http(&mut connect_http(port), "GET", "/metrics", "", "");
    let v = text
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .expect("series");
    (v, text.len())
}

/// (threads, descriptors, resident KiB, and of the descriptors: sockets,
/// store files).
fn footprint(pid: u32) -> (u64, usize, u64, usize, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .expect("field")
    };
    let fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("fd")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .map(|target| target.display().to_string())
        .collect();
    let sockets = fds.iter().filter(|t| t.starts_with("socket:")).count();
    let stores = fds.iter().filter(|t| t.ends_with(".tsdb")).count();
    (
        field("Threads:"),
        fds.len(),
        field("VmRSS:"),
        sockets,
        stores,
    )
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p) as usize]
}

fn main() {
    if !common::bench_requested() {
        return;
    }
    let stores: usize = std::env::var("MANY_STORES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, _) = start(dir.path());
    let port = server.port;
    let mut conn = connect_http(port);
    let admin = format!("X-Admin-Key: {ADMIN}\r\n");
    let mut keys = Vec::with_capacity(stores);
    let t = Instant::now();
    for i in 0..stores {
        let name = format!("sensor{i:05}");
        let body = format!(r#"{{"name":"{name}","num_blocks":16}}"#);
        let out = http(&mut conn, "POST", "/api/stores", &admin, &body);
        let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
        let key = format!("X-API-Key: {}\r\n", v["api_key"].as_str().expect("key"));
        let rec = r#"{"data":{"temperature":21.5,"humidity":40}}"#;
        http(
            &mut conn,
            "POST",
            &format!("/api/stores/{name}/data"),
            &key,
            rec,
        );
        let got = http(
            &mut conn,
            "GET",
            &format!("/api/stores/{name}/data/newest"),
            &key,
            "",
        );
        assert!(got.contains("21.5"), "{got}");
        keys.push((name, key));
    }
    let made = t.elapsed();
    let t = Instant::now();
    while metric(port, "tsstore_stores_open").0 > 0.0 {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "stores did not go idle"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (threads, fds, rss, sockets, store_files) = footprint(server.child.id());
    let (_, metrics_bytes) = metric(port, "tsstore_stores_open");
    // First reads of idle stores, spread over all of them.
    let mut first = Vec::new();
    for i in (0..stores).step_by((stores / 1000).max(1)) {
        let (name, key) = &keys[i];
        let t = Instant::now();
        let got = http(
            &mut conn,
            "GET",
            &format!("/api/stores/{name}/data/newest"),
            key,
            "",
        );
        first.push(t.elapsed().as_secs_f64() * 1e3);
        assert!(got.contains("21.5"), "{got}");
    }
    drop(conn);
    let pid = server.child.id();
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let mut server = server;
    let _ = server.child.wait();
    drop(server);
    let (again, began) = start(dir.path());
    let (name, key) = &keys[stores / 2];
    let got = http(
        &mut connect_http(again.port),
        "GET",
        &format!("/api/stores/{name}/data/newest"),
        key,
        "",
    );
    let restart = began.elapsed();
    assert!(got.contains("21.5"), "{got}");
    println!(
        "{stores} stores of 16 blocks, each written and read once ({:.1} s), then idle:\n  \
         threads {threads}, open descriptors {fds} ({sockets} sockets, {store_files} \
         store files), resident {:.1} MB, /metrics {:.1} KB\n  \
         first read of an idle store: p50 {:.2} ms, p99 {:.2} ms ({} stores)\n  \
         restart to first answer: {:.0} ms",
        made.as_secs_f64(),
        rss as f64 / 1024.0,
        metrics_bytes as f64 / 1024.0,
        percentile(first.clone(), 0.5),
        percentile(first.clone(), 0.99),
        first.len(),
        restart.as_secs_f64() * 1e3,
    );
}
