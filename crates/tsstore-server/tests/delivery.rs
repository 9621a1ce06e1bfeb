//! Delivery that survives crashes of either side: push with app-level
//! acks (`ack: app`), durable live readers (`ws/read?consumer=`) and
//! resumable pull, with real processes SIGKILLed mid-stream (the
//! collector is a child process, see `common::collector`; the server is
//! the real binary).

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use common::collector::{self, free_port, handled};
use common::peer::{WAIT, create, get_when, insert_batch};
use common::{Options, Server};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const RECORDS: i64 = 20_000;
const WINDOW: usize = 1_000;
/// Longest a whole delivery (with its kills) may take.
const DELIVERY_WAIT: Duration = Duration::from_secs(120);

/// The collector child's entry: nothing in a normal run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_child() {
    collector::run_if_child().await;
}

/// Inserts `{"n": 0..RECORDS}` in batches.
fn fill(s: &Server, key: &str, store: &str) {
    for start in (0..RECORDS).step_by(5_000) {
        insert_batch(s, key, store, start..(start + 5_000).min(RECORDS));
    }
}

/// Every `n` below `RECORDS` at least once, and how many came twice.
fn check_complete(seen: &[i64]) -> usize {
    let mut count: HashMap<i64, usize> = HashMap::new();
    for &n in seen {
        *count.entry(n).or_default() += 1;
    }
    let missing: Vec<i64> = (0..RECORDS).filter(|n| !count.contains_key(n)).collect();
    assert!(
        missing.is_empty(),
        "{} records never arrived, first {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    seen.len() - RECORDS as usize
}

/// Waits until `done` holds for the collector's file.
async fn wait_for_file(out: &Path, what: &str, done: impl Fn(&[i64]) -> bool) {
    let deadline = Instant::now() + DELIVERY_WAIT;
    loop {
        let seen = handled(out);
        if done(&seen) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: the collector has {} records",
            seen.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn distinct(seen: &[i64]) -> usize {
    seen.iter().collect::<std::collections::HashSet<_>>().len()
}

/// SIGKILLs the collector at three points of the backlog, starting it
/// again each time; the last one started.
async fn kill_three_times(role: &str, out: &Path, mut child: Child) -> Child {
    for kill_at in [3_000, 8_000, 13_000] {
        wait_for_file(out, "before a kill", |seen| seen.len() >= kill_at).await;
        child.kill().unwrap();
        child.wait().unwrap();
        child = collector::spawn("collector_child", role, out);
    }
    child
}

/// Waits until the collector has every record, stops it, and checks that
/// at most three windows came twice.
async fn all_collected(out: &Path, mut child: Child) {
    wait_for_file(out, "after the kills", |seen| {
        distinct(seen) == RECORDS as usize
    })
    .await;
    child.kill().unwrap();
    child.wait().unwrap();
    let dups = check_complete(&handled(out));
    assert!(dups <= 3 * WINDOW, "{dups} records were delivered twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_acked_push_survives_three_collector_kills() {
    if std::env::var(collector::ROLE_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("collected");
    let s = Server::start(dir.path());
    let key = s.create_store(json!({"name": "src", "num_blocks": 4096}));
    fill(&s, &key, "src");
    let port = free_port();
    let role = format!("serve:{port}");
    let child = collector::spawn("collector_child", &role, &out);
    let c = create(
        &s,
        &key,
        "src",
        json!({"url": format!("ws://127.0.0.1:{port}/in"), "from": 0, "ack": "app", "window": WINDOW}),
    );
    let child = kill_three_times(&role, &out, child).await;
    all_collected(&out, child).await;
    // Status: acked all, nothing in flight.
    let id = c["id"].as_str().unwrap();
    let path = format!("/api/stores/src/ws/connections/{id}");
    let v = s.req("GET", &path).key(&key).send().json();
    assert_eq!(v["ack"], "app", "{v}");
    assert_eq!(v["refused_acks"], 0, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_acked_push_survives_three_server_kills() {
    if std::env::var(collector::ROLE_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("collected");
    let mut s = Server::start(dir.path());
    let key = s.create_store(json!({"name": "src", "num_blocks": 4096}));
    fill(&s, &key, "src");
    let port = free_port();
    let child = collector::spawn("collector_child", &format!("serve:{port}"), &out);
    create(
        &s,
        &key,
        "src",
        json!({"url": format!("ws://127.0.0.1:{port}/in"), "from": 0, "ack": "app", "window": WINDOW}),
    );
    for kill_at in [3_000, 8_000, 13_000] {
        wait_for_file(&out, "before a kill", |seen| seen.len() >= kill_at).await;
        s.kill();
        // The same data directory: the connection is restored at its
        // acknowledged cursor.
        s = Server::start(dir.path());
    }
    all_collected(&out, child).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_reader_resumes_after_kills_with_nothing_lost() {
    if std::env::var(collector::ROLE_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("collected");
    let s = Server::start(dir.path());
    let key = s.create_store(json!({"name": "src", "num_blocks": 4096}));
    fill(&s, &key, "src");
    // One fixed URL, as a browser or a flow engine reconnects to.
    let url = format!(
        "ws://127.0.0.1:{}/api/stores/src/ws/read?api_key={key}&consumer=node1&from=oldest&window={WINDOW}",
        s.port
    );
    let role = format!("dial:{url}");
    let child = collector::spawn("collector_child", &role, &out);
    let child = kill_three_times(&role, &out, child).await;
    all_collected(&out, child).await;
    // The consumer is listed with everything acknowledged.
    let v = get_when(&s, &key, "/api/stores/src/consumers", |v| {
        v["consumers"][0]["lag"] == 0
    })
    .await;
    assert_eq!(v["count"], 1, "{v}");
    let c = &v["consumers"][0];
    assert_eq!(c["name"], "node1", "{v}");
    assert!(c["last_seen"].is_string(), "{v}");
}

/// Reads the next text message as JSON.
async fn next_json(ws: &mut common::Ws) -> Value {
    loop {
        let m = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a message in time")
            .expect("open")
            .expect("read");
        if let Message::Text(t) = m {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

#[tokio::test]
async fn a_new_connection_takes_a_consumer_over_and_acks_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let key = s.create_store(json!({"name": "src"}));
    insert_batch(&s, &key, "src", 0..5);
    let path = format!("/api/stores/src/ws/read?api_key={key}&consumer=c1&from=oldest");
    let mut first = common::ws_connect(&s, &path).await;
    let m = next_json(&mut first).await;
    assert_eq!(m["data"]["n"], 0, "{m}");
    let t0 = m["timestamp"].as_i64().unwrap();
    // An ack for a timestamp never sent is answered, not trusted.
    let bogus = json!({"type": "ack", "timestamp": t0 + 1_000_000_000_000});
    first
        .send(Message::Text(bogus.to_string().into()))
        .await
        .unwrap();
    loop {
        let m = next_json(&mut first).await;
        if m["type"] == "error" {
            assert_eq!(m["code"], "invalid_ack", "{m}");
            assert!(m["message"].as_str().unwrap().contains("not sent"), "{m}");
            break;
        }
    }
    // Acks as a string work too (JavaScript clients).
    let ack = json!({"type": "ack", "timestamp": t0.to_string()});
    first
        .send(Message::Text(ack.to_string().into()))
        .await
        .unwrap();
    let v = get_when(&s, &key, "/api/stores/src/consumers/c1", |v| {
        v["acked_timestamp"] == t0
    })
    .await;
    assert_eq!(v["connected"], true, "{v}");
    assert_eq!(v["lag"], 4, "{v}");
    assert_eq!(v["refused_acks"], 1, "{v}");
    // A second connection (the first one's client crashed, its socket
    // half-open) takes over: the first is closed, the second resumes
    // after the ack, whatever `from` says.
    let path2 = format!("/api/stores/src/ws/read?api_key={key}&consumer=c1&from=now");
    let mut second = common::ws_connect(&s, &path2).await;
    let m = next_json(&mut second).await;
    assert_eq!(m["data"]["n"], 1, "{m}");
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            match first.next().await {
                Some(Ok(Message::Close(Some(f)))) => return Some(f),
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    })
    .await
    .expect("the older connection is closed in time")
    .expect("with a close frame");
    assert_eq!(u16::from(closed.code), 1008);
    assert!(closed.reason.contains("took over"), "{}", closed.reason);
    // `reset` starts over from `from`.
    drop(second);
    let path3 = format!("/api/stores/src/ws/read?api_key={key}&consumer=c1&from=oldest&reset=true");
    let mut third = common::ws_connect(&s, &path3).await;
    assert_eq!(next_json(&mut third).await["data"]["n"], 0);
    // Deleting forgets it; a bad name is refused before the upgrade.
    let r = s
        .req("DELETE", "/api/stores/src/consumers/c1")
        .key(&key)
        .send();
    assert_eq!(r.status, 200, "{}", r.text());
    let r = s
        .req("GET", "/api/stores/src/consumers/c1")
        .key(&key)
        .send();
    r.expect_error(404, "consumer_not_found");
    let r = s
        .req("GET", "/api/stores/src/ws/read?consumer=a/b")
        .key(&key)
        .send();
    r.expect_error(400, "invalid_parameter");
    let r = s
        .req("GET", "/api/stores/src/ws/read?window=5")
        .key(&key)
        .send();
    r.expect_error(400, "invalid_parameter");
}

/// A source tsstore on a fixed port, so the pull dials the same URL
/// after it restarts.
fn source_on(dir: &Path, port: u16) -> Server {
    Server::start_with(
        dir,
        Options {
            port: Some(port),
            ..Options::default()
        },
    )
}

fn all_timestamps(s: &Server, key: &str, store: &str) -> Vec<i64> {
    let v = s
        .req(
            "GET",
            &format!("/api/stores/{store}/data/range?limit=100000&include_data=false"),
        )
        .key(key)
        .send()
        .json();
    common::timestamps(&v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_from_another_tsstore_survives_kills_of_either_side() {
    let src_dir = tempfile::tempdir().unwrap();
    let sink_dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut src = source_on(src_dir.path(), port);
    let src_key = src.create_store(json!({"name": "src", "num_blocks": 4096}));
    fill(&src, &src_key, "src");
    let expected = all_timestamps(&src, &src_key, "src");
    assert_eq!(expected.len(), RECORDS as usize);
    let mut sink = Server::start(sink_dir.path());
    let sink_key = sink.create_store(json!({"name": "sink", "num_blocks": 4096}));
    let url = format!(
        "ws://127.0.0.1:{port}/api/stores/src/ws/read?api_key={src_key}&consumer=gw&from=oldest"
    );
    create(
        &sink,
        &sink_key,
        "sink",
        json!({"mode": "pull", "url": url, "ack": "app"}),
    );
    let stored = |s: &Server| all_timestamps(s, &sink_key, "sink").len();
    let wait_stored = |s: &Server, n: usize| {
        let deadline = Instant::now() + DELIVERY_WAIT;
        while stored(s) < n {
            assert!(Instant::now() < deadline, "the sink has {}", stored(s));
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_stored(&sink, 3_000);
    src.kill();
    src = source_on(src_dir.path(), port);
    wait_stored(&sink, 8_000);
    sink.kill();
    sink = Server::start(sink_dir.path());
    wait_stored(&sink, 13_000);
    src.kill();
    let _src = source_on(src_dir.path(), port);
    wait_stored(&sink, RECORDS as usize);
    // Nothing lost, nothing stored twice: the same timestamps.
    assert_eq!(all_timestamps(&sink, &sink_key, "sink"), expected);
}

#[tokio::test]
async fn an_idle_pull_outlives_the_far_side_keepalive() {
    // A source that drops a connection it hears nothing from for 3 s,
    // and never pings itself (as many proxies and flow engines do).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (accepted_tx, mut accepted) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let accepted_tx = accepted_tx.clone();
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                let _ = accepted_tx.send(());
                while let Ok(Some(Ok(_))) =
                    tokio::time::timeout(Duration::from_secs(3), ws.next()).await
                {}
                let _ = ws.close(None).await;
            });
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let key = s.create_store(json!({"name": "sink"}));
    let c = create(
        &s,
        &key,
        "sink",
        json!({"mode": "pull", "url": format!("ws://127.0.0.1:{port}/feed"), "keepalive": "1s"}),
    );
    tokio::time::timeout(WAIT, accepted.recv())
        .await
        .expect("the pull connects")
        .unwrap();
    // Twice the far side's keep-alive: still the first connection.
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert!(
        accepted.try_recv().is_err(),
        "the pull was dropped and redialled"
    );
    let id = c["id"].as_str().unwrap();
    let v = s
        .req("GET", &format!("/api/stores/sink/ws/connections/{id}"))
        .key(&key)
        .send()
        .json();
    assert_eq!(v["status"], "connected", "{v}");
    assert_eq!(v["errors"], 0, "{v}");
}
