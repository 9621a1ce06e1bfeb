//! The Unix-socket ingest listener (socket file mode 0660, one connection
//! per client): a line protocol for local daemons that want to hand
//! readings over without HTTP's per-request cost.
//!
//! ```text
//! client: AUTH <store> <api-key>      server: OK            (or ERROR <why>, then close)
//! client: <one payload per line>      server: OK <timestamp> | ERROR <why>, one per line, in order
//! client: QUIT                        server: OK bye        (then close)
//! ```
//!
//! Payloads are stored at "now" (`records::intake::line`). Lines that
//! arrive together are stored with one `put_many` and answered with one
//! write, so a client that pipelines (sends many lines before reading) pays
//! one lock and one syscall per batch, not per line; a refused line never
//! fails its neighbours (`intake::store_each`). A line longer than
//! `Limits::max_line` is answered with `ERROR` and skipped, and the
//! connection goes on. Bounds: `Limits::max_socket_clients` connections
//! (one more is told so and closed), `MAX_BATCH_LINES` lines per batch, a
//! read buffer of one line plus `READ_CHUNK`. A wrong key on the AUTH line
//! counts against the client's user id in the auth throttle (`guard`).

use std::io;
use std::ops::Range;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;

use crate::app::App;
use crate::auth::{AuthError, throttled};
use crate::guard::Peer;
use crate::metrics::Open;
use crate::records::intake;
use crate::records::{RecordError, RecordResult};
use crate::registry::{RegistryError, store_stopping};

/// Lines stored with one `put_many` at most.
pub const MAX_BATCH_LINES: usize = 4096;
/// Bytes read from a client at a time.
const READ_CHUNK: usize = 64 * 1024;
/// Time a new client has to send its AUTH line.
const AUTH_TIMEOUT: Duration = Duration::from_secs(10);
/// Permission bits of the socket file: owner and group may connect.
const SOCKET_MODE: u32 = 0o660;

/// Why the socket could not be set up (the server does not start).
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error(
        "another server is listening on the Unix socket {0}; stop it, or give this one --socket PATH or --no-socket"
    )]
    InUse(PathBuf),
    #[error("{0} exists and is not a socket; remove it or choose another --socket PATH")]
    NotASocket(PathBuf),
    #[error("cannot listen on the Unix socket {path}: {source}")]
    Bind { path: PathBuf, source: io::Error },
}

/// A bound socket, not yet serving.
pub struct SocketListener {
    listener: UnixListener,
    path: PathBuf,
}

impl SocketListener {
    /// Binds `path`. `Ok(None)` when its directory cannot be created: the
    /// server then runs without the socket, logging a warning, rather than
    /// refusing to start. A socket file left by a crashed run is replaced; one a live
    /// server listens on is not.
    pub fn bind(path: &Path) -> Result<Option<SocketListener>, SocketError> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
            && let Err(e) = std::fs::create_dir_all(dir)
        {
            tracing::warn!(
                "no Unix socket: cannot create {} ({e}); serving HTTP only (set --socket PATH or --no-socket)",
                dir.display()
            );
            return Ok(None);
        }
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_socket() => {
                if std::os::unix::net::UnixStream::connect(path).is_ok() {
                    return Err(SocketError::InUse(path.to_path_buf()));
                }
                tracing::info!(path = %path.display(), "replacing a stale socket file");
                std::fs::remove_file(path).map_err(|source| SocketError::Bind {
                    path: path.to_path_buf(),
                    source,
                })?;
            }
            Ok(_) => return Err(SocketError::NotASocket(path.to_path_buf())),
            Err(_) => {}
        }
        let bind_err = |source| SocketError::Bind {
            path: path.to_path_buf(),
            source,
        };
        let listener = UnixListener::bind(path).map_err(bind_err)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(SOCKET_MODE))
            .map_err(bind_err)?;
        Ok(Some(SocketListener {
            listener,
            path: path.to_path_buf(),
        }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts clients until the server stops, then removes the socket file.
    pub async fn serve(self, app: App) {
        let token = app.shutdown.token();
        let permits = Arc::new(Semaphore::new(app.limits.max_socket_clients));
        loop {
            let accepted = tokio::select! {
                _ = token.cancelled() => break,
                a = self.listener.accept() => a,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors, say: wait a little rather than spin.
                    tracing::warn!("Unix socket accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
                let max = app.limits.max_socket_clients;
                app.shutdown.spawn(refuse(stream, max));
                continue;
            };
            let app2 = Arc::clone(&app);
            app.shutdown.spawn(async move {
                let _permit = permit;
                if let Err(e) = client(&app2, stream).await {
                    tracing::debug!("Unix socket client ended: {e}");
                }
            });
        }
        if let Err(e) = std::fs::remove_file(&self.path) {
            tracing::warn!(path = %self.path.display(), "cannot remove the socket file: {e}");
        }
    }
}

/// Tells a client over the bound why it is closed.
async fn refuse(mut stream: UnixStream, max: usize) {
    let line = format!("ERROR too many clients (server.max_socket_clients is {max})\n");
    let _ = tokio::time::timeout(AUTH_TIMEOUT, stream.write_all(line.as_bytes())).await;
}

/// One line as read: its bytes in the batch, or the note that it was too
/// long (and skipped).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Line {
    Data(Range<usize>),
    TooLong,
}

/// Lines that arrived together, and the bytes they are in.
#[derive(Debug, Default)]
struct Batch {
    data: Vec<u8>,
    lines: Vec<Line>,
}

/// Splits a byte stream into lines, at most `max` bytes each, handing out
/// every complete line already received as one batch.
struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    max: usize,
    /// Inside an overlong line, dropping bytes until its newline.
    skipping: bool,
    eof: bool,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    fn new(inner: R, max: usize) -> LineReader<R> {
        LineReader {
            inner,
            buf: Vec::with_capacity(READ_CHUNK),
            max,
            skipping: false,
            eof: false,
        }
    }

    /// The next batch of at most `MAX_BATCH_LINES` lines (waiting for at
    /// least one); `None` at the end of the stream.
    async fn next_batch(&mut self) -> io::Result<Option<Batch>> {
        loop {
            let batch = self.take_lines();
            if !batch.lines.is_empty() {
                return Ok(Some(batch));
            }
            if self.eof {
                return Ok(None);
            }
            let at = self.buf.len();
            self.buf.resize(at + READ_CHUNK, 0);
            let n = self.inner.read(&mut self.buf[at..]).await?;
            self.buf.truncate(at + n);
            if n == 0 {
                self.eof = true;
            }
        }
    }

    /// Moves the complete lines out of the buffer.
    fn take_lines(&mut self) -> Batch {
        let mut batch = Batch::default();
        let mut start = 0;
        while batch.lines.len() < MAX_BATCH_LINES {
            let Some(nl) = self.buf[start..].iter().position(|&b| b == b'\n') else {
                break;
            };
            let end = start + nl;
            if self.skipping {
                self.skipping = false;
            } else if end - start > self.max {
                batch.lines.push(Line::TooLong);
            } else {
                batch.lines.push(Line::Data(start..end));
            }
            start = end + 1;
        }
        // What is left is the start of a line (unless the batch is full):
        // too long already, or kept for the next read.
        let rest_is_one_line = !self.buf[start..].contains(&b'\n');
        if !self.skipping && rest_is_one_line && self.buf.len() - start > self.max {
            batch.lines.push(Line::TooLong);
            self.skipping = true;
        }
        if self.skipping {
            batch.data = std::mem::take(&mut self.buf);
            batch.data.truncate(start);
            // The overlong line's bytes are dropped as they come.
            return batch;
        }
        let rest = self.buf.split_off(start);
        batch.data = std::mem::replace(&mut self.buf, rest);
        batch
    }
}

/// Why a client's AUTH line was refused (its `ERROR` line).
#[derive(Debug, thiserror::Error)]
enum Refused {
    #[error("expected AUTH <store> <api-key>")]
    NoAuth,
    #[error(transparent)]
    Auth(AuthError),
    #[error(transparent)]
    Store(RegistryError),
}

/// `AUTH <store> <key>` → (store, key).
fn parse_auth(line: &[u8]) -> Option<(&str, &str)> {
    let line = std::str::from_utf8(line).ok()?.trim_end_matches('\r');
    let mut words = line.split(' ').filter(|w| !w.is_empty());
    match (words.next(), words.next(), words.next(), words.next()) {
        (Some("AUTH"), Some(store), Some(key), None) => Some((store, key)),
        _ => None,
    }
}

/// Why a socket request is refused, as its `ERROR` line says it.
fn error_line(out: &mut Vec<u8>, why: &dyn std::fmt::Display) {
    out.extend_from_slice(b"ERROR ");
    // One line per reply: a message never carries a newline into the stream.
    let text = why.to_string().replace(['\n', '\r'], " ");
    out.extend_from_slice(text.as_bytes());
    out.push(b'\n');
}

/// Serves one client: AUTH, then batches of lines until QUIT, the end of
/// the stream, the store's deletion or the server's stop.
async fn client(app: &App, stream: UnixStream) -> io::Result<()> {
    let _open = Open::new(&app.transports.socket_connections);
    let token = app.shutdown.token();
    // The socket's clients are told apart by user id (what a Unix
    // socket knows of its peer) for the auth throttle.
    let peer = Some(Peer::Unix(stream.peer_cred().ok().map(|c| c.uid())));
    let (rd, wr) = stream.into_split();
    let mut reader = LineReader::new(rd, app.limits.max_line);
    let mut writer = BufWriter::with_capacity(READ_CHUNK, wr);
    let mut out = Vec::with_capacity(READ_CHUNK);

    let first = tokio::select! {
        _ = token.cancelled() => return Ok(()),
        b = tokio::time::timeout(AUTH_TIMEOUT, reader.next_batch()) => b,
    };
    let Ok(Some(mut batch)) = first.unwrap_or(Ok(None)) else {
        let why = format!("no AUTH line within {} s", AUTH_TIMEOUT.as_secs());
        error_line(&mut out, &why);
        writer.write_all(&out).await?;
        return writer.flush().await;
    };
    let auth = match batch.lines.first() {
        Some(Line::Data(r)) => parse_auth(&batch.data[r.clone()]),
        _ => None,
    };
    let open = match auth {
        None => Err(Refused::NoAuth),
        Some((store, key)) => match throttled(&app.guard, peer, || {
            app.registry.authorize(store, Some(key))
        }) {
            Err(e) => Err(Refused::Auth(e)),
            Ok(()) => app.registry.get(store).await.map_err(Refused::Store),
        },
    };
    let open = match open {
        Ok(open) => open,
        Err(why) => {
            error_line(&mut out, &why);
            writer.write_all(&out).await?;
            return writer.flush().await;
        }
    };
    out.extend_from_slice(b"OK\n");
    // Lines sent right behind the AUTH line belong to the first batch.
    batch.lines.remove(0);
    let mut stopping = open.stopping.subscribe();
    let metrics = &app.transports;
    let mut quit = false;
    loop {
        let lines = batch.lines.len();
        let end = batch
            .lines
            .iter()
            .position(|l| matches!(l, Line::Data(r) if trim_cr(&batch.data[r.clone()]) == b"QUIT"))
            .unwrap_or(lines);
        quit |= end < lines;
        let items: Vec<RecordResult<intake::Item>> = batch.lines[..end]
            .iter()
            .map(|line| match line {
                Line::Data(r) => Ok(intake::line(&batch.data[r.clone()])),
                Line::TooLong => Err(RecordError::InvalidData(format!(
                    "line longer than {} bytes (server.max_line_bytes), skipped",
                    app.limits.max_line
                ))),
            })
            .collect();
        if !items.is_empty() {
            let mut num = itoa::Buffer::new();
            for result in intake::store_each(&open, items) {
                match result {
                    Ok(h) => {
                        out.extend_from_slice(b"OK ");
                        out.extend_from_slice(num.format(h.timestamp).as_bytes());
                        out.push(b'\n');
                        metrics
                            .socket_lines_accepted
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    Err(e) => {
                        error_line(&mut out, &e);
                        metrics
                            .socket_lines_rejected
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }
        }
        if quit {
            out.extend_from_slice(b"OK bye\n");
        }
        writer.write_all(&out).await?;
        writer.flush().await?;
        out.clear();
        if quit {
            return Ok(());
        }
        let next = tokio::select! {
            _ = token.cancelled() => None,
            _ = store_stopping(&mut stopping) => {
                error_line(&mut out, &"the store is being deleted");
                writer.write_all(&out).await?;
                writer.flush().await?;
                None
            }
            b = reader.next_batch() => b?,
        };
        match next {
            Some(b) => batch = b,
            None => return Ok(()),
        }
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(batch: &Batch) -> Vec<String> {
        batch
            .lines
            .iter()
            .map(|l| match l {
                Line::Data(r) => String::from_utf8_lossy(&batch.data[r.clone()]).into_owned(),
                Line::TooLong => "<too long>".into(),
            })
            .collect()
    }

    #[tokio::test]
    async fn lines_batches_and_overlong_lines() {
        let input: &[u8] = b"AUTH s k\n{\"a\":1}\n0123456789ABC\nok\r\npartial";
        let mut r = LineReader::new(input, 10);
        let b = r.next_batch().await.unwrap().unwrap();
        assert_eq!(
            lines_of(&b),
            ["AUTH s k", "{\"a\":1}", "<too long>", "ok\r"]
        );
        // A last line without a newline is not a line.
        assert!(r.next_batch().await.unwrap().is_none());

        // An overlong line that arrives in pieces is reported once and
        // skipped, however the pieces fall into reads.
        let (client, server) = tokio::io::duplex(4);
        let mut r = LineReader::new(server, 8);
        let writer = tokio::spawn(async move {
            let mut client = client;
            client.write_all(b"0123456789").await.unwrap();
            client.write_all(b"0123456789\nnext\n").await.unwrap();
        });
        let mut all = Vec::new();
        while let Some(b) = r.next_batch().await.unwrap() {
            all.extend(lines_of(&b));
        }
        assert_eq!(all, ["<too long>", "next"]);
        writer.await.unwrap();
    }

    #[test]
    fn auth_lines() {
        assert_eq!(parse_auth(b"AUTH s k"), Some(("s", "k")));
        assert_eq!(parse_auth(b"AUTH s k\r"), Some(("s", "k")));
        assert_eq!(parse_auth(b"AUTH s"), None);
        assert_eq!(parse_auth(b"AUTH s k extra"), None);
        assert_eq!(parse_auth(b"auth s k"), None);
    }
}
