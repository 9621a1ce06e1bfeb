//! The Unix-socket line protocol (`AUTH <store> <key>`, one JSON payload
//! per line answered `OK <timestamp>` or `ERROR <why>`, `QUIT`) against
//! the real server, with
//! plain blocking clients: AUTH, one reply per line in order, QUIT,
//! overlong lines, pipelining, concurrent clients, and the socket file's
//! life (mode, stale file, live server, removal at stop).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Options, Server, objects};
use serde_json::json;

const IO_TIMEOUT: Duration = Duration::from_secs(30);

fn start(dir: &Path, config: Option<&str>) -> (Server, PathBuf) {
    let sock = dir.join("ingest.sock");
    let mut args = Vec::new();
    let config_path = dir.join("config.json");
    if let Some(c) = config {
        std::fs::write(&config_path, c).unwrap();
        args = vec!["--config", config_path.to_str().unwrap()];
    }
    let s = Server::start_with(
        dir,
        Options {
            socket: Some(sock.clone()),
            args,
            ..Options::default()
        },
    );
    // Leak-free: the path lives as long as the tempdir.
    (s, sock)
}

struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Client {
    fn connect(sock: &Path) -> Client {
        let stream = UnixStream::connect(sock).expect("connect to the socket");
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        Client {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        }
    }

    fn send(&mut self, text: &str) {
        self.writer.write_all(text.as_bytes()).unwrap();
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        self.reader.read_line(&mut l).expect("a reply line");
        assert!(l.ends_with('\n'), "a whole line, got {l:?}");
        l.trim_end().to_string()
    }

    /// True when the server closed the connection.
    fn closed(&mut self) -> bool {
        let mut rest = Vec::new();
        matches!(self.reader.read_to_end(&mut rest), Ok(0))
    }

    fn authed(sock: &Path, store: &str, key: &str) -> Client {
        let mut c = Client::connect(sock);
        c.send(&format!("AUTH {store} {key}\n"));
        assert_eq!(c.line(), "OK");
        c
    }
}

fn ok_ts(line: &str) -> i64 {
    line.strip_prefix("OK ")
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("expected OK <timestamp>, got {line:?}"))
}

#[test]
fn auth_lines_quit_and_errors_that_keep_the_connection() {
    let dir = tempfile::tempdir().unwrap();
    let (s, sock) = start(dir.path(), Some(r#"{"server": {"max_line_bytes": 64}}"#));
    let key = s.create_store(json!({"name": "room"}));
    s.create_store(json!({"name": "other"}));

    // Socket file: owner and group only.
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);

    // A wrong key and an unknown store get the same answer, then a close.
    for store in ["room", "nobody"] {
        let mut c = Client::connect(&sock);
        c.send(&format!("AUTH {store} tsstore_wrong\n"));
        assert_eq!(c.line(), "ERROR the API key is not valid for this store");
        assert!(c.closed());
    }
    let mut c = Client::connect(&sock);
    c.send("HELLO\n");
    assert_eq!(c.line(), "ERROR expected AUTH <store> <api-key>");
    assert!(c.closed());
    // The key of one store does not open another.
    let mut c = Client::connect(&sock);
    c.send(&format!("AUTH other {key}\n"));
    assert!(c.line().starts_with("ERROR "));

    let mut c = Client::authed(&sock, "room", &key);
    let first = ok_ts(&{
        c.send("{\"t\":1}\n");
        c.line()
    });
    // Bad JSON, an empty line and an overlong line are refused one by one;
    // the connection goes on.
    c.send("{not json\n\n");
    assert!(c.line().starts_with("ERROR "), "bad JSON");
    assert!(c.line().starts_with("ERROR "), "empty line");
    c.send(&format!(
        "{{\"long\":\"{}\"}}\n{{\"t\":2}}\r\n",
        "x".repeat(100)
    ));
    let long = c.line();
    assert!(long.contains("longer than 64 bytes"), "{long}");
    let second = ok_ts(&c.line());
    assert!(second > first);
    c.send("QUIT\n");
    assert_eq!(c.line(), "OK bye");
    assert!(c.closed());

    let v = s
        .req("GET", "/api/stores/room/data/oldest?limit=10")
        .key(&key)
        .send()
        .json();
    let data: Vec<_> = objects(&v).iter().map(|o| o["data"].clone()).collect();
    assert_eq!(data, vec![json!({"t": 1}), json!({"t": 2})]);

    // The socket file goes away with the server.
    s.stop();
    assert!(!sock.exists(), "socket file removed at stop");
}

#[test]
fn pipelined_lines_each_get_their_reply_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (s, sock) = start(dir.path(), None);
    let key = s.create_store(json!({"name": "fast", "num_blocks": 4096}));
    let mut c = Client::authed(&sock, "fast", &key);
    let mut writer = c.writer.try_clone().unwrap();
    const N: usize = 10_000;
    let sender = std::thread::spawn(move || {
        let mut all = String::new();
        for i in 0..N {
            // Every 1000th line is bad: it must not fail its neighbours.
            if i % 1000 == 999 {
                all.push_str("{broken\n");
            } else {
                all.push_str(&format!("{{\"i\":{i}}}\n"));
            }
        }
        writer.write_all(all.as_bytes()).unwrap();
    });
    let mut last = 0;
    let mut errors = 0;
    for i in 0..N {
        let line = c.line();
        if i % 1000 == 999 {
            assert!(line.starts_with("ERROR "), "line {i}: {line}");
            errors += 1;
        } else {
            let ts = ok_ts(&line);
            assert!(ts > last, "timestamps increase in order");
            last = ts;
        }
    }
    sender.join().unwrap();
    assert_eq!(errors, N / 1000);
    let stats = s
        .req("GET", "/api/stores/fast/stats")
        .key(&key)
        .send()
        .json();
    assert_eq!(stats["object_count"], json!(N - N / 1000));
    let metrics = s.get("/metrics").text();
    assert!(
        metrics.contains("tsstore_socket_lines_accepted_total 9990"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tsstore_socket_lines_rejected_total 10"),
        "{metrics}"
    );
}

#[test]
fn sixteen_clients_lose_and_duplicate_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (s, sock) = start(dir.path(), None);
    let key = s.create_store(json!({"name": "many", "num_blocks": 4096}));
    let clients: Vec<_> = (0..16)
        .map(|c| {
            let (sock, key) = (sock.clone(), key.clone());
            std::thread::spawn(move || {
                let mut client = Client::authed(&sock, "many", &key);
                let mut stamps = Vec::new();
                for i in 0..1000 {
                    client.send(&format!("{{\"c\":{c},\"i\":{i}}}\n"));
                    stamps.push(ok_ts(&client.line()));
                }
                client.send("QUIT\n");
                assert_eq!(client.line(), "OK bye");
                stamps
            })
        })
        .collect();
    let mut stamps: Vec<i64> = clients
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    stamps.sort_unstable();
    stamps.dedup();
    assert_eq!(
        stamps.len(),
        16_000,
        "every acknowledged timestamp distinct"
    );
    let v = s
        .req("GET", "/api/stores/many/data/oldest?limit=20000")
        .key(&key)
        .send()
        .json();
    let mut seen: Vec<(i64, i64)> = objects(&v)
        .iter()
        .map(|o| {
            (
                o["data"]["c"].as_i64().unwrap(),
                o["data"]["i"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(seen.len(), 16_000);
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), 16_000, "no record lost or duplicated");
}

#[test]
fn the_client_bound_is_told_and_held() {
    let dir = tempfile::tempdir().unwrap();
    let (s, sock) = start(dir.path(), Some(r#"{"server": {"max_socket_clients": 2}}"#));
    let key = s.create_store(json!({"name": "b"}));
    let _a = Client::authed(&sock, "b", &key);
    let _b = Client::authed(&sock, "b", &key);
    let mut c = Client::connect(&sock);
    assert!(c.line().starts_with("ERROR too many clients"));
    assert!(c.closed());
    drop(_a);
    // The freed place is taken again (bounded wait, not a sleep).
    let deadline = std::time::Instant::now() + IO_TIMEOUT;
    loop {
        let mut c = Client::connect(&sock);
        // While the place is still taken the server answers "too many
        // clients" and closes, which may come before the AUTH is written.
        let sent = c.writer.write_all(format!("AUTH b {key}\n").as_bytes());
        if sent.is_ok() && c.line() == "OK" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the place came free");
        std::thread::yield_now();
    }
}

#[test]
fn wrong_keys_on_the_socket_are_throttled() {
    let dir = tempfile::tempdir().unwrap();
    let (s, sock) = start(
        dir.path(),
        Some(r#"{"server": {"auth_failure_burst": 3, "auth_failures_per_sec": 0.5}}"#),
    );
    let key = s.create_store(json!({"name": "t"}));
    let guess = "tsstore_00000000-0000-4000-8000-000000000000";
    let mut answers = Vec::new();
    for _ in 0..6 {
        let mut c = Client::connect(&sock);
        c.send(&format!("AUTH t {guess}\n"));
        answers.push(c.line());
        assert!(c.closed());
    }
    let refused = answers.iter().filter(|a| a.contains("not valid")).count();
    assert_eq!(refused, 3, "{answers:?}");
    assert!(
        answers[5].contains("too many failed authentications"),
        "{answers:?}"
    );
    // This user is throttled as a whole, the right key included.
    let mut c = Client::connect(&sock);
    c.send(&format!("AUTH t {key}\n"));
    assert!(c.line().contains("retry in"));
    let metrics = s.get("/metrics").text();
    assert!(
        metrics.contains("tsstore_auth_failures_total{reason=\"invalid_key\"} 3"),
        "{metrics}"
    );
}

#[test]
fn a_stale_socket_file_is_replaced_and_a_live_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("ingest.sock");
    // Left by a crashed run: a socket file nobody listens on.
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    assert!(sock.exists());
    let (s, sock) = start(dir.path(), None);
    let key = s.create_store(json!({"name": "x"}));
    Client::authed(&sock, "x", &key);

    // A second server on the same socket path refuses to start.
    let other = tempfile::tempdir().unwrap();
    let out = serve_once(&sock, other.path());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another server is listening"), "{err}");
    // And the first one still serves.
    Client::authed(&sock, "x", &key);

    // A path that is not a socket is never deleted.
    let file = other.path().join("plain");
    std::fs::write(&file, "keep me").unwrap();
    let out = serve_once(&file, other.path());
    assert!(!out.status.success());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
}

/// Runs `tsstore serve --socket socket` to its end (it is expected to
/// refuse to start).
fn serve_once(socket: &Path, data: &Path) -> std::process::Output {
    common::tsstore_cmd()
        .args(["serve", "--host", "127.0.0.1", "--port", "0", "--socket"])
        .arg(socket)
        .arg("--path")
        .arg(data)
        .env("TSSTORE_ADMIN_KEY", common::ADMIN)
        .output()
        .unwrap()
}

/// The README's example, run as written through socat.
#[test]
fn the_readme_socket_example_works_verbatim() {
    let socat = std::process::Command::new("socat").arg("-V").output();
    if !socat.is_ok_and(|o| o.status.success()) {
        let in_ci = std::env::var("CI").is_ok_and(|v| v == "true");
        assert!(
            !in_ci,
            "socat is missing: apt-get install -y socat (scripts/test.sh does)"
        );
        eprintln!("skipped: socat is not installed");
        return;
    }
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let example = readme
        .split("<!-- socket example -->")
        .nth(1)
        .and_then(|rest| rest.split("```sh\n").nth(1))
        .and_then(|block| block.split("```").next())
        .expect("README has the socket example");
    let dir = tempfile::tempdir().unwrap();
    let (s, sock) = start(dir.path(), None);
    let key = s.create_store(json!({"name": "greenhouse"}));
    let out = std::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", example])
        .env("KEY", &key)
        .env("SOCK", &sock)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let replies = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = replies.lines().collect();
    assert_eq!(lines.len(), 4, "{replies}");
    assert_eq!(lines[0], "OK");
    ok_ts(lines[1]);
    ok_ts(lines[2]);
    assert_eq!(lines[3], "OK bye");
}
