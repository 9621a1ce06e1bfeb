//! `tsstore serve`: the runtime, the listener (plain or TLS), the
//! connection bound, and graceful shutdown.
//!
//! On SIGINT or SIGTERM the listener stops accepting, in-flight requests
//! get `SHUTDOWN_GRACE` to finish, and then every store is synced and
//! closed, so a stop never needs recovery on the next start.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum_server::Handle;
use axum_server::accept::{Accept, DefaultAcceptor};
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::auth::{AdminKey, AdminKeySource};
use crate::config::Settings;
use crate::http::{self, AppInner, Limits};
use crate::registry::Registry;

/// Time in-flight requests get to finish once a stop is asked for.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Time a new connection gets to send its first request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the server until SIGINT/SIGTERM. Returns a message for people on
/// failure to start.
pub fn run(settings: Settings) -> Result<(), String> {
    init_logging(&settings.log_level)?;
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = settings.worker_threads {
        builder.worker_threads(n);
    }
    let runtime = builder
        .enable_all()
        .thread_name("tsstore")
        // Blocking work is rare (fsync under sync=always); keep it small.
        .max_blocking_threads(16)
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(serve(settings))
}

fn init_logging(level: &str) -> Result<(), String> {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::prelude::*;
    let filter_text = std::env::var("TSSTORE_LOG").unwrap_or_else(|_| level.to_string());
    let filter: Targets = filter_text
        .parse()
        .map_err(|e| format!("TSSTORE_LOG={filter_text:?} is not a log filter: {e}"))?;
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(io::stderr)
                .with_ansi(io::IsTerminal::is_terminal(&io::stderr())),
        )
        .with(filter)
        .try_init();
    Ok(())
}

async fn serve(settings: Settings) -> Result<(), String> {
    std::fs::create_dir_all(&settings.base_path).map_err(|e| {
        format!(
            "cannot create the data path {}: {e}",
            settings.base_path.display()
        )
    })?;
    let (admin, source) =
        AdminKey::load_or_generate(settings.admin_key.as_deref(), &settings.base_path)?;
    match source {
        AdminKeySource::Generated(key) => {
            // Printed, not logged: it is shown exactly once, here.
            println!("admin key (shown only now; keep it): {key}");
        }
        AdminKeySource::Stored(path) => tracing::info!(
            "admin key: the one generated on first start (its hash is in {}); set TSSTORE_ADMIN_KEY or delete that file for a new one",
            path.display()
        ),
        AdminKeySource::Configured => {}
    }
    let app = Arc::new(AppInner {
        registry: Registry::new(settings.base_path.clone(), settings.sync),
        admin,
        limits: Limits {
            max_body: settings.max_body_bytes,
            max_records: settings.max_records,
            request_timeout: settings.request_timeout,
        },
        store_defaults: settings.store_defaults,
        http: Default::default(),
        started: Instant::now(),
        openapi: Default::default(),
    });
    let router = http::router(Arc::clone(&app));
    let addr: SocketAddr = format!("{}:{}", settings.host, settings.port)
        .parse()
        .or_else(|_| {
            use std::net::ToSocketAddrs;
            (settings.host.as_str(), settings.port)
                .to_socket_addrs()
                .ok()
                .and_then(|mut a| a.next())
                .ok_or(())
        })
        .map_err(|_| format!("cannot resolve host '{}'", settings.host))?;
    let listener =
        std::net::TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
    let tls = match &settings.tls {
        Some((cert, key)) => Some(RustlsConfig::from_pem_file(cert, key).await.map_err(|e| {
            format!(
                "cannot load TLS certificate {} and key {}: {e}",
                cert.display(),
                key.display()
            )
        })?),
        None => None,
    };
    let handle: Handle<SocketAddr> = Handle::new();
    tokio::spawn(stop_on_signal(handle.clone()));
    let permits = Arc::new(Semaphore::new(settings.max_connections));
    let service = router.into_make_service();
    let scheme = if settings.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let mut server = axum_server::from_tcp(listener)
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?
        .handle(handle);
    server
        .http_builder()
        .http1()
        .header_read_timeout(HEADER_TIMEOUT);
    tracing::info!(
        data_path = %settings.base_path.display(),
        sync = ?settings.sync,
        max_connections = settings.max_connections,
        "tsstore {} listening on {scheme}://{local}",
        env!("CARGO_PKG_VERSION")
    );
    // The address on stdout lets scripts and tests find an ephemeral port.
    println!("listening on {scheme}://{local}");
    // Hand what start-up allocated and freed (argument parsing, the OpenAPI
    // document's construction) back to the OS instead of keeping it resident.
    // SAFETY: malloc_trim only releases free heap memory; no pointer is touched.
    unsafe {
        libc::malloc_trim(0);
    }
    let served = match tls {
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
    };
    app.registry.close_all();
    served.map_err(|e| format!("server failed: {e}"))?;
    tracing::info!("stopped");
    Ok(())
}

async fn stop_on_signal(handle: Handle<SocketAddr>) {
    let ctrl_c = tokio::signal::ctrl_c();
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!("cannot watch SIGTERM: {e}");
                std::future::pending::<()>().await
            }
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!(
        "stopping: finishing requests (up to {} s), then closing stores",
        SHUTDOWN_GRACE.as_secs()
    );
    handle.graceful_shutdown(Some(SHUTDOWN_GRACE));
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
