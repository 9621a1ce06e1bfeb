//! An alert burst, end to end: the release server binary on loopback, a
//! push connection whose rule fires on every record (`n >= 0`, cooldown
//! `0s`) with a webhook, and in this process the connection's WebSocket
//! peer and the webhook's receiver (axum, answering 204).
//!
//! Each round inserts 1 000 records in one `POST .../data/batch` and
//! times, from just before the insert, the 1 000th webhook POST received
//! and the 1 000th `{"type":"alert"}` the peer received: nothing may be
//! dropped, so this is how long a burst ten times the webhook's queue
//! takes to get through.
//! `cargo bench -p tsstore-server --bench alerts`; `ALERTS_ROUNDS=3` for a
//! quick look (default 10).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{connect_http, create_store, http, start};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// Records (and so firings) per burst.
const BURST: usize = 1000;
/// Longest a round may take before the bench gives up.
const ROUND_LIMIT: Duration = Duration::from_secs(120);

/// A webhook receiver: reports when each POST arrived.
async fn receiver() -> (u16, mpsc::UnboundedReceiver<Instant>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = mpsc::unbounded_channel();
    let tx = Arc::new(tx);
    let handler = move |_body: String| {
        let tx = Arc::clone(&tx);
        async move {
            let _ = tx.send(Instant::now());
            axum::http::StatusCode::NO_CONTENT
        }
    };
    let app = axum::Router::new().route("/hook", axum::routing::post(handler));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (port, rx)
}

/// The push's peer: reports when each alert message arrived (reading
/// everything, so pings are answered and data never piles up).
async fn peer() -> (u16, mpsc::UnboundedReceiver<Instant>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
            return;
        };
        while let Some(Ok(m)) = ws.next().await {
            if let Message::Text(t) = m
                && t.starts_with("{\"type\":\"alert\"")
            {
                let _ = tx.send(Instant::now());
            }
        }
    });
    (port, rx)
}

/// Waits for the `n`th arrival; when it came.
async fn nth(rx: &mut mpsc::UnboundedReceiver<Instant>, n: usize) -> Instant {
    let mut last = None;
    for _ in 0..n {
        last = Some(rx.recv().await.expect("the receiver runs"));
    }
    last.expect("n > 0")
}

fn main() {
    if !common::bench_requested() {
        return;
    }
    let rounds = common::rounds("ALERTS_ROUNDS", 10);
    let s = start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let ((hook_port, mut hooks), (peer_port, mut alerts)) =
        rt.block_on(async { (receiver().await, peer().await) });
    let key = create_store(s.port, "burst");
    let headers = format!("X-API-Key: {key}\r\n");
    let mut c = connect_http(s.port);
    let body = format!(
        r#"{{"url":"ws://127.0.0.1:{peer_port}/in","rules":[{{"name":"every","condition":"n >= 0","cooldown":"0s","webhook":"http://127.0.0.1:{hook_port}/hook"}}]}}"#
    );
    let out = http(
        &mut c,
        "POST",
        "/api/stores/burst/ws/connections",
        &headers,
        &body,
    );
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let id = v["id"].as_str().expect("connection id").to_string();
    // The peer must be connected, or the socket's queue would drop.
    let view = format!("/api/stores/burst/ws/connections/{id}");
    let deadline = Instant::now() + ROUND_LIMIT;
    loop {
        let out = http(&mut c, "GET", &view, &headers, "");
        if out.contains("\"status\":\"connected\"") {
            break;
        }
        assert!(Instant::now() < deadline, "the push never connected: {out}");
        std::thread::sleep(Duration::from_millis(10));
    }
    let batch = format!(
        "[{}]",
        (0..BURST)
            .map(|n| format!(r#"{{"data":{{"n":{n}}}}}"#))
            .collect::<Vec<_>>()
            .join(",")
    );
    println!("alert burst: {BURST} firing records in one batch, to the {BURST}th arrival (ms)");
    let (mut to_hook, mut to_peer) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let start = Instant::now();
        let out = http(
            &mut c,
            "POST",
            "/api/stores/burst/data/batch",
            &headers,
            &batch,
        );
        assert!(out.contains(&format!("\"count\":{BURST}")), "{out}");
        let (hook, alert) = rt.block_on(async {
            tokio::time::timeout(ROUND_LIMIT, async {
                (nth(&mut hooks, BURST).await, nth(&mut alerts, BURST).await)
            })
            .await
            .expect("every alert within the limit")
        });
        let ms = |t: Instant| t.duration_since(start).as_secs_f64() * 1e3;
        println!(
            "  round {round}: webhook {:>8.1}  socket {:>8.1}",
            ms(hook),
            ms(alert)
        );
        to_hook.push(ms(hook));
        to_peer.push(ms(alert));
    }
    // The last POST's answer may still be on its way back to the server.
    let fired = (rounds * BURST) as u64;
    let deadline = Instant::now() + ROUND_LIMIT;
    let v = loop {
        let out = http(&mut c, "GET", &view, &headers, "");
        let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
        if v["webhook_sent"].as_u64() == Some(fired) || Instant::now() > deadline {
            break v;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(v["alerts_fired"].as_u64(), Some(fired), "{v}");
    assert_eq!(v["webhook_sent"].as_u64(), Some(fired), "{v}");
    assert_eq!(v["alerts_dropped"].as_u64(), Some(0), "{v}");
    let summary = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[v.len() / 2], v[0])
    };
    let (hook, hook_min) = summary(&mut to_hook);
    let (peer, peer_min) = summary(&mut to_peer);
    println!(
        "  median of {rounds}: webhook {hook:.1} ms (min {hook_min:.1}), socket {peer:.1} ms (min {peer_min:.1}); {:.0} webhook POSTs/s",
        BURST as f64 / (hook / 1e3)
    );
}
