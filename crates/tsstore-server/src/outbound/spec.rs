//! What an outbound connection is asked to do (`POST .../ws/connections`,
//! SPEC §8), checked once at create so that a connection that is stored
//! can run: its URL, mode, headers and read options. The same form is
//! what `ws_connections.json` keeps.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue, Uri};

use crate::alerts::{RuleSpec, RuleSpecError, rule::check_rules};
use crate::records::options::scalar_text;
use crate::records::{ListDefaults, ReadOptions, ReadSpec, RecordError};

/// Headers on one connection, at most.
pub const MAX_HEADERS: usize = 32;

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
    #[error("header '{0}': {1}")]
    InvalidHeader(String, String),
    #[error("at most {MAX_HEADERS} headers")]
    TooManyHeaders,
    #[error("{0}")]
    InvalidOption(#[from] RecordError),
    #[error("{0}")]
    Rules(#[from] RuleSpecError),
    #[error("a pull connection stores what it receives: {0} applies to push only")]
    PushOnly(&'static str),
    #[error("ca_file {path}: {reason}")]
    CaFile { path: String, reason: String },
}

/// A connection as created (and persisted).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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
    #[serde(
        default,
        deserialize_with = "scalar_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub filter: Option<String>,
    #[serde(
        default,
        deserialize_with = "scalar_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub filter_ignore_case: Option<String>,
    #[serde(
        default,
        deserialize_with = "scalar_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub agg_window: Option<String>,
    #[serde(
        default,
        deserialize_with = "scalar_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub agg_fields: Option<String>,
    #[serde(
        default,
        deserialize_with = "scalar_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub agg_default: Option<String>,
    /// Push: alert rules evaluated on the records sent (SPEC §10).
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
    /// Parses and checks a create request for a store of type `dt`.
    pub fn parse(
        body: &[u8],
        dt: tsstore::DataType,
        max_records: usize,
    ) -> Result<ConnectionSpec, SpecError> {
        let raw: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| RecordError::InvalidJson(format!("invalid JSON body: {e}")))?;
        if let Some(mode) = raw.get("mode").and_then(|m| m.as_str())
            && !matches!(mode, "push" | "pull")
        {
            return Err(SpecError::UnknownMode(mode.to_string()));
        }
        crate::json_int::check_numbers(&raw, &["from"]).map_err(RecordError::InvalidParameter)?;
        let spec: ConnectionSpec = serde_json::from_value(raw)
            .map_err(|e| RecordError::InvalidJson(format!("invalid connection: {e}")))?;
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
            let certs = ca_certificates(path).map_err(|reason| SpecError::CaFile {
                path: path.display().to_string(),
                reason,
            })?;
            if certs.is_empty() {
                return Err(SpecError::CaFile {
                    path: path.display().to_string(),
                    reason: "no PEM certificate in it".into(),
                });
            }
        }
        if uri.host().is_none_or(str::is_empty) {
            return Err(bad_url("it has no host"));
        }
        if self.headers.len() > MAX_HEADERS {
            return Err(SpecError::TooManyHeaders);
        }
        check_headers(&self.headers).map_err(|(name, why)| SpecError::InvalidHeader(name, why))?;
        if self.mode == Mode::Pull {
            let push_only = [
                ("rules", !self.rules.is_empty()),
                ("from", self.from.is_some()),
                ("filter", self.filter.is_some()),
                ("agg_window", self.agg_window.is_some()),
                ("format", self.format.is_some()),
            ];
            if let Some((name, _)) = push_only.iter().find(|(_, given)| *given) {
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
    pub fn tls_config(&self) -> Result<rustls::ClientConfig, SpecError> {
        client_tls(self.ca_file.as_deref()).map_err(|reason| SpecError::CaFile {
            path: self
                .ca_file
                .as_ref()
                .map_or("(TLS settings)".into(), |p| p.display().to_string()),
            reason,
        })
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
        let defaults = ListDefaults {
            limit: 1,
            include_data: true,
        };
        let options = ReadOptions {
            format: self.format.clone(),
            filter: self.filter.clone(),
            filter_ignore_case: self.filter_ignore_case.clone(),
            agg_window: self.agg_window.clone(),
            agg_fields: self.agg_fields.clone(),
            agg_default: self.agg_default.clone(),
            ..ReadOptions::default()
        };
        ReadSpec::new(&options, defaults, max_records, dt)
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

/// Checks header names and values (at most `MAX_HEADERS`); `Err` names
/// the header at fault and why.
pub(crate) fn check_headers(headers: &BTreeMap<String, String>) -> Result<(), (String, String)> {
    if headers.len() > MAX_HEADERS {
        return Err((String::new(), format!("at most {MAX_HEADERS} headers")));
    }
    for (name, value) in headers {
        let fail = |e: &dyn std::fmt::Display| (name.clone(), e.to_string());
        HeaderName::from_bytes(name.as_bytes()).map_err(|e| fail(&e))?;
        HeaderValue::from_str(value).map_err(|e| fail(&e))?;
    }
    Ok(())
}

/// An HTTP client the server (or the CLI) uses to reach out: `tls` for
/// `https://`, no proxy (like every outbound connection), no redirects
/// (a redirect would take the request's headers, keys among them,
/// elsewhere), and `timeout` for each request, connecting included.
pub(crate) fn http_client(
    tls: rustls::ClientConfig,
    timeout: std::time::Duration,
) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())
}

/// A TLS client configuration (rustls on ring) trusting the system's
/// roots and those of `ca_file`.
pub(crate) fn client_tls(
    ca_file: Option<&std::path::Path>,
) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let _ = roots.add_parsable_certificates(native.certs);
    if let Some(path) = ca_file {
        let _ = roots.add_parsable_certificates(ca_certificates(path)?);
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// The certificates of a PEM file.
pub(crate) fn ca_certificates(
    path: &std::path::Path,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_file_iter(path)
        .map_err(|e| e.to_string())?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tsstore::DataType;

    fn parse(body: &str) -> Result<ConnectionSpec, SpecError> {
        ConnectionSpec::parse(body.as_bytes(), DataType::Json, 1000)
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
