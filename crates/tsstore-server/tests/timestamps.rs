//! Client timestamps against the real server: the future guard (server
//! and per store), `precision`, and the admin's truncate that un-wedges a
//! store a far-future timestamp got into.

mod common;

use common::{ADMIN, Server};
use serde_json::json;

const YEAR_2200_NS: i64 = 7_258_118_400_000_000_000;

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

#[test]
fn far_future_timestamps_are_refused_naming_both_times_and_old_ones_conflict_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let key = s.create_store(json!({"name": "g"}));
    let post = |body: serde_json::Value| {
        s.req("POST", "/api/stores/g/data")
            .key(&key)
            .json(&body)
            .send()
    };
    for ts in [YEAR_2200_NS, i64::MAX] {
        let r = post(json!({"timestamp": ts, "data": 1}));
        r.expect_error(400, "timestamp_in_future");
        let message = r.json()["error"].as_str().unwrap().to_string();
        assert!(message.contains(&ts.to_string()), "{message}");
        assert!(message.contains("ahead of the server clock"), "{message}");
        assert!(message.contains("24h"), "{message}");
    }
    let r = post(json!({"timestamp": YEAR_2200_NS, "data": 1}));
    assert!(r.json()["error"].as_str().unwrap().contains("2200-01-01"));
    // Nothing was stored; an hour ahead is within the default skew.
    let soon = now_ns() + 3_600_000_000_000;
    assert_eq!(post(json!({"timestamp": soon, "data": 2})).status, 201);
    post(json!({"timestamp": soon - 1, "data": 3})).expect_error(409, "timestamp_out_of_order");
    // A batch with one future record stores nothing.
    let r = s
        .req("POST", "/api/stores/g/data/batch")
        .key(&key)
        .json(&json!([{"data": 4}, {"timestamp": YEAR_2200_NS, "data": 5}]))
        .send();
    r.expect_error(400, "timestamp_in_future");
    let stats = s.req("GET", "/api/stores/g/stats").key(&key).send().json();
    assert_eq!(stats["newest_timestamp"], json!(soon), "{stats}");
    let metrics = s.get("/metrics").text();
    assert!(
        metrics.contains(
            "tsstore_store_rejected_inserts_total{store=\"g\",reason=\"future_timestamp\"} 4"
        ),
        "{metrics}"
    );
}

#[test]
fn the_guard_is_set_per_server_and_per_store() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with_config(dir.path(), r#"{"server": {"max_future_skew": "0"}}"#);
    let open = s.create_store(json!({"name": "open"}));
    let strict = s.create_store(json!({"name": "strict", "max_future_skew": "1h"}));
    let post = |store: &str, key: &str, ts: i64| {
        s.req("POST", &format!("/api/stores/{store}/data"))
            .key(key)
            .json(&json!({"timestamp": ts, "data": 1}))
            .send()
    };
    assert_eq!(post("open", &open, YEAR_2200_NS).status, 201);
    let two_hours = now_ns() + 7_200_000_000_000;
    post("strict", &strict, two_hours).expect_error(400, "timestamp_in_future");
    assert_eq!(post("strict", &strict, now_ns()).status, 201);
    assert!(dir.path().join("data/strict/settings.json").exists());
    // A bad skew is refused before anything is made.
    let r = s
        .req("POST", "/api/stores")
        .header("X-Admin-Key", ADMIN)
        .json(&json!({"name": "bad", "max_future_skew": "soon"}))
        .send();
    r.expect_error(400, "invalid_config");
    assert!(!dir.path().join("data/bad").exists());
    // The setting survives a restart.
    s.stop();
    let s = Server::start_with_config(dir.path(), r#"{"server": {"max_future_skew": "0"}}"#);
    let r = s
        .req("POST", "/api/stores/strict/data")
        .key(&strict)
        .json(&json!({"timestamp": now_ns() + 7_200_000_000_000i64, "data": 1}))
        .send();
    r.expect_error(400, "timestamp_in_future");
}

#[test]
fn precision_scales_timestamps_on_every_ingest_path() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let key = s.create_store(json!({"name": "p"}));
    let ms = now_ns() / 1_000_000;
    let r = s
        .req("POST", "/api/stores/p/data?precision=ms")
        .key(&key)
        .json(&json!({"timestamp": ms, "data": 1}))
        .send();
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["timestamp"], json!(ms * 1_000_000));
    let secs = ms / 1000 + 1;
    let r = s
        .req("POST", "/api/stores/p/data/batch?precision=s")
        .key(&key)
        .json(&json!([{"timestamp": secs, "data": 2}, {"timestamp": secs + 1, "data": 3}]))
        .send();
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        r.json()["last_timestamp"],
        json!((secs + 1) * 1_000_000_000)
    );
    // Seconds mistaken for nanoseconds would be 1970: refused as out of
    // order here, not silently stored.
    let r = s
        .req("POST", "/api/stores/p/data")
        .key(&key)
        .json(&json!({"timestamp": secs + 2, "data": 4}))
        .send();
    r.expect_error(409, "timestamp_out_of_order");
    let r = s
        .req("POST", "/api/stores/p/data?precision=minutes")
        .key(&key)
        .json(&json!({"data": 5}))
        .send();
    r.expect_error(400, "invalid_parameter");
    assert!(r.text().contains("ns, us, ms or s"), "{}", r.text());
    // Past what nanoseconds can hold: a clear error, not a wrap.
    let r = s
        .req("POST", "/api/stores/p/data?precision=s")
        .key(&key)
        .json(&json!({"timestamp": 9_300_000_000i64, "data": 6}))
        .send();
    r.expect_error(400, "invalid_timestamp");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_ingest_takes_a_precision_and_refuses_the_future() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let key = s.create_store(json!({"name": "ws"}));
    let url = format!(
        "ws://127.0.0.1:{}/api/stores/ws/ws/write?api_key={key}&precision=us",
        s.port
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let us = now_ns() / 1000;
    for ts in [us, YEAR_2200_NS / 1000] {
        let message = json!({"timestamp": ts, "data": 1}).to_string();
        ws.send(Message::text(message)).await.unwrap();
    }
    let mut replies = Vec::new();
    while replies.len() < 2 {
        let m = tokio::time::timeout(std::time::Duration::from_secs(20), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Message::Text(t) = m {
            replies.push(serde_json::from_str::<serde_json::Value>(&t).unwrap());
        }
    }
    assert_eq!(replies[0]["timestamp"], json!(us * 1000), "{replies:?}");
    assert_eq!(replies[1]["code"], "timestamp_in_future", "{replies:?}");
}

#[test]
fn truncate_restores_server_stamped_inserts() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    // A store without the guard took a record at the end of time.
    let key = s.create_store(json!({"name": "w", "max_future_skew": "0"}));
    let post = |body: serde_json::Value| {
        s.req("POST", "/api/stores/w/data")
            .key(&key)
            .json(&body)
            .send()
    };
    let kept = now_ns() - 1_000_000_000;
    assert_eq!(post(json!({"timestamp": kept, "data": "kept"})).status, 201);
    assert_eq!(
        post(json!({"timestamp": i64::MAX, "data": "far"})).status,
        201
    );
    post(json!({"data": "now"})).expect_error(409, "timestamp_out_of_order");

    // Only the admin may rewind, and `after` is required.
    let truncate = |query: &str, admin: bool| {
        let r = s.req("POST", &format!("/api/stores/w/truncate{query}"));
        if admin {
            r.header("X-Admin-Key", ADMIN).send()
        } else {
            r.key(&key).send()
        }
    };
    truncate(&format!("?after={kept}"), false).expect_error(401, "missing_admin_key");
    truncate("", true).expect_error(400, "invalid_parameter");
    truncate("?after=soon", true).expect_error(400, "invalid_parameter");
    let r = truncate(&format!("?after={kept}"), true);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["newest_timestamp"], json!(kept), "{v}");
    assert_eq!(v["removed_records"], json!(1), "{v}");

    let r = post(json!({"data": "now"}));
    assert_eq!(r.status, 201, "{}", r.text());
    let ts = r.json()["timestamp"].as_i64().unwrap();
    assert!(ts > kept && ts < now_ns() + 60_000_000_000, "{ts}");
    // The kept record is as it was; the far one is gone, for good.
    s.stop();
    let s = Server::start(dir.path());
    let r = s
        .req("GET", "/api/stores/w/data/oldest?limit=10")
        .key(&key)
        .send();
    assert_eq!(common::timestamps(&r.json()), vec![kept, ts]);
}
