//! Failed authentication is not free: each client address has a bucket of
//! `burst` failures that refills at `per_sec`. An address whose bucket is
//! empty has every key it presents refused unchecked (HTTP 429, `ERROR`
//! on the socket) until a failure's worth has refilled, so one address
//! tests at most `per_sec` keys a second, sustained, on every path
//! together. Successes never refill a bucket: a guesser holding one valid
//! key of its own cannot launder its failures with it.
//!
//! Bounded: `MAX_TRACKED` addresses. When that many are failing at once,
//! new ones share one overflow bucket, which throttles a spread-out
//! guesser as a whole instead of forgetting it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::peer::Peer;

/// Client addresses with a bucket at once.
pub const MAX_TRACKED: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Failures this address may still make now; below zero when
    /// concurrent attempts overdrew it (they wait that much longer).
    tokens: f64,
    at: Instant,
}

/// The per-address failure budget.
#[derive(Debug)]
pub struct AuthThrottle {
    burst: f64,
    per_sec: f64,
    /// `None`: the shared overflow bucket.
    buckets: Mutex<HashMap<Option<Peer>, Bucket>>,
}

impl AuthThrottle {
    pub fn new(burst: u32, per_sec: f64) -> AuthThrottle {
        AuthThrottle {
            burst: f64::from(burst.max(1)),
            per_sec: per_sec.max(0.001),
            buckets: Mutex::default(),
        }
    }

    /// `Err(wait)` while `peer` may not present a key.
    pub fn check(&self, peer: Peer) -> Result<(), Duration> {
        self.check_at(peer, Instant::now())
    }

    /// Counts one failure of `peer`.
    pub fn failed(&self, peer: Peer) {
        self.failed_at(peer, Instant::now())
    }

    fn check_at(&self, peer: Peer, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let tracked = buckets.contains_key(&Some(peer));
        let key = (tracked || buckets.len() < MAX_TRACKED).then_some(peer);
        let Some(bucket) = buckets.get_mut(&key) else {
            return Ok(());
        };
        self.refill(bucket, now);
        if bucket.tokens >= 1.0 {
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / self.per_sec;
            Err(Duration::from_secs_f64(wait))
        }
    }

    fn failed_at(&self, peer: Peer, now: Instant) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let mut key = Some(peer);
        if !buckets.contains_key(&key) && buckets.len() >= MAX_TRACKED {
            // Forget addresses that have refilled: they are back where an
            // untracked address starts.
            let burst = self.burst;
            let per_sec = self.per_sec;
            buckets.retain(|k, b| {
                k.is_none() || b.tokens + now.duration_since(b.at).as_secs_f64() * per_sec < burst
            });
            if buckets.len() >= MAX_TRACKED {
                key = None;
            }
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        self.refill(bucket, now);
        bucket.tokens = (bucket.tokens - 1.0).max(-self.burst);
    }

    fn refill(&self, bucket: &mut Bucket, now: Instant) {
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_sec).min(self.burst);
        bucket.at = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(i: u32) -> Peer {
        Peer::ip(std::net::Ipv4Addr::from(i).into())
    }

    #[test]
    fn a_guesser_gets_its_burst_then_the_rate() {
        let t = AuthThrottle::new(10, 2.0);
        let start = Instant::now();
        let (guesser, other) = (peer(1), peer(2));
        let (mut tried, mut last) = (0, start);
        // Ten simulated seconds of guessing as fast as it is let.
        for ms in (0..10_000).step_by(10) {
            let now = start + Duration::from_millis(ms);
            if t.check_at(guesser, now).is_ok() {
                tried += 1;
                last = now;
                t.failed_at(guesser, now);
            }
        }
        assert!((29..=31).contains(&tried), "{tried}");
        let end = start + Duration::from_secs(10);
        let wait = t.check_at(guesser, last).unwrap_err();
        assert!(wait <= Duration::from_millis(500), "{wait:?}");
        assert!(
            t.check_at(other, end).is_ok(),
            "other addresses are not slowed"
        );
        // A quiet minute later it is back to a full burst.
        assert!(t.check_at(guesser, end + Duration::from_secs(60)).is_ok());
    }

    #[test]
    fn the_map_is_bounded_and_overflow_shares_a_bucket() {
        let t = AuthThrottle::new(2, 1.0);
        let now = Instant::now();
        for i in 0..MAX_TRACKED as u32 {
            t.failed_at(peer(i), now);
        }
        assert_eq!(t.buckets.lock().unwrap().len(), MAX_TRACKED);
        let (a, b) = (peer(1 << 30), peer((1 << 30) + 1));
        t.failed_at(a, now);
        t.failed_at(b, now);
        assert!(t.buckets.lock().unwrap().len() <= MAX_TRACKED + 1);
        // Both overflowed into one bucket of two: it is empty now.
        assert!(t.check_at(a, now).is_err());
        // Once the tracked addresses have refilled they are forgotten.
        let later = now + Duration::from_secs(10);
        t.failed_at(peer((1 << 30) + 2), later);
        assert!(t.buckets.lock().unwrap().len() < 10);
    }
}
