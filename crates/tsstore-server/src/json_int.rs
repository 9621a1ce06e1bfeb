//! Whole JSON numbers: `3` and `3.0` alike, as JSON Schema's `integer`
//! has it (and as clients whose numbers are all floats send them), but
//! never `3.5` or a value out of the target type's range; and timestamps
//! that may also come as decimal strings (`optional_timestamp`).

use serde::de::Error;
use serde::{Deserialize, Deserializer};

/// A whole number that fits `T`; `null` or absent is `None`.
pub fn optional<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64> + TryFrom<u64>,
{
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    let wrong = || D::Error::custom(format!("expected a whole number in range, got {n}"));
    if let Some(v) = n.as_u64() {
        return T::try_from(v).map(Some).map_err(|_| wrong());
    }
    if let Some(v) = n.as_i64() {
        return T::try_from(v).map(Some).map_err(|_| wrong());
    }
    match n.as_f64() {
        // Exactly representable whole floats only: above 2^63 they
        // would not round-trip, and fractions are not whole.
        Some(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => {
            T::try_from(f as i64).map(Some).map_err(|_| wrong())
        }
        _ => Err(wrong()),
    }
}

/// A value sent as a JSON number or as a string, told apart.
#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrText {
    Number(serde_json::Number),
    Text(String),
}

/// An optional whole number, or a string read by `text`.
fn number_or<'de, D>(
    d: D,
    text: impl Fn(&str) -> Result<i64, String>,
) -> Result<Option<i64>, D::Error>
where
    D: Deserializer<'de>,
{
    match Option::<NumberOrText>::deserialize(d)? {
        None => Ok(None),
        Some(NumberOrText::Number(n)) => optional(serde_json::Value::Number(n))
            .map_err(|e: serde_json::Error| D::Error::custom(e)),
        Some(NumberOrText::Text(t)) => text(&t).map(Some).map_err(D::Error::custom),
    }
}

/// A timestamp sent as a whole JSON number or as a decimal string
/// (`"1733472000123456789"`: what clients whose numbers are doubles send,
/// since nanoseconds exceed 2^53); `null` or absent is `None`.
pub fn optional_timestamp<'de, D>(d: D) -> Result<Option<i64>, D::Error>
where
    D: Deserializer<'de>,
{
    number_or(d, decimal)
}

/// Where a sending connection starts: a timestamp (records after it; 0:
/// the oldest), `-1` or `"now"` (records from now on), `"oldest"`, or a
/// timestamp as a decimal string. `-1` stands for now in what is kept.
pub fn optional_start<'de, D>(d: D) -> Result<Option<i64>, D::Error>
where
    D: Deserializer<'de>,
{
    number_or(d, |t| match t {
        "now" => Ok(-1),
        "oldest" => Ok(0),
        _ => decimal(t).map_err(|_| {
            format!("from: '{t}' is not now, oldest, -1 or a timestamp (records after it are sent)")
        }),
    })
}

/// A timestamp written as a decimal string: digits, an optional leading
/// `-`, nothing else (no spaces, no exponent, no fraction).
pub fn decimal(t: &str) -> Result<i64, String> {
    let digits = t.strip_prefix('-').unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "expected a whole number or a decimal string, got \"{t}\""
        ));
    }
    t.parse::<i64>()
        .map_err(|_| format!("\"{t}\" is out of range for a timestamp"))
}

/// A field of a body that must be a number and is not.
#[derive(Debug, thiserror::Error)]
#[error("{field}: expected a whole number, got {got}")]
pub struct NotANumber {
    pub field: &'static str,
    pub got: serde_json::Value,
}

/// Checks that each of `fields` of a JSON object, where present and not
/// null, is a number: serde's own message would not name the field.
pub fn check_numbers(raw: &serde_json::Value, fields: &[&'static str]) -> Result<(), NotANumber> {
    for &field in fields {
        match raw.get(field) {
            None | Some(serde_json::Value::Null | serde_json::Value::Number(_)) => {}
            Some(other) => {
                return Err(NotANumber {
                    field,
                    got: other.clone(),
                });
            }
        }
    }
    Ok(())
}

/// A required whole number that fits `T`.
pub fn required<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64> + TryFrom<u64>,
{
    optional(d)?.ok_or_else(|| D::Error::custom("expected a whole number, got null"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct T {
        #[serde(default, deserialize_with = "optional")]
        a: Option<u32>,
        #[serde(deserialize_with = "required")]
        b: i64,
    }

    #[test]
    fn whole_numbers_in_range() {
        let t: T = serde_json::from_str(r#"{"a": 3.0, "b": -2}"#).unwrap();
        assert_eq!((t.a, t.b), (Some(3), -2));
        let t: T = serde_json::from_str(r#"{"a": null, "b": 1e3}"#).unwrap();
        assert_eq!((t.a, t.b), (None, 1000));
        let t: T = serde_json::from_str(r#"{"b": 5}"#).unwrap();
        assert_eq!(t.a, None);
        for bad in [
            r#"{"a": 3.5, "b": 1}"#,
            r#"{"a": -1, "b": 1}"#,
            r#"{"a": 4294967296, "b": 1}"#,
            r#"{"b": null}"#,
            r#"{"b": "1"}"#,
            r#"{"b": 1e30}"#,
        ] {
            assert!(serde_json::from_str::<T>(bad).is_err(), "{bad}");
        }
    }

    #[derive(Debug, serde::Deserialize)]
    struct Ts {
        #[serde(default, deserialize_with = "optional_timestamp")]
        t: Option<i64>,
    }

    #[test]
    fn timestamps_as_numbers_or_decimal_strings() {
        let t = |s: &str| serde_json::from_str::<Ts>(s).map(|t| t.t);
        assert_eq!(
            t(r#"{"t": 1733472000123456789}"#).unwrap(),
            Some(1733472000123456789)
        );
        assert_eq!(
            t(r#"{"t": "1733472000123456789"}"#).unwrap(),
            Some(1733472000123456789)
        );
        assert_eq!(t(r#"{"t": "-5"}"#).unwrap(), Some(-5));
        assert_eq!(t(r#"{"t": 2.0}"#).unwrap(), Some(2));
        assert_eq!(t(r#"{"t": null}"#).unwrap(), None);
        assert_eq!(t(r#"{}"#).unwrap(), None);
        for bad in [
            r#"{"t": "1.5"}"#,
            r#"{"t": " 1"}"#,
            r#"{"t": ""}"#,
            r#"{"t": "1e3"}"#,
            r#"{"t": "99999999999999999999"}"#,
            r#"{"t": true}"#,
            r#"{"t": 1.5}"#,
        ] {
            assert!(t(bad).is_err(), "{bad}");
        }
    }
}
