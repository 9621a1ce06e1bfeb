//! Time-windowed aggregation of JSON records (`agg_window`, `agg_fields`,
//! `agg_default`; functions `sum avg min max count first last`).
//!
//! Windows are aligned to multiples of their length since the epoch and
//! reported at their end timestamp. Numeric fields get the requested
//! functions; any other value takes `last`. This module parses the three
//! user parameters into an `AggSpec`; `window` holds the accumulator.

mod chain;
mod field;
mod fields;
mod parsed;
mod window;

use std::fmt;

pub use chain::ChainMap;
pub use fields::RecordFields;
pub use parsed::ParsedRecords;
pub use window::{Aggregator, MAX_AGG_FIELDS, Window, aggregate};

use crate::duration::{DurationError, parse_duration_ns};

/// Start of the window of `window_ns` holding `ts`: windows are aligned
/// to multiples of their length since the epoch (`i64::MIN` stays itself).
pub fn window_start(ts: i64, window_ns: i64) -> i64 {
    ts.saturating_sub(ts.rem_euclid(window_ns))
}

/// One aggregation function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AggFn {
    Sum,
    Avg,
    Min,
    Max,
    Count,
    First,
    Last,
}

impl AggFn {
    pub const ALL: [AggFn; 7] = [
        AggFn::Sum,
        AggFn::Avg,
        AggFn::Min,
        AggFn::Max,
        AggFn::Count,
        AggFn::First,
        AggFn::Last,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AggFn::Sum => "sum",
            AggFn::Avg => "avg",
            AggFn::Min => "min",
            AggFn::Max => "max",
            AggFn::Count => "count",
            AggFn::First => "first",
            AggFn::Last => "last",
        }
    }

    fn parse(name: &str) -> Option<AggFn> {
        AggFn::ALL.into_iter().find(|f| f.as_str() == name)
    }
}

impl fmt::Display for AggFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why aggregation parameters were refused; each names the parameter and
/// the part of it at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AggError {
    #[error("agg_window is required when agg_fields or agg_default is given")]
    MissingWindow,
    #[error("agg_window: {0}")]
    Window(#[from] DurationError),
    #[error("{param}: unknown function '{name}' (use sum, avg, min, max, count, first or last)")]
    UnknownFunction { param: &'static str, name: String },
    #[error("agg_fields: '{0}' must be field:function, e.g. temp:avg or temp:avg+min+max")]
    MalformedField(String),
    #[error("agg_fields: field '{0}' is listed twice")]
    DuplicateField(String),
    #[error("{param}: function '{name}' is listed twice")]
    DuplicateFunction { param: &'static str, name: String },
    #[error("{0} is empty: leave it out or give at least one function")]
    Empty(&'static str),
}

/// What to compute: the window length, functions for named fields, and
/// the functions for every other numeric field.
#[derive(Debug, Clone, PartialEq)]
pub struct AggSpec {
    /// Window length in nanoseconds, > 0.
    pub window_ns: i64,
    /// Named fields with their functions, in the order given.
    pub fields: Vec<(String, Vec<AggFn>)>,
    /// Functions for numeric fields not named in `fields`.
    pub default: Vec<AggFn>,
}

impl AggSpec {
    /// Parses the REST/push parameters. `None` when no aggregation is
    /// asked for (no `agg_window` and no other parameter). Without
    /// `agg_default`, unnamed numeric fields are averaged.
    pub fn parse(
        window: Option<&str>,
        fields: Option<&str>,
        default: Option<&str>,
    ) -> Result<Option<AggSpec>, AggError> {
        let Some(window) = window else {
            return match (fields, default) {
                (None, None) => Ok(None),
                _ => Err(AggError::MissingWindow),
            };
        };
        let window_ns = parse_duration_ns(window)?;
        let mut named: Vec<(String, Vec<AggFn>)> = Vec::new();
        if let Some(fields) = fields {
            if fields.trim().is_empty() {
                return Err(AggError::Empty("agg_fields"));
            }
            for part in fields.split(',').map(str::trim) {
                let Some((name, fns)) = part.split_once(':') else {
                    return Err(AggError::MalformedField(part.to_string()));
                };
                let name = name.trim();
                if name.is_empty() || fns.trim().is_empty() {
                    return Err(AggError::MalformedField(part.to_string()));
                }
                if named.iter().any(|(n, _)| n == name) {
                    return Err(AggError::DuplicateField(name.to_string()));
                }
                named.push((name.to_string(), parse_functions("agg_fields", fns, '+')?));
            }
        }
        let default = match default {
            None => vec![AggFn::Avg],
            Some(d) if d.trim().is_empty() => return Err(AggError::Empty("agg_default")),
            Some(d) => parse_functions("agg_default", d, ',')?,
        };
        Ok(Some(AggSpec {
            window_ns,
            fields: named,
            default,
        }))
    }

    /// A spec with `window_ns` and default functions only.
    pub fn with_default(window_ns: i64, default: Vec<AggFn>) -> AggSpec {
        AggSpec {
            window_ns,
            fields: Vec::new(),
            default,
        }
    }

    /// The functions applied to `field` if it holds numbers.
    pub fn functions_for(&self, field: &str) -> &[AggFn] {
        self.fields
            .iter()
            .find(|(name, _)| name == field)
            .map_or(&self.default[..], |(_, fns)| &fns[..])
    }
}

fn parse_functions(param: &'static str, list: &str, sep: char) -> Result<Vec<AggFn>, AggError> {
    let mut out = Vec::new();
    for name in list.split(sep).map(str::trim) {
        let f = AggFn::parse(name).ok_or_else(|| AggError::UnknownFunction {
            param,
            name: name.to_string(),
        })?;
        if out.contains(&f) {
            return Err(AggError::DuplicateFunction {
                param,
                name: name.to_string(),
            });
        }
        out.push(f);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use AggFn::*;

    #[test]
    fn parses_the_three_parameters() {
        let spec = AggSpec::parse(
            Some("1m"),
            Some("temp:avg+min+max, count:sum"),
            Some("max,min"),
        )
        .unwrap()
        .unwrap();
        assert_eq!(spec.window_ns, 60_000_000_000);
        assert_eq!(spec.functions_for("temp"), [Avg, Min, Max]);
        assert_eq!(spec.functions_for("count"), [Sum]);
        assert_eq!(spec.functions_for("other"), [Max, Min]);
        let spec = AggSpec::parse(Some("30s"), None, None).unwrap().unwrap();
        assert_eq!(spec.functions_for("x"), [Avg]);
        assert_eq!(AggSpec::parse(None, None, None), Ok(None));
    }

    #[test]
    fn errors_name_the_culprit() {
        let err = |w, f, d| AggSpec::parse(w, f, d).unwrap_err();
        assert_eq!(err(None, Some("a:sum"), None), AggError::MissingWindow);
        assert_eq!(err(None, None, Some("sum")), AggError::MissingWindow);
        let e = err(Some("0s"), None, None);
        assert!(e.to_string().starts_with("agg_window") && e.to_string().contains("'0s'"));
        let e = err(Some("1m"), Some("temp:avg+median"), None);
        assert!(
            e.to_string().contains("'median'") && e.to_string().contains("agg_fields"),
            "{e}"
        );
        let e = err(Some("1m"), None, Some("avg,mode"));
        assert!(
            e.to_string().contains("'mode'") && e.to_string().contains("agg_default"),
            "{e}"
        );
        let e = err(Some("1m"), Some("temp"), None);
        assert!(
            matches!(&e, AggError::MalformedField(p) if p == "temp"),
            "{e}"
        );
        assert!(matches!(
            err(Some("1m"), Some("temp:"), None),
            AggError::MalformedField(_)
        ));
        assert!(matches!(
            err(Some("1m"), Some(":avg"), None),
            AggError::MalformedField(_)
        ));
        assert!(matches!(
            err(Some("1m"), Some("a:sum,,b:sum"), None),
            AggError::MalformedField(_)
        ));
        let e = err(Some("1m"), Some("a:sum,a:max"), None);
        assert!(matches!(&e, AggError::DuplicateField(f) if f == "a"), "{e}");
        let e = err(Some("1m"), Some("a:sum+sum"), None);
        assert!(e.to_string().contains("'sum'"), "{e}");
        assert_eq!(
            err(Some("1m"), Some(" "), None),
            AggError::Empty("agg_fields")
        );
        assert_eq!(
            err(Some("1m"), None, Some("")),
            AggError::Empty("agg_default")
        );
        assert!(matches!(
            err(Some("1m"), None, Some("avg,")),
            AggError::UnknownFunction { .. }
        ));
    }
}
