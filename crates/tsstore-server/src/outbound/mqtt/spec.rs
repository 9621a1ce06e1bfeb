//! What an MQTT connection is asked to do (`POST .../mqtt/connections`,
//! mode `publish` or `subscribe`), checked once at create: the broker URL, the topic (a topic
//! to publish to, or a filter to subscribe to), the cursor and its
//! persistence, credentials and read options. The same form is what
//! `mqtt_connections.json` keeps.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::records::options::{FeedOptions, connection_settings};
use crate::records::{ReadSpec, RecordError};

/// Publishes in flight (sent, not yet acknowledged) at most, by default.
pub const DEFAULT_IN_FLIGHT: u16 = 100;
/// The largest in-flight window a connection may ask for.
pub const MAX_IN_FLIGHT: u16 = 1000;
/// Longest topic, bytes (the protocol allows 65 535; brokers less).
pub const MAX_TOPIC: usize = 1024;
/// Longest client id (MQTT 3.1.1 guarantees 23; brokers take more).
pub const MAX_CLIENT_ID: usize = 256;

/// Publish the store's records (the sink), or store what is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MqttMode {
    #[default]
    Publish,
    Subscribe,
}

impl MqttMode {
    pub fn as_str(self) -> &'static str {
        match self {
            MqttMode::Publish => "publish",
            MqttMode::Subscribe => "subscribe",
        }
    }
}

/// Why an MQTT connection cannot be created.
#[derive(Debug, thiserror::Error)]
pub enum MqttSpecError {
    #[error("mode '{0}' is not publish or subscribe")]
    UnknownMode(String),
    #[error("broker_url '{url}': {reason}")]
    BrokerUrl { url: String, reason: String },
    #[error("topic '{topic}': {reason}")]
    Topic { topic: String, reason: String },
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    InvalidOption(#[from] RecordError),
    #[error(transparent)]
    Tls(#[from] crate::net::TlsError),
    #[error(transparent)]
    NotANumber(#[from] crate::json_int::NotANumber),
}

/// An MQTT connection as created (and persisted).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MqttSpec {
    #[serde(default)]
    pub mode: MqttMode,
    /// `tcp://host[:1883]` or `ssl://host[:8883]` (`mqtt://`, `mqtts://`
    /// alike).
    pub broker_url: String,
    /// Publish: the topic; subscribe: a topic filter (`+`, `#`).
    pub topic: String,
    /// Publish: records after this timestamp (0: the oldest, -1: from
    /// now on).
    #[serde(
        default,
        deserialize_with = "crate::json_int::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub from: Option<i64>,
    /// Publish: `{"timestamp", "data"}` (true, the default) or the data
    /// alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_timestamp: Option<bool>,
    /// Publish: seconds between cursor saves (> 0: resume after a
    /// restart from the last save; 0: the cursor lives in memory; -1:
    /// one shot, no reconnect). Default 1.
    #[serde(
        default,
        deserialize_with = "crate::json_int::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub cursor_persist_interval: Option<i64>,
    /// Default `tsstore-<store>-<id>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// A secret: redacted in every answer and log line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// `ssl://`: a PEM file of CA certificates trusted besides the
    /// system's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Publish: publishes sent and not yet acknowledged, at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_flight: Option<u16>,
    /// Subscribe: a JSON field of each message holding its timestamp
    /// (in `precision`); else the arrival time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_field: Option<String>,
    /// Subscribe: the unit of `timestamp_field` (`ns`, the default, `us`,
    /// `ms` or `s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<String>,
    /// Publish: which records are sent and how (filter, aggregation).
    #[serde(flatten)]
    pub read: FeedOptions,
}

/// Where the broker is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broker {
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

impl MqttSpec {
    /// Its own keys in JSON (besides `FeedOptions::FIELDS`).
    const FIELDS: [&'static str; 13] = [
        "mode",
        "broker_url",
        "topic",
        "from",
        "include_timestamp",
        "cursor_persist_interval",
        "client_id",
        "username",
        "password",
        "ca_file",
        "in_flight",
        "timestamp_field",
        "precision",
    ];

    /// Parses and checks a create request for a store of type `dt`.
    pub fn parse(
        body: &[u8],
        dt: tsstore::DataType,
        max_records: usize,
    ) -> Result<MqttSpec, MqttSpecError> {
        let spec: MqttSpec = connection_settings(
            body,
            &["publish", "subscribe"],
            &[&Self::FIELDS, &FeedOptions::FIELDS],
            &["from", "cursor_persist_interval", "in_flight"],
            MqttSpecError::UnknownMode,
        )?;
        spec.check(dt, max_records)?;
        Ok(spec)
    }

    fn check(&self, dt: tsstore::DataType, max_records: usize) -> Result<(), MqttSpecError> {
        let broker = self.broker()?;
        if let Some(path) = &self.ca_file {
            if !broker.tls {
                return Err(self.bad_url("ca_file is for ssl:// brokers"));
            }
            crate::net::check_ca_file(path)?;
        }
        check_topic(&self.topic, self.mode == MqttMode::Subscribe)?;
        if let Some(id) = &self.client_id
            && (id.is_empty() || id.len() > MAX_CLIENT_ID || id.chars().any(char::is_control))
        {
            return Err(MqttSpecError::Invalid(format!(
                "client_id must be 1 to {MAX_CLIENT_ID} bytes without control characters"
            )));
        }
        if self.password.is_some() && self.username.is_none() {
            return Err(MqttSpecError::Invalid(
                "a password needs a username (MQTT 3.1.1)".into(),
            ));
        }
        let only = |name: &str, given: bool, mode: MqttMode| {
            if given && self.mode != mode {
                Err(MqttSpecError::Invalid(format!(
                    "{name} applies to {} connections only",
                    mode.as_str()
                )))
            } else {
                Ok(())
            }
        };
        let publish = MqttMode::Publish;
        only("from", self.from.is_some(), publish)?;
        only(
            "include_timestamp",
            self.include_timestamp.is_some(),
            publish,
        )?;
        only(
            "cursor_persist_interval",
            self.cursor_persist_interval.is_some(),
            publish,
        )?;
        only("in_flight", self.in_flight.is_some(), publish)?;
        if let Some(name) = self.read.first_given() {
            only(name, true, publish)?;
        }
        only(
            "timestamp_field",
            self.timestamp_field.is_some(),
            MqttMode::Subscribe,
        )?;
        if let Some(from) = self.from
            && from < -1
        {
            return Err(MqttSpecError::Invalid(format!(
                "from: {from} is not a timestamp (0: the oldest record, -1: from now on)"
            )));
        }
        if let Some(every) = self.cursor_persist_interval
            && every < -1
        {
            return Err(MqttSpecError::Invalid(format!(
                "cursor_persist_interval: {every} is not seconds > 0, 0 (in memory) or -1 (one shot)"
            )));
        }
        if let Some(n) = self.in_flight
            && !(1..=MAX_IN_FLIGHT).contains(&n)
        {
            return Err(MqttSpecError::Invalid(format!(
                "in_flight: {n} is not 1 to {MAX_IN_FLIGHT}"
            )));
        }
        if let Some(field) = &self.timestamp_field
            && field.is_empty()
        {
            return Err(MqttSpecError::Invalid("timestamp_field is empty".into()));
        }
        if self.precision.is_some() && self.timestamp_field.is_none() {
            return Err(MqttSpecError::Invalid(
                "precision is the unit of timestamp_field: give timestamp_field too".into(),
            ));
        }
        crate::records::options::parse_precision(self.precision.as_deref())?;
        self.read_spec(dt, max_records)?;
        Ok(())
    }

    fn bad_url(&self, reason: &str) -> MqttSpecError {
        MqttSpecError::BrokerUrl {
            url: self.redacted_url(),
            reason: reason.to_string(),
        }
    }

    /// The broker's host, port and whether it speaks TLS.
    pub fn broker(&self) -> Result<Broker, MqttSpecError> {
        let (scheme, rest) = self
            .broker_url
            .split_once("://")
            .ok_or_else(|| self.bad_url("expected tcp://host:port or ssl://host:port"))?;
        let (tls, default_port) = match scheme {
            "tcp" | "mqtt" => (false, 1883),
            "ssl" | "mqtts" | "tls" => (true, 8883),
            _ => return Err(self.bad_url("the scheme must be tcp:// or ssl://")),
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#', '@']) {
            return Err(self.bad_url("only host and port: credentials go in username and password"));
        }
        let (host, port) = match authority.rsplit_once(':') {
            // An IPv6 address in brackets has colons of its own.
            Some((host, port)) if !port.contains(']') => {
                let port: u16 = port
                    .parse()
                    .map_err(|_| self.bad_url(&format!("port '{port}' is not 1 to 65535")))?;
                (host, port)
            }
            _ => (authority, default_port),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || port == 0 {
            return Err(self.bad_url("it has no host or port"));
        }
        Ok(Broker {
            host: host.to_string(),
            port,
            tls,
        })
    }

    /// The read spec of a publish connection (filter, aggregation).
    pub fn read_spec(
        &self,
        dt: tsstore::DataType,
        max_records: usize,
    ) -> Result<ReadSpec, RecordError> {
        self.read.read_spec(None, dt, max_records)
    }

    /// The broker URL as answers and logs show it.
    pub fn redacted_url(&self) -> String {
        // Credentials are refused in the URL; this only guards logs of
        // a URL that was refused for carrying them.
        match self.broker_url.split_once('@') {
            Some((before, after)) => match before.split_once("://") {
                Some((scheme, _)) => format!("{scheme}://[redacted]@{after}"),
                None => "[redacted]".into(),
            },
            None => self.broker_url.clone(),
        }
    }

    pub fn in_flight(&self) -> u16 {
        self.in_flight.unwrap_or(DEFAULT_IN_FLIGHT)
    }

    pub fn include_timestamp(&self) -> bool {
        self.include_timestamp.unwrap_or(true)
    }

    /// Seconds between cursor saves (> 0), 0 (in memory) or -1 (one shot).
    pub fn persist_every(&self) -> i64 {
        self.cursor_persist_interval.unwrap_or(1)
    }
}

/// Checks a topic to publish to, or a filter to subscribe to.
fn check_topic(topic: &str, filter: bool) -> Result<(), MqttSpecError> {
    let bad = |reason: &str| MqttSpecError::Topic {
        topic: topic.to_string(),
        reason: reason.to_string(),
    };
    if topic.is_empty() || topic.len() > MAX_TOPIC {
        return Err(bad(&format!("must be 1 to {MAX_TOPIC} bytes")));
    }
    if topic.contains('\0') {
        return Err(bad("contains a NUL character"));
    }
    let levels: Vec<&str> = topic.split('/').collect();
    for (i, level) in levels.iter().enumerate() {
        let wild = level.contains(['+', '#']);
        if wild && !filter {
            return Err(bad(
                "wildcards (+, #) are for subscribing; a publish topic names one topic",
            ));
        }
        if wild && *level != "+" && *level != "#" {
            return Err(bad("a wildcard must be a whole level (a/+/c, a/#)"));
        }
        if *level == "#" && i + 1 != levels.len() {
            return Err(bad("# must be the last level"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::options::refuse_unknown_keys;
    use tsstore::DataType;

    fn parse(body: &str) -> Result<MqttSpec, MqttSpecError> {
        MqttSpec::parse(body.as_bytes(), DataType::Json, 1000)
    }

    /// Every key a stored connection has is one `parse` takes: what it
    /// writes, it reads back.
    #[test]
    fn its_known_keys_are_the_ones_it_writes() {
        let full = r#"{"mode":"publish","broker_url":"tcp://h","topic":"t","from":1,
            "include_timestamp":true,"cursor_persist_interval":2,"client_id":"c",
            "username":"u","password":"p","in_flight":5,"filter":"x",
            "filter_ignore_case":"true","agg_window":"1m","agg_fields":"t:avg",
            "agg_default":"avg","timestamps":"string"}"#;
        let mut spec = parse(full).unwrap();
        spec.ca_file = Some("/ca.pem".into());
        spec.timestamp_field = Some("ts".into());
        spec.precision = Some("ms".into());
        spec.read.resolution = Some("1h".into());
        let written = serde_json::to_value(&spec).unwrap();
        let keys: Vec<&String> = written.as_object().unwrap().keys().collect();
        assert_eq!(
            keys.len(),
            MqttSpec::FIELDS.len() + FeedOptions::FIELDS.len()
        );
        assert!(refuse_unknown_keys(&written, &[&MqttSpec::FIELDS, &FeedOptions::FIELDS]).is_ok());
        let e = parse(r#"{"broker_url":"tcp://h","topic":"t","format":"compact"}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `format`"), "{e}");
    }

    #[test]
    fn valid_connections() {
        let s = parse(r#"{"broker_url":"tcp://127.0.0.1:1884","topic":"a/b","from":-1,"username":"u","password":"p"}"#).unwrap();
        assert_eq!(s.mode, MqttMode::Publish);
        assert_eq!(
            s.broker().unwrap(),
            Broker {
                host: "127.0.0.1".into(),
                port: 1884,
                tls: false
            }
        );
        assert_eq!(
            (s.in_flight(), s.include_timestamp(), s.persist_every()),
            (100, true, 1)
        );
        let s = parse(r#"{"broker_url":"ssl://broker.example","topic":"x"}"#).unwrap();
        assert_eq!(s.broker().unwrap().port, 8883);
        let s = parse(r#"{"mode":"subscribe","broker_url":"mqtt://[::1]:1883","topic":"sensors/+/temp/#","timestamp_field":"ts"}"#).unwrap();
        assert_eq!(s.broker().unwrap().host, "::1");
    }

    #[test]
    fn every_refusal_says_why() {
        let cases = [
            (
                r#"{"mode":"both","broker_url":"tcp://h","topic":"t"}"#,
                "both",
            ),
            (r#"{"broker_url":"http://h","topic":"t"}"#, "scheme"),
            (r#"{"broker_url":"h:1883","topic":"t"}"#, "tcp://"),
            (r#"{"broker_url":"tcp://u:p@h","topic":"t"}"#, "username"),
            (r#"{"broker_url":"tcp://h:99999","topic":"t"}"#, "port"),
            (r#"{"broker_url":"tcp://h","topic":"a/+"}"#, "wildcards"),
            (r#"{"broker_url":"tcp://h","topic":""}"#, "topic"),
            (
                r#"{"mode":"subscribe","broker_url":"tcp://h","topic":"a/#/b"}"#,
                "last",
            ),
            (
                r#"{"mode":"subscribe","broker_url":"tcp://h","topic":"a/b+"}"#,
                "whole level",
            ),
            (r#"{"broker_url":"tcp://h","topic":"t","from":-2}"#, "from"),
            (
                r#"{"broker_url":"tcp://h","topic":"t","cursor_persist_interval":-5}"#,
                "cursor_persist_interval",
            ),
            (
                r#"{"broker_url":"tcp://h","topic":"t","cursor_persist_interval":"soon"}"#,
                "cursor_persist_interval",
            ),
            (
                r#"{"broker_url":"tcp://h","topic":"t","in_flight":0}"#,
                "in_flight",
            ),
            (
                r#"{"broker_url":"tcp://h","topic":"t","agg_window":"soon"}"#,
                "agg_window",
            ),
            (
                r#"{"broker_url":"tcp://h","topic":"t","password":"p"}"#,
                "username",
            ),
            (
                r#"{"broker_url":"tcp://h","topic":"t","timestamp_field":"ts"}"#,
                "subscribe",
            ),
            (
                r#"{"mode":"subscribe","broker_url":"tcp://h","topic":"t","precision":"ms"}"#,
                "timestamp_field",
            ),
            (
                r#"{"mode":"subscribe","broker_url":"tcp://h","topic":"t","timestamp_field":"ts","precision":"minutes"}"#,
                "ns, us, ms or s",
            ),
            (
                r#"{"mode":"subscribe","broker_url":"tcp://h","topic":"t","from":0}"#,
                "publish",
            ),
            (
                r#"{"broker_url":"tcp://h","topic":"t","ca_file":"/x.pem"}"#,
                "ssl://",
            ),
            (
                r#"{"broker_url":"ssl://h","topic":"t","ca_file":"/nonexistent.pem"}"#,
                "ca_file",
            ),
            (r#"{"broker_url":"tcp://h","topic":"t","qos":2}"#, "qos"),
        ];
        for (body, word) in cases {
            let err = parse(body).unwrap_err().to_string();
            assert!(err.contains(word), "{body}: {err}");
        }
    }
}
