//! Test harness: the real `tsstore serve` binary on an ephemeral loopback
//! port, and a small HTTP/1.1 client that can send anything (bad UTF-8,
//! odd headers) over plain TCP or TLS.
#![allow(dead_code)]

pub mod collector;
pub mod influxd;
pub mod mosquitto;
pub mod peer;
pub mod victoria;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const ADMIN: &str = "test-admin-key-0123456789";
const START_TIMEOUT: Duration = Duration::from_secs(30);
const IO_TIMEOUT: Duration = Duration::from_secs(30);

pub fn tsstore_cmd() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tsstore"));
    for var in [
        "TSSTORE_CONFIG",
        "TSSTORE_DATA_PATH",
        "TSSTORE_ADMIN_KEY",
        "TSSTORE_MODE",
        "TSSTORE_PORT",
        "TSSTORE_HOST",
        "TSSTORE_TLS_CERT",
        "TSSTORE_TLS_KEY",
        "TSSTORE_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// Runs a `tsstore` command with `env` added to a clean environment.
pub fn cli(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = tsstore_cmd();
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run the tsstore binary")
}

/// A command that succeeds; its stdout.
pub fn cli_ok(args: &[&str]) -> String {
    let out = cli(args, &[]);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// A command that fails, saying why on stderr only; its stderr.
pub fn cli_fails(args: &[&str]) -> String {
    let out = cli(args, &[]);
    assert!(!out.status.success(), "{args:?} should fail");
    assert!(out.stdout.is_empty(), "errors go to stderr only");
    String::from_utf8(out.stderr).expect("utf-8 output")
}

/// A WebSocket client connection (tokio-tungstenite).
pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket to `path` on `s`, upgraded within 20 s.
pub async fn ws_connect(s: &Server, path: &str) -> Ws {
    let url = format!("ws://127.0.0.1:{}{path}", s.port);
    let limit = Duration::from_secs(20);
    let (ws, _) = tokio::time::timeout(limit, tokio_tungstenite::connect_async(url))
        .await
        .expect("connect in time")
        .expect("upgrade");
    ws
}

/// A running server; killed when dropped.
pub struct Server {
    child: Child,
    pub port: u16,
    pub data: PathBuf,
    /// Lines the server printed on stdout before it listened.
    pub banner: Vec<String>,
    pub tls: Option<rustls::pki_types::CertificateDer<'static>>,
}

pub struct Options<'a> {
    pub admin_key: Option<&'a str>,
    pub env: Vec<(&'a str, String)>,
    pub args: Vec<&'a str>,
    pub tls: Option<rustls::pki_types::CertificateDer<'static>>,
    /// Serve the Unix socket here (default: no socket).
    pub socket: Option<PathBuf>,
    /// Write the server's log (stderr) to this file instead of the test's.
    pub log: Option<PathBuf>,
    /// Listen on this port (default: any free one).
    pub port: Option<u16>,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options {
            admin_key: Some(ADMIN),
            env: Vec::new(),
            args: Vec::new(),
            tls: None,
            socket: None,
            log: None,
            port: None,
        }
    }
}

impl Server {
    pub fn start(dir: &Path) -> Server {
        Server::start_with(dir, Options::default())
    }

    /// Starts with `config` (JSON) written to `dir/config.json`.
    pub fn start_with_config(dir: &Path, config: &str) -> Server {
        let path = dir.join("config.json");
        std::fs::write(&path, config).expect("write config.json");
        let path = path.to_str().expect("utf-8 path");
        Server::start_with(
            dir,
            Options {
                args: vec!["--config", path],
                ..Options::default()
            },
        )
    }

    /// A server writing its log to `dir/server.log`, for tests that read
    /// what it logged.
    pub fn start_logged(dir: &Path) -> (Server, std::path::PathBuf) {
        let log = dir.join("server.log");
        let opts = Options {
            log: Some(log.clone()),
            ..Options::default()
        };
        (Server::start_with(dir, opts), log)
    }

    pub fn start_with(dir: &Path, opts: Options) -> Server {
        let data = dir.join("data");
        let mut cmd = tsstore_cmd();
        let port = opts.port.unwrap_or(0).to_string();
        cmd.args(["serve", "--host", "127.0.0.1", "--port", &port]);
        match &opts.socket {
            Some(path) => cmd.arg("--socket").arg(path),
            None => cmd.arg("--no-socket"),
        };
        cmd.arg("--path")
            .arg(&data)
            .args(&opts.args)
            .env("TSSTORE_SYNC", "never")
            .stdout(Stdio::piped())
            .stderr(match &opts.log {
                Some(path) => Stdio::from(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)
                        .expect("log file"),
                ),
                None => Stdio::inherit(),
            });
        if let Some(key) = opts.admin_key {
            cmd.env("TSSTORE_ADMIN_KEY", key);
        }
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start tsstore serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut banner = Vec::new();
        let port = loop {
            let line = match rx.recv_timeout(START_TIMEOUT) {
                Ok(l) => l,
                Err(e) => {
                    let _ = child.kill();
                    panic!("server did not report its address: {e}; printed {banner:?}");
                }
            };
            if let Some(addr) = line.strip_prefix("listening on ") {
                let port = addr.rsplit(':').next().expect("port");
                break port.parse().expect("numeric port");
            }
            banner.push(line);
        };
        Server {
            child,
            port,
            data,
            banner,
            tls: opts.tls,
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILLs the server (a crash: nothing of it runs after) and waits
    /// for it to be gone.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn stop(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        let (tx, rx) = mpsc::channel();
        let mut child = std::mem::replace(&mut self.child, dummy_child());
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        let exit = rx
            .recv_timeout(START_TIMEOUT)
            .expect("server stops within the timeout")
            .expect("wait");
        assert!(exit.success(), "server exited with {exit}");
    }

    pub fn req(&self, method: &str, path: &str) -> Request<'_> {
        Request {
            server: self,
            method: method.to_string(),
            path: path.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn get(&self, path: &str) -> Response {
        self.req("GET", path).send()
    }

    /// Creates a store (admin key) and returns its API key.
    pub fn create_store(&self, body: serde_json::Value) -> String {
        let r = self
            .req("POST", "/api/stores")
            .header("X-Admin-Key", ADMIN)
            .json(&body)
            .send();
        assert_eq!(r.status, 201, "create {body}: {}", r.text());
        r.json()["api_key"].as_str().expect("api_key").to_string()
    }
}

fn dummy_child() -> Child {
    Command::new("true").spawn().expect("spawn true")
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Request<'a> {
    server: &'a Server,
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request<'_> {
    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }

    pub fn key(self, key: &str) -> Self {
        self.header("X-API-Key", key)
    }

    pub fn body(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self.header("Content-Type", content_type)
    }

    pub fn json(self, v: &serde_json::Value) -> Self {
        self.body("application/json", v.to_string())
    }

    pub fn send(self) -> Response {
        let mut raw = format!(
            "{} {} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.method,
            self.path,
            self.body.len()
        )
        .into_bytes();
        for (k, v) in &self.headers {
            raw.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        raw.extend_from_slice(b"\r\n");
        raw.extend_from_slice(&self.body);
        let tcp = TcpStream::connect(("127.0.0.1", self.server.port)).expect("connect");
        tcp.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
        tcp.set_write_timeout(Some(IO_TIMEOUT)).expect("timeout");
        match &self.server.tls {
            None => exchange(tcp, &raw),
            Some(cert) => {
                let mut roots = rustls::RootCertStore::empty();
                roots.add(cert.clone()).expect("trust the test certificate");
                let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
                let config = rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .expect("protocol versions")
                    .with_root_certificates(roots)
                    .with_no_client_auth();
                let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
                let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name)
                    .expect("tls client");
                exchange(rustls::StreamOwned::new(conn, tcp), &raw)
            }
        }
    }
}

fn exchange(mut s: impl Read + Write, raw: &[u8]) -> Response {
    s.write_all(raw).expect("send request");
    s.flush().expect("flush");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            // TLS peers may close without close_notify once the response is out.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !buf.is_empty() => break,
            Err(e) => panic!("read response: {e}"),
        }
    }
    Response::parse(&buf)
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    fn parse(buf: &[u8]) -> Response {
        let split = buf
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("end of headers");
        let head = std::str::from_utf8(&buf[..split]).expect("ascii headers");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().expect("status line");
        let status = status_line
            .split(' ')
            .nth(1)
            .expect("status")
            .parse()
            .expect("numeric status");
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let mut body = buf[split + 4..].to_vec();
        if headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
        {
            body = dechunk(&body);
        }
        Response {
            status,
            headers,
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {}", self.text()))
    }

    /// Asserts an error response: status, `code`, and a non-empty message.
    pub fn expect_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{}", self.text());
        let v = self.json();
        assert_eq!(v["code"], code, "{v}");
        assert!(
            v["error"].as_str().is_some_and(|m| !m.is_empty()),
            "error message: {v}"
        );
        assert_eq!(self.header("content-type"), Some("application/json"));
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = b.windows(2).position(|w| w == b"\r\n").expect("chunk size");
        let size =
            usize::from_str_radix(std::str::from_utf8(&b[..line_end]).expect("hex").trim(), 16)
                .expect("chunk size");
        if size == 0 {
            return out;
        }
        let start = line_end + 2;
        out.extend_from_slice(&b[start..start + size]);
        b = &b[start + size + 2..];
    }
}

/// The API key in the output of `tsstore create` or `key regenerate`.
pub fn key_of(output: &str) -> String {
    let line = output
        .lines()
        .find(|l| l.starts_with("API key"))
        .expect("an API key line");
    line.rsplit(' ').next().expect("the key").to_string()
}

/// The `objects` of a list response, checked against its `count`.
pub fn objects(v: &serde_json::Value) -> &Vec<serde_json::Value> {
    let list = v["objects"].as_array().expect("objects array");
    assert_eq!(v["count"].as_u64(), Some(list.len() as u64), "{v}");
    list
}

/// The timestamps of a list response, in order.
pub fn timestamps(v: &serde_json::Value) -> Vec<i64> {
    objects(v)
        .iter()
        .map(|o| o["timestamp"].as_i64().expect("timestamp"))
        .collect()
}

/// Everything under the data directory, sorted (to prove nothing was created).
pub fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            out.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    out.sort();
    out
}
