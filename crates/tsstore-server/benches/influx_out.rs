//! Shipping to a central engine: the release server binary and a real
//! VictoriaMetrics (Debian's `victoria-metrics`) on loopback, on the same
//! 2 cores. An influx connection ships a store's backlog from the oldest
//! record; the time runs from its creation until its cursor reaches the
//! newest record (every batch answered 2xx).
//!
//! 1. 1 000 000 readings of the streaming benches' record (two numbers and
//!    a string), gzip and plain bodies, beside the same lines POSTed to
//!    VictoriaMetrics straight from this process on one connection (what
//!    it takes at most: the baseline).
//! 2. A 24-hour backlog of a 1 Hz sensor with 10 fields (86 400
//!    records): how long catching up takes.
//!
//! `cargo bench -p tsstore-server --bench influx_out`;
//! `STREAMING_SCALE=0.1` for a quick look.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::engines::victoria_metrics;
use common::{RECORD, Server, connect_http, create_store, fill, http, rate, start};

const BASE: i64 = 1_700_000_000_000_000_000;

fn get_json(s: &Server, key: &str, path: &str) -> serde_json::Value {
    let mut c = connect_http(s.port);
    let out = http(&mut c, "GET", path, &format!("X-API-Key: {key}\r\n"), "");
    serde_json::from_str(&out).expect("JSON")
}

/// Creates a connection shipping `store` from the oldest record and waits
/// until it has shipped the newest; seconds taken.
fn ship(s: &Server, key: &str, store: &str, vm: u16, extra: &str) -> f64 {
    let newest = get_json(s, key, &format!("/api/stores/{store}/stats"))["newest_timestamp"]
        .as_i64()
        .expect("records");
    let start = Instant::now();
    let mut c = connect_http(s.port);
    let body = format!(r#"{{"url":"http://127.0.0.1:{vm}/write","from":"oldest"{extra}}}"#);
    let path = format!("/api/stores/{store}/influx/connections");
    let out = http(
        &mut c,
        "POST",
        &path,
        &format!("X-API-Key: {key}\r\n"),
        &body,
    );
    let created: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let id = created["id"].as_str().expect("an id").to_string();
    let view = format!("{path}/{id}");
    // Watched through /metrics, which costs the server next to nothing
    // (a connection's view counts its lag in records).
    let series = format!(
        "tsstore_connection_cursor_timestamp{{store=\"{store}\",id=\"{id}\",kind=\"influx\",mode=\"ship\"}} {newest}"
    );
    loop {
        let metrics = http(&mut c, "GET", "/metrics", "", "");
        if metrics.contains(&series) {
            let secs = start.elapsed().as_secs_f64();
            http(
                &mut c,
                "DELETE",
                &view,
                &format!("X-API-Key: {key}\r\n"),
                "",
            );
            return secs;
        }
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "{}",
            get_json(s, key, &view)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The same lines straight to the engine, in bodies of 5 000: lines/s.
fn direct(vm: u16, n: usize) -> f64 {
    let record: serde_json::Value = serde_json::from_str(RECORD).expect("record");
    let mut bodies = Vec::new();
    let mut body = String::new();
    for i in 0..n {
        body.push_str(&format!(
            "b temperature={},humidity={}i,room=\"{}\" {}\n",
            record["temperature"],
            record["humidity"],
            record["room"].as_str().unwrap_or(""),
            BASE + i as i64 * 1_000_000
        ));
        if (i + 1) % 5000 == 0 {
            bodies.push(std::mem::take(&mut body));
        }
    }
    let mut c = connect_http(vm);
    let start = Instant::now();
    for b in &bodies {
        http(&mut c, "POST", "/write", "", b);
    }
    rate(n, start.elapsed())
}

/// 86 400 records of 10 fields, one a second from `BASE`.
fn day_of_readings(s: &Server, key: &str) {
    let mut c = connect_http(s.port);
    for chunk in 0..(86_400 / 3_600) {
        let mut out = Vec::new();
        write!(out, "[").ok();
        for j in 0..3_600 {
            let i = chunk * 3_600 + j;
            if j > 0 {
                out.push(b',');
            }
            write!(
                out,
                r#"{{"timestamp":{},"data":{{"t1":{}.5,"t2":{},"t3":{}.25,"hum":{},"press":1013.{},"wind":{}.1,"dir":{},"rain":0.{},"lux":{},"batt":3.{}}}}}"#,
                BASE + i as i64 * 1_000_000_000,
                20 + i % 5,
                21 + i % 3,
                19 + i % 7,
                40 + i % 20,
                i % 10,
                i % 12,
                i % 360,
                i % 4,
                i % 1000,
                i % 9
            )
            .ok();
        }
        out.push(b']');
        let body = String::from_utf8(out).expect("utf-8");
        let answer = http(
            &mut c,
            "POST",
            "/api/stores/day/data/batch",
            &format!("X-API-Key: {key}\r\n"),
            &body,
        );
        assert!(answer.contains("\"count\""), "{answer}");
    }
}

fn main() {
    if !common::bench_requested() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let Some((_vm_process, vm)) = victoria_metrics(&dir.path().join("vm")) else {
        eprintln!("victoria-metrics is not installed (apt-get install victoria-metrics)");
        return;
    };
    let s = start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let n = common::scaled(1_000_000);
    let key = create_store(s.port, "ship");
    rt.block_on(async { fill(&s, "ship", &key, n).await.expect("fill") });
    println!(
        "shipping to VictoriaMetrics on loopback, points/s ({n} stored readings, one point each)"
    );
    let baseline = direct(vm, n);
    println!("  the same lines POSTed straight to it (baseline)  {baseline:>10.0}  1.00x");
    for (name, extra) in [
        ("influx connection, gzip (default)", ""),
        ("influx connection, plain", r#","gzip":false"#),
    ] {
        let r = n as f64 / ship(&s, &key, "ship", vm, extra);
        println!("  {name:<47} {r:>10.0}  {:.2}x", r / baseline);
    }
    let day = create_store(s.port, "day");
    day_of_readings(&s, &day);
    let secs = ship(&s, &day, "day", vm, "");
    println!(
        "a 24-hour backlog of a 1 Hz sensor with 10 fields (86 400 records): caught up in {secs:.2} s ({:.0} points/s)",
        86_400.0 / secs
    );
}
