//! Wall-clock helpers: nanosecond timestamps, RFC 3339 formatting and
//! parsing (without a date-time dependency; the civil-date conversions are
//! the well-known days-from-epoch algorithms).

use std::time::{SystemTime, UNIX_EPOCH};

/// Now as nanoseconds since the Unix epoch (0 if the clock is before 1970).
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Formats `ns` since the epoch as RFC 3339 in UTC with nanoseconds,
/// e.g. `2026-11-25T22:31:00.000000001Z`.
pub fn rfc3339(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let nanos = ns.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

/// `rfc3339` without a fraction of zeros, and with trailing zeros of
/// any other fraction dropped (`2200-01-01T00:00:00Z`,
/// `2026-12-05T10:00:00.5Z`): for messages people read.
pub(crate) fn rfc3339_short(ns: i64) -> String {
    let full = rfc3339(ns);
    let Some((whole, fraction)) = full.trim_end_matches('Z').split_once('.') else {
        return full;
    };
    match fraction.trim_end_matches('0') {
        "" => format!("{whole}Z"),
        digits => format!("{whole}.{digits}Z"),
    }
}

/// `ns` nanoseconds in the largest of `h m s ms us ns` that divides
/// them exactly (`24h`, `1500ms`); hours at most, as people say "24h".
pub(crate) fn format_duration_ns(ns: i64) -> String {
    const UNITS: [(&str, i64); 6] = [
        ("h", 3_600_000_000_000),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
        ("ns", 1),
    ];
    UNITS
        .iter()
        .find(|(_, unit)| ns != 0 && ns % unit == 0)
        .map_or_else(
            || format!("{ns}ns"),
            |(name, unit)| format!("{}{name}", ns / unit),
        )
}

/// A text `parse_rfc3339` cannot read; it keeps the text so the message
/// can quote it and a caller can show it next to its own flag or field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{text}' is not an RFC 3339 time such as 2026-11-28T10:20:00Z")]
pub struct ParseTimeError {
    pub text: String,
}

/// Parses an RFC 3339 time (`2026-11-28T10:20:00Z`, `...T10:20:00.5+01:00`;
/// a space may stand for the `T`) into nanoseconds since the epoch.
pub fn parse_rfc3339(text: &str) -> Result<i64, ParseTimeError> {
    let bad = || ParseTimeError {
        text: text.to_string(),
    };
    let b = text.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Result<i64, ParseTimeError> {
        let part = b.get(range).ok_or_else(bad)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return Err(bad());
        }
        Ok(part.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(bad());
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&mo)
        || d < 1
        || d > month_days[mo as usize - 1]
        || h > 23
        || mi > 59
        || s > 60
    {
        return Err(bad());
    }
    let mut i = 19;
    let mut nanos = 0;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start || i - start > 9 {
            return Err(bad());
        }
        nanos = num(start..i)? * 10i64.pow(9 - (i - start) as u32);
    }
    let offset = match &b[i..] {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return Err(bad());
            }
            let secs = oh * 3600 + om * 60;
            if *sign == b'+' { secs } else { -secs }
        }
        _ => return Err(bad()),
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - offset;
    secs.checked_mul(1_000_000_000)
        .and_then(|n| n.checked_add(nanos))
        .ok_or_else(bad)
}

/// Day count since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Proleptic Gregorian date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_forms_drop_zero_fractions() {
        assert_eq!(
            rfc3339_short(7_258_118_400_000_000_000),
            "2200-01-01T00:00:00Z"
        );
        assert_eq!(rfc3339_short(500_000_000), "1970-01-01T00:00:00.5Z");
        assert_eq!(rfc3339_short(1), "1970-01-01T00:00:00.000000001Z");
        assert_eq!(format_duration_ns(86_400_000_000_000), "24h");
        assert_eq!(
            format_duration_ns(24 * 3_600_000_000_000 + 3_600_000_000_000),
            "25h"
        );
        assert_eq!(format_duration_ns(1_500_000_000), "1500ms");
        assert_eq!(format_duration_ns(7), "7ns");
        assert_eq!(format_duration_ns(0), "0ns");
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339(951_782_400_000_000_001),
            "2000-02-29T00:00:00.000000001Z"
        );
        assert_eq!(
            rfc3339(1_764_109_860_500_000_000),
            "2025-11-25T22:31:00.500000000Z"
        );
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999999999Z");
    }

    #[test]
    fn parses_what_it_formats_and_offsets() {
        for ns in [0, 1, 951_782_400_000_000_001, 1_764_109_860_500_000_000, -1] {
            assert_eq!(parse_rfc3339(&rfc3339(ns)), Ok(ns));
        }
        let at = 1_764_109_860_000_000_000;
        assert_eq!(parse_rfc3339("2025-11-25T22:31:00Z"), Ok(at));
        assert_eq!(parse_rfc3339("2025-11-25 23:31:00+01:00"), Ok(at));
        assert_eq!(
            parse_rfc3339("2025-11-25T22:01:00.5-00:30"),
            Ok(at + 500_000_000)
        );
        for bad in [
            "2025-11-25",
            "2025-11-25T22:31:00",
            "2025-02-29T00:00:00Z",
            "2025-13-01T00:00:00Z",
            "2025-11-25T22:31:00.Z",
            "2025-11-25T22:31:00.1234567890Z",
            "2025-11-25T22:31:00+0100",
            "2025-11-25T22:31:00Zjunk",
            "20x5-11-25T22:31:00Z",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
    }
}
