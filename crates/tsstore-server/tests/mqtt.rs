//! MQTT connections against a real Mosquitto broker each test starts on
//! loopback: the sink (history then live, in order; across a broker
//! restart and a server restart), TLS with a private CA and a password
//! file, ingest from a topic filter (and a stop in the middle of a burst,
//! after which each message is stored once), and redaction (`mqtt_refusals.rs`
//! has the checks at create, which need no broker).

mod common;

use std::time::Duration;

use common::Server;
use common::mosquitto::{self, BrokerOptions, Mosquitto, subscriber};
use common::peer::{WAIT, get_when, insert_batch};
use serde_json::{Value, json};
use tokio::sync::mpsc;

const PASSWORD: &str = "broker-secret-0123456789";

fn create(s: &Server, key: &str, store: &str, body: Value) -> Value {
    let r = s
        .req("POST", &format!("/api/stores/{store}/mqtt/connections"))
        .key(key)
        .json(&body)
        .send();
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()
}

/// The connection's view once `done` holds.
async fn view_when(
    s: &Server,
    key: &str,
    store: &str,
    id: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let path = format!("/api/stores/{store}/mqtt/connections/{id}");
    get_when(s, key, &path, done).await
}

/// A subscribe connection of `store` made with `body`, once connected:
/// its id.
async fn subscribed(s: &Server, key: &str, store: &str, body: Value) -> String {
    let c = create(s, key, store, body);
    let id = c["id"].as_str().unwrap().to_string();
    view_when(s, key, store, &id, |v| v["status"] == "connected").await;
    id
}

/// A client publishing to the broker on `port` (`requests` queued at
/// most), and the task that runs its event loop.
fn publisher(
    name: &str,
    port: u16,
    requests: usize,
) -> (rumqttc::AsyncClient, tokio::task::JoinHandle<()>) {
    let mut o = rumqttc::MqttOptions::new(name, "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(5));
    let (client, mut events) = rumqttc::AsyncClient::new(o, requests);
    let pump = tokio::spawn(async move { while events.poll().await.is_ok() {} });
    (client, pump)
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Vec<u8>>) -> Vec<u8> {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("a message in time")
        .expect("the subscriber runs")
}

async fn next_json(rx: &mut mpsc::UnboundedReceiver<Vec<u8>>) -> Value {
    serde_json::from_slice(&next(rx).await).expect("JSON")
}

/// Receives `{"timestamp","data":{"n"}}` messages until `n == last`:
/// every n from `first`, in order; a message may come again only if it
/// came after the last one the broker acknowledged (then the sequence
/// restarts from an earlier n). Returns how many came twice.
async fn expect_sequence(
    rx: &mut mpsc::UnboundedReceiver<Vec<u8>>,
    first: i64,
    last: i64,
    mut on: impl FnMut(i64),
) -> Result<usize, String> {
    let mut expected = first;
    let mut again = 0;
    while expected <= last {
        let v = match tokio::time::timeout(WAIT, rx.recv()).await {
            Ok(Some(m)) => serde_json::from_slice::<Value>(&m).expect("JSON"),
            _ => {
                return Err(format!(
                    "record {expected} did not arrive ({again} came twice)"
                ));
            }
        };
        let n = v["data"]["n"].as_i64().unwrap_or_else(|| panic!("{v}"));
        assert!(v["timestamp"].as_i64().is_some(), "{v}");
        if n < expected {
            again += 1;
            continue;
        }
        assert_eq!(n, expected, "no record skipped");
        expected += 1;
        on(n);
    }
    Ok(again)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sink_publishes_history_then_live_records_in_order() {
    if !mosquitto::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(&dir.path().join("broker"), BrokerOptions::default());
    let (s, log) = Server::start_logged(dir.path());
    let key = s.create_store(json!({"name": "src", "num_blocks": 4096}));
    insert_batch(&s, &key, "src", 0..5000);
    insert_batch(&s, &key, "src", 5000..10000);
    let mut full = subscriber(broker.port, "test-full", "gw/full").await;
    let mut bare = subscriber(broker.port, "test-bare", "gw/bare").await;
    let url = format!("tcp://127.0.0.1:{}", broker.port);
    // Mosquitto allows anonymous clients here and ignores the password.
    let c = create(
        &s,
        &key,
        "src",
        json!({"broker_url": url, "topic": "gw/full", "from": 0,
               "username": "gw", "password": PASSWORD}),
    );
    assert_eq!(c["status"], "connecting");
    assert_eq!(
        c["client_id"],
        format!("tsstore-src-{}", c["id"].as_str().unwrap())
    );
    create(
        &s,
        &key,
        "src",
        json!({"broker_url": url, "topic": "gw/bare", "from": 0, "include_timestamp": false}),
    );
    expect_sequence(&mut full, 0, 9999, |_| {}).await.unwrap();
    for n in 0..10000 {
        assert_eq!(next_json(&mut bare).await, json!({"n": n}));
    }
    // Live records follow.
    insert_batch(&s, &key, "src", 10000..10003);
    expect_sequence(&mut full, 10000, 10002, |_| {})
        .await
        .unwrap();
    let id = c["id"].as_str().unwrap();
    let newest = s
        .req("GET", "/api/stores/src/stats")
        .key(&key)
        .send()
        .json()["newest_timestamp"]
        .clone();
    let v = view_when(&s, &key, "src", id, |v| v["last_timestamp"] == newest).await;
    assert_eq!(v["status"], "connected", "{v}");
    assert_eq!(v["messages_sent"], 10003, "{v}");
    assert_eq!(v["password"], "[redacted]", "{v}");
    let list = s
        .req("GET", "/api/stores/src/mqtt/connections")
        .key(&key)
        .send()
        .text();
    assert!(!list.contains(PASSWORD), "{list}");
    let metrics = s.req("GET", "/metrics").send().text();
    assert!(
        metrics.contains(&format!(
            "tsstore_connection_messages_sent_total{{store=\"src\",id=\"{id}\",kind=\"mqtt\",mode=\"publish\"}} 10003"
        )),
        "{metrics}"
    );
    // The file keeps the password for the restart, for the owner only.
    let file = s.data.join("src").join("mqtt_connections.json");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let r = s
        .req("DELETE", &format!("/api/stores/src/mqtt/connections/{id}"))
        .key(&key)
        .send();
    assert_eq!(r.status, 200, "{}", r.text());
    s.req("GET", &format!("/api/stores/src/mqtt/connections/{id}"))
        .key(&key)
        .send()
        .expect_error(404, "connection_not_found");
    s.stop();
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(!logged.contains(PASSWORD), "the password reached the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_mid_stream_loses_nothing() {
    if !mosquitto::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Mosquitto::start(&dir.path().join("broker"), BrokerOptions::default());
    let s = Server::start(dir.path());
    let key = s.create_store(json!({"name": "src", "num_blocks": 4096}));
    for start in (0..20000).step_by(5000) {
        insert_batch(&s, &key, "src", start..start + 5000);
    }
    let mut rx = subscriber(broker.port, "test-restart", "gw/r").await;
    let url = format!("tcp://127.0.0.1:{}", broker.port);
    let c = create(
        &s,
        &key,
        "src",
        json!({"broker_url": url, "topic": "gw/r", "from": 0, "in_flight": 20}),
    );
    let id = c["id"].as_str().unwrap().to_string();
    let mut restarted = false;
    let seq = expect_sequence(&mut rx, 0, 19999, |n| {
        if n == 3000 && !restarted {
            restarted = true;
            broker.stop();
            broker.restart();
        }
    })
    .await;
    let again = seq.unwrap_or_else(|e| {
        let v = s
            .req("GET", &format!("/api/stores/src/mqtt/connections/{id}"))
            .key(&key)
            .send()
            .text();
        panic!("{e}\n{v}\n{}", broker.log())
    });
    assert!(restarted);
    // The sink sent again only what the broker had not acknowledged: at
    // most its in-flight window (20), and the one message being handed
    // over when the connection went. (The subscriber may see more
    // twice: the broker redelivers what it had not confirmed to it.)
    let v = view_when(&s, &key, "src", &id, |v| v["status"] == "connected").await;
    let sent = v["messages_sent"].as_u64().unwrap();
    assert!(
        (20000..=20021).contains(&sent),
        "{sent} sent; {again} seen twice; {v}"
    );
    // The loss, and a failed dial if the broker was slower to come back
    // than the first backoff.
    assert!(v["errors"].as_u64() >= Some(1), "{v}");
    assert!(v["last_error"].as_str().unwrap().contains("conn"), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_resumes_a_persisted_cursor_and_a_one_shot_stays_down() {
    if !mosquitto::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(&dir.path().join("broker"), BrokerOptions::default());
    let s = Server::start(dir.path());
    let key = s.create_store(json!({"name": "src"}));
    insert_batch(&s, &key, "src", 0..100);
    let mut rx = subscriber(broker.port, "test-resume", "gw/p").await;
    let url = format!("tcp://127.0.0.1:{}", broker.port);
    let kept = create(
        &s,
        &key,
        "src",
        json!({"broker_url": url, "topic": "gw/p", "from": 0, "cursor_persist_interval": 1}),
    );
    let once = create(
        &s,
        &key,
        "src",
        json!({"broker_url": url, "topic": "gw/once", "from": -1, "cursor_persist_interval": -1}),
    );
    expect_sequence(&mut rx, 0, 99, |_| {}).await.unwrap();
    let newest = s
        .req("GET", "/api/stores/src/stats")
        .key(&key)
        .send()
        .json()["newest_timestamp"]
        .clone();
    let kept_id = kept["id"].as_str().unwrap();
    view_when(&s, &key, "src", kept_id, |v| v["last_timestamp"] == newest).await;
    let data = s.data.clone();
    s.stop();
    // The cursor was saved when the connection stopped.
    let saved = std::fs::read_to_string(data.join("src").join("mqtt_connections.json")).unwrap();
    assert!(saved.contains(&newest.to_string()), "{saved}");

    let s = Server::start(dir.path());
    insert_batch(&s, &key, "src", 100..110);
    // Resumed after the cursor: the next message is 100, not 0.
    expect_sequence(&mut rx, 100, 109, |_| {}).await.unwrap();
    let once_id = once["id"].as_str().unwrap();
    let v = s
        .req(
            "GET",
            &format!("/api/stores/src/mqtt/connections/{once_id}"),
        )
        .key(&key)
        .send()
        .json();
    assert_eq!(v["status"], "disconnected", "{v}");
    assert!(
        v["last_error"].as_str().unwrap().contains("one-shot"),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssl_with_a_private_ca_and_a_password_file() {
    if !mosquitto::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    // A self-signed certificate for localhost is the broker's and the CA.
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (ca_file, key_file) = (certs.join("ca.pem"), certs.join("key.pem"));
    let cert_file = ca_file.clone();
    std::fs::write(&ca_file, cert.cert.pem()).unwrap();
    std::fs::write(&key_file, cert.signing_key.serialize_pem()).unwrap();
    let broker = Mosquitto::start(
        &dir.path().join("broker"),
        BrokerOptions {
            tls: Some((ca_file.clone(), cert_file, key_file)),
            user: Some(("gw".into(), PASSWORD.into())),
        },
    );
    let s = Server::start(dir.path());
    let key = s.create_store(json!({"name": "src"}));
    insert_batch(&s, &key, "src", 0..10);
    let url = format!("ssl://localhost:{}", broker.port);
    // A wrong password: refused by the broker, said so in the state.
    let wrong = create(
        &s,
        &key,
        "src",
        json!({"broker_url": url, "topic": "gw/tls", "ca_file": ca_file, "username": "gw", "password": "nope"}),
    );
    let v = view_when(&s, &key, "src", wrong["id"].as_str().unwrap(), |v| {
        v["errors"].as_u64() >= Some(1)
    })
    .await;
    assert!(
        v["last_error"].as_str().unwrap().contains("cannot connect"),
        "{v}"
    );
    // The right one, with the CA: published over TLS. The subscriber in
    // this test is the broker's own log: the sink's acknowledged cursor.
    let c = create(
        &s,
        &key,
        "src",
        json!({"broker_url": url, "topic": "gw/tls", "ca_file": ca_file, "username": "gw", "password": PASSWORD}),
    );
    let newest = s
        .req("GET", "/api/stores/src/stats")
        .key(&key)
        .send()
        .json()["newest_timestamp"]
        .clone();
    let v = view_when(&s, &key, "src", c["id"].as_str().unwrap(), |v| {
        v["last_timestamp"] == newest
    })
    .await;
    assert_eq!(v["status"], "connected", "{v}");
    assert_eq!(v["messages_sent"], 10, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_stores_what_is_published_on_a_topic_filter() {
    use rumqttc::QoS;
    if !mosquitto::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(&dir.path().join("broker"), BrokerOptions::default());
    let s = Server::start(dir.path());
    let key = s.create_store(json!({"name": "in", "num_blocks": 4096}));
    let url = format!("tcp://127.0.0.1:{}", broker.port);
    let id = subscribed(
        &s,
        &key,
        "in",
        json!({"mode": "subscribe", "broker_url": url, "topic": "sensors/+/reading", "timestamp_field": "ts"}),
    )
    .await;

    // A publisher: 10 000 readings at QoS 1 on two topics the filter
    // takes, one it does not, and two payloads the store refuses.
    let (client, pump) = publisher("test-pub", broker.port, 1000);
    for n in 0..10000 {
        let topic = if n % 2 == 0 {
            "sensors/a/reading"
        } else {
            "sensors/b/reading"
        };
        client
            .publish(topic, QoS::AtLeastOnce, false, json!({"n": n}).to_string())
            .await
            .unwrap();
    }
    client
        .publish("sensors/a/other", QoS::AtLeastOnce, false, "{\"n\":-1}")
        .await
        .unwrap();
    client
        .publish("sensors/c/reading", QoS::AtLeastOnce, false, "not json")
        .await
        .unwrap();
    client
        .publish(
            "sensors/c/reading",
            QoS::AtLeastOnce,
            false,
            json!({"n": 10000, "ts": 5}).to_string(),
        )
        .await
        .unwrap();
    let v = view_when(&s, &key, "in", &id, |v| {
        v["messages_received"].as_u64().unwrap_or(0) + v["errors"].as_u64().unwrap_or(0) >= 10002
    })
    .await;
    assert_eq!(v["messages_received"], 10000, "{v}");
    assert_eq!(v["errors"], 2, "{v}");
    // All stored, in arrival (publish) order, at increasing timestamps.
    let all = s
        .req("GET", "/api/stores/in/data/oldest?limit=10000")
        .key(&key)
        .send()
        .json();
    let ns: Vec<i64> = all["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["data"]["n"].as_i64().unwrap())
        .collect();
    assert_eq!(ns, (0..10000).collect::<Vec<_>>());

    // `timestamp_field`: a reading's own time, when it is after the newest.
    let newest = s.req("GET", "/api/stores/in/stats").key(&key).send().json()["newest_timestamp"]
        .as_i64()
        .unwrap();
    let at = newest + 1_000_000;
    client
        .publish(
            "sensors/a/reading",
            QoS::AtLeastOnce,
            false,
            json!({"n": 10001, "ts": at}).to_string(),
        )
        .await
        .unwrap();
    view_when(&s, &key, "in", &id, |v| v["messages_received"] == 10001).await;
    let got = s
        .req("GET", &format!("/api/stores/in/data/time/{at}"))
        .key(&key)
        .send();
    assert_eq!(got.status, 200, "{}", got.text());

    // Published while the server is down: stored once it is back (the
    // broker kept them for the persistent session).
    s.stop();
    for n in 20000..20010 {
        client
            .publish(
                "sensors/a/reading",
                QoS::AtLeastOnce,
                false,
                json!({"n": n}).to_string(),
            )
            .await
            .unwrap();
    }
    let s = Server::start(dir.path());
    view_when(&s, &key, "in", &id, |v| v["messages_received"] == 10).await;
    let last = s
        .req("GET", "/api/stores/in/data/newest?limit=10")
        .key(&key)
        .send()
        .json();
    let mut ns: Vec<i64> = last["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["data"]["n"].as_i64().unwrap())
        .collect();
    ns.reverse();
    assert_eq!(ns, (20000..20010).collect::<Vec<_>>());
    pump.abort();
}

/// A server stopped in the middle of a burst hands the broker the
/// acknowledgement of every message it stored before it goes, so that
/// after the restart each message is stored exactly once: the broker
/// sends again only what was not stored. (Before, acknowledgements still
/// queued died with the session, and their messages were stored twice.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_in_the_middle_of_a_burst_stores_each_message_once() {
    use rumqttc::QoS;
    if !mosquitto::available() {
        return;
    }
    const N: i64 = 3000;
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(&dir.path().join("broker"), BrokerOptions::default());
    let s = Server::start(dir.path());
    let key = s.create_store(json!({"name": "in", "num_blocks": 4096}));
    let url = format!("tcp://127.0.0.1:{}", broker.port);
    let id = subscribed(
        &s,
        &key,
        "in",
        json!({"mode": "subscribe", "broker_url": url, "topic": "burst"}),
    )
    .await;
    let (client, pump) = publisher("test-burst-pub", broker.port, 1000);
    for n in 0..N {
        client
            .publish(
                "burst",
                QoS::AtLeastOnce,
                false,
                json!({"n": n}).to_string(),
            )
            .await
            .unwrap();
    }
    // Stopped while it stores the burst (what it has not stored yet, the
    // broker keeps for the session).
    view_when(&s, &key, "in", &id, |v| {
        v["messages_received"].as_u64() > Some(0)
    })
    .await;
    s.stop();
    let s = Server::start(dir.path());
    let distinct = |v: &Value| {
        let mut ns: Vec<i64> = (v["objects"].as_array().into_iter().flatten())
            .filter_map(|o| o["data"]["n"].as_i64())
            .collect();
        ns.sort_unstable();
        ns.dedup();
        ns.len() as i64
    };
    let path = format!("/api/stores/in/data/oldest?limit={}", 2 * N);
    // Everything once the last message is in: what the broker sends again
    // comes first in a session.
    let all = get_when(&s, &key, &path, |v| distinct(v) == N).await;
    let ns: Vec<i64> = all["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["data"]["n"].as_i64().unwrap())
        .collect();
    assert_eq!(
        ns,
        (0..N).collect::<Vec<_>>(),
        "each message stored once, in order"
    );
    pump.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_stores_and_aggregation_over_mqtt() {
    use rumqttc::QoS;
    if !mosquitto::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(&dir.path().join("broker"), BrokerOptions::default());
    let s = Server::start(dir.path());
    let url = format!("tcp://127.0.0.1:{}", broker.port);

    // Ingest into a schema store: compacted on the way in, expanded out.
    let key = s.create_store(json!({"name": "sch", "data_type": "schema"}));
    let fields = json!([{"index": 1, "name": "temp", "type": "float64"},
        {"index": 2, "name": "room", "type": "string"}]);
    let r = s
        .req("PUT", "/api/stores/sch/schema")
        .key(&key)
        .json(&json!({"fields": fields}))
        .send();
    assert_eq!(r.status, 200, "{}", r.text());
    let id = subscribed(
        &s,
        &key,
        "sch",
        json!({"mode": "subscribe", "broker_url": url, "topic": "s/#"}),
    )
    .await;
    let (client, pump) = publisher("test-schema-pub", broker.port, 10);
    for body in [r#"{"temp":21.5,"room":"hall"}"#, r#"{"temp":"warm"}"#] {
        client
            .publish("s/1", QoS::AtLeastOnce, false, body)
            .await
            .unwrap();
    }
    let v = view_when(&s, &key, "sch", &id, |v| {
        v["messages_received"] == 1 && v["errors"] == 1
    })
    .await;
    assert!(v["last_error"].as_str().unwrap().contains("temp"), "{v}");
    let got = s
        .req("GET", "/api/stores/sch/data/newest")
        .key(&key)
        .send()
        .json();
    assert_eq!(
        got["objects"][0]["data"],
        json!({"temp": 21.5, "room": "hall"})
    );
    pump.abort();

    // A sink with aggregation: hour windows, closed by time.
    let key = s.create_store(json!({"name": "agg"}));
    let batch = json!([
        {"timestamp": 1_000, "data": {"n": 1}},
        {"timestamp": 2_000, "data": {"n": 5}},
        {"timestamp": 3_600_000_000_000i64, "data": {"n": 7}},
    ]);
    let r = s
        .req("POST", "/api/stores/agg/data/batch")
        .key(&key)
        .json(&batch)
        .send();
    assert_eq!(r.status, 201, "{}", r.text());
    let mut rx = subscriber(broker.port, "test-agg", "gw/agg").await;
    create(
        &s,
        &key,
        "agg",
        json!({"broker_url": url, "topic": "gw/agg", "agg_window": "1h", "agg_fields": "n:max"}),
    );
    let first = next_json(&mut rx).await;
    assert_eq!(first["timestamp"], 3_600_000_000_000i64, "{first}");
    assert_eq!(
        (first["records"].clone(), first["data"].clone()),
        (json!(2), json!({"n": 5}))
    );
    let second = next_json(&mut rx).await;
    assert_eq!(second["data"], json!({"n": 7}), "{second}");
}
