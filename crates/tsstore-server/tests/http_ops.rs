//! The server in operation: TLS, stop and restart, concurrent clients,
//! reads that start inside a packed block, and the CLI changing keys
//! under a running server.

mod common;

use common::{Options, Server, key_of, timestamps, tsstore_cmd};
use serde_json::json;
use std::time::{Duration, Instant};

#[test]
fn tls_with_a_self_signed_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let s = Server::start_with(
        dir.path(),
        Options {
            env: vec![
                ("TSSTORE_TLS_CERT", cert_path.display().to_string()),
                ("TSSTORE_TLS_KEY", key_path.display().to_string()),
            ],
            tls: Some(cert.cert.der().clone()),
            ..Options::default()
        },
    );
    assert_eq!(s.get("/health").json()["status"], "ok");
    let key = s.create_store(json!({"name": "secure"}));
    let r = s
        .req("POST", "/api/stores/secure/data")
        .key(&key)
        .json(&json!({"timestamp": 7, "data": {"ok": true}}))
        .send();
    assert_eq!(r.status, 201, "{}", r.text());
    let v = s
        .req("GET", "/api/stores/secure/data/newest")
        .key(&key)
        .send()
        .json();
    assert_eq!(v["objects"][0]["data"], json!({"ok": true}));

    // Plain HTTP on the TLS port gets no HTTP answer.
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    use std::io::{Read, Write};
    tcp.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    let _ = tcp.read_to_end(&mut buf);
    assert!(
        !buf.starts_with(b"HTTP/1.1 200"),
        "no plaintext service on the TLS port"
    );
}

#[test]
fn restart_keeps_data_and_keys_and_the_generated_admin_key() {
    let dir = tempfile::tempdir().unwrap();
    let first = Server::start_with(
        dir.path(),
        Options {
            admin_key: None,
            ..Options::default()
        },
    );
    let admin = first
        .banner
        .iter()
        .find_map(|l| l.strip_prefix("admin key (shown only now; keep it): "))
        .expect("a generated admin key is printed once")
        .to_string();
    assert!(admin.len() >= 20);
    let stored = std::fs::read_to_string(first.data.join(".admin_key")).unwrap();
    assert!(!stored.contains(&admin), "only the hash is kept");
    let r = first
        .req("POST", "/api/stores")
        .header("X-Admin-Key", &admin)
        .json(&json!({"name": "keep"}))
        .send();
    assert_eq!(r.status, 201, "{}", r.text());
    let key = r.json()["api_key"].as_str().unwrap().to_string();
    let mut stamps = Vec::new();
    for i in 0..50 {
        let r = first
            .req("POST", "/api/stores/keep/data")
            .key(&key)
            .json(&json!({"data": {"i": i}}))
            .send();
        assert_eq!(r.status, 201);
        stamps.push(r.json()["timestamp"].as_i64().unwrap());
    }
    first.stop();

    let second = Server::start_with(
        dir.path(),
        Options {
            admin_key: None,
            ..Options::default()
        },
    );
    assert!(
        second.banner.iter().all(|l| !l.contains("admin key")),
        "the admin key is shown only on the first start: {:?}",
        second.banner
    );
    let v = second
        .req(
            "GET",
            "/api/stores/keep/data/range?limit=1000&include_data=true",
        )
        .key(&key)
        .send()
        .json();
    assert_eq!(timestamps(&v), stamps);
    assert_eq!(v["objects"][49]["data"], json!({"i": 49}));
    let r = second
        .req("POST", "/api/stores")
        .header("X-Admin-Key", &admin)
        .json(&json!({"name": "second"}))
        .send();
    assert_eq!(r.status, 201, "the admin key still works: {}", r.text());
}

#[test]
fn eight_concurrent_clients_without_timestamps_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let key = s.create_store(json!({"name": "busy", "num_blocks": 256}));
    const PER_CLIENT: usize = 150;
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|c| {
                let (s, key) = (&s, &key);
                scope.spawn(move || {
                    (0..PER_CLIENT)
                        .map(|i| {
                            s.req("POST", "/api/stores/busy/data")
                                .key(key)
                                .json(&json!({"data": {"client": c, "i": i}}))
                                .send()
                                .status
                        })
                        .collect::<Vec<u16>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert_eq!(statuses.len(), 8 * PER_CLIENT);
    assert!(statuses.iter().all(|&st| st == 201), "{statuses:?}");
    let v = s
        .req("GET", "/api/stores/busy/data/range?limit=5000")
        .key(&key)
        .send()
        .json();
    let ts = timestamps(&v);
    assert_eq!(ts.len(), 8 * PER_CLIENT);
    assert!(ts.windows(2).all(|w| w[0] < w[1]), "distinct, increasing");
}

#[test]
fn a_range_starting_inside_a_packed_block_returns_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let key = s.create_store(json!({"name": "packed", "num_blocks": 64, "data_block_size": 512}));
    let records: Vec<serde_json::Value> = (1..=200)
        .map(|i| json!({"timestamp": i * 10, "data": {"v": i}}))
        .collect();
    let r = s
        .req("POST", "/api/stores/packed/data/batch")
        .key(&key)
        .json(&json!(records))
        .send();
    assert_eq!(r.status, 201, "{}", r.text());
    let stats = s
        .req("GET", "/api/stores/packed/stats")
        .key(&key)
        .send()
        .json();
    assert!(stats["active_blocks"].as_u64().unwrap() > 5, "{stats}");
    // Starts and ends fall between records, inside blocks.
    for (start, end) in [
        (15, 1985),
        (333, 777),
        (1001, 1001),
        (1000, 1000),
        (5, 2005),
    ] {
        let v = s
            .req(
                "GET",
                &format!(
                    "/api/stores/packed/data/range?start_time={start}&end_time={end}&limit=1000"
                ),
            )
            .key(&key)
            .send()
            .json();
        let want: Vec<i64> = (1..=200)
            .map(|i| i * 10)
            .filter(|t| (start..=end).contains(t))
            .collect();
        assert_eq!(timestamps(&v), want, "range {start}..={end}");
    }
}

#[test]
fn cli_key_changes_apply_to_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let old = s.create_store(json!({"name": "rot"}));
    assert_eq!(
        s.req("GET", "/api/stores/rot/stats")
            .key(&old)
            .send()
            .status,
        200
    );
    let out = tsstore_cmd()
        .args(["key", "regenerate", "rot", "--path"])
        .arg(&s.data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let new = key_of(&String::from_utf8(out.stdout).unwrap());
    // keys.json is re-checked at most every 500 ms.
    let deadline = Instant::now() + Duration::from_secs(10);
    while s
        .req("GET", "/api/stores/rot/stats")
        .key(&old)
        .send()
        .status
        != 401
    {
        assert!(
            Instant::now() < deadline,
            "the revoked key still works after 10 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    s.req("GET", "/api/stores/rot/stats")
        .key(&old)
        .send()
        .expect_error(401, "invalid_api_key");
    assert_eq!(
        s.req("GET", "/api/stores/rot/stats")
            .key(&new)
            .send()
            .status,
        200
    );
    // The running server holds the store; the CLI still reads it, and says so.
    let status = tsstore_cmd()
        .args(["status", "--path"])
        .arg(&s.data)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&status.stdout);
    let row = table.lines().find(|l| l.starts_with("rot")).expect("a row");
    assert!(row.ends_with("running"), "{table}");
}

#[test]
fn serve_refuses_bad_settings_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let out = tsstore_cmd()
        .args(["serve", "--port", "0", "--no-socket", "--path"])
        .arg(dir.path())
        .env("TSSTORE_ADMIN_KEY", "short")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("admin_key") && err.contains("20"), "{err}");
    let out = tsstore_cmd()
        .args(["serve", "--port", "0", "--no-socket", "--path"])
        .arg(dir.path())
        .env("TSSTORE_TLS_CERT", dir.path().join("missing.pem"))
        .env("TSSTORE_TLS_KEY", dir.path().join("missing.key"))
        .env("TSSTORE_ADMIN_KEY", "a-long-enough-admin-key")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("missing.pem"), "{err}");
}

#[test]
fn connections_over_the_bound_are_answered_503_and_the_body_limit_is_configurable() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with_config(
        dir.path(),
        r#"{"server": {"max_connections": 2, "max_connections_per_address": 2, "max_body_bytes": 100}}"#,
    );
    let key = s.create_store(json!({"name": "small"}));
    s.req("POST", "/api/stores/small/data")
        .key(&key)
        .json(&json!({"data": "x".repeat(100)}))
        .send()
        .expect_error(413, "payload_too_large");
    // Without a Content-Length (chunked), the limit holds while reading.
    let mut c = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let chunk = format!("{{\"data\":\"{}\"}}", "x".repeat(100));
    let raw = format!(
        "POST /api/stores/small/data HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-API-Key: {key}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    c.write_all(raw.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = c.read_to_string(&mut answer);
    assert!(
        answer.starts_with("HTTP/1.1 413") && answer.contains("payload_too_large"),
        "{answer}"
    );
    drop(c);

    // Two kept-alive connections take both permits (once the connection
    // of the request above has let its permit go).
    let hold = || {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut c = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let _ = c.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
            let mut buf = [0u8; 512];
            if let Ok(n) = c.read(&mut buf)
                && buf[..n].starts_with(b"HTTP/1.1 200")
            {
                return c;
            }
            assert!(Instant::now() < deadline, "no permit came free");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let mut held = vec![hold(), hold()];
    // A third is told to come back (503, Retry-After), then closed.
    let mut third = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    third
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = third.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut buf = Vec::new();
    let _ = third.read_to_end(&mut buf);
    let answer = String::from_utf8_lossy(&buf);
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    assert!(answer.contains("retry-after: 1\r\n"), "{answer}");
    assert!(
        answer.contains("\"code\":\"too_many_connections\""),
        "{answer}"
    );
    // Once one closes, new connections are served again.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut c = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = c.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let mut buf = Vec::new();
        let _ = c.read_to_end(&mut buf);
        if buf.starts_with(b"HTTP/1.1 200") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the freed permit was never reused"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_long_scan_is_cut_by_the_request_timeout_and_the_store_still_opens() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let key = s.create_store(json!({"name": "big", "num_blocks": 8000}));
    let batch: String = (0..10_000)
        .map(|i| format!("{{\"data\":{{\"t\":{},\"room\":\"lab\"}}}}\n", i % 100))
        .collect();
    for _ in 0..40 {
        let r = s
            .req("POST", "/api/stores/big/data/batch")
            .key(&key)
            .body("application/x-ndjson", batch.clone())
            .send();
        assert_eq!(r.status, 201, "{}", r.text());
    }
    s.stop();

    // One worker and a timeout far shorter than a scan of 400 000 records.
    let s = Server::start_with_config(
        dir.path(),
        r#"{"server": {"worker_threads": 1, "request_timeout_ms": 25}}"#,
    );
    // Opening may outlast the timeout; it finishes anyway and later
    // requests find the store open.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = s.req("GET", "/api/stores/big/stats").key(&key).send();
        if r.status == 200 {
            assert!(
                r.json()["active_blocks"].as_u64() > Some(4000),
                "{}",
                r.text()
            );
            break;
        }
        r.expect_error(503, "timeout");
        assert!(Instant::now() < deadline, "the store never opened");
        std::thread::sleep(Duration::from_millis(20));
    }
    // A filter that matches nothing reads every record. Run inline it
    // would hold the only worker until the end and answer 200; off the
    // worker the timeout answers, and the scan stops.
    s.req("GET", "/api/stores/big/data/range?filter=nomatch&limit=10")
        .key(&key)
        .send()
        .expect_error(503, "timeout");
    assert_eq!(s.get("/health").status, 200);
    // Short reads stay inline and fast.
    let r = s
        .req("GET", "/api/stores/big/data/newest?limit=2")
        .key(&key)
        .send();
    assert_eq!(timestamps(&r.json()).len(), 2);
}

#[test]
fn a_store_larger_than_the_disk_is_refused_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    s.req("POST", "/api/stores")
        .header("X-Admin-Key", common::ADMIN)
        .json(&json!({"name": "huge", "num_blocks": 4294967295u64, "data_block_size": 1073741824}))
        .send()
        .expect_error(507, "insufficient_storage");
    assert!(!s.data.join("huge").exists(), "no directory left behind");
    // The name is free afterwards.
    s.create_store(json!({"name": "huge", "num_blocks": 4}));
}
