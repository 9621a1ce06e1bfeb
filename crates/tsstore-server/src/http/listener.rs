//! The HTTP listener: plain or TLS (rustls, ring provider), a bound on
//! connections (over it a connection is closed at once, not queued), a
//! header read timeout, and a graceful stop when the app's shutdown token
//! is cancelled.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum_server::Handle;
use axum_server::accept::{Accept, DefaultAcceptor};
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use tokio_util::sync::CancellationToken;

/// Time a new connection gets to send its first request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

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
    pub max_connections: usize,
}

/// A bound listener, not yet serving.
pub struct Listener {
    tcp: std::net::TcpListener,
    tls: Option<RustlsConfig>,
    local: SocketAddr,
    max_connections: usize,
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
        let tcp = std::net::TcpListener::bind(addr).map_err(bind_err)?;
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
        Ok(Listener {
            tcp,
            tls,
            local,
            max_connections: o.max_connections,
        })
    }

    /// `http://host:port` or `https://...`, as bound.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.local)
    }

    /// Serves `router` (see `http::router`) until `stop` is cancelled, then
    /// lets in-flight requests finish for at most `grace`.
    pub async fn serve(
        self,
        router: axum::Router,
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
        let permits = Arc::new(Semaphore::new(self.max_connections));
        let service = router.into_make_service();
        let mut server = axum_server::from_tcp(self.tcp)?.handle(handle);
        server
            .http_builder()
            .http1()
            .header_read_timeout(HEADER_TIMEOUT);
        match self.tls {
            Some(tls) => {
                let acceptor = Limited {
                    inner: RustlsAcceptor::new(tls),
                    permits,
                };
                server.acceptor(acceptor).serve(service).await
            }
            None => {
                let acceptor = Limited {
                    inner: DefaultAcceptor,
                    permits,
                };
                server.acceptor(acceptor).serve(service).await
            }
        }
    }
}

/// An acceptor that admits at most as many connections as `permits` has;
/// a connection over the bound is closed at once rather than queued.
#[derive(Clone)]
struct Limited<A> {
    inner: A,
    permits: Arc<Semaphore>,
}

impl<A, S> Accept<TcpStream, S> for Limited<A>
where
    A: Accept<Permitted<TcpStream>, S> + Clone + Send + 'static,
    A::Future: Send,
    S: Send + 'static,
{
    type Stream = A::Stream;
    type Service = A::Service;
    type Future = Pin<Box<dyn Future<Output = io::Result<(A::Stream, A::Service)>> + Send>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        // Small responses go out at once instead of waiting for Nagle.
        let _ = stream.set_nodelay(true);
        let permit = Arc::clone(&self.permits).try_acquire_owned();
        let inner = self.inner.clone();
        Box::pin(async move {
            let Ok(permit) = permit else {
                tracing::warn!("connection refused: the connection limit is reached");
                return Err(io::Error::other("connection limit reached"));
            };
            inner
                .accept(
                    Permitted {
                        io: stream,
                        _permit: permit,
                    },
                    service,
                )
                .await
        })
    }
}

/// A connection holding one of the server's connection permits.
pub struct Permitted<I> {
    io: I,
    _permit: OwnedSemaphorePermit,
}

impl<I: AsyncRead + Unpin> AsyncRead for Permitted<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Permitted<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}
