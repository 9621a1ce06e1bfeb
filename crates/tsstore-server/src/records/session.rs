//! What passes between a session and its peer, whatever the transport
//! underneath: the messages a feed sends (`Outgoing`), what it hears back
//! (`Incoming`), and why a session ended (`Ending`) with the one table of
//! close codes and reasons. The live feed, the WebSocket read and ingest,
//! and outbound push and MQTT all speak it, so a close means the same
//! wherever it is sent.

use std::time::Duration;

/// What the feed sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    Text(String),
    /// Raw bytes (`Envelope::Bare`).
    Binary(Vec<u8>),
    Ping,
    /// A ping carrying a cursor (8 bytes, little-endian): the peer's pong
    /// proves it has read everything sent before it.
    Mark(i64),
    /// A WebSocket close frame.
    Close {
        code: u16,
        reason: String,
    },
}

/// What the peer did, as far as the feed cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// Anything but a close: the peer is alive.
    Alive,
    /// The pong of a `Mark`: the peer has read up to this cursor.
    Confirmed(i64),
    /// `{"type":"ack","timestamp":T}`: the peer has handled every message
    /// up to and including the one with timestamp `T`.
    Acked(i64),
    /// A message that claims to be an ack and is not a valid one (why).
    BadAck(String),
    /// A close frame, an error, or the end of the stream.
    Gone,
}

impl Incoming {
    /// A text message from the peer of a feed: an ack, or just a sign of
    /// life (anything else a peer sends is not the feed's business).
    pub fn from_text(text: &str) -> Incoming {
        // Most peers send nothing else; only what may be an ack is parsed.
        if !text.contains("\"ack\"") {
            return Incoming::Alive;
        }
        #[derive(serde::Deserialize)]
        struct Ack {
            #[serde(rename = "type")]
            kind: String,
            #[serde(default, deserialize_with = "crate::json_int::optional_timestamp")]
            timestamp: Option<i64>,
        }
        match serde_json::from_str::<Ack>(text) {
            Ok(Ack { kind, .. }) if kind != "ack" => Incoming::Alive,
            Ok(Ack {
                timestamp: Some(t), ..
            }) => Incoming::Acked(t),
            Ok(_) => Incoming::BadAck("an ack needs the timestamp it acknowledges".into()),
            Err(e) => Incoming::BadAck(format!(
                "an ack is {{\"type\":\"ack\",\"timestamp\":T}}: {e}"
            )),
        }
    }
}

/// `{"type":"error","message","code"}`, what a feed answers a bad ack.
pub fn error_message(message: &str, code: &str) -> String {
    serde_json::json!({"type": "error", "message": message, "code": code}).to_string()
}

/// WebSocket close codes (RFC 6455 §7.4.1) the server sends.
pub mod close_code {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const PROTOCOL: u16 = 1002;
    pub const INVALID_PAYLOAD: u16 = 1007;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
    pub const INTERNAL: u16 = 1011;
}

/// Why a WebSocket session (a live feed, an ingest connection) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    ServerStopping,
    StoreDeleted,
    StoreReset,
    StoreClosed,
    /// Nothing heard from the peer, not even a pong.
    Idle,
    /// An ingest connection sent no record for this long (pongs and pings
    /// do not count).
    NoRecords(Duration),
    /// A message over this many bytes.
    TooBig(usize),
    /// A text message that is not UTF-8.
    InvalidUtf8,
    /// The peer broke the WebSocket protocol.
    Protocol(String),
    /// The peer closed, or a send failed.
    PeerGone,
    /// A newer connection of the same durable reader took over.
    Replaced,
    ReadFailed(String),
}

impl Ending {
    /// The close frame to send for it (`None`: the peer is gone already).
    /// The one table of close codes and reasons.
    pub fn close_frame(&self) -> Option<Outgoing> {
        use close_code::*;
        let (code, reason) = match self {
            Ending::ServerStopping => (GOING_AWAY, "the server is stopping".to_string()),
            Ending::StoreDeleted => (GOING_AWAY, "the store is being deleted".to_string()),
            Ending::StoreReset => (NORMAL, "the store was reset".to_string()),
            Ending::StoreClosed => (GOING_AWAY, "the store was closed".to_string()),
            Ending::Idle => (
                POLICY,
                "idle timeout: nothing heard from the peer".to_string(),
            ),
            Ending::NoRecords(d) => (
                POLICY,
                format!(
                    "idle timeout: no record for {} s (server.ws_idle_timeout_ms)",
                    d.as_secs()
                ),
            ),
            Ending::TooBig(max) => (TOO_BIG, format!("message larger than {max} bytes")),
            Ending::InvalidUtf8 => (
                INVALID_PAYLOAD,
                "a text message that is not valid UTF-8".to_string(),
            ),
            Ending::Protocol(why) => (PROTOCOL, format!("WebSocket protocol error: {why}")),
            Ending::ReadFailed(why) => (INTERNAL, format!("reading the store failed: {why}")),
            Ending::Replaced => (
                POLICY,
                "a newer connection of this consumer took over".to_string(),
            ),
            Ending::PeerGone => return None,
        };
        // A close reason may hold 123 bytes (a control frame's 125, less
        // the code); cut at a character boundary.
        let mut reason = reason;
        if reason.len() > 123 {
            let mut end = 123;
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            reason.truncate(end);
        }
        Some(Outgoing::Close { code, reason })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ending_but_a_gone_peer_says_why() {
        for e in [
            Ending::ServerStopping,
            Ending::StoreDeleted,
            Ending::StoreReset,
            Ending::StoreClosed,
            Ending::Idle,
            Ending::NoRecords(Duration::from_secs(600)),
            Ending::TooBig(1 << 22),
            Ending::InvalidUtf8,
            Ending::Protocol("x".repeat(300)),
            Ending::ReadFailed("x".into()),
            Ending::Replaced,
        ] {
            let Some(Outgoing::Close { reason, .. }) = e.close_frame() else {
                panic!("{e:?} has a close frame");
            };
            assert!(!reason.is_empty() && reason.len() <= 123);
        }
        let code = |e: Ending| match e.close_frame() {
            Some(Outgoing::Close { code, .. }) => code,
            _ => 0,
        };
        assert_eq!(code(Ending::InvalidUtf8), 1007);
        assert_eq!(code(Ending::TooBig(1)), 1009);
        assert_eq!(code(Ending::NoRecords(Duration::ZERO)), 1008);
        assert_eq!(code(Ending::ServerStopping), 1001);
        assert_eq!(Ending::PeerGone.close_frame(), None);
    }

    #[test]
    fn acks_from_the_peer() {
        assert_eq!(
            Incoming::from_text(r#"{"type":"ack","timestamp":5}"#),
            Incoming::Acked(5)
        );
        assert_eq!(
            Incoming::from_text(r#"{"timestamp":"1733472000123456789","type":"ack"}"#),
            Incoming::Acked(1733472000123456789)
        );
        assert_eq!(Incoming::from_text(r#"{"hello":1}"#), Incoming::Alive);
        assert_eq!(
            Incoming::from_text(r#"{"type":"note","text":"ack"}"#),
            Incoming::Alive
        );
        for bad in [
            r#"{"type":"ack"}"#,
            r#"{"type":"ack","timestamp":"x"}"#,
            r#"{"type":"ack""#,
        ] {
            assert!(
                matches!(Incoming::from_text(bad), Incoming::BadAck(_)),
                "{bad}"
            );
        }
    }
}
