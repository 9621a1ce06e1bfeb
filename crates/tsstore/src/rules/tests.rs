use std::time::{Duration, Instant};

use serde_json::json;

use super::*;

fn cmp(field: &str, op: Op, value: Literal) -> Expr {
    Expr::Compare {
        field: FieldRef::new(field),
        op,
        value,
    }
}

fn parse_ok(s: &str) -> Expr {
    Expr::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn and_binds_tighter_than_or() {
    let a = || cmp("a", Op::Gt, Literal::Int(1));
    let b = || cmp("b", Op::Eq, Literal::Str("x".into()));
    let c = || cmp("c", Op::Lt, Literal::Float(2.5));
    let and = |l, r| Expr::And(Box::new(l), Box::new(r));
    let or = |l, r| Expr::Or(Box::new(l), Box::new(r));
    assert_eq!(
        parse_ok(r#"a > 1 OR b == "x" AND c < 2.5"#),
        or(a(), and(b(), c()))
    );
    assert_eq!(
        parse_ok(r#"(a > 1 OR b == "x") AND c < 2.5"#),
        and(or(a(), b()), c())
    );
    assert_eq!(
        parse_ok(r#"a>1 and not b=="x""#),
        and(a(), Expr::Not(Box::new(b())))
    );
    assert_eq!(
        parse_ok("a > 1 AND b == \"x\" AND c < 2.5"),
        and(and(a(), b()), c())
    );
}

#[test]
fn literals_and_fields() {
    assert_eq!(
        parse_ok(r#"msg contains "say \"hi\"\\ \n""#),
        cmp("msg", Op::Contains, Literal::Str("say \"hi\"\\ \n".into()))
    );
    assert_eq!(
        parse_ok("cpu.pct >= -3e2"),
        cmp("cpu.pct", Op::Ge, Literal::Float(-300.0))
    );
    assert_eq!(
        parse_ok("ok != false"),
        cmp("ok", Op::Ne, Literal::Bool(false))
    );
    assert_eq!(parse_ok("n <= -7"), cmp("n", Op::Le, Literal::Int(-7)));
    assert_eq!(
        parse_ok("sensor-1_a.x CONTAINS 1"),
        cmp("sensor-1_a.x", Op::Contains, Literal::Int(1))
    );
}

#[test]
fn errors_say_where() {
    let at = |s: &str| {
        let e = Expr::parse(s).unwrap_err();
        assert!(
            e.to_string()
                .ends_with(&format!("at position {}", e.position)),
            "{e}"
        );
        (e.position, e.message)
    };
    assert_eq!(at("").0, 1);
    assert_eq!(at("   ").0, 1);
    let (p, m) = at("temp > ");
    assert_eq!(p, 8);
    assert!(m.contains("expected a value"), "{m}");
    let (p, m) = at("temp = 5");
    assert_eq!(p, 6);
    assert!(m.contains("'=='"), "{m}");
    assert_eq!(at("temp > 5 AND").0, 13);
    assert_eq!(at("(temp > 5").0, 1);
    let (p, m) = at("temp > 5)");
    assert_eq!(p, 9);
    assert!(m.contains("')'"), "{m}");
    let (p, m) = at(r#"s == "abc"#);
    assert_eq!(p, 6);
    assert!(m.contains("not closed"), "{m}");
    let (p, m) = at(r#"s == "a\qb""#);
    assert_eq!(p, 8);
    assert!(m.contains("\\q"), "{m}");
    assert_eq!(at("t > 99999999999999999999").0, 5);
    assert_eq!(at("t > 1e999").0, 5);
    assert_eq!(at("t > 1.").0, 7);
    assert_eq!(at("t > 5x").0, 6);
    let (p, m) = at("t ~ 5");
    assert_eq!(p, 3);
    assert!(m.contains("'~'"), "{m}");
    let (p, m) = at("t > 5 temp < 3");
    assert_eq!(p, 7);
    assert!(m.contains("'temp'"), "{m}");
    let (p, m) = at("AND > 3");
    assert_eq!(p, 1);
    assert!(m.contains("field name"), "{m}");
    assert_eq!(at("t > yes").0, 5);
    assert_eq!(at("a..b > 1").0, 1);
    assert_eq!(at("t > 5 AND é > 1").0, 11, "positions count characters");
    let deep = format!(
        "{}a > 1{}",
        "(".repeat(MAX_DEPTH + 1),
        ")".repeat(MAX_DEPTH + 1)
    );
    assert_eq!(at(&deep).0, MAX_DEPTH + 1);
    assert!(
        Expr::parse(&format!(
            "{}a > 1{}",
            "(".repeat(MAX_DEPTH),
            ")".repeat(MAX_DEPTH)
        ))
        .is_ok()
    );
    let nots = format!("{}a > 1", "NOT ".repeat(MAX_DEPTH + 1));
    assert!(at(&nots).1.contains("nests"));
    let long = format!("a == \"{}\"", "x".repeat(MAX_CONDITION_LEN));
    assert_eq!(at(&long).0, MAX_CONDITION_LEN + 1);
}

#[test]
fn evaluation_semantics() {
    let rec = json!({
        "temperature": 85, "humidity": 25.5, "status": "error", "ok": true,
        "big": 18446744073709551615u64, "none": null, "tags": ["a", 3],
        "cpu": {"pct": 93}, "cpu.pct": 7,
    });
    let t = |s: &str| parse_ok(s).eval(&rec);
    assert!(t(
        r#"temperature > 80 AND (status == "error" OR humidity < 30)"#
    ));
    assert!(!t(r#"temperature > 85"#));
    assert!(t(
        "temperature >= 85 AND temperature <= 85.0 AND temperature == 85.0"
    ));
    assert!(t("humidity < 26 AND humidity > 25"));
    assert!(t(r#"status > "abc" AND status < "z""#));
    assert!(t(r#"status contains "rr""#));
    assert!(!t(r#"status contains "RR""#));
    assert!(t("ok == true AND ok != false"));
    assert!(!t("ok > false"), "booleans are not ordered");
    assert!(t("big > 9223372036854775807"), "u64 compared exactly");
    assert!(!t("missing > 1") && !t("missing != 1") && t("NOT missing == 1"));
    assert!(!t("none == 1") && !t("none != 1"), "null is missing");
    assert!(t(r#"temperature != "85""#) && !t(r#"temperature == "85""#));
    assert!(!t(r#"temperature > "85""#));
    assert!(t(r#"tags contains "a" AND tags contains 3"#) && !t("tags contains 4"));
    assert!(t("cpu.pct == 7"), "flat dotted key wins");
    let nested = json!({"cpu": {"pct": 93}});
    assert!(parse_ok("cpu.pct > 90").eval(&nested));
    assert!(!parse_ok("cpu.pct.x > 90").eval(&nested));
    assert!(
        !parse_ok("a > 1").eval(&json!([1, 2])),
        "not an object: nothing matches"
    );
}

#[test]
fn display_round_trips() {
    for s in [
        r#"a > 1 OR b == "x\"y" AND c < 2.5"#,
        "(a > 1 OR b > 2) AND c > 3",
        "a > 1 AND (b > 2 AND c > 3)",
        "a > 1 OR (b > 2 OR c > 3)",
        "NOT (a > 1 AND b > 2)",
        "NOT NOT a > 1e300",
        "x contains \"\\\\\\n\\t\\r\"",
    ] {
        let e = parse_ok(s);
        let printed = e.to_string();
        assert_eq!(parse_ok(&printed), e, "{s} printed as {printed}");
    }
    assert_eq!(parse_ok("(a>1)and(b<2.0)").to_string(), "a > 1 AND b < 2.0");
}

#[test]
fn cooldown_uses_the_given_clock() {
    let mut rule = Rule::new("hot", "t > 80", Some(Duration::from_secs(60))).unwrap();
    let t0 = Instant::now();
    let hot = json!({"t": 90});
    let cold = json!({"t": 10});
    assert!(!rule.fire(&cold, t0));
    assert!(rule.fire(&hot, t0));
    assert!(!rule.fire(&hot, t0 + Duration::from_secs(59)));
    assert!(rule.fire(&hot, t0 + Duration::from_secs(60)));
    assert!(!rule.fire(&cold, t0 + Duration::from_secs(200)));
    assert!(rule.fire(&hot, t0 + Duration::from_secs(201)));

    let mut every = Rule::new("any", "t > 80", None).unwrap();
    assert!(every.fire(&hot, t0) && every.fire(&hot, t0));

    assert_eq!(
        Rule::new("", "t > 1", None).unwrap_err(),
        RuleDefError::BadName
    );
    let e = Rule::new("r1", "t >", None).unwrap_err();
    assert!(
        e.to_string().contains("'r1'") && e.to_string().contains("position 4"),
        "{e}"
    );
}
