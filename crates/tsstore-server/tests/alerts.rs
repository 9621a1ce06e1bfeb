//! Alert rules on push connections against real peers on loopback: a
//! WebSocket peer that records what it is sent, and axum webhook
//! receivers that answer, fail, or never answer.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use common::Server;
use common::peer::{Peer, Seen, WAIT, create, get_when, insert_batch, peer};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

const HOOK_SECRET: &str = "hook-secret-0123456789";
const PATH_TOKEN: &str = "path-token-9876543210";

/// How a webhook receiver answers.
#[derive(Clone, Copy)]
#[repr(u8)]
enum Answer {
    Ok,
    Fail,
    /// Takes the request and never answers.
    Hang,
}

/// How a receiver answers now: a test may change it while it runs.
struct Answering(AtomicU8);

impl Answering {
    fn new(answer: Answer) -> Arc<Answering> {
        Arc::new(Answering(AtomicU8::new(answer as u8)))
    }

    fn set(&self, answer: Answer) {
        self.0.store(answer as u8, Ordering::SeqCst);
    }

    fn get(&self) -> Answer {
        match self.0.load(Ordering::SeqCst) {
            0 => Answer::Ok,
            1 => Answer::Fail,
            _ => Answer::Hang,
        }
    }
}

/// A POST a receiver got: its X-Token header and its JSON body.
struct Hook {
    token: Option<String>,
    body: Value,
}

/// A webhook receiver on loopback; its URL carries `PATH_TOKEN`.
async fn receiver(answer: Answer) -> (String, mpsc::UnboundedReceiver<Hook>) {
    receiver_answering(Answering::new(answer)).await
}

/// A receiver that answers as `answering` says at each request.
async fn receiver_answering(answering: Arc<Answering>) -> (String, mpsc::UnboundedReceiver<Hook>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://127.0.0.1:{}/hooks/{PATH_TOKEN}",
        listener.local_addr().unwrap().port()
    );
    let (tx, rx) = mpsc::unbounded_channel();
    let tx = Arc::new(tx);
    let handler = move |headers: HeaderMap, body: String| {
        let tx = Arc::clone(&tx);
        let answer = answering.get();
        async move {
            let token = headers
                .get("x-token")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body = serde_json::from_str(&body).unwrap_or(Value::Null);
            let _ = tx.send(Hook { token, body });
            match answer {
                Answer::Ok => StatusCode::NO_CONTENT,
                Answer::Fail => StatusCode::SERVICE_UNAVAILABLE,
                Answer::Hang => std::future::pending().await,
            }
        }
    };
    let app = axum::Router::new().route(
        &format!("/hooks/{PATH_TOKEN}"),
        axum::routing::post(handler),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, rx)
}

async fn next_hook(rx: &mut mpsc::UnboundedReceiver<Hook>) -> Hook {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("a webhook POST in time")
        .expect("the receiver runs")
}

/// The next text message of the peer.
async fn next_text(p: &mut Peer) -> Value {
    loop {
        if let Seen::Text(v) = p.next().await {
            return v;
        }
    }
}

/// The connection's view once `done` holds.
async fn view_when(
    s: &Server,
    key: &str,
    store: &str,
    id: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let path = format!("/api/stores/{store}/ws/connections/{id}");
    get_when(s, key, &path, done).await
}

/// Inserts `records` in one batch; the answer (`last_timestamp`, ...).
fn insert(s: &Server, key: &str, store: &str, records: Value) -> Value {
    let r = s
        .req("POST", &format!("/api/stores/{store}/data/batch"))
        .key(key)
        .json(&records)
        .send();
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_fires_once_per_cooldown_to_the_socket_and_the_webhook() {
    let dir = tempfile::tempdir().unwrap();
    let (s, log) = Server::start_logged(dir.path());
    let key = s.create_store(json!({"name": "env"}));
    let mut p = peer(None).await;
    let (hook_url, mut hooks) = receiver(Answer::Ok).await;
    let c = create(
        &s,
        &key,
        "env",
        json!({"url": format!("ws://127.0.0.1:{}/in", p.port), "rules": [
            {"name": "hot", "condition": "t > 80 AND NOT (room == \"oven\")", "cooldown": "1s",
             "webhook": hook_url, "webhook_headers": {"X-Token": HOOK_SECRET}},
            // No cooldown: every match fires. It marks the end of a batch.
            {"name": "end", "condition": "last == true"},
        ]}),
    );
    let id = c["id"].as_str().unwrap().to_string();
    assert_eq!(c["rules_count"], 2);
    let shown = c.to_string();
    assert!(
        !shown.contains(HOOK_SECRET) && !shown.contains(PATH_TOKEN),
        "{shown}"
    );
    assert!(shown.contains("/[redacted]"), "{shown}");
    for path in [
        "/api/stores/env/ws/connections".to_string(),
        format!("/api/stores/env/ws/connections/{id}"),
    ] {
        let shown = s.req("GET", &path).key(&key).send().text();
        assert!(shown.contains("\"rules_count\":2"), "{shown}");
        assert!(
            !shown.contains(HOOK_SECRET) && !shown.contains(PATH_TOKEN),
            "{shown}"
        );
    }

    // 90 fires; 95 is within the cooldown; the oven never fires.
    let t = |t: i64| json!({"data": {"t": t, "room": "lab"}});
    insert(
        &s,
        &key,
        "env",
        json!([t(10), t(90), {"data": {"t": 200, "room": "oven"}}, t(95), t(20),
               {"data": {"last": true}}]),
    );
    let mut data = 0;
    let mut alerts = Vec::new();
    while alerts
        .last()
        .is_none_or(|a: &Value| a["alert"]["rule_name"] != "end")
    {
        let m = next_text(&mut p).await;
        match m["type"].as_str() {
            Some("data") => data += 1,
            Some("alert") => alerts.push(m),
            _ => panic!("{m}"),
        }
    }
    // Every alert comes after the data it is about.
    assert_eq!(data, 6);
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    let hot = &alerts[0];
    assert_eq!(hot["alert"]["rule_name"], "hot");
    assert_eq!(hot["alert"]["data"]["t"], 90);
    assert_eq!(hot["alert"]["store_name"], "env");
    assert_eq!(hot["alert"]["timestamp"], hot["timestamp"]);
    assert!(
        hot["alert"]["condition"]
            .as_str()
            .unwrap()
            .contains("t > 80")
    );
    let hook = next_hook(&mut hooks).await;
    assert_eq!(hook.token.as_deref(), Some(HOOK_SECRET));
    assert_eq!(hook.body, hot["alert"], "the webhook gets the alert object");

    // After the cooldown the rule fires again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    insert(&s, &key, "env", json!([t(99), {"data": {"last": true}}]));
    let mut again = Vec::new();
    while again
        .last()
        .is_none_or(|a: &Value| a["alert"]["rule_name"] != "end")
    {
        let m = next_text(&mut p).await;
        if m["type"] == "alert" {
            again.push(m);
        }
    }
    assert_eq!(again.len(), 2, "{again:?}");
    assert_eq!(again[0]["alert"]["data"]["t"], 99);
    assert_eq!(next_hook(&mut hooks).await.body["data"]["t"], 99);
    let v = view_when(&s, &key, "env", &id, |v| v["webhook_sent"] == 2).await;
    assert_eq!(v["alerts_fired"], 4, "{v}");
    assert_eq!(v["webhook_failures"], 0, "{v}");
    assert!(hooks.try_recv().is_err(), "one POST per firing");

    // Rules persist with their secrets (mode 0600) for the restart.
    let file = s.data.join("env").join("ws_connections.json");
    s.stop();
    let saved = std::fs::read_to_string(file).unwrap();
    assert!(saved.contains(HOOK_SECRET) && saved.contains(PATH_TOKEN));
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(!logged.contains(HOOK_SECRET), "a secret reached the log");
    assert!(
        !logged.contains(PATH_TOKEN),
        "a webhook's token reached the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_webhook_slows_nothing_and_a_failing_one_is_retried_then_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (s, log) = Server::start_logged(dir.path());
    let key = s.create_store(json!({"name": "src", "num_blocks": 1024}));
    let (hang_url, mut hung) = receiver(Answer::Hang).await;
    let (fail_url, mut failed) = receiver(Answer::Fail).await;
    let mut p = peer(None).await;
    let c = create(
        &s,
        &key,
        "src",
        json!({"url": format!("ws://127.0.0.1:{}/in", p.port), "from": 0, "rules": [
            {"name": "every", "condition": "n >= 0", "webhook": hang_url},
            {"name": "three", "condition": "n == 3", "webhook": fail_url},
        ]}),
    );
    let id = c["id"].as_str().unwrap().to_string();
    insert_batch(&s, &key, "src", 0..5000);

    // Every record arrives, in order, while the webhook hangs: the push
    // never waits for alerts (a wait of 10 s per POST would show here).
    let mut next = 0;
    while next < 5000 {
        let m = next_text(&mut p).await;
        if m["type"] == "data" {
            assert_eq!(m["data"]["n"], next);
            next += 1;
        }
    }
    let first = next_hook(&mut hung).await;
    assert_eq!(first.body["rule_name"], "every");

    // The failing webhook: three attempts, then one failure counted,
    // logged and shown.
    for _ in 0..3 {
        assert_eq!(next_hook(&mut failed).await.body["data"]["n"], 3);
    }
    let v = view_when(&s, &key, "src", &id, |v| v["webhook_failures"] == 1).await;
    assert!(v["alerts_fired"].as_u64().unwrap() > 1, "{v}");
    let why = v["alerts_last_error"].as_str().unwrap_or_default();
    assert!(
        why.contains("rule 'three'") && why.contains("503") && why.contains("3 attempt"),
        "{v}"
    );
    assert!(!why.contains(PATH_TOKEN), "{v}");
    // The hung webhook's queue is full: evaluation waits for it instead
    // of dropping alerts. At most one POST under way, a queue of 100 and
    // one record's firings being handed over: no more has fired.
    assert!(v["alerts_fired"].as_u64().unwrap() <= 103, "{v}");
    assert!(v.get("webhook_dropped").is_none(), "{v}");
    assert_eq!(v["status"], "connected", "{v}");
    assert!(failed.try_recv().is_err(), "no fourth attempt");

    // The same figures in /metrics.
    let metrics = s.req("GET", "/metrics").send().text();
    let line = format!(
        "tsstore_connection_webhook_failures_total{{store=\"src\",id=\"{id}\",kind=\"ws\",mode=\"push\"}} 1"
    );
    assert!(metrics.contains(&line), "{metrics}");
    assert!(!metrics.contains("webhook_drops"), "{metrics}");

    // The server stops in time although a webhook still hangs.
    s.stop();
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("webhook failed"), "failures are logged");
    assert!(
        !logged.contains(PATH_TOKEN),
        "a webhook's token reached the log"
    );
}

#[test]
fn rules_are_checked_at_create() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let key = s.create_store(json!({"name": "v"}));
    let text = s.create_store(json!({"name": "t", "data_type": "text"}));
    let url = "ws://127.0.0.1:1/";
    let rule = |r: Value| json!({"url": url, "rules": [r]});
    let cases = [
        (
            rule(json!({"name": "a", "condition": "t > > 1"})),
            "position",
        ),
        (
            rule(json!({"name": "a", "condition": "t > 1", "cooldown": "soon"})),
            "cooldown",
        ),
        (
            rule(json!({"name": "a", "condition": "t > 1", "webhook": "ftp://h/"})),
            "http",
        ),
        (
            json!({"mode": "pull", "url": url, "rules": [{"name": "a", "condition": "t > 1"}]}),
            "push only",
        ),
    ];
    let refused = |store: &str, key: &str, body: &Value, word: &str| {
        let r = s
            .req("POST", &format!("/api/stores/{store}/ws/connections"))
            .key(key)
            .json(body)
            .send();
        r.expect_error(400, "invalid_connection");
        let e = r.json();
        assert!(e["error"].as_str().unwrap().contains(word), "{e}");
    };
    for (body, word) in cases {
        refused("v", &key, &body, word);
    }
    let body = rule(json!({"name": "a", "condition": "t > 1"}));
    refused("t", &text, &body, "json or schema");
    let list = s
        .req("GET", "/api/stores/v/ws/connections")
        .key(&key)
        .send()
        .json();
    assert_eq!(list["count"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_fire_while_the_push_peer_is_away() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let key = s.create_store(json!({"name": "env"}));
    let (hook_url, mut hooks) = receiver(Answer::Ok).await;
    // Nothing listens where the push dials.
    let unused = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = unused.local_addr().unwrap().port();
    drop(unused);
    insert(&s, &key, "env", json!([{"data": {"t": 99}}]));
    create(
        &s,
        &key,
        "env",
        json!({"url": format!("ws://127.0.0.1:{port}/in"), "from": 0, "filter": "lab",
               "rules": [{"name": "hot", "condition": "t > 80", "webhook": hook_url}]}),
    );
    // Records from before the connection are history, not news; the
    // connection's filter applies to its rules too.
    insert(
        &s,
        &key,
        "env",
        json!([{"data": {"t": 95, "room": "hall"}}, {"data": {"t": 90, "room": "lab"}}]),
    );
    let hook = next_hook(&mut hooks).await;
    assert_eq!(hook.body["data"], json!({"t": 90, "room": "lab"}));
    assert!(
        hooks.try_recv().is_err(),
        "{:?}",
        hooks.try_recv().map(|h| h.body)
    );
}

/// Waits until the peer has had `n` alerts (and the data they are about),
/// returning each alert's `data.n` in the order it came.
async fn alerts_seen(p: &mut Peer, n: usize) -> Vec<i64> {
    let mut seen = Vec::new();
    while seen.len() < n {
        let m = next_text(p).await;
        if m["type"] == "alert" {
            seen.push(m["alert"]["data"]["n"].as_i64().expect("n"));
        }
    }
    seen
}

/// The `data.n` of the next `count` webhook POSTs, in order.
async fn hooks_seen(rx: &mut mpsc::UnboundedReceiver<Hook>, count: usize) -> Vec<i64> {
    let mut seen = Vec::with_capacity(count);
    for _ in 0..count {
        seen.push(next_hook(rx).await.body["data"]["n"].as_i64().expect("n"));
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_a_thousand_firings_loses_none() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let key = s.create_store(json!({"name": "burst", "num_blocks": 256}));
    let mut p = peer(None).await;
    let (hook_url, mut hooks) = receiver(Answer::Ok).await;
    let c = create(
        &s,
        &key,
        "burst",
        json!({"url": format!("ws://127.0.0.1:{}/in", p.port), "rules": [
            {"name": "every", "condition": "n >= 0", "cooldown": "0s", "webhook": hook_url},
        ]}),
    );
    let id = c["id"].as_str().unwrap().to_string();
    // While the peer is connected its alerts are waited for, not dropped.
    view_when(&s, &key, "burst", &id, |v| v["status"] == "connected").await;

    // One batch, 1 000 firings: ten times the webhook's queue, fifteen
    // times the socket's.
    insert_batch(&s, &key, "burst", 0..1000);
    let all: Vec<i64> = (0..1000).collect();
    assert_eq!(
        hooks_seen(&mut hooks, 1000).await,
        all,
        "every POST, in order"
    );
    assert_eq!(
        alerts_seen(&mut p, 1000).await,
        all,
        "every alert, in order"
    );
    // Exactly one of each: a marker record fires after them, so anything
    // sent twice would have come before it.
    insert_batch(&s, &key, "burst", 1000..1001);
    assert_eq!(hooks_seen(&mut hooks, 1).await, [1000]);
    assert_eq!(alerts_seen(&mut p, 1).await, [1000]);
    let v = view_when(&s, &key, "burst", &id, |v| v["webhook_sent"] == 1001).await;
    assert_eq!(v["alerts_fired"], 1001, "{v}");
    assert_eq!(v["alerts_dropped"], 0, "{v}");
    assert_eq!(v["evaluation_gaps"], 0, "{v}");
    assert!(v.get("alerts_last_error").is_none(), "{v}");
    s.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_neither_misses_records_nor_fires_delivered_alerts_again() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let key = s.create_store(json!({"name": "env"}));
    let answering = Answering::new(Answer::Ok);
    let (hook_url, mut hooks) = receiver_answering(Arc::clone(&answering)).await;
    // The push's peer stays away: webhooks fire all the same.
    let unused = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = unused.local_addr().unwrap().port();
    drop(unused);
    let c = create(
        &s,
        &key,
        "env",
        json!({"url": format!("ws://127.0.0.1:{port}/in"), "rules": [
            {"name": "every", "condition": "n >= 0", "cooldown": "0s", "webhook": hook_url},
        ]}),
    );
    let id = c["id"].as_str().unwrap().to_string();
    let first = insert_batch_n(&s, &key, &[0, 1, 2, 3, 4]);
    assert_eq!(hooks_seen(&mut hooks, 5).await, [0, 1, 2, 3, 4]);
    view_when(&s, &key, "env", &id, |v| v["webhook_sent"] == 5).await;
    s.stop();
    // The connection file says how far the alerts were delivered.
    let file = dir.path().join("data/env/ws_connections.json");
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(
        saved["connections"][0]["alerts_cursor"], first["last_timestamp"],
        "{saved}"
    );

    // Restarted with nothing new: nothing fires again. A marker inserted
    // now is the first POST (one sent again would have come before it).
    let s = Server::start(dir.path());
    insert_batch_n(&s, &key, &[100]);
    assert_eq!(hooks_seen(&mut hooks, 1).await, [100]);

    // Records inserted right before a stop, while the webhook hangs: the
    // stop does not wait for it, and the restarted server POSTs them all
    // (the one that was under way again).
    answering.set(Answer::Hang);
    insert_batch_n(&s, &key, &[200, 201, 202]);
    assert_eq!(hooks_seen(&mut hooks, 1).await, [200]);
    insert_batch_n(&s, &key, &[203, 204]);
    s.stop();
    // Whatever reached the receiver before the stop is not counted.
    while hooks.try_recv().is_ok() {}
    answering.set(Answer::Ok);
    let s = Server::start(dir.path());
    assert_eq!(hooks_seen(&mut hooks, 5).await, [200, 201, 202, 203, 204]);
    insert_batch_n(&s, &key, &[300]);
    assert_eq!(hooks_seen(&mut hooks, 1).await, [300]);
    let v = view_when(&s, &key, "env", &id, |v| v["webhook_sent"] == 6).await;
    assert_eq!(v["webhook_failures"], 0, "{v}");
    s.stop();
}

/// Inserts `{"n": n}` for each of `ns` in one batch into store `env`.
fn insert_batch_n(s: &Server, key: &str, ns: &[i64]) -> Value {
    let batch: Vec<Value> = ns.iter().map(|n| json!({"data": {"n": n}})).collect();
    insert(s, key, "env", json!(batch))
}
