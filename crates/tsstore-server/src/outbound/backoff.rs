//! Reconnect delays: 1 s, doubling to 60 s, with jitter so that many
//! connections dropped together do not all dial again at the same instant.

use std::time::Duration;

pub const FIRST: Duration = Duration::from_secs(1);
pub const MAX: Duration = Duration::from_secs(60);

/// The delays of one connection's reconnect attempts.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    /// State of the jitter generator (xorshift; no need for more).
    seed: u64,
}

impl Backoff {
    pub fn new(seed: u64) -> Backoff {
        Backoff {
            next: FIRST,
            seed: seed | 1,
        }
    }

    /// The next delay: the current step less up to a fifth of it.
    pub fn next_delay(&mut self) -> Duration {
        let step = self.next;
        self.next = (self.next * 2).min(MAX);
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let jitter = step.as_millis() as u64 / 5;
        step - Duration::from_millis(self.seed % (jitter + 1))
    }

    /// After a healthy connection: start again from the first step.
    pub fn reset(&mut self) {
        self.next = FIRST;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_cap_with_bounded_jitter() {
        let mut b = Backoff::new(42);
        let steps: Vec<Duration> = (0..9).map(|_| b.next_delay()).collect();
        let nominal = [1, 2, 4, 8, 16, 32, 60, 60, 60];
        for (d, n) in steps.iter().zip(nominal) {
            let n = Duration::from_secs(n);
            assert!(*d <= n && *d >= n - n / 5, "{d:?} for {n:?}");
        }
        b.reset();
        assert!(b.next_delay() <= FIRST);
    }
}
