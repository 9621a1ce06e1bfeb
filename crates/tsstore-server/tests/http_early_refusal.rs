//! Refusals that come before the body is read must still reach clients
//! that write their whole request before reading (Python's urllib, many
//! embedded HTTP stacks): the server reads and discards the rest of the
//! body, up to a bound, before it answers. Past the bound it cuts the
//! connection.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::Server;
use serde_json::json;

const TWO_MIB: usize = 2 << 20;

/// Sends `head` and then `body` in full with a plain blocking socket, and
/// only then reads the answer.
fn send_all_then_read(port: u16, head: &str, body: &[u8]) -> (u16, serde_json::Value) {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    c.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
    c.write_all(head.as_bytes()).expect("headers sent");
    c.write_all(body)
        .expect("the whole body is taken, not cut off");
    let mut answer = Vec::new();
    c.read_to_end(&mut answer)
        .expect("the answer arrives (no reset)");
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body_at = text.find("\r\n\r\n").expect("end of headers") + 4;
    let json = serde_json::from_str(&text[body_at..])
        .unwrap_or_else(|e| panic!("JSON body ({e}) in {text:?}"));
    (status, json)
}

fn big_json() -> Vec<u8> {
    let mut body = br#"{"data":""#.to_vec();
    body.resize(TWO_MIB - 2, b'x');
    body.extend_from_slice(br#""}"#);
    body
}

#[test]
fn a_client_that_writes_the_whole_body_first_reads_the_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let key = s.create_store(json!({"name": "plant"}));
    let body = big_json();
    let post = |path: &str, extra: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\n\r\n",
            body.len()
        )
    };

    // Over the 1 MiB default limit, with and without a declared length.
    let head = post("/api/stores/plant/data", &format!("X-API-Key: {key}\r\n"));
    let (status, err) = send_all_then_read(s.port, &head, &body);
    assert_eq!(
        (status, err["code"].as_str()),
        (413, Some("payload_too_large"))
    );

    let mut chunked = Vec::new();
    for part in body.chunks(64 * 1024) {
        chunked.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        chunked.extend_from_slice(part);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let head = format!(
        "POST /api/stores/plant/data HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nX-API-Key: {key}\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    let (status, err) = send_all_then_read(s.port, &head, &chunked);
    assert_eq!(
        (status, err["code"].as_str()),
        (413, Some("payload_too_large"))
    );

    // Refused before the body is looked at: wrong key, unknown store, no route.
    let head = post("/api/stores/plant/data", "X-API-Key: tsstore_wrong\r\n");
    let (status, err) = send_all_then_read(s.port, &head, &body);
    assert_eq!(
        (status, err["code"].as_str()),
        (401, Some("invalid_api_key"))
    );
    let head = post("/api/stores/nobody/data", &format!("X-API-Key: {key}\r\n"));
    assert_eq!(send_all_then_read(s.port, &head, &body).0, 401);
    let head = post("/api/nothing-here", "");
    let (status, err) = send_all_then_read(s.port, &head, &body);
    assert_eq!(
        (status, err["code"].as_str()),
        (404, Some("route_not_found"))
    );

    // A body within the limit, refused for its content type, also answers.
    let small = br#"{"data": 1}"#;
    let head = format!(
        "POST /api/stores/plant/data HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: image/png\r\nX-API-Key: {key}\r\nContent-Length: {}\r\n\r\n",
        small.len()
    );
    assert_eq!(send_all_then_read(s.port, &head, small).0, 415);

    // Nothing was stored along the way.
    let stats = s
        .req("GET", "/api/stores/plant/stats")
        .key(&key)
        .send()
        .json();
    assert_eq!(stats["active_blocks"], 0, "{stats}");
}

/// Writes an endless body; returns how much went out before the server
/// cut the connection (bounded: fails if it never does).
fn bytes_sent_before_cut(port: u16, head: &str, chunked: bool) -> usize {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
    c.write_all(head.as_bytes()).unwrap();
    let piece = vec![b'x'; 64 * 1024];
    let mut framed = Vec::new();
    if chunked {
        framed.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
    }
    framed.extend_from_slice(&piece);
    if chunked {
        framed.extend_from_slice(b"\r\n");
    }
    let start = Instant::now();
    let mut sent = 0usize;
    while sent < 256 << 20 && start.elapsed() < Duration::from_secs(60) {
        match c.write_all(&framed) {
            Ok(()) => sent += framed.len(),
            Err(_) => return sent,
        }
    }
    panic!("the server still took the body after {sent} bytes");
}

#[test]
fn a_client_that_keeps_sending_is_cut_off_at_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let key = s.create_store(json!({"name": "plant"}));
    // Endless chunked body: read and discarded up to 4 × the 1 MiB limit,
    // then the connection is closed (socket buffers take some more).
    let head = format!(
        "POST /api/stores/plant/data HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-API-Key: {key}\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    let sent = bytes_sent_before_cut(s.port, &head, true);
    assert!(
        (4 << 20..64 << 20).contains(&sent),
        "cut off after {sent} bytes"
    );
    // A declared length far past the bound is not read at all.
    let head = format!(
        "POST /api/stores/plant/data HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-API-Key: {key}\r\nContent-Length: {}\r\n\r\n",
        1u64 << 40
    );
    let sent = bytes_sent_before_cut(s.port, &head, false);
    assert!(sent < 64 << 20, "cut off after {sent} bytes");
    // The server is fine afterwards.
    assert_eq!(s.get("/health").status, 200);
}
