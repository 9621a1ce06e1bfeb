//! The front door applied to TCP connections: an acceptor (for
//! axum-server, around its plain or TLS acceptor) that admits each
//! connection against the server's and its address's bounds, refuses the
//! rest (`refuse`), and puts deadlines on the ones it admits (`timed`,
//! `tracked`). The rules themselves are transport-neutral, in `guard`.

mod refuse;
pub mod timed;
pub mod tracked;

use std::io;
use std::pin::Pin;
use std::sync::Arc;

use axum_server::accept::Accept;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

pub use self::timed::{Clock, Phase, Timed};
pub use self::tracked::{ClientPeer, Tracked};
use crate::guard::{Admission, FrontDoor, Incident, Incidents, Peer, Refused};

/// Admits, refuses, and times connections before `inner` (TLS or not)
/// takes them.
#[derive(Clone)]
pub struct Front<A> {
    inner: A,
    admission: Arc<Admission>,
    incidents: Arc<Incidents>,
    settings: Arc<FrontDoor>,
    /// Refusals being answered (`refuse::MAX_REFUSING`).
    answering: Arc<Semaphore>,
}

impl<A> Front<A> {
    pub fn new(
        inner: A,
        admission: Arc<Admission>,
        incidents: Arc<Incidents>,
        settings: FrontDoor,
    ) -> Front<A> {
        Front {
            inner,
            admission,
            incidents,
            settings: Arc::new(settings),
            answering: Arc::new(Semaphore::new(refuse::MAX_REFUSING)),
        }
    }
}

type Accepted<S, V> = io::Result<(S, Tracked<V>)>;

impl<A, S> Accept<TcpStream, S> for Front<A>
where
    A: Accept<Timed<TcpStream>, S> + Clone + Send + 'static,
    A::Future: Send,
    S: Send + 'static,
{
    type Stream = A::Stream;
    type Service = Tracked<A::Service>;
    type Future = Pin<Box<dyn Future<Output = Accepted<A::Stream, A::Service>> + Send>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        // Small responses go out at once instead of waiting for Nagle.
        let _ = stream.set_nodelay(true);
        let this = self.clone();
        Box::pin(async move {
            let ip = stream.peer_addr()?.ip();
            let ticket = match this.admission.admit(ip) {
                Ok(ticket) => ticket,
                Err(why) => {
                    let incident = match why {
                        Refused::Global => Incident::GlobalLimit,
                        Refused::Address => Incident::AddressLimit,
                    };
                    this.incidents.record(incident, Some(Peer::ip(ip)));
                    refuse::refuse(stream, why, &this.answering).await;
                    return Err(io::Error::other("connection refused at a limit"));
                }
            };
            let peer = ticket.peer();
            let s = &this.settings;
            let clock = Arc::new(Clock::new(s.request_header_timeout, s.keep_alive_timeout));
            let timed = Timed::new(
                stream,
                Arc::clone(&clock),
                s.send_timeout,
                Arc::clone(&this.incidents),
                ticket,
            );
            let (stream, service) = this.inner.accept(timed, service).await?;
            Ok((stream, Tracked::new(service, clock, peer)))
        })
    }
}
