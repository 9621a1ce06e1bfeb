//! Reading the rest of a body that a request was answered without.
//!
//! A refusal that comes before the body is read (401, 404, 413, 415 ...)
//! would otherwise close a connection with unread bytes in it, and the
//! kernel answers those with a reset that can destroy the response before
//! the client reads it. Clients that write their whole request before
//! reading (Python's urllib, many embedded HTTP stacks) then see `EPIPE` or
//! `ECONNRESET` instead of the error. So a request body is watched, and
//! whatever the handler left unread is read and discarded before the answer
//! goes out, up to `DRAIN_LIMIT_FACTOR` × the body limit and `DRAIN_TIME`;
//! past either bound the connection is closed as before.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;

/// Longest a refused body is read for.
pub const DRAIN_TIME: Duration = Duration::from_secs(5);
/// Most bytes read from a refused body, in multiples of the body limit.
pub const DRAIN_LIMIT_FACTOR: usize = 4;

/// Where a watched body goes when it is dropped before its end.
#[derive(Clone, Default)]
pub struct Unread(Arc<Mutex<Option<Body>>>);

/// Wraps the body of `req` (when it has one) so that what the handler
/// leaves of it can be drained; `None` for a request without a body, which
/// costs nothing more.
pub fn watch(req: axum::extract::Request) -> (axum::extract::Request, Option<Unread>) {
    use http_body::Body as _;
    if req.body().is_end_stream() {
        return (req, None);
    }
    let unread = Unread::default();
    let (parts, inner) = req.into_parts();
    let watched = Watched {
        inner,
        slot: unread.clone(),
        done: false,
    };
    (
        axum::extract::Request::from_parts(parts, Body::new(watched)),
        Some(unread),
    )
}

/// Reads and discards what is left of the body, within the bounds; when it
/// cannot finish, the response says `Connection: close`.
pub async fn drain(unread: Unread, max_body: usize, mut response: Response) -> Response {
    let rest = unread.0.lock().ok().and_then(|mut slot| slot.take());
    let Some(mut body) = rest else {
        return response;
    };
    let bound = max_body.saturating_mul(DRAIN_LIMIT_FACTOR) as u64;
    let mut left = bound;
    let finished = http_body::Body::size_hint(&body).lower() <= bound
        && tokio::time::timeout(DRAIN_TIME, async {
            while let Some(frame) = body.frame().await {
                let Ok(frame) = frame else { return false };
                if let Some(data) = frame.data_ref() {
                    match left.checked_sub(data.len() as u64) {
                        Some(l) => left = l,
                        None => return false,
                    }
                }
            }
            true
        })
        .await
        .unwrap_or(false);
    if !finished {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// A request body that hands itself to its `Unread` slot when dropped
/// before its end.
struct Watched {
    inner: Body,
    slot: Unread,
    done: bool,
}

impl http_body::Body for Watched {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            self.done = true;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        use http_body::Body as _;
        if self.done || self.inner.is_end_stream() {
            return;
        }
        if let Ok(mut slot) = self.slot.0.lock() {
            *slot = Some(std::mem::take(&mut self.inner));
        }
    }
}
