//! Rebuilding a typed body's records straight from its columns, without
//! the plain body in between: a range over a compressed store rebuilds
//! every record of every frame it reads, and writing each value's text
//! once, into its record, costs about half of writing the plain body's
//! columns and then parsing and copying them into records again
//! (docs/BENCHMARKS.md, issue 33, third session).
//!
//! Only the usual frame takes this path: one template, no raw records.
//! Number columns of plain numbers are formatted straight into their
//! records; one with other values among them (`null`, texts, exponents)
//! is written out as a plain column first. Any other frame answers
//! `false` and is rebuilt through the plain body, as before; both give
//! the same bytes (property-tested in `tests.rs`).

use super::number::{MAX_DIGITS, MAX_MAGNITUDE, TEXT_END, decimal_text};
use super::predict::BAD_REFERENCE;
use super::read::{ColumnView, NumbersView, Scratch};
use super::{Layout, stamps};
use crate::encoding::columns::{SLACK, Separators, Unpacked, put_piece};
use crate::encoding::varint::{BodyError, Cursor};

/// Most bytes a plain number's text takes: a sign, `MAX_DIGITS` digits
/// and a point.
const NUMBER_TEXT: usize = MAX_DIGITS + 2;

/// A column being read row by row.
enum Column<'a> {
    Numbers {
        view: NumbersView<'a>,
        mantissas: Vec<i64>,
        /// The last value's text (`buf[start..TEXT_END]`): readings
        /// repeat, and a repeated value is not formatted again.
        buf: [u8; 2 * TEXT_END],
        start: usize,
        last: Option<(i64, u8)>,
    },
    Text {
        lens: Cursor<'a>,
        texts: &'a [u8],
        at: usize,
    },
    Dict {
        entries: Vec<&'a [u8]>,
        indices: Cursor<'a>,
    },
    /// A number column with other values among its numbers (`null`,
    /// texts, exponents), written out first as a plain body's column:
    /// `plain[..lens_end]` the lengths, then the texts.
    Written {
        plain: Vec<u8>,
        lens_at: usize,
        lens_end: usize,
        at: usize,
    },
}

impl Column<'_> {
    /// Bytes its values take at most.
    fn bound(&self, rows: usize) -> usize {
        match self {
            Column::Numbers { .. } => rows * NUMBER_TEXT,
            Column::Text { texts, .. } => texts.len(),
            Column::Dict { entries, .. } => {
                rows * entries.iter().map(|e| e.len()).max().unwrap_or(0)
            }
            Column::Written {
                plain, lens_end, ..
            } => plain.len() - lens_end,
        }
    }

    /// Writes row `k`'s value into `dst` at `at`; returns where it ends.
    #[inline(always)]
    fn put(&mut self, k: usize, dst: &mut [u8], at: usize) -> Result<usize, BodyError> {
        Ok(match self {
            Column::Numbers {
                view,
                mantissas,
                buf,
                start,
                last,
            } => {
                let (m, scale) = (mantissas[k], view.scale(k));
                if *last != Some((m, scale)) {
                    if m.unsigned_abs() >= MAX_MAGNITUDE || usize::from(scale) >= MAX_DIGITS {
                        return Err(BodyError("number out of range"));
                    }
                    *start = decimal_text(buf, m.unsigned_abs(), m < 0, scale);
                    *last = Some((m, scale));
                }
                put_piece(dst, at, &buf[..], *start, TEXT_END - *start)
            }
            Column::Text {
                lens,
                texts,
                at: from,
            } => put_text(lens, texts, from, dst, at)?,
            Column::Written {
                plain,
                lens_at,
                lens_end,
                at: from,
            } => {
                let (lens, texts) = plain.split_at(*lens_end);
                let mut lens = Cursor {
                    b: lens,
                    i: *lens_at,
                };
                let to = put_text(&mut lens, texts, from, dst, at)?;
                *lens_at = lens.i;
                to
            }
            Column::Dict { entries, indices } => {
                let entry = usize::try_from(indices.varint()?)
                    .ok()
                    .and_then(|i| entries.get(i))
                    .ok_or(BodyError("dictionary index out of range"))?;
                put_piece(dst, at, entry, 0, entry.len())
            }
        })
    }
}

/// Writes the next of the texts `texts` (the one at `from`, its length
/// the next of `lens`) into `dst` at `at`; returns where it ends.
#[inline(always)]
fn put_text(
    lens: &mut Cursor<'_>,
    texts: &[u8],
    from: &mut usize,
    dst: &mut [u8],
    at: usize,
) -> Result<usize, BodyError> {
    // Not `count`: that bounds a length by what is left of the lengths,
    // not of the texts.
    let len = usize::try_from(lens.varint()?).map_err(|_| BodyError("length overflow"))?;
    let end = from
        .checked_add(len)
        .filter(|&end| end <= texts.len())
        .ok_or(BodyError("truncated bytes"))?;
    let to = put_piece(dst, at, texts, *from, len);
    *from = end;
    Ok(to)
}

/// Every record of the typed body `typed` rebuilt into `out` (its
/// contents replaced): straight from its columns when this path takes
/// it, else through its plain body (written to `plain`).
pub(crate) fn unpack_all(
    typed: &[u8],
    out: &mut Unpacked,
    max: usize,
    plain: &mut Vec<u8>,
    s: &mut Scratch,
) -> Result<(), BodyError> {
    if unpack_records(typed, out, max, s)? {
        return Ok(());
    }
    super::unpack(typed, plain, max, s)?;
    crate::encoding::columns::decode(plain, out)
}

/// Rebuilds every record of the typed body `typed` into `out` (its
/// contents replaced), writing at most `max` bytes of records; false if
/// the body is not one this path takes (`out` is then left to the plain
/// path).
pub(crate) fn unpack_records(
    typed: &[u8],
    out: &mut Unpacked,
    max: usize,
    s: &mut Scratch,
) -> Result<bool, BodyError> {
    let mut c = Cursor { b: typed, i: 0 };
    out.stamps.clear();
    let stamps_out = &mut out.stamps;
    let n = stamps(&mut c, |_, ts| stamps_out.push(ts))?;
    let layout = Layout::parse(&mut c, n)?;
    let [template] = &layout.templates[..] else {
        return Ok(false);
    };
    if layout.rows[0] != n {
        return Ok(false);
    }
    let mut columns: Vec<Column<'_>> = Vec::with_capacity(template.keys.len());
    for j in 0..template.keys.len() {
        columns.push(match ColumnView::parse(&mut c, n, j)? {
            ColumnView::Numbers(view) if view.plain_numbers() != Some(n) => {
                // Such a column refers to none (`NumbersView::parse`).
                let mut plain = Vec::new();
                ColumnView::Numbers(view).decode(n, &mut plain, max, s, &mut Vec::new())?;
                let lens_end = Cursor { b: &plain, i: 0 }.skip_varints(n)?.len();
                Column::Written {
                    plain,
                    lens_at: 0,
                    lens_end,
                    at: 0,
                }
            }
            ColumnView::Numbers(view) => {
                let reference = match view.reference() {
                    None => None,
                    Some(r) => match &columns[r.column] {
                        Column::Numbers { mantissas, .. } => Some(&mantissas[..]),
                        _ => {
                            return Err(BAD_REFERENCE);
                        }
                    },
                };
                let mut mantissas = Vec::new();
                view.mantissas(n - 1, &mut mantissas, reference)?;
                Column::Numbers {
                    view,
                    mantissas,
                    buf: [0; 2 * TEXT_END],
                    start: TEXT_END,
                    last: None,
                }
            }
            ColumnView::Text { lens, texts } => Column::Text {
                lens: Cursor { b: lens, i: 0 },
                texts,
                at: 0,
            },
            ColumnView::Dict { entries, indices } => Column::Dict {
                entries,
                indices: Cursor { b: indices, i: 0 },
            },
        });
    }
    if c.i != typed.len() {
        return Err(BodyError("bytes after the last column"));
    }
    let separators = Separators::new(template);
    let fixed = separators.fixed();
    let bound = columns
        .iter()
        .map(|col| col.bound(n))
        .try_fold(n.saturating_mul(fixed), usize::checked_add)
        .filter(|&b| b <= max);
    let Some(bound) = bound else {
        return Ok(false);
    };
    out.ends.clear();
    out.ends.reserve(n);
    let dst = &mut out.payloads;
    dst.clear();
    dst.resize(bound + SLACK, 0);
    let mut at = 0;
    for row in 0..n {
        for (j, col) in columns.iter_mut().enumerate() {
            at = separators.put(dst, at, j);
            at = col.put(row, dst, at)?;
        }
        at = separators.put(dst, at, columns.len());
        out.ends.push(at);
    }
    dst.truncate(at);
    Ok(true)
}
