//! The front door's settings (`guard::FrontDoor`) and the timestamp
//! guard, resolved from one `Overrides` and checked: a zero timeout, a
//! per-address bound over the global one, or an address that does not
//! parse is an error that names the setting.

use std::time::Duration;

use super::{ConfigError, Overrides, positive};
use crate::guard::{FrontDoor, Network};

/// The per-address bound when only the global one is set: a small share.
const PER_ADDRESS_SHARE: usize = 8;

pub(super) fn resolve(o: &Overrides) -> Result<FrontDoor, ConfigError> {
    let invalid = |setting, reason: String| ConfigError::Invalid { setting, reason };
    let d = FrontDoor::default();
    let millis = |setting, v, default: Duration| {
        positive(setting, v, default.as_millis() as u64).map(Duration::from_millis)
    };
    let max_connections = positive("max_connections", o.max_connections, d.max_connections)?;
    let share = (max_connections / PER_ADDRESS_SHARE).max(1);
    let max_connections_per_address = positive(
        "max_connections_per_address",
        o.max_connections_per_address,
        share,
    )?;
    if max_connections_per_address > max_connections {
        return Err(invalid(
            "max_connections_per_address",
            format!(
                "{max_connections_per_address} is more than max_connections ({max_connections})"
            ),
        ));
    }
    let trusted = match &o.trusted_addresses {
        None => Vec::new(),
        Some(list) => list
            .iter()
            .map(|a| a.parse::<Network>())
            .collect::<Result<_, _>>()
            .map_err(ConfigError::TrustedAddresses)?,
    };
    let auth_failures_per_sec = match o.auth_failures_per_sec {
        Some(r) if !(r.is_finite() && r > 0.0) => {
            return Err(invalid(
                "auth_failures_per_sec",
                format!("{r} is not a positive number"),
            ));
        }
        Some(r) => r,
        None => d.auth_failures_per_sec,
    };
    let auth_failure_burst = positive(
        "auth_failure_burst",
        o.auth_failure_burst,
        d.auth_failure_burst,
    )?;
    Ok(FrontDoor {
        max_connections,
        max_connections_per_address,
        trusted,
        request_header_timeout: millis(
            "request_header_timeout_ms",
            o.request_header_timeout_ms,
            d.request_header_timeout,
        )?,
        keep_alive_timeout: millis(
            "keep_alive_timeout_ms",
            o.keep_alive_timeout_ms,
            d.keep_alive_timeout,
        )?,
        send_timeout: millis("send_timeout_ms", o.send_timeout_ms, d.send_timeout)?,
        ws_idle_timeout: millis(
            "ws_idle_timeout_ms",
            o.ws_idle_timeout_ms,
            d.ws_idle_timeout,
        )?,
        auth_failure_burst,
        auth_failures_per_sec,
    })
}

/// Default of `max_future_skew`.
pub const DEFAULT_FUTURE_SKEW: Duration = Duration::from_secs(24 * 3600);

/// `max_future_skew`: a duration (`24h`, `15m`), or `0`/`off` for none.
pub fn future_skew(raw: Option<&str>) -> Result<Option<Duration>, ConfigError> {
    let zero = |t: &str| {
        let digits = t.bytes().take_while(u8::is_ascii_digit).count();
        digits > 0 && t.bytes().take(digits).all(|b| b == b'0')
    };
    match raw.map(str::trim) {
        None => Ok(Some(DEFAULT_FUTURE_SKEW)),
        Some("off") => Ok(None),
        Some(t) if zero(t) => Ok(None),
        Some(text) => match tsstore::parse_duration(text) {
            Ok(d) => Ok(Some(d)),
            Err(e) => Err(ConfigError::Invalid {
                setting: "max_future_skew",
                reason: format!("{e} (a duration like 24h or 30m, or 0 to turn the guard off)"),
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_shares() {
        let f = resolve(&Overrides::default()).unwrap();
        assert_eq!(f, FrontDoor::default());
        let f = resolve(&Overrides {
            max_connections: Some(100),
            ..Overrides::default()
        })
        .unwrap();
        assert_eq!(f.max_connections_per_address, 12);
        let f = resolve(&Overrides {
            max_connections: Some(3),
            trusted_addresses: Some(vec!["127.0.0.1".into(), "10.0.0.0/8".into()]),
            keep_alive_timeout_ms: Some(5),
            ..Overrides::default()
        })
        .unwrap();
        assert_eq!(f.max_connections_per_address, 1);
        assert_eq!(f.trusted.len(), 2);
        assert_eq!(f.keep_alive_timeout, Duration::from_millis(5));
    }

    #[test]
    fn bad_values_name_their_setting() {
        let cases = [
            (
                Overrides {
                    max_connections: Some(10),
                    max_connections_per_address: Some(11),
                    ..Overrides::default()
                },
                "max_connections_per_address",
            ),
            (
                Overrides {
                    trusted_addresses: Some(vec!["gateway.local".into()]),
                    ..Overrides::default()
                },
                "trusted_addresses",
            ),
            (
                Overrides {
                    send_timeout_ms: Some(0),
                    ..Overrides::default()
                },
                "send_timeout_ms",
            ),
            (
                Overrides {
                    auth_failures_per_sec: Some(f64::NAN),
                    ..Overrides::default()
                },
                "auth_failures_per_sec",
            ),
        ];
        for (o, name) in cases {
            let e = resolve(&o).unwrap_err().to_string();
            assert!(e.contains(name), "{e}");
        }
    }

    #[test]
    fn future_skew_values() {
        assert_eq!(future_skew(None).unwrap(), Some(DEFAULT_FUTURE_SKEW));
        assert_eq!(future_skew(Some("0")).unwrap(), None);
        assert_eq!(future_skew(Some("off")).unwrap(), None);
        assert_eq!(future_skew(Some("0s")).unwrap(), None);
        assert_eq!(
            future_skew(Some("15m")).unwrap(),
            Some(Duration::from_secs(900))
        );
        let e = future_skew(Some("soon")).unwrap_err().to_string();
        assert!(e.contains("max_future_skew"), "{e}");
    }
}
