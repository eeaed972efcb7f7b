//! A message's shape: its whitespace tokens, with variable ones (and the
//! variable parts of mixed ones) replaced by typed placeholders.
//!
//! These are the rules, no regex: a token made of letters and ordinary
//! punctuation is copied as it is (the common case); only tokens holding a
//! digit, a slash, an `@` or a quote are looked at more closely. The rules
//! are general (what a number, an address or an identifier looks like),
//! never a literal from some log: see `docs/patterns.md`. The per-line loop
//! that applies them fast is `shaper.rs`.

use super::scan;

/// Placeholders the masking writes. Clustering writes [`WILDCARD`] where
/// shapes of one pattern differ.
pub const NUM: &[u8] = b"<NUM>";
pub const HEX: &[u8] = b"<HEX>";
pub const ID: &[u8] = b"<ID>";
pub const UUID: &[u8] = b"<UUID>";
pub const IP: &[u8] = b"<IP>";
pub const EMAIL: &[u8] = b"<EMAIL>";
pub const PATH: &[u8] = b"<PATH>";
pub const URL: &[u8] = b"<URL>";
pub const QUOTED: &[u8] = b"<QUOTED>";
pub const DURATION: &[u8] = b"<DURATION>";
pub const TIME: &[u8] = b"<TIME>";
pub const DATE: &[u8] = b"<DATE>";
pub const SIZE: &[u8] = b"<SIZE>";
pub const WILDCARD: &[u8] = b"<*>";

/// Longest message (bytes) that is shaped; the rest of a longer one becomes
/// one [`WILDCARD`] token, so a giant line cannot make a giant key.
pub const MAX_MESSAGE: usize = scan::MAX;
/// Most tokens a shape keeps; later ones fold into one trailing [`WILDCARD`].
pub const MAX_TOKENS: usize = 96;

const WS: u8 = 1;
const DIGIT: u8 = 2;
const SLASH: u8 = 4;
const AT: u8 = 8;
const QUOTE: u8 = 16;
const DELIM: u8 = 32;
const HEXLETTER: u8 = 64;
const LETTER: u8 = 128;

const fn class_table() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        t[i] = match c {
            b' ' | b'\t' | b'\r' | b'\n' | 0x0b | 0x0c => WS,
            b'0'..=b'9' => DIGIT,
            b'/' | b'\\' => SLASH,
            b'@' => AT,
            b'"' | b'\'' | b'`' => QUOTE,
            b':' | b'=' | b',' | b';' | b'(' | b')' | b'[' | b']' | b'{' | b'}' | b'<' | b'>' | b'|' | b'#' | b'&' | b'?' | b'!' | b'*'
            | b'+' | b'$' | b'%' => DELIM,
            b'a'..=b'f' | b'A'..=b'F' => HEXLETTER | LETTER,
            b'g'..=b'z' | b'G'..=b'Z' => LETTER,
            _ => 0,
        };
        i += 1;
    }
    t
}
static CLASS: [u8; 256] = class_table();

pub use super::shaper::shape;

/// The OR of a token's byte classes ([`CLASS`]) and kinds ([`KIND`]), in
/// one pass.
#[inline]
pub(super) fn classes(t: &[u8]) -> (u8, u16) {
    let mut m = 0u32;
    for &b in t {
        m |= BOTH[b as usize];
    }
    (m as u8, (m >> 8) as u16)
}

const fn both_table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = CLASS[i] as u32 | (KIND[i] as u32) << 8;
        i += 1;
    }
    t
}
static BOTH: [u32; 256] = both_table();

/// `u` in lower case, in `b`; empty when longer than `b` (no unit is).
fn lower<'a>(u: &[u8], b: &'a mut [u8; 8]) -> &'a [u8] {
    if u.len() > b.len() {
        return b"";
    }
    for (d, s) in b.iter_mut().zip(u) {
        *d = s.to_ascii_lowercase();
    }
    &b[..u.len()]
}

/// The placeholder a unit word makes of the number before it.
pub(super) fn unit(u: &[u8]) -> Option<&'static [u8]> {
    if u.is_empty() || u.len() > 7 {
        return None;
    }
    let mut b = [0u8; 8];
    let l = lower(u, &mut b);
    match l {
        b"kb" | b"mb" | b"gb" | b"tb" | b"kib" | b"mib" | b"gib" | b"tib" => Some(SIZE),
        _ if u == b"B" => Some(SIZE),
        b"ns" | b"us" | b"ms" | b"s" | b"sec" | b"secs" | b"second" | b"seconds" | b"min" | b"mins" | b"minute" | b"minutes" | b"h"
        | b"hour" | b"hours" => Some(DURATION),
        _ => None,
    }
}

/// Leaves out a last token that is only a value in parentheses (`(1.16 KB)`,
/// `(42)`): such an aside is in some lines of an event and not in others
/// (`1190 bytes (1.16 KB) sent` / `0 bytes sent`), so it must not make a
/// shape of its own.
#[inline]
pub(super) fn drop_value_aside(out: &mut Vec<u8>, n: &mut usize) {
    if out.last() == Some(&b')') {
        drop_aside(out, n);
    }
}

fn drop_aside(out: &mut Vec<u8>, n: &mut usize) {
    let start = out.iter().rposition(|&b| b == b' ').map_or(0, |p| p + 1);
    let t = &out[start..];
    let inner = if t.len() > 2 && t[0] == b'(' && t[t.len() - 1] == b')' { &t[1..t.len() - 1] } else { b"" };
    if inner == NUM || inner == SIZE || inner == DURATION {
        out.truncate(start.saturating_sub(1));
        *n -= 1;
    }
}

/// A month or weekday name (`Jul`, `Friday`): part of a date, so variable.
pub(super) fn is_calendar_word(t: &[u8]) -> bool {
    const NAMES: [&[u8]; 19] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Sept", b"Oct", b"Nov", b"Dec", b"Mon", b"Tue", b"Wed",
        b"Thu", b"Fri", b"Sat",
    ];
    const LONG: [&[u8]; 20] = [
        b"Sun",
        b"January",
        b"February",
        b"March",
        b"April",
        b"June",
        b"July",
        b"August",
        b"September",
        b"October",
        b"November",
        b"December",
        b"Monday",
        b"Tuesday",
        b"Wednesday",
        b"Thursday",
        b"Friday",
        b"Saturday",
        b"Sunday",
        b"Thur",
    ];
    if t.len() < 3 || t.len() > 10 || !t[0].is_ascii_uppercase() {
        return false;
    }
    let t = t.strip_suffix(b",").unwrap_or(t);
    t.len() >= 3 && (NAMES.contains(&t) || LONG.contains(&t))
}

/// Wrapping punctuation kept around a masked core: `(`, `[`, quotes before;
/// `,` `;` `.` `)` `]` quotes after.
fn is_lead(b: u8) -> bool {
    matches!(b, b'(' | b'[' | b'{' | b'<' | b'"' | b'\'' | b'`')
}
pub(super) fn is_trail(b: u8) -> bool {
    matches!(b, b')' | b']' | b'}' | b'>' | b'"' | b'\'' | b'`' | b',' | b';' | b'.' | b':')
}

/// A token with a digit, slash, `@` or quote; `flags` and `kind` are the
/// OR of its bytes' classes and kinds.
pub(super) fn token(tok: &[u8], flags: u8, kind: u16, out: &mut Vec<u8>) {
    // A whole quoted token ('x', "x") is a quoted value.
    if tok.len() >= 2 {
        let (a, b) = (tok[0], tok[tok.len() - 1]);
        if (a == b'\'' || a == b'"' || a == b'`') && a == b {
            out.push(a);
            out.extend_from_slice(QUOTED);
            out.push(b);
            return;
        }
    }
    let mut s = 0;
    let mut e = tok.len();
    while s < e && is_lead(tok[s]) {
        s += 1;
    }
    while e > s && is_trail(tok[e - 1]) {
        e -= 1;
    }
    out.extend_from_slice(&tok[..s]);
    let core = &tok[s..e];
    if !core.is_empty() {
        // The kinds of the core: the token's when nothing was stripped.
        let kind = if core.len() == tok.len() { kind } else { classes(core).1 };
        core_token(core, flags, kind, out);
    }
    out.extend_from_slice(&tok[e..]);
}

fn core_token(core: &[u8], flags: u8, kind: u16, out: &mut Vec<u8>) {
    if flags & SLASH != 0 {
        if let Some(p) = path_like(core) {
            out.extend_from_slice(p);
            return;
        }
    }
    if flags & AT != 0 && is_email(core) {
        out.extend_from_slice(EMAIL);
        return;
    }
    if flags & DIGIT == 0 {
        // Letters, a quote or a slash that is no path: kept, quotes and all.
        out.extend_from_slice(core);
        return;
    }
    // `threshold.....0`: a dot leader joins a name and its value.
    let leader = kind & K_DOT != 0 && core.windows(2).any(|w| w == b"..");
    if !leader {
        if let Some(p) = whole_kind(core, kind) {
            out.extend_from_slice(p);
            return;
        }
    }
    let is_delim = |i: usize| {
        CLASS[core[i] as usize] & (DELIM | QUOTE | SLASH | AT) != 0
            || (leader && core[i] == b'.' && (core.get(i + 1) == Some(&b'.') || (i > 0 && core[i - 1] == b'.')))
    };
    // Mixed: split at delimiters, mask each piece that holds a digit.
    let mut i = 0;
    let len = core.len();
    while i < len {
        if is_delim(i) {
            out.push(core[i]);
            i += 1;
            continue;
        }
        let start = i;
        let mut f = 0u32;
        while i < len && !is_delim(i) {
            f |= BOTH[core[i] as usize];
            i += 1;
        }
        let piece = &core[start..i];
        if f as u8 & DIGIT == 0 {
            out.extend_from_slice(piece);
        } else {
            out.extend_from_slice(whole_kind(piece, (f >> 8) as u16).unwrap_or(ID));
        }
    }
}

/// A token that is one value as a whole, with its type; `m` is the OR of
/// its bytes' [`KIND`]s: only the types they allow are tried.
fn whole_kind(t: &[u8], m: u16) -> Option<&'static [u8]> {
    if m == K_DIGIT {
        return Some(NUM);
    }
    if m & K_OTHER != 0 {
        return None;
    }
    let only = |allowed: u16| m & !allowed == 0;
    if only(K_DIGIT | K_DOT) && is_ipv4(t) {
        return Some(IP);
    }
    if only(K_DIGIT | K_DOT | K_COMMA | K_SIGN | K_PCT | K_HEX | K_X | K_LETTER) && is_number(t) {
        return Some(NUM);
    }
    if t.len() == 36 && only(K_DIGIT | K_HEX | K_SIGN) && is_uuid(t) {
        return Some(UUID);
    }
    if only(K_DIGIT | K_HEX | K_X) && is_hex(t) {
        return Some(HEX);
    }
    if only(K_DIGIT | K_DOT | K_HEX | K_X | K_LETTER) && is_duration(t) {
        return Some(DURATION);
    }
    if only(K_DIGIT | K_COLON | K_DOT | K_COMMA | K_SIGN) && is_clock(t) {
        return Some(TIME);
    }
    // Letters and digits mixed with `_ - .` (`blk_-1608`, `req-3f2a`,
    // `v6.1.7601`, `job_1445_0020`): an identifier.
    if only(K_DIGIT | K_DOT | K_SIGN | K_UNDERSCORE | K_HEX | K_X | K_LETTER) {
        return Some(ID);
    }
    None
}

const K_DIGIT: u16 = 1;
const K_DOT: u16 = 2;
const K_COLON: u16 = 4;
const K_COMMA: u16 = 8;
/// `-` and `+`.
const K_SIGN: u16 = 16;
const K_PCT: u16 = 32;
/// `a-f`, `A-F`.
const K_HEX: u16 = 64;
const K_X: u16 = 128;
/// Other ASCII letters.
const K_LETTER: u16 = 256;
const K_UNDERSCORE: u16 = 512;
const K_OTHER: u16 = 1024;

const fn kind_table() -> [u16; 256] {
    let mut t = [K_OTHER; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        t[i] = match c {
            b'0'..=b'9' => K_DIGIT,
            b'.' => K_DOT,
            b':' => K_COLON,
            b',' => K_COMMA,
            b'-' | b'+' => K_SIGN,
            b'%' => K_PCT,
            b'a'..=b'f' | b'A'..=b'F' => K_HEX,
            b'x' | b'X' => K_X,
            b'g'..=b'z' | b'G'..=b'Z' => K_LETTER,
            b'_' => K_UNDERSCORE,
            _ => K_OTHER,
        };
        i += 1;
    }
    t
}
static KIND: [u16; 256] = kind_table();

/// `-12`, `3.5`, `1,024`, `+7`, `1e-3`, `12%`, `10KB` style sizes.
fn is_number(t: &[u8]) -> bool {
    let mut i = 0;
    if i < t.len() && (t[i] == b'-' || t[i] == b'+') {
        i += 1;
    }
    let start = i;
    let mut digits = 0;
    while i < t.len() && (t[i].is_ascii_digit() || t[i] == b'.' || t[i] == b',') {
        digits += t[i].is_ascii_digit() as usize;
        i += 1;
    }
    if digits == 0 || !t[start].is_ascii_digit() {
        return false;
    }
    let rest = &t[i..];
    rest.is_empty()
        || rest == b"%"
        || is_size_unit(rest)
        || (rest.len() >= 2
            && (rest[0] == b'e' || rest[0] == b'E')
            && rest[1..].iter().all(|b| b.is_ascii_digit() || *b == b'-' || *b == b'+'))
}

fn is_size_unit(u: &[u8]) -> bool {
    let mut b = [0u8; 8];
    matches!(
        lower(u, &mut b),
        b"b" | b"k" | b"kb" | b"kib" | b"m" | b"mb" | b"mib" | b"g" | b"gb" | b"gib" | b"t" | b"tb" | b"tib" | b"bytes"
    )
}

/// `12ms`, `1.5s`, `3m`, `2h30m`, `100us`, `5sec`.
fn is_duration(t: &[u8]) -> bool {
    let mut i = 0;
    let mut any = false;
    while i < t.len() {
        let s = i;
        while i < t.len() && (t[i].is_ascii_digit() || t[i] == b'.') {
            i += 1;
        }
        if i == s || !t[s].is_ascii_digit() {
            return false;
        }
        let u = i;
        while i < t.len() && t[i].is_ascii_alphabetic() {
            i += 1;
        }
        let mut b = [0u8; 8];
        if !matches!(
            lower(&t[u..i], &mut b),
            b"ns" | b"us" | b"\xc2\xb5s" | b"ms" | b"s" | b"sec" | b"secs" | b"m" | b"min" | b"mins" | b"h" | b"hr" | b"hrs" | b"d"
        ) {
            return false;
        }
        any = true;
    }
    any
}

/// `12:03`, `12:03:04`, `12:03:04.567` (a clock or an elapsed time), or a
/// date `2017-05-16`.
fn is_clock(t: &[u8]) -> bool {
    let d = |i: usize| t.get(i).is_some_and(u8::is_ascii_digit);
    if t.len() == 10 && (0..4).all(d) && t[4] == b'-' && d(5) && d(6) && t[7] == b'-' && d(8) && d(9) {
        return true;
    }
    let mut groups = 0;
    let mut i = 0;
    loop {
        let s = i;
        while d(i) {
            i += 1;
        }
        if i - s == 0 || i - s > 2 {
            return false;
        }
        groups += 1;
        match t.get(i) {
            None => return groups >= 2,
            Some(b':') if groups < 3 => i += 1,
            Some(b'.' | b',') if groups >= 2 => return t.len() > i + 1 && t[i + 1..].iter().all(u8::is_ascii_digit),
            _ => return false,
        }
    }
}

fn is_ipv4(t: &[u8]) -> bool {
    let mut parts = 0;
    let mut i = 0;
    while i < t.len() {
        let s = i;
        while i < t.len() && t[i].is_ascii_digit() {
            i += 1;
        }
        if i == s || i - s > 3 {
            return false;
        }
        parts += 1;
        if i < t.len() {
            if t[i] != b'.' || parts == 4 {
                return false;
            }
            i += 1;
        }
    }
    parts == 4
}

fn is_uuid(t: &[u8]) -> bool {
    t.len() == 36 && t.iter().enumerate().all(|(i, &b)| if matches!(i, 8 | 13 | 18 | 23) { b == b'-' } else { b.is_ascii_hexdigit() })
}

/// `0x1f`, or 6+ hex digits holding both a digit and a letter (`3f9a2c`, a
/// hash), or 8+ hex digits.
fn is_hex(t: &[u8]) -> bool {
    if t.len() > 2 && (t.starts_with(b"0x") || t.starts_with(b"0X")) {
        return t[2..].iter().all(u8::is_ascii_hexdigit);
    }
    t.len() >= 6 && t.iter().all(u8::is_ascii_hexdigit)
}

fn is_email(t: &[u8]) -> bool {
    let Some(at) = t.iter().position(|&b| b == b'@') else { return false };
    at > 0 && t[at + 1..].contains(&b'.') && t[..at].iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+'))
}

/// `/var/log/x`, `./a/b`, `~/x`, `C:\x\y`, `a/b/c`, `scheme://...`.
fn path_like(t: &[u8]) -> Option<&'static [u8]> {
    if let Some(p) = t.windows(3).position(|w| w == b"://") {
        if p > 0 && t[..p].iter().all(u8::is_ascii_alphabetic) {
            return Some(URL);
        }
    }
    let seps = t.iter().filter(|&&b| b == b'/' || b == b'\\').count();
    let rooted = t[0] == b'/'
        || t[0] == b'\\'
        || t.starts_with(b"./")
        || t.starts_with(b"~/")
        || (t.len() > 2 && t[0].is_ascii_alphabetic() && t[1] == b':' && (t[2] == b'\\' || t[2] == b'/'));
    if (rooted && t.len() > 1) || seps >= 2 {
        return Some(PATH);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(m: &str) -> String {
        let mut out = Vec::new();
        shape(m.as_bytes(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn typed_placeholders() {
        assert_eq!(s("took 12ms to read 4096 bytes"), "took <DURATION> to read <NUM> bytes");
        assert_eq!(s("from 10.0.0.7:5432 id=550e8400-e29b-41d4-a716-446655440000"), "from <IP>:<NUM> id=<UUID>");
        assert_eq!(s("open /var/lib/x.db for bob@example.org"), "open <PATH> for <EMAIL>");
        assert_eq!(s("user 'carol' at 0x7ffe12 (3f9a2c11)"), "user '<QUOTED>' at <HEX> (<HEX>)");
        assert_eq!(s("block blk_-42 req-9f3e, step=1##2##3"), "block <ID> <ID>, step=<NUM>##<NUM>##<NUM>");
        assert_eq!(s("  spaces\tand   tabs  "), "spaces and tabs");
        assert_eq!(s("at 12:03:04.5 see https://x.org/a"), "at <TIME> see <URL>");
    }

    #[test]
    fn long_messages_are_cut() {
        let long = "w ".repeat(MAX_TOKENS + 10);
        let mut out = Vec::new();
        assert_eq!(shape(long.as_bytes(), &mut out), MAX_TOKENS + 1);
        assert!(out.ends_with(WILDCARD));
    }
}
