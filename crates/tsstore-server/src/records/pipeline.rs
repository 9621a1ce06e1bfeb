//! The read pipeline every transport shares: each record is expanded once
//! (schema stores), filtered on what users see, then shown or aggregated.
//! Lists stream from the engine's iterators into the output buffer, so
//! memory is bounded by `limit` (itself capped), not by the store.

use std::borrow::Cow;
use std::sync::Arc;

use tsstore::aggregate::{AggSpec, Aggregator, Window};
use tsstore::{DataType, Records, Schema, Store};

use super::budget::Budget;
use super::encode::{DataEncoding, ListWriter, Stamps, push_object, windows_list};
use super::error::{RecordError, RecordResult};
use super::options::{ReadSpec, TimeRange};
use super::resolution::Asked;

/// A record as the spec shows it: `None` when the filter drops it, else
/// the bytes to show (empty without data). The filter always sees the
/// expanded form; the expansion is reused for output unless compact.
pub fn shown<'a>(store: &Store, spec: &ReadSpec, data: &'a [u8]) -> Option<Cow<'a, [u8]>> {
    let expanded = match &spec.filter {
        Some(filter) => {
            let expanded = store.expand(data);
            if !filter.matches(&expanded) {
                return None;
            }
            Some(expanded)
        }
        None => None,
    };
    if !spec.include_data {
        return Some(Cow::Borrowed(&[]));
    }
    if spec.compact {
        return Some(Cow::Borrowed(data));
    }
    Some(expanded.unwrap_or_else(|| store.expand(data)))
}

/// `shown` for a walk over many records (export, alert evaluation): one
/// buffer is reused for every expansion instead of one allocation per
/// record. Takes the store's schema when made: make one per batch where a
/// schema may change meanwhile.
pub struct Shower<'s> {
    spec: &'s ReadSpec,
    schema: Option<Arc<Schema>>,
    expanded: Vec<u8>,
}

impl<'s> Shower<'s> {
    pub fn new(store: &Store, spec: &'s ReadSpec) -> Shower<'s> {
        let schema = if store.data_type() == DataType::Schema {
            store.schema()
        } else {
            None
        };
        Shower {
            spec,
            schema,
            expanded: Vec::new(),
        }
    }

    /// What `shown` gives for `data`, borrowed from it or from the buffer.
    pub fn show<'a>(&'a mut self, data: &'a [u8]) -> Option<&'a [u8]> {
        let spec = self.spec;
        let needs_expanded = spec.filter.is_some() || (spec.include_data && !spec.compact);
        let expanded: &[u8] = match &self.schema {
            Some(schema) if needs_expanded => {
                self.expanded.clear();
                if schema.expand_into(data, &mut self.expanded) {
                    &self.expanded
                } else {
                    data
                }
            }
            _ => data,
        };
        if let Some(filter) = &spec.filter
            && !filter.matches(expanded)
        {
            return None;
        }
        if !spec.include_data {
            return Some(&[]);
        }
        if spec.compact {
            return Some(data);
        }
        Some(expanded)
    }
}

/// A spec that shows every record whole, as users see it (expanded): an
/// export's, or alert evaluation's with the connection's filter.
pub fn whole(filter: Option<tsstore::Filter>) -> ReadSpec {
    ReadSpec {
        include_data: true,
        filter,
        compact: false,
        limit: usize::MAX,
        agg: None,
        stamps: Stamps::Numbers,
        resolution: Default::default(),
    }
}

/// The records of `iter` that pass the filter, up to `spec.limit`, as a
/// `{"objects": [...], "count": n}` body.
pub fn list(
    store: &Store,
    iter: Records<'_>,
    spec: &ReadSpec,
    budget: &mut Budget,
) -> RecordResult<Vec<u8>> {
    let need_data = spec.include_data || spec.filter.is_some();
    let mut iter = iter.with_data(need_data);
    if spec.filter.is_none() {
        iter = iter.limit(spec.limit);
    }
    let enc = DataEncoding::of(store);
    // Room for a short list's records as they usually are, so that a
    // `newest?limit=10` is written without growing the body three times;
    // longer lists grow from there.
    let per_record = if spec.include_data { 192 } else { 80 };
    let mut out = ListWriter::with_capacity(64 + spec.limit.min(64) * per_record);
    // Borrowed records: each payload goes from the block bytes straight
    // into the body, with no copy of its own.
    while let Some(rec) = iter.next_ref() {
        let rec = rec?;
        budget.take()?;
        let Some(data) = shown(store, spec, rec.data) else {
            continue;
        };
        let data = spec.include_data.then_some((&data[..], enc));
        push_object(out.element(), &rec.handle, data, spec.stamps);
        if out.count() >= spec.limit {
            break;
        }
    }
    Ok(out.finish())
}

/// A feed's spec (live read, push, MQTT publish, line protocol out) at
/// the resolution it asked for: at a rollup's window, the rollup's own
/// aggregation of the records as they come, so each window sent is the
/// row the rollup writes. `auto` is for lists: a feed has no span.
pub fn for_feed(mut spec: ReadSpec, store: &Store) -> RecordResult<ReadSpec> {
    match spec.resolution {
        Asked::Unset | Asked::Raw => Ok(spec),
        Asked::Auto(_) => Err(RecordError::InvalidParameter(
            "resolution=auto applies to newest and range; a feed takes raw or a rollup's window"
                .into(),
        )),
        Asked::Window(w) => {
            let rollup = store.rollups().into_iter().find(|r| r.window_ns == w);
            let rollup = rollup.ok_or_else(|| {
                let label = tsstore::window_label(w).unwrap_or_default();
                RecordError::Store(tsstore::Error::RollupNotFound(label))
            })?;
            spec.agg = Some(AggSpec::with_default(w, rollup.functions));
            Ok(spec)
        }
    }
}

/// The windows of the rollup of `window_ns` in `range` (newest first for
/// `newest`), at most `spec.limit`, as a list body: the shape of
/// `range_windows`'.
pub fn rollup_list(
    store: &Store,
    window_ns: i64,
    spec: &ReadSpec,
    range: TimeRange,
    newest: bool,
) -> RecordResult<Vec<u8>> {
    let windows = if newest {
        store.rollup_windows_rev(window_ns, range.from, range.to, spec.limit)?
    } else {
        store.rollup_windows(window_ns, range.from, range.to, spec.limit)?
    };
    Ok(windows_list(&windows, spec.compact, spec.stamps))
}

/// The newest `spec.limit` windows of the records from `from` on, newest
/// first, as a list body.
pub fn newest_windows(
    store: &Store,
    agg: AggSpec,
    spec: &ReadSpec,
    from: i64,
    now: i64,
    budget: &mut Budget,
) -> RecordResult<Vec<u8>> {
    let start = newest_windows_start(store, &agg, spec, from, budget)?;
    let range = TimeRange {
        from: start,
        to: i64::MAX,
        covered_to: now,
    };
    let mut windows = aggregate(store, agg, spec, range, budget)?;
    let keep = windows.len().saturating_sub(spec.limit);
    windows.drain(..keep);
    windows.reverse();
    Ok(windows_list(&windows, spec.compact, spec.stamps))
}

/// The windows of the records in `range`, oldest first, as a list body.
pub fn range_windows(
    store: &Store,
    agg: AggSpec,
    spec: &ReadSpec,
    range: TimeRange,
    budget: &mut Budget,
) -> RecordResult<Vec<u8>> {
    let windows = aggregate(store, agg, spec, range, budget)?;
    Ok(windows_list(&windows, spec.compact, spec.stamps))
}

/// Where the newest `spec.limit` windows (of object records passing the
/// filter) begin: scans backwards without aggregating.
fn newest_windows_start(
    store: &Store,
    agg: &AggSpec,
    spec: &ReadSpec,
    from: i64,
    budget: &mut Budget,
) -> RecordResult<i64> {
    let mut windows = 0;
    let mut current = None;
    for rec in store.iter_range_rev(from, i64::MAX) {
        let rec = rec?;
        budget.take()?;
        // Only records the aggregator takes (objects) make a window.
        let is_object = rec.data.trim_ascii_start().first() == Some(&b'{');
        let passes = || {
            spec.filter
                .as_ref()
                .is_none_or(|f| f.matches(&store.expand(&rec.data)))
        };
        if !is_object || !passes() {
            continue;
        }
        let w = rec.timestamp().div_euclid(agg.window_ns);
        if current != Some(w) {
            if windows == spec.limit {
                return Ok(current.map_or(from, |c: i64| c * agg.window_ns));
            }
            windows += 1;
            current = Some(w);
        }
    }
    Ok(from)
}

/// Aggregates the records in `range` (after the filter); windows cut by
/// the range's start or `covered_to` are partial. Stops after
/// `spec.limit` windows.
fn aggregate(
    store: &Store,
    agg: AggSpec,
    spec: &ReadSpec,
    range: TimeRange,
    budget: &mut Budget,
) -> RecordResult<Vec<Window>> {
    let mut agg = Aggregator::new(agg).covered_from(range.from);
    let mut windows = Vec::new();
    for rec in store.iter_range(range.from, range.to) {
        let rec = rec?;
        budget.take()?;
        let data = store.expand(&rec.data);
        if spec.filter.as_ref().is_some_and(|f| !f.matches(&data)) {
            continue;
        }
        if let Some(w) = agg.add(rec.timestamp(), &data) {
            windows.push(w);
            if windows.len() >= spec.limit {
                return Ok(windows);
            }
        }
    }
    windows.extend(agg.finish(range.covered_to));
    windows.truncate(spec.limit);
    Ok(windows)
}
