//! Line protocol in (`/write`, `/api/v2/write`): the official InfluxDB
//! Python clients writing unchanged, every error case's status and body,
//! each store type's records, and every syntax case read as the real
//! `influxd` 1.6 reads it (`common::influxd`; `tests/clients/
//! influx_clients.py`). Missing `influxd` or the Python clients skip a
//! test, except in CI, where they fail.

mod common;

use std::io::Write;
use std::process::Command;

use common::influxd::{self, Influxd};
use common::{Server, objects};
use serde_json::{Value, json};

const BASE: i64 = 1_733_472_000_000_000_000;

/// `POST path` with `headers`; status and body.
fn post(s: &Server, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    let head: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    influxd::http(s.port, "POST", path, &head, body)
}

fn basic(key: &str) -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("gw:{key}"));
    format!("Basic {encoded}")
}

fn gzip(body: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(body).unwrap();
    e.finish().unwrap()
}

/// Every record of `store`, oldest first: (timestamp, data).
fn records(s: &Server, key: &str, store: &str) -> Vec<(i64, Value)> {
    let v = s
        .req(
            "GET",
            &format!("/api/stores/{store}/data/oldest?limit=10000"),
        )
        .key(key)
        .send()
        .json();
    objects(&v)
        .iter()
        .map(|o| (o["timestamp"].as_i64().unwrap(), o["data"].clone()))
        .collect()
}

fn python_clients() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import influxdb, influxdb_client"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the InfluxDB Python clients are missing: pip install influxdb influxdb-client (scripts/test.sh does)"
        );
        eprintln!("skipped: pip install influxdb influxdb-client");
    }
    ok
}

#[test]
fn official_python_clients_write_unchanged() {
    if !python_clients() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let key1 = s.create_store(json!({"name": "v1"}));
    let key2 = s.create_store(json!({"name": "v2"}));
    let count = 1000;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/influx_clients.py"
    );
    let out = Command::new("python3")
        .arg(script)
        .args([&s.port.to_string(), &key1, "v1", &key2, "v2"])
        .args([&BASE.to_string(), &count.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let said: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        said,
        json!({"v1_gzip_false": true, "v1_gzip_true": true, "v1_bad_key": 401,
               "v2": true, "v2_unknown_bucket": 404})
    );
    let v1 = records(&s, &key1, "v1");
    assert_eq!(v1.len(), count);
    for (i, (ts, data)) in v1.iter().enumerate() {
        let i = i as i64;
        assert_eq!(*ts, BASE + i * 1_000_000_000);
        assert_eq!(
            *data,
            json!({"_measurement": "weather", "_tags": {"site": "roof", "unit": "c 1"},
                   "temp": 20.5 + i as f64, "hum": 40 + i, "ok": i % 2 == 0, "note": "say \"hi\""})
        );
    }
    let v2 = records(&s, &key2, "v2");
    assert_eq!(v2.len(), count);
    for (i, (ts, data)) in v2.iter().enumerate() {
        assert_eq!(*ts, BASE + i as i64);
        assert_eq!(data["watts"], json!(100.25 + i as f64), "{data}");
        assert_eq!(data["count"], json!(i), "{data}");
        assert_eq!(data["_tags"], json!({"phase": "L1"}), "{data}");
    }
}

/// Path, headers, body; the status and a piece of the body expected.
type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], Vec<u8>, u16, &'a str);

#[test]
fn errors_answer_as_influxdb_does() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with_config(dir.path(), r#"{"server": {"max_body_bytes": 4096}}"#);
    let key = s.create_store(json!({"name": "lp"}));
    let auth = basic(&key);
    let token = format!("Token {key}");
    let v1 = [("Authorization", auth.as_str())];
    let v2 = [("Authorization", token.as_str())];
    let big = vec![b'#'; 5000];
    // Unpacks far past the limit: refused, not unpacked whole.
    let bomb = gzip(&vec![b'#'; 1 << 20]);
    let cases: Vec<Case> = vec![
        (
            "/write?db=lp&precision=s",
            &v1,
            b"m v=1 1700000000".to_vec(),
            204,
            "",
        ),
        ("/write?db=lp", &v1, b"".to_vec(), 204, ""),
        ("/write?db=lp", &[], b"m v=1".to_vec(), 401, r#""error":"#),
        (
            "/write?db=lp&u=gw&p=nope",
            &[],
            b"m v=1".to_vec(),
            401,
            r#""error":"#,
        ),
        (
            "/write?db=missing",
            &v1,
            b"m v=1".to_vec(),
            404,
            r#"{"error":"database not found: \"missing\""}"#,
        ),
        (
            "/write",
            &v1,
            b"m v=1".to_vec(),
            400,
            r#"{"error":"database is required"}"#,
        ),
        (
            "/api/v2/write?org=o&bucket=missing",
            &v2,
            b"m v=1".to_vec(),
            404,
            r#"{"code":"not found","message":"bucket \"missing\" not found"}"#,
        ),
        (
            "/api/v2/write?org=o&bucket=lp",
            &[("Authorization", "Token nope")],
            b"m v=1".to_vec(),
            401,
            r#""code":"unauthorized""#,
        ),
        (
            "/write?db=lp&precision=fortnight",
            &v1,
            b"m v=1".to_vec(),
            400,
            "precision: 'fortnight'",
        ),
        ("/write?db=lp", &v1, big, 413, r#""error":"#),
        (
            "/write?db=lp",
            &v1,
            b"m v=".to_vec(),
            400,
            r#"{"error":"unable to parse 'm v=' (line 1): missing field value"}"#,
        ),
        (
            "/write?db=lp&precision=s",
            &v1,
            b"m v=1 1700000010\n\nm v=oops 1700000011\nm v=3 1700000012".to_vec(),
            400,
            r#"{"error":"partial write: unable to parse 'm v=oops 1700000011' (line 3): invalid boolean dropped=1"}"#,
        ),
        (
            "/api/v2/write?org=o&bucket=lp&precision=s",
            &v2,
            b"m v=1 1700000000\nm v=4 1700000020".to_vec(),
            400,
            "partial write error (1 written, 1 dropped): unable to parse 'm v=1 1700000000' (line 1): timestamp 1700000000000000000 is not after the newest",
        ),
    ];
    for (path, headers, body, status, expected) in cases {
        let (got, text) = post(&s, path, headers, &body);
        assert_eq!(got, status, "{path}: {text}");
        assert!(text.contains(expected), "{path}: {text}");
    }
    let mut gz = v1.to_vec();
    gz.push(("Content-Encoding", "gzip"));
    let (got, text) = post(&s, "/write?db=lp", &gz, &bomb);
    assert_eq!(got, 413, "{text}");
    let (got, text) = post(&s, "/write?db=lp", &gz, b"not gzip");
    assert_eq!(got, 400, "{text}");
    assert!(text.contains("gzip"), "{text}");
    let (got, text) = post(
        &s,
        "/write?db=lp&precision=s",
        &gz,
        &gzip(b"m v=5 1700000030"),
    );
    assert_eq!(got, 204, "{text}");
    // What the good lines stored, and nothing of the refused ones.
    let stored: Vec<i64> = records(&s, &key, "lp")
        .iter()
        .map(|r| r.0 / 1_000_000_000)
        .collect();
    assert_eq!(
        stored,
        [1700000000, 1700000010, 1700000012, 1700000020, 1700000030]
    );
    let (status, _) = influxd::http(s.port, "GET", "/ping", "", b"");
    assert_eq!(status, 204);
}

#[test]
fn each_store_type_takes_lines() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let json_key = s.create_store(json!({"name": "j"}));
    let auth = basic(&json_key);
    // Several series at one timestamp: one record; lines without a
    // timestamp: one record at the server's time, after the others.
    let body = "cpu,core=1 busy=0.5 1700000000000000000\ncpu,core=0 busy=0.25 1700000000000000000\ncpu,core=0 idle=3i 1700000000000000000\ncpu,core=2 busy=1 \ncpu,core=3 busy=1\n";
    let (status, text) = post(
        &s,
        "/write?db=j",
        &[("Authorization", &auth)],
        body.as_bytes(),
    );
    assert_eq!(status, 204, "{text}");
    let got = records(&s, &json_key, "j");
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].0, 1_700_000_000_000_000_000);
    assert_eq!(
        got[0].1,
        json!({"_series": [
            {"_measurement": "cpu", "_tags": {"core": "1"}, "busy": 0.5},
            {"_measurement": "cpu", "_tags": {"core": "0"}, "busy": 0.25, "idle": 3},
        ]})
    );
    assert_eq!(got[1].1["_series"].as_array().unwrap().len(), 2);

    // Schema: tags and fields by name; unknown names refuse their line.
    let key = s.create_store(json!({"name": "sch", "data_type": "schema"}));
    let fields = json!([{"index": 1, "name": "site", "type": "string"},
        {"index": 2, "name": "temp", "type": "float64"}]);
    let r = s
        .req("PUT", "/api/stores/sch/schema")
        .key(&key)
        .json(&json!({"fields": fields}))
        .send();
    assert_eq!(r.status, 200, "{}", r.text());
    let body = b"w,site=roof temp=21.5 1700000000000000000\nw,site=roof lux=3i 1700000000000000001";
    let (status, text) = post(
        &s,
        "/write?db=sch",
        &[("Authorization", &basic(&key))],
        body,
    );
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains("(line 2): the store's schema has no field 'lux'"),
        "{text}"
    );
    let got = records(&s, &key, "sch");
    assert_eq!(
        got,
        [(
            1_700_000_000_000_000_000,
            json!({"site": "roof", "temp": 21.5})
        )]
    );

    // Lines out of time order: sorted, each refusal still at its line.
    let key = s.create_store(json!({"name": "unsorted"}));
    let body = b"m v=3 1700000000000000003\nm v=1 1700000000000000001\nm v= 1700000000000000000\nm v=2 1700000000000000002";
    let (status, text) = post(
        &s,
        "/write?db=unsorted",
        &[("Authorization", &basic(&key))],
        body,
    );
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains("(line 3): missing field value dropped=1"),
        "{text}"
    );
    let got: Vec<(i64, Value)> = records(&s, &key, "unsorted");
    let values: Vec<(i64, f64)> = got
        .iter()
        .map(|(t, d)| (*t, d["v"].as_f64().unwrap()))
        .collect();
    assert_eq!(
        values,
        [
            (1_700_000_000_000_000_001, 1.0),
            (1_700_000_000_000_000_002, 2.0),
            (1_700_000_000_000_000_003, 3.0)
        ]
    );

    // Text: the lines as written.
    let key = s.create_store(json!({"name": "txt", "data_type": "text"}));
    let body = b"m,a=b v=1 1700000000000000000\nm,a=c v=2 1700000000000000000\n";
    let (status, text) = post(
        &s,
        "/write?db=txt",
        &[("Authorization", &basic(&key))],
        body,
    );
    assert_eq!(status, 204, "{text}");
    let got = records(&s, &key, "txt");
    assert_eq!(
        got[0].1,
        json!("m,a=b v=1 1700000000000000000\nm,a=c v=2 1700000000000000000")
    );
}

/// Where tsstore knowingly reads a line otherwise than InfluxDB 1.6
/// (docs/LINE_PROTOCOL.md says why).
const DIFFERENCES: &[&str] = &["m v=1u 13", "m v=1 31\r", "m v=1 -5"];

/// Syntax cases from InfluxDB's line protocol reference, each sent alone
/// to `influxd` and to tsstore: both take it or both refuse it, with the
/// same reason, and what both take reads back the same.
#[test]
fn lines_are_read_as_influxd_reads_them() {
    if !influxd::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let influx = Influxd::start(&dir.path().join("influxd"), "t");
    let s = Server::start(&dir.path().join("tsstore"));
    let cases = [
        "m v=1 1",
        "m  v=1 2",
        "m v=1  3",
        "m v=1 4 ",
        " m v=1 5",
        "m,t=a v=+1 6",
        "m v=.5 7",
        "m v=1. 8",
        "m v=1e3 9",
        "m v=1E+3 10",
        "m v=NaN 11",
        "m v=inf 12",
        "m v=1u 13",
        "m v=1i,v=2i 14",
        "m v=9223372036854775808i 15",
        "m v=-9223372036854775808i 16",
        "m,t= v=1 17",
        "m,=a v=1 18",
        "m,t v=1 19",
        "m v=1,=2 20",
        "m v= 21",
        "m v 22",
        "m",
        ",t=a v=1 23",
        "m v=tru 24",
        "m v=\"a 25",
        "m v=1 2x",
        "m v=1 -5",
        "m,b=2,a=1 v=1 26",
        "m,a=1,a=2 v=1 27",
        r#"m\ x\,y,t\,a=b\=c v\ x="q\"\\z",w="a,b c" 28"#,
        "m v=1 31\r",
        "m v=1 1.5",
        "m v=t,w=FALSE,x=True 34",
        "m _v=1 35",
        "m,t=\"q\" v=1 36",
        "m v=1 99999999999999999999",
        "m\tv=1 37",
        "m v=1,  w=2 38",
        "m v=-.5 39",
        "m v=- 40",
        "m v=1e 41",
        "m v=01 42",
        "m v=1.2.3 43",
        "m\\ v=1 44",
        "m v=1\\  45",
        r"m\x,t=a\b v=1 46",
        "m v=\"a\nb\" 47",
        "m s=\"\" 48",
        "m v=1 49\n# c\n\nm v=2 50",
    ];
    // Cases both took and read back alike, and both refused alike.
    let (mut read_alike, mut refused_alike) = (0, 0);
    for (i, case) in cases.iter().enumerate() {
        // A measurement of its own, so no case meets another's types.
        let lead = case.len() - case.trim_start().len();
        let line = match case.trim_start().strip_prefix('m') {
            Some(rest) => format!("{}c{i}{rest}", &case[..lead]),
            None => case.to_string(),
        };
        let (influx_status, influx_body) = influx.write("t", line.as_bytes());
        let store = format!("s{i}");
        let key = s.create_store(json!({"name": store, "num_blocks": 8}));
        let (status, body) = post(
            &s,
            &format!("/write?db={store}"),
            &[("Authorization", &basic(&key))],
            line.as_bytes(),
        );
        if DIFFERENCES.contains(case) {
            assert_ne!(
                status, influx_status,
                "{case:?} is a known difference: {body} / {influx_body}"
            );
            continue;
        }
        assert_eq!(
            status, influx_status,
            "{case:?}: tsstore {body}, influxd {influx_body}"
        );
        if status != 204 {
            // The same reason, in InfluxDB's words (Go's wording of
            // out-of-range numbers aside).
            let reason = |b: &str| {
                let b = b.trim_end().trim_end_matches("\"}");
                b.rsplit(": ").next().unwrap_or("").to_string()
            };
            if !influx_body.contains("out of range") {
                assert_eq!(reason(&body), reason(&influx_body), "{case:?}");
            }
            refused_alike += 1;
            continue;
        }
        // Read back: the same values at the same times.
        let ours = records(&s, &key, &store);
        let first = ours
            .first()
            .map(|(_, d)| d.get("_series").map_or(d, |l| &l[0]));
        let measurement = first
            .and_then(|p| p["_measurement"].as_str())
            .unwrap_or("")
            .to_string();
        let q = format!(
            "q={}&db=t",
            form(&format!(
                "SELECT * FROM \"{}\"",
                measurement.replace('\\', "\\\\").replace('"', "\\\"")
            ))
        );
        let (_, answer) = influx.query(&q);
        let answer: Value = serde_json::from_str(&answer).unwrap();
        let series = &answer["results"][0]["series"][0];
        let columns: Vec<&str> = series["columns"]
            .as_array()
            .map_or(vec![], |c| c.iter().map(|c| c.as_str().unwrap()).collect());
        let rows = series["values"].as_array().cloned().unwrap_or_default();
        let ours: Vec<(i64, Value)> = ours
            .into_iter()
            .flat_map(|(ts, data)| match data.get("_series") {
                Some(list) => list
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| (ts, p.clone()))
                    .collect::<Vec<_>>(),
                None => vec![(ts, data)],
            })
            .filter(|(_, p)| p["_measurement"] == measurement.as_str())
            .collect();
        assert_eq!(ours.len(), rows.len(), "{case:?}: {answer} / {ours:?}");
        for ((ts, point), row) in ours.iter().zip(&rows) {
            assert_eq!(row[0], json!(ts), "{case:?}");
            for (c, value) in columns.iter().zip(row.as_array().unwrap()).skip(1) {
                let mine = point
                    .get(*c)
                    .or_else(|| point["_tags"].get(*c))
                    .cloned()
                    .unwrap_or(Value::Null);
                let same = match (mine.as_f64(), value.as_f64()) {
                    (Some(a), Some(b)) => a == b,
                    _ => mine == *value,
                };
                assert!(same, "{case:?} column {c}: tsstore {mine}, influxd {value}");
            }
        }
        assert!(!rows.is_empty(), "{case:?}: nothing to compare");
        read_alike += 1;
    }
    assert_eq!(
        (read_alike, refused_alike, DIFFERENCES.len()),
        (22, 25, 3),
        "every case is compared"
    );
}

/// `text` percent-encoded for a form body.
fn form(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
