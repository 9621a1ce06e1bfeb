//! The service side of a connection's deadlines: a request reaching the
//! router moves the connection's `Clock` to `Busy`, and the end of its
//! response body (or the response being dropped unsent) moves it back to
//! `Idle`; a `101 Switching Protocols` answer hands it to the WebSocket.
//! Every request also carries the client's `Peer` in its extensions, for
//! the auth throttle.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::http::{Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};

use super::timed::Clock;
use crate::guard::Peer;

/// The client a request came from (a request extension).
#[derive(Debug, Clone, Copy)]
pub struct ClientPeer(pub Peer);

/// One request in flight; dropping it ends the request for the clock.
struct InFlight {
    clock: Arc<Clock>,
}

impl InFlight {
    fn new(clock: Arc<Clock>) -> InFlight {
        clock.request_started();
        InFlight { clock }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.clock.request_finished();
    }
}

/// A per-connection service that reports requests to the clock.
#[derive(Clone)]
pub struct Tracked<S> {
    inner: S,
    clock: Arc<Clock>,
    peer: Peer,
}

impl<S> Tracked<S> {
    pub fn new(inner: S, clock: Arc<Clock>, peer: Peer) -> Tracked<S> {
        Tracked { inner, clock, peer }
    }
}

impl<S, ReqB, B> tower_service::Service<Request<ReqB>> for Tracked<S>
where
    S: tower_service::Service<Request<ReqB>, Response = Response<B>>,
{
    type Response = Response<Guarded<B>>;
    type Error = S::Error;
    type Future = TrackedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqB>) -> Self::Future {
        req.extensions_mut().insert(ClientPeer(self.peer));
        let in_flight = InFlight::new(Arc::clone(&self.clock));
        TrackedFuture {
            inner: self.inner.call(req),
            in_flight: Some(in_flight),
        }
    }
}

pin_project_lite::pin_project! {
    pub struct TrackedFuture<F> {
        #[pin]
        inner: F,
        in_flight: Option<InFlight>,
    }
}

impl<F, B, E> Future for TrackedFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<Guarded<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = match this.inner.poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(r) => r?,
        };
        let in_flight = this.in_flight.take();
        if response.status() == StatusCode::SWITCHING_PROTOCOLS
            && let Some(f) = &in_flight
        {
            f.clock.upgraded();
        }
        Poll::Ready(Ok(response.map(|body| Guarded { body, in_flight })))
    }
}

pin_project_lite::pin_project! {
    /// A response body that ends its request (for the clock) when it has
    /// been sent in full or dropped.
    pub struct Guarded<B> {
        #[pin]
        body: B,
        in_flight: Option<InFlight>,
    }
}

impl<B: Body> Body for Guarded<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = this.body.poll_frame(cx);
        if let Poll::Ready(None) = frame {
            this.in_flight.take();
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
