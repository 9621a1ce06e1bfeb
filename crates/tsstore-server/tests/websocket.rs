//! WebSocket ingest and live read against the real server, with a real
//! WebSocket client (tokio-tungstenite).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use common::{Options, Server, Ws, ws_connect as connect};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const WAIT: Duration = Duration::from_secs(20);

/// The next text message as JSON (pings are answered by the client).
async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let m = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a message in time")
            .expect("the stream goes on")
            .expect("a valid message");
        match m {
            Message::Text(t) => return serde_json::from_str(&t).expect("JSON message"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected a text message, got {other:?}"),
        }
    }
}

/// The close frame the server ends with: (code, reason).
async fn closed_with(ws: &mut Ws) -> (CloseCode, String) {
    loop {
        let m = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("closed in time");
        match m {
            Some(Ok(Message::Close(Some(f)))) => return (f.code, f.reason.to_string()),
            Some(Ok(Message::Text(t))) => panic!("expected a close, got {t}"),
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_acks_every_message_and_errors_never_close() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with_config(dir.path(), r#"{"server": {"max_message_bytes": 1000}}"#);
    let key = s.create_store(json!({"name": "j"}));
    let text_key = s.create_store(json!({"name": "t", "data_type": "text"}));

    // Refused at the upgrade, with the JSON error.
    let url = format!(
        "ws://127.0.0.1:{}/api/stores/j/ws/write?api_key=wrong",
        s.port
    );
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            assert_eq!(r.status(), 401);
            let body: Value = serde_json::from_slice(r.body().as_deref().unwrap_or(b"{}")).unwrap();
            assert_eq!(body["code"], "invalid_api_key");
        }
        other => panic!("expected a 401 refusal, got {other:?}"),
    }
    // A plain GET is told it needs an upgrade.
    s.req("GET", "/api/stores/j/ws/write")
        .key(&key)
        .send()
        .expect_error(426, "websocket_required");

    let mut ws = connect(&s, &format!("/api/stores/j/ws/write?api_key={key}")).await;
    send(&mut ws, json!({"timestamp": 100, "data": {"t": 1}})).await;
    let ack = next_json(&mut ws).await;
    assert_eq!(
        (ack["type"].as_str(), ack["timestamp"].as_i64()),
        (Some("ack"), Some(100))
    );
    // Each failure is an error message; the connection goes on.
    ws.send(Message::Text("{not json".into())).await.unwrap();
    assert_eq!(next_json(&mut ws).await["code"], "invalid_json");
    send(&mut ws, json!({"timestamp": 50, "data": 1})).await;
    let e = next_json(&mut ws).await;
    assert_eq!(
        (e["type"].as_str(), e["code"].as_str()),
        (Some("error"), Some("timestamp_out_of_order"))
    );
    send(&mut ws, json!({"data": "x".repeat(1500)})).await;
    let e = next_json(&mut ws).await;
    assert!(
        e["message"].as_str().unwrap().contains("larger than 1000"),
        "{e}"
    );
    send(&mut ws, json!({"data": {"t": 2}})).await;
    let ack = next_json(&mut ws).await;
    assert_eq!(ack["type"], "ack");
    assert!(ack["timestamp"].as_i64().unwrap() > 100);

    // Pipelined: many messages out before any ack is read; one bad one
    // in the middle fails alone, and acks come back in order.
    for i in 0..500 {
        if i == 250 {
            send(&mut ws, json!({"timestamp": 1, "data": i})).await;
        } else {
            send(&mut ws, json!({"data": {"i": i}})).await;
        }
    }
    let mut last = 0;
    for i in 0..500 {
        let m = next_json(&mut ws).await;
        if i == 250 {
            assert_eq!(m["type"], "error", "{m}");
        } else {
            assert_eq!(m["type"], "ack", "{m}");
            let ts = m["timestamp"].as_i64().unwrap();
            assert!(ts > last);
            last = ts;
        }
    }
    // Past four times the limit, the connection closes with 1009.
    send(&mut ws, json!({"data": "y".repeat(5000)})).await;
    let (code, reason) = closed_with(&mut ws).await;
    assert_eq!(code, CloseCode::Size);
    assert!(reason.contains("larger than"), "{reason}");

    // A text store refuses non-string data, per message.
    let mut ws = connect(&s, &format!("/api/stores/t/ws/write?api_key={text_key}")).await;
    send(&mut ws, json!({"data": 5})).await;
    assert_eq!(next_json(&mut ws).await["code"], "invalid_data");
    send(&mut ws, json!({"data": "five"})).await;
    assert_eq!(next_json(&mut ws).await["type"], "ack");
    ws.close(None).await.unwrap();

    let stats = s.req("GET", "/api/stores/j/stats").key(&key).send().json();
    assert_eq!(stats["object_count"], json!(2 + 499));
}

/// Inserts one record through the Unix socket.
fn socket_insert(sock: &std::path::Path, key: &str, line: &str) -> i64 {
    let mut c = UnixStream::connect(sock).unwrap();
    c.set_read_timeout(Some(WAIT)).unwrap();
    c.write_all(format!("AUTH live {key}\n{line}\nQUIT\n").as_bytes())
        .unwrap();
    let mut r = BufReader::new(c);
    let mut l = String::new();
    r.read_line(&mut l).unwrap();
    assert_eq!(l, "OK\n");
    l.clear();
    r.read_line(&mut l).unwrap();
    l.trim().strip_prefix("OK ").unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_read_sees_every_insert_once_in_order_from_every_transport() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("s.sock");
    let s = Server::start_with(
        dir.path(),
        Options {
            socket: Some(sock.clone()),
            ..Options::default()
        },
    );
    let key = s.create_store(json!({"name": "live", "num_blocks": 256}));
    let post = |v: Value| {
        s.req("POST", "/api/stores/live/data")
            .key(&key)
            .json(&v)
            .send()
    };
    assert_eq!(post(json!({"data": {"n": 0}})).status, 201);

    let mut reader = connect(
        &s,
        &format!("/api/stores/live/ws/read?from=oldest&api_key={key}"),
    )
    .await;
    let first = next_json(&mut reader).await;
    assert_eq!(
        (first["type"].as_str(), first["data"]["n"].as_i64()),
        (Some("data"), Some(0))
    );

    // Every transport, one after the other.
    assert_eq!(post(json!({"data": {"n": 1}})).status, 201);
    let batch = json!([{"data": {"n": 2}}, {"data": {"n": 3}}]);
    let r = s
        .req("POST", "/api/stores/live/data/batch")
        .key(&key)
        .json(&batch)
        .send();
    assert_eq!(r.status, 201);
    let mut writer = connect(&s, &format!("/api/stores/live/ws/write?api_key={key}")).await;
    send(&mut writer, json!({"data": {"n": 4}})).await;
    assert_eq!(next_json(&mut writer).await["type"], "ack");
    socket_insert(&sock, &key, r#"{"n":5}"#);

    let mut last = first["timestamp"].as_i64().unwrap();
    for n in 1..=5 {
        let m = next_json(&mut reader).await;
        assert_eq!(m["data"]["n"].as_i64(), Some(n), "{m}");
        let ts = m["timestamp"].as_i64().unwrap();
        assert!(ts > last);
        last = ts;
    }
    reader.close(None).await.unwrap();

    // Reconnecting from the last timestamp seen resumes exactly there.
    assert_eq!(post(json!({"data": {"n": 6}})).status, 201);
    let mut again = connect(
        &s,
        &format!("/api/stores/live/ws/read?from={last}&api_key={key}"),
    )
    .await;
    let m = next_json(&mut again).await;
    assert_eq!(m["data"]["n"].as_i64(), Some(6), "{m}");
    // The default cursor is now: only what comes next.
    let mut fresh = connect(&s, &format!("/api/stores/live/ws/read?api_key={key}")).await;
    assert_eq!(post(json!({"data": {"n": 7}})).status, 201);
    assert_eq!(next_json(&mut fresh).await["data"]["n"].as_i64(), Some(7));
    assert_eq!(next_json(&mut again).await["data"]["n"].as_i64(), Some(7));

    // A reset ends the stream, with the reason.
    let r = s.req("POST", "/api/stores/live/reset").key(&key).send();
    assert_eq!(r.status, 200);
    let (code, reason) = closed_with(&mut fresh).await;
    assert_eq!(
        (code, reason.as_str()),
        (CloseCode::Normal, "the store was reset")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_read_filters_aggregates_and_ends_on_delete() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let key = s.create_store(json!({"name": "agg"}));
    let post = |v: Value| {
        s.req("POST", "/api/stores/agg/data")
            .key(&key)
            .json(&v)
            .send()
    };
    // Bad options are refused before the upgrade.
    s.req(
        "GET",
        &format!("/api/stores/agg/ws/read?from=soon&api_key={key}"),
    )
    .send()
    .expect_error(400, "invalid_parameter");
    s.req(
        "GET",
        &format!("/api/stores/agg/ws/read?agg_window=0s&api_key={key}"),
    )
    .send()
    .expect_error(400, "invalid_aggregation");

    let mut filtered = connect(
        &s,
        &format!("/api/stores/agg/ws/read?filter=HOT&filter_ignore_case=true&api_key={key}"),
    )
    .await;
    // 300 ms windows: each closes by time, even with no record after it.
    let mut windows = connect(
        &s,
        &format!("/api/stores/agg/ws/read?agg_window=300ms&agg_fields=t:avg%2Bmax&api_key={key}"),
    )
    .await;
    for (t, room) in [(10, "hot"), (20, "cold"), (30, "hot")] {
        assert_eq!(post(json!({"data": {"t": t, "room": room}})).status, 201);
    }
    for t in [10, 30] {
        let m = next_json(&mut filtered).await;
        assert_eq!(m["data"]["t"].as_i64(), Some(t), "{m}");
    }
    let mut seen = 0;
    let mut max = 0.0f64;
    while seen < 3 {
        let w = next_json(&mut windows).await;
        assert_eq!(w["type"], "data");
        seen += w["records"].as_u64().unwrap();
        max = max.max(w["data"]["t_max"].as_f64().unwrap());
    }
    assert_eq!((seen, max), (3, 30.0));

    // Deleting the store ends its live readers, with the reason.
    let r = s.req("DELETE", "/api/stores/agg").key(&key).send();
    assert_eq!(r.status, 200, "{}", r.text());
    let (code, reason) = closed_with(&mut filtered).await;
    assert_eq!(
        (code, reason.as_str()),
        (CloseCode::Away, "the store is being deleted")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_readers_per_store_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with_config(dir.path(), r#"{"server": {"max_live_readers": 1}}"#);
    let key = s.create_store(json!({"name": "one"}));
    let mut first = connect(&s, &format!("/api/stores/one/ws/read?api_key={key}")).await;
    let url = format!(
        "ws://127.0.0.1:{}/api/stores/one/ws/read?api_key={key}",
        s.port
    );
    match tokio_tungstenite::connect_async(url.as_str()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 503),
        other => panic!("expected a 503 refusal, got {other:?}"),
    }
    // A clean close frees the place (bounded wait, not a sleep).
    first.close(None).await.unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        match tokio_tungstenite::connect_async(url.as_str()).await {
            Ok(_) => break,
            Err(_) if std::time::Instant::now() < deadline => tokio::task::yield_now().await,
            Err(e) => panic!("the place never came free: {e}"),
        }
    }
}

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_never_reads_costs_the_server_no_memory() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let key = s.create_store(json!({"name": "lag", "num_blocks": 16384}));
    // Connected from the oldest record, then never read from.
    let _stalled = connect(
        &s,
        &format!("/api/stores/lag/ws/read?from=oldest&api_key={key}"),
    )
    .await;
    let batch: Vec<Value> = (0..1000)
        .map(|i| json!({"data": {"temperature": i, "room": "lab", "pad": "x".repeat(40)}}))
        .collect();
    let body = json!(batch);
    let insert_batches = |n: usize| {
        for _ in 0..n {
            let r = s
                .req("POST", "/api/stores/lag/data/batch")
                .key(&key)
                .json(&body)
                .send();
            assert_eq!(r.status, 201);
        }
    };
    // Warm up, so allocator growth of ordinary requests is in the baseline.
    insert_batches(5);
    let before = rss_kb(s.pid());
    insert_batches(100);
    let after = rss_kb(s.pid());
    // 100 000 records (about 8 MB of payload) behind the reader: the
    // server holds one read batch for it, not the backlog.
    assert!(
        after < before + 4096,
        "RSS grew from {before} kB to {after} kB while the reader lagged"
    );
    // /metrics shows the reader and how far behind it is.
    let metrics = s.get("/metrics").text();
    assert!(
        metrics.contains("tsstore_store_live_readers{store=\"lag\"} 1"),
        "{metrics}"
    );
    let lag: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("tsstore_store_live_reader_lag_seconds{store=\"lag\"} "))
        .and_then(|v| v.parse().ok())
        .expect("a lag line");
    assert!(lag > 0.0, "{metrics}");
    assert!(
        metrics.contains("tsstore_ws_read_connections 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_the_ring_overwrote_gets_a_gap_notice() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    // 4 blocks of 128 bytes: a few records each, the ring wraps quickly.
    let key = s.create_store(json!({"name": "ring", "num_blocks": 4, "data_block_size": 128}));
    let post = |n: i64| {
        let r = s
            .req("POST", "/api/stores/ring/data")
            .key(&key)
            .json(&json!({"data": {"n": n}}))
            .send();
        assert_eq!(r.status, 201);
        r.json()["timestamp"].as_i64().unwrap()
    };
    let first = post(0);
    for n in 1..40 {
        post(n);
    }
    let oldest = s
        .req("GET", "/api/stores/ring/stats")
        .key(&key)
        .send()
        .json()["oldest_timestamp"]
        .as_i64()
        .unwrap();
    assert!(oldest > first, "the ring wrapped");
    let mut reader = connect(
        &s,
        &format!("/api/stores/ring/ws/read?from={first}&api_key={key}"),
    )
    .await;
    let gap = next_json(&mut reader).await;
    assert_eq!(gap, json!({"type": "gap", "from": first, "to": oldest}));
    let m = next_json(&mut reader).await;
    assert_eq!(
        (m["type"].as_str(), m["timestamp"].as_i64()),
        (Some("data"), Some(oldest))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_read_at_a_rollups_window_sends_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let key = s.create_store(
        json!({"name": "r", "rollups": [{"window": "1s", "functions": ["max", "count"]}]}),
    );
    let refused = |q: &str, status: u16, code: &str| {
        s.req("GET", &format!("/api/stores/r/ws/read?{q}&api_key={key}"))
            .send()
            .expect_error(status, code);
    };
    refused("resolution=auto", 400, "invalid_parameter");
    refused("resolution=5m", 404, "rollup_not_found");
    refused("resolution=1s&agg_window=1s", 400, "invalid_parameter");

    let mut ws = connect(
        &s,
        &format!("/api/stores/r/ws/read?from=oldest&resolution=1s&api_key={key}"),
    )
    .await;
    let t0 = 1_700_000_000_000_000_000i64;
    let batch: Vec<Value> = (0..30)
        .map(|i| json!({"timestamp": t0 + i * 100_000_000, "data": {"t": i, "s": "x"}}))
        .collect();
    let r = s
        .req("POST", "/api/stores/r/data/batch")
        .key(&key)
        .json(&Value::from(batch))
        .send();
    assert_eq!(r.status, 201, "{}", r.text());
    // Three whole seconds: the rollup's rows, as the REST read gives them.
    let mut got = Vec::new();
    while got.len() < 2 {
        let w = next_json(&mut ws).await;
        assert_eq!(w["type"], "data", "{w}");
        got.push(json!({"timestamp": w["timestamp"], "records": w["records"], "data": w["data"]}));
    }
    let rows = s
        .req(
            "GET",
            &format!(
                "/api/stores/r/data/range?resolution=1s&end_time={}",
                t0 + 2_000_000_000 - 1
            ),
        )
        .key(&key)
        .send()
        .json();
    let rows: Vec<Value> = rows["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| json!({"timestamp": o["timestamp"], "records": o["records"], "data": o["data"]}))
        .collect();
    assert_eq!(got, rows);
    assert_eq!(got[0]["data"], json!({"t_max": 9, "t_count": 10, "s": "x"}));
}
