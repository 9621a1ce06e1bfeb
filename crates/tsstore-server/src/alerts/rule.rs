//! An alert rule as a push connection is given it: `{name,
//! condition, webhook?, webhook_headers?, cooldown?}`, checked at create
//! so that a stored connection's rules all parse. The condition itself is
//! the engine's (`tsstore::rules`); this adds what only a server has: the
//! webhook and its secrets.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_tungstenite::tungstenite::http::Uri;
use tsstore::rules::{Rule, RuleDefError};
use tsstore::{DataType, DurationError};

use crate::net::{HeaderError, check_headers};
use crate::records::options::scalar_text;

/// Rules on one connection, at most: each record is evaluated against
/// every one of them.
pub const MAX_RULES: usize = 32;

/// Why a connection's rules were refused.
#[derive(Debug, thiserror::Error)]
pub enum RuleSpecError {
    #[error("at most {MAX_RULES} rules on a connection")]
    TooMany,
    #[error("{0}")]
    Rule(#[from] RuleDefError),
    #[error("rule name '{0}' is given twice")]
    DuplicateName(String),
    #[error("rule '{name}': cooldown: {reason}")]
    Cooldown { name: String, reason: String },
    #[error("rule '{name}': webhook {url}: {reason}")]
    Webhook {
        name: String,
        /// Without its path and query (they may hold a token).
        url: String,
        reason: String,
    },
    #[error("rule '{name}': webhook_headers without a webhook")]
    HeadersWithoutWebhook { name: String },
    #[error("rule '{name}': webhook {source}")]
    WebhookHeader { name: String, source: HeaderError },
    #[error("alert rules need a json or schema store; this one holds {0} records")]
    NotJson(&'static str),
}

/// One rule as created (and persisted).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub name: String,
    pub condition: String,
    /// POSTed the alert object when the rule fires (`http://` or `https://`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    /// Sent with each webhook POST; values are secrets.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub webhook_headers: BTreeMap<String, String>,
    /// After a firing, matches within this long are suppressed (`30s`,
    /// `5m`, ...). Absent or zero (`0s`): every match fires.
    #[serde(
        default,
        deserialize_with = "scalar_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub cooldown: Option<String>,
}

impl RuleSpec {
    /// The engine's rule: its condition parsed, its cooldown read.
    pub fn rule(&self) -> Result<Rule, RuleSpecError> {
        let cooldown = self.cooldown()?;
        Ok(Rule::new(&self.name, &self.condition, cooldown)?)
    }

    fn cooldown(&self) -> Result<Option<Duration>, RuleSpecError> {
        let Some(text) = self.cooldown.as_deref() else {
            return Ok(None);
        };
        match tsstore::parse_duration(text) {
            Ok(cooldown) => Ok(Some(cooldown)),
            // Durations elsewhere (windows, `since`) must be positive; a
            // cooldown of zero says "no suppression" in so many words.
            Err(DurationError::Zero(_)) => Ok(None),
            Err(e) => Err(RuleSpecError::Cooldown {
                name: self.name.clone(),
                reason: e.to_string(),
            }),
        }
    }

    fn check(&self) -> Result<(), RuleSpecError> {
        self.rule()?;
        if let Some(url) = &self.webhook {
            let bad = |reason: &str| RuleSpecError::Webhook {
                name: self.name.clone(),
                url: redacted_webhook(url),
                reason: reason.to_string(),
            };
            let uri: Uri = url
                .parse()
                .map_err(|_| bad("expected http://host/path or https://host/path"))?;
            if !matches!(uri.scheme_str(), Some("http" | "https")) {
                return Err(bad("the scheme must be http:// or https://"));
            }
            if uri.host().is_none_or(str::is_empty) {
                return Err(bad("it has no host"));
            }
        } else if !self.webhook_headers.is_empty() {
            return Err(RuleSpecError::HeadersWithoutWebhook {
                name: self.name.clone(),
            });
        }
        check_headers(&self.webhook_headers).map_err(|source| RuleSpecError::WebhookHeader {
            name: self.name.clone(),
            source,
        })
    }

    /// The rule as answers show it: header values hidden, the webhook's
    /// path and query too.
    pub fn redacted(&self) -> RuleSpec {
        RuleSpec {
            webhook: self.webhook.as_deref().map(redacted_webhook),
            webhook_headers: self
                .webhook_headers
                .keys()
                .map(|k| (k.clone(), "[redacted]".to_string()))
                .collect(),
            ..self.clone()
        }
    }
}

/// Checks the rules of a push connection on a store of type `dt`.
pub fn check_rules(rules: &[RuleSpec], dt: DataType) -> Result<(), RuleSpecError> {
    if rules.is_empty() {
        return Ok(());
    }
    if !matches!(dt, DataType::Json | DataType::Schema) {
        return Err(RuleSpecError::NotJson(dt.as_str()));
    }
    if rules.len() > MAX_RULES {
        return Err(RuleSpecError::TooMany);
    }
    for (i, rule) in rules.iter().enumerate() {
        rule.check()?;
        if rules[..i].iter().any(|r| r.name == rule.name) {
            return Err(RuleSpecError::DuplicateName(rule.name.clone()));
        }
    }
    Ok(())
}

/// A webhook URL as logs and answers show it: scheme, host and port
/// only. Webhook URLs often carry their token in the path
/// (`https://hooks.example.com/services/T0/B0/XXXX`) or the query.
pub fn redacted_webhook(url: &str) -> String {
    let Ok(uri) = url.parse::<Uri>() else {
        return "(not a URL)".into();
    };
    let (Some(scheme), Some(host)) = (uri.scheme_str(), uri.host()) else {
        return "(not a URL)".into();
    };
    let port = uri.port_u16().map(|p| format!(":{p}")).unwrap_or_default();
    let hidden = uri
        .path_and_query()
        .is_some_and(|pq| !matches!(pq.as_str(), "" | "/"));
    format!(
        "{scheme}://{host}{port}{}",
        if hidden { "/[redacted]" } else { "/" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(json: &str) -> Result<Vec<RuleSpec>, RuleSpecError> {
        let rules: Vec<RuleSpec> = serde_json::from_str(json).unwrap();
        check_rules(&rules, DataType::Json).map(|()| rules)
    }

    #[test]
    fn valid_rules_and_redaction() {
        let r = rules(
            r#"[{"name":"hot","condition":"t > 80","cooldown":"30s",
                "webhook":"https://hooks.example.com/services/T0/XXXX?token=s3cret",
                "webhook_headers":{"Authorization":"Bearer s3cret"}}]"#,
        )
        .unwrap();
        let rule = r[0].rule().unwrap();
        assert_eq!(rule.cooldown, Some(Duration::from_secs(30)));
        let shown = serde_json::to_string(&r[0].redacted()).unwrap();
        assert!(
            !shown.contains("s3cret") && !shown.contains("XXXX"),
            "{shown}"
        );
        assert!(
            shown.contains("https://hooks.example.com/[redacted]"),
            "{shown}"
        );
        assert_eq!(
            redacted_webhook("http://127.0.0.1:9/"),
            "http://127.0.0.1:9/"
        );
        assert_eq!(redacted_webhook("http://u:pw@h/x"), "http://h/[redacted]");
    }

    #[test]
    fn a_zero_cooldown_suppresses_nothing() {
        let r = rules(
            r#"[{"name":"a","condition":"t > 1","cooldown":"0s"},
                {"name":"b","condition":"t > 1","cooldown":"0ms"}]"#,
        )
        .unwrap();
        let now = std::time::Instant::now();
        for spec in &r {
            let mut rule = spec.rule().unwrap();
            assert_eq!(rule.cooldown, None, "{spec:?}");
            // Every match fires, even at the same instant.
            let hot = serde_json::json!({"t": 5});
            assert!((0..3).all(|_| rule.fire(&hot, now)));
            assert!(!rule.fire(&serde_json::json!({"t": 0}), now));
        }
        // The text is kept as given.
        assert_eq!(r[0].redacted().cooldown.as_deref(), Some("0s"));
        // Zero still needs its unit, and negatives stay refused.
        for bad in ["0", "-1s"] {
            let json = format!(r#"[{{"name":"a","condition":"t > 1","cooldown":"{bad}"}}]"#);
            let err = rules(&json).unwrap_err().to_string();
            assert!(err.contains("cooldown"), "{bad}: {err}");
        }
    }

    #[test]
    fn every_refusal_says_why() {
        let cases = [
            (r#"[{"name":"a","condition":"t >"}]"#, "position"),
            (
                r#"[{"name":"a","condition":"t > 1","cooldown":"soon"}]"#,
                "cooldown",
            ),
            (
                r#"[{"name":"a","condition":"t > 1","cooldown":30}]"#,
                "unit",
            ),
            (
                r#"[{"name":"a","condition":"t > 1","webhook":"ftp://h/"}]"#,
                "scheme",
            ),
            (
                r#"[{"name":"a","condition":"t > 1","webhook":"nope"}]"#,
                "webhook",
            ),
            (
                r#"[{"name":"a","condition":"t > 1","webhook":"http://h/","webhook_headers":{"bad name":"v"}}]"#,
                "bad name",
            ),
            (
                r#"[{"name":"a","condition":"t > 1","webhook_headers":{"X":"v"}}]"#,
                "without a webhook",
            ),
            (
                r#"[{"name":"a","condition":"t > 1"},{"name":"a","condition":"t < 1"}]"#,
                "twice",
            ),
            (r#"[{"name":"","condition":"t > 1"}]"#, "name"),
        ];
        for (json, word) in cases {
            let err = rules(json).unwrap_err().to_string();
            assert!(err.contains(word), "{json}: {err}");
        }
        let many = format!(
            "[{}]",
            (0..=MAX_RULES)
                .map(|i| format!(r#"{{"name":"r{i}","condition":"t > 1"}}"#))
                .collect::<Vec<_>>()
                .join(",")
        );
        assert!(matches!(rules(&many), Err(RuleSpecError::TooMany)));
        let one: Vec<RuleSpec> =
            serde_json::from_str(r#"[{"name":"a","condition":"t > 1"}]"#).unwrap();
        assert!(matches!(
            check_rules(&one, DataType::Text),
            Err(RuleSpecError::NotJson("text"))
        ));
    }
}
