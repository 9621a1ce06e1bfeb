//! Rollups over REST against the real binary: made with the store or
//! added later, `resolution=` on newest and range (a rollup answers with
//! the windows a windowed aggregation gives), `auto` choosing the ring at
//! the edges of its budget, the join of rows with the open window, and
//! bad values refused without changing anything.

mod common;

use std::time::{Duration, Instant};

use common::{ADMIN, Server, cli_fails, cli_ok, objects, timestamps};
use serde_json::{Value, json};

const S: i64 = 1_000_000_000;
const MIN: i64 = 60 * S;
const HOUR: i64 = 60 * MIN;
/// 2025-01-01T00:00:00Z.
const T0: i64 = 1_735_689_600 * S;

/// Records every 10 s from `T0` for `hours` hours, plus one at the end
/// that closes the last hour.
fn fill(s: &Server, key: &str, hours: i64) -> i64 {
    let mut batch = Vec::new();
    let mut n = 0;
    for i in 0..hours * 360 {
        let t = T0 + i * 10 * S;
        batch
            .push(json!({"timestamp": t, "data": {"t": 20 + (i % 7), "h": (i % 50) as f64 / 4.0}}));
        n += 1;
    }
    batch.push(json!({"timestamp": T0 + hours * HOUR, "data": {"t": 0, "h": 0.0}}));
    for chunk in batch.chunks(500) {
        let r = s
            .req("POST", "/api/stores/w/data/batch")
            .key(key)
            .json(&Value::from(chunk.to_vec()))
            .send();
        assert_eq!(r.status, 201, "{}", r.text());
    }
    n + 1
}

fn get(s: &Server, key: &str, path: &str) -> Value {
    let r = s.req("GET", path).key(key).send();
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    r.json()
}

/// Waits until every rollup has written the windows up to `to`.
fn written(s: &Server, key: &str, to: i64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let list = get(s, key, "/api/stores/w/rollups");
        let done = list["rollups"].as_array().unwrap().iter().all(|r| {
            let w = r["window_ns"].as_i64().unwrap();
            r["written_to"].as_i64() == Some(to - to.rem_euclid(w))
        });
        if done {
            return list;
        }
        assert!(Instant::now() < deadline, "rollups not written: {list}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn start_with_rollups() -> (tempfile::TempDir, Server, String) {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let key = s.create_store(json!({
        "name": "w", "num_blocks": 256,
        "rollups": [
            {"window": "1m"},
            {"window": "1h", "functions": ["avg", "max", "count"], "keep": "30d"},
        ],
    }));
    (dir, s, key)
}

#[test]
fn a_rollup_answers_what_the_windowed_aggregation_answers() {
    let (_dir, s, key) = start_with_rollups();
    fill(&s, &key, 3);
    let list = written(&s, &key, T0 + 3 * HOUR);
    let hourly = &list["rollups"][1];
    assert_eq!(hourly["window"], "1h");
    assert_eq!(hourly["functions"], json!(["avg", "max", "count"]));
    assert_eq!(hourly["newest_timestamp"], T0 + 3 * HOUR);
    assert_eq!(hourly["only_copy"], false);
    assert!(
        hourly["capacity_bytes"].as_u64().unwrap() >= 4 * 4096,
        "{hourly}"
    );

    let (from, to) = (T0, T0 + 3 * HOUR - 1);
    let rolled = get(
        &s,
        &key,
        &format!("/api/stores/w/data/range?start_time={from}&end_time={to}&resolution=1h"),
    );
    let aggregated = get(
        &s,
        &key,
        &format!(
            "/api/stores/w/data/range?start_time={from}&end_time={to}&agg_window=1h&agg_default=avg,max,count"
        ),
    );
    assert_eq!(rolled["resolution"], "1h");
    assert_eq!(rolled["objects"], aggregated["objects"]);
    assert_eq!(timestamps(&rolled), [1, 2, 3].map(|h| T0 + h * HOUR));
    assert_eq!(objects(&rolled)[0]["records"], 360);

    let minutes = get(
        &s,
        &key,
        &format!(
            "/api/stores/w/data/range?start_time={from}&end_time={to}&resolution=1m&limit=1000"
        ),
    );
    let by_minute = get(
        &s,
        &key,
        &format!(
            "/api/stores/w/data/range?start_time={from}&end_time={to}&agg_window=1m&agg_default=avg,min,max,count&limit=1000"
        ),
    );
    assert_eq!(objects(&minutes).len(), 180);
    assert_eq!(minutes["objects"], by_minute["objects"]);

    // The newest windows: the open one (from raw, partial) first, then rows.
    let newest = get(&s, &key, "/api/stores/w/data/newest?resolution=1h&limit=2");
    assert_eq!(timestamps(&newest), [T0 + 4 * HOUR, T0 + 3 * HOUR]);
    assert_eq!(objects(&newest)[0]["partial"], true);
    assert_eq!(objects(&newest)[0]["records"], 1);
    assert_eq!(objects(&newest)[1]["data"], objects(&rolled)[2]["data"]);

    // `raw` says so, and without `resolution` the body is as it was.
    let raw = get(&s, &key, "/api/stores/w/data/newest?resolution=raw&limit=1");
    assert_eq!(raw["resolution"], "raw");
    let plain = get(&s, &key, "/api/stores/w/data/newest?limit=1");
    assert!(plain.get("resolution").is_none(), "{plain}");

    let stats = get(&s, &key, "/api/stores/w/stats");
    assert_eq!(stats["rollups"].as_array().unwrap().len(), 2, "{stats}");
}

#[test]
fn auto_picks_the_finest_ring_within_the_budget() {
    let (_dir, s, key) = start_with_rollups();
    let records = fill(&s, &key, 3);
    written(&s, &key, T0 + 3 * HOUR);
    let auto = |from: i64, to: i64, points: i64| {
        let v = get(
            &s,
            &key,
            &format!(
                "/api/stores/w/data/range?start_time={from}&end_time={to}&resolution=auto&max_points={points}"
            ),
        );
        (
            v["resolution"].as_str().unwrap().to_string(),
            objects(&v).len(),
        )
    };
    let (from, to) = (T0, T0 + 3 * HOUR);
    // Raw has exactly `records` in the span: that many points fit.
    assert_eq!(auto(from, to, records), ("raw".into(), records as usize));
    // One fewer: minutes (181 windows overlap the span) ...
    assert_eq!(auto(from, to, records - 1), ("1m".into(), 181));
    assert_eq!(auto(from, to, 181), ("1m".into(), 181));
    // ... until they do not fit either: hours.
    assert_eq!(auto(from, to, 180), ("1h".into(), 4));
    // Nothing fits: the coarsest ring that reaches back.
    assert_eq!(auto(from, to, 1), ("1h".into(), 1));
    // A short span: raw.
    assert_eq!(auto(from, from + MIN - 1, 10), ("raw".into(), 6));
    // The default budget is 1 000 points, and the list's length.
    let v = get(&s, &key, "/api/stores/w/data/range?resolution=auto");
    assert_eq!(v["resolution"], "1m");
    // newest takes it too; with nothing in its span, raw answers.
    let v = get(
        &s,
        &key,
        "/api/stores/w/data/newest?resolution=auto&max_points=5",
    );
    assert_eq!(
        (v["resolution"].as_str(), objects(&v).len()),
        (Some("1h"), 4)
    );
    let v = get(
        &s,
        &key,
        "/api/stores/w/data/newest?resolution=auto&since=10m",
    );
    assert_eq!(
        (v["resolution"].as_str(), objects(&v).len()),
        (Some("raw"), 0)
    );
}

#[test]
fn added_later_a_rollup_covers_what_the_store_holds() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let key = s.create_store(json!({"name": "w", "num_blocks": 256}));
    fill(&s, &key, 2);
    let r = s
        .req("POST", "/api/stores/w/rollups")
        .header("X-Admin-Key", ADMIN)
        .json(&json!({"window": "30m", "num_blocks": 8}))
        .send();
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["num_blocks"], 8);
    written(&s, &key, T0 + 2 * HOUR);
    let v = get(
        &s,
        &key,
        "/api/stores/w/data/range?resolution=30m&end_time=1",
    );
    assert_eq!(v["count"], 0);
    let v = get(&s, &key, "/api/stores/w/data/range?resolution=30m");
    assert_eq!(timestamps(&v).len(), 5, "{v}");
    // Removed: its ring goes, and reads at it are refused.
    let r = s
        .req("DELETE", "/api/stores/w/rollups/30m")
        .header("X-Admin-Key", ADMIN)
        .send();
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!s.data.join("w/rollups/30m").exists());
    s.req("GET", "/api/stores/w/data/range?resolution=30m")
        .key(&key)
        .send()
        .expect_error(404, "rollup_not_found");
}

/// `only_copy` is said once raw dropped records of a rollup's oldest
/// window, not merely because raw's first record came mid-window.
#[test]
fn only_copy_says_when_raw_dropped_the_oldest_windows() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let key = s.create_store(json!({"name": "w", "num_blocks": 16, "rollups": [{"window": "1m"}]}));
    let early = T0 - HOUR;
    let r = s
        .req("POST", "/api/stores/w/data/batch")
        .key(&key)
        .json(&json!([
            {"timestamp": early + 30 * S, "data": {"t": 1}},
            {"timestamp": early + 90 * S, "data": {"t": 2}},
        ]))
        .send();
    assert_eq!(r.status, 201, "{}", r.text());
    let list = written(&s, &key, early + 90 * S);
    assert_eq!(list["rollups"][0]["only_copy"], false, "{list}");
    // Six hours of records every 10 s: raw (16 blocks) wraps.
    fill(&s, &key, 6);
    let list = written(&s, &key, T0 + 6 * HOUR);
    assert_eq!(list["rollups"][0]["only_copy"], true, "{list}");
}

#[test]
fn bad_values_are_refused_and_change_nothing() {
    let (_dir, s, key) = start_with_rollups();
    fill(&s, &key, 1);
    let refused = |path: &str, status: u16, code: &str| {
        s.req("GET", path)
            .key(&key)
            .send()
            .expect_error(status, code);
    };
    refused(
        "/api/stores/w/data/range?resolution=hourly",
        400,
        "invalid_parameter",
    );
    refused(
        "/api/stores/w/data/range?resolution=0s",
        400,
        "invalid_parameter",
    );
    refused(
        "/api/stores/w/data/range?resolution=5m",
        404,
        "rollup_not_found",
    );
    refused(
        "/api/stores/w/data/range?max_points=5",
        400,
        "invalid_parameter",
    );
    refused(
        "/api/stores/w/data/range?resolution=1h&max_points=5",
        400,
        "invalid_parameter",
    );
    refused(
        "/api/stores/w/data/range?resolution=auto&max_points=0",
        400,
        "invalid_parameter",
    );
    refused(
        "/api/stores/w/data/range?resolution=1h&agg_window=1h",
        400,
        "invalid_parameter",
    );
    refused(
        "/api/stores/w/data/range?resolution=1h&filter=x",
        400,
        "invalid_parameter",
    );
    refused(
        "/api/stores/w/data/oldest?resolution=1h",
        400,
        "invalid_parameter",
    );

    // A store whose rollup is bad is not made at all.
    for bad in [
        json!([{"window": "soon"}]),
        json!([{"window": "1h", "functions": ["median"]}]),
        json!([{"window": "1h", "keep": "1d", "num_blocks": 4}]),
        json!([{"window": "1h"}, {"window": "60m"}]),
        json!([{"window": "1h", "colour": "red"}]),
    ] {
        let r = s
            .req("POST", "/api/stores")
            .header("X-Admin-Key", ADMIN)
            .json(&json!({"name": "bad", "rollups": bad}))
            .send();
        assert_eq!(r.status / 100, 4, "{bad}: {}", r.text());
        assert!(!s.data.join("bad").exists(), "{bad}");
    }
    let r = s
        .req("POST", "/api/stores")
        .header("X-Admin-Key", ADMIN)
        .json(&json!({"name": "bin", "data_type": "binary", "rollups": [{"window": "1h"}]}))
        .send();
    r.expect_error(400, "invalid_config");
    assert!(!s.data.join("bin").exists());

    let add = |body: Value, admin: bool| {
        let r = s.req("POST", "/api/stores/w/rollups");
        let r = if admin {
            r.header("X-Admin-Key", ADMIN)
        } else {
            r.key(&key)
        };
        r.json(&body).send()
    };
    add(json!({"window": "1h"}), true).expect_error(409, "rollup_exists");
    add(json!({"window": "1d"}), false).expect_error(401, "missing_admin_key");
    add(json!({"window": "1d", "functions": ["avg", "avg"]}), true)
        .expect_error(400, "invalid_config");
    let r = s
        .req("DELETE", "/api/stores/w/rollups/1d")
        .header("X-Admin-Key", ADMIN)
        .send();
    r.expect_error(404, "rollup_not_found");
    let list = get(&s, &key, "/api/stores/w/rollups");
    let windows: Vec<&str> = list["rollups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["window"].as_str().unwrap())
        .collect();
    assert_eq!(windows, ["1m", "1h"]);
}

#[test]
fn rollups_outlive_a_restart_and_a_kill() {
    let (dir, s, key) = start_with_rollups();
    fill(&s, &key, 2);
    written(&s, &key, T0 + 2 * HOUR);
    let before = get(&s, &key, "/api/stores/w/data/range?resolution=1m&limit=500");
    s.kill();
    let s = Server::start(dir.path());
    let after = get(&s, &key, "/api/stores/w/data/range?resolution=1m&limit=500");
    assert_eq!(before["objects"], after["objects"]);
    let rows = |s: &Server| {
        let list = get(s, &key, "/api/stores/w/rollups");
        list["rollups"][0]["bytes_used"].as_u64().unwrap()
    };
    assert_eq!(
        rows(&s),
        written(&s, &key, T0 + 2 * HOUR)["rollups"][0]["bytes_used"]
            .as_u64()
            .unwrap()
    );
}

#[test]
fn export_and_calc_know_rollups() {
    let (_dir, s, key) = start_with_rollups();
    fill(&s, &key, 3);
    written(&s, &key, T0 + 3 * HOUR);
    let data = s.data.to_str().unwrap();
    // Beside the running server: every hourly window, one line each.
    let out = cli_ok(&[
        "export",
        "w",
        "--resolution",
        "1h",
        "--quiet",
        "--path",
        data,
    ]);
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let windows: Vec<&Value> = lines
        .iter()
        .filter(|l| l["data"]["t_avg"].is_number())
        .collect();
    assert_eq!(windows.len(), 4, "{out}");
    let rolled = get(&s, &key, "/api/stores/w/data/range?resolution=1h");
    for (line, row) in windows.iter().zip(objects(&rolled)) {
        assert_eq!(
            (&line["timestamp"], &line["data"]),
            (&row["timestamp"], &row["data"])
        );
    }
    let err = cli_fails(&["export", "w", "--resolution", "5m", "--path", data]);
    assert!(err.contains("no rollup of 5m"), "{err}");
    let err = cli_fails(&["export", "w", "--resolution", "hourly", "--path", data]);
    assert!(err.contains("--resolution"), "{err}");

    let plan = cli_ok(&[
        "calc",
        "--blocks",
        "1024",
        "--block-size",
        "4096",
        "--rollup",
        "1h::365d",
        "--rollup",
        "1m::7d",
    ]);
    assert!(
        plan.contains("rollup 1h") && plan.contains("rollup 1m"),
        "{plan}"
    );
    assert!(plan.contains("with rollups"), "{plan}");
    let c = s
        .get("/api/calc?num_blocks=1024&object_size=60&every=10s&rollups=1h::365d,1d::3650d")
        .json();
    let days = |i: usize| c["rollups"][i]["history_seconds"].as_u64().unwrap() / 86_400;
    assert!(
        (365..380).contains(&days(0)) && (3650..3700).contains(&days(1)),
        "{c}"
    );
    assert!(
        c["total_bytes_with_rollups"].as_u64() > c["total_bytes"].as_u64(),
        "{c}"
    );
    s.get("/api/calc?num_blocks=8&rollups=1h:median")
        .expect_error(400, "invalid_config");
    // Measured on the store itself, beside the server.
    let measured = cli_ok(&[
        "calc", "--store", "w", "--every", "10s", "--rollup", "1d::365d", "--path", data,
    ]);
    for part in [
        "store w: raw json store",
        "reaching back 3.0 hours",
        "bytes per reading (measured, this store)",
        "bytes per reading (estimated from the newest readings, a store of the same blocks)",
        "rollup 1h",
        "rollup 1m",
        "(planned)",
    ] {
        assert!(measured.contains(part), "{part}: {measured}");
    }
}
