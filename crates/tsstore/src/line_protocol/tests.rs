use std::borrow::Cow;

use super::*;

fn parse(line: &str) -> Result<Point<'_>, LineError> {
    parse_line(line.as_bytes())
}

fn record(lines_text: &str) -> String {
    let mut b = RecordBuilder::new(Target::Json);
    for (_, line) in lines(lines_text.as_bytes()) {
        let p = parse_line(line).unwrap();
        b.add(line, &p).unwrap();
    }
    String::from_utf8(b.finish()).unwrap()
}

#[test]
fn a_full_line() {
    let p =
        parse(r#"weather,site=roof,room=a\ b temp=21.5,hum=40i,ok=t,note="hi \"x\"",n=7u 1733"#)
            .unwrap();
    assert_eq!(p.measurement, "weather");
    assert_eq!(
        p.tags,
        [
            (Cow::from("site"), Cow::from("roof")),
            (Cow::from("room"), Cow::from("a b"))
        ]
    );
    assert_eq!(
        p.fields,
        [
            (Cow::from("temp"), FieldValue::Float(21.5)),
            (Cow::from("hum"), FieldValue::Integer(40)),
            (Cow::from("ok"), FieldValue::Boolean(true)),
            (Cow::from("note"), FieldValue::String(r#"hi "x""#.into())),
            (Cow::from("n"), FieldValue::Unsigned(7)),
        ]
    );
    assert_eq!(p.timestamp, Some(1733));
}

/// Each case as InfluxDB 1.6.7 answered it (`influxd`, `/write`): `Ok`
/// parsed, or its reason.
#[test]
fn cases_as_influxdb_reads_them() {
    let cases: &[(&str, Result<(), &str>)] = &[
        ("m v=1 1", Ok(())),
        ("m  v=1 2", Ok(())),
        ("m v=1  3", Ok(())),
        ("m v=1 4 ", Ok(())),
        ("m,t=a v=+1 6", Err("invalid boolean")),
        ("m v=.5 7", Ok(())),
        ("m v=1. 8", Ok(())),
        ("m v=1e3 9", Ok(())),
        ("m v=1E+3 10", Ok(())),
        ("m v=NaN 11", Err("invalid number")),
        ("m v=inf 12", Err("invalid boolean")),
        ("m v=1i,v=2 14", Ok(())),
        ("m v=-9223372036854775808i 16", Ok(())),
        ("m,t= v=1 17", Err("missing tag value")),
        ("m,=a v=1 18", Err("missing tag key")),
        ("m,t v=1 19", Err("missing tag value")),
        ("m v=1,=2 20", Err("missing field key")),
        ("m v= 21", Err("missing field value")),
        ("m v 22", Err("invalid field format")),
        ("m", Err("missing fields")),
        (",t=a v=1 23", Err("missing measurement")),
        ("m v=tru 24", Err("invalid boolean")),
        ("m v=\"a 25", Err("unbalanced quotes")),
        ("m v=1 2x", Err("bad timestamp")),
        ("m v=1 -5", Ok(())),
        ("m,b=2,a=1 v=1 26", Ok(())),
        ("m,a=1,a=2 v=1 27", Err("duplicate tags")),
        ("m v=1 1.5", Err("bad timestamp")),
        ("m v=t,w=FALSE,x=True 34", Ok(())),
        ("m _v=1 35", Ok(())),
        ("m,t=\"q\" v=1 36", Ok(())),
        ("m\tv=1 37", Err("invalid field format")),
        ("m v=1,  w=2 38", Err("invalid field format")),
        ("m v=-.5 39", Ok(())),
        ("m v=- 40", Err("invalid number")),
        ("m v=1e 41", Err("invalid float")),
        ("m v=01 42", Ok(())),
        ("m v=1.2.3 43", Err("invalid number")),
        ("m\\ v=1 44", Err("invalid field format")),
        ("m v=1\\  45", Err("invalid number")),
    ];
    for (line, expected) in cases {
        let got = parse(line).map(drop).map_err(|e| e.to_string());
        assert_eq!(got, expected.map_err(str::to_string), "{line}");
    }
    // Out of range (InfluxDB words these as Go's parser does).
    assert!(parse("m v=9223372036854775808i 15").is_err());
    assert!(parse("m v=1 99999999999999999999").is_err());
    // The last of a repeated field wins.
    assert_eq!(
        parse("d v=1i,v=2i 60").unwrap().fields,
        [(Cow::from("v"), FieldValue::Integer(2))]
    );
}

#[test]
fn escapes_and_strings() {
    let p = parse(r#"m\ x\,y,t\,a=b\=c v\ x="q\"\\z\n",w="a,b c" 28"#).unwrap();
    assert_eq!(p.measurement, "m x,y");
    assert_eq!(p.tags, [(Cow::from("t,a"), Cow::from("b=c"))]);
    assert_eq!(p.fields[0].0, "v x");
    // `\"` and `\\` are escapes in strings; `\n` is a backslash and an n.
    assert_eq!(p.fields[0].1, FieldValue::String(r#"q"\z\n"#.into()));
    assert_eq!(p.fields[1].1, FieldValue::String("a,b c".into()));
    // Before anything else a backslash is itself.
    let p = parse(r"m\x,t=a\b v=1").unwrap();
    assert_eq!((&*p.measurement, &*p.tags[0].1), (r"m\x", r"a\b"));
}

#[test]
fn lines_skip_comments_and_blanks_and_number_what_they_keep() {
    let body = "# comment\n\nm v=1 29\n  \n  m v=2 30\r\nm s=\"a\nb\" 31\nm v=3\n";
    let got: Vec<(usize, &[u8])> = lines(body.as_bytes()).collect();
    assert_eq!(
        got,
        [
            (3, &b"m v=1 29"[..]),
            (5, b"m v=2 30"),
            (6, b"m s=\"a\nb\" 31"),
            (8, b"m v=3"),
        ]
    );
    let p = parse_line(got[2].1).unwrap();
    assert_eq!(p.fields[0].1, FieldValue::String("a\nb".into()));
}

#[test]
fn json_records_keep_tags_apart_and_fields_on_top() {
    assert_eq!(
        record("weather,site=roof,a=1 temp=21.5,hum=40i,t=40,ok=f,s=\"x\" 1"),
        r#"{"_measurement":"weather","_tags":{"a":"1","site":"roof"},"temp":21.5,"hum":40,"t":40.0,"ok":false,"s":"x"}"#
    );
    // One series twice at a timestamp: merged, the later value wins.
    assert_eq!(
        record("m,s=a v=1,w=2 5\nm,s=a v=3 5"),
        r#"{"_measurement":"m","_tags":{"s":"a"},"v":3.0,"w":2.0}"#
    );
    // Several series: listed.
    assert_eq!(
        record("m,s=a v=1 5\nm,s=b v=2 5\nn v=3 5"),
        r#"{"_series":[{"_measurement":"m","_tags":{"s":"a"},"v":1.0},{"_measurement":"m","_tags":{"s":"b"},"v":2.0},{"_measurement":"n","_tags":{},"v":3.0}]}"#
    );
    let mut b = RecordBuilder::new(Target::Json);
    let line = b"m _tags=1";
    let e = b.add(line, &parse_line(line).unwrap()).unwrap_err();
    assert!(e.to_string().contains("_tags"), "{e}");
    assert!(b.is_empty());
}

#[test]
fn schema_records_take_known_names_and_one_value_each() {
    use crate::schema::{Field, FieldType, Schema};
    let schema = Schema::new(
        1,
        vec![
            Field::new(1, "site", FieldType::String),
            Field::new(2, "temp", FieldType::Float64),
            Field::new(3, "hum", FieldType::Int64),
        ],
    )
    .unwrap();
    let mut b = RecordBuilder::new(Target::Schema(&schema));
    fn add<'a>(b: &mut RecordBuilder<'_, 'a>, line: &'a str) -> Result<(), PointRefused> {
        let p = parse(line).unwrap();
        b.add(line.as_bytes(), &p)
    }
    add(&mut b, "w,site=roof temp=21.5 1").unwrap();
    add(&mut b, "w,site=roof hum=40i 1").unwrap();
    let e = add(&mut b, "w,site=cellar hum=40i 1").unwrap_err();
    assert!(e.to_string().contains("'site'"), "{e}");
    let e = add(&mut b, "w lux=3 1").unwrap_err();
    assert!(e.to_string().contains("no field 'lux'"), "{e}");
    assert_eq!(b.len(), 2);
    assert_eq!(
        String::from_utf8(b.finish()).unwrap(),
        r#"{"site":"roof","temp":21.5,"hum":40}"#
    );
}

#[test]
fn text_records_are_the_lines() {
    let mut b = RecordBuilder::new(Target::Text);
    for line in ["m v=1 5", "m,s=b v=2 5"] {
        b.add(line.as_bytes(), &parse(line).unwrap()).unwrap();
    }
    assert_eq!(b.finish(), b"m v=1 5\nm,s=b v=2 5");
}

/// A point as its line said it: measurement, sorted tags, fields sorted
/// by name, timestamp.
type Said = (
    String,
    Vec<(String, String)>,
    Vec<(String, FieldValue<'static>)>,
    Option<i64>,
);

/// The points of `body`, as `Said`.
fn points_of(body: &str) -> Vec<Said> {
    lines(body.as_bytes())
        .map(|(_, l)| {
            let p = parse_line(l).unwrap();
            let mut tags: Vec<(String, String)> = p
                .tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            tags.sort();
            let mut fields: Vec<(String, FieldValue<'static>)> = p
                .fields
                .iter()
                .map(|(k, v)| {
                    let v = match v {
                        FieldValue::String(s) => FieldValue::String(s.to_string().into()),
                        FieldValue::Float(f) => FieldValue::Float(*f),
                        FieldValue::Integer(i) => FieldValue::Integer(*i),
                        FieldValue::Unsigned(u) => FieldValue::Unsigned(*u),
                        FieldValue::Boolean(b) => FieldValue::Boolean(*b),
                    };
                    (k.to_string(), v)
                })
                .collect();
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            (p.measurement.to_string(), tags, fields, p.timestamp)
        })
        .collect()
}

#[test]
fn records_of_lines_ship_as_the_same_points() {
    let sent = "w\\ x,site=r\\ 1,b=2 t=21.5,h=40i,ok=t,s=\"a \\\"q\\\" b\" 7\nw,site=c t=1 7\nw\\ x,site=r\\ 1,b=2 u=3 7\n";
    let record = record(sent);
    let mut out = Vec::new();
    let n = encode_record(&mut out, 7, record.as_bytes(), &LineOptions::default()).unwrap();
    assert_eq!(n, 2);
    let shipped = String::from_utf8(out).unwrap();
    let mut expected = points_of(
        "w\\ x,b=2,site=r\\ 1 t=21.5,h=40i,ok=t,s=\"a \\\"q\\\" b\",u=3 7\nw,site=c t=1 7\n",
    );
    let mut got = points_of(&shipped);
    expected.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    got.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    assert_eq!(got, expected, "{shipped}");
}

#[test]
fn any_json_object_ships_as_a_point() {
    let options = LineOptions {
        measurement: "greenhouse".into(),
        tag_fields: vec!["room".into()],
        tags: [("gateway".to_string(), "gw-17".to_string())].into(),
    };
    let data = br#"{"temp":21,"hum":40.5,"room":"a b","ok":false,"note":"x","pos":{"x":1,"y":[2,3]},"gone":null}"#;
    let mut out = Vec::new();
    assert_eq!(encode_record(&mut out, 5, data, &options).unwrap(), 1);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "greenhouse,gateway=gw-17,room=a\\ b temp=21,hum=40.5,ok=false,note=\"x\",pos_x=1,pos_y_0=2,pos_y_1=3 5\n"
    );
    let mut out = Vec::new();
    assert!(encode_record(&mut out, 5, br#"{"room":"a"}"#, &options).is_err());
    assert!(encode_record(&mut out, 5, b"[1]", &options).is_err());
    assert!(out.is_empty());
}
