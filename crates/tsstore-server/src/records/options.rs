//! Read options, as every transport receives them, and the read spec
//! they make once checked.
//!
//! `ReadOptions` is a plain struct of the options' texts. An HTTP or
//! WebSocket query string fills it (`from_query`), and so does a
//! connection's JSON (numbers and booleans are taken as their text), so
//! each option is parsed in one place with one error message, whatever
//! carried it. `ReadSpec::new` checks them against the store and the
//! server's limits.

use serde::{Deserialize, Deserializer, Serialize};
use tsstore::aggregate::AggSpec;
use tsstore::{DataType, Filter};

use super::ack_window::{self, AckWindow};
use super::encode::Stamps;
use super::envelope::Framing;
use super::error::{RecordError, RecordResult};
use super::resolution::Asked;

/// A query string as ordered pairs (a name may repeat: the first wins).
#[derive(Debug, Default)]
pub struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    pub fn parse(query: Option<&str>) -> RecordResult<QueryParams> {
        match query {
            None => Ok(QueryParams::default()),
            Some(q) => serde_urlencoded::from_str(q)
                .map(QueryParams)
                .map_err(RecordError::from),
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A timestamp in ns (callers decide what 0 means).
    pub fn timestamp(&self, name: &str) -> RecordResult<Option<i64>> {
        parse_timestamp(name, self.get(name))
    }

    /// `timestamps`: how timestamps are written in the answer.
    pub fn stamps(&self) -> RecordResult<Stamps> {
        Stamps::parse(self.get("timestamps"))
    }

    /// `precision`: the unit of the timestamps a client sends (`ns`, the
    /// default, `us`, `ms` or `s`, as InfluxDB names them).
    pub fn precision(&self) -> RecordResult<tsstore::Precision> {
        parse_precision(self.get("precision"))
    }

    /// How messages sent are read: `envelope`, `timestamp_field` and
    /// `precision`.
    pub fn framing(&self) -> RecordResult<Framing> {
        Framing::new(
            self.get("envelope"),
            self.get("timestamp_field"),
            self.precision()?,
        )
    }
}

/// A `precision` option, from a query or a connection's settings
/// (`None`: nanoseconds).
pub fn parse_precision(raw: Option<&str>) -> RecordResult<tsstore::Precision> {
    raw.map_or(Ok(tsstore::Precision::Ns), |p| {
        p.parse()
            .map_err(|e: tsstore::ParsePrecisionError| RecordError::from(e))
    })
}

/// A non-negative timestamp in ns, or a message naming `name`.
fn parse_timestamp(name: &str, text: Option<&str>) -> RecordResult<Option<i64>> {
    match text {
        None => Ok(None),
        Some(v) => match v.parse::<i64>() {
            Ok(ts) if ts >= 0 => Ok(Some(ts)),
            _ => Err(RecordError::InvalidParameter(format!(
                "{name}: '{v}' is not a timestamp (non-negative nanoseconds since the Unix epoch)"
            ))),
        },
    }
}

/// A durable live read (`ws/read?consumer=NAME`): its name, whether it
/// starts over (`reset`), and what it may have in flight (`window`,
/// `window_bytes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerOptions {
    pub name: String,
    pub reset: bool,
    pub window: AckWindow,
}

impl ConsumerOptions {
    /// From a live read's query; `None` without `consumer` (whose other
    /// options are then refused: they would be ignored).
    pub fn from_query(params: &QueryParams) -> RecordResult<Option<ConsumerOptions>> {
        let count = |name: &str, max: usize, default: usize| -> RecordResult<usize> {
            let Some(text) = params.get(name) else {
                return Ok(default);
            };
            match text.parse::<usize>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(RecordError::InvalidParameter(format!(
                    "{name}: '{text}' is not a whole number from 1 to {max}"
                ))),
            }
        };
        let Some(name) = params.get("consumer") else {
            if let Some(name) = ["reset", "window", "window_bytes"]
                .into_iter()
                .find(|n| params.get(n).is_some())
            {
                return Err(RecordError::InvalidParameter(format!(
                    "{name} applies to a durable reader: add consumer=NAME"
                )));
            }
            return Ok(None);
        };
        let default = AckWindow::default();
        Ok(Some(ConsumerOptions {
            name: name.to_string(),
            reset: parse_bool("reset", params.get("reset"), false)?,
            window: AckWindow {
                records: count("window", ack_window::MAX_RECORDS, default.records)?,
                bytes: count("window_bytes", ack_window::MAX_BYTES, default.bytes)?,
            },
        }))
    }
}

fn parse_bool(name: &str, text: Option<&str>, default: bool) -> RecordResult<bool> {
    match text {
        None => Ok(default),
        Some("true" | "1") => Ok(true),
        Some("false" | "0") => Ok(false),
        Some(v) => Err(RecordError::InvalidParameter(format!(
            "{name}: '{v}' is not true or false"
        ))),
    }
}

fn parse_duration_ns(name: &str, text: Option<&str>) -> RecordResult<Option<i64>> {
    text.map(|v| {
        tsstore::parse_duration_ns(v)
            .map_err(|e| RecordError::InvalidParameter(format!("{name}: {e}")))
    })
    .transpose()
}

/// `format`: full (default) or compact.
pub fn compact_format(text: Option<&str>) -> RecordResult<bool> {
    match text {
        None | Some("full") => Ok(false),
        Some("compact") => Ok(true),
        Some(other) => Err(RecordError::InvalidParameter(format!(
            "format: '{other}' is not full or compact"
        ))),
    }
}

/// Takes a JSON scalar as its text, so a connection's JSON may say
/// `"limit": 10` or `"limit": "10"` alike.
pub(crate) fn scalar_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    use serde::de::Error;
    match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s)),
        Some(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => {
            Ok(Some(v.to_string()))
        }
        Some(other) => Err(D::Error::custom(format!(
            "expected a string, number or boolean, got {other}"
        ))),
    }
}

/// The read options an outbound connection is created with (push, MQTT
/// publish): which records it sends and how they are aggregated, with the
/// names and checks of a live read's query. One type for every kind of
/// connection, flattened into each kind's settings and persisted with
/// them.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct FeedOptions {
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
    /// `string`: timestamps written as decimal strings (`number`, the
    /// default: JSON numbers).
    #[serde(
        default,
        deserialize_with = "scalar_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub timestamps: Option<String>,
    /// A rollup's window (`1h`): windows as the rollup makes them (its
    /// functions), as they close, instead of records.
    #[serde(
        default,
        deserialize_with = "scalar_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub resolution: Option<String>,
}

impl FeedOptions {
    /// Its keys in a connection's JSON.
    pub const FIELDS: [&'static str; 7] = [
        "filter",
        "filter_ignore_case",
        "agg_window",
        "agg_fields",
        "agg_default",
        "timestamps",
        "resolution",
    ];

    /// The first option given, if any (for kinds and modes that send
    /// nothing and take none).
    pub fn first_given(&self) -> Option<&'static str> {
        let given = [
            self.filter.is_some(),
            self.filter_ignore_case.is_some(),
            self.agg_window.is_some(),
            self.agg_fields.is_some(),
            self.agg_default.is_some(),
            self.timestamps.is_some(),
            self.resolution.is_some(),
        ];
        Self::FIELDS
            .into_iter()
            .zip(given)
            .find_map(|(name, g)| g.then_some(name))
    }

    /// The read spec of a feed with these options and `format` (`None`:
    /// full), one record per message.
    pub fn read_spec(
        &self,
        format: Option<&str>,
        dt: DataType,
        max_records: usize,
    ) -> RecordResult<ReadSpec> {
        let options = ReadOptions {
            format: format.map(str::to_string),
            filter: self.filter.clone(),
            filter_ignore_case: self.filter_ignore_case.clone(),
            agg_window: self.agg_window.clone(),
            agg_fields: self.agg_fields.clone(),
            agg_default: self.agg_default.clone(),
            timestamps: self.timestamps.clone(),
            resolution: self.resolution.clone(),
            ..ReadOptions::default()
        };
        let defaults = ListDefaults {
            limit: 1,
            include_data: true,
        };
        ReadSpec::new(&options, defaults, max_records, dt)
    }
}

/// A connection's settings from the JSON of its create request, read
/// the same way for every kind: a `mode` among `modes` (else
/// `unknown_mode`), no key outside `fields` (it would be ignored), whole
/// numbers where `numbers` are, then the kind's own type.
pub fn connection_settings<T, E>(
    body: &[u8],
    modes: &[&str],
    fields: &[&[&str]],
    numbers: &[&'static str],
    unknown_mode: impl FnOnce(String) -> E,
) -> Result<T, E>
where
    T: serde::de::DeserializeOwned,
    E: From<RecordError> + From<crate::json_int::NotANumber>,
{
    let raw: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| RecordError::InvalidJson(format!("invalid JSON body: {e}")))?;
    if let Some(mode) = raw.get("mode").and_then(|m| m.as_str())
        && !modes.contains(&mode)
    {
        return Err(unknown_mode(mode.to_string()));
    }
    refuse_unknown_keys(&raw, fields)?;
    crate::json_int::check_numbers(&raw, numbers)?;
    let settings = serde_json::from_value(raw)
        .map_err(|e| RecordError::InvalidJson(format!("invalid connection: {e}")))?;
    Ok(settings)
}

/// Refuses keys of a JSON object that are not in `known`: a connection's
/// settings take no key they would ignore.
pub fn refuse_unknown_keys(raw: &serde_json::Value, known: &[&[&str]]) -> RecordResult<()> {
    if let Some(object) = raw.as_object()
        && let Some(key) = object
            .keys()
            .find(|k| !known.iter().any(|set| set.contains(&k.as_str())))
    {
        return Err(RecordError::InvalidJson(format!(
            "invalid connection: unknown field `{key}`"
        )));
    }
    Ok(())
}

/// The options of a read, as received: the texts of a query string's
/// parameters (`from_query`), or of a connection's `FeedOptions`.
#[derive(Debug, Default, Clone)]
pub struct ReadOptions {
    pub limit: Option<String>,
    pub include_data: Option<String>,
    pub filter: Option<String>,
    pub filter_ignore_case: Option<String>,
    pub format: Option<String>,
    pub since: Option<String>,
    pub start_time: Option<String>,
    pub end_time: Option<String>,
    pub after: Option<String>,
    pub agg_window: Option<String>,
    pub agg_fields: Option<String>,
    pub agg_default: Option<String>,
    pub timestamps: Option<String>,
    pub resolution: Option<String>,
    pub max_points: Option<String>,
}

impl ReadOptions {
    pub fn from_query(q: &QueryParams) -> ReadOptions {
        let get = |name: &str| q.get(name).map(str::to_string);
        ReadOptions {
            limit: get("limit"),
            include_data: get("include_data"),
            filter: get("filter"),
            filter_ignore_case: get("filter_ignore_case"),
            format: get("format"),
            since: get("since"),
            start_time: get("start_time"),
            end_time: get("end_time"),
            after: get("after"),
            agg_window: get("agg_window"),
            agg_fields: get("agg_fields"),
            agg_default: get("agg_default"),
            timestamps: get("timestamps"),
            resolution: get("resolution"),
            max_points: get("max_points"),
        }
    }

    /// `since` as the start time it means at `now` (0: no `since`).
    pub fn since_start(&self, now: i64) -> RecordResult<i64> {
        Ok(parse_duration_ns("since", self.since.as_deref())?
            .map_or(0, |age| now.saturating_sub(age)))
    }

    /// The time range of a range read: `start_time`, `since` or `after`
    /// (at most one) to `end_time`, all inclusive; 0 or absent is open.
    pub fn range(&self, now: i64) -> RecordResult<TimeRange> {
        let start_time = parse_timestamp("start_time", self.start_time.as_deref())?;
        let end_time = parse_timestamp("end_time", self.end_time.as_deref())?.filter(|&t| t != 0);
        let since = parse_duration_ns("since", self.since.as_deref())?;
        let after = parse_timestamp("after", self.after.as_deref())?;
        let start_time = start_time.filter(|&t| t != 0);
        let starts = [start_time.is_some(), since.is_some(), after.is_some()];
        if starts.iter().filter(|&&s| s).count() > 1 {
            return Err(RecordError::InvalidParameter(
                "give at most one of start_time, since and after".into(),
            ));
        }
        let from = start_time
            .or(since.map(|age| now.saturating_sub(age)))
            .or(after.map(|a| a.saturating_add(1)))
            .unwrap_or(0);
        let to = end_time.unwrap_or(i64::MAX);
        if from > to {
            return Err(RecordError::InvalidParameter(format!(
                "end_time {to} is before the start of the range {from}"
            )));
        }
        Ok(TimeRange {
            from,
            to,
            covered_to: end_time.unwrap_or(now),
        })
    }
}

/// An inclusive time range and how far it is known complete (an
/// aggregation window ending after `covered_to` is partial).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub from: i64,
    pub to: i64,
    pub covered_to: i64,
}

/// What a list read returns when the options do not say.
#[derive(Debug, Clone, Copy)]
pub struct ListDefaults {
    pub limit: usize,
    pub include_data: bool,
}

/// A checked read: what to show of which records, how many, aggregated how.
#[derive(Debug)]
pub struct ReadSpec {
    pub include_data: bool,
    pub filter: Option<Filter>,
    pub compact: bool,
    /// Records, or windows when aggregating.
    pub limit: usize,
    pub agg: Option<AggSpec>,
    /// How timestamps are written.
    pub stamps: Stamps,
    /// Raw records or a rollup's windows.
    pub resolution: Asked,
}

/// Reads that return more than this many records, or filter or
/// aggregate, may touch many records: callers run them off the async
/// workers (`budget::run`).
pub const INLINE_READ_RECORDS: usize = 1000;

impl ReadSpec {
    /// Checks `o` for a store of type `dt`; `max_records` caps `limit`.
    pub fn new(
        o: &ReadOptions,
        defaults: ListDefaults,
        max_records: usize,
        dt: DataType,
    ) -> RecordResult<ReadSpec> {
        let compact = compact_format(o.format.as_deref())?;
        // Checked even without a filter: a bad option is never ignored.
        let ignore_case = parse_bool("filter_ignore_case", o.filter_ignore_case.as_deref(), false)?;
        let filter = match o.filter.as_deref() {
            None | Some("") => None,
            Some(needle) => Some(Filter::new(needle, ignore_case)),
        };
        let include_data = parse_bool(
            "include_data",
            o.include_data.as_deref(),
            defaults.include_data,
        )?;
        let resolution = Asked::parse(
            o.resolution.as_deref(),
            o.max_points.as_deref(),
            max_records,
        )?;
        let limit = match resolution {
            // The budget is the list's length unless `limit` says.
            Asked::Auto(points) if o.limit.is_none() => points,
            _ => parse_limit(o.limit.as_deref(), defaults.limit, max_records)?,
        };
        let agg = AggSpec::parse(
            o.agg_window.as_deref(),
            o.agg_fields.as_deref(),
            o.agg_default.as_deref(),
        )?;
        if agg.is_some() && !matches!(dt, DataType::Json | DataType::Schema) {
            return Err(RecordError::AggregationUnsupported(dt));
        }
        let stamps = Stamps::parse(o.timestamps.as_deref())?;
        if resolution.may_roll_up() {
            // A rollup holds windows, not the records these would pick.
            if agg.is_some() {
                return Err(RecordError::InvalidParameter(
                    "resolution and agg_window: give one (a rollup is already aggregated)".into(),
                ));
            }
            if filter.is_some() {
                return Err(RecordError::InvalidParameter(
                    "filter applies to raw records: use resolution=raw".into(),
                ));
            }
        }
        Ok(ReadSpec {
            include_data,
            filter,
            compact,
            limit,
            agg,
            stamps,
            resolution,
        })
    }

    /// Whether the read may touch many records: a large limit, or a
    /// filter or aggregation, which read more than they return.
    pub fn is_long(&self) -> bool {
        self.agg.is_some()
            || self.filter.is_some()
            || self.limit > INLINE_READ_RECORDS
            || self.resolution.may_roll_up()
    }
}

/// `limit`: 1 to `max`, `default` when absent.
fn parse_limit(text: Option<&str>, default: usize, max: usize) -> RecordResult<usize> {
    match text {
        None => Ok(default.min(max)),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= 1 && n as u64 <= max as u64 => Ok(n as usize),
            Ok(n) if n > 0 => Err(RecordError::LimitTooLarge { limit: n, max }),
            _ => Err(RecordError::InvalidParameter(format!(
                "limit: '{v}' must be an integer from 1 to {max}"
            ))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: ListDefaults = ListDefaults {
        limit: 10,
        include_data: true,
    };

    fn query(q: &str) -> ReadOptions {
        ReadOptions::from_query(&QueryParams::parse(Some(q)).unwrap())
    }

    #[test]
    fn query_strings_and_json_fill_the_same_options() {
        // A connection's JSON (numbers and booleans as their text) and a
        // query string make the same spec.
        let from_json: FeedOptions = serde_json::from_str(
            r#"{"filter": "hot", "filter_ignore_case": true, "agg_window": "1m"}"#,
        )
        .unwrap();
        let from_json = from_json.read_spec(None, DataType::Json, 100).unwrap();
        let from_query = query("limit=1&filter=hot&filter_ignore_case=true&agg_window=1m");
        let from_query = ReadSpec::new(&from_query, LIST, 100, DataType::Json).unwrap();
        for spec in [from_json, from_query] {
            assert_eq!((spec.limit, spec.include_data), (1, true));
            assert!(spec.filter.is_some_and(|f| f.matches(b"HOT")));
            assert!(spec.agg.is_some());
        }
        assert!(serde_json::from_str::<FeedOptions>(r#"{"filter": [1]}"#).is_err());
    }

    #[test]
    fn every_bad_option_names_itself() {
        let cases = [
            ("limit=0", "limit"),
            ("limit=x", "limit"),
            ("include_data=maybe", "include_data"),
            ("filter=a&filter_ignore_case=2", "filter_ignore_case"),
            ("filter_ignore_case=null", "filter_ignore_case"),
            ("format=pretty", "format"),
        ];
        for (q, name) in cases {
            let err = ReadSpec::new(&query(q), LIST, 100, DataType::Json).unwrap_err();
            assert!(err.to_string().contains(name), "{q}: {err}");
        }
        assert!(matches!(
            ReadSpec::new(&query("limit=101"), LIST, 100, DataType::Json),
            Err(RecordError::LimitTooLarge {
                limit: 101,
                max: 100
            })
        ));
        assert!(matches!(
            ReadSpec::new(&query("agg_window=1m"), LIST, 100, DataType::Text),
            Err(RecordError::AggregationUnsupported(DataType::Text))
        ));
        assert!(matches!(
            ReadSpec::new(&query("agg_window=soon"), LIST, 100, DataType::Json),
            Err(RecordError::InvalidAggregation(_))
        ));
    }

    #[test]
    fn time_ranges() {
        let r = query("start_time=0&end_time=0").range(1_000).unwrap();
        assert_eq!((r.from, r.to, r.covered_to), (0, i64::MAX, 1_000));
        let r = query("after=5&end_time=9").range(1_000).unwrap();
        assert_eq!((r.from, r.to, r.covered_to), (6, 9, 9));
        let r = query("since=1s").range(5_000_000_000).unwrap();
        assert_eq!(r.from, 4_000_000_000);
        assert!(query("since=1s&after=3").range(0).is_err());
        assert!(query("start_time=9&end_time=3").range(0).is_err());
        assert!(query("start_time=-1").range(0).is_err());
    }
}
