//! A line's level: what it says of itself, in the first form found of
//! - a JSON `level` / `severity` / `lvl` / `loglevel` field (word or bunyan number);
//! - a syslog `<PRI>` (its severity: 0-2 fatal, 3 error, 4 warn, 5-6 info, 7 debug);
//! - a logfmt `level=` / `lvl=` / `severity=` (any case);
//! - an upper-case level word (`ERROR`, `WARN`, `[INFO]`, ...) among the
//!   first 256 bytes, or a lower-case `error:` / `warning:` / `fatal:` /
//!   `panic:` at the message's start.
//!
//! Lines that say none have level `none` (never guessed from other words).

use super::json::{self, Val};
use crate::patterns::message::{self, MessageFormat};

/// Levels, worst first. [`Level::Error`] and [`Level::Fatal`] count as errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Fatal,
    Error,
    Warn,
    Info,
    Debug,
    Trace,
    None,
}

impl Level {
    pub const ALL: [Level; 7] = [Level::Fatal, Level::Error, Level::Warn, Level::Info, Level::Debug, Level::Trace, Level::None];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Fatal => "fatal",
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
            Level::Trace => "trace",
            Level::None => "none",
        }
    }

    pub fn is_error(self) -> bool {
        matches!(self, Level::Fatal | Level::Error)
    }

    /// A level word, any case (`err`, `warning`, `critical`, ...).
    pub fn from_word(w: &[u8]) -> Option<Level> {
        let mut b = [0u8; 9];
        if w.is_empty() || w.len() > b.len() {
            return None;
        }
        for (d, s) in b.iter_mut().zip(w) {
            *d = s.to_ascii_lowercase();
        }
        Some(match &b[..w.len()] {
            b"fatal" | b"panic" | b"critical" | b"crit" | b"emerg" | b"emergency" | b"alert" => Level::Fatal,
            b"error" | b"err" | b"severe" => Level::Error,
            b"warn" | b"warning" => Level::Warn,
            b"info" | b"notice" => Level::Info,
            b"debug" | b"fine" => Level::Debug,
            b"trace" | b"finest" | b"finer" => Level::Trace,
            _ => return None,
        })
    }

    fn from_bunyan(n: u64) -> Level {
        match n {
            60.. => Level::Fatal,
            50..=59 => Level::Error,
            40..=49 => Level::Warn,
            30..=39 => Level::Info,
            20..=29 => Level::Debug,
            _ => Level::Trace,
        }
    }

    fn from_severity(sev: u8) -> Level {
        match sev {
            0..=2 => Level::Fatal,
            3 => Level::Error,
            4 => Level::Warn,
            5 | 6 => Level::Info,
            _ => Level::Debug,
        }
    }
}

/// JSON fields that hold a level.
pub const JSON_KEYS: [&[u8]; 4] = [b"level", b"severity", b"lvl", b"loglevel"];
/// Built once: `memmem::find` would build a searcher per line.
static LOGFMT_KEYS: std::sync::LazyLock<[memchr::memmem::Finder<'static>; 3]> =
    std::sync::LazyLock::new(|| [b"level=" as &[u8], b"lvl=", b"severity="].map(memchr::memmem::Finder::new));

/// The level `line` states (without its newline).
pub fn of(line: &[u8]) -> Level {
    if let Some(pairs) = json::pairs(line) {
        return pairs.filter(|(k, _)| JSON_KEYS.contains(k)).find_map(|(_, v)| of_json(v)).unwrap_or(Level::None);
    }
    of_text(line)
}

/// The level a line that is not JSON states.
pub fn of_text(line: &[u8]) -> Level {
    if let Some(sev) = message::header(line).and_then(|h| h.pri) {
        return Level::from_severity(sev & 7);
    }
    let head = &line[..line.len().min(256)];
    logfmt(head).or_else(|| word(head)).or_else(|| lower_prefix(message::message(line, MessageFormat::Auto))).unwrap_or(Level::None)
}

/// The level a JSON level field's value names (a word, or a bunyan number).
pub fn of_json(v: Val<'_>) -> Option<Level> {
    match v {
        Val::Str(w) => Level::from_word(w),
        Val::Scalar(n) => std::str::from_utf8(n).ok()?.parse().ok().map(Level::from_bunyan),
        _ => None,
    }
}

fn logfmt(head: &[u8]) -> Option<Level> {
    for key in LOGFMT_KEYS.iter() {
        let Some(at) = key.find(head) else { continue };
        if at > 0 && head[at - 1].is_ascii_alphanumeric() {
            continue;
        }
        let v = &head[at + key.needle().len()..];
        let v = v.strip_prefix(b"\"").unwrap_or(v);
        let n = v.iter().take_while(|b| b.is_ascii_alphabetic()).count();
        return Level::from_word(&v[..n]);
    }
    None
}

/// The first all-upper-case level word standing alone (`ERROR`, `[WARN]`, `E/`-style not).
fn word(head: &[u8]) -> Option<Level> {
    let mut i = 0;
    while i < head.len() {
        if !head[i].is_ascii_uppercase() || (i > 0 && head[i - 1].is_ascii_alphanumeric()) {
            i += 1;
            continue;
        }
        let n = head[i..].iter().take_while(|b| b.is_ascii_uppercase()).count();
        let after = head.get(i + n);
        if n >= 3 && !after.is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_') {
            if let Some(l) = Level::from_word(&head[i..i + n]) {
                return Some(l);
            }
        }
        i += n.max(1);
    }
    None
}

fn lower_prefix(msg: &[u8]) -> Option<Level> {
    let n = msg.iter().take_while(|b| b.is_ascii_lowercase()).count();
    if n >= 3 && msg.get(n) == Some(&b':') {
        return Level::from_word(&msg[..n]).filter(|l| l.is_error() || *l == Level::Warn);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_lines_state() {
        let l = |s: &str| of(s.as_bytes());
        assert_eq!(l(r#"{"ts":"x","level":"ERROR","msg":"down"}"#), Level::Error);
        assert_eq!(l(r#"{"level": 40, "msg":"m"}"#), Level::Warn);
        assert_eq!(l(r#"{"msg":"an ERROR in text"}"#), Level::None);
        assert_eq!(l("<131>1 2026-11-20T14:05:00Z gw gateway 1 - - x"), Level::Error);
        assert_eq!(l("<134>1 2026-11-20T14:05:00Z gw gateway 1 - - ERROR x"), Level::Info);
        assert_eq!(l("2026-11-20 14:05:00,1 ERROR payment declined"), Level::Error);
        assert_eq!(l("2026-11-20T14:05:00Z [WARN] slow"), Level::Warn);
        assert_eq!(l("ts=1 level=warning msg=x"), Level::Warn);
        assert_eq!(l("Nov 20 03:10:00 h sshd[1]: error: maximum authentication attempts"), Level::Error);
        assert_eq!(l("Nov 20 03:10:00 h sshd[1]: Failed password for root"), Level::None);
        assert_eq!(l("Nov 20 03:10:00 h app: ERRORS=0 INFORMATION"), Level::None);
        assert_eq!(l("\tat com.example.Foo(Foo.java:1)"), Level::None);
    }
}
