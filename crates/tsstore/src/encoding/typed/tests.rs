//! Typed bodies give back the plain body byte for byte, for generated
//! columns of every kind, and damaged ones are refused.

use super::records::unpack_records;
use super::*;
use crate::encoding::columns::{self, Prepared, Unpacked};
use crate::encoding::split::Record;
use proptest::prelude::*;

/// The plain and typed bodies of the first `n` of `records`, prepared
/// once as `FrameCodec::pack` does.
fn bodies(records: &[(i64, Vec<u8>)], n: usize) -> (Vec<u8>, Vec<u8>) {
    let refs: Vec<Record<'_>> = records.iter().map(|(t, p)| Record::new(*t, p)).collect();
    let prepared = Prepared::new(&refs, true);
    let (mut plain, mut typed) = (Vec::new(), Vec::new());
    prepared.body(n, true, &mut typed);
    prepared.body(n, false, &mut plain);
    (plain, typed)
}

/// The plain body of `records`, its typed form, and the plain body
/// that comes back: the same bytes, and the same records.
fn round_trip(records: &[(i64, Vec<u8>)], n: usize) -> Result<(), TestCaseError> {
    round_trip_taking(records, n).map(|_| ())
}

/// `round_trip`; also whether the direct rebuild (`unpack_records`)
/// took the body, giving the same records.
fn round_trip_taking(records: &[(i64, Vec<u8>)], n: usize) -> Result<bool, TestCaseError> {
    let (plain, typed) = bodies(records, n);
    let mut s = Scratch::default();
    let mut back = Vec::new();
    unpack(&typed, &mut back, usize::MAX, &mut s)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&back, &plain);
    let mut out = Unpacked::default();
    columns::decode(&back, &mut out).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(out.len(), n);
    for (i, (t, p)) in records[..n].iter().enumerate() {
        prop_assert_eq!(out.stamps[i], *t);
        prop_assert_eq!(out.payload(i), &p[..]);
    }
    let mut direct = Unpacked::default();
    let taken = unpack_records(&typed, &mut direct, usize::MAX, &mut s)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    if taken {
        prop_assert_eq!(&direct, &out);
    }
    // A lookup by time in the typed body finds what it finds in the
    // plain one, and nothing where there is nothing.
    let (mut one, mut want) = (Vec::new(), Vec::new());
    let probes = records[..n].iter().map(|(t, _)| *t).step_by(1 + n / 16);
    let between = records[..n].iter().map(|(t, _)| t + 1).step_by(1 + n / 8);
    for ts in probes
        .chain(between)
        .chain([records[0].0 - 1, records[n - 1].0 + 1])
    {
        one.clear();
        want.clear();
        let got = find(&typed, ts, &mut one).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let expected =
            columns::find(&plain, ts, &mut want).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(got, expected);
        prop_assert_eq!(&one, &want);
    }
    Ok(taken)
}

/// A JSON value's text of one of the kinds columns hold.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        // Numbers as sensors write them, and every spelling JSON has.
        (-100_000i64..100_000, 0u32..4).prop_map(|(m, s)| {
            let p = 10i64.pow(s);
            let sign = if m < 0 { "-" } else { "" };
            let (i, f) = (m.unsigned_abs() / p as u64, m.unsigned_abs() % p as u64);
            if s == 0 {
                format!("{m}")
            } else {
                format!("{sign}{i}.{f:0w$}", w = s as usize)
            }
        }),
        any::<i64>().prop_map(|v| v.to_string()),
        any::<u64>().prop_map(|v| v.to_string()),
        any::<f64>()
            .prop_filter("finite", |v| v.is_finite())
            .prop_map(|v| format!("{v:e}")),
        any::<f64>()
            .prop_filter("finite", |v| v.is_finite())
            .prop_map(|v| v.to_string()),
        "-?(0|[1-9][0-9]{0,22})(\\.[0-9]{1,22})?([eE][+-]?[0-9]{1,22})?",
        Just("-0".to_string()),
        Just("null".to_string()),
        Just("true".to_string()),
        Just("false".to_string()),
        "\"[a-z]{0,3}\"",
        "\"[ -~]{0,40}\"".prop_map(|s| serde_json::to_string(&s).unwrap()),
        Just("[1,2]".to_string()),
        Just("{\"a\":1}".to_string()),
    ]
}

/// Records of a few shapes: keys from a small set (so shapes repeat
/// and fields go missing), values of any kind, some kept whole
/// (spacing, not an object).
fn records() -> impl Strategy<Value = Vec<(i64, Vec<u8>)>> {
    let record = prop_oneof![
        8 => (proptest::collection::vec((0usize..5, value()), 0..6), 0usize..4).prop_map(
            |(pairs, style)| {
                // Compact, spaced as Python writes JSON, and spacings
                // that are neither (split compact or kept whole).
                let (colon, comma) = [(":", ","), (": ", ", "), (":  ", " , "), (": ", ",")][style];
                let mut seen = Vec::new();
                let body: Vec<String> = pairs
                    .into_iter()
                    .filter(|(k, _)| !seen.contains(k) && { seen.push(*k); true })
                    .map(|(k, v)| format!("\"k{k}\"{colon}{v}"))
                    .collect();
                format!("{{{}}}", body.join(comma))
            }
        ),
        1 => Just("{\"a\": 1}".to_string()),
        1 => "[ -~]{0,20}",
    ];
    let step = prop_oneof![Just(1_000_000_000i64), 1i64..5, 1i64..i64::MAX / 4096];
    proptest::collection::vec((step, record), 1..300).prop_map(|rows| {
        let mut ts = -(1i64 << 40);
        rows.into_iter()
            .map(|(step, p)| {
                ts += step;
                (ts, p.into_bytes())
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    /// Any prefix, as `pack` writes several per prepared run.
    #[test]
    fn typed_bodies_give_back_the_plain_body(records in records(), cut in 0.0f64..1.0) {
        let n = 1 + ((records.len() - 1) as f64 * cut) as usize;
        round_trip(&records, n)?;
        round_trip(&records, records.len())?;
    }

    /// Columns of one kind each, long enough that every codec and
    /// both differencings are chosen somewhere.
    #[test]
    fn every_codec_round_trips(
        kind in 0usize..4,
        values in proptest::collection::vec(value(), 1..200),
        base in any::<i32>(),
    ) {
        let records: Vec<(i64, Vec<u8>)> = values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let i = i as i64;
                let v = match kind {
                    0 => v.clone(),
                    1 => (i64::from(base) + i * 7).to_string(),
                    2 => format!("\"s{}\"", i % 3),
                    _ => format!("{}.{:02}", i * i, i % 100),
                };
                (i * 60, format!("{{\"v\":{v}}}").into_bytes())
            })
            .collect();
        let taken = round_trip_taking(&records, records.len())?;
        // Plain numbers, dictionaries and texts in one template are the
        // direct rebuild's.
        prop_assert!(taken, "kind {} rebuilt through the plain body", kind);
    }
}

/// Hourly sensor readings as the predictors expect them: an
/// irradiance-like curve by the day, a column near a multiple of it, a
/// wandering decimal, a counter, and huge mantissas whose predictions
/// overflow (wrapping arithmetic must still give them back).
fn sensor_records(seed: u64, days: usize, noise: i64) -> Vec<(i64, Vec<u8>)> {
    let mut state = seed | 1;
    let mut random = move |m: i64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % m.max(1) as u64) as i64
    };
    let mut temperature = 150i64;
    (0..days as i64 * 24)
        .map(|h| {
            let hour = h % 24;
            let sun = if (6..18).contains(&hour) {
                (6 - (hour - 12).abs()) * 150 + random(noise + 1)
            } else {
                0
            };
            temperature += random(7) - 3;
            let huge = if h % 2 == 0 {
                999_999_999_999_999_999 - random(1000)
            } else {
                -999_999_999_999_999_999 + random(1000)
            };
            let p = format!(
                "{{\"ghi\":{sun},\"lux\":{},\"t\":{}.{},\"n\":{h},\"big\":{huge},\"ratio\":{}}}",
                sun * 110 + random(noise * 10 + 1),
                temperature / 10,
                temperature.rem_euclid(10),
                huge / 7 + random(3),
            );
            (
                1_700_000_000_000_000_000 + h * 3_600_000_000_000,
                p.into_bytes(),
            )
        })
        .collect()
}

/// The predictors each column of the first template of a typed body
/// has (`None`: not a number column).
fn predictors(typed: &[u8]) -> Vec<Option<predict::Predictor>> {
    let mut c = Cursor { b: typed, i: 0 };
    let n = stamps(&mut c, |_, _| {}).unwrap();
    let layout = Layout::parse(&mut c, n).unwrap();
    (0..layout.templates[0].keys.len())
        .map(
            |j| match ColumnView::parse(&mut c, layout.rows[0], j).unwrap() {
                ColumnView::Numbers(v) => Some(v.predictor()),
                _ => None,
            },
        )
        .collect()
}

#[test]
fn sensor_columns_refer_and_repeat_by_the_day() {
    use predict::Mode;
    let records = sensor_records(7, 10, 5);
    let (_, typed) = bodies(&records, records.len());
    let p = predictors(&typed);
    let ghi = p[0].unwrap();
    assert!(
        matches!(ghi.mode, Mode::Seasonal(24) | Mode::SeasonalDelta(24)),
        "{ghi:?}"
    );
    let lux = p[1].unwrap();
    assert_eq!(
        lux.reference.map(|r| (r.column, r.factor >> 12)),
        Some((0, 110)),
        "{lux:?}"
    );
    round_trip(&records, records.len()).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Any prefix of predicted columns reads back: a frame holds a
    /// prefix of the rows its predictors were chosen for, so a lag may
    /// reach past it.
    #[test]
    fn predicted_columns_read_back(
        seed in any::<u64>(),
        days in 1usize..8,
        noise in 0i64..200,
        cut in 0.0f64..1.0,
    ) {
        let records = sensor_records(seed, days, noise);
        let n = 1 + ((records.len() - 1) as f64 * cut) as usize;
        round_trip(&records, n)?;
        round_trip(&records, records.len())?;
    }
}

/// Records spaced as Python's `json.dumps` writes them are split into
/// columns as compact ones are: their typed bodies differ only by the
/// templates' spacing marker.
#[test]
fn spaced_records_are_split_as_compact_ones_are() {
    let series = |colon: &str, comma: &str| -> Vec<(i64, Vec<u8>)> {
        (0..500i64)
            .map(|i| {
                let p = format!(
                    "{{\"t\"{colon}{}.{}{comma}\"rh\"{colon}{}{comma}\"id\"{colon}\"a{}\"}}",
                    20 + i % 7,
                    i % 10,
                    40 + i % 3,
                    i % 4
                );
                (i * 1_000_000_000, p.into_bytes())
            })
            .collect()
    };
    let (compact, spaced) = (series(":", ","), series(": ", ", "));
    let (_, compact_body) = bodies(&compact, compact.len());
    let (_, spaced_body) = bodies(&spaced, spaced.len());
    // The key count varint grows by a byte for the marker.
    assert_eq!(spaced_body.len(), compact_body.len() + 1);
    round_trip(&spaced, spaced.len()).unwrap();
}

#[test]
fn a_steady_series_of_decimals_shrinks() {
    let records: Vec<(i64, Vec<u8>)> = (0..500)
        .map(|i| {
            let p = format!(
                "{{\"t\":{}.{},\"h\":{},\"on\":true}}",
                20 + i % 3,
                i % 10,
                40 + i % 5
            );
            (
                1_700_000_000_000_000_000 + i * 60_000_000_000,
                p.into_bytes(),
            )
        })
        .collect();
    let (plain, typed) = bodies(&records, records.len());
    // Timestamps one byte each, values about one byte each: under
    // half the plain body.
    assert!(
        typed.len() * 2 < plain.len(),
        "{} of {}",
        typed.len(),
        plain.len()
    );
}

#[test]
fn damaged_typed_bodies_are_refused_not_trusted() {
    let records: Vec<(i64, Vec<u8>)> = (0..50)
        .map(|i| {
            (
                i,
                format!("{{\"a\":{i}.5,\"b\":\"x{}\"}}", i % 2).into_bytes(),
            )
        })
        .collect();
    refuses_damage(&records, 8);
    // Predicted columns too: references and a seasonal lag to damage
    // (a bit of each byte: all eight took minutes under emulated armv7).
    let records = sensor_records(3, 3, 5);
    let (_, typed) = bodies(&records, records.len());
    let predicted = predictors(&typed).into_iter().flatten();
    assert!(
        predicted.filter(|p| !p.is_plain()).count() >= 2,
        "predicted columns"
    );
    refuses_damage(&records, 1);
}

/// The typed body of `records`, cut short anywhere: an error; `bits`
/// bits of each byte flipped in turn: an error or some body, never a
/// panic (the frame's checksum is what finds damage); over its bound:
/// an error.
fn refuses_damage(records: &[(i64, Vec<u8>)], bits: usize) {
    let (plain, typed) = bodies(records, records.len());
    let mut s = Scratch::default();
    let mut out = Vec::new();
    for cut in 0..typed.len() {
        assert!(
            unpack(&typed[..cut], &mut out, usize::MAX, &mut s).is_err(),
            "cut at {cut}"
        );
        assert!(find(&typed[..cut], 7, &mut out).is_err(), "cut at {cut}");
    }
    let probe = records[records.len() * 2 / 3].0;
    for i in 0..typed.len() {
        for b in 0..bits {
            let mut bad = typed.clone();
            bad[i] ^= 1 << ((i + b) % 8);
            let _ = unpack(&bad, &mut out, 1 << 20, &mut s);
            let _ = find(&bad, probe, &mut out);
            let _ = unpack_records(&bad, &mut Unpacked::default(), 1 << 20, &mut s);
        }
    }
    assert!(
        unpack(&typed, &mut out, plain.len() - 1, &mut s).is_err(),
        "over its bound"
    );
}
