//! CRC-32C of short inputs: the checksum every object read verifies.
//!
//! The `crc32c` crate is built for long buffers: it steps byte by byte to
//! an 8-byte boundary, then runs three interleaved streams, then finishes
//! byte by byte. A record is typically 50–200 bytes at any alignment, so
//! most of its time went to those byte steps (up to 14 of them, each a
//! 3-cycle dependent instruction) and to setting up streams it never ran:
//! about 40 ns per record, the largest cost of a range read. Here short
//! inputs take unaligned 8-byte steps (free on the CPUs that have the
//! instruction) and one 4-, 2- and 1-byte step at most; long ones, and
//! CPUs without the instruction, still go to the crate. Same polynomial,
//! same results (the tests compare them).

/// Inputs up to this length take the short path; longer ones gain more
/// from the crate's three streams than they lose to its alignment steps.
const SHORT: usize = 512;

/// `crc32c::crc32c_append`, faster on short inputs.
#[inline]
pub(crate) fn crc32c_append(crc: u32, data: &[u8]) -> u32 {
    if data.len() <= SHORT
        && let Some(crc) = short(crc, data)
    {
        return crc;
    }
    crc32c::crc32c_append(crc, data)
}

/// CRC-32C of `timestamp ‖ len ‖ payload` (little-endian) continued from
/// `seed`: an object's checksum, in one pass on the short path.
#[inline]
pub(crate) fn object_crc(seed: u32, timestamp: i64, payload: &[u8]) -> u32 {
    let len = payload.len() as u32;
    if payload.len() <= SHORT
        && let Some(crc) = short_object(seed, timestamp, len, payload)
    {
        return crc;
    }
    let mut head = [0u8; 12];
    head[..8].copy_from_slice(&timestamp.to_le_bytes());
    head[8..].copy_from_slice(&len.to_le_bytes());
    crc32c::crc32c_append(crc32c::crc32c_append(seed, &head), payload)
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn short(crc: u32, data: &[u8]) -> Option<u32> {
    if std::arch::is_x86_feature_detected!("sse4.2") {
        // SAFETY: the CPU has SSE 4.2, checked just above.
        return Some(unsafe { !short_sse42(!crc, data) });
    }
    None
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn short_object(seed: u32, timestamp: i64, len: u32, payload: &[u8]) -> Option<u32> {
    if std::arch::is_x86_feature_detected!("sse4.2") {
        // SAFETY: the CPU has SSE 4.2, checked just above.
        return Some(unsafe { object_sse42(seed, timestamp, len, payload) });
    }
    None
}

/// The object's CRC: timestamp, length and payload in one run. Inside the
/// feature's own function so the intrinsics inline.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse4.2")]
unsafe fn object_sse42(seed: u32, timestamp: i64, len: u32, payload: &[u8]) -> u32 {
    use std::arch::x86_64::{_mm_crc32_u32, _mm_crc32_u64};
    let c = _mm_crc32_u64(!seed as u64, timestamp as u64) as u32;
    // SAFETY: this function runs only where SSE 4.2 is present.
    !unsafe { short_sse42(_mm_crc32_u32(c, len), payload) }
}

/// The running (inverted) CRC `c` continued over `data`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse4.2")]
unsafe fn short_sse42(mut c: u32, data: &[u8]) -> u32 {
    use std::arch::x86_64::{_mm_crc32_u8, _mm_crc32_u16, _mm_crc32_u32, _mm_crc32_u64};
    let mut chunks = data.chunks_exact(8);
    for w in chunks.by_ref() {
        let w = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        c = _mm_crc32_u64(c as u64, w) as u32;
    }
    let mut rest = chunks.remainder();
    if rest.len() >= 4 {
        c = _mm_crc32_u32(c, u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]));
        rest = &rest[4..];
    }
    if rest.len() >= 2 {
        c = _mm_crc32_u16(c, u16::from_le_bytes([rest[0], rest[1]]));
        rest = &rest[2..];
    }
    if let Some(&b) = rest.first() {
        c = _mm_crc32_u8(c, b);
    }
    c
}

#[cfg(target_arch = "aarch64")]
#[inline]
fn short(crc: u32, data: &[u8]) -> Option<u32> {
    if std::arch::is_aarch64_feature_detected!("crc") {
        // SAFETY: the CPU has the CRC extension, checked just above.
        return Some(unsafe { !short_armv8(!crc, data) });
    }
    None
}

#[cfg(target_arch = "aarch64")]
#[inline]
fn short_object(seed: u32, timestamp: i64, len: u32, payload: &[u8]) -> Option<u32> {
    if std::arch::is_aarch64_feature_detected!("crc") {
        // SAFETY: the CPU has the CRC extension, checked just above.
        return Some(unsafe { object_armv8(seed, timestamp, len, payload) });
    }
    None
}

/// The object's CRC: timestamp, length and payload in one run. Inside the
/// feature's own function so the intrinsics inline.
#[cfg(target_arch = "aarch64")]
#[target_feature(enable = "crc")]
unsafe fn object_armv8(seed: u32, timestamp: i64, len: u32, payload: &[u8]) -> u32 {
    use std::arch::aarch64::{__crc32cd, __crc32cw};
    let c = __crc32cd(!seed, timestamp as u64);
    // SAFETY: this function runs only where the CRC extension is present.
    !unsafe { short_armv8(__crc32cw(c, len), payload) }
}

/// The running (inverted) CRC `c` continued over `data`.
#[cfg(target_arch = "aarch64")]
#[target_feature(enable = "crc")]
unsafe fn short_armv8(mut c: u32, data: &[u8]) -> u32 {
    use std::arch::aarch64::{__crc32cb, __crc32cd, __crc32ch, __crc32cw};
    let mut chunks = data.chunks_exact(8);
    for w in chunks.by_ref() {
        let w = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        c = __crc32cd(c, w);
    }
    let mut rest = chunks.remainder();
    if rest.len() >= 4 {
        c = __crc32cw(c, u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]));
        rest = &rest[4..];
    }
    if rest.len() >= 2 {
        c = __crc32ch(c, u16::from_le_bytes([rest[0], rest[1]]));
        rest = &rest[2..];
    }
    if let Some(&b) = rest.first() {
        c = __crc32cb(c, b);
    }
    c
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
#[inline]
fn short(_crc: u32, _data: &[u8]) -> Option<u32> {
    None
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
#[inline]
fn short_object(_seed: u32, _timestamp: i64, _len: u32, _payload: &[u8]) -> Option<u32> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn short_inputs_match_the_crate_at_every_alignment(
            seed in any::<u32>(),
            data in proptest::collection::vec(any::<u8>(), 0..600),
            skip in 0usize..8,
        ) {
            let data = &data[skip.min(data.len())..];
            prop_assert_eq!(crc32c_append(seed, data), crc32c::crc32c_append(seed, data));
        }

        #[test]
        fn object_checksums_match_the_crate(
            seed in any::<u32>(),
            ts in any::<i64>(),
            data in proptest::collection::vec(any::<u8>(), 0..600),
        ) {
            let mut whole = ts.to_le_bytes().to_vec();
            whole.extend_from_slice(&(data.len() as u32).to_le_bytes());
            whole.extend_from_slice(&data);
            prop_assert_eq!(object_crc(seed, ts, &data), crc32c::crc32c_append(seed, &whole));
        }
    }

    #[test]
    fn a_known_vector() {
        // CRC-32C of "123456789" (RFC 3720's check value).
        assert_eq!(crc32c_append(0, b"123456789"), 0xE306_9283);
    }
}
