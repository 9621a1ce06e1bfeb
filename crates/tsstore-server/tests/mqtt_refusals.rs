//! Creating an MQTT connection checks everything before anything is
//! stored: each refusal says why, and leaves no connection and no
//! connection file. No broker is needed: nothing is dialled.

mod common;

use common::Server;
use serde_json::json;

#[test]
fn creating_checks_everything_and_stores_nothing_on_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let key = s.create_store(json!({"name": "v"}));
    let cases = [
        (json!({"broker_url": "http://h", "topic": "t"}), "scheme"),
        (
            json!({"broker_url": "tcp://h", "topic": "a/+"}),
            "wildcards",
        ),
        (
            json!({"mode": "subscribe", "broker_url": "tcp://h", "topic": "a/#/b"}),
            "last",
        ),
        (
            json!({"broker_url": "tcp://h", "topic": "t", "from": "soon"}),
            "from",
        ),
        (
            json!({"broker_url": "tcp://h", "topic": "t", "cursor_persist_interval": -3}),
            "cursor_persist_interval",
        ),
        (
            json!({"mode": "both", "broker_url": "tcp://h", "topic": "t"}),
            "both",
        ),
    ];
    for (body, word) in cases {
        let r = s
            .req("POST", "/api/stores/v/mqtt/connections")
            .key(&key)
            .json(&body)
            .send();
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        let e = r.json();
        assert!(e["error"].as_str().unwrap().contains(word), "{body}: {e}");
    }
    s.req("POST", "/api/stores/v/mqtt/connections")
        .key(&key)
        .json(&json!({"broker_url": "tcp://h", "topic": "t", "agg_window": "soon"}))
        .send()
        .expect_error(400, "invalid_aggregation");
    let list = s
        .req("GET", "/api/stores/v/mqtt/connections")
        .key(&key)
        .send()
        .json();
    assert_eq!(list["count"], 0);
    assert!(!s.data.join("v").join("mqtt_connections.json").exists());
}
