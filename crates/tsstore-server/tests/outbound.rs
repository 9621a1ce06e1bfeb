//! Outbound connections against real WebSocket peers the test runs on
//! loopback: push (history, then live; resume after the peer drops and
//! after a server restart), pull, validation, redaction and persistence.

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::Server;
use common::peer::{Seen, WAIT, create, insert_batch, peer};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "Bearer peer-secret-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_sends_history_then_live_and_resumes_after_a_drop() {
    let dir = tempfile::tempdir().unwrap();
    let (s, log) = Server::start_logged(dir.path());
    let key = s.create_store(json!({"name": "src", "num_blocks": 4096}));
    insert_batch(&s, &key, "src", 0..5000);
    insert_batch(&s, &key, "src", 5000..10000);
    // The peer closes after 3000 messages, then takes the reconnect.
    let mut p = peer(Some(3000)).await;
    let c = create(
        &s,
        &key,
        "src",
        json!({"mode": "push", "url": format!("ws://127.0.0.1:{}/in", p.port),
               "headers": {"Authorization": SECRET}, "from": 0}),
    );
    assert_eq!(c["status"], "connecting");
    assert_eq!(c["headers"]["Authorization"], "[redacted]");
    let Seen::Connected { authorization } = p.next().await else {
        panic!("the push connects first")
    };
    assert_eq!(authorization.as_deref(), Some(SECRET), "headers sent");

    // Every record, in order; after the drop, resumed without loss (the
    // records sent after the last one known delivered may come twice).
    let mut got: Vec<i64> = Vec::new();
    let mut reconnected = false;
    while got.last() != Some(&9999) {
        match p.next().await {
            Seen::Text(v) => {
                let n = v["data"]["n"].as_i64().unwrap();
                if let Some(&last) = got.last() {
                    assert!(
                        n == last + 1 || reconnected && n <= last + 1,
                        "{last} then {n}"
                    );
                }
                if got.last().is_some_and(|&l| n <= l) {
                    continue; // a duplicate after the reconnect
                }
                got.push(n);
            }
            Seen::Connected { .. } => reconnected = true,
            Seen::Closed => {}
        }
    }
    assert!(reconnected, "the peer dropped the push once");
    assert_eq!(got, (0..10000).collect::<Vec<_>>());

    // Live records follow within a second.
    let start = Instant::now();
    insert_batch(&s, &key, "src", 10000..10003);
    for n in 10000..10003 {
        assert_eq!(p.next_n().await, n);
    }
    assert!(start.elapsed() < Duration::from_secs(1), "live within 1 s");

    // The state: connected, cursor at the last record, secrets hidden.
    let id = c["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + WAIT;
    let view = loop {
        let v = s
            .req("GET", &format!("/api/stores/src/ws/connections/{id}"))
            .key(&key)
            .send()
            .json();
        if v["messages_sent"].as_u64() >= Some(10003) || Instant::now() > deadline {
            break v;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(view["status"], "connected", "{view}");
    assert_eq!(view["headers"]["Authorization"], "[redacted]");
    let list = s
        .req("GET", "/api/stores/src/ws/connections")
        .key(&key)
        .send()
        .text();
    assert!(!list.contains("peer-secret"), "{list}");
    // The file keeps the secret for the restart, readable by the owner only.
    let file = s.data.join("src").join("ws_connections.json");
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // Delete: a close frame to the peer, and the connection is gone.
    let r = s
        .req("DELETE", &format!("/api/stores/src/ws/connections/{id}"))
        .key(&key)
        .send();
    assert_eq!(r.status, 200);
    loop {
        if let Seen::Closed = p.next().await {
            break;
        }
    }
    s.req("GET", &format!("/api/stores/src/ws/connections/{id}"))
        .key(&key)
        .send()
        .expect_error(404, "connection_not_found");
    drop(s);
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(!logged.contains("peer-secret"), "a secret reached the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_restores_its_connections_at_their_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = peer(None).await;
    let s = Server::start(dir.path());
    let key = s.create_store(json!({"name": "src"}));
    insert_batch(&s, &key, "src", 0..100);
    create(
        &s,
        &key,
        "src",
        json!({"url": format!("ws://127.0.0.1:{}/in", p.port), "filter": "\"n\""}),
    );
    let mut got = BTreeSet::new();
    while got.len() < 100 {
        if let Seen::Text(v) = p.next().await {
            got.insert(v["data"]["n"].as_i64().unwrap());
        }
    }
    // The peer's pong confirms what it read (bounded wait, not a sleep).
    let newest = s
        .req("GET", "/api/stores/src/stats")
        .key(&key)
        .send()
        .json()["newest_timestamp"]
        .clone();
    let deadline = Instant::now() + WAIT;
    loop {
        let v = s
            .req("GET", "/api/stores/src/ws/connections")
            .key(&key)
            .send()
            .json();
        if v["connections"][0]["last_timestamp"] == newest {
            break;
        }
        assert!(Instant::now() < deadline, "{v}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    s.stop();

    // Records stored while the server is down follow after the restart,
    // and the ones sent before are not sent again.
    let s = Server::start(dir.path());
    insert_batch(&s, &key, "src", 100..150);
    let mut after = Vec::new();
    while after.len() < 50 {
        match p.next().await {
            Seen::Text(v) => after.push(v["data"]["n"].as_i64().unwrap()),
            Seen::Connected { .. } | Seen::Closed => {}
        }
    }
    assert_eq!(after, (100..150).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_from_takes_now_minus_one_and_oldest() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let key = s.create_store(json!({"name": "src"}));
    insert_batch(&s, &key, "src", 0..10);
    let mut peers = Vec::new();
    for from in [json!("now"), json!(-1), json!("oldest"), json!(0)] {
        let p = peer(None).await;
        let url = format!("ws://127.0.0.1:{}/in", p.port);
        create(&s, &key, "src", json!({"url": url, "from": from}));
        peers.push((from, p));
    }
    // "now" and -1 start after the newest record at create.
    insert_batch(&s, &key, "src", 10..12);
    for (from, mut p) in peers {
        let first = loop {
            if let Seen::Text(v) = p.next().await {
                break v["data"]["n"].as_i64().unwrap();
            }
        };
        let expected = if from == json!("now") || from == json!(-1) {
            10
        } else {
            0
        };
        assert_eq!(first, expected, "from {from}");
    }
    for from in [json!("later"), json!(-2)] {
        let r = s
            .req("POST", "/api/stores/src/ws/connections")
            .key(&key)
            .json(&json!({"url": "ws://127.0.0.1:1/", "from": from}))
            .send();
        assert_eq!(r.status, 400, "{}", r.text());
        assert!(r.text().contains("from"), "{}", r.text());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_stores_what_the_peer_sends_and_skips_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = peer(None).await;
    let s = Server::start(dir.path());
    let key = s.create_store(json!({"name": "sink"}));
    let c = create(
        &s,
        &key,
        "sink",
        json!({"mode": "pull", "url": format!("ws://127.0.0.1:{}/out", p.port)}),
    );
    let Seen::Connected { .. } = p.next().await else {
        panic!("the pull connects")
    };
    for m in [
        json!({"timestamp": 1000, "data": {"t": 1}}).to_string(),
        "{not json".to_string(),
        json!({"timestamp": 500, "data": {"t": 0}}).to_string(),
        json!({"data": {"t": 2}}).to_string(),
    ] {
        p.to_send.send(m).unwrap();
    }
    let id = c["id"].as_str().unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let v = s
            .req("GET", &format!("/api/stores/sink/ws/connections/{id}"))
            .key(&key)
            .send()
            .json();
        // The invalid message is an error; the one at or before the
        // newest stored is a repeat, skipped.
        if v["messages_received"] == 2 && v["errors"] == 1 && v["skipped"] == 1 {
            assert!(v["last_error"].as_str().unwrap().contains("skipped"), "{v}");
            break;
        }
        assert!(Instant::now() < deadline, "{v}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let v = s
        .req("GET", "/api/stores/sink/data/oldest?limit=10")
        .key(&key)
        .send()
        .json();
    let ts: Vec<i64> = common::timestamps(&v);
    assert_eq!(ts.len(), 2);
    assert_eq!(ts[0], 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compact_source_is_stored_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = peer(None).await;
    let s = Server::start(dir.path());
    let key = s.create_store(json!({"name": "sink"}));
    let url = format!("ws://127.0.0.1:{}/out", p.port);
    create(
        &s,
        &key,
        "sink",
        json!({"mode": "pull", "url": url, "format": "compact"}),
    );
    let Seen::Connected { .. } = p.next().await else {
        panic!("the pull connects")
    };
    for m in [
        json!({"type": "schema", "_schema": {"1": "temp", "2": "room"}}),
        json!({"type": "data", "timestamp": 1000, "data": {"1": 21.5, "2": "hall"}}),
        json!({"type": "schema", "_schema": {"1": "temp", "2": "room", "3": "lux"}}),
        json!({"type": "data", "timestamp": 2000, "data": {"1": 22.0, "3": 7}}),
    ] {
        p.to_send.send(m.to_string()).unwrap();
    }
    let deadline = Instant::now() + WAIT;
    let v = loop {
        let v = s
            .req("GET", "/api/stores/sink/data/oldest?limit=10")
            .key(&key)
            .send()
            .json();
        if common::timestamps(&v).len() == 2 {
            break v;
        }
        assert!(Instant::now() < deadline, "{v}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let data: Vec<&Value> = v["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| &o["data"])
        .collect();
    assert_eq!(
        data,
        [
            &json!({"temp": 21.5, "room": "hall"}),
            &json!({"temp": 22.0, "lux": 7})
        ]
    );
}

#[test]
fn creating_checks_everything_and_stores_nothing_on_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let key = s.create_store(json!({"name": "v"}));
    let cases = [
        (json!({"url": "http://127.0.0.1:1/"}), "invalid_connection"),
        (
            json!({"mode": "sideways", "url": "ws://127.0.0.1:1/"}),
            "invalid_connection",
        ),
        (
            json!({"url": "ws://127.0.0.1:1/", "agg_window": "soon"}),
            "invalid_aggregation",
        ),
        (
            json!({"url": "ws://127.0.0.1:1/", "since": "1h"}),
            "invalid_json",
        ),
        (
            json!({"url": "ws://127.0.0.1:1/", "rules": [{"name": "hot", "condition": "t >"}]}),
            "invalid_connection",
        ),
        (
            json!({"url": "ws://127.0.0.1:1/", "headers": {"bad name": "x"}}),
            "invalid_connection",
        ),
    ];
    for (body, code) in cases {
        s.req("POST", "/api/stores/v/ws/connections")
            .key(&key)
            .json(&body)
            .send()
            .expect_error(400, code);
    }
    let list = s
        .req("GET", "/api/stores/v/ws/connections")
        .key(&key)
        .send()
        .json();
    assert_eq!(list["count"], 0);
    assert!(!s.data.join("v").join("ws_connections.json").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_push_flushes_its_window_as_partial() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = peer(None).await;
    let s = Server::start(dir.path());
    let key = s.create_store(json!({"name": "agg"}));
    let c = create(
        &s,
        &key,
        "agg",
        json!({"url": format!("ws://127.0.0.1:{}/in", p.port), "agg_window": "1h", "agg_fields": "n:max"}),
    );
    insert_batch(&s, &key, "agg", 1..4);
    let newest = s
        .req("GET", "/api/stores/agg/stats")
        .key(&key)
        .send()
        .json()["newest_timestamp"]
        .clone();
    let id = c["id"].as_str().unwrap();
    // Once the push has read the three records into its (hour-long, still
    // open) window, deleting the connection sends that window, partial.
    let deadline = Instant::now() + WAIT;
    loop {
        let v = s
            .req("GET", &format!("/api/stores/agg/ws/connections/{id}"))
            .key(&key)
            .send()
            .json();
        if v["read_timestamp"] == newest {
            break;
        }
        assert!(Instant::now() < deadline, "{v}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let r = s
        .req("DELETE", &format!("/api/stores/agg/ws/connections/{id}"))
        .key(&key)
        .send();
    assert_eq!(r.status, 200, "{}", r.text());
    let window = loop {
        if let Seen::Text(v) = p.next().await {
            break v;
        }
    };
    assert_eq!(window["partial"], true, "{window}");
    assert_eq!(window["records"], 3, "{window}");
    assert_eq!(window["data"]["n"], 3, "{window}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_stops_reading_slows_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let key = s.create_store(json!({"name": "src", "num_blocks": 16384}));
    // A peer that completes the handshake and then never reads again.
    let stalled = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stalled_port = stalled.local_addr().unwrap().port();
    let (held_tx, mut held_rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        if let Ok((tcp, _)) = stalled.accept().await
            && let Ok(ws) = tokio_tungstenite::accept_async(tcp).await
        {
            let _ = held_tx.send(());
            // Held open, never read.
            std::future::pending::<()>().await;
            drop(ws);
        }
    });
    let mut healthy = peer(None).await;
    create(
        &s,
        &key,
        "src",
        json!({"url": format!("ws://127.0.0.1:{stalled_port}/in")}),
    );
    create(
        &s,
        &key,
        "src",
        json!({"url": format!("ws://127.0.0.1:{}/in", healthy.port)}),
    );
    tokio::time::timeout(WAIT, held_rx.recv()).await.unwrap();
    // About 20 MB of messages: more than the stalled peer's socket
    // buffers hold, so its push really is stuck sending.
    let pad = "x".repeat(500);
    for chunk in 0..40 {
        let batch: Vec<Value> = (chunk * 1000..(chunk + 1) * 1000)
            .map(|n| json!({"data": {"n": n, "pad": pad}}))
            .collect();
        let r = s
            .req("POST", "/api/stores/src/data/batch")
            .key(&key)
            .json(&json!(batch))
            .send();
        assert_eq!(r.status, 201);
    }
    let mut got = 0;
    while got < 40_000 {
        if let Seen::Text(_) = healthy.next().await {
            got += 1;
        }
    }
    // Ingest still answers at once.
    let start = Instant::now();
    insert_batch(&s, &key, "src", 40_000..40_001);
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(healthy.next_n().await, 40_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_over_wss_trusts_a_private_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, cert.cert.pem()).unwrap();
    // A TLS WebSocket peer on loopback with that certificate.
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let server_config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(server_config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (got_tx, mut got_rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            // A client that does not trust the certificate fails here.
            let Ok(tls) = acceptor.accept(tcp).await else {
                continue;
            };
            let Ok(mut ws) = tokio_tungstenite::accept_async(tls).await else {
                continue;
            };
            while let Some(Ok(m)) = ws.next().await {
                if let Message::Text(t) = m {
                    let v: Value = serde_json::from_str(&t).unwrap_or(Value::Null);
                    let _ = got_tx.send(v["data"]["n"].as_i64().unwrap_or(-1));
                }
            }
        }
    });

    let s = Server::start(dir.path());
    let store_key = s.create_store(json!({"name": "tls"}));
    insert_batch(&s, &store_key, "tls", 0..3);
    // Without the CA file the peer's certificate is not trusted.
    let untrusted = create(
        &s,
        &store_key,
        "tls",
        json!({"url": format!("wss://localhost:{port}/in")}),
    );
    let id = untrusted["id"].as_str().unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let v = s
            .req("GET", &format!("/api/stores/tls/ws/connections/{id}"))
            .key(&store_key)
            .send()
            .json();
        if v["errors"].as_u64() > Some(0) {
            assert!(
                v["last_error"].as_str().unwrap().contains("cannot connect"),
                "{v}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "{v}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = s
        .req("DELETE", &format!("/api/stores/tls/ws/connections/{id}"))
        .key(&store_key)
        .send();
    assert_eq!(r.status, 200);
    // With it, the records arrive over TLS.
    create(
        &s,
        &store_key,
        "tls",
        json!({"url": format!("wss://localhost:{port}/in"), "ca_file": ca_file}),
    );
    for n in 0..3 {
        let got = tokio::time::timeout(WAIT, got_rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, n);
    }
}

/// The next text message the peer sees (skipping connects and closes).
async fn next_text(p: &mut common::peer::Peer) -> Value {
    loop {
        if let Seen::Text(v) = p.next().await {
            return v;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compact_pushes_announce_their_schema_first() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());

    // A schema store: the store's schema, then compact records.
    let key = s.create_store(json!({"name": "sch", "data_type": "schema"}));
    let fields = json!([{"index": 1, "name": "temp", "type": "float64"},
        {"index": 2, "name": "room", "type": "string"}]);
    let r = s
        .req("PUT", "/api/stores/sch/schema")
        .key(&key)
        .json(&json!({"fields": fields}))
        .send();
    assert_eq!(r.status, 200, "{}", r.text());
    let batch = json!([{"data": {"temp": 21.5, "room": "hall"}}, {"data": {"temp": 22.0}}]);
    let r = s
        .req("POST", "/api/stores/sch/data/batch")
        .key(&key)
        .json(&batch)
        .send();
    assert_eq!(r.status, 201, "{}", r.text());
    let mut p = peer(None).await;
    let url = format!("ws://127.0.0.1:{}/in", p.port);
    create(&s, &key, "sch", json!({"url": url, "format": "compact"}));
    assert_eq!(
        next_text(&mut p).await,
        json!({"type": "schema", "_schema": {"1": "temp", "2": "room"}})
    );
    assert_eq!(
        next_text(&mut p).await["data"],
        json!({"1": 21.5, "2": "hall"})
    );
    assert_eq!(next_text(&mut p).await["data"], json!({"1": 22.0}));
    // A field added later is announced before the first record using it.
    let more = json!([{"index": 1, "name": "temp", "type": "float64"},
        {"index": 2, "name": "room", "type": "string"},
        {"index": 3, "name": "lux", "type": "int32"}]);
    let r = s
        .req("PUT", "/api/stores/sch/schema")
        .key(&key)
        .json(&json!({"fields": more}))
        .send();
    assert_eq!(r.status, 200, "{}", r.text());
    let r = s
        .req("POST", "/api/stores/sch/data")
        .key(&key)
        .json(&json!({"data": {"temp": 23.0, "lux": 7}}))
        .send();
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        next_text(&mut p).await,
        json!({"type": "schema", "_schema": {"1": "temp", "2": "room", "3": "lux"}})
    );
    assert_eq!(next_text(&mut p).await["data"], json!({"1": 23.0, "3": 7}));

    // Aggregated and compact on a schema store: the windows' output names
    // (not the store's indexes renumbered), then windows using them.
    let mut p = peer(None).await;
    let url = format!("ws://127.0.0.1:{}/in", p.port);
    create(
        &s,
        &key,
        "sch",
        json!({"url": url, "format": "compact", "agg_window": "1s", "agg_fields": "temp:max"}),
    );
    let schema = next_text(&mut p).await;
    assert_eq!(schema["type"], "schema", "{schema}");
    let names = schema["_schema"].as_object().unwrap().clone();
    let (max_index, _) = names
        .iter()
        .find(|(_, v)| *v == "temp")
        .unwrap_or_else(|| panic!("temp in {schema}"));
    assert!(
        names
            .values()
            .all(|v| v.as_str().unwrap().parse::<u32>().is_err()),
        "{schema}"
    );
    let window = next_text(&mut p).await;
    assert!(window["data"][max_index].is_number(), "{window} {schema}");

    // Aggregated and compact: the window's output names, then windows.
    let key = s.create_store(json!({"name": "agg"}));
    let batch = json!([
        {"timestamp": 1_000, "data": {"n": 1, "where": "a"}},
        {"timestamp": 2_000, "data": {"n": 5, "where": "b"}},
        {"timestamp": 3_600_000_000_000i64, "data": {"n": 7, "where": "c"}},
    ]);
    let r = s
        .req("POST", "/api/stores/agg/data/batch")
        .key(&key)
        .json(&batch)
        .send();
    assert_eq!(r.status, 201, "{}", r.text());
    let mut p = peer(None).await;
    let url = format!("ws://127.0.0.1:{}/in", p.port);
    create(
        &s,
        &key,
        "agg",
        json!({"url": url, "format": "compact", "agg_window": "1h", "agg_fields": "n:min+max"}),
    );
    let schema = next_text(&mut p).await;
    assert_eq!(schema["type"], "schema", "{schema}");
    let names = schema["_schema"].as_object().unwrap();
    let index = |name: &str| {
        names
            .iter()
            .find(|(_, v)| *v == name)
            .map(|(k, _)| k.clone())
            .unwrap_or_else(|| panic!("{name} in {schema}"))
    };
    let (min, max, place) = (index("n_min"), index("n_max"), index("where"));
    let first = next_text(&mut p).await;
    assert_eq!(first["timestamp"], 3_600_000_000_000i64, "{first}");
    assert_eq!(first["records"], 2, "{first}");
    assert_eq!(
        first["data"],
        json!({min.clone(): 1, max.clone(): 5, place.clone(): "b"})
    );
    // The second window closes by time (its hour ended long ago).
    let second = next_text(&mut p).await;
    assert_eq!(
        second["data"],
        json!({min: 7, max: 7, place: "c"}),
        "{second}"
    );
}
