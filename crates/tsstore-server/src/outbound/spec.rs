//! What an outbound connection is asked to do (`POST .../ws/connections`,
//! mode `push` or `pull`), checked once at create so that a connection that is stored
//! can run: its URL, mode, headers and read options. The same form is
//! what `ws_connections.json` keeps.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tokio_tungstenite::tungstenite::http::Uri;

use crate::alerts::{RuleSpec, RuleSpecError, rule::check_rules};
use crate::net::{HeaderError, TlsError, check_ca_file, check_headers, client_tls};
use crate::records::options::{FeedOptions, connection_settings, scalar_text};
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
    /// Push: records after this timestamp are sent first (0: the oldest).
    #[serde(default, deserialize_with = "crate::json_int::optional")]
    pub from: Option<i64>,
    /// Push: how records are shown (the options of a live read).
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
}

fn default_mode() -> Mode {
    Mode::Push
}

impl ConnectionSpec {
    /// Its own keys in JSON (besides `FeedOptions::FIELDS`).
    const FIELDS: [&'static str; 8] = [
        "mode",
        "url",
        "headers",
        "from",
        "format",
        "rules",
        "ca_file",
        "precision",
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
            &["from"],
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
        let uri: Uri = self.url.parse().map_err(|e| bad_url(&format!("{e}")))?;
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
                ("format", self.format.is_some()),
            ];
            if let Some((name, _)) = push_only.iter().find(|(_, given)| *given) {
                return Err(SpecError::PushOnly(name));
            }
            if let Some(name) = self.read.first_given() {
                return Err(SpecError::PushOnly(name));
            }
        }
        if let Some(from) = self.from
            && from < 0
        {
            return Err(RecordError::InvalidParameter(format!(
                "from: {from} is not a timestamp (0: the oldest record)"
            ))
            .into());
        }
        if self.precision.is_some() && self.mode != Mode::Pull {
            return Err(RecordError::InvalidParameter(
                "precision applies to pull connections only (the unit of the timestamps they receive)"
                    .into(),
            )
            .into());
        }
        self.precision()?;
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
            "format":"compact","filter":"x","filter_ignore_case":"true","agg_window":"1m",
            "agg_fields":"t:avg","agg_default":"avg",
            "rules":[{"name":"r","condition":"t > 1"}]}"#;
        let mut spec = parse(full).unwrap();
        spec.ca_file = Some("/ca.pem".into());
        spec.precision = Some("ms".into());
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
        let s = parse(r#"{"mode":"pull","url":"ws://peer/feed"}"#).unwrap();
        assert_eq!(s.mode, Mode::Pull);
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
        ];
        for (body, word) in cases {
            let err = parse(body).unwrap_err().to_string();
            assert!(err.contains(word), "{body}: {err}");
        }
    }
}
