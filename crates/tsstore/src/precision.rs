//! Timestamp precision: the unit a client's timestamps are in (InfluxDB's
//! `precision` names), and the checked conversion to the nanoseconds the
//! engine stores.
//!
//! A client sending seconds to a store expecting nanoseconds writes 1970;
//! one sending nanoseconds as seconds overflows. Converting with an
//! explicit precision, and refusing what does not fit, turns both into
//! clear errors instead of silently wrong timestamps.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// The unit of a timestamp given by a client. `Ns` (the engine's own) is
/// the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Precision {
    #[default]
    Ns,
    Us,
    Ms,
    S,
}

impl Precision {
    /// Every precision, finest first.
    pub const ALL: [Precision; 4] = [Precision::Ns, Precision::Us, Precision::Ms, Precision::S];

    /// The name `FromStr` accepts: `ns`, `us`, `ms` or `s`.
    pub fn name(self) -> &'static str {
        match self {
            Precision::Ns => "ns",
            Precision::Us => "us",
            Precision::Ms => "ms",
            Precision::S => "s",
        }
    }

    /// Nanoseconds in one unit.
    pub fn nanos_per_unit(self) -> i64 {
        match self {
            Precision::Ns => 1,
            Precision::Us => 1_000,
            Precision::Ms => 1_000_000,
            Precision::S => 1_000_000_000,
        }
    }

    /// `value` (in this unit) as nanoseconds since the epoch; a value
    /// whose nanoseconds do not fit in an `i64` (after
    /// 2262-04-11T23:47:16Z or before 1677) is `Error::TimestampOverflow`.
    pub fn to_ns(self, value: i64) -> Result<i64, Error> {
        value
            .checked_mul(self.nanos_per_unit())
            .ok_or(Error::TimestampOverflow {
                value,
                precision: self.name(),
            })
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A precision name that is not one of `ns`, `us`, `ms`, `s`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown timestamp precision '{0}': use ns, us, ms or s")]
pub struct ParsePrecisionError(pub String);

impl FromStr for Precision {
    type Err = ParsePrecisionError;

    /// Exactly `ns`, `us`, `ms` or `s` (case-sensitive, as InfluxDB).
    fn from_str(s: &str) -> Result<Precision, ParsePrecisionError> {
        Precision::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| ParsePrecisionError(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exactly_the_influx_names() {
        for p in Precision::ALL {
            assert_eq!(p.name().parse::<Precision>(), Ok(p));
            assert_eq!(p.to_string(), p.name());
        }
        assert_eq!(Precision::default(), Precision::Ns);
        for bad in [
            "", "NS", "n", "u", "µs", "sec", "seconds", " s", "s ", "m", "h",
        ] {
            let err = bad.parse::<Precision>().unwrap_err();
            let message = err.to_string();
            assert!(message.contains(&format!("'{bad}'")), "{message}");
            assert!(message.contains("ns, us, ms or s"), "{message}");
        }
    }

    #[test]
    fn converts_with_a_checked_multiply() {
        assert_eq!(Precision::Ns.to_ns(i64::MAX).unwrap(), i64::MAX);
        assert_eq!(
            Precision::Us.to_ns(1_700_000_000_000_000).unwrap(),
            1_700_000_000_000_000_000
        );
        assert_eq!(
            Precision::Ms.to_ns(1_700_000_000_000).unwrap(),
            1_700_000_000_000_000_000
        );
        assert_eq!(
            Precision::S.to_ns(1_700_000_000).unwrap(),
            1_700_000_000_000_000_000
        );
        assert_eq!(Precision::S.to_ns(-2).unwrap(), -2_000_000_000);
        assert_eq!(Precision::S.to_ns(0).unwrap(), 0);
        let last_second = i64::MAX / 1_000_000_000;
        assert!(Precision::S.to_ns(last_second).is_ok());
        let err = Precision::S.to_ns(last_second + 1).unwrap_err();
        assert!(matches!(
            err,
            Error::TimestampOverflow { value, precision: "s" } if value == last_second + 1
        ));
        let message = err.to_string();
        assert!(message.contains("9223372037 s"), "{message}");
        assert!(message.contains("2262-04-11T23:47:16"), "{message}");
        // Nanoseconds sent as milliseconds: the usual mistake.
        assert!(Precision::Ms.to_ns(1_700_000_000_000_000_000).is_err());
        assert!(Precision::Us.to_ns(i64::MIN).is_err());
    }
}
