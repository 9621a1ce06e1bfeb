//! What an outbound connection is asked to do (`POST .../ws/connections`,
//! mode `push` or `pull`), checked once at create so that a connection that is stored
//! can run: its URL, mode, headers and read options. The same form is
//! what `ws_connections.json` keeps.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_tungstenite::tungstenite::http::Uri;

use crate::alerts::{RuleSpec, RuleSpecError, rule::check_rules};
use crate::net::{HeaderError, TlsError, check_ca_file, check_headers, client_tls};
use crate::records::ack_window::{self, AckWindow};
use crate::records::envelope::Framing;
use crate::records::options::{FeedOptions, compact_format, connection_settings, scalar_text};
use crate::records::{ReadSpec, RecordError};

/// Push (send the store's records) or pull (store what the peer sends).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Push,
    Pull,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Push => "push",
            Mode::Pull => "pull",
        }
    }
}

/// Why a connection cannot be created.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("mode '{0}' is not push or pull")]
    UnknownMode(String),
    #[error("url '{url}': {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error(transparent)]
    Header(#[from] HeaderError),
    #[error(transparent)]
    NotANumber(#[from] crate::json_int::NotANumber),
    #[error("{0}")]
    InvalidOption(#[from] RecordError),
    #[error("{0}")]
    Rules(#[from] RuleSpecError),
    #[error("a pull connection stores what it receives: {0} applies to push only")]
    PushOnly(&'static str),
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// A connection as created (and persisted).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConnectionSpec {
    #[serde(default = "default_mode")]
    pub mode: Mode,
    pub url: String,
    /// Sent when dialling; values are secrets (redacted in every answer).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Push: records after this timestamp are sent first (0 or `oldest`:
    /// the oldest; -1 or `now`: from the newest at create).
    #[serde(default, deserialize_with = "crate::json_int::optional_start")]
    pub from: Option<i64>,
    /// Push: whether the transport (`transport`, the default) or the peer
    /// (`app`: `{"type":"ack","timestamp":T}`) confirms records. Pull with
    /// `app`: acks what it has stored, the same way, to the peer.
    #[serde(
        default,
        deserialize_with = "ack_mode",
        skip_serializing_if = "Option::is_none"
    )]
    pub ack: Option<AckMode>,
    /// Push with `ack: app`: messages in flight unacknowledged, at most.
    #[serde(
        default,
        deserialize_with = "crate::json_int::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub window: Option<usize>,
    /// Push with `ack: app`: bytes in flight unacknowledged, at most.
    #[serde(
        default,
        deserialize_with = "crate::json_int::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub window_bytes: Option<usize>,
    /// How often the peer is pinged (a duration, `30s` by default); one
    /// that answers nothing for three of them is taken as gone. Shorter
    /// than the keep-alive of any proxy or peer on the way.
    #[serde(
        default,
        deserialize_with = "scalar_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub keepalive: Option<String>,
    /// Push: how records are shown (the options of a live read). Pull:
    /// how the peer sends them (a schema store takes both).
    #[serde(
        default,
        deserialize_with = "scalar_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub format: Option<String>,
    /// Push: which records are sent and how (filter, aggregation).
    #[serde(flatten)]
    pub read: FeedOptions,
    /// Push: alert rules (`alerts::RuleSpec`), evaluated on the new records
    /// the connection's filter passes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RuleSpec>,
    /// `wss://`: a PEM file of CA certificates trusted besides the
    /// system's (a private CA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<std::path::PathBuf>,
    /// Pull: the unit of the timestamps the peer sends (`ns`, the
    /// default, `us`, `ms` or `s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<String>,
    /// Pull: `data` (the default), each message an envelope
    /// `{"timestamp"?, "data"}`; `none`, each message a record's data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envelope: Option<String>,
    /// Pull with `envelope: none`: the top-level field holding the
    /// timestamp (else the arrival time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_field: Option<String>,
}

/// In a pull's URL: the last timestamp stored (0 before the first).
pub const LAST_TIMESTAMP: &str = "{last_timestamp}";
const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(30);
const MIN_KEEPALIVE: Duration = Duration::from_secs(1);
const MAX_KEEPALIVE: Duration = Duration::from_secs(3600);

fn default_mode() -> Mode {
    Mode::Push
}

/// `ack` as sent, with a message that names it when it is neither mode.
fn ack_mode<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<AckMode>, D::Error> {
    use serde::de::Error;
    match Option::<String>::deserialize(d)?.as_deref() {
        None => Ok(None),
        Some("transport") => Ok(Some(AckMode::Transport)),
        Some("app") => Ok(Some(AckMode::App)),
        Some(other) => Err(D::Error::custom(format!(
            "ack: '{other}' is not transport or app"
        ))),
    }
}

/// Who confirms what a connection has delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AckMode {
    /// The peer's WebSocket has taken it (a ping after each batch).
    Transport,
    /// The peer has handled it and said so.
    App,
}

impl ConnectionSpec {
    /// Its own keys in JSON (besides `FeedOptions::FIELDS`).
    const FIELDS: [&'static str; 14] = [
        "mode",
        "url",
        "headers",
        "from",
        "keepalive",
        "ack",
        "window",
        "window_bytes",
        "format",
        "rules",
        "ca_file",
        "precision",
        "envelope",
        "timestamp_field",
    ];

    /// Parses and checks a create request for a store of type `dt`.
    pub fn parse(
        body: &[u8],
        dt: tsstore::DataType,
        max_records: usize,
    ) -> Result<ConnectionSpec, SpecError> {
        let spec: ConnectionSpec = connection_settings(
            body,
            &["push", "pull"],
            &[&Self::FIELDS, &FeedOptions::FIELDS],
            &["window", "window_bytes"],
            SpecError::UnknownMode,
        )?;
        spec.check(dt, max_records)?;
        Ok(spec)
    }

    fn check(&self, dt: tsstore::DataType, max_records: usize) -> Result<(), SpecError> {
        let bad_url = |reason: &str| SpecError::InvalidUrl {
            url: self.url.clone(),
            reason: reason.to_string(),
        };
        if self.url.contains(LAST_TIMESTAMP) && self.mode != Mode::Pull {
            return Err(bad_url(&format!(
                "{LAST_TIMESTAMP} is for pull connections (the last timestamp stored)"
            )));
        }
        let uri: Uri = self
            .dial_url(0)
            .parse()
            .map_err(|e| bad_url(&format!("{e}")))?;
        match uri.scheme_str() {
            Some("ws" | "wss") => {}
            _ => return Err(bad_url("the scheme must be ws:// or wss://")),
        }
        if let Some(path) = &self.ca_file {
            if uri.scheme_str() != Some("wss") {
                return Err(bad_url("ca_file is for wss:// URLs"));
            }
            check_ca_file(path)?;
        }
        if uri.host().is_none_or(str::is_empty) {
            return Err(bad_url("it has no host"));
        }
        check_headers(&self.headers)?;
        if self.mode == Mode::Pull {
            let push_only = [
                ("rules", !self.rules.is_empty()),
                ("from", self.from.is_some()),
                ("window", self.window.is_some()),
                ("window_bytes", self.window_bytes.is_some()),
            ];
            if let Some((name, _)) = push_only.iter().find(|(_, given)| *given) {
                return Err(SpecError::PushOnly(name));
            }
            if let Some(name) = self.read.first_given() {
                return Err(SpecError::PushOnly(name));
            }
        }
        if let Some(from) = self.from
            && from < -1
        {
            return Err(RecordError::InvalidParameter(format!(
                "from: {from} is not a timestamp (0 or oldest: the oldest record, -1 or now: from now on)"
            ))
            .into());
        }
        if self.ack != Some(AckMode::App) {
            let window = [
                ("window", self.window.is_some()),
                ("window_bytes", self.window_bytes.is_some()),
            ];
            if let Some((name, _)) = window.iter().find(|(_, given)| *given) {
                return Err(RecordError::InvalidParameter(format!(
                    "{name} bounds what is in flight unacknowledged: it needs \"ack\": \"app\""
                ))
                .into());
            }
        }
        let bounds = [
            ("window", self.window, ack_window::MAX_RECORDS),
            ("window_bytes", self.window_bytes, ack_window::MAX_BYTES),
        ];
        for (name, value, max) in bounds {
            if let Some(v) = value
                && !(1..=max).contains(&v)
            {
                return Err(RecordError::InvalidParameter(format!(
                    "{name}: {v} is not between 1 and {max}"
                ))
                .into());
            }
        }
        if self.mode == Mode::Pull {
            compact_format(self.format.as_deref())?;
        }
        self.keepalive()?;
        let pull_only = [
            ("precision", self.precision.is_some()),
            ("envelope", self.envelope.is_some()),
            ("timestamp_field", self.timestamp_field.is_some()),
        ];
        if self.mode != Mode::Pull
            && let Some((name, _)) = pull_only.iter().find(|(_, given)| *given)
        {
            return Err(RecordError::InvalidParameter(format!(
                "{name} applies to pull connections only (how the messages they receive are read)"
            ))
            .into());
        }
        if self.framing()?.bare && self.ack == Some(AckMode::App) {
            return Err(RecordError::InvalidParameter(
                "ack app acknowledges the timestamps of envelopes: it needs envelope data".into(),
            )
            .into());
        }
        self.read_spec(dt, max_records)?;
        check_rules(&self.rules, dt)?;
        Ok(())
    }

    /// The trust anchors of a `wss://` connection: the system's, plus
    /// those of `ca_file`.
    pub fn tls_config(&self) -> Result<rustls::ClientConfig, TlsError> {
        client_tls(self.ca_file.as_deref())
    }

    /// Pull: the unit of the timestamps received.
    pub fn precision(&self) -> Result<tsstore::Precision, RecordError> {
        crate::records::options::parse_precision(self.precision.as_deref())
    }

    /// Pull: how the messages received are read.
    pub fn framing(&self) -> Result<Framing, RecordError> {
        Framing::new(
            self.envelope.as_deref(),
            self.timestamp_field.as_deref(),
            self.precision()?,
        )
    }

    /// How often the peer is pinged.
    pub fn keepalive(&self) -> Result<Duration, RecordError> {
        let Some(text) = &self.keepalive else {
            return Ok(DEFAULT_KEEPALIVE);
        };
        let d = tsstore::parse_duration(text)
            .map_err(|e| RecordError::InvalidParameter(format!("keepalive: {e}")))?;
        if !(MIN_KEEPALIVE..=MAX_KEEPALIVE).contains(&d) {
            return Err(RecordError::InvalidParameter(format!(
                "keepalive: '{text}' is not between 1s and 1h"
            )));
        }
        Ok(d)
    }

    /// The URL to dial: a pull's `{last_timestamp}` becomes the last
    /// timestamp stored (`cursor`, in the connection's precision), so a
    /// source that takes a start in its URL resumes after it.
    pub fn dial_url(&self, cursor: i64) -> String {
        if !self.url.contains(LAST_TIMESTAMP) {
            return self.url.clone();
        }
        let per_unit = self.precision().map_or(1, |p| p.nanos_per_unit()).max(1);
        self.url
            .replace(LAST_TIMESTAMP, &(cursor.max(0) / per_unit).to_string())
    }

    /// Push: what may be in flight unacknowledged, when the peer acks.
    pub fn ack_window(&self) -> Option<AckWindow> {
        (self.ack == Some(AckMode::App)).then(|| {
            let default = AckWindow::default();
            AckWindow {
                records: self.window.unwrap_or(default.records),
                bytes: self.window_bytes.unwrap_or(default.bytes),
            }
        })
    }

    /// The read spec of a push connection.
    pub fn read_spec(
        &self,
        dt: tsstore::DataType,
        max_records: usize,
    ) -> Result<ReadSpec, RecordError> {
        self.read.read_spec(self.format.as_deref(), dt, max_records)
    }

    /// The URL without a password in it (`ws://user:secret@host` shows as
    /// `ws://user:[redacted]@host`), for answers and logs.
    pub fn redacted_url(&self) -> String {
        let Some((scheme, rest)) = self.url.split_once("://") else {
            return self.url.clone();
        };
        let authority_end = rest.find('/').unwrap_or(rest.len());
        match rest[..authority_end].rsplit_once('@') {
            Some((userinfo, host)) => {
                let user = userinfo.split(':').next().unwrap_or("");
                format!(
                    "{scheme}://{user}:[redacted]@{host}{}",
                    &rest[authority_end..]
                )
            }
            None => self.url.clone(),
        }
    }

    /// The headers with every value hidden, for answers and logs.
    pub fn redacted_headers(&self) -> BTreeMap<String, String> {
        self.headers
            .keys()
            .map(|k| (k.clone(), "[redacted]".to_string()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::options::refuse_unknown_keys;
    use tsstore::DataType;

    fn parse(body: &str) -> Result<ConnectionSpec, SpecError> {
        ConnectionSpec::parse(body.as_bytes(), DataType::Json, 1000)
    }

    /// Every key a stored connection has is one `parse` takes: what it
    /// writes, it reads back.
    #[test]
    fn its_known_keys_are_the_ones_it_writes() {
        let full = r#"{"mode":"push","url":"ws://h/","headers":{"a":"b"},"from":1,
            "ack":"app","window":10,"window_bytes":1000,"keepalive":"10s",
            "format":"compact","filter":"x","filter_ignore_case":"true","agg_window":"1m",
            "agg_fields":"t:avg","agg_default":"avg","timestamps":"string",
            "rules":[{"name":"r","condition":"t > 1"}]}"#;
        let mut spec = parse(full).unwrap();
        spec.ca_file = Some("/ca.pem".into());
        spec.precision = Some("ms".into());
        spec.envelope = Some("none".into());
        spec.timestamp_field = Some("ts".into());
        spec.read.resolution = Some("1h".into());
        let written = serde_json::to_value(&spec).unwrap();
        let keys: Vec<&String> = written.as_object().unwrap().keys().collect();
        assert_eq!(
            keys.len(),
            ConnectionSpec::FIELDS.len() + FeedOptions::FIELDS.len()
        );
        let known = [&ConnectionSpec::FIELDS[..], &FeedOptions::FIELDS[..]];
        assert!(refuse_unknown_keys(&written, &known).is_ok());
        let again: ConnectionSpec = serde_json::from_value(written).unwrap();
        assert_eq!(again.read.agg_fields.as_deref(), Some("t:avg"));
    }

    #[test]
    fn valid_connections() {
        let s = parse(r#"{"url":"ws://127.0.0.1:9/x","headers":{"Authorization":"Bearer s3cret"},"from":0,"filter":"hot"}"#).unwrap();
        assert_eq!((s.mode, s.from), (Mode::Push, Some(0)));
        assert_eq!(s.redacted_headers()["Authorization"], "[redacted]");
        assert_eq!(s.redacted_url(), "ws://127.0.0.1:9/x");
        let s = parse(r#"{"url":"ws://me:pw@h:1/p?q"}"#).unwrap();
        assert_eq!(s.redacted_url(), "ws://me:[redacted]@h:1/p?q");
        let s = parse(r#"{"mode":"pull","url":"ws://peer/feed","format":"compact","ack":"app"}"#)
            .unwrap();
        assert_eq!((s.mode, s.ack), (Mode::Pull, Some(AckMode::App)));
        for (from, at) in [
            ("-1", -1),
            ("\"now\"", -1),
            ("\"oldest\"", 0),
            ("\"17\"", 17),
            ("5", 5),
        ] {
            let s = parse(&format!(r#"{{"url":"ws://h/","from":{from}}}"#)).unwrap();
            assert_eq!(s.from, Some(at), "{from}");
        }
        let s =
            parse(r#"{"mode":"pull","url":"ws://h/x?after={last_timestamp}","precision":"ms"}"#)
                .unwrap();
        assert_eq!(s.dial_url(5_000_000_000), "ws://h/x?after=5000");
        assert_eq!(s.keepalive().unwrap(), Duration::from_secs(30));
        let s = parse(r#"{"url":"ws://h/","ack":"app","window":7}"#).unwrap();
        assert_eq!(s.ack_window().map(|w| w.records), Some(7));
        assert_eq!(parse(r#"{"url":"ws://h/"}"#).unwrap().ack_window(), None);
        // What is persisted reads back the same.
        let again: ConnectionSpec =
            serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(again.url, s.url);
    }

    #[test]
    fn every_refusal_says_why() {
        let cases = [
            (r#"{"mode":"sideways","url":"ws://h/"}"#, "sideways"),
            (r#"{"url":"http://h/"}"#, "scheme"),
            (
                r#"{"url":"ws://h/","ca_file":"/nonexistent.pem"}"#,
                "ca_file",
            ),
            (
                r#"{"url":"wss://h/","ca_file":"/nonexistent.pem"}"#,
                "ca_file",
            ),
            (r#"{"url":"not a url"}"#, "url"),
            (
                r#"{"url":"ws://h/","headers":{"bad name":"v"}}"#,
                "bad name",
            ),
            (r#"{"url":"ws://h/","agg_window":"soon"}"#, "agg_window"),
            (r#"{"url":"ws://h/","format":"pretty"}"#, "format"),
            (
                r#"{"url":"ws://h/","precision":"ms"}"#,
                "pull connections only",
            ),
            (
                r#"{"mode":"pull","url":"ws://h/","precision":"hours"}"#,
                "ns, us, ms or s",
            ),
            (
                r#"{"url":"ws://h/","rules":[{"name":"hot","condition":"t >> 1"}]}"#,
                "position",
            ),
            (
                r#"{"mode":"pull","url":"ws://h/","rules":[{"name":"a","condition":"t > 1"}]}"#,
                "rules",
            ),
            (r#"{"mode":"pull","url":"ws://h/","filter":"x"}"#, "filter"),
            (r#"{"url":"ws://h/","from":-5}"#, "from"),
            (r#"{"url":"ws://h/","bogus":1}"#, "bogus"),
            (r#"{"url":"ws://h/","from":"soon"}"#, "now, oldest"),
            (r#"{"url":"ws://h/","keepalive":"0s"}"#, "keepalive"),
            (r#"{"url":"ws://h/","keepalive":"often"}"#, "keepalive"),
            (
                r#"{"url":"ws://h/?after={last_timestamp}"}"#,
                "pull connections",
            ),
            (r#"{"url":"ws://h/","ack":"maybe"}"#, "ack"),
            (
                r#"{"url":"ws://h/","envelope":"none"}"#,
                "pull connections only",
            ),
            (
                r#"{"mode":"pull","url":"ws://h/","envelope":"wrapped"}"#,
                "not data",
            ),
            (
                r#"{"mode":"pull","url":"ws://h/","timestamp_field":"ts"}"#,
                "envelope=none only",
            ),
            (
                r#"{"mode":"pull","url":"ws://h/","envelope":"none","ack":"app"}"#,
                "needs envelope data",
            ),
            (
                r#"{"mode":"pull","url":"ws://h/","timestamps":"string"}"#,
                "timestamps",
            ),
            (
                r#"{"url":"ws://h/","timestamps":"text"}"#,
                "number or string",
            ),
            (r#"{"url":"ws://h/","window":5}"#, "needs \"ack\": \"app\""),
            (
                r#"{"url":"ws://h/","ack":"app","window":0}"#,
                "between 1 and",
            ),
            (r#"{"url":"ws://h/","ack":"app","window":"x"}"#, "window"),
            (
                r#"{"url":"ws://h/","ack":"app","window_bytes":1e12}"#,
                "between 1 and",
            ),
            (
                r#"{"mode":"pull","url":"ws://h/","format":"pretty"}"#,
                "format",
            ),
            (
                r#"{"mode":"pull","url":"ws://h/","ack":"app","window":5}"#,
                "window",
            ),
        ];
        for (body, word) in cases {
            let err = parse(body).unwrap_err().to_string();
            assert!(err.contains(word), "{body}: {err}");
        }
    }
}
