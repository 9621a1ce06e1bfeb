//! A frame: a run of records as one zstd frame (RFC 8878) of their
//! columnar body (`columns`), sized to fill a block.
//!
//! `FrameCodec` keeps one zstd compression and one decompression context
//! (their tables are the costly part to set up) and scratch buffers, so a
//! store's writer and each reader reuse them.

use super::columns::{self, BodyError, BodyView, Prepared, Unpacked};
use super::split::Record;
use super::typed;

/// The byte before the zstd frame of a typed body (`typed`). A frame of a
/// plain body is the zstd frame alone, which starts with zstd's magic
/// number (`28 B5 2F FD`), so the two never look alike.
pub const TYPED: u8 = 0x01;

/// zstd level: 1 is the fast end; higher levels gained 15–20 % more
/// readings per block for 4–5× the CPU in the issue's measurements, too
/// much for a 2-core gateway that is ingesting.
pub const LEVEL: i32 = 1;
/// How full a frame must make its block before `pack` stops trying to
/// add records: the last few percent cost more compressions than they
/// keep readings. At 0.96 (aiming at 0.97) a TMY3 frame took 1.8
/// compressions, most of the framer's time; at 0.90 (aiming at 0.94) it
/// takes 1.3 and the framer runs 19 % fewer instructions, for 3.6 % fewer
/// readings kept, and batch ingest, which keeps both threads busy, gains
/// (docs/BENCHMARKS.md, session 5).
pub const FILL: f64 = 0.90;
/// Where in the block `pack` aims its first try: short of full, between
/// `FILL` and the edge, so that most first tries are kept.
const AIM: f64 = 0.94;
/// zstd's shortest match (level 1's own is 6).
const MIN_MATCH: u32 = 7;
/// Compressions `pack` tries for one block.
const MAX_TRIES: usize = 8;

/// Largest record a compressed store takes (its frame objects hold at
/// most `max_frame` payload bytes): it must fit in one frame
/// object of the main ring even if zstd cannot shrink it (its bound is
/// n + n/128 + a header), with the count, tombstone and body varints.
pub fn max_record(max_frame: u64) -> u64 {
    max_frame.saturating_sub(max_frame / 128 + 256)
}

/// What a record of `payload` bytes counts for in a frame's ratio (raw
/// bytes per frame byte): its payload and its timestamp.
pub fn raw_size(payload: usize) -> usize {
    payload + 8
}

/// Why a frame cannot be made or read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("zstd: {0}")]
    Zstd(std::io::Error),
    #[error(transparent)]
    Body(#[from] BodyError),
    #[error("frame body of {size} bytes is larger than the bound {max}")]
    TooLarge { size: u64, max: usize },
}

pub struct FrameCodec {
    /// Made on the first compression: readers only decompress.
    compressor: Option<zstd::bulk::Compressor<'static>>,
    decompressor: zstd::bulk::Decompressor<'static>,
    body: Vec<u8>,
    /// The frame of the last compression, and the best of `pack`'s tries
    /// (`packed`): reused, as a frame of a block's worth is written and
    /// thrown away a few times per block.
    frame: Vec<u8>,
    best: Vec<u8>,
    /// Raw bytes per frame byte of the last frame packed: the first guess
    /// of how many records fill the next one.
    ratio: f64,
    /// Largest body a frame may unpack to: what the staging area holds.
    max_body: usize,
    /// Whether columnar frames are written typed (`typed`); frames of
    /// either kind are always read.
    write_typed: bool,
    /// A typed body read, and the buffers its columns are read with.
    typed: Vec<u8>,
    scratch: typed::Scratch,
}

impl std::fmt::Debug for FrameCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.debug_struct("FrameCodec")
            .field("max_body", &self.max_body)
            .finish_non_exhaustive()
    }
}

impl FrameCodec {
    pub fn new(max_body: usize) -> Result<FrameCodec, FrameError> {
        Ok(FrameCodec {
            compressor: None,
            decompressor: zstd::bulk::Decompressor::new().map_err(FrameError::Zstd)?,
            body: Vec::new(),
            frame: Vec::new(),
            best: Vec::new(),
            ratio: 8.0,
            max_body,
            write_typed: true,
            typed: Vec::new(),
            scratch: typed::Scratch::default(),
        })
    }

    /// Writes columnar frames typed (the default) or plain, as builds
    /// before typed bodies did: for comparing the two.
    pub fn set_typed(&mut self, typed: bool) {
        self.write_typed = typed;
    }

    /// Raw bytes (`raw_size` each) that fill a frame of `capacity` bytes
    /// at the ratio of the frames packed so far, with a tenth to spare: a
    /// try that falls short of `FILL` is wasted, and the ratio drifts from
    /// frame to frame.
    pub fn frame_worth(&self, capacity: usize) -> usize {
        (capacity as f64 * self.ratio * 1.1) as usize
    }

    /// The frame of all of `records`.
    pub fn compress(
        &mut self,
        records: &[Record<'_>],
        columnar: bool,
    ) -> Result<Vec<u8>, FrameError> {
        let typed = self.typed(columnar);
        columns::encode(records, columnar, typed, &mut self.body);
        self.compress_body(typed)?;
        Ok(self.frame.clone())
    }

    /// Whether a frame of records laid out so (`columnar`) is written
    /// typed: records kept whole have no columns to type.
    fn typed(&self, columnar: bool) -> bool {
        columnar && self.write_typed
    }

    /// Compresses what `body` holds into `frame`, marked as typed if it
    /// is (`typed`); returns its length.
    fn compress_body(&mut self, typed: bool) -> Result<usize, FrameError> {
        let compressor = match &mut self.compressor {
            Some(c) => c,
            None => {
                let mut c = zstd::bulk::Compressor::new(LEVEL).map_err(FrameError::Zstd)?;
                // The block's CRC covers the frame; zstd's own checksum
                // would be a second one. The content size lets a reader
                // size its buffer.
                c.set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(false))
                    .map_err(FrameError::Zstd)?;
                // Matches of 7 bytes or more: a typed body's byte planes
                // repeat in long runs, and shorter matches cost more than
                // the literals they replace (0.4 – 0.8 % smaller TMY3
                // frames, a little faster; docs/BENCHMARKS.md, issue 35).
                c.set_parameter(zstd::zstd_safe::CParameter::MinMatch(MIN_MATCH))
                    .map_err(FrameError::Zstd)?;
                c.include_contentsize(true).map_err(FrameError::Zstd)?;
                self.compressor.insert(c)
            }
        };
        self.frame.clear();
        if typed {
            self.frame.push(TYPED);
        }
        let start = self.frame.len();
        self.frame
            .resize(start + zstd::zstd_safe::compress_bound(self.body.len()), 0);
        let len = compressor
            .compress_to_buffer(&self.body, &mut self.frame[start..])
            .map_err(FrameError::Zstd)?;
        self.frame.truncate(start + len);
        Ok(self.frame.len())
    }

    /// Packs a frame of a prefix of `records` that fills `capacity` bytes
    /// well (at least `FILL` of it when more records are there to take)
    /// and returns how many records it holds; the frame is `packed()`. A
    /// first record too large to fit alone is framed alone, larger than
    /// `capacity` (the caller spans it).
    ///
    /// The count is guessed from the ratio the previous frames had
    /// (`self.ratio`, raw bytes per frame byte) and corrected from each
    /// try's size, so a block usually costs two compressions of about
    /// its own worth of records, whatever the caller has staged.
    pub fn pack(
        &mut self,
        records: &[Record<'_>],
        columnar: bool,
        capacity: usize,
    ) -> Result<usize, FrameError> {
        let raw = |n: usize| {
            records[..n]
                .iter()
                .map(|r| raw_size(r.payload.len()))
                .sum::<usize>()
        };
        let typed = self.typed(columnar);
        // Short of the guess: an overshoot costs a second try.
        let target = (capacity as f64 * self.ratio * AIM) as usize;
        let mut n = 0;
        let mut bytes = 0;
        while n < records.len() && (n == 0 || bytes + raw_size(records[n].payload.len()) <= target)
        {
            bytes += raw_size(records[n].payload.len());
            n += 1;
        }
        // Split only what a frame could take: a quarter more than the
        // guess, and more only if the frame still has room at that reach.
        let mut reach = records.len().min(n + n / 4 + 16);
        let mut best = None;
        let mut fits = 0usize;
        'reach: loop {
            let prepared = Prepared::new(&records[..reach], columnar);
            let mut fails = reach + 1;
            for _ in 0..MAX_TRIES {
                prepared.body(n, typed, &mut self.body);
                let len = self.compress_body(typed)?;
                let scale = capacity as f64 / len.max(1) as f64;
                if len <= capacity {
                    fits = n;
                    let full = len as f64 >= capacity as f64 * FILL;
                    std::mem::swap(&mut self.frame, &mut self.best);
                    best = Some(len);
                    if full {
                        break 'reach;
                    }
                    if n == reach {
                        if reach == records.len() {
                            break 'reach;
                        }
                        reach = records.len().min(reach * 2);
                        n = (n as f64 * scale * 0.99) as usize;
                        n = n.clamp(fits + 1, reach);
                        continue 'reach;
                    }
                } else {
                    fails = n;
                }
                if fails - fits <= 1 {
                    break 'reach;
                }
                // Aim a little short of the edge: overshooting costs a try.
                let guess = (n as f64 * scale * 0.99) as usize;
                n = guess.clamp(fits + 1, fails - 1);
            }
            break;
        }
        match best {
            Some(len) => {
                self.ratio = (raw(fits) as f64 / len.max(1) as f64).clamp(1.0, 64.0);
                Ok(fits)
            }
            None => {
                columns::encode(&records[..1], columnar, typed, &mut self.body);
                self.compress_body(typed)?;
                std::mem::swap(&mut self.frame, &mut self.best);
                Ok(1)
            }
        }
    }

    /// The frame the last `pack` made.
    pub fn packed(&self) -> &[u8] {
        &self.best
    }

    /// Decompresses a frame and parses its body: a view from which any
    /// record can be rebuilt (a lookup by time rebuilds only its own).
    pub fn inflate(&mut self, frame: &[u8]) -> Result<BodyView<'_>, FrameError> {
        self.decompress(frame)?;
        Ok(BodyView::parse(&self.body)?)
    }

    /// Decompresses a frame into `body` as a plain body (a typed one is
    /// unpacked), within `max_body`.
    fn decompress(&mut self, frame: &[u8]) -> Result<(), FrameError> {
        if self.decompress_as_is(frame)? {
            typed::unpack(
                &self.typed,
                &mut self.body,
                self.max_body,
                &mut self.scratch,
            )?;
        }
        Ok(())
    }

    /// Decompresses a frame's body as it is: into `typed` (returns true)
    /// or `body`.
    fn decompress_as_is(&mut self, frame: &[u8]) -> Result<bool, FrameError> {
        match frame.split_first() {
            Some((&TYPED, zstd)) => {
                decompress(&mut self.decompressor, zstd, &mut self.typed, self.max_body)?;
                Ok(true)
            }
            _ => {
                decompress(&mut self.decompressor, frame, &mut self.body, self.max_body)?;
                Ok(false)
            }
        }
    }

    /// The decompressed body of a frame, handed over for keeping (a
    /// lookup's frame cache); the next one gets a new buffer, which costs
    /// less than copying a block's worth of body out.
    pub fn decompressed(&mut self, frame: &[u8]) -> Result<Body, FrameError> {
        Ok(if self.decompress_as_is(frame)? {
            Body::Typed {
                body: std::mem::take(&mut self.typed).into(),
                max: self.max_body,
            }
        } else {
            Body::Plain(std::mem::take(&mut self.body).into())
        })
    }

    /// The record at `ts` in a frame, appended to `out`, without
    /// rebuilding the rest: the frame's record count and the record's
    /// place in it, if any.
    pub fn find(
        &mut self,
        frame: &[u8],
        ts: i64,
        out: &mut Vec<u8>,
    ) -> Result<(usize, Option<usize>), FrameError> {
        Ok(if self.decompress_as_is(frame)? {
            typed::find(&self.typed, ts, out)?
        } else {
            columns::find(&self.body, ts, out)?
        })
    }

    /// Unpacks a whole frame: every record rebuilt into `out` (its
    /// contents replaced); a typed body straight from its columns when
    /// it can be.
    pub fn unpack(&mut self, frame: &[u8], out: &mut Unpacked) -> Result<(), FrameError> {
        if self.decompress_as_is(frame)? {
            typed::unpack_all(
                &self.typed,
                out,
                self.max_body,
                &mut self.body,
                &mut self.scratch,
            )?;
        } else {
            columns::decode(&self.body, out)?;
        }
        Ok(())
    }
}

/// A frame's body, decompressed, as a lookup keeps it: a second lookup
/// in the same frame searches it again without zstd.
#[derive(Debug)]
pub enum Body {
    Plain(Box<[u8]>),
    /// Still typed (`typed`), and the most its plain form may take.
    Typed {
        body: Box<[u8]>,
        max: usize,
    },
}

impl Body {
    /// What `FrameCodec::find` gives for this body's frame.
    pub fn find(&self, ts: i64, out: &mut Vec<u8>) -> Result<(usize, Option<usize>), BodyError> {
        match self {
            Body::Plain(body) => columns::find(body, ts, out),
            Body::Typed { body, .. } => typed::find(body, ts, out),
        }
    }

    /// Every record rebuilt into `out` (its contents replaced).
    pub fn unpack(&self, out: &mut Unpacked) -> Result<(), BodyError> {
        match self {
            Body::Plain(body) => columns::decode(body, out),
            Body::Typed { body, max } => typed::unpack_all(
                body,
                out,
                *max,
                &mut Vec::new(),
                &mut typed::Scratch::default(),
            ),
        }
    }

    /// Bytes it holds (for the frame cache's budget).
    pub fn len(&self) -> usize {
        match self {
            Body::Plain(body) | Body::Typed { body, .. } => body.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Decompresses the zstd frame `frame` into `out`, refusing one that
/// says it holds more than `max` bytes.
fn decompress(
    decompressor: &mut zstd::bulk::Decompressor<'static>,
    frame: &[u8],
    out: &mut Vec<u8>,
    max: usize,
) -> Result<(), FrameError> {
    let size = zstd::zstd_safe::get_frame_content_size(frame)
        .ok()
        .flatten()
        .unwrap_or(u64::MAX);
    if size > max as u64 {
        return Err(FrameError::TooLarge { size, max });
    }
    out.clear();
    out.reserve(size as usize);
    decompressor
        .decompress_to_buffer(frame, out)
        .map_err(FrameError::Zstd)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xorshift64: values that do not repeat in a pattern zstd could find.
    fn noise(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    /// Readings that wander like a sensor's.
    fn readings(n: i64) -> Vec<(i64, Vec<u8>)> {
        let (mut state, mut temp, mut hum) = (0x9e37_79b9_7f4a_7c15_u64, 2000i64, 450i64);
        (1..=n)
            .map(|i| {
                temp += (noise(&mut state) % 21) as i64 - 10;
                hum += (noise(&mut state) % 7) as i64 - 3;
                let p = format!(
                    r#"{{"temp":{}.{:02},"hum":{}.{},"room":"lab-{}"}}"#,
                    temp / 100,
                    temp.rem_euclid(100),
                    hum / 10,
                    hum.rem_euclid(10),
                    noise(&mut state) % 3
                );
                (
                    1_700_000_000_000_000_000 + i * 60_000_000_000,
                    p.into_bytes(),
                )
            })
            .collect()
    }

    #[test]
    fn packs_the_longest_prefix_that_fits_and_unpacks_it_exactly() {
        let records = readings(5000);
        let refs: Vec<Record<'_>> = records.iter().map(|(t, p)| Record::new(*t, p)).collect();
        let mut codec = FrameCodec::new(1 << 20).unwrap();
        let n = codec.pack(&refs, true, 4000).unwrap();
        let frame = codec.packed().to_vec();
        assert!(
            frame.len() <= 4000 && n > 100 && n < 5000,
            "{n} records in {}",
            frame.len()
        );
        assert!(
            frame.len() as f64 >= 4000.0 * FILL,
            "the block is well filled"
        );
        let mut out = Unpacked::default();
        codec.unpack(&frame, &mut out).unwrap();
        assert_eq!(out.len(), n);
        for (i, (want_ts, want)) in records.iter().take(n).enumerate() {
            assert_eq!((&out.stamps[i], out.payload(i)), (want_ts, &want[..]));
        }
    }

    #[test]
    fn a_record_too_large_for_one_block_is_framed_alone() {
        let mut state = 7;
        let big: Vec<u8> = (0..20_000).map(|_| noise(&mut state) as u8).collect();
        let records = [Record::new(1, &big), Record::new(2, b"{}")];
        let mut codec = FrameCodec::new(1 << 20).unwrap();
        let n = codec.pack(&records, false, 4000).unwrap();
        let frame = codec.packed();
        assert_eq!(n, 1);
        assert!(frame.len() > 4000);
    }

    #[test]
    fn a_frame_that_claims_too_much_is_refused() {
        let records = readings(2000);
        let refs: Vec<Record<'_>> = records.iter().map(|(t, p)| Record::new(*t, p)).collect();
        let mut codec = FrameCodec::new(1 << 20).unwrap();
        let frame = codec.compress(&refs, true).unwrap();
        let mut small = FrameCodec::new(1000).unwrap();
        let mut out = Unpacked::default();
        assert!(matches!(
            small.unpack(&frame, &mut out),
            Err(FrameError::TooLarge { .. })
        ));
        assert!(codec.unpack(&frame[..frame.len() / 2], &mut out).is_err());
    }
}
