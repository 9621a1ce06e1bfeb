//! A small HTTP/1.1 client on hyper's own connection API, for the few
//! requests the server and the CLI make: webhook POSTs and the batches of
//! `tsstore import --url`. No proxy (like every outbound connection), no
//! redirects (a redirect would take the request's headers, keys among
//! them, elsewhere), one deadline per request covering connect, TLS, send
//! and answer, and an answer body of at most `MAX_ANSWER` bytes. The one
//! idle connection is kept for the next request to the same origin, so a
//! run of batches does not pay a handshake each.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HOST, HeaderMap, HeaderValue};
use http::uri::{Scheme, Uri};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Largest answer body read; the rest is refused (`HttpError::TooLarge`).
pub const MAX_ANSWER: usize = 4 << 20;

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("invalid URL: {0}")]
    Url(#[from] http::uri::InvalidUri),
    #[error("the URL must start with http:// or https:// and name a host")]
    Scheme,
    #[error("cannot connect: {0}")]
    Connect(#[source] std::io::Error),
    #[error("TLS: {0}")]
    Tls(#[source] std::io::Error),
    #[error("invalid TLS server name: {0}")]
    ServerName(#[from] rustls::pki_types::InvalidDnsNameError),
    #[error("no answer within {} s", .0.as_secs())]
    Timeout(Duration),
    #[error("{0}")]
    Http(#[from] hyper::Error),
    #[error("invalid request: {0}")]
    Request(#[from] http::Error),
    #[error("the answer is larger than {MAX_ANSWER} bytes")]
    TooLarge,
}

impl HttpError {
    /// A failure before anything was sent (connect, TLS): retrying later
    /// may work.
    pub fn is_connect(&self) -> bool {
        matches!(
            self,
            HttpError::Connect(_) | HttpError::Tls(_) | HttpError::Timeout(_)
        )
    }
}

/// A whole answer.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: StatusCode,
    pub body: Bytes,
}

/// Where a request goes: what a kept connection is reused for.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    tls: bool,
    host: String,
    port: u16,
}

pub struct HttpClient {
    tls: tokio_rustls::TlsConnector,
    timeout: Duration,
    /// The connection of the last request, if it may be reused.
    idle: Mutex<Option<(Origin, SendRequest<Full<Bytes>>)>>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// A client using `tls` for `https://` and `timeout` per request.
    pub fn new(tls: rustls::ClientConfig, timeout: Duration) -> HttpClient {
        HttpClient {
            tls: tokio_rustls::TlsConnector::from(Arc::new(tls)),
            timeout,
            idle: Mutex::new(None),
        }
    }

    /// Sends one request and reads its whole answer, within the timeout.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Result<HttpResponse, HttpError> {
        let exchange = self.exchange(method, url, headers, body);
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| HttpError::Timeout(self.timeout))?
    }

    async fn exchange(
        &self,
        method: Method,
        url: &str,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Result<HttpResponse, HttpError> {
        let uri: Uri = url.parse()?;
        let origin = origin(&uri)?;
        let mut request = Request::builder()
            .method(method)
            .uri(uri.path_and_query().map_or("/", |p| p.as_str()))
            .body(Full::new(body))?;
        *request.headers_mut() = headers.clone();
        let host = match uri.port_u16() {
            Some(port) => format!("{}:{port}", uri.host().unwrap_or_default()),
            None => uri.host().unwrap_or_default().to_string(),
        };
        if let Ok(value) = HeaderValue::from_str(&host) {
            request.headers_mut().insert(HOST, value);
        }
        let mut sender = match self.take_idle(&origin).await {
            Some(sender) => sender,
            None => self.connect(&origin).await?,
        };
        let answer = sender.send_request(request).await?;
        let status = answer.status();
        let mut incoming = answer.into_body();
        let mut body = Vec::new();
        while let Some(frame) = incoming.frame().await {
            if let Ok(data) = frame?.into_data() {
                if body.len() + data.len() > MAX_ANSWER {
                    return Err(HttpError::TooLarge);
                }
                body.extend_from_slice(&data);
            }
        }
        if let Ok(mut idle) = self.idle.lock() {
            *idle = Some((origin, sender));
        }
        Ok(HttpResponse {
            status,
            body: body.into(),
        })
    }

    /// The kept connection, if it goes to `origin` and is still open.
    async fn take_idle(&self, origin: &Origin) -> Option<SendRequest<Full<Bytes>>> {
        let (kept, mut sender) = self.idle.lock().ok()?.take()?;
        if kept != *origin {
            return None;
        }
        sender.ready().await.ok()?;
        Some(sender)
    }

    async fn connect(&self, origin: &Origin) -> Result<SendRequest<Full<Bytes>>, HttpError> {
        let tcp = TcpStream::connect((origin.host.as_str(), origin.port))
            .await
            .map_err(HttpError::Connect)?;
        // Small requests go out at once instead of waiting for Nagle.
        let _ = tcp.set_nodelay(true);
        if origin.tls {
            let name = rustls::pki_types::ServerName::try_from(origin.host.clone())?;
            let stream = self.tls.connect(name, tcp).await.map_err(HttpError::Tls)?;
            handshake(stream).await
        } else {
            handshake(tcp).await
        }
    }
}

/// HTTP/1.1 over `io`; the connection's task ends when its `SendRequest`
/// is dropped or the peer closes.
async fn handshake<T>(io: T) -> Result<SendRequest<Full<Bytes>>, HttpError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (sender, connection) = http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

fn origin(uri: &Uri) -> Result<Origin, HttpError> {
    let tls = match uri.scheme() {
        Some(s) if *s == Scheme::HTTPS => true,
        Some(s) if *s == Scheme::HTTP => false,
        _ => return Err(HttpError::Scheme),
    };
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or(HttpError::Scheme)?;
    // An IPv6 literal is bracketed in a URL, not in a socket address.
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    Ok(Origin { tls, host, port })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_of_urls() {
        let o = origin(&"https://example.com/hook?x=1".parse().unwrap()).unwrap();
        assert_eq!((o.tls, o.host.as_str(), o.port), (true, "example.com", 443));
        let o = origin(&"http://[::1]:8080/".parse().unwrap()).unwrap();
        assert_eq!((o.tls, o.host.as_str(), o.port), (false, "::1", 8080));
        assert!(matches!(
            origin(&"ftp://h/".parse().unwrap()),
            Err(HttpError::Scheme)
        ));
        assert!(matches!(
            origin(&"/path".parse().unwrap()),
            Err(HttpError::Scheme)
        ));
    }

    /// A real exchange with a loopback server: the answer, the Host
    /// header, the connection kept for the next request, and a redirect
    /// returned as it is rather than followed.
    #[tokio::test]
    async fn requests_reuse_one_connection_and_never_follow_redirects() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            for answer in [
                "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
                "HTTP/1.1 302 Found\r\nlocation: http://elsewhere/\r\ncontent-length: 0\r\n\r\n",
            ] {
                let mut head = Vec::new();
                while !head.ends_with(b"\r\n\r\n") {
                    let mut byte = [0u8; 1];
                    socket.read_exact(&mut byte).await.unwrap();
                    head.push(byte[0]);
                }
                let head = String::from_utf8(head).unwrap();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .map_or(0, |n| n.trim().parse::<usize>().unwrap());
                let mut body = vec![0u8; length];
                socket.read_exact(&mut body).await.unwrap();
                seen.push((head, body));
                socket.write_all(answer.as_bytes()).await.unwrap();
            }
            seen
        });
        let tls = crate::net::client_tls(None).unwrap();
        let client = HttpClient::new(tls, Duration::from_secs(10));
        let url = format!("http://127.0.0.1:{port}/hook?k=1");
        let mut headers = HeaderMap::new();
        headers.insert("x-key", HeaderValue::from_static("abc"));
        let first = client
            .send(Method::POST, &url, &headers, Bytes::from_static(b"{}"))
            .await
            .unwrap();
        assert_eq!(
            (first.status, &first.body[..]),
            (StatusCode::OK, &b"ok"[..])
        );
        let second = client
            .send(Method::GET, &url, &HeaderMap::new(), Bytes::new())
            .await
            .unwrap();
        assert_eq!(second.status, StatusCode::FOUND);
        // Both on the one connection the server accepted.
        let seen = server.await.unwrap();
        assert!(
            seen[0].0.starts_with("POST /hook?k=1 HTTP/1.1\r\n"),
            "{}",
            seen[0].0
        );
        assert!(seen[0].0.contains(&format!("host: 127.0.0.1:{port}")));
        assert!(seen[0].0.contains("x-key: abc"));
        assert_eq!(seen[0].1, b"{}");
        assert!(seen[1].0.starts_with("GET /hook?k=1 HTTP/1.1\r\n"));
    }

    #[tokio::test]
    async fn a_silent_server_times_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let tls = crate::net::client_tls(None).unwrap();
        let client = HttpClient::new(tls, Duration::from_millis(200));
        let e = client
            .send(Method::GET, &url, &HeaderMap::new(), Bytes::new())
            .await
            .unwrap_err();
        assert!(matches!(e, HttpError::Timeout(_)), "{e}");
        assert!(e.is_connect());
        drop(listener);
    }
}
