//! `tsstore health`: one plain HTTP/1.1 `GET /health` to a local server,
//! for container health checks and service scripts, which may have no
//! curl (a `FROM scratch` image has nothing but the binary).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Why the server is not healthy, as the command prints it.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("cannot reach {addr}: {source}")]
    Unreachable {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot reach {addr}: it resolves to no address")]
    NoAddress { addr: String },
    #[error("{addr} answered: {answer}")]
    Unhealthy { addr: String, answer: String },
}

/// Largest answer read.
const MAX_ANSWER: u64 = 64 * 1024;

/// Asks `host:port` for `/health`; its body when the answer is 200 and
/// says `"ok"`.
pub fn health(host: &str, port: u16, timeout: Duration) -> Result<String, ProbeError> {
    let addr = format!("{host}:{port}");
    let unreachable = |source| ProbeError::Unreachable {
        addr: addr.clone(),
        source,
    };
    let target = addr
        .to_socket_addrs()
        .map_err(unreachable)?
        .next()
        .ok_or_else(|| ProbeError::NoAddress { addr: addr.clone() })?;
    let mut tcp = TcpStream::connect_timeout(&target, timeout).map_err(unreachable)?;
    tcp.set_read_timeout(Some(timeout))
        .and_then(|()| tcp.set_write_timeout(Some(timeout)))
        .map_err(unreachable)?;
    let request = format!("GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).map_err(unreachable)?;
    let mut answer = String::new();
    tcp.take(MAX_ANSWER)
        .read_to_string(&mut answer)
        .map_err(unreachable)?;
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let ok = head.starts_with("HTTP/1.1 200") && body.contains("\"status\":\"ok\"");
    if ok {
        Ok(body.trim().to_string())
    } else {
        Err(ProbeError::Unhealthy {
            addr,
            answer: head.lines().next().unwrap_or("nothing").to_string(),
        })
    }
}
