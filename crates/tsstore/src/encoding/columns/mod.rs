//! The body of a compressed frame before zstd: records turned on their
//! side so that like sits next to like.
//!
//! Sensor records are flat JSON objects that repeat their keys and change
//! their values a little at a time. Written one after another, zstd sees
//! each key again and again between values; laid out in columns (every
//! record's timestamp delta, then its shape, then each key's values in a
//! row) the keys appear once per frame and each column holds one kind of
//! value. Measured on the pvlib weather files this nearly doubles what
//! zstd-1 alone keeps in a 4 KiB block (docs/BENCHMARKS.md).
//!
//! The transform is exact by construction: a record is split into a
//! template (its keys) and value texts only if rebuilding it gives back
//! the very same bytes; anything else (spacing, nesting at the top, other
//! data types, a key with an escape) is kept whole as a raw record.
//!
//! Layout (varints are unsigned LEB128):
//!
//! ```text
//! first_ts            i64 LE
//! n                   varint, records (≥ 1)
//! n - 1 × delta       varint, timestamp minus the previous one (≥ 1)
//! t                   varint, templates
//! t × template        varint k, then k × (varint len, key bytes as written)
//! n × shape           varint: 0 = raw, s + 1 = template s
//! raw column          varint len per raw record, then their bytes
//! value columns       per template, per key: varint len per record of
//!                     that template, then the value texts
//! ```

mod read;
mod write;

pub use crate::encoding::split::MAX_KEYS;
pub use crate::encoding::split::laid::Laid;
pub use crate::encoding::varint::BodyError;
pub use read::{BodyView, Unpacked, decode, find};
pub(crate) use read::{SLACK, Separators, head, put_piece};
pub use write::{Prepared, encode};

/// Most templates one frame keeps; records of further shapes are raw.
pub const MAX_TEMPLATES: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::split::{Checked, Record, Split, Template};
    use proptest::prelude::*;
    use std::sync::Arc;

    fn unsplit(records: &[(i64, Vec<u8>)]) -> Vec<Record<'_>> {
        records.iter().map(|(t, p)| Record::new(*t, p)).collect()
    }

    fn round_trip(records: &[(i64, Vec<u8>)], columnar: bool) -> Vec<u8> {
        let mut body = Vec::new();
        encode(&unsplit(records), columnar, false, &mut body);
        if columnar {
            // Split as an insert splits JSON (in the check's pass) and
            // laid out as its batches hold them: the very same body.
            let mut splitter = crate::encoding::split::Splitter::default();
            let splits: Vec<_> = records
                .iter()
                .map(|(_, p)| {
                    let mut ends = Vec::new();
                    let checked = splitter.check_json(p, &mut ends);
                    (checked, splitter.template().cloned(), ends)
                })
                .collect();
            // Laid out by the insert as a queue holds them: in batches of
            // four records (so runs of rows break at their ends), the
            // second half of each appended to the first (as small inserts
            // are), and every third record laid out twice, its first row
            // unused (as when one is deleted while staged). Every fifth
            // record the insert split is left for the framer to split (as
            // a lone `put` among batches is), between rows of its shape.
            let mut lays: Vec<(usize, Arc<Template>, Laid, Laid)> = Vec::new();
            let mut rows = Vec::new();
            for (i, ((_, p), (checked, template, ends))) in records.iter().zip(&splits).enumerate()
            {
                let (batch, second) = (i / 4, i % 4 >= 2);
                rows.push(match (checked, template) {
                    (Checked::Split, Some(t)) => {
                        let k = match lays
                            .iter()
                            .position(|(b, tt, _, _)| *b == batch && Arc::ptr_eq(tt, t))
                        {
                            Some(k) => k,
                            None => {
                                let keys = t.keys.len();
                                lays.push((
                                    batch,
                                    Arc::clone(t),
                                    Laid::new(keys, 0),
                                    Laid::new(keys, 1),
                                ));
                                lays.len() - 1
                            }
                        };
                        let laid = if second {
                            &mut lays[k].3
                        } else {
                            &mut lays[k].2
                        };
                        if i % 3 == 0 {
                            laid.push(p, t, ends).unwrap();
                        }
                        Some((k, second, laid.push(p, t, ends).unwrap()))
                    }
                    _ => None,
                });
            }
            let firsts: Vec<u32> = lays.iter_mut().map(|(_, _, a, b)| a.append(b)).collect();
            let laid_out: Vec<Record<'_>> = records
                .iter()
                .zip(&splits)
                .zip(&rows)
                .enumerate()
                .map(|(i, (((ts, p), (checked, template, _)), row))| Record {
                    timestamp: *ts,
                    payload: p,
                    split: match (row, template, checked) {
                        (Some((k, second, row)), Some(t), _) if i % 5 != 4 => {
                            Split::Laid(t, &lays[*k].2, row + if *second { firsts[*k] } else { 0 })
                        }
                        (_, _, Checked::Whole) => Split::Whole,
                        _ => Split::Unknown,
                    },
                })
                .collect();
            let mut laid_body = Vec::new();
            encode(&laid_out, true, false, &mut laid_body);
            assert_eq!(laid_body, body, "split and laid out by the insert");
        }
        // Rebuilt all at once (a range, the frame cache) and one by one.
        let mut out = Unpacked::default();
        decode(&body, &mut out).unwrap();
        let back: Vec<(i64, Vec<u8>)> = (0..out.len())
            .map(|i| (out.stamps[i], out.payload(i).to_vec()))
            .collect();
        assert_eq!(&back, records);
        let view = BodyView::parse(&body).unwrap();
        for (i, (_, payload)) in records.iter().enumerate() {
            let mut one = b"kept".to_vec();
            view.write_record(i, &mut one);
            assert_eq!((&one[..4], &one[4..]), (&b"kept"[..], &payload[..]));
            assert_eq!(view.record_len(i), payload.len());
        }
        // Each record found alone, and a time just before it found only
        // if it is a record's.
        let n = records.len();
        for (i, (ts, payload)) in records.iter().enumerate() {
            let mut one = Vec::new();
            assert_eq!(find(&body, *ts, &mut one), Ok((n, Some(i))));
            assert_eq!(&one, payload);
            let before = records.iter().position(|(t, _)| *t == ts - 1);
            let mut other = Vec::new();
            assert_eq!(find(&body, ts - 1, &mut other), Ok((n, before)));
            assert_eq!(other, before.map_or(vec![], |b| records[b].1.clone()));
        }
        body
    }

    #[test]
    fn flat_objects_become_columns_and_the_rest_stays_whole() {
        let records: Vec<(i64, Vec<u8>)> = [
            r#"{"temp":21.50,"room":"lab, \"east\"","ok":true}"#,
            r#"{"temp":21.75,"room":"lab","ok":false}"#,
            r#"{ "temp": 22 }"#,
            r#"{"nested":{"a":[1,{"b":"}"}]},"s":"x,y"}"#,
            r#"[1,2]"#,
            r#"{}"#,
            r#"{"esc\"aped":1}"#,
            "not json at all {",
        ]
        .iter()
        .enumerate()
        .map(|(i, r)| (1_000 + i as i64 * 7, r.as_bytes().to_vec()))
        .collect();
        let body = round_trip(&records, true);
        let text = String::from_utf8_lossy(&body);
        // The keys of the first two records are written once.
        assert_eq!(text.matches("temp").count(), 2, "{text}");
        round_trip(&records, false);
    }

    #[test]
    fn many_shapes_fall_back_to_raw_past_the_template_bound() {
        let records: Vec<(i64, Vec<u8>)> = (0..MAX_TEMPLATES as i64 + 10)
            .map(|i| (i + 1, format!(r#"{{"k{i}":{i}}}"#).into_bytes()))
            .collect();
        round_trip(&records, true);
    }

    #[test]
    fn damaged_bodies_are_errors_not_panics() {
        let records: Vec<(i64, Vec<u8>)> = (1..50)
            .map(|i| (i, format!(r#"{{"a":{i},"b":"x"}}"#).into_bytes()))
            .collect();
        let mut body = Vec::new();
        encode(&unsplit(&records), true, false, &mut body);
        let (mut out, mut payloads) = (Unpacked::default(), Vec::new());
        for cut in 0..body.len() {
            assert!(decode(&body[..cut], &mut out).is_err());
            assert!(find(&body[..cut], 25, &mut payloads).is_err());
        }
        for i in 0..body.len() {
            for bit in [0x01, 0x80] {
                let mut bad = body.clone();
                bad[i] ^= bit;
                let _ = decode(&bad, &mut out);
                let _ = find(&bad, 25, &mut payloads);
            }
        }
    }

    fn json_like() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..40),
            proptest::collection::vec(
                (
                    // Keys long enough that a separator is over 32 bytes.
                    "([a-z\"\\\\]{0,4}|[a-z]{12,40})",
                    "(-?[0-9]{1,4}(\\.[0-9]{1,3})?|\"[a-z,\"\\\\}]{0,5}\"|true|null|\\[1,\\{\\}\\])"
                ),
                0..5
            )
            .prop_map(|kv| {
                let body: Vec<String> = kv.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                format!("{{{}}}", body.join(",")).into_bytes()
            }),
            // Few keys, so that records often have the shape of the one
            // before (`split_as`), and near misses of it: a key that is
            // another's prefix, text after the object.
            (
                proptest::collection::vec(
                    (
                        "(a|ab|b)",
                        "(-?[0-9]{1,3}|\"[a-z,:}]{0,3}\"|\\{\"a\":1\\}|\"[a-z]{126,200}\")"
                    ),
                    1..4
                ),
                prop_oneof![Just(""), Just(""), Just(" "), Just("}"), Just(",\"a\":1")],
            )
                .prop_map(|(kv, tail)| {
                    let body: Vec<String> =
                        kv.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                    format!("{{{}}}{tail}", body.join(",")).into_bytes()
                }),
        ]
    }

    proptest! {
        #[test]
        fn any_records_come_back_byte_for_byte(
            start in 1i64..1_000_000,
            // Steps that repeat too (regular series), and values of 128
            // bytes or more (lengths of two bytes).
            steps in proptest::collection::vec(
                (prop_oneof![Just(7i64), Just(3_600_000_000_000), 1i64..1_000_000_000], json_like()),
                1..60,
            ),
            columnar in any::<bool>(),
        ) {
            let mut ts = start;
            let records: Vec<(i64, Vec<u8>)> = steps
                .into_iter()
                .map(|(d, p)| { ts += d; (ts, p) })
                .collect();
            round_trip(&records, columnar);
        }
    }
}
