//! The REST API as a client sees it, against the real binary: every
//! endpoint's happy path and response shape, for each data type
//! (`http_refusals.rs` has the errors, the auth matrix and the OpenAPI
//! document).

mod common;

use common::{ADMIN, Server, objects, timestamps};
use serde_json::{Value, json};

#[test]
fn json_store_endpoints_and_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());

    let health = s.get("/health").json();
    assert_eq!(health["status"], "ok");

    let r = s
        .req("POST", "/api/stores")
        .header("X-Admin-Key", ADMIN)
        .json(&json!({"name": "env", "num_blocks": 16, "data_block_size": 512}))
        .send();
    assert_eq!(r.status, 201, "{}", r.text());
    let created = r.json();
    let key = created["api_key"].as_str().unwrap().to_string();
    assert_eq!(created["name"], "env");
    assert!(key.starts_with("tsstore_") && key.len() == 44, "{key}");
    assert_eq!(created["key_id"].as_str().unwrap(), &key[8..16]);
    let keys_file = std::fs::read_to_string(s.data.join("env/keys.json")).unwrap();
    assert!(!keys_file.contains(&key[8..]), "only the hash is kept");

    let listed = s.get("/api/stores").json();
    assert_eq!(
        listed,
        json!({"stores": [{"name": "env", "data_type": "json", "encoding": "raw", "num_blocks": 16,
            "data_block_size": 512, "index_block_size": 4096}], "count": 1})
    );

    // Inserts: explicit timestamps, then "now".
    for (ts, t) in [(1_000, 20.5), (2_000, 21.0), (3_000, 22.5)] {
        let r = s
            .req("POST", "/api/stores/env/data")
            .key(&key)
            .json(&json!({"timestamp": ts, "data": {"t": t, "room": "a"}}))
            .send();
        assert_eq!(r.status, 201, "{}", r.text());
        let v = r.json();
        assert_eq!(v["timestamp"], ts);
        assert!(
            v["block_num"].is_u64() && v["size"].as_u64().unwrap() > 0,
            "{v}"
        );
        assert_eq!(v.as_object().unwrap().len(), 3, "{v}");
    }
    let r = s
        .req("POST", "/api/stores/env/data")
        .key(&key)
        .json(&json!({"data": [1, "two", null]}))
        .send();
    assert_eq!(r.status, 201);
    let now_ts = r.json()["timestamp"].as_i64().unwrap();
    assert!(now_ts > 1_700_000_000_000_000_000);

    let one = s
        .req("GET", "/api/stores/env/data/time/2000")
        .key(&key)
        .send();
    assert_eq!(one.status, 200);
    let v = one.json();
    assert_eq!(v["data"], json!({"t": 21.0, "room": "a"}));
    assert_eq!(
        v.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["block_num", "data", "size", "timestamp"]
    );

    // Lists: defaults (oldest/newest with data, range without).
    let oldest = s
        .req("GET", "/api/stores/env/data/oldest?limit=2")
        .key(&key)
        .send()
        .json();
    assert_eq!(timestamps(&oldest), [1_000, 2_000]);
    assert_eq!(objects(&oldest)[0]["data"]["t"], 20.5);
    let newest = s
        .req("GET", "/api/stores/env/data/newest")
        .key(&key)
        .send()
        .json();
    assert_eq!(timestamps(&newest), [now_ts, 3_000, 2_000, 1_000]);
    assert_eq!(objects(&newest)[0]["data"], json!([1, "two", null]));
    let range = s
        .req(
            "GET",
            "/api/stores/env/data/range?start_time=1500&end_time=3000",
        )
        .key(&key)
        .send()
        .json();
    assert_eq!(timestamps(&range), [2_000, 3_000]);
    assert!(
        objects(&range)[0].get("data").is_none(),
        "range omits data by default"
    );
    let after = s
        .req(
            "GET",
            "/api/stores/env/data/range?after=2000&include_data=true&limit=1",
        )
        .key(&key)
        .send()
        .json();
    assert_eq!(timestamps(&after), [3_000]);
    assert_eq!(objects(&after)[0]["data"]["t"], 22.5);
    let since = s
        .req("GET", "/api/stores/env/data/range?since=1h")
        .key(&key)
        .send()
        .json();
    assert_eq!(timestamps(&since), [now_ts]);
    let filtered = s
        .req(
            "GET",
            "/api/stores/env/data/oldest?filter=TWO&filter_ignore_case=true",
        )
        .key(&key)
        .send()
        .json();
    assert_eq!(timestamps(&filtered), [now_ts]);

    // Aggregation over the three readings: 1 µs windows put each alone.
    let agg = s
        .req("GET", "/api/stores/env/data/range?start_time=1&end_time=2999&agg_window=1h&agg_fields=t:avg%2Bmax")
        .key(&key)
        .send();
    assert_eq!(agg.status, 200, "{}", agg.text());
    let agg = agg.json();
    let windows = objects(&agg);
    assert_eq!(windows.len(), 1);
    assert_eq!(windows[0]["data"]["t_avg"], 20.75);
    assert_eq!(windows[0]["data"]["t_max"], 21.0);
    assert_eq!(windows[0]["records"], 2);
    assert_eq!(windows[0]["partial"], true, "the range cuts the window");
    let compact = s
        .req("GET", "/api/stores/env/data/range?end_time=3000&agg_window=1h&agg_fields=t:max&format=compact")
        .key(&key)
        .send()
        .json();
    let list = compact["objects"].as_array().unwrap();
    // Non-numeric fields take their last value.
    assert_eq!(list[0], json!({"_schema": {"1": "room", "2": "t"}}));
    assert_eq!(list[1]["data"], json!({"1": "a", "2": 22.5}));
    assert_eq!(compact["count"], 1);
    let newest_agg = s
        .req(
            "GET",
            "/api/stores/env/data/newest?agg_window=1s&agg_fields=t:sum&limit=1",
        )
        .key(&key)
        .send()
        .json();
    assert_eq!(newest_agg["count"], 1, "{newest_agg}");

    // Soft delete of one record keeps its neighbours.
    let del = s
        .req("DELETE", "/api/stores/env/data/time/2000")
        .key(&key)
        .send();
    assert_eq!(del.status, 200, "{}", del.text());
    s.req("GET", "/api/stores/env/data/time/2000")
        .key(&key)
        .send()
        .expect_error(404, "not_found");
    let left = s
        .req("GET", "/api/stores/env/data/oldest")
        .key(&key)
        .send()
        .json();
    assert_eq!(timestamps(&left), [1_000, 3_000, now_ts]);

    // Batch: JSON array and NDJSON.
    let r = s
        .req("POST", "/api/stores/env/data/batch")
        .key(&key)
        .json(&json!([{"data": 1}, {"data": {"x": 2}}, {"timestamp": 0, "data": "s"}]))
        .send();
    assert_eq!(r.status, 201, "{}", r.text());
    let b = r.json();
    assert_eq!(b["count"], 3);
    assert!(b["first_timestamp"].as_i64().unwrap() < b["last_timestamp"].as_i64().unwrap());
    let last = b["last_timestamp"].as_i64().unwrap();
    let nd = format!(
        "{{\"timestamp\":{},\"data\":1}}\n\n{{\"timestamp\":{},\"data\":2}}\n",
        last + 1,
        last + 2
    );
    let r = s
        .req("POST", "/api/stores/env/data/batch")
        .key(&key)
        .body("application/x-ndjson", nd)
        .send();
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["last_timestamp"], last + 2);

    let stats = s
        .req("GET", "/api/stores/env/stats")
        .key(&key)
        .send()
        .json();
    assert_eq!(stats["name"], "env");
    assert_eq!(stats["num_blocks"], 16);
    assert_eq!(stats["data_type"], "json");
    assert_eq!(stats["object_count"], 8);
    assert_eq!(stats["oldest_timestamp"], 1_000);
    assert_eq!(stats["newest_timestamp"], last + 2);
    for field in [
        "head_block",
        "tail_block",
        "write_offset",
        "active_blocks",
        "bytes_used",
        "capacity_bytes",
        "oldest_time",
        "newest_time",
        "index_block_size",
        "data_block_size",
    ] {
        assert!(stats.get(field).is_some(), "stats.{field}: {stats}");
    }

    let metrics = s.get("/metrics");
    assert_eq!(metrics.status, 200);
    let text = metrics.text();
    assert!(
        text.contains("tsstore_store_inserts_total{store=\"env\"} 9"),
        "{text}"
    );
    assert!(
        text.contains("tsstore_store_fill_ratio{store=\"env\"}"),
        "{text}"
    );
    assert!(
        text.contains("tsstore_store_retention_seconds{store=\"env\"}"),
        "{text}"
    );
    assert!(
        text.contains(
            "tsstore_http_request_duration_seconds_count{route=\"/api/stores/{store}/data\"} 4"
        ),
        "{text}"
    );

    let reset = s.req("POST", "/api/stores/env/reset").key(&key).send();
    assert_eq!(reset.status, 200);
    let empty = s
        .req("GET", "/api/stores/env/data/newest")
        .key(&key)
        .send()
        .json();
    assert_eq!(empty, json!({"objects": [], "count": 0}));

    let gone = s.req("DELETE", "/api/stores/env").key(&key).send();
    assert_eq!(gone.status, 200, "{}", gone.text());
    assert!(!s.data.join("env").exists());
    s.req("GET", "/api/stores/env/stats")
        .key(&key)
        .send()
        .expect_error(401, "invalid_api_key");
    assert_eq!(s.get("/api/stores").json()["count"], 0);
}

#[test]
fn text_binary_and_schema_stores() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());

    let text = s.create_store(json!({"name": "log", "data_type": "text"}));
    let r = s
        .req("POST", "/api/stores/log/data?timestamp=10")
        .key(&text)
        .body("text/plain; charset=utf-8", "héllo \"world\"")
        .send();
    assert_eq!(r.status, 201, "{}", r.text());
    let r = s
        .req("POST", "/api/stores/log/data")
        .key(&text)
        .json(&json!({"timestamp": 20, "data": "second"}))
        .send();
    assert_eq!(r.status, 201, "{}", r.text());
    let v = s
        .req("GET", "/api/stores/log/data/oldest")
        .key(&text)
        .send()
        .json();
    let data: Vec<&Value> = objects(&v).iter().map(|o| &o["data"]).collect();
    assert_eq!(data, [&json!("héllo \"world\""), &json!("second")]);

    let bin = s.create_store(json!({"name": "blob", "data_type": "binary"}));
    let r = s
        .req("POST", "/api/stores/blob/data?timestamp=5")
        .key(&bin)
        .body("application/octet-stream", vec![0u8, 1, 254, 255])
        .send();
    assert_eq!(r.status, 201, "{}", r.text());
    let r = s
        .req("POST", "/api/stores/blob/data")
        .key(&bin)
        .json(&json!({"timestamp": 6, "data": "aGk="}))
        .send();
    assert_eq!(r.status, 201, "{}", r.text());
    let v = s
        .req("GET", "/api/stores/blob/data/oldest")
        .key(&bin)
        .send()
        .json();
    let data: Vec<&Value> = objects(&v).iter().map(|o| &o["data"]).collect();
    assert_eq!(data, [&json!("AAH+/w=="), &json!("aGk=")]);
    s.req("GET", "/api/stores/blob/data/newest?agg_window=1m")
        .key(&bin)
        .send()
        .expect_error(400, "aggregation_unsupported");

    let sch = s.create_store(json!({"name": "metrics", "data_type": "schema"}));
    let v = s
        .req("GET", "/api/stores/metrics/schema")
        .key(&sch)
        .send()
        .json();
    assert_eq!(v, json!({"version": 0, "fields": []}));
    s.req("POST", "/api/stores/metrics/data")
        .key(&sch)
        .json(&json!({"data": {"temp": 1}}))
        .send()
        .expect_error(409, "no_schema");
    let fields = json!([{"index": 1, "name": "temp", "type": "float64"},
        {"index": 2, "name": "room", "type": "string"}]);
    let r = s
        .req("PUT", "/api/stores/metrics/schema")
        .key(&sch)
        .json(&json!({"fields": fields}))
        .send();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"version": 1, "fields": fields}));
    s.req("PUT", "/api/stores/metrics/schema")
        .key(&sch)
        .json(&json!({"fields": [{"index": 1, "name": "temp", "type": "int8"}]}))
        .send()
        .expect_error(409, "schema_conflict");
    for (ts, temp) in [(100, 20.0), (200, 22.0)] {
        let r = s
            .req("POST", "/api/stores/metrics/data")
            .key(&sch)
            .json(&json!({"timestamp": ts, "data": {"temp": temp, "room": "kitchen"}}))
            .send();
        assert_eq!(r.status, 201, "{}", r.text());
    }
    s.req("POST", "/api/stores/metrics/data")
        .key(&sch)
        .json(&json!({"data": {"temp": "hot"}}))
        .send()
        .expect_error(400, "schema_violation");
    let full = s
        .req("GET", "/api/stores/metrics/data/oldest")
        .key(&sch)
        .send()
        .json();
    assert_eq!(
        objects(&full)[0]["data"],
        json!({"temp": 20.0, "room": "kitchen"})
    );
    let compact = s
        .req(
            "GET",
            "/api/stores/metrics/data/oldest?format=compact&filter=kitchen",
        )
        .key(&sch)
        .send()
        .json();
    assert_eq!(
        objects(&compact)[1]["data"],
        json!({"1": 22.0, "2": "kitchen"})
    );
    let one = s
        .req("GET", "/api/stores/metrics/data/time/200?format=compact")
        .key(&sch)
        .send()
        .json();
    assert_eq!(one["data"], json!({"1": 22.0, "2": "kitchen"}));
    let agg = s
        .req("GET", "/api/stores/metrics/data/range?start_time=60000000000&end_time=119999999999&agg_window=1m")
        .key(&sch)
        .send()
        .json();
    assert_eq!(agg["count"], 0);
    let agg = s
        .req(
            "GET",
            "/api/stores/metrics/data/range?end_time=59999999999&agg_window=1m&agg_default=avg,max",
        )
        .key(&sch)
        .send()
        .json();
    assert_eq!(objects(&agg)[0]["data"]["temp_avg"], 21.0);
    assert_eq!(objects(&agg)[0]["data"]["room"], "kitchen");
    assert_eq!(objects(&agg)[0]["partial"], false);
}
