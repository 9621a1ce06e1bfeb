//! How far back a store reaches, measured on its own readings: for each
//! encoding, the bytes a reading takes in the ring and the time the store
//! covers once full, beside the span it covers now. A retention planner
//! answers from data when there is some; the arithmetic of `Capacity`
//! alone assumes every reading has one size and every frame one ratio.
//!
//! The store's own encoding is measured on what it holds (a raw ring's
//! bytes in use per record counted; a compressed store's frames written
//! since open). The other encoding is estimated from a sample of the
//! newest readings: laid out as raw objects, or framed with the codec a
//! compressed store of the same data type would use.

use crate::compressed::frame_error;
use crate::config::{Config, staging_blocks};
use crate::encoding::FrameCodec;
use crate::encoding::frame::FILL;
use crate::encoding::split::Record as FrameRecord;
use crate::error::Result;
use crate::format::{
    BLOCK_HEADER_SIZE, DataType, Encoding, OBJECT_HEADER_SIZE, blocks_packed, first_block_capacity,
};
use crate::store::Store;

/// Newest readings sampled for the interval and the estimates: enough
/// for several frames of small sensor readings.
pub const REACH_SAMPLE: usize = 4096;

/// Bytes of a frame object past the zstd frame: its record count and the
/// object header (tombstones are added per record).
const FRAME_OVERHEAD: usize = 4 + OBJECT_HEADER_SIZE;

/// What a store reaches back, now and once full, per encoding.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Reach {
    /// From the oldest reading kept to the newest, in nanoseconds (`None`
    /// while the store is empty).
    pub span_ns: Option<i64>,
    /// Newest readings the figures below were sampled from.
    pub sampled: usize,
    /// Mean time between the sampled readings, in nanoseconds (`None`
    /// with fewer than two, or all at one time).
    pub interval_ns: Option<f64>,
    /// The store's own encoding first.
    pub encodings: Vec<EncodingReach>,
}

/// One encoding's figures for a store of the same blocks.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct EncodingReach {
    pub encoding: Encoding,
    /// Measured on the store's own layout, or estimated from the sample.
    pub measured: bool,
    /// Ring bytes per reading: object headers, block headers and what
    /// packing leaves unused shared out (a compressed store: its frames').
    pub bytes_per_reading: f64,
    /// Readings a full ring holds at that size (a compressed store: its
    /// main ring; the staging ring holds a few more).
    pub capacity_readings: u64,
    /// `capacity_readings` at the sampled interval, in nanoseconds.
    pub full_span_ns: Option<f64>,
}

impl Store {
    /// How far back this store reaches and would reach once full, in its
    /// own encoding (measured) and in the other (estimated from its newest
    /// readings). Reads up to `REACH_SAMPLE` readings.
    pub fn reach(&self) -> Result<Reach> {
        let mut sample = self.newest(REACH_SAMPLE)?;
        sample.sort_by_key(|r| r.timestamp());
        let stats = self.stats();
        let span_ns = match (stats.oldest_timestamp, stats.newest_timestamp) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a).max(0)),
            _ => None,
        };
        let interval_ns = match (sample.first(), sample.last()) {
            (Some(a), Some(b)) if sample.len() > 1 && b.timestamp() > a.timestamp() => {
                Some(b.timestamp().saturating_sub(a.timestamp()) as f64 / (sample.len() - 1) as f64)
            }
            _ => None,
        };
        let config = self.config();
        let payloads: Vec<(i64, &[u8])> = sample
            .iter()
            .map(|r| (r.timestamp(), r.data.as_slice()))
            .collect();
        let raw_measured = match (config.encoding, stats.object_count) {
            (Encoding::Raw, Some(n)) if n > 0 => Some(stats.bytes_used as f64 / n as f64),
            _ => None,
        };
        let framed_measured = self
            .compression()
            .filter(|c| c.records > 0)
            .map(|c| c.bytes_per_reading);
        let raw = match raw_measured {
            Some(b) => Some((b, true)),
            None => raw_estimate(&config, &payloads).map(|b| (b, false)),
        };
        // A raw store too small to be made compressed has no estimate.
        let compressible = Config {
            encoding: Encoding::Compressed,
            ..config
        }
        .validate()
        .is_ok();
        let framed = match framed_measured {
            Some(b) => Some((b, true)),
            None if compressible => frame_estimate(&config, &payloads)?.map(|b| (b, false)),
            None => None,
        };
        let mut encodings: Vec<EncodingReach> =
            [(Encoding::Raw, raw), (Encoding::Compressed, framed)]
                .into_iter()
                .filter_map(|(encoding, figure)| {
                    let (bytes, measured) = figure?;
                    let readings = capacity(&config, encoding, bytes);
                    Some(EncodingReach {
                        encoding,
                        measured,
                        bytes_per_reading: bytes,
                        capacity_readings: readings,
                        full_span_ns: interval_ns.map(|i| i * readings as f64),
                    })
                })
                .collect();
        encodings.sort_by_key(|e| e.encoding != config.encoding);
        Ok(Reach {
            span_ns,
            sampled: sample.len(),
            interval_ns,
            encodings,
        })
    }
}

/// Readings a ring of `config`'s blocks holds in `encoding` at `bytes`
/// per reading: a compressed store's staging blocks hold none for long,
/// and its frames may leave a tenth of a block unfilled (`FILL`, as
/// `Compression::capacity_readings` counts).
fn capacity(config: &Config, encoding: Encoding, bytes: f64) -> u64 {
    let (blocks, fill) = match encoding {
        Encoding::Raw => (config.num_blocks, 1.0),
        Encoding::Compressed => (
            config
                .num_blocks
                .saturating_sub(staging_blocks(config.num_blocks)),
            FILL,
        ),
    };
    let room = (config.data_block_size as usize - BLOCK_HEADER_SIZE) as f64 * fill;
    (blocks as f64 * room / bytes.max(1.0)) as u64
}

/// Ring bytes per reading of `sample` laid out as raw objects, packed as
/// the writer packs them; `None` for an empty sample.
fn raw_estimate(config: &Config, sample: &[(i64, &[u8])]) -> Option<f64> {
    if sample.is_empty() {
        return None;
    }
    let bs = config.data_block_size as f64;
    let (blocks, last) = blocks_packed(sample.iter().map(|(_, p)| p.len()), config.data_block_size);
    // The last block counts as far as it is used.
    Some(((blocks.max(1) - 1) as f64 * bs + last as f64) / sample.len() as f64)
}

/// Frame bytes per reading of `sample` framed as a compressed store of
/// `config`'s data type frames it, a block's room at a time; `None` for
/// an empty sample. An estimate: frames of a live store are cut where
/// its inserts and framer meet.
fn frame_estimate(config: &Config, sample: &[(i64, &[u8])]) -> Result<Option<f64>> {
    if sample.is_empty() {
        return Ok(None);
    }
    let room = first_block_capacity(config.data_block_size) as usize - 4;
    let mut codec = FrameCodec::new(1 << 20).map_err(frame_error)?;
    let columnar = matches!(config.data_type, DataType::Json | DataType::Schema);
    let records: Vec<FrameRecord<'_>> = sample
        .iter()
        .map(|(t, p)| FrameRecord::new(*t, p))
        .collect();
    let mut bytes = 0usize;
    let mut at = 0;
    while at < records.len() {
        let n = codec
            .pack(
                &records[at..],
                columnar,
                room - (records.len() - at).div_ceil(8).min(room / 2),
            )
            .map_err(frame_error)?;
        let n = n.max(1);
        bytes += codec.packed().len() + n.div_ceil(8) + FRAME_OVERHEAD;
        at += n;
    }
    Ok(Some(bytes as f64 / records.len() as f64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SyncPolicy;

    fn filled(encoding: Encoding, n: i64) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            num_blocks: 64,
            data_type: DataType::Json,
            encoding,
            ..Config::default()
        };
        let store = Store::create_with(dir.path(), "s", config, SyncPolicy::Never).unwrap();
        // Sensor-like values: a slow walk with noise, so that frames
        // compress about as real readings do.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let readings: Vec<(i64, Vec<u8>)> = (0..n)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let p = format!(
                    r#"{{"temp":{:.2},"rh":{},"ok":true}}"#,
                    20.0 + (i as f64 / 50.0).sin() * 5.0 + (x % 100) as f64 / 100.0,
                    40 + (x >> 8) % 20
                );
                (1_000_000_000 + i * 10_000_000_000, p.into_bytes())
            })
            .collect();
        store
            .put_many(readings.iter().map(|(t, p)| (Some(*t), p.as_slice())))
            .unwrap();
        store.frame_staged().unwrap();
        (dir, store)
    }

    #[test]
    fn a_store_too_small_to_compress_has_no_compressed_estimate() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            num_blocks: 4,
            ..Config::default()
        };
        let store = Store::create_with(dir.path(), "s", config, SyncPolicy::Never).unwrap();
        store.put(1, br#"{"a":1}"#).unwrap();
        store.put(2, br#"{"a":2}"#).unwrap();
        let reach = store.reach().unwrap();
        let encodings: Vec<Encoding> = reach.encodings.iter().map(|e| e.encoding).collect();
        assert_eq!(encodings, [Encoding::Raw]);
    }

    #[test]
    fn an_empty_store_reaches_nowhere() {
        let (_dir, store) = filled(Encoding::Raw, 0);
        let reach = store.reach().unwrap();
        assert_eq!(
            (reach.span_ns, reach.sampled, reach.interval_ns),
            (None, 0, None)
        );
        assert!(reach.encodings.is_empty());
    }

    #[test]
    fn each_encoding_is_measured_on_its_own_store_and_estimated_on_the_other() {
        let (_raw_dir, raw) = filled(Encoding::Raw, 3000);
        let (_framed_dir, framed) = filled(Encoding::Compressed, 3000);
        let (r, f) = (raw.reach().unwrap(), framed.reach().unwrap());
        for reach in [&r, &f] {
            assert_eq!(reach.span_ns, Some(2999 * 10_000_000_000));
            assert_eq!(reach.interval_ns, Some(10_000_000_000.0));
            assert_eq!(reach.sampled, 3000);
            assert_eq!(reach.encodings.len(), 2);
        }
        let pick = |reach: &Reach, e| *reach.encodings.iter().find(|x| x.encoding == e).unwrap();
        // Own encoding first, measured; the other estimated.
        assert_eq!(r.encodings[0].encoding, Encoding::Raw);
        assert_eq!(f.encodings[0].encoding, Encoding::Compressed);
        assert!(pick(&r, Encoding::Raw).measured && !pick(&r, Encoding::Compressed).measured);
        assert!(pick(&f, Encoding::Compressed).measured && !pick(&f, Encoding::Raw).measured);
        // The estimates agree with the other store's measure within a
        // few per cent: raw layout exactly as the writer packs it, frames
        // cut where a live store cuts them.
        let near = |a: f64, b: f64, within: f64| (a / b - 1.0).abs() < within;
        let (raw_measured, raw_estimated) = (
            pick(&r, Encoding::Raw).bytes_per_reading,
            pick(&f, Encoding::Raw).bytes_per_reading,
        );
        assert!(
            near(raw_measured, raw_estimated, 0.02),
            "{raw_measured} vs {raw_estimated}"
        );
        let (framed_measured, framed_estimated) = (
            pick(&f, Encoding::Compressed).bytes_per_reading,
            pick(&r, Encoding::Compressed).bytes_per_reading,
        );
        assert!(
            near(framed_measured, framed_estimated, 0.25),
            "{framed_measured} vs {framed_estimated}"
        );
        assert!(
            framed_measured * 4.0 < raw_measured,
            "{framed_measured} vs {raw_measured}"
        );
        // Full: readings the blocks hold, at the sampled interval.
        let full = pick(&r, Encoding::Raw);
        assert_eq!(
            full.full_span_ns,
            Some(full.capacity_readings as f64 * 1e10)
        );
        assert!(full.capacity_readings > 3000 / 2 && full.capacity_readings < 64 * 4096 / 40);
    }
}
