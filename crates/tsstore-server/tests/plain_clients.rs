//! Clients as they come: JavaScript ones, whose numbers are doubles
//! (`timestamps=string` on the way out, decimal-string timestamps on the
//! way in, through a real Node.js client), and ones that send their
//! payloads bare (`envelope=none`), binary WebSocket frames, or match
//! answers to requests by `id`.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::peer::{create, get_when, peer};
use common::{Server, objects, timestamps, ws_connect};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// Odd, so no timestamp is a multiple of 256: none of them is a double
/// (whose spacing is 256 at this size), and a double client changes all.
const BASE: i64 = 1_733_472_000_123_456_789;
const COUNT: i64 = 2_000;

fn js_client() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/doubles.js").to_string()
}

/// `node`, with the flag that gives Node 20 its WebSocket where needed;
/// `None` (or a failure in CI) when there is no Node.js.
fn node() -> Option<Command> {
    let works = |flag: &[&str]| {
        Command::new("node")
            .args(flag)
            .args(["-e", "if (typeof WebSocket !== 'function') process.exit(1)"])
            .status()
            .is_ok_and(|s| s.success())
    };
    for flags in [&[][..], &["--experimental-websocket"]] {
        if works(flags) {
            let mut cmd = Command::new("node");
            cmd.args(flags);
            return Some(cmd);
        }
    }
    let why = "Node.js (with WebSocket) is missing: scripts/test.sh installs it with npm";
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
    eprintln!("skipped: {why}");
    None
}

/// Stores `COUNT` records at `BASE + 1000 i`.
fn fill(s: &Server, key: &str, store: &str) {
    let batch: Vec<Value> = (0..COUNT)
        .map(|i| json!({"timestamp": BASE + 1000 * i, "data": {"n": i}}))
        .collect();
    let r = s
        .req("POST", &format!("/api/stores/{store}/data/batch"))
        .key(key)
        .json(&json!(batch))
        .send();
    assert_eq!(r.status, 201, "{}", r.text());
}

/// What the JavaScript client writes back of a list answer (NDJSON).
fn rewritten(mut node: Command, list: &str) -> String {
    let mut child = node
        .args([&js_client(), "rewrite"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run node");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(list.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

fn sent_timestamps() -> Vec<i64> {
    (0..COUNT).map(|i| BASE + 1000 * i).collect()
}

#[test]
fn timestamps_as_strings_round_trip_exactly_through_a_javascript_client() {
    let Some(_) = node() else { return };
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let key = s.create_store(json!({"name": "a"}));
    let copy = s.create_store(json!({"name": "copy"}));
    fill(&s, &key, "a");
    let list = |stamps: &str| {
        let path = format!("/api/stores/a/data/range?limit={COUNT}&include_data=true{stamps}");
        let r = s.req("GET", &path).key(&key).send();
        assert_eq!(r.status, 200);
        r.text()
    };

    // As numbers, JavaScript changes every one of them: the failure the
    // option is for.
    let changed = rewritten(node().unwrap(), &list(""))
        .lines()
        .zip(sent_timestamps())
        .filter(|(line, sent)| {
            let v: Value = serde_json::from_str(line).unwrap();
            v["timestamp"].as_i64() != Some(*sent)
        })
        .count();
    assert_eq!(changed, COUNT as usize);

    // As strings, JavaScript carries them unchanged, and a store takes
    // them back as strings.
    let body = rewritten(node().unwrap(), &list("&timestamps=string"));
    assert!(
        body.starts_with("{\"timestamp\":\"1733472000123456789\""),
        "{body:.80}"
    );
    let r = s
        .req("POST", "/api/stores/copy/data/batch?timestamps=string")
        .key(&copy)
        .body("application/x-ndjson", body)
        .send();
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["first_timestamp"], json!(BASE.to_string()));
    let r = s
        .req("GET", &format!("/api/stores/copy/data/range?limit={COUNT}"))
        .key(&copy)
        .send();
    assert_eq!(timestamps(&r.json()), sent_timestamps());
}

/// A JavaScript durable reader of store `a`: what it received.
fn consume(s: &Server, key: &str, query: &str) -> Value {
    let url = format!(
        "ws://127.0.0.1:{}/api/stores/a/ws/read?api_key={key}&from=oldest&{query}",
        s.port
    );
    let out = node()
        .unwrap()
        .args([&js_client(), "consume", &url, &COUNT.to_string()])
        .output()
        .expect("run node");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_javascript_durable_reader_acknowledges_exactly_with_string_timestamps() {
    let Some(_) = node() else { return };
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let key = s.create_store(json!({"name": "a"}));
    fill(&s, &key, "a");
    let last = BASE + 1000 * (COUNT - 1);

    let got = consume(&s, &key, "consumer=js&timestamps=string");
    assert_eq!(got, json!({"received": COUNT, "last": last.to_string()}));
    let path = "/api/stores/a/consumers/js";
    let v = get_when(&s, &key, path, |v| v["acked_timestamp"] == json!(last)).await;
    assert_eq!(v["refused_acks"], 0, "{v}");

    // With numbers, its acks name timestamps never sent: each is refused
    // and counted, nothing is acknowledged, and the window stays full.
    let got = consume(&s, &key, "consumer=js-numbers&window=100");
    assert_eq!(got["received"], 100, "{got}");
    let path = "/api/stores/a/consumers/js-numbers";
    let v = get_when(&s, &key, path, |v| v["refused_acks"] == json!(100)).await;
    assert_eq!(v["acked_timestamp"], 0, "{v}");
}

/// The one record stored at `ts`, as the API shows it.
fn record_at(s: &Server, key: &str, store: &str, ts: i64) -> Value {
    let r = s
        .req("GET", &format!("/api/stores/{store}/data/time/{ts}"))
        .key(key)
        .send();
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

#[test]
fn bare_payloads_over_rest_are_stored_as_sent() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let key = s.create_store(json!({"name": "j"}));
    let post = |path: &str, body: &Value| {
        s.req("POST", &format!("/api/stores/j/{path}"))
            .key(&key)
            .json(body)
            .send()
    };
    // Wrapped is still the default, and the refusal says how to send it bare.
    for wrong in [json!({"temp": 21}), json!({"timestamp": 1})] {
        let r = post("data", &wrong);
        assert_eq!(r.status, 400);
        assert!(r.text().contains("envelope=none"), "{}", r.text());
    }

    let sent = json!({"temp": 21, "ts": BASE.to_string()});
    let r = post("data?envelope=none&timestamp_field=ts", &sent);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["timestamp"], json!(BASE));
    assert_eq!(record_at(&s, &key, "j", BASE)["data"], sent);
    // No timestamp field: stored at arrival.
    let r = post("data?envelope=none&timestamps=string", &json!({"temp": 22}));
    assert_eq!(r.status, 201, "{}", r.text());
    let at: i64 = r.json()["timestamp"].as_str().unwrap().parse().unwrap();
    assert!(at > BASE);

    // In milliseconds, an hour ahead (within the future guard).
    let soon = at / 1_000_000 + 3_600_000;
    let batch = json!([{"v": 1, "at": soon}, {"v": 2, "at": (soon + 1).to_string()}]);
    let r = post(
        "data/batch?envelope=none&timestamp_field=at&precision=ms",
        &batch,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let r = s
        .req("GET", "/api/stores/j/data/range?include_data=true&limit=10")
        .key(&key)
        .send();
    let list = r.json();
    let data: Vec<&Value> = objects(&list).iter().map(|o| &o["data"]).collect();
    assert_eq!(data[2..], [&batch[0], &batch[1]]);
    assert_eq!(timestamps(&list)[2], soon * 1_000_000);
    // Options are checked whatever the body.
    let r = post("data?timestamp_field=ts", &sent);
    r.expect_error(400, "invalid_parameter");
    let r = post("data?envelope=bare", &sent);
    r.expect_error(400, "invalid_parameter");
}

async fn next_text(ws: &mut common::Ws) -> Value {
    let limit = std::time::Duration::from_secs(20);
    loop {
        let m = tokio::time::timeout(limit, ws.next())
            .await
            .expect("an answer in time")
            .expect("open")
            .expect("a message");
        if let Message::Text(t) = m {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_writes_echo_ids_take_bare_payloads_and_binary_frames() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let key = s.create_store(json!({"name": "j"}));
    let bin = s.create_store(json!({"name": "bin", "data_type": "binary"}));
    let k = s.create_store(json!({"name": "k"}));

    let mut ws = ws_connect(&s, &format!("/api/stores/j/ws/write?api_key={key}")).await;
    for m in [
        json!({"id": "m1", "data": {"t": 1}, "timestamp": BASE.to_string()}),
        json!({"id": {"seq": 2}, "data": {"t": 2}, "timestamp": BASE}),
        json!({"data": {"t": 3}}),
    ] {
        ws.send(Message::Text(m.to_string().into())).await.unwrap();
    }
    let ack = next_text(&mut ws).await;
    assert_eq!(
        (&ack["type"], &ack["id"], &ack["timestamp"]),
        (&json!("ack"), &json!("m1"), &json!(BASE))
    );
    let refused = next_text(&mut ws).await;
    assert_eq!(
        (&refused["type"], &refused["id"]),
        (&json!("error"), &json!({"seq": 2})),
        "{refused}"
    );
    let ack = next_text(&mut ws).await;
    assert_eq!(ack["type"], "ack");
    assert!(ack.get("id").is_none(), "{ack}");
    // A bare record sent without envelope=none: refused, saying how,
    // and matched to its request.
    let m = json!({"id": 4, "t": 4});
    ws.send(Message::Text(m.to_string().into())).await.unwrap();
    let refused = next_text(&mut ws).await;
    assert_eq!(refused["id"], 4, "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("envelope=none"),
        "{refused}"
    );
    // A binary frame on a json store is refused in its turn.
    ws.send(Message::Binary(vec![1, 2].into())).await.unwrap();
    let refused = next_text(&mut ws).await;
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("binary stores"),
        "{refused}"
    );

    let path = format!(
        "/api/stores/k/ws/write?api_key={k}&envelope=none&timestamp_field=ts&timestamps=string"
    );
    let mut bare = ws_connect(&s, &path).await;
    let sent = json!({"temp": 21.5, "ts": (BASE + 5).to_string(), "site": "roof"});
    bare.send(Message::Text(sent.to_string().into()))
        .await
        .unwrap();
    let ack = next_text(&mut bare).await;
    assert_eq!(ack["timestamp"], json!((BASE + 5).to_string()), "{ack}");
    assert_eq!(record_at(&s, &k, "k", BASE + 5)["data"], sent);

    let mut ws = ws_connect(&s, &format!("/api/stores/bin/ws/write?api_key={bin}")).await;
    let bytes = vec![0u8, 255, 1, b'\n', 0];
    ws.send(Message::Binary(bytes.clone().into()))
        .await
        .unwrap();
    let ack = next_text(&mut ws).await;
    assert_eq!(
        (&ack["type"], &ack["size"]),
        (&json!("ack"), &json!(5)),
        "{ack}"
    );
    let at = ack["timestamp"].as_i64().unwrap();
    let r = s
        .req("GET", &format!("/api/stores/bin/data/time/{at}"))
        .key(&bin)
        .send();
    use base64::Engine as _;
    let stored = base64::engine::general_purpose::STANDARD
        .decode(r.json()["data"].as_str().unwrap())
        .unwrap();
    assert_eq!(stored, bytes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_takes_bare_payloads_and_push_sends_string_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let key = s.create_store(json!({"name": "j"}));
    let mut source = peer(None).await;
    let url = format!("ws://127.0.0.1:{}/feed", source.port);
    create(
        &s,
        &key,
        "j",
        json!({"mode": "pull", "url": url, "envelope": "none", "timestamp_field": "ts"}),
    );
    source.next().await; // connected
    let sent = [
        json!({"v": 1, "ts": BASE.to_string()}),
        json!({"v": 2, "ts": BASE + 1}),
        json!({"v": 3}),
    ];
    for m in &sent {
        source.to_send.send(m.to_string()).unwrap();
    }
    let path = "/api/stores/j/data/range?include_data=true";
    let v = get_when(&s, &key, path, |v| v["count"] == 3).await;
    let data: Vec<&Value> = objects(&v).iter().map(|o| &o["data"]).collect();
    assert_eq!(data, sent.iter().collect::<Vec<_>>());
    assert_eq!(timestamps(&v)[..2], [BASE, BASE + 1]);

    let mut collector = peer(None).await;
    let url = format!("ws://127.0.0.1:{}/in", collector.port);
    create(
        &s,
        &key,
        "j",
        json!({"url": url, "from": "oldest", "timestamps": "string"}),
    );
    collector.next().await; // connected
    let first = loop {
        if let common::peer::Seen::Text(v) = collector.next().await {
            break v;
        }
    };
    assert_eq!(first["timestamp"], json!(BASE.to_string()), "{first}");
}
