//! A collector process for delivery tests: it receives records over a
//! WebSocket (accepting tsstore's push, or dialling a durable live read),
//! handles each one by appending its `data.n` to a file, and only then
//! acknowledges it with `{"type":"ack","timestamp":T}`. It is a real
//! process so a test can SIGKILL it mid-stream: what the file holds is
//! what it handled.
//!
//! The child is the test binary itself, re-run on one test (`entry`)
//! with `ROLE_ENV` set; that test does nothing in a normal run.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

/// `serve:PORT` (accept pushes) or `dial:URL` (a durable live read).
pub const ROLE_ENV: &str = "TSSTORE_COLLECTOR_ROLE";
/// The file it appends `n` to, one per line.
pub const OUT_ENV: &str = "TSSTORE_COLLECTOR_OUT";
/// What handling one record costs the collector.
const HANDLING: Duration = Duration::from_micros(50);
/// Longest a child lives, in case nobody kills it.
const CHILD_LIFETIME: Duration = Duration::from_secs(120);

/// Starts the collector in a child process running test `entry` of
/// this test binary.
pub fn spawn(entry: &str, role: &str, out: &Path) -> Child {
    Command::new(std::env::current_exe().expect("test binary"))
        .args([entry, "--exact", "--nocapture", "--test-threads", "1"])
        .env(ROLE_ENV, role)
        .env(OUT_ENV, out)
        .stdout(Stdio::null())
        .spawn()
        .expect("start the collector")
}

/// What the collector handled: every `n`, in order, repeats included.
pub fn handled(out: &Path) -> Vec<i64> {
    std::fs::read_to_string(out)
        .unwrap_or_default()
        .lines()
        // A line cut by the kill is not a handled record.
        .filter_map(|l| l.strip_suffix(';'))
        .filter_map(|l| l.parse().ok())
        .collect()
}

/// The child's work, when this process is one (`false` otherwise).
pub async fn run_if_child() -> bool {
    let (Ok(role), Ok(out)) = (std::env::var(ROLE_ENV), std::env::var(OUT_ENV)) else {
        return false;
    };
    let work = async {
        if let Some(port) = role.strip_prefix("serve:") {
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port.parse().unwrap()))
                .await
                .expect("collector listens");
            loop {
                let (tcp, _) = listener.accept().await.expect("accept");
                if let Ok(ws) = tokio_tungstenite::accept_async(tcp).await {
                    handle(ws, &out).await;
                }
            }
        } else if let Some(url) = role.strip_prefix("dial:") {
            loop {
                if let Ok((ws, _)) = tokio_tungstenite::connect_async(url).await {
                    handle(ws, &out).await;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let _ = tokio::time::timeout(CHILD_LIFETIME, work).await;
    true
}

/// Handles what one connection sends: append, then ack, record by
/// record. Like a flow engine, it reads the socket as fast as messages
/// come (so its WebSocket answers pings at once) into a queue in memory,
/// and handles them from there at its own pace: what a transport-level
/// confirmation calls delivered may still be in that queue.
async fn handle<S>(ws: tokio_tungstenite::WebSocketStream<S>, out: &str)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(out)
        .expect("collector file");
    let (mut tx, mut rx) = ws.split();
    let (queue, mut queued) = tokio::sync::mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        while let Some(Ok(m)) = rx.next().await {
            if let Message::Text(t) = m
                && queue.send(t).is_err()
            {
                return;
            }
        }
    });
    while let Some(t) = queued.recv().await {
        let v: Value = serde_json::from_str(&t).unwrap_or(Value::Null);
        if v["type"] != "data" {
            continue;
        }
        let n = v["data"]["n"].as_i64().expect("n");
        // The work of handling a record.
        std::thread::sleep(HANDLING);
        // Handled: in the file (the kernel's, whatever kills this).
        file.write_all(format!("{n};\n").as_bytes()).expect("write");
        let ack = serde_json::json!({"type": "ack", "timestamp": v["timestamp"]});
        if tx
            .send(Message::Text(ack.to_string().into()))
            .await
            .is_err()
        {
            break;
        }
    }
    reader.abort();
}

/// A free loopback port (bound, then released for the child to take).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}
