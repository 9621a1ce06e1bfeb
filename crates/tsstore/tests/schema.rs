//! Schema stores end to end: compaction is lossless on every valid record,
//! the store compacts on insert and expands on request, bad records and bad
//! updates change nothing, and the schema survives a reopen.

use proptest::prelude::*;
use serde_json::{Value, json};
use tsstore::{
    Config, DataType, Error, Field, FieldType, Filter, SCHEMA_FILE, Schema, SchemaError, Store,
    SyncPolicy,
};

fn value_for(ty: FieldType) -> BoxedStrategy<Value> {
    match ty {
        FieldType::Bool => any::<bool>().prop_map(Value::from).boxed(),
        FieldType::String => any::<String>().prop_map(Value::from).boxed(),
        FieldType::Float32 => prop_oneof![-1e38f64..1e38, Just(0.1), Just(3.4e38)]
            .prop_map(Value::from)
            .boxed(),
        FieldType::Float64 => any::<f64>()
            .prop_filter("finite", |v| v.is_finite())
            .prop_map(Value::from)
            .boxed(),
        FieldType::Uint64 => any::<u64>().prop_map(Value::from).boxed(),
        ty => {
            let (lo, hi) = ty.int_range().expect("integer type");
            ((lo as i64)..=(hi as i64)).prop_map(Value::from).boxed()
        }
    }
}

/// A schema of 1–8 fields with distinct, possibly sparse indices, and a
/// record holding a random subset of them with valid values.
fn schema_and_record() -> impl Strategy<Value = (Schema, Value)> {
    prop::collection::btree_set(1u32..40, 1..8)
        .prop_flat_map(|indices| {
            let n = indices.len();
            (
                Just(indices),
                prop::collection::vec(prop::sample::select(FieldType::ALL.to_vec()), n),
            )
        })
        .prop_flat_map(|(indices, types)| {
            let fields: Vec<Field> = indices
                .iter()
                .zip(&types)
                .map(|(i, t)| Field::new(*i, &format!("f{i}.v"), *t))
                .collect();
            let values: Vec<_> = fields
                .iter()
                .map(|f| prop::option::of(value_for(f.field_type)))
                .collect();
            (Just(fields), values)
        })
        .prop_map(|(fields, values)| {
            let mut rec = serde_json::Map::new();
            for (f, v) in fields.iter().zip(values) {
                if let Some(v) = v {
                    rec.insert(f.name.clone(), v);
                }
            }
            (Schema::new(1, fields).unwrap(), Value::Object(rec))
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn compact_then_expand_is_the_identity((schema, record) in schema_and_record()) {
        let text = serde_json::to_vec(&record).unwrap();
        let compact = schema.compact(&text).unwrap();
        let expanded: Value = serde_json::from_slice(&schema.expand(&compact)).unwrap();
        // serde_json's Value equality tells 72 from 72.0: kinds are kept.
        prop_assert_eq!(&expanded, &record);
        // Already compact input is accepted and unchanged.
        prop_assert_eq!(schema.compact(&compact).unwrap(), compact.clone());
        // Every compact key is an index of the schema.
        let keys: Value = serde_json::from_slice(&compact).unwrap();
        for k in keys.as_object().unwrap().keys() {
            prop_assert!(schema.field_by_index(k.parse().unwrap()).is_some());
        }
    }
}

fn schema_store(dir: &std::path::Path) -> Store {
    let config = Config {
        num_blocks: 16,
        data_type: DataType::Schema,
        ..Config::default()
    };
    Store::create_with(dir, "s", config, SyncPolicy::Never).unwrap()
}

fn fields_v1() -> Vec<Field> {
    vec![
        Field::new(1, "temp", FieldType::Float64),
        Field::new(2, "room", FieldType::String),
    ]
}

#[test]
fn store_compacts_on_insert_and_expands_on_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = schema_store(dir.path());
    let e = store.put(1, br#"{"temp":1}"#).unwrap_err();
    assert!(matches!(e, Error::Schema(SchemaError::NoSchema)), "{e}");
    assert!(store.schema().is_none());

    assert_eq!(store.set_schema(fields_v1()).unwrap().version(), 1);
    store.put(10, br#"{"room":"room-1","temp":72.5}"#).unwrap();
    let rec = store.get_by_time(10).unwrap();
    assert_eq!(rec.data, br#"{"1":72.5,"2":"room-1"}"#);
    assert_eq!(
        &*store.expand(&rec.data),
        br#"{"temp":72.5,"room":"room-1"}"#
    );
    // The filter sees what users see.
    let filter = Filter::new("TEMP", true);
    assert!(filter.matches(&store.expand(&rec.data)));
    assert!(!filter.matches(&rec.data));

    // A bad record is refused and nothing changes.
    let before = store.stats();
    let e = store.put(11, br#"{"temp":"hot"}"#).unwrap_err();
    assert!(e.to_string().contains("'temp'"), "{e}");
    let e = store
        .put_many([(Some(12), &br#"{"temp":1}"#[..]), (Some(13), br#"{"x":1}"#)])
        .unwrap_err();
    assert!(e.to_string().contains("'x'"), "{e}");
    assert_eq!(store.stats().newest_timestamp, before.newest_timestamp);
    assert_eq!(store.iter().count(), 1);

    // Append-only evolution; refused updates change nothing.
    let mut v2 = fields_v1();
    v2.push(Field::new(3, "hum", FieldType::Uint8));
    assert_eq!(store.set_schema(v2.clone()).unwrap().version(), 2);
    let e = store
        .set_schema(vec![Field::new(1, "temp", FieldType::Float64)])
        .unwrap_err();
    assert!(e.to_string().contains("'room'"), "{e}");
    assert_eq!(store.schema().unwrap().version(), 2);
    store.put_now(br#"{"hum":40}"#).unwrap();
    store.close().unwrap();

    let store = Store::open_with(dir.path(), "s", SyncPolicy::Never).unwrap();
    let schema = store.schema().unwrap();
    assert_eq!((schema.version(), schema.fields()), (2, &v2[..]));
    let all: Vec<Value> = store
        .iter()
        .map(|r| serde_json::from_slice(&store.expand(&r.unwrap().data)).unwrap())
        .collect();
    assert_eq!(
        all,
        [json!({"temp": 72.5, "room": "room-1"}), json!({"hum": 40})]
    );
    let file: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("s").join(SCHEMA_FILE)).unwrap())
            .unwrap();
    assert_eq!(file["current_version"], 2);
    assert_eq!(file["schemas"].as_object().unwrap().len(), 2);

    // Reset keeps the schema.
    store.reset().unwrap();
    assert_eq!(store.schema().unwrap().version(), 2);
}

#[test]
fn only_schema_stores_take_a_schema() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create_with(dir.path(), "j", Config::default(), SyncPolicy::Never).unwrap();
    let e = store.set_schema(fields_v1()).unwrap_err();
    assert!(
        matches!(e, Error::Schema(SchemaError::NotASchemaStore("json"))),
        "{e}"
    );
    assert!(!dir.path().join("j").join(SCHEMA_FILE).exists());
    store.put(1, br#"{"1":2}"#).unwrap();
    assert_eq!(&*store.expand(br#"{"1":2}"#), br#"{"1":2}"#);
}
