//! A WebSocket peer on loopback for outbound connections to dial: it
//! reports what it receives (and the Authorization header it was
//! dialled with) and sends what the test hands it.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

/// Longest a test waits for what it expects.
pub const WAIT: Duration = Duration::from_secs(30);

/// What a peer saw on one accepted connection.
pub enum Seen {
    Connected { authorization: Option<String> },
    Text(Value),
    Closed,
}

/// A WebSocket peer on loopback that reports what it receives, and sends
/// what the test hands it. `drop_after`: close each connection after this
/// many messages (then accept the next one).
pub struct Peer {
    pub port: u16,
    pub seen: mpsc::UnboundedReceiver<Seen>,
    pub to_send: mpsc::UnboundedSender<String>,
}

pub async fn peer(drop_after: Option<usize>) -> Peer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (seen_tx, seen) = mpsc::unbounded_channel();
    let (to_send, mut send_rx) = mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        let mut drops = 0;
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let mut auth = None;
            // The callback's error type is tungstenite's; clippy finds it large.
            #[allow(clippy::result_large_err)]
            let callback = |req: &Request, resp: Response| {
                auth = req
                    .headers()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                Ok(resp)
            };
            let Ok(ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
                continue;
            };
            let _ = seen_tx.send(Seen::Connected {
                authorization: auth,
            });
            let (mut tx, mut rx) = ws.split();
            let mut count = 0;
            loop {
                tokio::select! {
                    m = rx.next() => match m {
                        Some(Ok(Message::Text(t))) => {
                            let v: Value = serde_json::from_str(&t).unwrap_or(Value::Null);
                            let _ = seen_tx.send(Seen::Text(v));
                            count += 1;
                            if drop_after.is_some_and(|n| count >= n) && drops == 0 {
                                drops += 1;
                                let _ = tx.close().await;
                                let _ = seen_tx.send(Seen::Closed);
                                break;
                            }
                        }
                        Some(Ok(_)) => {}
                        _ => {
                            let _ = seen_tx.send(Seen::Closed);
                            break;
                        }
                    },
                    Some(out) = send_rx.recv() => {
                        let _ = tx.send(Message::Text(out.into())).await;
                    }
                }
            }
        }
    });
    Peer {
        port,
        seen,
        to_send,
    }
}

impl Peer {
    pub async fn next(&mut self) -> Seen {
        tokio::time::timeout(WAIT, self.seen.recv())
            .await
            .expect("the peer sees something in time")
            .expect("the peer runs")
    }

    /// The next data message's `data.n` (skipping connects and closes).
    pub async fn next_n(&mut self) -> i64 {
        loop {
            if let Seen::Text(v) = self.next().await {
                assert_eq!(v["type"], "data", "{v}");
                return v["data"]["n"].as_i64().expect("n");
            }
        }
    }
}

/// Inserts `{"n": n}` for each n of `range` in one batch.
pub fn insert_batch(s: &super::Server, key: &str, store: &str, range: std::ops::Range<i64>) {
    let batch: Vec<Value> = range.map(|n| json!({"data": {"n": n}})).collect();
    let r = s
        .req("POST", &format!("/api/stores/{store}/data/batch"))
        .key(key)
        .json(&json!(batch))
        .send();
    assert_eq!(r.status, 201, "{}", r.text());
}

/// Creates an outbound connection; its view.
pub fn create(s: &super::Server, key: &str, store: &str, body: Value) -> Value {
    let r = s
        .req("POST", &format!("/api/stores/{store}/ws/connections"))
        .key(key)
        .json(&body)
        .send();
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()
}

/// GETs `path` until its JSON answer satisfies `done` (at most `WAIT`).
pub async fn get_when(
    s: &super::Server,
    key: &str,
    path: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let v = s.req("GET", path).key(key).send().json();
        if done(&v) {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "{v}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
