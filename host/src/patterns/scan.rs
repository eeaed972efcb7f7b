//! Token boundaries of a message, found 64 bytes at a time: one bit per byte
//! says "whitespace", another "digit, slash, `@` or quote" (a byte that makes
//! a token worth typing). Tokens are then read off the bits (trailing-zero
//! counts), with no branch per byte: at a token's end a byte loop
//! mispredicts, and a message has a dozen tokens.
//!
//! On x86_64 the bits come from SSE2 compares, 16 bytes at a time (SSE2 is
//! part of the baseline: no feature detection); elsewhere, and for a message
//! shorter than 16 bytes, from a byte loop over the same classes.

/// Longest message scanned (the rest of a longer one is not shaped).
pub const MAX: usize = 2048;
const WORDS: usize = MAX / 64;

/// The bits of one message (at most [`MAX`] bytes). Kept from message to
/// message ([`Bits::fill`] writes only the words a message covers).
pub struct Bits {
    ws: [u64; WORDS],
    special: [u64; WORDS],
    len: usize,
}

impl Default for Bits {
    fn default() -> Self {
        Bits { ws: [0; WORDS], special: [0; WORDS], len: 0 }
    }
}

impl Bits {
    /// The bits of `msg` (at most [`MAX`] bytes).
    pub fn fill(&mut self, msg: &[u8]) {
        debug_assert!(msg.len() <= MAX);
        let len = msg.len().min(MAX);
        self.len = len;
        // The word being filled, stored when full (no clearing beforehand).
        let (mut ws, mut sp) = (0u64, 0u64);
        let mut at = 0;
        while at + 16 <= len {
            let (w, s) = bits16(msg[at..at + 16].try_into().expect("16 bytes"));
            ws |= u64::from(w) << (at % 64);
            sp |= u64::from(s) << (at % 64);
            at += 16;
            if at % 64 == 0 {
                self.ws[at / 64 - 1] = ws;
                self.special[at / 64 - 1] = sp;
                (ws, sp) = (0, 0);
            }
        }
        if at < len {
            let (w, s) = if len >= 16 {
                // The last 16 bytes, of which the first ones were seen.
                let (w, s) = bits16(msg[len - 16..].try_into().expect("16 bytes"));
                let seen = 16 - (len - at);
                (w >> seen, s >> seen)
            } else {
                // Byte by byte: copying a short tail into a padded block
                // and loading it whole stalls on store forwarding.
                msg.iter().enumerate().fold((0, 0), |(w, s), (i, &c)| (w | u16::from(is_ws(c)) << i, s | u16::from(is_special(c)) << i))
            };
            ws |= u64::from(w) << (at % 64);
            sp |= u64::from(s) << (at % 64);
        }
        if len % 64 != 0 {
            // Past the end is whitespace: the last token ends there.
            self.ws[len / 64] = ws | !0u64 << (len % 64);
            self.special[len / 64] = sp;
        }
    }

    /// The next token (`start..end`) at or after `from`, and whether it
    /// holds a special byte.
    #[inline]
    pub fn next_token(&self, from: usize) -> Option<(usize, usize, bool)> {
        let start = self.find(from, true)?;
        let end = self.find(start, false).unwrap_or(self.len);
        Some((start, end, self.any_special(start, end)))
    }

    /// The first position at or after `from` that is not whitespace (`word`)
    /// or that is whitespace (`!word`).
    #[inline]
    fn find(&self, from: usize, word: bool) -> Option<usize> {
        let words = self.len.div_ceil(64);
        let mut w = from / 64;
        if w >= words {
            return None;
        }
        let flip = if word { !0 } else { 0 };
        let mut bits = (self.ws[w] ^ flip) & (!0u64 << (from % 64));
        while bits == 0 {
            w += 1;
            if w >= words {
                return None;
            }
            bits = self.ws[w] ^ flip;
        }
        let at = w * 64 + bits.trailing_zeros() as usize;
        (at < self.len).then_some(at)
    }

    #[inline]
    fn any_special(&self, start: usize, end: usize) -> bool {
        let (first, last) = (start / 64, (end - 1) / 64);
        let lo = !0u64 << (start % 64);
        let hi = !0u64 >> (63 - (end - 1) % 64);
        if first == last {
            return self.special[first] & lo & hi != 0;
        }
        self.special[first] & lo != 0 || self.special[first + 1..last].iter().any(|&s| s != 0) || self.special[last] & hi != 0
    }
}

/// (whitespace, special) bits of 16 bytes.
#[cfg(target_arch = "x86_64")]
#[inline]
fn bits16(b: &[u8; 16]) -> (u16, u16) {
    use std::arch::x86_64::*;
    let half = |o: usize| i64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"));
    // SAFETY: value-only SSE2 intrinsics (no memory access); SSE2 is part
    // of every x86_64 target.
    let (w, s) = unsafe {
        let x = _mm_set_epi64x(half(8), half(0));
        let eq = |c: u8| _mm_cmpeq_epi8(x, _mm_set1_epi8(c as i8));
        // x - lo <= n (unsigned): max(x - lo, n) == n.
        let within = |lo: u8, n: u8| {
            let d = _mm_sub_epi8(x, _mm_set1_epi8(lo as i8));
            let n = _mm_set1_epi8(n as i8);
            _mm_cmpeq_epi8(_mm_max_epu8(d, n), n)
        };
        let w = _mm_or_si128(eq(b' '), within(b'\t', 4));
        let s = _mm_or_si128(
            _mm_or_si128(within(b'0', 9), _mm_or_si128(eq(b'/'), eq(b'\\'))),
            _mm_or_si128(_mm_or_si128(eq(b'@'), eq(b'"')), _mm_or_si128(eq(b'\''), eq(b'`'))),
        );
        (_mm_movemask_epi8(w), _mm_movemask_epi8(s))
    };
    (w as u16, s as u16)
}

#[cfg(not(target_arch = "x86_64"))]
fn bits16(b: &[u8; 16]) -> (u16, u16) {
    b.iter().enumerate().fold((0, 0), |(ws, sp), (i, &c)| (ws | u16::from(is_ws(c)) << i, sp | u16::from(is_special(c)) << i))
}

/// What the bits mean, byte by byte (the reference the tests hold the
/// block compares to).
#[inline]
fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

#[inline]
fn is_special(c: u8) -> bool {
    matches!(c, b'0'..=b'9' | b'/' | b'\\' | b'@' | b'"' | b'\'' | b'`')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tokens the plain way: split at whitespace.
    fn plain(m: &[u8]) -> Vec<(usize, usize, bool)> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < m.len() {
            if is_ws(m[i]) {
                i += 1;
                continue;
            }
            let s = i;
            while i < m.len() && !is_ws(m[i]) {
                i += 1;
            }
            out.push((s, i, m[s..i].iter().any(|&c| is_special(c))));
        }
        out
    }

    fn scanned(m: &[u8]) -> Vec<(usize, usize, bool)> {
        let mut b = Bits::default();
        // Leftovers of a longer message must not show.
        b.fill(&[b'7'; MAX]);
        b.fill(m);
        let mut out = Vec::new();
        let mut at = 0;
        while let Some(t) = b.next_token(at) {
            out.push(t);
            at = t.1;
        }
        out
    }

    #[test]
    fn every_byte_class_at_every_position() {
        for c in 0..=255u8 {
            for len in [1, 15, 16, 17, 63, 64, 65, 127, 128, 130, 700] {
                let mut m = vec![b'a'; len];
                for at in [0, len / 2, len - 1] {
                    m[at] = c;
                    assert_eq!(scanned(&m), plain(&m), "byte {c} at {at} of {len}");
                    m[at] = b'a';
                }
            }
        }
    }

    #[test]
    fn tokens_across_blocks() {
        let mut x: u64 = 77;
        for _ in 0..3000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % MAX as u64) as usize;
            let m: Vec<u8> = (0..len).map(|i| b" \t\na1/@'x.\xc3\xa9"[((x >> (i % 50)) as usize ^ i) % 12]).collect();
            assert_eq!(scanned(&m), plain(&m));
        }
        assert_eq!(scanned(b""), vec![]);
        assert_eq!(scanned(&[b' '; 128]), vec![]);
        assert_eq!(scanned(&[b'x'; MAX]), vec![(0, MAX, false)]);
    }
}
