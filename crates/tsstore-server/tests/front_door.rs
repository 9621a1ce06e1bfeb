//! The front door against the real server over real sockets, as an
//! attacker on the network would try it: silent and slow connections,
//! one address holding every slot, refusal floods in the log, idle
//! WebSocket holders, invalid frames, and key guessing. Attacking clients
//! bind to 127.0.0.2 and legitimate ones to 127.0.0.1 (Linux routes all
//! of 127.0.0.0/8 to loopback), so the per-address rules can tell them
//! apart.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{ADMIN, Options, Server};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(20);
const ATTACKER: [u8; 4] = [127, 0, 0, 2];
const LEGIT: [u8; 4] = [127, 0, 0, 1];

/// A connection to the server from the loopback address `src`.
async fn connect_from_async(src: [u8; 4], port: u16) -> std::io::Result<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((src, 0)))?;
    socket.connect(SocketAddr::from((LEGIT, port))).await
}

/// One runtime for every blocking connect of the tests: making one per
/// connection is slow enough, under a parallel test run, for the first
/// of 200 silent connections to meet its deadline before the last is made.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime")
    })
}

/// The same, as a blocking stream with timeouts.
fn connect_from(src: [u8; 4], port: u16) -> TcpStream {
    let stream = runtime()
        .block_on(connect_from_async(src, port))
        .expect("connect")
        .into_std()
        .expect("std stream");
    stream.set_nonblocking(false).expect("blocking");
    stream.set_read_timeout(Some(WAIT)).expect("timeout");
    stream
}

/// Sends `GET path` on a fresh connection from `src`; the raw answer.
fn get_from(src: [u8; 4], port: u16, path: &str, key: Option<&str>) -> String {
    let mut c = connect_from(src, port);
    let key = key.map_or(String::new(), |k| format!("X-API-Key: {k}\r\n"));
    let _ = c.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: x\r\n{key}Connection: close\r\n\r\n").as_bytes(),
    );
    let mut buf = Vec::new();
    let _ = c.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// Asks `GET path` from `src` until the answer starts with `status` (the
/// server admits connections as it gets to them, not as they connect).
fn until_answer(src: [u8; 4], port: u16, path: &str, status: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let answer = get_from(src, port, path, None);
        if answer.starts_with(status) {
            return answer;
        }
        assert!(Instant::now() < deadline, "never {status}: {answer}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until the server closes `c` (EOF or reset); how long it took.
fn closed_by_server(c: &mut TcpStream) -> Duration {
    let start = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => return start.elapsed(),
            Ok(_) => {}
        }
        assert!(start.elapsed() < WAIT, "the server never closed it");
    }
}

/// Polls `/metrics` until `series` reaches `at_least`.
fn wait_metric(s: &Server, series: &str, at_least: u64) -> u64 {
    let deadline = Instant::now() + WAIT;
    loop {
        let text = s.get("/metrics").text();
        let value = text
            .lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse::<u64>().ok())
            .unwrap_or(0);
        if value >= at_least {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "{series} stayed at {value}, wanted {at_least}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn start(dir: &std::path::Path, server: Value) -> Server {
    Server::start_with_config(dir, &json!({ "server": server }).to_string())
}

/// `start`, with the server's log in a file (returned).
fn start_logged(dir: &std::path::Path, server: Value) -> (Server, std::path::PathBuf) {
    let log = dir.join("server.log");
    let config = dir.join("config.json");
    std::fs::write(&config, json!({ "server": server }).to_string()).unwrap();
    let s = Server::start_with(
        dir,
        Options {
            args: vec!["--config", config.to_str().unwrap()],
            log: Some(log.clone()),
            ..Options::default()
        },
    );
    (s, log)
}

#[test]
fn silent_and_slow_connections_are_closed_by_the_deadline_and_the_server_keeps_accepting() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(
        dir.path(),
        json!({"max_connections": 200, "max_connections_per_address": 200,
               "request_header_timeout_ms": 3000}),
    );
    // 200 connections that say nothing take every slot.
    let mut silent: Vec<TcpStream> = (0..200).map(|_| connect_from(ATTACKER, s.port)).collect();
    // (A legitimate client meanwhile is answered 503 with Retry-After:
    // `http_ops.rs` checks that with a bound of two.)
    // Each silent connection is closed once its deadline passes...
    for c in &mut silent {
        closed_by_server(c);
    }
    // ...and the server serves again.
    let answer = get_from(LEGIT, s.port, "/health", None);
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    wait_metric(
        &s,
        "tsstore_connections_closed_total{reason=\"request_deadline\"}",
        199,
    );

    // A byte now and then does not extend the deadline.
    let mut slow = connect_from(ATTACKER, s.port);
    slow.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let start = Instant::now();
    let head = b"GET /health HTTP/1.1\r\nHost: x\r\n";
    let mut closed = false;
    for b in head.iter().cycle().take(60) {
        if slow.write_all(&[*b]).is_err() {
            closed = true;
            break;
        }
        let mut buf = [0u8; 64];
        match slow.read(&mut buf) {
            Ok(0) => {
                closed = true;
                break;
            }
            Err(e) if e.kind() != std::io::ErrorKind::WouldBlock => {
                closed = true;
                break;
            }
            _ => {}
        }
    }
    assert!(closed, "a byte-at-a-time client was never closed");
    assert!(start.elapsed() < Duration::from_secs(15));
}

#[test]
fn preface_only_h2c_and_idle_keep_alive_connections_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(
        dir.path(),
        json!({"request_header_timeout_ms": 1000, "keep_alive_timeout_ms": 1000}),
    );
    // The HTTP/2 preface and an empty SETTINGS frame, then nothing.
    let mut h2 = connect_from(LEGIT, s.port);
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .unwrap();
    closed_by_server(&mut h2);
    // One complete request, then silence on a kept-alive connection.
    let mut kept = connect_from(LEGIT, s.port);
    kept.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 512];
    let n = kept.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    closed_by_server(&mut kept);
    wait_metric(&s, "tsstore_connections_closed_total{reason=\"idle\"}", 1);
}

#[test]
fn the_per_address_limit_answers_503_while_another_address_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let (s, log) = start_logged(
        dir.path(),
        json!({"max_connections": 64, "max_connections_per_address": 4}),
    );
    let _held: Vec<TcpStream> = (0..4).map(|_| connect_from(ATTACKER, s.port)).collect();
    // The four are admitted (the gauge counts this request too).
    wait_metric(&s, "tsstore_connections_open", 5);
    let answer = until_answer(ATTACKER, s.port, "/health", "HTTP/1.1 503 ");
    assert!(answer.contains("retry-after: 1"), "{answer}");
    assert!(
        answer.contains("too_many_connections_from_address"),
        "{answer}"
    );
    assert!(get_from(LEGIT, s.port, "/health", None).starts_with("HTTP/1.1 200 "));

    // Ten thousand refused connections make a handful of log lines.
    runtime().block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let port = s.port;
        let mut flood = tokio::task::JoinSet::new();
        // Sixteen at a time, each waiting for its answer, so that every
        // one reaches the server (a flood faster than the accept queue
        // would be dropped by the kernel, never seen by the server).
        for _ in 0..16 {
            flood.spawn(async move {
                for _ in 0..625 {
                    let mut c = connect_from_async(ATTACKER, port).await.expect("connect");
                    let _ = c
                        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                        .await;
                    let mut sink = Vec::new();
                    let _ = c.read_to_end(&mut sink).await;
                }
            });
        }
        while flood.join_next().await.is_some() {}
    });
    wait_metric(
        &s,
        "tsstore_connections_refused_total{reason=\"address_limit\"}",
        10_001,
    );
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("refused")).collect();
    assert!(!lines.is_empty(), "the refusals were reported: {text}");
    assert!(lines.len() <= 5, "{} lines: {text}", lines.len());
    assert!(lines.iter().any(|l| l.contains("127.0.0.2")), "{text}");
    // The server still serves the other address.
    assert!(get_from(LEGIT, s.port, "/health", None).starts_with("HTTP/1.1 200 "));
}

#[test]
fn auth_throttling_slows_a_guesser_while_another_address_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let (s, log) = start_logged(
        dir.path(),
        json!({"auth_failure_burst": 5, "auth_failures_per_sec": 1}),
    );
    let key = s.create_store(json!({"name": "door"}));
    let guess = "tsstore_00000000-0000-4000-8000-000000000000";
    let mut statuses = Vec::new();
    for _ in 0..20 {
        let answer = get_from(ATTACKER, s.port, "/api/stores/door/stats", Some(guess));
        statuses.push(answer[9..12].to_string());
        if answer.starts_with("HTTP/1.1 429") {
            assert!(answer.contains("retry-after: "), "{answer}");
            assert!(answer.contains("auth_throttled"), "{answer}");
        }
    }
    let tested = statuses.iter().filter(|s| *s == "401").count();
    assert!((5..=8).contains(&tested), "{statuses:?}");
    assert_eq!(statuses.last().map(String::as_str), Some("429"));
    // Even the right key is refused unchecked from the throttled address...
    let answer = get_from(ATTACKER, s.port, "/api/stores/door/stats", Some(&key));
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    // ...while another address is served, and its first mistake is a 401.
    let answer = get_from(LEGIT, s.port, "/api/stores/door/stats", Some(&key));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let answer = get_from(LEGIT, s.port, "/api/stores/door/stats", Some(guess));
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    // The admin key shares the budget.
    let mut c = connect_from(ATTACKER, s.port);
    c.write_all(b"POST /api/stores HTTP/1.1\r\nHost: x\r\nX-Admin-Key: wrong-admin-key-0000000\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
        .unwrap();
    let mut buf = Vec::new();
    let _ = c.read_to_end(&mut buf);
    let answer = String::from_utf8_lossy(&buf);
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    wait_metric(&s, "tsstore_auth_failures_total{reason=\"throttled\"}", 10);
    wait_metric(&s, "tsstore_auth_failures_total{reason=\"invalid_key\"}", 6);
    s.stop();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("127.0.0.2"), "{text}");
    assert!(!text.contains(guess) && !text.contains(&key) && !text.contains(ADMIN));
    let lines = text
        .lines()
        .filter(|l| l.contains("authentication"))
        .count();
    assert!(lines <= 4, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_answering_idle_writer_is_closed_while_a_quiet_reader_stays() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), json!({"ws_idle_timeout_ms": 1500}));
    let key = s.create_store(json!({"name": "quiet"}));
    let mut reader =
        common::ws_connect(&s, &format!("/api/stores/quiet/ws/read?api_key={key}")).await;
    let mut writer =
        common::ws_connect(&s, &format!("/api/stores/quiet/ws/write?api_key={key}")).await;
    writer
        .send(Message::text(json!({"data": {"t": 1}}).to_string()))
        .await
        .unwrap();
    let started = Instant::now();
    // Pings from the writer (and its pongs) do not keep it busy.
    let (code, reason) = loop {
        tokio::select! {
            m = writer.next() => match m {
                Some(Ok(Message::Close(Some(f)))) => break (u16::from(f.code), f.reason.to_string()),
                Some(Ok(_)) => {}
                other => panic!("expected a close frame, got {other:?}"),
            },
            _ = tokio::time::sleep(Duration::from_millis(200)) => {
                writer.send(Message::Ping(Default::default())).await.unwrap();
            }
        }
        assert!(started.elapsed() < WAIT, "the idle writer was never closed");
    };
    assert_eq!(code, 1008);
    assert!(reason.contains("no record"), "{reason}");
    // The reader, on the same quiet store for as long, is still there.
    let first = loop {
        let m = tokio::time::timeout(WAIT, reader.next()).await.unwrap();
        if let Some(Ok(Message::Text(t))) = m {
            break serde_json::from_str::<Value>(&t).unwrap();
        }
    };
    assert_eq!(first["data"], json!({"t": 1}));
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let key2 = key.clone();
    let port = s.port;
    tokio::task::spawn_blocking(move || {
        let _ = get_from(LEGIT, port, "/health", None);
        let mut c = connect_from(LEGIT, port);
        let body = json!({"data": {"t": 2}}).to_string();
        let _ = c.write_all(
            format!(
                "POST /api/stores/quiet/data HTTP/1.1\r\nHost: x\r\nX-API-Key: {key2}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        );
        let mut buf = Vec::new();
        let _ = c.read_to_end(&mut buf);
    })
    .await
    .unwrap();
    let second = loop {
        let m = tokio::time::timeout(WAIT, reader.next()).await.unwrap();
        match m {
            Some(Ok(Message::Text(t))) => break serde_json::from_str::<Value>(&t).unwrap(),
            Some(Ok(_)) => {}
            other => panic!("the reader was closed: {other:?}"),
        }
    };
    assert_eq!(second["data"], json!({"t": 2}));
    wait_metric(
        &s,
        "tsstore_connections_closed_total{reason=\"ws_idle\"}",
        1,
    );
}

#[test]
fn an_invalid_utf8_text_frame_closes_with_1007() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let key = s.create_store(json!({"name": "utf"}));
    let mut c = connect_from(LEGIT, s.port);
    c.write_all(
        format!(
            "GET /api/stores/utf/ws/write?api_key={key} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        c.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    // A masked text frame whose payload is not UTF-8.
    let mask = [1u8, 2, 3, 4];
    let payload = [0xffu8, 0xfe, 0x41];
    let mut frame = vec![0x81, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    c.write_all(&frame).unwrap();
    let mut close = [0u8; 4];
    c.read_exact(&mut close).unwrap();
    assert_eq!(close[0], 0x88, "a close frame");
    assert_eq!(u16::from_be_bytes([close[2], close[3]]), 1007);
}
