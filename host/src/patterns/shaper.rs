//! The per-line loop of shaping: reads a message's tokens off its bits
//! (`scan.rs`), copies plain words, and types the others by the rules of
//! `mask.rs` or from the memo (`memo.rs`). Everything here changes speed
//! only: the shape is the rules' (design in `docs/patterns.md`).

use std::cell::RefCell;

use super::mask::{classes, drop_value_aside, is_calendar_word, is_trail, token, unit, DATE, MAX_MESSAGE, MAX_TOKENS, NUM, WILDCARD};
use super::{memo, scan};

/// Writes the shape of `msg` into `out` (cleared first): masked tokens joined
/// by one space. Returns the number of tokens.
pub fn shape(msg: &[u8], out: &mut Vec<u8>) -> usize {
    thread_local! {
        static SHAPER: RefCell<Option<Box<Shaper>>> = const { RefCell::new(None) };
    }
    SHAPER.with(|s| s.borrow_mut().get_or_insert_with(Default::default).shape(msg, out))
}

/// What shaping keeps from message to message (per thread): the token bits
/// and the memo of typed tokens.
#[derive(Default)]
struct Shaper {
    bits: scan::Bits,
    memo: memo::Memo,
}

impl Shaper {
    fn shape(&mut self, msg: &[u8], out: &mut Vec<u8>) -> usize {
        out.clear();
        let (msg, cut) = if msg.len() > MAX_MESSAGE { (&msg[..MAX_MESSAGE], true) } else { (msg, false) };
        self.bits.fill(msg);
        let mut n = 0usize;
        let mut at = self.bits.cursor();
        // `out` ends with `<NUM>` (a unit after it joins it).
        let mut num_tail = false;
        while let Some((start, end, special)) = self.bits.next_token(&mut at) {
            if n == MAX_TOKENS {
                out.extend_from_slice(b" ");
                out.extend_from_slice(WILDCARD);
                n += 1;
                return n;
            }
            if !special {
                // Letters and punctuation only (the common case).
                num_tail = plain(msg, start..end, out, &mut n, num_tail);
                continue;
            }
            if n > 0 {
                out.push(b' ');
            }
            n += 1;
            let tail = self.special(msg, start..end, out);
            num_tail = tail.num;
            if tail.paren {
                drop_value_aside(out, &mut n);
                num_tail = out.ends_with(NUM);
            }
        }
        if cut {
            if n > 0 {
                out.push(b' ');
            }
            out.extend_from_slice(WILDCARD);
            n += 1;
        }
        n
    }

    /// A token with a digit, slash, `@` or quote, typed by the rules or
    /// found in the memo.
    #[inline]
    fn special(&mut self, msg: &[u8], span: std::ops::Range<usize>, out: &mut Vec<u8>) -> memo::Tail {
        if self.bits.all_digits(span.start, span.end) {
            // The commonest variable: a plain number.
            out.extend_from_slice(NUM);
            return memo::Tail { num: true, paren: false };
        }
        let tok = &msg[span.clone()];
        let at = out.len();
        if tok.len() > memo::MAX_TOKEN {
            let (flags, kind) = classes(tok);
            token(tok, flags, kind, out);
            return memo::Tail::of(&out[at..]);
        }
        let key = memo::Key::new(self.bits.blind(span.start, span.end), tok.len());
        if let Some(tail) = self.memo.append(key, out) {
            return tail;
        }
        let (flags, kind) = classes(tok);
        token(tok, flags, kind, out);
        self.memo.put(key, &out[at..])
    }
}

/// A token with no digit, slash, `@` or quote: a unit joins the number
/// before it (`1.16 KB`, `<1 sec`: one value); a calendar word is a
/// [`DATE`]; any other is kept as it is. `num_tail`: `out` ends with
/// [`NUM`] (known without reading `out` back: a read of bytes just copied
/// stalls). Returns whether `out` ends with [`NUM`] now.
#[inline]
fn plain(msg: &[u8], span: std::ops::Range<usize>, out: &mut Vec<u8>, n: &mut usize, num_tail: bool) -> bool {
    let tok = &msg[span.clone()];
    if num_tail {
        let mut e = tok.len();
        while e > 0 && is_trail(tok[e - 1]) {
            e -= 1;
        }
        if let Some(kind) = unit(&tok[..e]) {
            out.truncate(out.len() - NUM.len());
            out.extend_from_slice(kind);
            out.extend_from_slice(&tok[e..]);
            drop_value_aside(out, n);
            return out.ends_with(NUM);
        }
    }
    if *n > 0 {
        out.push(b' ');
    }
    *n += 1;
    if is_calendar_word(tok) {
        out.extend_from_slice(DATE);
        return false;
    }
    let at = out.len();
    if tok.len() <= 16 && span.start + 16 <= msg.len() {
        // A fixed 16-byte copy, cut back: no call to memcpy.
        out.extend_from_slice(&msg[span.start..span.start + 16]);
        out.truncate(at + tok.len());
    } else {
        out.extend_from_slice(tok);
    }
    tok.ends_with(NUM)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The memo never changes a shape: a message shaped by a warm memo (one
    /// that saw the same tokens with other digits) is shaped as by the rules
    /// alone (a fresh memo misses every token).
    #[test]
    fn the_memo_gives_what_the_rules_give() {
        let alphabet: &[u8] = b"0123456789abcdefxABCDEFXkmsbBKMGTuhnJFOaeptl .:,;-+_%/\\@'\"`()[]=#";
        let words: [&[u8]; 14] = [
            b"0x1f",
            b"10.0.0.7",
            b"12:03:04.5",
            b"2017-05-16",
            b"550e8400-e29b-41d4-a716-446655440000",
            b"12ms",
            b"KB",
            b"(42)",
            b"a@b.io",
            b"/var/x1",
            b"1e-3",
            b"12%",
            b"blk_-1",
            b"x.....0",
        ];
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut warm = Shaper::default();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..5_000 {
            let mut m = Vec::new();
            for _ in 0..next() % 12 {
                if next() % 3 == 0 {
                    m.extend_from_slice(words[next() as usize % words.len()]);
                } else {
                    for _ in 0..1 + next() % 12 {
                        m.push(alphabet[next() as usize % alphabet.len()]);
                    }
                }
                m.push(b' ');
            }
            // The same message with other digits 1-9.
            let d = 1 + next() % 9;
            let other: Vec<u8> =
                m.iter().map(|&c| if matches!(c, b'1'..=b'9') { b'1' + ((c - b'1') as u64 + d) as u8 % 9 } else { c }).collect();
            warm.shape(&m, &mut a);
            let n = warm.shape(&other, &mut a);
            assert_eq!(Shaper::default().shape(&other, &mut b), n);
            assert_eq!(a, b, "{:?}", String::from_utf8_lossy(&other));
        }
    }
}
