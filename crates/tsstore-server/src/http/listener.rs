//! The HTTP listener: plain or TLS (rustls, ring provider), every
//! connection through the front door (`front`: bounds in all and per
//! address, deadlines), HTTP/1 and HTTP/2 (h2c in plain text, ALPN over
//! TLS), and a graceful stop when the app's shutdown token is cancelled.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum_server::Handle;
use axum_server::accept::DefaultAcceptor;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use tokio_util::sync::CancellationToken;

use super::front::Front;
use crate::guard::Guard;

/// Connections the kernel queues for accept. std's default of 128
/// overflows under a connection flood, and an overflowing queue drops
/// legitimate handshakes too (each retried only after a second); the
/// kernel caps it at `net.core.somaxconn`.
const ACCEPT_BACKLOG: u32 = 4096;

/// A listening socket on `addr` with `ACCEPT_BACKLOG`.
fn listen(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(ACCEPT_BACKLOG)?.into_std()
}

/// HTTP/2 requests one connection may have in flight at once.
const MAX_H2_STREAMS: u32 = 32;

/// Why the listener could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("cannot resolve host '{0}'")]
    Resolve(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("cannot load TLS certificate {cert} and key {key}: {source}")]
    Tls {
        cert: PathBuf,
        key: PathBuf,
        source: io::Error,
    },
}

/// Where and how to listen.
#[derive(Debug, Clone)]
pub struct ListenOptions {
    pub host: String,
    pub port: u16,
    /// Certificate and key files (PEM): HTTPS only.
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// A bound listener, not yet serving.
pub struct Listener {
    tcp: std::net::TcpListener,
    tls: Option<RustlsConfig>,
    local: SocketAddr,
}

impl Listener {
    /// Binds the address and loads the TLS files, so that every start-up
    /// failure is reported before the server says it listens.
    pub async fn bind(o: &ListenOptions) -> Result<Listener, ListenError> {
        let addr: SocketAddr = format!("{}:{}", o.host, o.port)
            .parse()
            .or_else(|_| {
                use std::net::ToSocketAddrs;
                (o.host.as_str(), o.port)
                    .to_socket_addrs()
                    .ok()
                    .and_then(|mut a| a.next())
                    .ok_or(())
            })
            .map_err(|_| ListenError::Resolve(o.host.clone()))?;
        let bind_err = |source| ListenError::Bind { addr, source };
        let tcp = listen(addr).map_err(bind_err)?;
        let local = tcp.local_addr().map_err(bind_err)?;
        let tls = match &o.tls {
            Some((cert, key)) => Some(RustlsConfig::from_pem_file(cert, key).await.map_err(
                |source| ListenError::Tls {
                    cert: cert.clone(),
                    key: key.clone(),
                    source,
                },
            )?),
            None => None,
        };
        Ok(Listener { tcp, tls, local })
    }

    /// `http://host:port` or `https://...`, as bound.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.local)
    }

    /// Serves `router` (see `http::router`) through `guard`'s front door
    /// until `stop` is cancelled, then lets in-flight requests finish for
    /// at most `grace`.
    pub async fn serve(
        self,
        router: axum::Router,
        guard: &Guard,
        stop: CancellationToken,
        grace: Duration,
    ) -> io::Result<()> {
        let handle: Handle<SocketAddr> = Handle::new();
        let token = stop;
        let stopper = handle.clone();
        // Ends by itself once the token is cancelled.
        tokio::spawn(async move {
            token.cancelled().await;
            stopper.graceful_shutdown(Some(grace));
        });
        let service = router.into_make_service();
        let mut server = axum_server::from_tcp(self.tcp)?.handle(handle);
        // The front door's deadlines replace hyper's header timeout: they
        // also cover protocol detection, HTTP/2 and idle keep-alive.
        server
            .http_builder()
            .http2()
            .max_concurrent_streams(MAX_H2_STREAMS);
        match self.tls {
            Some(tls) => {
                let handshake = guard.settings.request_header_timeout;
                let tls = RustlsAcceptor::new(tls).handshake_timeout(handshake);
                server.acceptor(front(tls, guard)).serve(service).await
            }
            None => {
                let acceptor = front(DefaultAcceptor, guard);
                server.acceptor(acceptor).serve(service).await
            }
        }
    }
}

/// `inner` behind `guard`'s front door.
fn front<A>(inner: A, guard: &Guard) -> Front<A> {
    Front::new(
        inner,
        Arc::clone(&guard.admission),
        Arc::clone(&guard.incidents),
        guard.settings.clone(),
    )
}
