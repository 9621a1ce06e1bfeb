//! What an influx connection is asked to do (`POST .../influx/connections`):
//! the write URL of a central engine (VictoriaMetrics, InfluxDB 1.x or
//! 2.x), its credentials, how records become points, where shipping
//! starts, how lines are batched, and the read options. Checked once at
//! create; the same form is what `influx_connections.json` keeps.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tsstore::line_protocol::LineOptions;

use crate::records::options::{FeedOptions, connection_settings};
use crate::records::{ReadSpec, RecordError};

/// Lines per POST unless the connection says otherwise.
pub const DEFAULT_BATCH: usize = 5000;
/// The most lines one POST may carry.
pub const MAX_BATCH: usize = 100_000;
/// Longest a line waits for its batch unless the connection says
/// otherwise.
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(1);
const MAX_MAX_DELAY: Duration = Duration::from_secs(3600);
/// Extra tags, at most.
const MAX_TAGS: usize = 64;

/// Why an influx connection cannot be created.
#[derive(Debug, thiserror::Error)]
pub enum InfluxSpecError {
    #[error("url '{url}': {reason}")]
    Url { url: String, reason: String },
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    InvalidOption(#[from] RecordError),
    #[error(transparent)]
    Tls(#[from] crate::net::TlsError),
    #[error(transparent)]
    NotANumber(#[from] crate::json_int::NotANumber),
}

/// An influx connection as created (and persisted).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InfluxSpec {
    /// The full write URL: `http://vm:8428/write`,
    /// `http://influx:8086/write?db=NAME`,
    /// `https://influx:8086/api/v2/write?org=O&bucket=B`.
    pub url: String,
    /// A secret: `Authorization: Token …` (InfluxDB 2.x).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// HTTP Basic (InfluxDB 1.x, vmauth).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// A secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// For records without their own (default: the store's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measurement: Option<String>,
    /// Top-level JSON fields sent as tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tag_fields: Vec<String>,
    /// Tags on every point (the gateway's).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Records after this timestamp (0 or `oldest`: every record; -1 or
    /// `now`: from the newest at create).
    #[serde(
        default,
        deserialize_with = "crate::json_int::optional_start",
        skip_serializing_if = "Option::is_none"
    )]
    pub from: Option<i64>,
    #[serde(
        default,
        deserialize_with = "crate::json_int::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub batch_size: Option<usize>,
    /// A duration (`1s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_delay: Option<String>,
    /// Bodies gzip-compressed (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gzip: Option<bool>,
    /// `https://`: a PEM file of CA certificates trusted besides the
    /// system's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Which records are sent and how (filter, aggregation).
    #[serde(flatten)]
    pub read: FeedOptions,
}

impl InfluxSpec {
    /// Its own keys in JSON (besides `FeedOptions::FIELDS`).
    const FIELDS: [&'static str; 12] = [
        "url",
        "token",
        "username",
        "password",
        "measurement",
        "tag_fields",
        "tags",
        "from",
        "batch_size",
        "max_delay",
        "gzip",
        "ca_file",
    ];

    /// Parses and checks a create request for a store of type `dt`.
    pub fn parse(
        body: &[u8],
        dt: tsstore::DataType,
        max_records: usize,
    ) -> Result<InfluxSpec, InfluxSpecError> {
        let spec: InfluxSpec = connection_settings(
            body,
            &[],
            &[&Self::FIELDS, &FeedOptions::FIELDS],
            &["batch_size"],
            |_| InfluxSpecError::Invalid("an influx connection has no mode".into()),
        )?;
        spec.check(dt, max_records)?;
        Ok(spec)
    }

    fn check(&self, dt: tsstore::DataType, max_records: usize) -> Result<(), InfluxSpecError> {
        use tsstore::DataType;
        let invalid = |m: String| Err(InfluxSpecError::Invalid(m));
        if !matches!(dt, DataType::Json | DataType::Schema) {
            return invalid(format!(
                "a {} store's records are not JSON objects: influx connections ship json and schema stores",
                dt.as_str()
            ));
        }
        if !self.url.contains("://") {
            return Err(
                self.bad_url("expected the full write URL, http://host:port/path or https://…")
            );
        }
        let uri: http::Uri = self
            .url
            .parse()
            .map_err(|e| self.bad_url(&format!("{e}")))?;
        let tls = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(self.bad_url("the scheme must be http:// or https://")),
        };
        if uri.host().is_none_or(str::is_empty) {
            return Err(self.bad_url("it has no host"));
        }
        if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
            return Err(
                self.bad_url("credentials go in username and password (or token), not in the URL")
            );
        }
        if let Some(path) = &self.ca_file {
            if !tls {
                return Err(self.bad_url("ca_file is for https:// URLs"));
            }
            crate::net::check_ca_file(path)?;
        }
        if self.token.is_some() && (self.username.is_some() || self.password.is_some()) {
            return invalid("give token, or username and password, not both".into());
        }
        if self.password.is_some() && self.username.is_none() {
            return invalid("a password needs a username".into());
        }
        let secrets = [&self.token, &self.username, &self.password];
        if secrets.iter().any(|s| {
            s.as_deref()
                .is_some_and(|s| s.is_empty() || s.chars().any(char::is_control))
        }) {
            return invalid(
                "token, username and password are not empty and have no control characters".into(),
            );
        }
        if let Some(m) = &self.measurement
            && (m.is_empty() || m.len() > 256 || m.chars().any(char::is_control))
        {
            return invalid("measurement must be 1 to 256 bytes without control characters".into());
        }
        let names = self.tag_fields.iter().chain(self.tags.keys());
        for name in names {
            if name.is_empty() || name.len() > 256 || name.chars().any(char::is_control) {
                return invalid(format!(
                    "tag name '{name}' must be 1 to 256 bytes without control characters"
                ));
            }
        }
        if self.tags.len() > MAX_TAGS || self.tag_fields.len() > MAX_TAGS {
            return invalid(format!("at most {MAX_TAGS} tags and {MAX_TAGS} tag_fields"));
        }
        if let Some((k, _)) = self
            .tags
            .iter()
            .find(|(_, v)| v.is_empty() || v.chars().any(char::is_control))
        {
            return invalid(format!(
                "tag '{k}': a value is 1 or more bytes without control characters"
            ));
        }
        if let Some(from) = self.from
            && from < -1
        {
            return invalid(format!(
                "from: {from} is not a timestamp (0 or oldest: the oldest record, -1 or now: from now on)"
            ));
        }
        if let Some(n) = self.batch_size
            && !(1..=MAX_BATCH).contains(&n)
        {
            return invalid(format!("batch_size: {n} is not 1 to {MAX_BATCH}"));
        }
        self.max_delay()?;
        self.read_spec(dt, max_records)?;
        Ok(())
    }

    fn bad_url(&self, reason: &str) -> InfluxSpecError {
        InfluxSpecError::Url {
            url: self.redacted_url(),
            reason: reason.to_string(),
        }
    }

    /// The URL as answers and logs show it: without its query string
    /// (InfluxDB 1.x takes `u` and `p` there).
    pub fn redacted_url(&self) -> String {
        match self.url.split_once('?') {
            Some((path, query)) if query.contains("p=") => format!("{path}?[redacted]"),
            _ => self.url.clone(),
        }
    }

    pub fn read_spec(
        &self,
        dt: tsstore::DataType,
        max_records: usize,
    ) -> Result<ReadSpec, RecordError> {
        self.read.read_spec(None, dt, max_records)
    }

    pub fn batch_size(&self) -> usize {
        self.batch_size.unwrap_or(DEFAULT_BATCH)
    }

    pub fn gzip(&self) -> bool {
        self.gzip.unwrap_or(true)
    }

    pub fn max_delay(&self) -> Result<Duration, InfluxSpecError> {
        let Some(text) = &self.max_delay else {
            return Ok(DEFAULT_MAX_DELAY);
        };
        let d = tsstore::parse_duration(text)
            .map_err(|e| InfluxSpecError::Invalid(format!("max_delay: {e}")))?;
        if d.is_zero() || d > MAX_MAX_DELAY {
            return Err(InfluxSpecError::Invalid(format!(
                "max_delay: '{text}' is not more than 0 and at most 1h"
            )));
        }
        Ok(d)
    }

    /// How records become points, for a store named `store`.
    pub fn line_options(&self, store: &str) -> LineOptions {
        LineOptions {
            measurement: self
                .measurement
                .clone()
                .unwrap_or_else(|| store.to_string()),
            tag_fields: self.tag_fields.clone(),
            tags: self.tags.clone(),
        }
    }

    /// The `Authorization` header's value, if any (a secret).
    pub fn authorization(&self) -> Option<String> {
        use base64::Engine as _;
        if let Some(t) = &self.token {
            return Some(format!("Token {t}"));
        }
        let user = self.username.as_ref()?;
        let pair = format!("{user}:{}", self.password.as_deref().unwrap_or(""));
        Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        ))
    }
}
