//! Which connections are let in: at most `max_total` at once, and at most
//! `max_per_peer` from one client address, so one host cannot take every
//! slot. A `Ticket` is held for as long as the connection lives (through
//! a TLS handshake, every request, and a WebSocket it is upgraded to) and
//! gives its slot back when dropped.
//!
//! The per-address map has one entry per address with a connection open,
//! so it never holds more than `max_total` entries.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use super::peer::{Network, Peer};

/// Why a connection was not let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The server has `max_total` connections open.
    Global,
    /// The client's address has `max_per_peer` open.
    Address,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_peer: HashMap<Peer, usize>,
}

/// The connection bounds of a listener.
#[derive(Debug)]
pub struct Admission {
    max_total: usize,
    max_per_peer: usize,
    /// Exempt from `max_per_peer` (still within `max_total`).
    trusted: Vec<Network>,
    counts: Mutex<Counts>,
    /// Connections admitted since start.
    admitted: std::sync::atomic::AtomicU64,
}

impl Admission {
    pub fn new(max_total: usize, max_per_peer: usize, trusted: Vec<Network>) -> Admission {
        Admission {
            max_total,
            max_per_peer,
            trusted,
            counts: Mutex::default(),
            admitted: Default::default(),
        }
    }

    pub fn max_total(&self) -> usize {
        self.max_total
    }

    pub fn max_per_peer(&self) -> usize {
        self.max_per_peer
    }

    /// Whether `ip` is in `trusted_addresses`.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|n| n.contains(ip))
    }

    /// A slot for a connection from `ip`, or why there is none.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Ticket, Refused> {
        let peer = Peer::ip(ip);
        let counted = !self.is_trusted(ip);
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if counts.total >= self.max_total {
            return Err(Refused::Global);
        }
        if counted {
            let n = counts.per_peer.entry(peer).or_insert(0);
            if *n >= self.max_per_peer {
                return Err(Refused::Address);
            }
            *n += 1;
        }
        counts.total += 1;
        self.admitted
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(Ticket {
            admission: Arc::clone(self),
            peer,
            counted,
        })
    }

    /// Connections admitted since start.
    pub fn admitted(&self) -> u64 {
        self.admitted.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Connections open now.
    pub fn total(&self) -> usize {
        self.counts.lock().unwrap_or_else(|p| p.into_inner()).total
    }

    /// Connections open now, in all and from `ip`'s address.
    pub fn open(&self, ip: IpAddr) -> (usize, usize) {
        let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let mine = counts.per_peer.get(&Peer::ip(ip)).copied().unwrap_or(0);
        (counts.total, mine)
    }
}

/// One admitted connection's slot.
#[derive(Debug)]
pub struct Ticket {
    admission: Arc<Admission>,
    peer: Peer,
    counted: bool,
}

impl Ticket {
    pub fn peer(&self) -> Peer {
        self.peer
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut counts = (self.admission.counts)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        counts.total = counts.total.saturating_sub(1);
        if self.counted
            && let Some(n) = counts.per_peer.get_mut(&self.peer)
        {
            *n -= 1;
            if *n == 0 {
                counts.per_peer.remove(&self.peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn one_address_cannot_take_every_slot() {
        let a = Arc::new(Admission::new(4, 2, vec!["10.9.9.9".parse().unwrap()]));
        let t1 = a.admit(ip("10.0.0.1")).unwrap();
        let _t2 = a.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(a.admit(ip("10.0.0.1")).unwrap_err(), Refused::Address);
        let _t3 = a.admit(ip("10.0.0.2")).unwrap();
        // Trusted: past the per-address bound, not past the total.
        let _t4 = a.admit(ip("10.9.9.9")).unwrap();
        assert_eq!(a.admit(ip("10.9.9.9")).unwrap_err(), Refused::Global);
        assert_eq!(a.admit(ip("10.0.0.3")).unwrap_err(), Refused::Global);
        drop(t1);
        assert_eq!(a.open(ip("10.0.0.1")), (3, 1));
        let _t5 = a.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(a.open(ip("10.0.0.1")), (4, 2));
    }

    #[test]
    fn slots_come_back_and_the_map_empties() {
        let a = Arc::new(Admission::new(100, 100, Vec::new()));
        let tickets: Vec<_> = (0..50)
            .map(|i| a.admit(IpAddr::from([10, 0, 0, i])).unwrap())
            .collect();
        assert_eq!(a.counts.lock().unwrap().per_peer.len(), 50);
        drop(tickets);
        let counts = a.counts.lock().unwrap();
        assert_eq!(counts.total, 0);
        assert!(counts.per_peer.is_empty());
    }
}
