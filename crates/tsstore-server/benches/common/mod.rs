//! What the end-to-end benches share: the release server binary started
//! on loopback, a raw HTTP/1.1 client, stores, and the Unix-socket fill.
#![allow(dead_code)]

pub mod engines;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const ADMIN: &str = "bench-admin-key-0123456789";
pub const RECORD: &str = r#"{"temperature":21.5,"humidity":40,"room":"lab"}"#;

pub struct Server {
    child: Child,
    pub port: u16,
    pub sock: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the server: this build's binary, or the one `BIN` names (a musl
/// or cross build, to compare two builds with the same clients).
pub fn start() -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let sock = dir.path().join("bench.sock");
    let bin = std::env::var_os("BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_tsstore").into());
    let mut child = Command::new(bin)
        .args(["serve", "--host", "127.0.0.1", "--port", "0", "--socket"])
        .arg(&sock)
        .arg("--path")
        .arg(dir.path().join("data"))
        .env("TSSTORE_ADMIN_KEY", ADMIN)
        .env("TSSTORE_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the server");
    let (port, mut out) = listening(&mut child);
    // The socket line follows the HTTP one.
    let _ = out.read_line(&mut String::new());
    Server {
        child,
        port,
        sock,
        _dir: dir,
    }
}

/// The port a just started server (stdout piped) says it listens on, and
/// the rest of its output.
pub fn listening(child: &mut Child) -> (u16, BufReader<std::process::ChildStdout>) {
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    loop {
        line.clear();
        if out.read_line(&mut line).expect("server output") == 0 {
            panic!("the server stopped before listening");
        }
        if let Some(addr) = line.trim().strip_prefix("listening on http://") {
            let port = addr.rsplit(':').next().and_then(|p| p.parse().ok());
            return (port.expect("port"), out);
        }
    }
}

/// One HTTP/1.1 request on a kept-alive connection; the body of the answer.
pub fn http(
    conn: &mut (BufReader<std::net::TcpStream>, std::net::TcpStream),
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> String {
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    conn.1.write_all(req.as_bytes()).expect("send");
    let mut len = 0;
    let mut line = String::new();
    loop {
        line.clear();
        conn.0.read_line(&mut line).expect("response head");
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().expect("length");
        }
    }
    let mut body = vec![0; len];
    conn.0.read_exact(&mut body).expect("body");
    String::from_utf8_lossy(&body).into_owned()
}

pub fn connect_http(port: u16) -> (BufReader<std::net::TcpStream>, std::net::TcpStream) {
    let s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_nodelay(true).expect("nodelay");
    (BufReader::new(s.try_clone().expect("clone")), s)
}

pub fn create_store(port: u16, name: &str) -> String {
    let mut c = connect_http(port);
    let body = format!(r#"{{"name":"{name}","num_blocks":65536,"data_block_size":4096}}"#);
    let out = http(
        &mut c,
        "POST",
        "/api/stores",
        &format!("X-Admin-Key: {ADMIN}\r\n"),
        &body,
    );
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    v["api_key"].as_str().expect("api key").to_string()
}

pub fn rate(n: usize, t: Duration) -> f64 {
    n as f64 / t.as_secs_f64()
}

pub fn socket_client_for(
    sock: &Path,
    store: &str,
    key: &str,
) -> (BufReader<UnixStream>, UnixStream) {
    let s = UnixStream::connect(sock).expect("socket");
    let mut r = BufReader::new(s.try_clone().expect("clone"));
    let mut w = s;
    w.write_all(format!("AUTH {store} {key}\n").as_bytes())
        .expect("auth");
    let mut l = String::new();
    r.read_line(&mut l).expect("auth reply");
    assert_eq!(l, "OK\n");
    (r, w)
}

pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

pub fn object_count(port: u16, key: &str, store: &str) -> u64 {
    let mut c = connect_http(port);
    let out = http(
        &mut c,
        "GET",
        &format!("/api/stores/{store}/stats"),
        &format!("X-API-Key: {key}\r\n"),
        "",
    );
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    v["object_count"].as_u64().unwrap_or(0)
}

/// Stores `n` copies of `RECORD` through the Unix socket, pipelined.
pub fn fill(
    s: &Server,
    store: &'static str,
    key: &str,
    n: usize,
) -> tokio::task::JoinHandle<usize> {
    let (sock, key) = (s.sock.clone(), key.to_string());
    tokio::task::spawn_blocking(move || {
        let (r, mut w) = socket_client_for(&sock, store, &key);
        let chunk: String = std::iter::repeat_n(format!("{RECORD}\n"), 1000).collect();
        let reader = std::thread::spawn(move || r.lines().take(n).count());
        for _ in 0..n / 1000 {
            w.write_all(chunk.as_bytes()).expect("send");
        }
        reader.join().expect("replies")
    })
}

/// Whether this is a real bench run: `cargo bench` passes `--bench`, and
/// `cargo test --benches` runs the binary too, which then does nothing.
pub fn bench_requested() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// `STREAMING_SCALE` (default 1; 0.1: a quick look).
pub fn scale() -> f64 {
    std::env::var("STREAMING_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0)
}

/// `base` records scaled by `scale()`, at least 1 000.
pub fn scaled(base: usize) -> usize {
    ((base as f64 * scale()) as usize).max(1000)
}

/// Rounds asked for in the environment variable `name` (at least 1).
pub fn rounds(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
        .max(1)
}

/// The middle of `v` (the upper one of an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
