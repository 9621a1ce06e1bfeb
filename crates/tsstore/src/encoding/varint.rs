//! Unsigned LEB128 varints, and the forward cursor a frame body is read
//! with: the bottom of the compressed encoding, used by the body codec
//! (`columns`) and by the value columns an insert lays out (`split::laid`).

/// Why a body cannot be read back (a bug or damage the frame's checksum
/// did not catch; callers treat it as corruption).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("compressed frame body: {0}")]
pub struct BodyError(pub &'static str);

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads forward through a body.
pub(crate) struct Cursor<'a> {
    pub(crate) b: &'a [u8],
    pub(crate) i: usize,
}

impl<'a> Cursor<'a> {
    #[inline]
    pub(crate) fn varint(&mut self) -> Result<u64, BodyError> {
        // Most are one byte (value lengths, shapes); the rest a few
        // (timestamp steps), read from one slice without a check each.
        let rest = &self.b[self.i.min(self.b.len())..];
        let mut v = 0u64;
        for (k, &byte) in rest.iter().take(10).enumerate() {
            v |= u64::from(byte & 0x7f) << (7 * k as u32);
            if byte < 0x80 {
                self.i += k + 1;
                return Ok(v);
            }
        }
        Err(BodyError(if rest.len() < 10 {
            "truncated varint"
        } else {
            "varint longer than 64 bits"
        }))
    }

    /// A count that cannot exceed what is left of the body.
    #[inline]
    pub(crate) fn count(&mut self) -> Result<usize, BodyError> {
        let v = self.varint()?;
        if v > (self.b.len() - self.i) as u64 + 1 {
            return Err(BodyError("count larger than the body"));
        }
        Ok(v as usize)
    }

    /// The bytes of the next `count` varints, stepped over. A varint ends
    /// at its first byte below 0x80, so whole chunks are counted at once
    /// (the compiler vectorizes the count): a lookup steps over columns of
    /// a thousand varints to reach one value.
    pub(crate) fn skip_varints(&mut self, count: usize) -> Result<&'a [u8], BodyError> {
        const CHUNK: usize = 32;
        let rest = &self.b[self.i.min(self.b.len())..];
        let (mut left, mut len) = (count, 0);
        while left > 0 {
            if let Some(chunk) = rest.get(len..).and_then(|r| r.first_chunk::<CHUNK>()) {
                let ends = chunk.iter().filter(|&&b| b < 0x80).count();
                // The whole chunk, if its varints are all wanted and it
                // does not stop inside one that is not.
                if ends < left || (ends == left && chunk[CHUNK - 1] < 0x80) {
                    left -= ends;
                    len += CHUNK;
                    continue;
                }
            }
            let byte = *rest.get(len).ok_or(BodyError("truncated varint"))?;
            len += 1;
            if byte < 0x80 {
                left -= 1;
            }
        }
        self.bytes(len)
    }

    /// The sum of the next `count` varints (lengths), stepped over: one
    /// byte each, the usual case, is a sum of the bytes.
    pub(crate) fn sum_varints(&mut self, count: usize) -> Result<usize, BodyError> {
        let varints = self.skip_varints(count)?;
        if varints.len() == count {
            return Ok(varints.iter().map(|&b| usize::from(b)).sum());
        }
        let mut c = Cursor { b: varints, i: 0 };
        let mut total = 0usize;
        for _ in 0..count {
            total = total
                .checked_add(
                    usize::try_from(c.varint()?).map_err(|_| BodyError("length overflow"))?,
                )
                .ok_or(BodyError("length overflow"))?;
        }
        Ok(total)
    }

    pub(crate) fn bytes(&mut self, len: usize) -> Result<&'a [u8], BodyError> {
        let end = self
            .i
            .checked_add(len)
            .ok_or(BodyError("length overflow"))?;
        let s = self
            .b
            .get(self.i..end)
            .ok_or(BodyError("truncated bytes"))?;
        self.i = end;
        Ok(s)
    }
}
