//! Records, whatever carries them: intake (what a client sent → items a
//! store takes), read options and the read spec they make, the read
//! pipeline (expand once, filter, aggregate), `resolution` (raw or one of
//! the store's rollups answers), the encoders, the envelope a message
//! comes in (`envelope`), and the live feed (`live`, following the store
//! with `follow`, with `wrap` for its envelopes and schema messages, and
//! `session` for what a feed and its peer say to each other, and
//! `ack_window` for the messages an app-acknowledged feed has in flight).
//!
//! Every transport goes through here: REST, WebSocket, the Unix socket,
//! MQTT and outbound connections. Nothing in this module knows
//! HTTP: errors are `RecordError`s, which each transport maps to its own
//! answers in one place.

pub mod ack_window;
pub mod budget;
pub mod encode;
pub mod envelope;
mod error;
pub mod follow;
pub mod intake;
pub mod line_write;
pub mod live;
pub mod options;
pub mod pipeline;
pub mod resolution;
pub mod session;
mod wrap;

pub use error::{RecordError, RecordResult};
pub use options::{ListDefaults, QueryParams, ReadOptions, ReadSpec, TimeRange};
