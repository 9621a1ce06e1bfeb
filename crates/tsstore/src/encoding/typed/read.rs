//! Reading typed columns: each column's streams found first
//! (`ColumnView::parse`), then all its values written back as a plain
//! body's column (`decode`, lengths then texts) or one value alone
//! (`value`, a lookup by time). A damaged column is an error, never a
//! panic or a text longer than the frame's bound.

use super::number::{
    MAX_DIGITS, MAX_FORM, MAX_MAGNITUDE, Number, TEXT_END, decimal_text, form_has_exponent,
};
use super::predict::{BAD_REFERENCE, Mode, Predictor, Reference};
use super::{
    DELTA_OF_DELTA, DICT, FLAGS, FORM_NULL, FORM_TEXT, HAS_FORMS, NUMBER, PREDICTED, SCALES_VARY,
    TEXT, unzigzag,
};
use crate::encoding::varint::{BodyError, Cursor, put_varint};

/// Buffers reused from column to column.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    mantissas: Vec<i64>,
    lens: Vec<u8>,
    texts: Vec<u8>,
    /// Room the fast path writes numbers into (`TEXT_END` bytes each),
    /// grown, never cleared: zeroing it per column cost more than the
    /// numbers.
    room: Vec<u8>,
}

/// Where a typed column's parts lie in the body.
pub(crate) enum ColumnView<'a> {
    /// `lens`: a varint per value; `texts`: the values one after another.
    Text {
        lens: &'a [u8],
        texts: &'a [u8],
    },
    Numbers(NumbersView<'a>),
    /// The distinct texts, and a varint index per value.
    Dict {
        entries: Vec<&'a [u8]>,
        indices: &'a [u8],
    },
}

/// A `NUMBER` column's streams (`write::Numbers`).
pub(crate) struct NumbersView<'a> {
    flags: u8,
    predictor: Predictor,
    forms: Option<&'a [u8]>,
    numbers: usize,
    scales: &'a [u8],
    width: usize,
    planes: &'a [u8],
    /// Two varints per number with an exponent.
    exponents: &'a [u8],
    /// Per text: varint length, bytes.
    texts: &'a [u8],
}

/// The `k`-th of the length-prefixed texts in `b`.
fn nth_text(b: &[u8], k: usize) -> Result<&[u8], BodyError> {
    let mut c = Cursor { b, i: 0 };
    for _ in 0..k {
        let len = c.count()?;
        c.bytes(len)?;
    }
    let len = c.count()?;
    c.bytes(len)
}

impl<'a> ColumnView<'a> {
    /// Finds the parts of the column of `count` values at `c`, column
    /// `column` of its template.
    pub(crate) fn parse(
        c: &mut Cursor<'a>,
        count: usize,
        column: usize,
    ) -> Result<ColumnView<'a>, BodyError> {
        Ok(match c.bytes(1)?[0] {
            TEXT => {
                let at = c.i;
                let total = c.sum_varints(count)?;
                ColumnView::Text {
                    lens: &c.b[at..c.i],
                    texts: c.bytes(total)?,
                }
            }
            NUMBER => ColumnView::Numbers(NumbersView::parse(c, count, column)?),
            DICT => {
                let d = c.count()?;
                let mut lens = Vec::with_capacity(d);
                for _ in 0..d {
                    lens.push(c.count()?);
                }
                let mut entries = Vec::with_capacity(d);
                for len in lens {
                    entries.push(c.bytes(len)?);
                }
                ColumnView::Dict {
                    entries,
                    indices: c.skip_varints(count)?,
                }
            }
            _ => return Err(BodyError("unknown column codec")),
        })
    }

    /// Appends all `count` values as a plain body's column: lengths, then
    /// texts (at most `budget` bytes of them: a dictionary can say much
    /// in few bytes). `earlier`: the mantissas of the template's columns
    /// before it that are plain numbers (what a reference may name);
    /// this column's are pushed to it (`None` unless plain numbers).
    pub(crate) fn decode(
        &self,
        count: usize,
        out: &mut Vec<u8>,
        budget: usize,
        s: &mut Scratch,
        earlier: &mut Vec<Option<Vec<i64>>>,
    ) -> Result<(), BodyError> {
        s.lens.clear();
        s.texts.clear();
        match self {
            ColumnView::Text { lens, texts } => {
                // Already plain: checked by the plain body's reader after.
                out.extend_from_slice(lens);
                out.extend_from_slice(texts);
                earlier.push(None);
                return Ok(());
            }
            ColumnView::Numbers(n) => {
                n.decode(count, s, n.referred(earlier)?)?;
                earlier.push(n.plain_numbers().map(|_| s.mantissas.clone()));
            }
            ColumnView::Dict { entries, indices } => {
                earlier.push(None);
                let mut c = Cursor { b: indices, i: 0 };
                for _ in 0..count {
                    let text = entry(entries, c.varint()?)?;
                    if s.texts.len() + text.len() > budget {
                        return Err(BodyError("typed body unpacks larger than its bound"));
                    }
                    put_varint(&mut s.lens, text.len() as u64);
                    s.texts.extend_from_slice(text);
                }
            }
        }
        out.extend_from_slice(&s.lens);
        out.extend_from_slice(&s.texts);
        Ok(())
    }

    /// Appends value `row`'s text. `earlier`: the row's mantissas in
    /// the template's columns before it that are plain numbers; this
    /// column's is pushed to it.
    pub(crate) fn value(
        &self,
        row: usize,
        out: &mut Vec<u8>,
        earlier: &mut Vec<Option<i64>>,
    ) -> Result<(), BodyError> {
        let mut mantissa = None;
        match self {
            ColumnView::Text { lens, texts } => out.extend_from_slice(nth(lens, texts, row)?),
            ColumnView::Numbers(n) => mantissa = n.value(row, out, earlier)?,
            ColumnView::Dict { entries, indices } => {
                let mut c = Cursor { b: indices, i: 0 };
                c.skip_varints(row)?;
                out.extend_from_slice(entry(entries, c.varint()?)?);
            }
        }
        earlier.push(mantissa);
        Ok(())
    }
}

fn entry<'a>(entries: &[&'a [u8]], index: u64) -> Result<&'a [u8], BodyError> {
    usize::try_from(index)
        .ok()
        .and_then(|i| entries.get(i).copied())
        .ok_or(BodyError("dictionary index out of range"))
}

impl<'a> NumbersView<'a> {
    fn parse(
        c: &mut Cursor<'a>,
        count: usize,
        column: usize,
    ) -> Result<NumbersView<'a>, BodyError> {
        let flags = c.bytes(1)?[0];
        if flags & !FLAGS != 0 {
            return Err(BodyError("unknown number column flags"));
        }
        let predictor = if flags & PREDICTED != 0 {
            if flags & DELTA_OF_DELTA != 0 {
                return Err(BodyError("unknown number column flags"));
            }
            let p = Predictor::read(c, column)?;
            if p.reference.is_some() && flags & HAS_FORMS != 0 {
                return Err(BodyError("a reference from a column with forms"));
            }
            p
        } else {
            Predictor::plain(flags & DELTA_OF_DELTA != 0)
        };
        let forms = if flags & HAS_FORMS != 0 {
            Some(c.bytes(count)?)
        } else {
            None
        };
        let (numbers, exponents, texts) = match forms {
            None => (count, 0, 0),
            Some(forms) => forms.iter().fold((0, 0, 0), |(n, e, t), &f| match f {
                FORM_TEXT => (n, e, t + 1),
                f if f <= MAX_FORM => (n + 1, e + usize::from(form_has_exponent(f)), t),
                _ => (n, e, t),
            }),
        };
        let scales = c.bytes(if flags & SCALES_VARY != 0 { numbers } else { 1 })?;
        let width = usize::from(c.bytes(1)?[0]);
        if width > 8 {
            return Err(BodyError("number plane wider than 64 bits"));
        }
        let planes = c.bytes(
            numbers
                .checked_mul(width)
                .ok_or(BodyError("length overflow"))?,
        )?;
        let exponents = c.skip_varints(exponents * 2)?;
        let start = c.i;
        for _ in 0..texts {
            let len = c.count()?;
            c.bytes(len)?;
        }
        Ok(NumbersView {
            flags,
            predictor,
            forms,
            numbers,
            scales,
            width,
            planes,
            exponents,
            texts: &c.b[start..c.i],
        })
    }

    pub(super) fn scale(&self, k: usize) -> u8 {
        if self.flags & SCALES_VARY != 0 {
            self.scales[k]
        } else {
            self.scales[0]
        }
    }

    /// The reference this column's predictor names, if any.
    pub(super) fn reference(&self) -> Option<Reference> {
        self.predictor.reference
    }

    #[cfg(test)]
    pub(super) fn predictor(&self) -> Predictor {
        self.predictor
    }

    /// The referenced column's mantissas among `earlier` (`None`: no
    /// reference); an error if that column is not one of plain numbers.
    fn referred<'e>(
        &self,
        earlier: &'e [Option<Vec<i64>>],
    ) -> Result<Option<&'e [i64]>, BodyError> {
        self.reference()
            .map(|r| match earlier.get(r.column) {
                Some(Some(m)) => Ok(&m[..]),
                _ => Err(BAD_REFERENCE),
            })
            .transpose()
    }

    /// Mantissas up to number `k` (all: `numbers - 1`) into `out`;
    /// `reference`: the referenced column's mantissas (as many at least).
    pub(super) fn mantissas(
        &self,
        upto: usize,
        out: &mut Vec<i64>,
        reference: Option<&[i64]>,
    ) -> Result<(), BodyError> {
        out.clear();
        out.resize(upto + 1, 0);
        for p in 0..self.width {
            let plane = &self.planes[p * self.numbers..][..=upto];
            for (v, &b) in out.iter_mut().zip(plane) {
                *v |= (u64::from(b) << (8 * p)) as i64;
            }
        }
        for v in out.iter_mut() {
            *v = unzigzag(*v as u64);
        }
        if self.predictor.reference.is_some() && reference.is_none_or(|of| of.len() < out.len()) {
            return Err(BAD_REFERENCE);
        }
        self.predictor.restore(out, reference);
        Ok(())
    }

    fn number(
        &self,
        k: usize,
        mantissa: i64,
        form: u8,
        exponent: (u8, u64),
    ) -> Result<Number, BodyError> {
        let n = Number {
            mantissa,
            scale: self.scale(k),
            form,
            exponent,
        };
        if !n.is_valid() {
            return Err(BodyError("number out of range"));
        }
        Ok(n)
    }

    fn decode(
        &self,
        count: usize,
        s: &mut Scratch,
        reference: Option<&[i64]>,
    ) -> Result<(), BodyError> {
        if self.numbers > 0 {
            self.mantissas(self.numbers - 1, &mut s.mantissas, reference)?;
        } else {
            s.mantissas.clear();
        }
        let Some(forms) = self.forms else {
            return self.decode_plain(s);
        };
        let mut exponents = Cursor {
            b: self.exponents,
            i: 0,
        };
        let mut texts = Cursor {
            b: self.texts,
            i: 0,
        };
        let mut k = 0;
        let mut buf = [0; 2 * TEXT_END];
        s.texts.reserve(count * 8);
        for &form in &forms[..count] {
            let at = s.texts.len();
            match form {
                FORM_NULL => s.texts.extend_from_slice(b"null"),
                FORM_TEXT => {
                    let len = texts.count()?;
                    s.texts.extend_from_slice(texts.bytes(len)?);
                }
                form if form <= MAX_FORM => {
                    let exponent = if form_has_exponent(form) {
                        let width = u8::try_from(exponents.varint()?).unwrap_or(u8::MAX);
                        (width, exponents.varint()?)
                    } else {
                        (0, 0)
                    };
                    let (start, end) = self
                        .number(k, s.mantissas[k], form, exponent)?
                        .text(&mut buf);
                    s.texts.extend_from_slice(&buf[start..end]);
                    k += 1;
                }
                _ => return Err(BodyError("unknown number form")),
            }
            let len = s.texts.len() - at;
            match u8::try_from(len) {
                Ok(short) if short < 0x80 => s.lens.push(short),
                _ => put_varint(&mut s.lens, len as u64),
            }
        }
        Ok(())
    }

    /// Whether every value is a plain number (no forms: the usual
    /// column), and how many there are.
    pub(super) fn plain_numbers(&self) -> Option<usize> {
        self.forms.is_none().then_some(self.numbers)
    }

    /// Plain numbers only (the usual column): formatted straight out.
    fn decode_plain(&self, s: &mut Scratch) -> Result<(), BodyError> {
        // Each text is moved as `TEXT_END` bytes, the next one written
        // over what follows it: a call to `memcpy` per value had cost
        // more than the formatting.
        let mut buf = [0; 2 * TEXT_END];
        let mut at = 0;
        let room = (s.mantissas.len() + 1) * TEXT_END;
        if s.room.len() < room {
            s.room.resize(room, 0);
        }
        // Readings repeat (a night of zero irradiance, a steady
        // pressure): a value like the one before keeps its text in `buf`.
        let (mut start, mut last) = (TEXT_END, None);
        for (k, &m) in s.mantissas.iter().enumerate() {
            let scale = self.scale(k);
            if last != Some((m, scale)) {
                if m.unsigned_abs() >= MAX_MAGNITUDE || usize::from(scale) >= MAX_DIGITS {
                    return Err(BodyError("number out of range"));
                }
                start = decimal_text(&mut buf, m.unsigned_abs(), m < 0, scale);
                last = Some((m, scale));
            }
            if let (Some(dst), Some(src)) = (
                s.room
                    .get_mut(at..)
                    .and_then(|d| d.first_chunk_mut::<TEXT_END>()),
                buf[start..].first_chunk::<TEXT_END>(),
            ) {
                *dst = *src;
            }
            // At most 20 bytes: one byte of length.
            let len = TEXT_END - start;
            s.lens.push(len as u8);
            at += len;
        }
        s.texts.extend_from_slice(&s.room[..at]);
        Ok(())
    }

    /// Appends value `row`'s text; returns its mantissa if the column
    /// is of plain numbers (a later column may refer to it). `earlier`:
    /// the row's mantissas in the columns before it.
    fn value(
        &self,
        row: usize,
        out: &mut Vec<u8>,
        earlier: &[Option<i64>],
    ) -> Result<Option<i64>, BodyError> {
        let (form, before) = match self.forms {
            None => (0, &[][..]),
            Some(forms) => (forms[row], &forms[..row]),
        };
        match form {
            FORM_NULL => out.extend_from_slice(b"null"),
            FORM_TEXT => {
                let k = before.iter().filter(|&&f| f == FORM_TEXT).count();
                out.extend_from_slice(nth_text(self.texts, k)?);
            }
            form if form <= MAX_FORM => {
                let k = if self.forms.is_some() {
                    before.iter().filter(|&&f| f <= MAX_FORM).count()
                } else {
                    row
                };
                let exponent = if form_has_exponent(form) {
                    let e = before
                        .iter()
                        .filter(|&&f| f <= MAX_FORM && form_has_exponent(f))
                        .count();
                    let mut c = Cursor {
                        b: self.exponents,
                        i: 0,
                    };
                    c.skip_varints(2 * e)?;
                    let width = u8::try_from(c.varint()?).unwrap_or(u8::MAX);
                    (width, c.varint()?)
                } else {
                    (0, 0)
                };
                let mut mantissa = self.base(k);
                if let Some(r) = self.predictor.reference {
                    let Some(&Some(of)) = earlier.get(r.column) else {
                        return Err(BAD_REFERENCE);
                    };
                    mantissa = mantissa.wrapping_add(r.predict(of));
                }
                self.number(k, mantissa, form, exponent)?.write(out);
                return Ok(self.forms.is_none().then_some(mantissa));
            }
            _ => return Err(BodyError("unknown number form")),
        }
        Ok(None)
    }

    /// Number `k`'s base (its mantissa less the reference's part):
    /// summed up to it for delta and delta-of-delta (`mantissa`), read
    /// for `Values`, and for the seasonal modes summed from the
    /// differences that reach it, without restoring the rest.
    fn base(&self, k: usize) -> i64 {
        let difference = |k: usize| {
            let zigzagged = (0..self.width).fold(0u64, |v, p| {
                v | u64::from(self.planes[p * self.numbers + k]) << (8 * p)
            });
            unzigzag(zigzagged)
        };
        match self.predictor.mode {
            Mode::Delta | Mode::DeltaOfDelta => self.mantissa(k),
            Mode::Values => difference(k),
            // b(k) = r(k) + b(k - L) back to below L, where b is the sum
            // of r from the first number.
            Mode::Seasonal(lag) => {
                let below = (0..=k % lag).fold(0i64, |b, i| b.wrapping_add(difference(i)));
                (0..k / lag).fold(below, |b, m| b.wrapping_add(difference(k - m * lag)))
            }
            // d(k) = r(k) + d(k - L), b(k) = the sum of d up to k: each
            // r(t) counts once per number t, t + L, ... up to k.
            Mode::SeasonalDelta(lag) => (0..=k).fold(0i64, |b, t| {
                let times = ((k - t) / lag + 1) as i64;
                b.wrapping_add(difference(t).wrapping_mul(times))
            }),
        }
    }

    /// Number `k`'s base under delta or delta-of-delta: the differences
    /// summed up to it, a chunk at a time, plane by plane (loops the
    /// compiler vectorizes: a lookup sums up to a frame's worth of them
    /// per column).
    fn mantissa(&self, k: usize) -> i64 {
        const CHUNK: usize = 64;
        let mut sum = Undelta::new(self.predictor.mode == Mode::DeltaOfDelta);
        let mut zigzagged = [0u64; CHUNK];
        let mut i = 0;
        while i <= k {
            let m = (k + 1 - i).min(CHUNK);
            let chunk = &mut zigzagged[..m];
            chunk.fill(0);
            for p in 0..self.width {
                let plane = &self.planes[p * self.numbers + i..][..m];
                for (v, &b) in chunk.iter_mut().zip(plane) {
                    *v |= u64::from(b) << (8 * p);
                }
            }
            if sum.of_deltas {
                for &v in chunk.iter() {
                    sum.next(v);
                }
            } else {
                sum.last = chunk
                    .iter()
                    .fold(sum.last, |acc, &v| acc.wrapping_add(unzigzag(v)));
            }
            i += m;
        }
        sum.last
    }
}

/// Sums a column's zig-zagged differences back into its values: deltas,
/// or deltas of deltas (`DELTA_OF_DELTA`).
struct Undelta {
    of_deltas: bool,
    last: i64,
    last_step: i64,
}

impl Undelta {
    fn new(of_deltas: bool) -> Undelta {
        Undelta {
            of_deltas,
            last: 0,
            last_step: 0,
        }
    }

    #[inline]
    fn next(&mut self, zigzagged: u64) -> i64 {
        let got = unzigzag(zigzagged);
        let step = if self.of_deltas {
            self.last_step.wrapping_add(got)
        } else {
            got
        };
        self.last = self.last.wrapping_add(step);
        self.last_step = step;
        self.last
    }
}

/// Piece `row` of a column written as a varint length per piece
/// (`lens`), then the pieces one after the other (`bytes`).
pub(super) fn nth<'a>(lens: &[u8], bytes: &'a [u8], row: usize) -> Result<&'a [u8], BodyError> {
    let mut c = Cursor { b: lens, i: 0 };
    let mut at = 0usize;
    for _ in 0..row {
        at = at
            .checked_add(c.varint()? as usize)
            .ok_or(BodyError("length overflow"))?;
    }
    let len = c.varint()? as usize;
    at.checked_add(len)
        .and_then(|end| bytes.get(at..end))
        .ok_or(BodyError("truncated bytes"))
}
