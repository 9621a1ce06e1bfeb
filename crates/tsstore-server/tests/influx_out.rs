//! Influx connections against real central engines nobody here wrote:
//! VictoriaMetrics (`common::victoria`) and InfluxDB 1.6
//! (`common::influxd`). Every record arrives exactly once per series and
//! timestamp — checked by querying the engine — while the engine is
//! stopped and started again mid-stream and tsstore is SIGKILLed with a
//! backlog waiting; a batch the engine refuses as points (a field that
//! changed type) is counted and passed over; secrets never show.

mod common;

use std::time::{Duration, Instant};

use common::Server;
use common::influxd::{self, Influxd};
use common::victoria::{self, Victoria};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);
/// 2023-11-14: old enough that an engine's default retention would drop
/// it (the engines here keep everything).
const BASE: i64 = 1_700_000_000_000_000_000;
const SECOND: i64 = 1_000_000_000;

/// Inserts records `range` (one a second from `BASE`) with `n` and a room.
fn insert(s: &Server, key: &str, range: std::ops::Range<i64>) {
    let batch: Vec<Value> = range
        .map(|i| json!({"timestamp": BASE + i * SECOND, "data": {"n": i, "room": format!("r{}", i % 3)}}))
        .collect();
    for chunk in batch.chunks(5000) {
        let r = s
            .req("POST", "/api/stores/src/data/batch")
            .key(key)
            .json(&json!(chunk))
            .send();
        assert_eq!(r.status, 201, "{}", r.text());
    }
}

/// The connection's view once `done` holds for it.
fn view_when(s: &Server, key: &str, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let v = s
            .req("GET", &format!("/api/stores/src/influx/connections/{id}"))
            .key(key)
            .send()
            .json();
        if done(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{v}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn create(s: &Server, key: &str, body: Value) -> String {
    let r = s
        .req("POST", "/api/stores/src/influx/connections")
        .key(key)
        .json(&body)
        .send();
    assert_eq!(r.status, 201, "{}", r.text());
    let v = r.json();
    v["id"].as_str().unwrap().to_string()
}

fn newest(s: &Server, key: &str) -> i64 {
    s.req("GET", "/api/stores/src/stats").key(key).send().json()["newest_timestamp"]
        .as_i64()
        .unwrap()
}

/// Ships 30 000 records to VictoriaMetrics in three parts: while it runs,
/// while it is stopped (then tsstore is SIGKILLed with that backlog), and
/// after both are back.
#[test]
fn victoria_metrics_gets_every_record_once_through_restarts_and_a_kill() {
    if !victoria::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut vm = Victoria::start(&dir.path().join("vm"));
    let s = Server::start(&dir.path().join("tsstore"));
    let key = s.create_store(json!({"name": "src", "num_blocks": 4096}));
    insert(&s, &key, 0..10_000);
    let url = format!("http://127.0.0.1:{}/write", vm.port);
    let id = create(
        &s,
        &key,
        json!({"url": url, "measurement": "plant", "tag_fields": ["room"],
               "tags": {"gateway": "gw-17"}, "batch_size": 1000, "from": "oldest"}),
    );
    let first = newest(&s, &key);
    let v = view_when(&s, &key, &id, |v| v["last_timestamp"] == first);
    assert_eq!(v["records_sent"], 10_000, "{v}");
    assert_eq!(v["lag_records"], 0, "{v}");

    // The engine goes away: records wait in the ring; the connection
    // says why it cannot ship.
    vm.stop();
    insert(&s, &key, 10_000..20_000);
    view_when(&s, &key, &id, |v| v["errors"].as_u64() > Some(0));
    let v = view_when(&s, &key, &id, |v| v["lag_records"] == 10_000);
    assert!(v["lag_seconds"].as_f64().unwrap() >= 9_999.0, "{v}");
    let metrics = s.get("/metrics").text();
    let series = format!(
        r#"tsstore_connection_lag_seconds{{store="src",id="{id}",kind="influx",mode="ship"}} 10000"#
    );
    assert!(metrics.contains(&series), "{metrics}");
    s.kill();

    // Both back: the connection resumes from its cursor.
    vm.start_again();
    let s = Server::start(&dir.path().join("tsstore"));
    insert(&s, &key, 20_000..30_000);
    let last = newest(&s, &key);
    view_when(&s, &key, &id, |v| v["last_timestamp"] == last);

    let expected: Vec<(i64, f64)> = (0..30_000)
        .map(|i| ((BASE + i * SECOND) / 1_000_000, i as f64))
        .collect();
    let samples = vm.samples_when(r#"{__name__="plant_n",gateway="gw-17"}"#, expected.len());
    assert_eq!(
        samples.len(),
        expected.len(),
        "once per series and timestamp"
    );
    assert_eq!(samples, expected);
    // Tags from tag_fields: three rooms.
    let room = vm.samples(r#"{__name__="plant_n",room="r2"}"#);
    assert_eq!(room.len(), 10_000);
}

/// InfluxDB 1.6: every record once (`count(*)`), through an engine
/// restart and a tsstore SIGKILL; a batch refused as points is counted
/// and passed over; the password never shows.
#[test]
fn influxdb_gets_every_record_once_and_refused_points_do_not_stall() {
    if !influxd::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut influx = Influxd::start(&dir.path().join("influxd"), "fleet");
    let s = Server::start(&dir.path().join("tsstore"));
    let key = s.create_store(json!({"name": "src", "num_blocks": 4096}));
    insert(&s, &key, 0..5_000);
    let url = format!("http://127.0.0.1:{}/write?db=fleet", influx.port);
    let id = create(
        &s,
        &key,
        json!({"url": url, "username": "gw", "password": "s3cret-pass", "gzip": false,
               "batch_size": 500, "max_delay": "50ms"}),
    );
    let first = newest(&s, &key);
    let v = view_when(&s, &key, &id, |v| v["last_timestamp"] == first);
    assert_eq!(v["password"], "[redacted]", "{v}");
    assert!(!v.to_string().contains("s3cret"), "{v}");

    influx.stop();
    insert(&s, &key, 5_000..10_000);
    view_when(&s, &key, &id, |v| v["errors"].as_u64() > Some(0));
    s.kill();
    influx.start_again();
    let s = Server::start(&dir.path().join("tsstore"));
    // A field that changes type: InfluxDB refuses that batch (400); the
    // stream goes on past it.
    let r = s
        .req("POST", "/api/stores/src/data")
        .key(&key)
        .json(&json!({"timestamp": BASE + 10_000 * SECOND, "data": {"n": "eleven"}}))
        .send();
    assert_eq!(r.status, 201, "{}", r.text());
    insert(&s, &key, 10_001..12_000);
    let last = newest(&s, &key);
    let v = view_when(&s, &key, &id, |v| v["last_timestamp"] == last);
    assert!(v["skipped"].as_u64() > Some(0), "{v}");
    assert!(v["last_error"].as_str().unwrap().contains("refused"), "{v}");

    let (_, answer) = influx.query("q=SELECT+count(n)+FROM+src&db=fleet");
    let answer: Value = serde_json::from_str(&answer).unwrap();
    let count = answer["results"][0]["series"][0]["values"][0][1]
        .as_i64()
        .unwrap();
    // Every record but those in the refused batch (500 lines at most),
    // and none twice (InfluxDB keeps one point per series and time).
    // InfluxDB stored the rest of that batch and said it dropped one.
    assert_eq!(v["skipped"], 1, "{v}");
    assert_eq!(count, 11_999, "{answer}");
    let (_, answer) = influx.query(&format!(
        "q=SELECT+n+FROM+src+WHERE+time+%3D+{}&db=fleet",
        BASE + 7_777 * SECOND
    ));
    assert!(answer.contains("7777"), "{answer}");
}

#[test]
fn creating_checks_everything_and_metrics_name_the_kind() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let key = s.create_store(json!({"name": "src"}));
    let text = s.create_store(json!({"name": "txt", "data_type": "text"}));
    for (body, why) in [
        (json!({}), "url"),
        (json!({"url": "ftp://h/write"}), "http:// or https://"),
        (json!({"url": "vm:8428/write"}), "the full write URL"),
        (json!({"url": "http://u:p@h/write"}), "credentials"),
        (
            json!({"url": "http://h/write", "token": "t", "username": "u"}),
            "not both",
        ),
        (
            json!({"url": "http://h/write", "password": "p"}),
            "needs a username",
        ),
        (
            json!({"url": "http://h/write", "batch_size": 0}),
            "batch_size",
        ),
        (
            json!({"url": "http://h/write", "max_delay": "2h"}),
            "max_delay",
        ),
        (
            json!({"url": "http://h/write", "from": "yesterday"}),
            "from",
        ),
        (
            json!({"url": "http://h/write", "tags": {"gw": ""}}),
            "tag 'gw'",
        ),
        (
            json!({"url": "http://h/write", "agg_fields": "n:avg"}),
            "agg_window",
        ),
        (json!({"url": "http://h/write", "mode": "push"}), "mode"),
        (json!({"url": "http://h/write", "colour": "red"}), "colour"),
    ] {
        let r = s
            .req("POST", "/api/stores/src/influx/connections")
            .key(&key)
            .json(&body)
            .send();
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert!(r.text().contains(why), "{body}: {}", r.text());
    }
    let r = s
        .req("POST", "/api/stores/txt/influx/connections")
        .key(&text)
        .json(&json!({"url": "http://127.0.0.1:1/write"}))
        .send();
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("json and schema stores"), "{}", r.text());
    let id = create(
        &s,
        &key,
        json!({"url": "http://127.0.0.1:1/api/v2/write?org=o&bucket=b", "token": "tok-secret"}),
    );
    // Nothing to ship yet: the connection tries the engine anyway, and
    // says it is not there.
    let v = view_when(&s, &key, &id, |v| v["errors"].as_u64() > Some(0));
    assert_eq!(v["status"], "error", "{v}");
    assert!(v["last_error"].as_str().unwrap().contains("connect"), "{v}");
    assert_eq!(v["token"], "[redacted]", "{v}");
    let metrics = s.get("/metrics").text();
    assert!(
        metrics.contains(&format!(
            r#"tsstore_connection_errors_total{{store="src",id="{id}",kind="influx",mode="ship"}}"#
        )),
        "{metrics}"
    );
    assert!(!metrics.contains("tok-secret"));
    let saved =
        std::fs::read_to_string(dir.path().join("data/src/influx_connections.json")).unwrap();
    assert!(saved.contains("tok-secret"), "kept to ship after a restart");
    let r = s
        .req(
            "DELETE",
            &format!("/api/stores/src/influx/connections/{id}"),
        )
        .key(&key)
        .send();
    assert_eq!(r.status, 200, "{}", r.text());
}
