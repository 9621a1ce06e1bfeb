//! `tsstore serve`: wiring only. The runtime, the app's shared state, the
//! listeners, signals, and the stop sequence.
//!
//! On SIGINT or SIGTERM the app's `Shutdown` is cancelled: listeners stop
//! accepting, in-flight requests get `SHUTDOWN_GRACE` to finish, background
//! tasks as long again to end (then they are aborted), and only then is
//! every store synced and closed, so a stop never needs recovery on the
//! next start.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::app::{App, AppInner};
use crate::auth::{AdminKey, AdminKeyError, AdminKeySource};
use crate::config::Settings;
use crate::guard::Guard;
use crate::http;
use crate::http::listener::{ListenError, ListenOptions, Listener};
use crate::limits::Limits;
use crate::outbound::{Env, Outbound};
use crate::registry::Registry;
use crate::shutdown::Shutdown;
use crate::unixsock::{SocketError, SocketListener};

/// Time in-flight requests, then background tasks, get to finish once a
/// stop is asked for.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Why the server could not start (or stopped with a failure).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("TSSTORE_LOG={filter:?} is not a log filter: {reason}")]
    LogFilter { filter: String, reason: String },
    #[error("cannot start the runtime: {0}")]
    Runtime(io::Error),
    #[error("cannot create the data path {path}: {source}")]
    DataPath {
        path: std::path::PathBuf,
        source: io::Error,
    },
    #[error(transparent)]
    AdminKey(#[from] AdminKeyError),
    #[error(transparent)]
    Listen(#[from] ListenError),
    #[error(transparent)]
    Socket(#[from] SocketError),
    #[error("server failed: {0}")]
    Serve(io::Error),
}

/// Runs the server until SIGINT/SIGTERM.
pub fn run(settings: Settings) -> Result<(), StartError> {
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
        .map_err(StartError::Runtime)?;
    runtime.block_on(serve(settings))
}

fn init_logging(level: &str) -> Result<(), StartError> {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::prelude::*;
    let filter_text = std::env::var("TSSTORE_LOG").unwrap_or_else(|_| level.to_string());
    let filter: Targets =
        filter_text
            .parse()
            .map_err(
                |e: tracing_subscriber::filter::ParseError| StartError::LogFilter {
                    filter: filter_text.clone(),
                    reason: e.to_string(),
                },
            )?;
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

/// File descriptors the server asks for: every connection takes one, and
/// every open store three.
const WANTED_FDS: u64 = 65_536;

/// Raises the soft limit on open files towards the hard one, so the
/// connection bound (not the descriptor limit, which would fail accepts
/// and store opens alike) is what refuses a flood; warns when the
/// descriptors cannot cover `max_connections` with room for stores.
fn raise_fd_limit(max_connections: usize) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return;
        }
        let wanted = lim.rlim_max.min(WANTED_FDS);
        if lim.rlim_cur < wanted {
            let raised = libc::rlimit {
                rlim_cur: wanted,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim = raised;
            }
        }
    }
    let needed = max_connections as u64 * 2 + 256;
    if lim.rlim_cur < needed {
        tracing::warn!(
            open_files = lim.rlim_cur,
            max_connections,
            "the open-file limit is low for server.max_connections; raise it (LimitNOFILE=, ulimit -n) to at least {needed}"
        );
    }
}

async fn serve(settings: Settings) -> Result<(), StartError> {
    raise_fd_limit(settings.front.max_connections);
    settings.engine.apply();
    std::fs::create_dir_all(&settings.base_path).map_err(|source| StartError::DataPath {
        path: settings.base_path.clone(),
        source,
    })?;
    for found in crate::provision::sweep(&settings.base_path) {
        tracing::warn!(
            store = %found.name,
            "{} is not a complete store (it has no {}); DELETE /api/stores/{} with the admin key removes it",
            settings.base_path.join(&found.name).display(),
            found.missing,
            found.name
        );
    }
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
    let limits = Limits {
        max_body: settings.max_body_bytes,
        max_records: settings.max_records,
        request_timeout: settings.request_timeout,
        max_store_bytes: settings.max_store_bytes,
        max_line: settings.max_line_bytes,
        max_socket_clients: settings.max_socket_clients,
        max_message: settings.max_message_bytes,
        max_live_readers: settings.max_live_readers,
        max_outbound: settings.max_outbound_connections,
    };
    let shutdown = Shutdown::default();
    let outbound = Outbound::new(Env {
        shutdown: shutdown.clone(),
        limits,
    });
    let app: App = Arc::new(AppInner {
        registry: Registry::new(settings.base_path.clone(), settings.sync)
            .with_future_skew(settings.max_future_skew)
            .with_max_total_bytes(settings.max_total_store_bytes)
            .with_residency(settings.residency),
        admin,
        limits,
        store_defaults: settings.store_defaults,
        store_rollups: settings.store_rollups.clone(),
        http: Default::default(),
        transports: Default::default(),
        outbound,
        guard: Guard::new(settings.front.clone()),
        started: Instant::now(),
        shutdown,
        metrics_stores: settings.metrics_stores,
    });
    let listener = Listener::bind(&ListenOptions {
        host: settings.host.clone(),
        port: settings.port,
        tls: settings.tls.clone(),
    })
    .await?;
    let socket = match &settings.socket_path {
        Some(path) => SocketListener::bind(path)?,
        None => None,
    };
    // Ends by itself once the token is cancelled, by a signal or otherwise.
    tokio::spawn(stop_on_signal(app.shutdown.token()));
    let router = http::router(Arc::clone(&app));
    // Outbound connections saved by earlier runs dial out again.
    app.outbound.restore(&app.registry).await;
    let url = listener.url();
    tracing::info!(
        data_path = %settings.base_path.display(),
        sync = ?settings.sync,
        max_connections = settings.front.max_connections,
        per_address = settings.front.max_connections_per_address,
        "tsstore {} listening on {url}",
        env!("CARGO_PKG_VERSION")
    );
    // The address on stdout lets scripts and tests find an ephemeral port.
    println!("listening on {url}");
    if let Some(socket) = socket {
        tracing::info!(path = %socket.path().display(), "Unix socket ingest listening");
        println!("unix socket on {}", socket.path().display());
        app.shutdown.spawn(socket.serve(Arc::clone(&app)));
    }
    // Hand what start-up allocated and freed (argument parsing, the OpenAPI
    // document's construction, so the router is built above) back to the OS
    // instead of keeping it resident.
    release_free_heap();
    let incidents = Arc::clone(&app.guard.incidents);
    app.shutdown.spawn(incidents.run(app.shutdown.token()));
    app.shutdown.spawn(trim_when_idle(Arc::clone(&app)));
    let sweeper = Arc::clone(&app);
    let token = app.shutdown.token();
    app.shutdown
        .spawn(async move { sweeper.registry.run_sweeper(token).await });
    let served = listener
        .serve(router, &app.guard, app.shutdown.token(), SHUTDOWN_GRACE)
        .await;
    // The listener has stopped: background tasks end (or are aborted)
    // before the stores they may write to are closed.
    app.shutdown.stop(SHUTDOWN_GRACE).await;
    app.registry.close_all();
    served.map_err(StartError::Serve)?;
    tracing::info!("stopped");
    Ok(())
}

/// How often `trim_when_idle` looks.
const TRIM_EVERY: Duration = Duration::from_secs(10);
/// Connections open at most for the server to count as idle.
const IDLE_CONNECTIONS: usize = 2;

/// Gives the heap that a burst of connections grew back to the OS once
/// the server is idle again. glibc's malloc keeps freed memory in its
/// per-thread arenas; after a flood of connections (or an attack on the
/// front door) that would stay resident for the process's life, and a
/// gateway's memory is small. One `malloc_trim` per quiet spell after
/// activity: nothing while traffic goes on, nothing while nothing happens.
async fn trim_when_idle(app: App) {
    let stop = app.shutdown.token();
    let mut tick = tokio::time::interval(TRIM_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seen = app.guard.activity();
    let mut busy = false;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let activity = app.guard.activity();
        busy |= activity != seen;
        seen = activity;
        if busy && app.guard.admission.total() <= IDLE_CONNECTIONS {
            busy = false;
            release_free_heap();
        }
    }
}

/// Returns the heap's free memory to the OS. glibc keeps it in its arenas
/// until asked (`malloc_trim`); musl's allocator unmaps what it frees by
/// itself, so a musl build has nothing to ask.
fn release_free_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free heap memory; no pointer is
    // touched.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Cancels the app's shutdown token on SIGINT or SIGTERM.
async fn stop_on_signal(token: CancellationToken) {
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
        _ = token.cancelled() => return,
    }
    tracing::info!(
        "stopping: finishing requests (up to {} s), then closing stores",
        SHUTDOWN_GRACE.as_secs()
    );
    token.cancel();
}
