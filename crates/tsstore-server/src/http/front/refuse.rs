//! A connection over a bound is answered, not just cut: if it sends an
//! HTTP/1 request head within `GRACE`, it gets `503` with `Retry-After`
//! and the usual JSON error body, so a client (or the person behind it)
//! learns why. Anything else (TLS, HTTP/2, silence) is closed. At most
//! `MAX_REFUSING` refusals are in progress at once; past that a
//! connection is closed at once, so refusing cannot itself be used to
//! hold sockets.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crate::guard::Refused;

/// Time a refused connection gets to send its request head.
pub const GRACE: Duration = Duration::from_millis(500);
/// Refusals answered at once.
pub const MAX_REFUSING: usize = 64;
/// Most bytes of a refused request read (a request head; the rest of a
/// body is not waited for).
const MAX_HEAD: usize = 8192;

/// Answers (or closes) a connection refused for `why`.
pub async fn refuse(mut stream: TcpStream, why: Refused, answering: &Arc<Semaphore>) {
    let Ok(_permit) = answering.try_acquire() else {
        return;
    };
    let mut head = Vec::with_capacity(1024);
    let read_head = async {
        let mut chunk = [0u8; 1024];
        while head.len() < MAX_HEAD {
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            head.extend_from_slice(&chunk[..n]);
            if !looks_like_http1(&head) {
                return None;
            }
            if head.windows(4).any(|w| w == b"\r\n\r\n") {
                return Some(());
            }
        }
        Some(())
    };
    if tokio::time::timeout(GRACE, read_head)
        .await
        .ok()
        .flatten()
        .is_none()
    {
        return;
    }
    let _ = tokio::time::timeout(GRACE, async {
        stream.write_all(response(why).as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
}

/// Whether `head` can be the start of an HTTP/1 request: a method in
/// capitals, then a space (not a TLS record, not the HTTP/2 preface).
fn looks_like_http1(head: &[u8]) -> bool {
    if head.starts_with(b"PRI ") {
        return false;
    }
    for (i, b) in head.iter().enumerate() {
        match b {
            b'A'..=b'Z' if i < 16 => {}
            b' ' => return i > 0,
            _ => return false,
        }
    }
    head.len() < 16
}

fn response(why: Refused) -> String {
    let (message, code) = match why {
        Refused::Global => (
            "the server has as many connections open as it serves (server.max_connections); retry shortly",
            "too_many_connections",
        ),
        Refused::Address => (
            "your address has as many connections open as one client may have (server.max_connections_per_address); close some or retry shortly",
            "too_many_connections_from_address",
        ),
    };
    let body = serde_json::json!({ "error": message, "code": code }).to_string();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http1_heads_are_answered() {
        assert!(looks_like_http1(b"GET /health HTTP/1.1\r\n"));
        assert!(looks_like_http1(b"POS"));
        assert!(!looks_like_http1(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
        assert!(!looks_like_http1(&[0x16, 0x03, 0x01]));
        assert!(!looks_like_http1(b"get / HTTP/1.1"));
        assert!(!looks_like_http1(b" GET"));
        let r = response(Refused::Address);
        assert!(r.starts_with("HTTP/1.1 503 "));
        assert!(r.contains("retry-after: 1\r\n"));
        let body = r.split("\r\n\r\n").nth(1).unwrap();
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["code"], "too_many_connections_from_address");
    }
}
