//! What acknowledged delivery costs, end to end: the release server binary
//! on loopback, `n` records already stored, and in this process a
//! WebSocket peer that reads them all.
//!
//! Push from history with `ack: transport` (the baseline) against
//! `ack: app` with the default window of 1 000 records in flight, the peer
//! acknowledging every message (the worst case) or every 100th (what a
//! collector that acknowledges what it has handled in batches does); then
//! live read from the oldest record, plain (the baseline for readers)
//! against a durable reader (`consumer=NAME`) acknowledging the same two
//! ways. Variants run interleaved, `DELIVERY_ROUNDS` rounds (default 3),
//! and the median of each is printed with its ratio to its baseline.
//! `cargo bench -p tsstore-server --bench delivery`;
//! `STREAMING_SCALE=0.1` for a quick look.

mod common;

use std::time::{Duration, Instant};

use common::{connect_http, create_store, fill, http, rate, start};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Longest one variant may take before the bench gives up.
const VARIANT_LIMIT: Duration = Duration::from_secs(300);

/// How the reading side acknowledges.
#[derive(Clone, Copy)]
enum Acks {
    /// Not at all: the transport is the acknowledgement.
    None,
    /// `{"type":"ack","timestamp":T}` after every `n`-th data message.
    Every(usize),
}

/// Reads `n` data messages from `ws`, acknowledging as `acks` says.
async fn read_all<S>(ws: WebSocketStream<S>, n: usize, acks: Acks)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut out, mut inc) = ws.split();
    let mut seen = 0;
    while seen < n {
        let Some(Ok(m)) = inc.next().await else {
            panic!("the connection ended after {seen} of {n} records");
        };
        let Message::Text(t) = m else { continue };
        let v: serde_json::Value = serde_json::from_str(&t).expect("JSON");
        if v["type"] != "data" {
            continue;
        }
        seen += 1;
        if let Acks::Every(every) = acks
            && (seen % every == 0 || seen == n)
        {
            let ack = format!(r#"{{"type":"ack","timestamp":{}}}"#, v["timestamp"]);
            out.send(Message::Text(ack.into())).await.expect("ack");
        }
    }
}

/// Push from history to a peer in this process: records/s until the peer
/// has read all `n`.
async fn push(port: u16, key: &str, store: &str, n: usize, acks: Acks) -> f64 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let peer = listener.local_addr().expect("addr").port();
    let ack = match acks {
        Acks::None => "",
        Acks::Every(_) => r#","ack":"app""#,
    };
    let body = format!(r#"{{"url":"ws://127.0.0.1:{peer}/in","from":"oldest"{ack}}}"#);
    let path = format!("/api/stores/{store}/ws/connections");
    let header = format!("X-API-Key: {key}\r\n");
    let start = Instant::now();
    let out = http(&mut connect_http(port), "POST", &path, &header, &body);
    let created: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let id = created["id"].as_str().expect("an id").to_string();
    let (tcp, _) = listener.accept().await.expect("the push connects");
    let ws = tokio_tungstenite::accept_async(tcp)
        .await
        .expect("handshake");
    tokio::time::timeout(VARIANT_LIMIT, read_all(ws, n, acks))
        .await
        .expect("the push delivers in time");
    let r = rate(n, start.elapsed());
    let _ = http(
        &mut connect_http(port),
        "DELETE",
        &format!("{path}/{id}"),
        &header,
        "",
    );
    r
}

/// Live read from the oldest record: records/s until all `n` are read.
async fn live_read(
    port: u16,
    key: &str,
    store: &str,
    n: usize,
    consumer: Option<(&str, Acks)>,
) -> f64 {
    let mut url =
        format!("ws://127.0.0.1:{port}/api/stores/{store}/ws/read?from=oldest&api_key={key}");
    let acks = match consumer {
        Some((name, acks)) => {
            url.push_str(&format!("&consumer={name}"));
            acks
        }
        None => Acks::None,
    };
    let start = Instant::now();
    let (ws, _): (WebSocketStream<MaybeTlsStream<TcpStream>>, _) =
        tokio_tungstenite::connect_async(url.as_str())
            .await
            .expect("ws/read");
    tokio::time::timeout(VARIANT_LIMIT, read_all(ws, n, acks))
        .await
        .expect("the read delivers in time");
    let r = rate(n, start.elapsed());
    if let Some((name, _)) = consumer {
        // The next round's consumer of the name starts from the oldest.
        let _ = http(
            &mut connect_http(port),
            "DELETE",
            &format!("/api/stores/{store}/consumers/{name}"),
            &format!("X-API-Key: {key}\r\n"),
            "",
        );
    }
    r
}

fn main() {
    if !common::bench_requested() {
        return;
    }
    let rounds = common::rounds("DELIVERY_ROUNDS", 3);
    let n = common::scaled(200_000);
    let s = start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let key = create_store(s.port, "hist");
    rt.block_on(async { fill(&s, "hist", &key, n).await.expect("fill") });
    let port = s.port;
    let variants: [(&str, Option<Acks>); 6] = [
        ("push, ack: transport (baseline)", Some(Acks::None)),
        ("push, ack: app, acked every message", Some(Acks::Every(1))),
        ("push, ack: app, acked every 100th", Some(Acks::Every(100))),
        ("live read, plain (baseline)", None),
        ("durable reader, acked every message", Some(Acks::Every(1))),
        ("durable reader, acked every 100th", Some(Acks::Every(100))),
    ];
    let mut figures = vec![Vec::new(); variants.len()];
    for _ in 0..rounds {
        for (i, (_, acks)) in variants.iter().enumerate() {
            let r = rt.block_on(async {
                match (i, acks) {
                    (0..3, Some(acks)) => push(port, &key, "hist", n, *acks).await,
                    (3, _) => live_read(port, &key, "hist", n, None).await,
                    (_, Some(acks)) => {
                        live_read(port, &key, "hist", n, Some(("bench", *acks))).await
                    }
                    _ => unreachable!("every variant is listed"),
                }
            });
            figures[i].push(r);
        }
    }
    println!(
        "acknowledged delivery, {n} stored records to a peer on loopback, records/s (median of {rounds})"
    );
    let medians: Vec<f64> = figures.into_iter().map(common::median).collect();
    for (i, (name, _)) in variants.iter().enumerate() {
        let base = if i < 3 { medians[0] } else { medians[3] };
        println!(
            "  {name:<40} {:>10.0}  {:.2}x",
            medians[i],
            medians[i] / base
        );
    }
}
