//! A memo of what short typed tokens become. Typing a token (`10.0.0.7`,
//! `HTTP/1.1"`, `24ms`, `port=5432`) tries several rules; the same few
//! forms come back line after line with other digits. The masking rules
//! look at digits only as digits (how many, where), never at their values,
//! except for the `0` of `0x`, and a digit never reaches the shape: so a
//! token with every digit `1`-`9` written as `1` has the same shape, and
//! that is the key. A hit gives the bytes the rules gave; a miss runs them
//! and stores their result. The memo changes speed only, never a shape.
//!
//! Direct-mapped: [`SLOTS`] slots of 128 bytes (512 KiB per thread), a new
//! key takes its slot's place.

/// Longest token memoized (bytes).
pub const MAX_TOKEN: usize = KEY_BYTES;
const MAX_OUT: usize = 92;
const SLOTS: usize = 4096;

use super::scan::{KEY_BYTES, KEY_WORDS};

/// 128 bytes.
#[derive(Clone, Copy)]
struct Slot {
    key: [u64; KEY_WORDS],
    len: u8,
    out_len: u8,
    tail: Tail,
    out: [u8; MAX_OUT],
}

const EMPTY: Slot = Slot { key: [0; KEY_WORDS], len: 0, out_len: 0, tail: Tail { num: false, paren: false }, out: [0; MAX_OUT] };

/// How a token's output ends: with `<NUM>` (a unit after it joins it),
/// with `)` (it may be an aside to leave out). Kept beside the bytes, so
/// the shape being built is never read back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tail {
    pub num: bool,
    pub paren: bool,
}

impl Tail {
    pub fn of(out: &[u8]) -> Tail {
        Tail { num: out.ends_with(super::mask::NUM), paren: out.last() == Some(&b')') }
    }
}

pub struct Memo {
    slots: Box<[Slot]>,
}

impl Default for Memo {
    fn default() -> Self {
        Memo { slots: vec![EMPTY; SLOTS].into_boxed_slice() }
    }
}

/// A token's key: its bytes (at most [`MAX_TOKEN`]) with digits `1`-`9` as
/// `1`, and its length.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Key {
    words: [u64; KEY_WORDS],
    len: u8,
}

impl Key {
    /// The key of a token from its digit-blind bytes (zero past its end, see
    /// `scan::Bits::blind`) and its length (at most [`MAX_TOKEN`]).
    #[inline]
    pub fn new(words: [u64; KEY_WORDS], len: usize) -> Key {
        debug_assert!(len <= MAX_TOKEN);
        Key { words, len: len as u8 }
    }

    #[inline]
    fn slot(&self) -> usize {
        let w = self.words;
        let h = (w[0] ^ w[1].rotate_left(29) ^ w[2].rotate_left(43) ^ w[3].rotate_left(13) ^ self.len as u64)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (h >> (64 - SLOTS.trailing_zeros())) as usize
    }
}

impl Memo {
    /// Appends to `out` what a token of this key became, when it is held.
    #[inline]
    pub fn append(&self, key: Key, out: &mut Vec<u8>) -> Option<Tail> {
        let s = &self.slots[key.slot()];
        if s.len != key.len || s.key != key.words {
            return None;
        }
        // Short ones: a fixed-size copy cut back, no call to memcpy.
        let (at, n) = (out.len(), s.out_len as usize);
        if n <= 32 {
            out.extend_from_slice(&s.out[..32]);
            out.truncate(at + n);
        } else {
            out.extend_from_slice(&s.out[..n]);
        }
        Some(s.tail)
    }

    /// Holds what a token of this key became (not when longer than a slot
    /// takes), and says how it ends.
    #[inline]
    pub fn put(&mut self, key: Key, out: &[u8]) -> Tail {
        let tail = Tail::of(out);
        if out.len() <= MAX_OUT {
            let s = &mut self.slots[key.slot()];
            s.key = key.words;
            s.len = key.len;
            s.out_len = out.len() as u8;
            s.tail = tail;
            s.out[..out.len()].copy_from_slice(out);
        }
        tail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key of a token on its own.
    fn k(s: &str) -> Key {
        let mut b = super::super::scan::Bits::default();
        b.fill(s.as_bytes());
        Key::new(b.blind(0, s.len()), s.len())
    }

    #[test]
    fn keys_keep_zeros_and_everything_but_other_digits() {
        assert_eq!(k("10.56.8.104"), k("10.11.1.101"));
        assert_eq!(k("a9"), k("a1"));
        assert_ne!(k("0x1f"), k("1x1f"));
        assert_ne!(k("a"), k("a\0"));
        assert_ne!(k("ab"), k("ba"));
        let mut m = Memo::default();
        let mut out = b"took ".to_vec();
        assert_eq!(m.append(k("12ms"), &mut out), None);
        assert_eq!(m.put(k("12ms"), b"<DURATION>"), Tail { num: false, paren: false });
        assert_eq!(m.append(k("93ms"), &mut out), Some(Tail { num: false, paren: false }));
        assert_eq!(out, b"took <DURATION>");
        assert_eq!(m.append(k("103ms"), &mut out), None);
        assert_eq!(m.put(k("(x=1)"), b"(x=<NUM>)"), Tail { num: false, paren: true });
        assert_eq!(m.put(k("x=1"), b"x=<NUM>"), Tail { num: true, paren: false });
    }
}
