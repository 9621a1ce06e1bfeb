//! Predictors of a number column: what each mantissa is written as the
//! difference from. Delta and delta-of-delta see one column alone; sensor
//! records carry more than that (issue 35):
//!
//! - columns move together (an illuminance is near a multiple of the
//!   irradiance beside it, a power of a current): a *reference* to an
//!   earlier column of the same template takes a fixed multiple of its
//!   value off first;
//! - readings repeat by the day (irradiance at noon is near yesterday's
//!   at noon): a *seasonal* mode takes off the value `lag` numbers back.
//!
//! The writer picks a predictor per column and frame by the bits its
//! differences would take (`choose`), the cost zstd's literals track; the
//! reader inverts it (`Predictor::restore`, or one number alone in
//! `read`). Both sides compute in
//! wrapping `i64` (and the reference's product in `i128`), so whatever a
//! damaged factor or a huge mantissa makes of it, restoring gives back
//! exactly what was differenced.

use super::zigzag;
use crate::encoding::varint::{BodyError, Cursor, put_varint};

/// A reference's factor is in these fractions (1/4096).
const FACTOR_SHIFT: u32 = 12;
/// Largest factor magnitude written: 2^40 / 4096 = 2^28 times the
/// reference, far past any useful ratio, and small enough that a damaged
/// varint cannot make one the reader's arithmetic would not hold.
const MAX_FACTOR: i64 = 1 << 40;

/// How a column's values (less its reference's prediction: the *base*)
/// are differenced. Values before the lag reaches back are differenced
/// as `Delta`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// The base itself.
    Values,
    /// Minus the one before (the first minus 0).
    Delta,
    /// Delta, twice.
    DeltaOfDelta,
    /// Minus the one `lag` back.
    Seasonal(usize),
    /// Delta, then minus the delta `lag` back.
    SeasonalDelta(usize),
}

/// What a reader says of a reference it cannot follow: to a column that
/// is not all plain numbers (a damaged body; the writer never makes one).
pub(crate) const BAD_REFERENCE: BodyError =
    BodyError("a reference to a column that is not plain numbers");

/// Mode bytes as written.
const VALUES: u8 = 0;
const DELTA: u8 = 1;
const DELTA_OF_DELTA: u8 = 2;
const SEASONAL: u8 = 3;
const SEASONAL_DELTA: u8 = 4;

/// An earlier column of the template whose value times
/// `factor / 4096` (rounded) is taken off this one's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Reference {
    pub column: usize,
    pub factor: i64,
}

impl Reference {
    #[inline]
    pub fn predict(&self, reference: i64) -> i64 {
        let product = i128::from(self.factor) * i128::from(reference);
        ((product + (1 << (FACTOR_SHIFT - 1))) >> FACTOR_SHIFT) as i64
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Predictor {
    pub mode: Mode,
    pub reference: Option<Reference>,
}

impl Default for Predictor {
    fn default() -> Predictor {
        Predictor::plain(false)
    }
}

impl Predictor {
    /// What a column without the `PREDICTED` flag has.
    pub fn plain(delta_of_delta: bool) -> Predictor {
        Predictor {
            mode: if delta_of_delta {
                Mode::DeltaOfDelta
            } else {
                Mode::Delta
            },
            reference: None,
        }
    }

    /// Whether the flags alone say it (no `PREDICTED` part written).
    pub fn is_plain(&self) -> bool {
        self.reference.is_none() && matches!(self.mode, Mode::Delta | Mode::DeltaOfDelta)
    }

    /// Mode byte, lag, reference (see `typed`).
    pub fn write(&self, out: &mut Vec<u8>) {
        match self.mode {
            Mode::Values => out.push(VALUES),
            Mode::Delta => out.push(DELTA),
            Mode::DeltaOfDelta => out.push(DELTA_OF_DELTA),
            Mode::Seasonal(lag) => {
                out.push(SEASONAL);
                put_varint(out, lag as u64);
            }
            Mode::SeasonalDelta(lag) => {
                out.push(SEASONAL_DELTA);
                put_varint(out, lag as u64);
            }
        }
        match self.reference {
            None => out.push(0),
            Some(r) => {
                put_varint(out, r.column as u64 + 1);
                put_varint(out, zigzag(r.factor));
            }
        }
    }

    /// Reads what `write` wrote for column `column` of its template.
    pub fn read(c: &mut Cursor<'_>, column: usize) -> Result<Predictor, BodyError> {
        // A lag past the frame's numbers is sound: the lag is chosen for
        // every row prepared, and a frame holds a prefix of them.
        let lag = |c: &mut Cursor<'_>| -> Result<usize, BodyError> {
            match usize::try_from(c.varint()?) {
                Ok(lag) if lag > 0 => Ok(lag),
                _ => Err(BodyError("seasonal lag out of range")),
            }
        };
        let mode = match c.bytes(1)?[0] {
            VALUES => Mode::Values,
            DELTA => Mode::Delta,
            DELTA_OF_DELTA => Mode::DeltaOfDelta,
            SEASONAL => Mode::Seasonal(lag(c)?),
            SEASONAL_DELTA => Mode::SeasonalDelta(lag(c)?),
            _ => return Err(BodyError("unknown number predictor")),
        };
        let reference = match usize::try_from(c.varint()?).unwrap_or(usize::MAX) {
            0 => None,
            r if r - 1 < column => {
                let factor = super::unzigzag(c.varint()?);
                if factor.unsigned_abs() > MAX_FACTOR as u64 {
                    return Err(BodyError("reference factor out of range"));
                }
                Some(Reference {
                    column: r - 1,
                    factor,
                })
            }
            _ => return Err(BodyError("reference to a later column")),
        };
        Ok(Predictor { mode, reference })
    }

    /// Replaces `values` by what is written for them: their base
    /// (`reference`: the referenced column's values, at least as many),
    /// differenced.
    pub fn difference(&self, values: &mut [i64], reference: Option<&[i64]>) {
        if let (Some(r), Some(of)) = (self.reference, reference) {
            for (v, &x) in values.iter_mut().zip(of) {
                *v = v.wrapping_sub(r.predict(x));
            }
        }
        let delta = |v: &mut [i64]| {
            for k in (1..v.len()).rev() {
                v[k] = v[k].wrapping_sub(v[k - 1]);
            }
        };
        match self.mode {
            Mode::Values => {}
            Mode::Delta => delta(values),
            Mode::DeltaOfDelta => {
                delta(values);
                delta(values);
            }
            Mode::Seasonal(lag) => {
                for k in (1..values.len()).rev() {
                    let back = if k >= lag { k - lag } else { k - 1 };
                    values[k] = values[k].wrapping_sub(values[back]);
                }
            }
            Mode::SeasonalDelta(lag) => {
                delta(values);
                for k in (lag..values.len()).rev() {
                    values[k] = values[k].wrapping_sub(values[k - lag]);
                }
            }
        }
    }

    /// Undoes `difference`: `values`, its differences, become the values
    /// again (`reference`: as `difference` had it).
    pub fn restore(&self, values: &mut [i64], reference: Option<&[i64]>) {
        let undelta = |v: &mut [i64]| {
            for k in 1..v.len() {
                v[k] = v[k].wrapping_add(v[k - 1]);
            }
        };
        match self.mode {
            Mode::Values => {}
            Mode::Delta => undelta(values),
            Mode::DeltaOfDelta => {
                undelta(values);
                undelta(values);
            }
            Mode::Seasonal(lag) => {
                for k in 1..values.len() {
                    let back = if k >= lag { k - lag } else { k - 1 };
                    values[k] = values[k].wrapping_add(values[back]);
                }
            }
            Mode::SeasonalDelta(lag) => {
                for k in lag..values.len() {
                    values[k] = values[k].wrapping_add(values[k - lag]);
                }
                undelta(values);
            }
        }
        if let (Some(r), Some(of)) = (self.reference, reference) {
            for (v, &x) in values.iter_mut().zip(of) {
                *v = v.wrapping_add(r.predict(x));
            }
        }
    }
}

/// Bits a zig-zagged difference takes: what the choice weighs.
#[inline]
fn bits(v: i64) -> u64 {
    u64::from(64 - (zigzag(v) | 1).leading_zeros())
}

/// An earlier column a column may refer to: its place in the template,
/// its values, and the sum of their squares (`norm`).
pub(crate) struct Candidate<'a> {
    pub column: usize,
    pub values: &'a [i64],
    pub norm: f64,
}

/// Every how many values a reference is weighed and fitted: the
/// likeliest columns and their factors come out about the same from a
/// quarter of them, for a quarter of the cost.
const FIT_SAMPLE: usize = 4;

/// The sum of the squares of `values` (every `FIT_SAMPLE`-th), as
/// `choose` weighs references.
pub(crate) fn norm(values: &[i64]) -> f64 {
    values
        .iter()
        .step_by(FIT_SAMPLE)
        .map(|&x| (x as f64) * (x as f64))
        .sum()
}

/// The predictor that writes `values` in the fewest bits, and the
/// values of the column it refers to: every mode on the values alone,
/// and on what is left after the likeliest of the `earlier` columns;
/// `lag`, if any, is the seasonal modes' (2 or more, below
/// `values.len()`). `base` is scratch.
pub(crate) fn choose<'a>(
    values: &[i64],
    earlier: &[Candidate<'a>],
    lag: Option<usize>,
    base: &mut Vec<i64>,
) -> (Predictor, Option<&'a [i64]>) {
    let (best_bits, mode) = cheapest_mode(values, lag);
    let alone = Predictor {
        mode,
        reference: None,
    };
    // Proportional columns first: the cosine of the two, squared.
    let own = norm(values);
    if own == 0.0 {
        return (alone, None);
    }
    // The one reference tried: a pass over the column each, and on the
    // TMY3 readings trying the second likeliest too saved nothing.
    let mut likeliest: Option<(f64, Reference, &'a [i64])> = None;
    for e in earlier {
        if e.norm == 0.0 {
            continue;
        }
        let dot: f64 = values
            .iter()
            .zip(e.values)
            .step_by(FIT_SAMPLE)
            .map(|(&x, &r)| (x as f64) * (r as f64))
            .sum();
        let factor = (dot / e.norm * f64::from(1u32 << FACTOR_SHIFT)).round();
        if factor == 0.0 || !factor.is_finite() || factor.abs() > MAX_FACTOR as f64 {
            continue;
        }
        let likeness = dot * dot / (own * e.norm);
        if likeliest.is_none_or(|(l, _, _)| likeness > l) {
            let reference = Reference {
                column: e.column,
                factor: factor as i64,
            };
            likeliest = Some((likeness, reference, e.values));
        }
    }
    if let Some((_, reference, of)) = likeliest {
        base.clear();
        base.extend(
            values
                .iter()
                .zip(of)
                .map(|(&x, &r)| x.wrapping_sub(reference.predict(r))),
        );
        let (bits, mode) = cheapest_mode(base, lag);
        if bits < best_bits {
            let referring = Predictor {
                mode,
                reference: Some(reference),
            };
            return (referring, Some(of));
        }
    }
    (alone, None)
}

/// Every how many values `cheapest_mode` weighs: on the TMY3 readings
/// every second one chooses within 0.5 % of the bytes all of them do, for
/// half the instructions (every fourth: 0.9 % more bytes).
const SAMPLE: usize = 2;

/// The mode whose differences of `base` take the fewest bits, and how
/// many. Ties go to the simpler mode (earlier in the list).
fn cheapest_mode(base: &[i64], lag: Option<usize>) -> (u64, Mode) {
    let n = base.len();
    let lag = lag.filter(|&l| l >= 2 && l + 1 < n);
    let mut costs = [0u64; 5];
    // Weighed where every mode reaches back in full, so that all are
    // weighed on the same values.
    let from = lag.map_or(2, |l| l + 1).min(n);
    let mut k = from;
    while k < n {
        let (b, b1, b2) = (base[k], base[k - 1], base[k - 2]);
        let d = b.wrapping_sub(b1);
        costs[0] += bits(b);
        costs[1] += bits(d);
        costs[2] += bits(d.wrapping_sub(b1.wrapping_sub(b2)));
        if let Some(lag) = lag {
            let (s, s1) = (base[k - lag], base[k - lag - 1]);
            costs[3] += bits(b.wrapping_sub(s));
            costs[4] += bits(d.wrapping_sub(s.wrapping_sub(s1)));
        }
        k += SAMPLE;
    }
    let seasonal = |c: u64| if lag.is_some() { c } else { u64::MAX };
    let l = lag.unwrap_or(0);
    [
        (costs[1], Mode::Delta),
        (costs[2], Mode::DeltaOfDelta),
        (costs[0], Mode::Values),
        (seasonal(costs[3]), Mode::Seasonal(l)),
        (seasonal(costs[4]), Mode::SeasonalDelta(l)),
    ]
    .into_iter()
    .min_by_key(|&(c, _)| c)
    .unwrap_or((u64::MAX, Mode::Delta))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn mode() -> impl Strategy<Value = Mode> {
        prop_oneof![
            Just(Mode::Values),
            Just(Mode::Delta),
            Just(Mode::DeltaOfDelta),
            (1usize..40).prop_map(Mode::Seasonal),
            (1usize..40).prop_map(Mode::SeasonalDelta),
        ]
    }

    proptest! {
        /// Any values, any predictor, any reference: restoring gives
        /// back what was differenced, to the bit.
        #[test]
        fn restore_undoes_difference(
            values in proptest::collection::vec(any::<i64>(), 0..200),
            of in proptest::collection::vec(any::<i64>(), 200),
            mode in mode(),
            factor in proptest::option::of(-MAX_FACTOR..=MAX_FACTOR),
        ) {
            let p = Predictor {
                mode,
                reference: factor.map(|factor| Reference { column: 0, factor }),
            };
            let mut v = values.clone();
            p.difference(&mut v, Some(&of));
            p.restore(&mut v, Some(&of));
            prop_assert_eq!(v, values);
        }

        /// What `write` writes, `read` reads.
        #[test]
        fn predictors_read_back(mode in mode(), factor in proptest::option::of(-MAX_FACTOR..=MAX_FACTOR)) {
            let p = Predictor {
                mode,
                reference: factor.map(|factor| Reference { column: 2, factor }),
            };
            let mut out = Vec::new();
            p.write(&mut out);
            let mut c = Cursor { b: &out, i: 0 };
            prop_assert_eq!(Predictor::read(&mut c, 3), Ok(p));
            prop_assert_eq!(c.i, out.len());
            // A column may only refer to one before it.
            if p.reference.is_some() {
                let mut c = Cursor { b: &out, i: 0 };
                prop_assert!(Predictor::read(&mut c, 2).is_err());
            }
        }
    }

    #[test]
    fn a_proportional_column_and_a_daily_one_are_found() {
        // An hourly irradiance-like curve, and a column 110 times it.
        let sun: Vec<i64> = (0..480)
            .map(|h: i64| {
                let hour = h % 24;
                if (6..18).contains(&hour) {
                    (6 - (hour - 12).abs()) * 150 + (h / 24) % 3
                } else {
                    0
                }
            })
            .collect();
        let lux: Vec<i64> = sun.iter().map(|&s| s * 110 + s % 7).collect();
        let mut base = Vec::new();
        let (p, _) = choose(&sun, &[], Some(24), &mut base);
        assert!(
            matches!(p.mode, Mode::Seasonal(24) | Mode::SeasonalDelta(24)),
            "{p:?}"
        );
        let earlier = [Candidate {
            column: 0,
            values: &sun,
            norm: norm(&sun),
        }];
        let (p, of) = choose(&lux, &earlier, Some(24), &mut base);
        assert_eq!(of, Some(&sun[..]));
        let r = p.reference.expect("refers to the irradiance");
        assert_eq!((r.column, r.factor / 4096), (0, 110));
        // Without candidates or a lag, a wandering series: delta, as
        // before predictors.
        let walk: Vec<i64> = (0..100i64)
            .scan(1000, |x, k| {
                *x += (k * 7) % 5 - 2;
                Some(*x)
            })
            .collect();
        assert_eq!(
            choose(&walk, &[], None, &mut base),
            (Predictor::plain(false), None)
        );
    }
}
