//! A compressed store over the REST API: created with `"encoding":
//! "compressed"`, filled until it wraps, read back exactly (the newest
//! readings, contiguous, each as written), and the same after a restart.
//! Its stats, the store list and `/metrics` say what it is and what its
//! frames keep.

mod common;

use common::{ADMIN, Server, objects, timestamps};
use serde_json::{Value, json};

const READINGS: i64 = 30_000;

fn reading(i: i64) -> Value {
    json!({"t": 20.0 + (i % 70) as f64 / 10.0, "rh": 40 + i % 13, "room": "lab"})
}

/// Every record, oldest first, paged with `after`.
fn read_all(s: &Server, key: &str) -> Vec<(i64, Value)> {
    let mut out = Vec::new();
    let mut after = 0i64;
    loop {
        let r = s
            .req(
                "GET",
                &format!("/api/stores/c/data/range?after={after}&include_data=true&limit=1000"),
            )
            .key(key)
            .send();
        assert_eq!(r.status, 200, "{}", r.text());
        let page = r.json();
        let got = objects(&page);
        if got.is_empty() {
            return out;
        }
        for o in got {
            out.push((o["timestamp"].as_i64().unwrap(), o["data"].clone()));
        }
        after = out.last().unwrap().0;
    }
}

fn check_kept(kept: &[(i64, Value)]) {
    assert!(
        !kept.is_empty() && (kept.len() as i64) < READINGS,
        "the store wrapped and kept {} of {READINGS}",
        kept.len()
    );
    let first = kept[0].0;
    for (k, (ts, data)) in kept.iter().enumerate() {
        let i = first / 1_000_000 + k as i64;
        assert_eq!(*ts, i * 1_000_000, "the newest readings, contiguous");
        assert_eq!(data, &reading(i), "reading {i} as written");
    }
    assert_eq!(
        kept.last().unwrap().0,
        READINGS * 1_000_000,
        "the newest is kept"
    );
}

#[test]
fn a_compressed_store_wraps_reads_back_exactly_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let key = s.create_store(json!({"name": "c", "encoding": "compressed",
        "num_blocks": 48, "data_block_size": 1024}));
    let bad = s
        .req("POST", "/api/stores")
        .header("X-Admin-Key", ADMIN)
        .json(&json!({"name": "d", "encoding": "zip"}))
        .send();
    bad.expect_error(400, "invalid_config");
    assert!(bad.text().contains("raw or compressed"), "{}", bad.text());

    for chunk in (1..=READINGS).collect::<Vec<_>>().chunks(2_000) {
        let body: String = chunk
            .iter()
            .map(|i| {
                format!(
                    "{}\n",
                    json!({"timestamp": i * 1_000_000, "data": reading(*i)})
                )
            })
            .collect();
        let r = s
            .req("POST", "/api/stores/c/data/batch")
            .key(&key)
            .body("application/x-ndjson", body)
            .send();
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let kept = read_all(&s, &key);
    check_kept(&kept);

    // One reading by time, the newest ones, a window inside frames.
    let mid = kept[kept.len() / 2].0;
    let r = s
        .req("GET", &format!("/api/stores/c/data/time/{mid}"))
        .key(&key)
        .send();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"], reading(mid / 1_000_000));
    let newest = s
        .req("GET", "/api/stores/c/data/newest?limit=3")
        .key(&key)
        .send()
        .json();
    assert_eq!(
        timestamps(&newest),
        [READINGS, READINGS - 1, READINGS - 2].map(|i| i * 1_000_000)
    );

    let stats = s.req("GET", "/api/stores/c/stats").key(&key).send().json();
    assert_eq!(stats["encoding"], "compressed");
    assert_eq!(stats["num_blocks"], 48);
    assert_eq!(stats["staging_blocks"], 9, "a fifth of the store");
    let ratio = stats["compression"]["ratio"].as_f64().unwrap();
    assert!(ratio > 3.0, "{stats}");
    assert!(stats["compression"]["readings_per_mib"].as_f64().unwrap() > 0.0);
    let listed = s.get("/api/stores").json();
    assert_eq!(listed["stores"][0]["encoding"], "compressed", "{listed}");
    let metrics = s.get("/metrics").text();
    assert!(
        metrics.contains("tsstore_store_compression_ratio{store=\"c\"}"),
        "{metrics}"
    );
    s.stop();

    let s = Server::start(dir.path());
    let again = read_all(&s, &key);
    assert_eq!(again, kept, "the same readings after a restart");
    // And it takes more.
    let r = s
        .req("POST", "/api/stores/c/data")
        .key(&key)
        .json(&json!({"timestamp": (READINGS + 1) * 1_000_000, "data": reading(READINGS + 1)}))
        .send();
    assert_eq!(r.status, 201, "{}", r.text());
    s.stop();
}
