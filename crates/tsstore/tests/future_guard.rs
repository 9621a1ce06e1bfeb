//! The future-timestamp guard (`Store::set_max_future_skew`) on both
//! encodings: far-future timestamps given by a caller are refused before
//! anything is written, server-stamped ones never are, and old ones keep
//! answering `TimestampOutOfOrder`.

use std::time::Duration;

use tsstore::{Config, DataType, Encoding, Error, Store, now_ns};

const DAY_NS: i64 = 86_400_000_000_000;
/// 2200-01-01T00:00:00Z.
const YEAR_2200: i64 = 7_258_118_400_000_000_000;

fn store(dir: &std::path::Path, encoding: Encoding) -> Store {
    let config = Config {
        num_blocks: 32,
        data_type: DataType::Json,
        encoding,
        ..Config::default()
    };
    Store::create(dir, "s", config).unwrap()
}

fn each_encoding(test: impl Fn(&Store)) {
    for encoding in [Encoding::Raw, Encoding::Compressed] {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), encoding);
        test(&s);
        s.close().unwrap();
    }
}

#[test]
fn off_by_default_and_settable() {
    each_encoding(|s| {
        assert_eq!(s.max_future_skew(), None);
        s.put(YEAR_2200, b"{}").unwrap();
        s.set_max_future_skew(Some(Duration::from_secs(86_400)));
        assert_eq!(s.max_future_skew(), Some(Duration::from_secs(86_400)));
        s.set_max_future_skew(Some(Duration::ZERO));
        assert_eq!(s.max_future_skew(), None);
        s.set_max_future_skew(None);
        assert_eq!(s.max_future_skew(), None);
    });
}

#[test]
fn refuses_far_future_timestamps_and_says_why() {
    each_encoding(|s| {
        s.set_max_future_skew(Some(Duration::from_secs(86_400)));
        let err = s.put(YEAR_2200, b"{}").unwrap_err();
        let Error::TimestampInFuture {
            timestamp,
            now,
            max_skew_ns,
        } = err
        else {
            panic!("{err:?}");
        };
        assert_eq!((timestamp, max_skew_ns), (YEAR_2200, DAY_NS));
        assert!((now - now_ns()).abs() < 60_000_000_000);
        let message = err.to_string();
        assert!(
            message.starts_with(
                "timestamp 7258118400000000000 (2200-01-01T00:00:00Z) is more than 24h ahead \
                 of the server clock ("
            ),
            "{message}"
        );
        assert!(message.contains(&now.to_string()), "{message}");
        assert!(message.ends_with("check the client's clock and its timestamp precision"));
        assert_eq!(s.stats().newest_timestamp, None);

        // Within the skew: accepted.
        let soon = now_ns() + DAY_NS / 2;
        s.put(soon, b"{}").unwrap();
        // Future and out of order at once: the future wins.
        assert!(matches!(
            s.put(YEAR_2200, b"{}"),
            Err(Error::TimestampInFuture { .. })
        ));
        // Old timestamps keep their own error.
        assert!(matches!(
            s.put(1_000, b"{}"),
            Err(Error::TimestampOutOfOrder {
                timestamp: 1_000,
                ..
            })
        ));
        // Server stamps are never refused, even after a future record.
        let h = s.put_now(b"{}").unwrap();
        assert_eq!(h.timestamp, soon + 1);
    });
}

#[test]
fn a_batch_with_one_future_item_writes_nothing() {
    each_encoding(|s| {
        s.set_max_future_skew(Some(Duration::from_secs(3_600)));
        let now = now_ns();
        let items = [
            (Some(now - 2_000), b"{\"a\":1}".as_slice()),
            (None, b"{\"a\":2}"),
            (Some(YEAR_2200), b"{\"a\":3}"),
        ];
        assert!(matches!(
            s.put_many(items),
            Err(Error::TimestampInFuture {
                timestamp: YEAR_2200,
                ..
            })
        ));
        assert_eq!(s.iter().count(), 0);
        assert_eq!(s.stats().newest_timestamp, None);
        // Without the bad item the same batch goes in, stamped ones too.
        let handles = s.put_many(items[..2].iter().copied()).unwrap();
        assert_eq!(handles.len(), 2);
        assert_eq!(s.iter().count(), 2);
    });
}

#[test]
fn put_now_after_the_end_of_time_is_refused_cleanly() {
    each_encoding(|s| {
        s.put(i64::MAX, b"{}").unwrap();
        assert!(matches!(
            s.put_now(b"{}"),
            Err(Error::TimestampOutOfOrder {
                newest: i64::MAX,
                ..
            })
        ));
        assert!(matches!(
            s.put_many([(None, b"{}")]),
            Err(Error::TimestampOutOfOrder {
                newest: i64::MAX,
                ..
            })
        ));
        assert_eq!(s.iter().count(), 1);
    });
}
