//! Writing a body: records laid out in columns once per `pack`, so that
//! the body of any prefix of them is a few copies (`Prepared`).

use std::cell::OnceCell;
use std::collections::HashMap;
use std::ops::Range;

use super::MAX_TEMPLATES;
use crate::encoding::split::laid::{Column, Laid};
use crate::encoding::split::{self, FrameTemplate, Record, Split, Template};
use crate::encoding::typed::{self, TypedColumn};
use crate::encoding::varint::put_varint;

/// Rows of a `Laid` that a frame template takes, not yet copied.
struct Run<'a> {
    template: usize,
    laid: &'a Laid,
    rows: Range<usize>,
}

/// A shape is written as one varint byte: template + 1, or 0 (raw).
const _: () = assert!(MAX_TEMPLATES < 0x7f);

/// Records split once into templates and value columns, from which the
/// body of any prefix can be written by copying: `FrameCodec::pack` tries
/// a few prefix lengths per block.
#[derive(Debug)]
pub struct Prepared<'a> {
    first: i64,
    /// Timestamp steps as varints; `step_ends[r - 1]`: their length up to
    /// record `r`'s.
    steps: Vec<u8>,
    step_ends: Vec<usize>,
    /// Per record: its shape byte.
    shapes: Vec<u8>,
    /// Templates in order of first use, so a prefix uses a prefix of them.
    templates: Vec<FrameTemplate<'a>>,
    /// Per template: the records of that shape, in order, and its value
    /// columns (one per key).
    rows: Vec<Vec<usize>>,
    columns: Vec<Vec<Column>>,
    /// Raw records, and which they are.
    raw: Column,
    raw_rows: Vec<usize>,
    /// The typed form's steps and columns, made on the first typed body.
    typed: OnceCell<Typed>,
}

/// What a typed body has that a plain one has not (`typed`).
#[derive(Debug)]
struct Typed {
    steps: Vec<u8>,
    step_ends: Vec<usize>,
    columns: Vec<Vec<TypedColumn>>,
}

impl<'a> Prepared<'a> {
    /// Lays out `records` (timestamps strictly increasing), split by the
    /// insert or here (`split`). `columnar` false keeps every record raw
    /// (text and binary stores, whose payloads are not JSON objects).
    pub fn new(records: &'a [Record<'a>], columnar: bool) -> Prepared<'a> {
        let mut p = Prepared {
            first: records.first().map_or(0, |r| r.timestamp),
            steps: Vec::with_capacity(records.len() * 2),
            step_ends: Vec::with_capacity(records.len()),
            shapes: Vec::with_capacity(records.len()),
            templates: Vec::new(),
            rows: Vec::new(),
            columns: Vec::new(),
            raw: Column::new(),
            raw_rows: Vec::new(),
            typed: OnceCell::new(),
        };
        for w in records.windows(2) {
            put_varint(
                &mut p.steps,
                w[1].timestamp.wrapping_sub(w[0].timestamp) as u64,
            );
            p.step_ends.push(p.steps.len());
        }
        let mut by_keys: HashMap<FrameTemplate<'a>, usize> = HashMap::new();
        // The insert's templates met so far, and their frame template.
        let mut known: Vec<(&Template, usize)> = Vec::new();
        let mut keys = Vec::new();
        let mut values = Vec::new();
        let mut last: Option<usize> = None;
        // Rows laid out by the insert, copied a run at a time, before any
        // row split here reaches the columns: rows stay in record order.
        let mut run: Option<Run<'a>> = None;
        for (r, record) in records.iter().enumerate() {
            let payload = record.payload;
            let shape = match record.split {
                _ if !columnar => None,
                Split::Whole => None,
                Split::Laid(template, laid, row) => {
                    let row = row as usize;
                    let t = p
                        .frame_template(template, &mut known, &mut keys, &mut by_keys)
                        .filter(|_| row < laid.rows as usize);
                    if let Some(t) = t {
                        debug_assert!(rebuilds(&p.templates[t], laid.values(row as u32), payload));
                        match &mut run {
                            Some(run)
                                if run.template == t
                                    && std::ptr::eq(run.laid, laid)
                                    && run.rows.end == row =>
                            {
                                run.rows.end += 1;
                            }
                            _ => p.copy_run(run.replace(Run {
                                template: t,
                                laid,
                                rows: row..row + 1,
                            })),
                        }
                    }
                    t
                }
                // `split_as` and `split_into` accept exactly `{"k":v,...}`
                // or `{"k": v, ...}` (a spaced template), so rebuilding
                // gives back these bytes: the transform is
                // exact by construction. Consecutive records mostly share
                // their keys: the last template is tried first, without
                // collecting the keys.
                Split::Unknown => {
                    values.clear();
                    let t = match last {
                        Some(t) if split::split_as(payload, &p.templates[t], &mut values) => {
                            Some(t)
                        }
                        _ => {
                            values.clear();
                            match split::split_into(payload, &mut keys, &mut values) {
                                Some(spaced) => p.template_of(&mut by_keys, &keys, spaced),
                                None => None,
                            }
                        }
                    };
                    if let Some(t) = t {
                        debug_assert!(rebuilds(&p.templates[t], values.clone(), payload));
                        p.copy_run(run.take());
                        for (column, value) in p.columns[t].iter_mut().zip(&values) {
                            column.push(value);
                        }
                    }
                    t
                }
            };
            match shape {
                Some(t) => {
                    last = Some(t);
                    p.rows[t].push(r);
                    p.shapes.push(t as u8 + 1);
                }
                None => {
                    p.raw.push(payload);
                    p.raw_rows.push(r);
                    p.shapes.push(0);
                }
            }
        }
        p.copy_run(run);
        p
    }

    /// Copies a run of laid-out rows into their template's columns.
    fn copy_run(&mut self, run: Option<Run<'_>>) {
        if let Some(run) = run {
            for (column, from) in self.columns[run.template].iter_mut().zip(&run.laid.columns) {
                column.extend_rows(from, run.rows.clone());
            }
        }
    }

    /// The frame template of the insert's `template`: found by pointer
    /// among those met so far (`known`), else by its keys.
    fn frame_template(
        &mut self,
        template: &'a Template,
        known: &mut Vec<(&'a Template, usize)>,
        keys: &mut Vec<&'a [u8]>,
        by_keys: &mut HashMap<FrameTemplate<'a>, usize>,
    ) -> Option<usize> {
        if let Some(&(_, t)) = known.iter().rev().find(|(k, _)| std::ptr::eq(*k, template)) {
            return Some(t);
        }
        keys.clear();
        keys.extend(template.keys.iter().map(|k| &**k));
        // The insert splits compact records only.
        let t = self.template_of(by_keys, keys, false);
        // Bounded, so that a search stays short when every record brings
        // a template of its own.
        if known.len() < MAX_TEMPLATES {
            known.extend(t.map(|t| (template, t)));
        }
        t
    }

    /// The frame template for `keys` spaced so or not, made if new; None
    /// once the frame has `MAX_TEMPLATES` (the record is kept raw).
    fn template_of(
        &mut self,
        by_keys: &mut HashMap<FrameTemplate<'a>, usize>,
        keys: &[&'a [u8]],
        spaced: bool,
    ) -> Option<usize> {
        let template = FrameTemplate {
            keys: keys.to_vec(),
            spaced,
        };
        if let Some(&t) = by_keys.get(&template) {
            return Some(t);
        }
        if self.templates.len() >= MAX_TEMPLATES {
            return None;
        }
        self.templates.push(template.clone());
        self.rows.push(Vec::new());
        self.columns
            .push((0..keys.len()).map(|_| Column::new()).collect());
        by_keys.insert(template, self.templates.len() - 1);
        Some(self.templates.len() - 1)
    }

    /// Writes the body of the first `n` records (at least one, at most
    /// those prepared) to `out`: plain, or typed (`typed`; its columns
    /// are typed on the first call, for every prefix).
    pub fn body(&self, n: usize, typed: bool, out: &mut Vec<u8>) {
        out.clear();
        if n == 0 {
            return;
        }
        let typed = typed.then(|| self.typed.get_or_init(|| self.make_typed()));
        let below = |rows: &[usize]| rows.partition_point(|&r| r < n);
        out.extend_from_slice(&self.first.to_le_bytes());
        put_varint(out, n as u64);
        let (steps, step_ends) = match typed {
            Some(t) => (&t.steps, &t.step_ends),
            None => (&self.steps, &self.step_ends),
        };
        out.extend_from_slice(&steps[..n.checked_sub(2).map_or(0, |r| step_ends[r])]);
        let used = self
            .rows
            .partition_point(|rows| rows.first().is_some_and(|&r| r < n));
        put_varint(out, used as u64);
        for t in &self.templates[..used] {
            t.write(out);
        }
        out.extend_from_slice(&self.shapes[..n]);
        self.raw.write(below(&self.raw_rows), out);
        for (t, (rows, columns)) in self.rows[..used].iter().zip(&self.columns).enumerate() {
            let rows = below(rows);
            for (k, column) in columns.iter().enumerate() {
                match typed {
                    Some(typed) => typed.columns[t][k].write(rows, column, out),
                    None => column.write(rows, out),
                }
            }
        }
    }

    fn make_typed(&self) -> Typed {
        let mut steps = Vec::with_capacity(self.step_ends.len() + 8);
        let mut step_ends = Vec::with_capacity(self.step_ends.len());
        typed::steps(self.stamps(), &mut steps, &mut step_ends);
        // Seasonal modes only where a template has every record: then a
        // value's place in its column is its record's.
        let records = self.shapes.len();
        let lag = typed::daily_lag(self.stamps(), records);
        let columns = self
            .columns
            .iter()
            .zip(&self.rows)
            .map(|(columns, rows)| typed::template(columns, lag.filter(|_| rows.len() == records)))
            .collect();
        Typed {
            steps,
            step_ends,
            columns,
        }
    }

    /// Every record's timestamp, again from the steps.
    fn stamps(&self) -> impl Iterator<Item = i64> + '_ {
        let mut c = crate::encoding::varint::Cursor {
            b: &self.steps,
            i: 0,
        };
        let mut ts = self.first;
        std::iter::once(self.first).chain(self.step_ends.iter().map(move |_| {
            // Written by `new`: a varint per step.
            ts = ts.wrapping_add(c.varint().unwrap_or(0) as i64);
            ts
        }))
    }
}

/// Whether `values` in `template` rebuild `payload`: the split is exact
/// (a debug check).
fn rebuilds(template: &FrameTemplate<'_>, values: Vec<&[u8]>, payload: &[u8]) -> bool {
    let mut check = Vec::new();
    template.rebuild(&mut check, &values);
    check == payload
}

/// Lays `records` (timestamps strictly increasing, at least one) out as a
/// frame body in `out`, plain or `typed`. `columnar` false keeps every
/// record raw (text and binary stores, whose payloads are not JSON
/// objects).
pub fn encode(records: &[Record<'_>], columnar: bool, typed: bool, out: &mut Vec<u8>) {
    Prepared::new(records, columnar).body(records.len(), typed, out);
}
