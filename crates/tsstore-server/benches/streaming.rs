//! Streaming ingest and live read, end to end: the release server binary
//! on loopback, driven by clients in this process (so load generator and
//! server share the machine, as in `scripts/bench-http.sh`).
//!
//! `cargo bench -p tsstore-server --bench streaming` prints records/s for
//! REST (one at a time: the baseline), WebSocket (one at a time, and
//! pipelined with a window of acks in flight), the Unix socket (one at a
//! time, pipelined, 16 clients pipelined together), and the latency from
//! an insert to its delivery to a live reader at 1 000 inserts/s; then
//! outbound connections to a WebSocket peer in this process: push from
//! history, live push latency, and pull.
//! `STREAMING_SCALE=0.1` runs a tenth of the records (a quick look).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{
    RECORD, Server, connect_http, create_store, fill, http, now_ns, object_count, rate,
    socket_client_for, start,
};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

fn rest_one_at_a_time(s: &Server, key: &str, n: usize) -> f64 {
    let mut c = connect_http(s.port);
    let body = format!(r#"{{"data":{RECORD}}}"#);
    let headers = format!("X-API-Key: {key}\r\n");
    let start = Instant::now();
    for _ in 0..n {
        http(&mut c, "POST", "/api/stores/b/data", &headers, &body);
    }
    rate(n, start.elapsed())
}

async fn ws_connect(
    s: &Server,
    key: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let url = format!(
        "ws://127.0.0.1:{}/api/stores/b/ws/write?api_key={key}",
        s.port
    );
    tokio_tungstenite::connect_async(url).await.expect("ws").0
}

async fn ws_one_at_a_time(s: &Server, key: &str, n: usize) -> f64 {
    let mut ws = ws_connect(s, key).await;
    let msg = format!(r#"{{"data":{RECORD}}}"#);
    let start = Instant::now();
    for _ in 0..n {
        ws.send(Message::Text(msg.clone().into()))
            .await
            .expect("send");
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    assert!(t.starts_with("{\"type\":\"ack\""), "{t}");
                    break;
                }
                Some(Ok(_)) => {}
                other => panic!("expected an ack, got {other:?}"),
            }
        }
    }
    rate(n, start.elapsed())
}

/// Up to `window` messages in flight: the sender waits for acks to free it.
async fn ws_pipelined(s: &Server, key: &str, n: usize, window: usize) -> f64 {
    let ws = ws_connect(s, key).await;
    let (mut tx, mut rx) = ws.split();
    let credit = std::sync::Arc::new(tokio::sync::Semaphore::new(window));
    let msg = format!(r#"{{"data":{RECORD}}}"#);
    let start = Instant::now();
    let sender = {
        let credit = std::sync::Arc::clone(&credit);
        tokio::spawn(async move {
            for _ in 0..n {
                credit.acquire().await.expect("credit").forget();
                tx.feed(Message::Text(msg.clone().into()))
                    .await
                    .expect("send");
                if credit.available_permits() == 0 {
                    tx.flush().await.expect("flush");
                }
            }
            tx.flush().await.expect("flush");
            tx
        })
    };
    let mut acks = 0;
    while acks < n {
        match rx.next().await {
            Some(Ok(Message::Text(t))) => {
                assert!(t.starts_with("{\"type\":\"ack\""), "{t}");
                acks += 1;
                credit.add_permits(1);
            }
            Some(Ok(_)) => {}
            other => panic!("expected an ack, got {other:?}"),
        }
    }
    let elapsed = start.elapsed();
    drop(sender.await);
    rate(n, elapsed)
}

fn socket_client(sock: &Path, key: &str) -> (BufReader<UnixStream>, UnixStream) {
    socket_client_for(sock, "b", key)
}

fn socket_one_at_a_time(s: &Server, key: &str, n: usize) -> f64 {
    let (mut r, mut w) = socket_client(&s.sock, key);
    let line = format!("{RECORD}\n");
    let mut reply = String::new();
    let start = Instant::now();
    for _ in 0..n {
        w.write_all(line.as_bytes()).expect("send");
        reply.clear();
        r.read_line(&mut reply).expect("reply");
        assert!(reply.starts_with("OK "), "{reply}");
    }
    rate(n, start.elapsed())
}

/// One client sending `n` lines as fast as it can while reading replies.
fn socket_pipelined_client(sock: &Path, key: &str, n: usize) {
    let (r, mut w) = socket_client(sock, key);
    let writer = std::thread::spawn(move || {
        let chunk: String = std::iter::repeat_n(format!("{RECORD}\n"), 1000).collect();
        for _ in 0..n / 1000 {
            w.write_all(chunk.as_bytes()).expect("send");
        }
        w
    });
    let mut lines = r.lines();
    for _ in 0..(n / 1000) * 1000 {
        let reply = lines.next().expect("a reply").expect("reply");
        assert!(reply.starts_with("OK "), "{reply}");
    }
    drop(writer.join());
}

fn socket_pipelined(s: &Server, key: &str, n: usize, clients: usize) -> f64 {
    let start = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (sock, key) = (s.sock.clone(), key.to_string());
            std::thread::spawn(move || socket_pipelined_client(&sock, &key, n / clients))
        })
        .collect();
    for t in threads {
        t.join().expect("client");
    }
    rate((n / clients / 1000) * 1000 * clients, start.elapsed())
}

/// A thread inserting `n` records into `store` through the socket at
/// `per_sec`, one at a time, each carrying its send time (`sent`, ns).
fn insert_at_rate(
    s: &Server,
    store: &str,
    key: &str,
    per_sec: u64,
    n: usize,
) -> std::thread::JoinHandle<()> {
    let (sock, store, key) = (s.sock.clone(), store.to_string(), key.to_string());
    std::thread::spawn(move || {
        let (mut r, mut w) = socket_client_for(&sock, &store, &key);
        let start = Instant::now();
        let mut reply = String::new();
        for i in 0..n {
            let due = start + Duration::from_nanos(i as u64 * 1_000_000_000 / per_sec);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            w.write_all(format!("{{\"sent\":{}}}\n", now_ns()).as_bytes())
                .expect("send");
            reply.clear();
            r.read_line(&mut reply).expect("reply");
        }
    })
}

/// Inserts at `per_sec` through the socket (each record carrying its send
/// time) while a live reader measures when each arrives.
async fn live_latency(s: &Server, key: &str, per_sec: u64, seconds: u64) -> (f64, f64, f64, usize) {
    let url = format!(
        "ws://127.0.0.1:{}/api/stores/b/ws/read?api_key={key}",
        s.port
    );
    let (mut reader, _) = tokio_tungstenite::connect_async(url).await.expect("reader");
    let n = (per_sec * seconds) as usize;
    let inserter = insert_at_rate(s, "b", key, per_sec, n);
    let mut latencies = Vec::with_capacity(n);
    while latencies.len() < n {
        match reader.next().await {
            Some(Ok(Message::Text(t))) => {
                let v: serde_json::Value = serde_json::from_str(&t).expect("JSON");
                if let Some(sent) = v["data"]["sent"].as_i64() {
                    latencies.push((now_ns() - sent) as f64 / 1e6);
                }
            }
            Some(Ok(_)) => {}
            other => panic!("reader ended: {other:?}"),
        }
    }
    inserter.join().expect("inserter");
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    (
        at(0.5),
        at(0.99),
        latencies[latencies.len() - 1],
        latencies.len(),
    )
}

/// A loopback WebSocket peer: counts the data messages it receives (and
/// reports each one's `data.sent` latency; alerts are not counted), or
/// sends `send` messages.
async fn bench_peer(
    send: Option<(usize, String)>,
) -> (u16, tokio::sync::mpsc::UnboundedReceiver<Option<f64>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else {
            return;
        };
        let (mut out, mut inc) = ws.split();
        if let Some((n, msg)) = send {
            for _ in 0..n {
                if out.feed(Message::Text(msg.clone().into())).await.is_err() {
                    return;
                }
            }
            let _ = out.flush().await;
            // Keep the connection (and answer pings) until the test ends.
            while inc.next().await.is_some() {}
            return;
        }
        while let Some(Ok(m)) = inc.next().await {
            if let Message::Text(t) = m {
                let Ok(v) = serde_json::from_str::<serde_json::Value>(&t) else {
                    continue;
                };
                // Alerts reach the peer too (none is dropped while it is
                // connected); only records are counted.
                if v["type"] != "data" {
                    continue;
                }
                let sent = v["data"]["sent"].as_i64();
                let _ = tx.send(sent.map(|s| (now_ns() - s) as f64 / 1e6));
            }
        }
    });
    (port, rx)
}

fn create_connection(port: u16, key: &str, store: &str, body: &str) {
    let mut c = connect_http(port);
    let out = http(
        &mut c,
        "POST",
        &format!("/api/stores/{store}/ws/connections"),
        &format!("X-API-Key: {key}\r\n"),
        body,
    );
    assert!(out.contains("\"id\""), "{out}");
}

/// Push from history: `n` records already stored, sent to a peer.
async fn push_history(s: &Server, n: usize) -> f64 {
    let key = create_store(s.port, "hist");
    fill(s, "hist", &key, n).await.expect("fill");
    let (peer, mut rx) = bench_peer(None).await;
    let start = Instant::now();
    create_connection(
        s.port,
        &key,
        "hist",
        &format!(r#"{{"url":"ws://127.0.0.1:{peer}/in","from":0}}"#),
    );
    for _ in 0..n {
        rx.recv().await.expect("a record");
    }
    rate(n, start.elapsed())
}

/// A push connection first (`extra` adds its rules), then `n` records
/// inserted as fast as the socket takes them: records/s until the peer
/// has them all, and until the rules have fired `fires` times.
async fn push_while_inserting(
    s: &Server,
    n: usize,
    store: &'static str,
    extra: &str,
    fires: u64,
) -> (f64, f64) {
    let key = create_store(s.port, store);
    let (peer, mut rx) = bench_peer(None).await;
    create_connection(
        s.port,
        &key,
        store,
        &format!(r#"{{"url":"ws://127.0.0.1:{peer}/in","from":0{extra}}}"#),
    );
    let start = Instant::now();
    let filling = fill(s, store, &key, n);
    for _ in 0..n {
        rx.recv().await.expect("a record");
    }
    let pushed = rate(n, start.elapsed());
    filling.await.expect("fill");
    let path = format!("/api/stores/{store}/ws/connections");
    loop {
        let mut c = connect_http(s.port);
        let out = http(&mut c, "GET", &path, &format!("X-API-Key: {key}\r\n"), "");
        let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
        if v["connections"][0]["alerts_fired"].as_u64() >= Some(fires) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (pushed, rate(n, start.elapsed()))
}

/// Live push latency at `per_sec` inserts/s through the socket.
async fn push_latency(s: &Server, per_sec: u64, seconds: u64) -> (f64, f64, usize) {
    let key = create_store(s.port, "lat");
    let (peer, mut rx) = bench_peer(None).await;
    create_connection(
        s.port,
        &key,
        "lat",
        &format!(r#"{{"url":"ws://127.0.0.1:{peer}/in"}}"#),
    );
    let n = (per_sec * seconds) as usize;
    let inserter = insert_at_rate(s, "lat", &key, per_sec, n);
    let mut latencies = Vec::with_capacity(n);
    while latencies.len() < n {
        if let Some(l) = rx.recv().await.expect("a record") {
            latencies.push(l);
        }
    }
    inserter.join().expect("inserter");
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    (at(0.5), at(0.99), latencies.len())
}

/// Pull: a peer sends `n` records as fast as it can.
async fn pull(s: &Server, n: usize) -> f64 {
    let key = create_store(s.port, "pulled");
    let (peer, _rx) = bench_peer(Some((n, format!(r#"{{"data":{RECORD}}}"#)))).await;
    let start = Instant::now();
    create_connection(
        s.port,
        &key,
        "pulled",
        &format!(r#"{{"mode":"pull","url":"ws://127.0.0.1:{peer}/out"}}"#),
    );
    let port = s.port;
    let key2 = key.clone();
    while tokio::task::spawn_blocking({
        let key2 = key2.clone();
        move || object_count(port, &key2, "pulled")
    })
    .await
    .expect("stats")
        < n as u64
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    rate(n, start.elapsed())
}

fn main() {
    if !common::bench_requested() {
        return;
    }
    let n = common::scaled;
    let scale = common::scale();
    let s = start();
    let key = create_store(s.port, "b");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    println!("streaming ingest, records/s (server and clients on this machine)");
    let rest = rest_one_at_a_time(&s, &key, n(10_000));
    println!("  REST POST, one at a time (baseline)     {rest:>10.0}  1.00x");
    let line = |name: &str, v: f64| println!("  {name:<40} {v:>10.0}  {:.2}x", v / rest);
    line(
        "WebSocket, one at a time",
        rt.block_on(ws_one_at_a_time(&s, &key, n(10_000))),
    );
    line(
        "WebSocket, pipelined (1000 in flight)",
        rt.block_on(ws_pipelined(&s, &key, n(200_000), 1000)),
    );
    line(
        "Unix socket, one at a time",
        socket_one_at_a_time(&s, &key, n(10_000)),
    );
    line(
        "Unix socket, pipelined",
        socket_pipelined(&s, &key, n(500_000), 1),
    );
    line(
        "Unix socket, 16 clients pipelined",
        socket_pipelined(&s, &key, n(480_000), 16),
    );
    let (p50, p99, max, count) =
        rt.block_on(live_latency(&s, &key, 1000, (5.0 * scale).max(1.0) as u64));
    println!(
        "live read at 1000 inserts/s, insert to delivery: p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms ({count} records)"
    );
    println!("outbound connections (a WebSocket peer in this process)");
    line(
        "push from history",
        rt.block_on(push_history(&s, n(200_000))),
    );
    let (plain, _) = rt.block_on(push_while_inserting(&s, n(200_000), "live", "", 0));
    line("push while inserting", plain);
    // A rule every record matches, firing once (cooldown): the cost of
    // evaluating. Then one that fires on every record (no cooldown): the
    // worst case, every record an alert.
    let once = r#","rules":[{"name":"warm","condition":"temperature > 20 AND room == \"lab\"","cooldown":"1h"}]"#;
    let (pushed, _) = rt.block_on(push_while_inserting(&s, n(200_000), "rule", once, 1));
    line("push while inserting, one alert rule", pushed);
    let every = r#","rules":[{"name":"warm","condition":"temperature > 20 AND room == \"lab\""}]"#;
    let all = n(200_000) as u64;
    let (pushed, fired) = rt.block_on(push_while_inserting(&s, n(200_000), "fire", every, all));
    line("push while inserting, every record fires", pushed);
    line("  ... until every record has fired", fired);
    let (p50, p99, count) = rt.block_on(push_latency(&s, 1000, (5.0 * scale).max(1.0) as u64));
    println!(
        "  live push at 1000 inserts/s, insert to peer: p50 {p50:.2} ms, p99 {p99:.2} ms ({count} records)"
    );
    line("pull", rt.block_on(pull(&s, n(200_000))));
}
