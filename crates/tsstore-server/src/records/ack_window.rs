//! Application-level acknowledgement of a feed (`ack: app` push, durable
//! live readers): the messages sent and not yet acknowledged, bounded in
//! count and bytes (`AckWindow`). The feed pauses while the window is
//! full; an ack `{"type":"ack","timestamp":T}` acknowledges the message
//! with timestamp `T` and every one before it, and moves the resume
//! point to what that message covered. An ack for a timestamp that was
//! never sent is refused (answered and counted by the feed), never
//! trusted: it would move the resume point past records the peer lacks.

use std::collections::VecDeque;

/// Messages in flight per feed unless the connection says otherwise.
pub const DEFAULT_RECORDS: usize = 1000;
/// Bytes in flight per feed unless the connection says otherwise.
pub const DEFAULT_BYTES: usize = 4 << 20;
/// The most a connection may ask for, in messages and in bytes.
pub const MAX_RECORDS: usize = 100_000;
pub const MAX_BYTES: usize = 64 << 20;

/// How much may be in flight unacknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckWindow {
    pub records: usize,
    pub bytes: usize,
}

impl Default for AckWindow {
    fn default() -> Self {
        AckWindow {
            records: DEFAULT_RECORDS,
            bytes: DEFAULT_BYTES,
        }
    }
}

/// One message sent and not yet acknowledged.
#[derive(Debug)]
struct Sent {
    /// The timestamp the message shows (a window's: its end).
    timestamp: i64,
    /// The cursor that acknowledging it reaches.
    upto: i64,
    bytes: usize,
}

/// The messages a feed has in flight.
#[derive(Debug)]
pub struct InFlight {
    limit: AckWindow,
    sent: VecDeque<Sent>,
    bytes: usize,
    /// The newest acknowledged timestamp (or the resume point at start).
    acked: i64,
}

impl InFlight {
    pub fn new(limit: AckWindow, resumed_after: i64) -> InFlight {
        InFlight {
            limit,
            sent: VecDeque::new(),
            bytes: 0,
            acked: resumed_after,
        }
    }

    /// Whether the feed must wait for acks before sending more.
    pub fn is_full(&self) -> bool {
        self.sent.len() >= self.limit.records.max(1) || self.bytes >= self.limit.bytes.max(1)
    }

    pub fn len(&self) -> usize {
        self.sent.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sent.is_empty()
    }

    /// A message was sent: `timestamp` as shown, `upto` the cursor its
    /// ack reaches.
    pub fn push(&mut self, timestamp: i64, upto: i64, bytes: usize) {
        self.bytes += bytes;
        self.sent.push_back(Sent {
            timestamp,
            upto,
            bytes,
        });
    }

    /// The peer acknowledged `t`: `Ok(Some(cursor))` when that moves the
    /// resume point, `Ok(None)` for a repeat of an older ack, `Err(why)`
    /// for a timestamp that was not sent.
    pub fn ack(&mut self, t: i64) -> Result<Option<i64>, String> {
        if t <= self.acked {
            return Ok(None);
        }
        let Some(at) = self.sent.iter().position(|s| s.timestamp == t) else {
            let why = match (self.sent.front(), self.sent.back()) {
                (Some(first), Some(last)) => format!(
                    "ack for {t}, which was not sent: in flight are {} messages from {} to {}",
                    self.sent.len(),
                    first.timestamp,
                    last.timestamp
                ),
                _ => format!("ack for {t}, which was not sent: nothing is in flight"),
            };
            return Err(why);
        };
        let mut upto = self.acked;
        for s in self.sent.drain(..=at) {
            self.bytes -= s.bytes;
            upto = s.upto;
        }
        self.acked = t;
        Ok(Some(upto))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_fills_and_acks_empty_it() {
        let mut w = InFlight::new(
            AckWindow {
                records: 3,
                bytes: 100,
            },
            10,
        );
        for t in [11, 12, 13] {
            assert!(!w.is_full());
            w.push(t, t, 10);
        }
        assert!(w.is_full());
        // A repeat, and a timestamp never sent.
        assert_eq!(w.ack(9), Ok(None));
        let err = w.ack(14).unwrap_err();
        assert!(
            err.contains("not sent") && err.contains("11 to 13"),
            "{err}"
        );
        assert_eq!(w.ack(12), Ok(Some(12)));
        assert_eq!((w.len(), w.is_full()), (1, false));
        assert_eq!(w.ack(12), Ok(None));
        // Bytes bound too.
        w.push(20, 19, 95);
        assert!(w.is_full());
        assert_eq!(w.ack(20), Ok(Some(19)));
        assert!(w.is_empty());
        assert!(w.ack(21).unwrap_err().contains("nothing is in flight"));
    }
}
