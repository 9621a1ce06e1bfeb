//! Deadlines on a connection's socket, whatever runs over it (TLS, HTTP/1,
//! HTTP/2, a WebSocket after an upgrade).
//!
//! hyper bounds neither the wait before it knows the protocol nor an idle
//! HTTP/2 connection, and its header timeout restarts with each request,
//! so those bounds are kept here, below hyper, where every byte passes:
//!
//! * reading: a connection is always in one `Phase`. `Request` (from the
//!   accept, and from the first byte after an idle spell) has a fixed
//!   deadline for a complete request head, which bytes do not extend, so
//!   a byte-a-minute client gains nothing. `Busy` (requests in the
//!   handlers or responses being sent) has none: the request timeout and
//!   the send timeout bound those. `Idle` (keep-alive) has its own
//!   deadline. `Upgraded` has none: the WebSocket's rules apply.
//!   `Tracked` (the service side) moves the phase as requests come and go.
//! * writing: a write the peer takes nothing of for `send_timeout` fails,
//!   which closes the connection, in every phase.
//!
//! A deadline that passes fails the pending read or write with
//! `TimedOut`; hyper then drops the connection and its admission ticket.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::guard::{Incident, Incidents, Ticket};

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for a complete request head until `deadline`.
    Request { deadline: Instant },
    /// Between requests; closed at `deadline` unless a byte comes.
    Idle { deadline: Instant },
    /// `n` requests being handled or answered.
    Busy { n: usize },
    /// Handed over to a WebSocket.
    Upgraded,
}

/// The phase, shared by the socket (`Timed`) and the service (`Tracked`).
#[derive(Debug)]
pub struct Clock {
    /// Bumped on every change, so the socket re-reads the phase only then.
    generation: AtomicU64,
    state: Mutex<(Phase, Option<Waker>)>,
    keep_alive: Duration,
    header_timeout: Duration,
}

impl Clock {
    pub fn new(header_timeout: Duration, keep_alive: Duration) -> Clock {
        Clock {
            generation: AtomicU64::new(0),
            state: Mutex::new((
                Phase::Request {
                    deadline: Instant::now() + header_timeout,
                },
                None,
            )),
            keep_alive,
            header_timeout,
        }
    }

    pub fn phase(&self) -> Phase {
        self.lock().0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Phase, Option<Waker>)> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes the phase with `f`. When the new phase has a deadline, the
    /// socket's pending read is woken so that it arms it; a phase without
    /// one needs no wake (a timer armed before only makes the read look
    /// again), which spares every request a wake of its connection.
    fn update(&self, f: impl FnOnce(Phase) -> Phase) {
        let waker = {
            let mut state = self.lock();
            let next = f(state.0);
            if next == state.0 {
                return;
            }
            state.0 = next;
            self.generation.fetch_add(1, Ordering::Release);
            match next {
                Phase::Idle { .. } | Phase::Request { .. } => state.1.take(),
                Phase::Busy { .. } | Phase::Upgraded => None,
            }
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// A request head is complete and its handler starts.
    pub fn request_started(&self) {
        self.update(|p| match p {
            Phase::Busy { n } => Phase::Busy { n: n + 1 },
            Phase::Upgraded => Phase::Upgraded,
            _ => Phase::Busy { n: 1 },
        });
    }

    /// A response was sent in full (or abandoned).
    pub fn request_finished(&self) {
        let keep_alive = self.keep_alive;
        self.update(|p| match p {
            Phase::Busy { n } if n > 1 => Phase::Busy { n: n - 1 },
            Phase::Busy { .. } => Phase::Idle {
                deadline: Instant::now() + keep_alive,
            },
            other => other,
        });
    }

    /// The connection now carries a WebSocket.
    pub fn upgraded(&self) {
        self.update(|_| Phase::Upgraded);
    }

    /// The first byte after an idle spell starts a request.
    fn byte_after_idle(&self) {
        let header_timeout = self.header_timeout;
        self.update(|p| match p {
            Phase::Idle { .. } => Phase::Request {
                deadline: Instant::now() + header_timeout,
            },
            other => other,
        });
    }
}

/// A socket with the connection's deadlines; also holds its admission
/// ticket, so the slot is given back when the connection (or the
/// WebSocket it became) ends.
pub struct Timed<I> {
    io: I,
    clock: Arc<Clock>,
    seen: u64,
    /// The phase as last read (`seen`).
    phase: Phase,
    read_timer: Pin<Box<Sleep>>,
    write_timer: Pin<Box<Sleep>>,
    /// A write is pending and `write_timer` runs.
    write_stalled: bool,
    send_timeout: Duration,
    incidents: Arc<Incidents>,
    ticket: Ticket,
}

impl<I> Timed<I> {
    pub fn new(
        io: I,
        clock: Arc<Clock>,
        send_timeout: Duration,
        incidents: Arc<Incidents>,
        ticket: Ticket,
    ) -> Timed<I> {
        let phase = clock.phase();
        let seen = clock.generation.load(Ordering::Acquire);
        let far = Instant::now() + Duration::from_secs(86_400);
        let mut timed = Timed {
            io,
            clock,
            seen,
            phase,
            read_timer: Box::pin(tokio::time::sleep_until(far)),
            write_timer: Box::pin(tokio::time::sleep_until(far)),
            write_stalled: false,
            send_timeout,
            incidents,
            ticket,
        };
        timed.arm_read();
        timed
    }

    fn arm_read(&mut self) {
        if let Phase::Request { deadline } | Phase::Idle { deadline } = self.phase {
            self.read_timer.as_mut().reset(deadline);
        }
    }

    /// Re-reads the phase if the service changed it.
    fn refresh(&mut self) {
        let generation = self.clock.generation.load(Ordering::Acquire);
        if generation != self.seen {
            self.seen = generation;
            self.phase = self.clock.phase();
            self.arm_read();
        }
    }

    fn timed_out(&self, incident: Incident) -> io::Error {
        self.incidents.record(incident, Some(self.ticket.peer()));
        io::Error::new(io::ErrorKind::TimedOut, "connection deadline passed")
    }

    /// The read deadline of the phase, checked; `Err` once it passed.
    fn poll_read_deadline(&mut self, cx: &mut Context<'_>) -> Result<(), io::Error> {
        let incident = match self.phase {
            Phase::Request { .. } => Incident::RequestDeadline,
            Phase::Idle { .. } => Incident::Idle,
            Phase::Busy { .. } | Phase::Upgraded => return Ok(()),
        };
        match self.read_timer.as_mut().poll(cx) {
            Poll::Ready(()) => Err(self.timed_out(incident)),
            Poll::Pending => Ok(()),
        }
    }

    /// After a write attempt: a pending one starts (or checks) the stall
    /// timer, any progress stops it.
    fn after_write<T>(
        &mut self,
        cx: &mut Context<'_>,
        r: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if r.is_ready() {
            self.write_stalled = false;
            return r;
        }
        if !self.write_stalled {
            self.write_stalled = true;
            let deadline = Instant::now() + self.send_timeout;
            self.write_timer.as_mut().reset(deadline);
        }
        match self.write_timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(self.timed_out(Incident::SendStalled))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Timed<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        this.refresh();
        if let Err(e) = this.poll_read_deadline(cx) {
            return Poll::Ready(Err(e));
        }
        let before = buf.filled().len();
        let r = Pin::new(&mut this.io).poll_read(cx, buf);
        match &r {
            Poll::Ready(Ok(())) if buf.filled().len() > before => {
                if matches!(this.phase, Phase::Idle { .. }) {
                    this.clock.byte_after_idle();
                    this.refresh();
                }
            }
            Poll::Pending if this.phase != Phase::Upgraded => {
                // The service may change the phase while this read waits;
                // it wakes this task then, so the new deadline is armed.
                let mut state = this.clock.lock();
                if !state.1.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    state.1 = Some(cx.waker().clone());
                }
            }
            _ => {}
        }
        r
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Timed<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        self.after_write(cx, r)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.io).poll_flush(cx);
        self.after_write(cx, r)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.io).poll_shutdown(cx);
        self.after_write(cx, r)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.after_write(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}
