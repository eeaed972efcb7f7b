//! Token boundaries of a message, found 64 bytes at a time: one bit per byte
//! says "whitespace", another "digit, slash, `@` or quote" (a byte that makes
//! a token worth typing). Tokens are then read off the bits (trailing-zero
//! counts), with no branch per byte: at a token's end a byte loop
//! mispredicts, and a message has a dozen tokens.
//!
//! A third bit says "digit" (a token of digits only is a number, the
//! commonest variable), and a copy of the message with every digit `1`-`9`
//! written as `1` gives a short token's memo key with two loads.
//!
//! On x86_64 all of it comes from SSE2 compares, 16 bytes at a time (SSE2 is
//! part of the baseline: no feature detection); elsewhere, and for a message
//! shorter than 16 bytes, from a byte loop over the same classes.

/// Longest message scanned (the rest of a longer one is not shaped).
pub const MAX: usize = 2048;
const WORDS: usize = MAX / 64;
/// Longest token [`Bits::blind`] gives (the memo's keys).
pub const KEY_BYTES: usize = 32;
pub const KEY_WORDS: usize = KEY_BYTES / 8;

/// The bits of one message (at most [`MAX`] bytes), and its bytes with
/// every digit `1`-`9` written as `1` (the memo's key, see `memo.rs`).
/// Kept from message to message: [`Bits::fill`] writes only what a message
/// covers, and nothing past it is read.
pub struct Bits {
    ws: [u64; WORDS],
    special: [u64; WORDS],
    digit: [u64; WORDS],
    blind: [u8; MAX + KEY_BYTES],
    len: usize,
}

impl Default for Bits {
    fn default() -> Self {
        Bits { ws: [0; WORDS], special: [0; WORDS], digit: [0; WORDS], blind: [0; MAX + KEY_BYTES], len: 0 }
    }
}

/// Where [`Bits::next_token`] is: the word, and its token starts not yet
/// given.
pub struct Cursor {
    word: usize,
    starts: u64,
}

/// The bits of 16 bytes: whitespace, special, digit; and the bytes with
/// digits `1`-`9` as `1`.
struct Block {
    ws: u16,
    special: u16,
    digit: u16,
    blind: [u8; 16],
}

impl Bits {
    /// The bits of `msg` (at most [`MAX`] bytes).
    pub fn fill(&mut self, msg: &[u8]) {
        debug_assert!(msg.len() <= MAX);
        let len = msg.len().min(MAX);
        self.len = len;
        // The words being filled, stored when full (no clearing beforehand).
        let mut word = [0u64; 3];
        let mut at = 0;
        while at + 16 <= len {
            let b = block(msg[at..at + 16].try_into().expect("16 bytes"));
            self.blind[at..at + 16].copy_from_slice(&b.blind);
            for (w, bits) in word.iter_mut().zip([b.ws, b.special, b.digit]) {
                *w |= u64::from(bits) << (at % 64);
            }
            at += 16;
            if at % 64 == 0 {
                self.store(at / 64 - 1, word);
                word = [0; 3];
            }
        }
        if at < len {
            let mut b = if len >= 16 {
                // The last 16 bytes, of which the first ones were seen.
                let b = block(msg[len - 16..].try_into().expect("16 bytes"));
                self.blind[len - 16..len].copy_from_slice(&b.blind);
                b
            } else {
                // Byte by byte: copying a short message into a padded block
                // and loading it whole stalls on store forwarding.
                for (d, &c) in self.blind.iter_mut().zip(msg) {
                    *d = if c.is_ascii_digit() && c != b'0' { b'1' } else { c };
                }
                let bit = |f: fn(u8) -> bool| msg.iter().enumerate().fold(0u16, |m, (i, &c)| m | u16::from(f(c)) << i);
                Block { ws: bit(is_ws), special: bit(is_special), digit: bit(|c| c.is_ascii_digit()), blind: [0; 16] }
            };
            let seen = if len >= 16 { 16 - (len - at) } else { 0 };
            for (w, bits) in word.iter_mut().zip([&mut b.ws, &mut b.special, &mut b.digit]) {
                *w |= u64::from(*bits >> seen) << (at % 64);
            }
        }
        if !len.is_multiple_of(64) {
            // Past the end is whitespace: the last token ends there.
            word[0] |= !0u64 << (len % 64);
            self.store(len / 64, word);
        }
    }

    #[inline]
    fn store(&mut self, w: usize, [ws, special, digit]: [u64; 3]) {
        self.ws[w] = ws;
        self.special[w] = special;
        self.digit[w] = digit;
    }

    /// The next token (`start..end`) after the cursor, and whether it
    /// holds a special byte.
    #[inline]
    pub fn next_token(&self, at: &mut Cursor) -> Option<(usize, usize, bool)> {
        let words = self.len.div_ceil(64);
        if at.word >= words {
            return None;
        }
        while at.starts == 0 {
            at.word += 1;
            if at.word >= words {
                return None;
            }
            at.starts = self.starts(at.word);
        }
        let start = at.word * 64 + at.starts.trailing_zeros() as usize;
        at.starts &= at.starts - 1;
        // Its end: the next whitespace (past the end, all is whitespace).
        let mut w = at.word;
        let mut ws = self.ws[w] & (!0u64 << (start % 64));
        while ws == 0 {
            w += 1;
            if w >= words {
                break;
            }
            ws = self.ws[w];
        }
        let end = if ws == 0 { self.len } else { (w * 64 + ws.trailing_zeros() as usize).min(self.len) };
        Some((start, end, self.any(&self.special, start, end)))
    }

    /// Token starts in word `w`: not whitespace, after whitespace (or at 0).
    #[inline]
    fn starts(&self, w: usize) -> u64 {
        let before = if w == 0 { 1 } else { self.ws[w - 1] >> 63 };
        !self.ws[w] & (self.ws[w] << 1 | before)
    }

    /// A cursor at the message's first token.
    #[inline]
    pub fn cursor(&self) -> Cursor {
        Cursor { word: 0, starts: if self.len == 0 { 0 } else { self.starts(0) } }
    }

    /// Whether any bit of `start..end` (not empty) is set.
    #[inline]
    fn any(&self, bits: &[u64; WORDS], start: usize, end: usize) -> bool {
        let (first, last) = (start / 64, (end - 1) / 64);
        let lo = !0u64 << (start % 64);
        let hi = !0u64 >> (63 - (end - 1) % 64);
        if first == last {
            return bits[first] & lo & hi != 0;
        }
        bits[first] & lo != 0 || bits[first + 1..last].iter().any(|&s| s != 0) || bits[last] & hi != 0
    }

    /// Whether `start..end` (a token) is all digits.
    #[inline]
    pub fn all_digits(&self, start: usize, end: usize) -> bool {
        let (first, last) = (start / 64, (end - 1) / 64);
        let lo = !0u64 << (start % 64);
        let hi = !0u64 >> (63 - (end - 1) % 64);
        if first == last {
            return !self.digit[first] & lo & hi == 0;
        }
        !self.digit[first] & lo == 0 && self.digit[first + 1..last].iter().all(|&s| s == !0) && !self.digit[last] & hi == 0
    }

    /// The bytes of `start..end` (at most [`KEY_BYTES`]) with digits
    /// `1`-`9` as `1`, little-endian in words, zero past the end.
    #[inline]
    pub fn blind(&self, start: usize, end: usize) -> [u64; KEY_WORDS] {
        debug_assert!(end - start <= KEY_BYTES);
        let b = &self.blind[start..start + KEY_BYTES];
        // `n` bytes of 0xff then zeros, from a sliding window: no branch.
        let keep = &KEEP[KEY_BYTES - (end - start)..][..KEY_BYTES];
        std::array::from_fn(|i| {
            let word = |s: &[u8]| u64::from_le_bytes(s[8 * i..8 * i + 8].try_into().expect("8 bytes"));
            word(b) & word(keep)
        })
    }
}

static KEEP: [u8; 2 * KEY_BYTES] = {
    let mut k = [0u8; 2 * KEY_BYTES];
    let mut i = 0;
    while i < KEY_BYTES {
        k[i] = 0xff;
        i += 1;
    }
    k
};

/// The [`Block`] of 16 bytes.
#[cfg(target_arch = "x86_64")]
#[inline]
fn block(b: &[u8; 16]) -> Block {
    use std::arch::x86_64::*;
    let half = |o: usize| i64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"));
    let mut blind = [0u8; 16];
    // SAFETY: SSE2 is part of every x86_64 target; the one store writes the
    // 16 bytes of `blind`.
    let (w, s, d) = unsafe {
        let x = _mm_set_epi64x(half(8), half(0));
        let eq = |c: u8| _mm_cmpeq_epi8(x, _mm_set1_epi8(c as i8));
        // x - lo <= n (unsigned): max(x - lo, n) == n.
        let within = |lo: u8, n: u8| {
            let d = _mm_sub_epi8(x, _mm_set1_epi8(lo as i8));
            let n = _mm_set1_epi8(n as i8);
            _mm_cmpeq_epi8(_mm_max_epu8(d, n), n)
        };
        let w = _mm_or_si128(eq(b' '), within(b'\t', 4));
        let d = within(b'0', 9);
        let s = _mm_or_si128(
            _mm_or_si128(d, _mm_or_si128(eq(b'/'), eq(b'\\'))),
            _mm_or_si128(_mm_or_si128(eq(b'@'), eq(b'"')), _mm_or_si128(eq(b'\''), eq(b'`'))),
        );
        // Digits but `0` become `1`.
        let nonzero = _mm_andnot_si128(eq(b'0'), d);
        let v = _mm_or_si128(_mm_andnot_si128(nonzero, x), _mm_and_si128(nonzero, _mm_set1_epi8(b'1' as i8)));
        _mm_storeu_si128(blind.as_mut_ptr().cast(), v);
        (_mm_movemask_epi8(w), _mm_movemask_epi8(s), _mm_movemask_epi8(d))
    };
    Block { ws: w as u16, special: s as u16, digit: d as u16, blind }
}

#[cfg(not(target_arch = "x86_64"))]
fn block(b: &[u8; 16]) -> Block {
    let bit = |f: fn(u8) -> bool| b.iter().enumerate().fold(0u16, |m, (i, &c)| m | u16::from(f(c)) << i);
    let blind = b.map(|c| if c.is_ascii_digit() && c != b'0' { b'1' } else { c });
    Block { ws: bit(is_ws), special: bit(is_special), digit: bit(|c| c.is_ascii_digit()), blind }
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
        let mut at = b.cursor();
        while let Some(t) = b.next_token(&mut at) {
            let tok = &m[t.0..t.1];
            assert_eq!(b.all_digits(t.0, t.1), tok.iter().all(u8::is_ascii_digit), "{tok:?}");
            if tok.len() <= KEY_BYTES {
                let mut want = [0u8; KEY_BYTES];
                for (d, &c) in want.iter_mut().zip(tok) {
                    *d = if matches!(c, b'1'..=b'9') { b'1' } else { c };
                }
                let got = b.blind(t.0, t.1);
                assert_eq!(got.iter().flat_map(|w| w.to_le_bytes()).collect::<Vec<u8>>(), want, "{tok:?}");
            }
            out.push(t);
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
            let m: Vec<u8> = (0..len).map(|i| b" \t\na1/@'x.\xc3\xa909"[((x >> (i % 50)) as usize ^ i) % 14]).collect();
            assert_eq!(scanned(&m), plain(&m));
        }
        assert_eq!(scanned(b""), vec![]);
        assert_eq!(scanned(&[b' '; 128]), vec![]);
        assert_eq!(scanned(&[b'x'; MAX]), vec![(0, MAX, false)]);
    }
}
