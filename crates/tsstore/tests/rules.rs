//! Property tests of the rule language: printing and parsing round-trip,
//! evaluation agrees with a plain reference evaluator, and no input makes
//! the parser panic.

use proptest::prelude::*;
use serde_json::{Value, json};
use tsstore::rules::{Expr, FieldRef, Literal, Op};

const FIELDS: [&str; 5] = ["a", "b", "s", "c.d", "missing"];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::Gt),
        Just(Op::Ge),
        Just(Op::Lt),
        Just(Op::Le),
        Just(Op::Eq),
        Just(Op::Ne),
        Just(Op::Contains),
    ]
}

/// Literals that also occur in the generated records, so comparisons hit.
fn near_literal() -> impl Strategy<Value = Literal> {
    prop_oneof![
        (-3i64..4).prop_map(Literal::Int),
        prop::sample::select(vec![-1.5, 0.0, 2.5, 3.0]).prop_map(Literal::Float),
        prop::sample::select(vec!["", "a", "ab", "b"]).prop_map(|s| Literal::Str(s.into())),
        any::<bool>().prop_map(Literal::Bool),
    ]
}

/// Any literal the grammar can express.
fn wide_literal() -> impl Strategy<Value = Literal> {
    prop_oneof![
        any::<i64>().prop_map(Literal::Int),
        any::<f64>()
            .prop_filter("finite", |v| v.is_finite())
            .prop_map(Literal::Float),
        any::<String>().prop_map(Literal::Str),
        any::<bool>().prop_map(Literal::Bool),
    ]
}

fn expr(literal: BoxedStrategy<Literal>) -> impl Strategy<Value = Expr> {
    let leaf =
        (prop::sample::select(FIELDS.to_vec()), op(), literal).prop_map(|(field, op, value)| {
            Expr::Compare {
                field: FieldRef::new(field),
                op,
                value,
            }
        });
    leaf.prop_recursive(6, 48, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| Expr::Not(Box::new(e))),
            (inner.clone(), inner.clone()).prop_map(|(l, r)| Expr::And(Box::new(l), Box::new(r))),
            (inner.clone(), inner).prop_map(|(l, r)| Expr::Or(Box::new(l), Box::new(r))),
        ]
    })
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        (-3i64..4).prop_map(Value::from),
        prop::sample::select(vec![-1.5, 0.0, 2.5, 3.0]).prop_map(Value::from),
        prop::sample::select(vec!["", "a", "ab", "b", "ba"]).prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        Just(Value::Null),
    ]
}

fn record() -> impl Strategy<Value = Value> {
    (
        prop::option::of(scalar()),
        prop::option::of(scalar()),
        prop::option::of(scalar()),
        prop::option::of(prop::collection::vec(scalar(), 0..3)),
        prop::option::of(scalar()),
    )
        .prop_map(|(a, b, s, list, d)| {
            let mut rec = serde_json::Map::new();
            let mut put = |k: &str, v: Option<Value>| {
                if let Some(v) = v {
                    rec.insert(k.to_string(), v);
                }
            };
            put("a", a);
            put("b", b);
            put("s", s.or(list.map(Value::from)));
            put("c", d.map(|d| json!({ "d": d })));
            Value::Object(rec)
        })
}

/// The reference: the documented semantics, written as plainly as possible
/// (records here hold only numbers that f64 represents exactly).
fn reference(e: &Expr, rec: &Value) -> bool {
    match e {
        Expr::Not(x) => !reference(x, rec),
        Expr::And(l, r) => reference(l, rec) && reference(r, rec),
        Expr::Or(l, r) => reference(l, rec) || reference(r, rec),
        Expr::Compare { field, op, value } => {
            let found = rec
                .get(&field.name)
                .or_else(|| field.name.split('.').try_fold(rec, |at, part| at.get(part)));
            let Some(found) = found.filter(|v| !v.is_null()) else {
                return false;
            };
            let num = |l: &Literal| match l {
                Literal::Int(i) => Some(*i as f64),
                Literal::Float(f) => Some(*f),
                _ => None,
            };
            let equal = |v: &Value| match (v, value) {
                (Value::String(s), Literal::Str(l)) => s == l,
                (Value::Bool(b), Literal::Bool(l)) => b == l,
                (Value::Number(n), l) => num(l).is_some_and(|l| n.as_f64() == Some(l)),
                _ => false,
            };
            let order = match (found, value) {
                (Value::Number(n), l) => num(l).and_then(|l| n.as_f64()?.partial_cmp(&l)),
                (Value::String(s), Literal::Str(l)) => Some(s.as_str().cmp(l.as_str())),
                _ => None,
            };
            match op {
                Op::Eq => equal(found),
                Op::Ne => !equal(found),
                Op::Gt => order.is_some_and(|o| o.is_gt()),
                Op::Ge => order.is_some_and(|o| o.is_ge()),
                Op::Lt => order.is_some_and(|o| o.is_lt()),
                Op::Le => order.is_some_and(|o| o.is_le()),
                Op::Contains => match (found, value) {
                    (Value::String(s), Literal::Str(l)) => s.contains(l.as_str()),
                    (Value::Array(items), _) => items.iter().any(equal),
                    _ => false,
                },
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn printed_ast_parses_back(e in expr(wide_literal().boxed())) {
        let printed = e.to_string();
        let parsed = Expr::parse(&printed);
        prop_assert_eq!(parsed.as_ref(), Ok(&e), "printed: {}", printed);
    }

    #[test]
    fn evaluation_matches_the_reference(e in expr(near_literal().boxed()), rec in record()) {
        prop_assert_eq!(e.eval(&rec), reference(&e, &rec), "{} on {}", e, rec);
    }

    #[test]
    fn parser_never_panics_on_any_string(s in any::<String>()) {
        if let Err(e) = Expr::parse(&s) {
            prop_assert!(e.position >= 1 && e.position <= s.chars().count() + 1);
        }
    }

    #[test]
    fn parser_never_panics_on_near_misses(s in "[()abc.<>=!\" \\\\0-9eE.+-]{0,40}|((AND|OR|NOT|contains|true|false|[()a<>=!\" 1.-]) ?){0,24}") {
        if let Err(e) = Expr::parse(&s) {
            prop_assert!(e.position >= 1 && e.position <= s.chars().count() + 1, "{:?}: {}", s, e);
        }
    }
}
