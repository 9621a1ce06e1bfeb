//! Durations as users type them (`500ms 30s 15m 2h 7d 1w`), shared by
//! `since`, aggregation windows and alert cooldowns.
//!
//! Only a positive integer and one unit are accepted: a fraction, a bare
//! number or an unknown unit is an error rather than a guess, and so is a
//! value too large to add to a nanosecond timestamp (`i64`).

use std::time::Duration;

/// Why a duration string was refused; the message quotes the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error(
        "duration is empty: expected an integer and a unit, e.g. 30s, 15m, 2h, 7d, 1w or 500ms"
    )]
    Empty,
    #[error(
        "duration '{0}' has no unit: expected an integer followed by ms, s, m, h, d or w (e.g. 30s)"
    )]
    MissingUnit(String),
    #[error("duration '{0}' must start with a whole number (e.g. 30s, 15m, 500ms)")]
    NotANumber(String),
    #[error("duration '{input}' has unknown unit '{unit}': use ms, s, m, h, d or w")]
    UnknownUnit { input: String, unit: String },
    #[error("duration '{0}' must be greater than zero")]
    Zero(String),
    #[error("duration '{0}' is negative: durations must be greater than zero")]
    Negative(String),
    #[error("duration '{0}' is too large: at most 15250w (about 292 years) fits in nanoseconds")]
    Overflow(String),
}

const UNITS: [(&str, u64); 6] = [
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60 * 1_000_000_000),
    ("h", 3_600 * 1_000_000_000),
    ("d", 86_400 * 1_000_000_000),
    ("w", 604_800 * 1_000_000_000),
];

/// Parses `30s`-style durations into a `Duration` whose nanoseconds fit in `i64`.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let owned = || input.to_string();
    if input.is_empty() {
        return Err(DurationError::Empty);
    }
    if input.starts_with('-') {
        return Err(DurationError::Negative(owned()));
    }
    let digits = input.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = input.split_at(digits);
    if number.is_empty() {
        return Err(DurationError::NotANumber(owned()));
    }
    if unit.is_empty() {
        return Err(DurationError::MissingUnit(owned()));
    }
    let Some(&(_, scale)) = UNITS.iter().find(|(name, _)| *name == unit) else {
        if unit.starts_with(['.', ',']) {
            return Err(DurationError::NotANumber(owned()));
        }
        return Err(DurationError::UnknownUnit {
            input: owned(),
            unit: unit.to_string(),
        });
    };
    let value: u64 = number
        .parse()
        .map_err(|_| DurationError::Overflow(owned()))?;
    if value == 0 {
        return Err(DurationError::Zero(owned()));
    }
    let nanos = value
        .checked_mul(scale)
        .filter(|n| *n <= i64::MAX as u64)
        .ok_or_else(|| DurationError::Overflow(owned()))?;
    Ok(Duration::from_nanos(nanos))
}

/// `parse_duration` in nanoseconds, the unit of timestamps; always > 0.
pub fn parse_duration_ns(input: &str) -> Result<i64, DurationError> {
    // parse_duration guarantees the value fits in i64.
    parse_duration(input).map(|d| d.as_nanos() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        let ok = |s: &str| parse_duration(s).unwrap();
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("30s"), Duration::from_secs(30));
        assert_eq!(ok("15m"), Duration::from_secs(900));
        assert_eq!(ok("2h"), Duration::from_secs(7200));
        assert_eq!(ok("7d"), Duration::from_secs(7 * 86_400));
        assert_eq!(ok("1w"), Duration::from_secs(604_800));
        assert_eq!(ok("15250w"), Duration::from_secs(15250 * 604_800));
        assert_eq!(parse_duration_ns("1s"), Ok(1_000_000_000));
    }

    #[test]
    fn errors_quote_the_input() {
        let err = |s: &str| parse_duration(s).unwrap_err();
        assert_eq!(err(""), DurationError::Empty);
        assert!(matches!(err("0s"), DurationError::Zero(s) if s == "0s"));
        assert!(matches!(err("-5m"), DurationError::Negative(s) if s == "-5m"));
        assert!(matches!(err("15251w"), DurationError::Overflow(_)));
        assert!(matches!(
            err("99999999999999999999999s"),
            DurationError::Overflow(_)
        ));
        assert!(matches!(err("30"), DurationError::MissingUnit(_)));
        assert!(matches!(err("s"), DurationError::NotANumber(_)));
        assert!(matches!(err("1.5h"), DurationError::NotANumber(_)));
        assert!(matches!(err(" 5s"), DurationError::NotANumber(_)));
        let e = err("5y");
        assert!(matches!(&e, DurationError::UnknownUnit { unit, .. } if unit == "y"));
        assert!(e.to_string().contains("'5y'"), "{e}");
        assert!(matches!(err("5 s"), DurationError::UnknownUnit { .. }));
        for input in ["0s", "-5m", "15251w", "30", "s", "1.5h", "5y", "5S"] {
            let message = err(input).to_string();
            assert!(message.contains(&format!("'{input}'")), "{message}");
        }
        assert!(err("").to_string().contains("empty"));
        assert!(matches!(err("5S"), DurationError::UnknownUnit { .. }));
        assert!(matches!(err("5s "), DurationError::UnknownUnit { .. }));
    }
}
