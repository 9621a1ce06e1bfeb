//! The streaming aggregator and the batch function agree with a naive
//! recomputation that groups records by window first.

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use tsstore::aggregate::{AggSpec, Aggregator, aggregate};

#[derive(Debug, Clone)]
enum V {
    Int(i64),
    Float(f64),
    Text(&'static str),
}

impl V {
    fn json(&self) -> Value {
        match self {
            V::Int(i) => json!(i),
            V::Float(f) => json!(f),
            V::Text(s) => json!(s),
        }
    }
    fn num(&self) -> Option<f64> {
        match self {
            V::Int(i) => Some(*i as f64),
            V::Float(f) => Some(*f),
            V::Text(_) => None,
        }
    }
}

fn v() -> impl Strategy<Value = V> {
    prop_oneof![
        4 => (-5i64..6).prop_map(V::Int),
        2 => prop::sample::select(vec![-2.5, 0.5, 1.5, 3.0, 1e-3]).prop_map(V::Float),
        1 => prop::sample::select(vec!["on", "off"]).prop_map(V::Text),
    ]
}

/// Records: timestamp steps and an optional value for each of two fields.
fn records() -> impl Strategy<Value = Vec<(i64, Option<V>, Option<V>)>> {
    prop::collection::vec(
        (1i64..300, prop::option::of(v()), prop::option::of(v())),
        0..120,
    )
    .prop_map(|steps| {
        let mut ts = 0;
        steps
            .into_iter()
            .map(|(d, a, b)| {
                ts += d;
                (ts, a, b)
            })
            .collect()
    })
}

fn record_json(a: &Option<V>, b: &Option<V>) -> Vec<u8> {
    let mut m = Map::new();
    if let Some(a) = a {
        m.insert("a".into(), a.json());
    }
    if let Some(b) = b {
        m.insert("b".into(), b.json());
    }
    serde_json::to_vec(&m).unwrap()
}

/// The documented result for one field over one window's values.
fn naive_field(out: &mut Map<String, Value>, name: &str, fns: &[&str], vals: &[&V], partial: bool) {
    let nums: Vec<&V> = vals.iter().copied().filter(|v| v.num().is_some()).collect();
    if nums.is_empty() {
        if let Some(last) = vals.last() {
            out.insert(name.into(), last.json());
        }
        return;
    }
    let all_int = nums.iter().all(|v| matches!(v, V::Int(_)));
    let int_sum: i64 = nums
        .iter()
        .map(|v| if let V::Int(i) = v { *i } else { 0 })
        .sum();
    let float_sum = nums.iter().fold(0.0, |s, v| s + v.num().unwrap());
    let pick = |better: fn(f64, f64) -> bool| {
        let mut best = nums[0];
        for v in &nums[1..] {
            if better(v.num().unwrap(), best.num().unwrap()) {
                best = v;
            }
        }
        best.json()
    };
    for f in fns {
        let value = match *f {
            "sum" if partial => Value::Null,
            "sum" if all_int => json!(int_sum),
            "sum" => json!(float_sum),
            "avg" if all_int => json!(int_sum as f64 / nums.len() as f64),
            "avg" => json!(float_sum / nums.len() as f64),
            "min" => pick(|a, b| a < b),
            "max" => pick(|a, b| a > b),
            "count" => json!(nums.len()),
            "first" => nums[0].json(),
            "last" => nums[nums.len() - 1].json(),
            other => panic!("{other}"),
        };
        let key = if fns.len() == 1 {
            name.to_string()
        } else {
            format!("{name}_{f}")
        };
        out.insert(key, value);
    }
}

type Expected = Vec<(i64, i64, bool, Value)>;

fn naive(
    recs: &[(i64, Option<V>, Option<V>)],
    w: i64,
    a_fns: &[&str],
    b_fns: &[&str],
    covered: (i64, i64),
) -> Expected {
    let mut out = Vec::new();
    let mut i = 0;
    while i < recs.len() {
        let start = recs[i].0 - recs[i].0.rem_euclid(w);
        let group: Vec<_> = recs[i..].iter().take_while(|r| r.0 < start + w).collect();
        i += group.len();
        let partial = start < covered.0 || covered.1 < start + w - 1;
        let mut data = Map::new();
        let a: Vec<&V> = group.iter().filter_map(|r| r.1.as_ref()).collect();
        let b: Vec<&V> = group.iter().filter_map(|r| r.2.as_ref()).collect();
        naive_field(&mut data, "a", a_fns, &a, partial);
        naive_field(&mut data, "b", b_fns, &b, partial);
        out.push((start, start + w, partial, Value::Object(data)));
    }
    out
}

fn fn_list() -> impl Strategy<Value = Vec<&'static str>> {
    prop::sample::subsequence(
        vec!["sum", "avg", "min", "max", "count", "first", "last"],
        1..=7,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn windows_match_a_naive_recomputation(
        recs in records(),
        w in 1i64..1000,
        a_fns in fn_list(),
        b_fns in fn_list(),
        cut_start in 0i64..200,
        cut_end in 0i64..200,
    ) {
        let spec = AggSpec::parse(
            Some(&format!("{w}ms")),
            Some(&format!("a:{}", a_fns.join("+"))),
            Some(&b_fns.join(",")),
        ).unwrap().unwrap();
        // Work in milliseconds-as-nanoseconds: timestamps scaled to match.
        let scale = 1_000_000;
        let recs: Vec<_> = recs.into_iter().map(|(t, a, b)| (t * scale, a, b)).collect();
        let w = w * scale;
        let bodies: Vec<Vec<u8>> = recs.iter().map(|(_, a, b)| record_json(a, b)).collect();
        let first = recs.first().map_or(0, |r| r.0);
        let last = recs.last().map_or(0, |r| r.0);
        let covered = (first - cut_start * scale / 100, last + cut_end * scale);

        let got: Expected = aggregate(&spec, recs.iter().zip(&bodies).map(|(r, b)| (r.0, &b[..])), covered)
            .into_iter()
            .map(|win| (win.start, win.end, win.partial, serde_json::from_slice(&win.data).unwrap()))
            .collect();
        prop_assert_eq!(&got, &naive(&recs, w, &a_fns, &b_fns, covered));

        // The streaming form: windows close as later records arrive, and
        // the one still open at the end is flushed as partial.
        let mut agg = Aggregator::new(spec);
        let mut streamed = Vec::new();
        for (r, b) in recs.iter().zip(&bodies) {
            streamed.extend(agg.add(r.0, b));
        }
        streamed.extend(agg.flush());
        let streamed: Expected = streamed
            .into_iter()
            .map(|win| (win.start, win.end, win.partial, serde_json::from_slice(&win.data).unwrap()))
            .collect();
        prop_assert_eq!(streamed, naive(&recs, w, &a_fns, &b_fns, (i64::MIN, last)));
    }
}
