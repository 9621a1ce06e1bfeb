//! Pure-logic benchmarks: schema codec, rule evaluation, aggregation.
//! Baselines in the same run: parsing the same JSON into a
//! `serde_json::Value` (and writing it back, for the codec), the least
//! work any consumer of these records does.
//! Run: `cargo bench -p tsstore --bench logic`; figures in docs/BENCHMARKS.md.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::Value;
use tsstore::aggregate::{AggSpec, aggregate};
use tsstore::rules::Expr;
use tsstore::{Field, FieldType, Schema};

const RECORD: &[u8] =
    br#"{"temperature":21.53,"humidity":48.25,"status":"ok","room":"kitchen-1","battery":98,"online":true}"#;
const RULE: &str = r#"temperature > 80 AND (status == "error" OR humidity < 30)"#;
const AGG_RECORDS: usize = 1_000_000;

fn schema() -> Schema {
    Schema::new(
        1,
        vec![
            Field::new(1, "temperature", FieldType::Float64),
            Field::new(2, "humidity", FieldType::Float32),
            Field::new(3, "status", FieldType::String),
            Field::new(4, "room", FieldType::String),
            Field::new(5, "battery", FieldType::Uint8),
            Field::new(6, "online", FieldType::Bool),
        ],
    )
    .expect("schema")
}

fn codec(c: &mut Criterion) {
    let schema = schema();
    let mut g = c.benchmark_group("schema");
    g.throughput(Throughput::Elements(1));
    g.bench_function("compact+expand", |b| {
        b.iter(|| {
            let compact = schema.compact(black_box(RECORD)).expect("valid");
            black_box(schema.expand(&compact).len())
        })
    });
    let compact = schema.compact(RECORD).expect("valid");
    g.bench_function("compact", |b| {
        b.iter(|| black_box(schema.compact(black_box(RECORD)).expect("valid")))
    });
    g.bench_function("expand", |b| {
        b.iter(|| black_box(schema.expand(black_box(&compact)).len()))
    });
    g.bench_function("baseline: serde_json Value parse+write", |b| {
        b.iter(|| {
            let v: Value = serde_json::from_slice(black_box(RECORD)).expect("json");
            black_box(serde_json::to_vec(&v).expect("write"))
        })
    });
    g.finish();
}

fn rules(c: &mut Criterion) {
    let expr = Expr::parse(RULE).expect("rule");
    let record: Value = serde_json::from_slice(RECORD).expect("json");
    let mut g = c.benchmark_group("rules");
    g.throughput(Throughput::Elements(1));
    g.bench_function("eval", |b| {
        b.iter(|| black_box(expr.eval(black_box(&record))))
    });
    g.bench_function("parse record + eval", |b| {
        b.iter(|| {
            let v: Value = serde_json::from_slice(black_box(RECORD)).expect("json");
            black_box(expr.eval(&v))
        })
    });
    g.bench_function("baseline: serde_json Value parse", |b| {
        b.iter(|| black_box(serde_json::from_slice::<Value>(black_box(RECORD)).expect("json")))
    });
    g.bench_function("parse rule", |b| {
        b.iter(|| black_box(Expr::parse(black_box(RULE)).expect("rule")))
    });
    g.finish();
}

/// One reading every 10 ms: 6000 per one-minute window.
fn agg_records() -> Vec<(i64, Vec<u8>)> {
    let t0 = 1_700_000_000_000_000_000i64;
    (0..AGG_RECORDS)
        .map(|i| {
            let body = format!(
                r#"{{"temperature":{:.2},"humidity":{:.1},"pressure":{}}}"#,
                20.0 + (i % 1000) as f64 / 100.0,
                40.0 + (i % 300) as f64 / 10.0,
                1000 + i % 30
            );
            (t0 + i as i64 * 10_000_000, body.into_bytes())
        })
        .collect()
}

fn aggregation(c: &mut Criterion) {
    let records = agg_records();
    let spec = AggSpec::parse(Some("1m"), None, Some("avg,min,max"))
        .expect("spec")
        .expect("aggregation");
    let mut g = c.benchmark_group("aggregate");
    g.throughput(Throughput::Elements(AGG_RECORDS as u64));
    g.sample_size(10);
    g.bench_function("1M records, 1m windows, avg,min,max", |b| {
        b.iter_batched(
            || (),
            |()| {
                let it = records.iter().map(|(t, d)| (*t, &d[..]));
                black_box(aggregate(&spec, it, (i64::MIN, i64::MAX)).len())
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("baseline: serde_json Value parse of 1M records", |b| {
        b.iter(|| {
            for (_, d) in &records {
                black_box(serde_json::from_slice::<Value>(d).expect("json"));
            }
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! { name = benches; config = config(); targets = codec, rules, aggregation }
criterion_main!(benches);
