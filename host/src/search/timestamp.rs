//! Line timestamps: hand-rolled byte parsers for the formats logai reads.
//!
//! Every parser looks at one line (without its terminator) and returns the
//! instant it is stamped with, as milliseconds since the Unix epoch (UTC).
//! No regex runs per line; the hot formats are parsed byte by byte.
//!
//! - `syslog`: RFC 5424 (`<34>1 2026-11-23T13:12:01.003Z host app ...`),
//!   RFC 3164 (`<34>Nov 23 13:12:01 host app: ...`, no year: the latest year
//!   that does not put the stamp more than a day after the reference instant,
//!   which is the file's mtime), and ISO 8601 at line start (rsyslog's
//!   `RSYSLOG_FileFormat`).
//! - `json`: the first of `timestamp`, `time`, `ts`, `@timestamp`, `date`
//!   found in the line, as an RFC 3339 string or epoch seconds/millis/micros/nanos.
//! - `plain`: ISO 8601 at line start (optionally after `[`).
//! - `auto`: whichever of the above recognises the line.
//!
//! Stamps without a zone are read in the service's timezone.

use chrono::{DateTime, Datelike, LocalResult, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

use super::api::SearchError;

/// How a service's lines are stamped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LogFormat {
    Syslog,
    Json,
    Plain,
    Auto,
}

impl LogFormat {
    /// Parse a manifest/request value; `field` names the argument for errors.
    pub fn parse(s: &str, field: &str) -> Result<LogFormat, SearchError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "syslog" => Ok(LogFormat::Syslog),
            "json" => Ok(LogFormat::Json),
            "plain" => Ok(LogFormat::Plain),
            "auto" | "" => Ok(LogFormat::Auto),
            other => Err(SearchError::invalid(field, format!("unknown log format '{other}': expected one of syslog, json, plain, auto"))),
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            LogFormat::Syslog => "syslog",
            LogFormat::Json => "json",
            LogFormat::Plain => "plain",
            LogFormat::Auto => "auto",
        }
    }
}

/// Parses line stamps for one file: format, zone, and the reference instant
/// used to infer RFC 3164's missing year.
#[derive(Clone, Debug)]
pub struct StampParser {
    format: LogFormat,
    tz: Tz,
    utc: bool,
    /// Reference instant (ms) for year inference: a stamp may not lie more
    /// than a day after it.
    reference_ms: i64,
    /// The reference's year in the service zone.
    reference_year: i32,
}

const DAY_MS: i64 = 86_400_000;

impl StampParser {
    pub fn new(format: LogFormat, tz: Tz, reference: DateTime<Utc>) -> StampParser {
        let reference_year = reference.with_timezone(&tz).year();
        StampParser { format, tz, utc: tz == Tz::UTC || tz == Tz::Etc__UTC, reference_ms: reference.timestamp_millis(), reference_year }
    }

    pub fn format(&self) -> LogFormat {
        self.format
    }

    /// The stamp of `line` in ms since the epoch, when it has one.
    #[inline]
    pub fn parse(&self, line: &[u8]) -> Option<i64> {
        match self.format {
            LogFormat::Syslog => self.syslog(line),
            LogFormat::Json => self.json(line),
            LogFormat::Plain => self.plain(line),
            LogFormat::Auto => {
                let first = *line.first()?;
                if first == b'{' {
                    self.json(line)
                } else if first == b'<' || first.is_ascii_uppercase() {
                    self.syslog(line)
                } else {
                    self.plain(line)
                }
            }
        }
    }

    fn plain(&self, line: &[u8]) -> Option<i64> {
        let line = if line.first() == Some(&b'[') { &line[1..] } else { line };
        self.iso(line).map(|(ms, _)| ms)
    }

    fn syslog(&self, line: &[u8]) -> Option<i64> {
        let mut rest = line;
        if rest.first() == Some(&b'<') {
            // <PRI>: 1-3 digits.
            let close = rest.iter().take(5).position(|&b| b == b'>')?;
            if close < 2 || !rest[1..close].iter().all(u8::is_ascii_digit) {
                return None;
            }
            rest = &rest[close + 1..];
            // RFC 5424: VERSION SP TIMESTAMP.
            if rest.first().is_some_and(u8::is_ascii_digit) {
                let sp = rest.iter().take(4).position(|&b| b == b' ');
                if let Some(sp) = sp {
                    if rest[..sp].iter().all(u8::is_ascii_digit) {
                        return self.iso(&rest[sp + 1..]).map(|(ms, _)| ms);
                    }
                }
            }
        }
        if rest.first().is_some_and(u8::is_ascii_digit) {
            return self.iso(rest).map(|(ms, _)| ms);
        }
        self.rfc3164(rest)
    }

    /// `Mmm dd hh:mm:ss` (day space-padded or not).
    fn rfc3164(&self, s: &[u8]) -> Option<i64> {
        if s.len() < 15 {
            return None;
        }
        let month = month_number(&s[0..3])?;
        if s[3] != b' ' {
            return None;
        }
        let (day, i) = if s[4] == b' ' {
            (digit(s[5])?, 6)
        } else if s[5] == b' ' {
            (digit(s[4])?, 5)
        } else {
            (digit(s[4])? * 10 + digit(s[5])?, 6)
        };
        if s.get(i) != Some(&b' ') {
            return None;
        }
        let t = s.get(i + 1..i + 9)?;
        if t[2] != b':' || t[5] != b':' {
            return None;
        }
        let hour = two(t[0], t[1])?;
        let min = two(t[3], t[4])?;
        let sec = two(t[6], t[7])?;
        let mut frac_ms = 0;
        if s.get(i + 9) == Some(&b'.') {
            frac_ms = fraction_ms(&s[i + 10..]).0;
        }
        let at = |year: i32| self.local_to_ms(Civil { year, month, day, hour, min, sec, frac_ms });
        let this_year = at(self.reference_year);
        match this_year {
            Some(ms) if ms <= self.reference_ms + DAY_MS => Some(ms),
            _ => at(self.reference_year - 1),
        }
    }

    fn json(&self, line: &[u8]) -> Option<i64> {
        // Built once: `memmem::find` would build a searcher per line.
        static KEYS: std::sync::LazyLock<[memchr::memmem::Finder<'static>; 5]> = std::sync::LazyLock::new(|| {
            [b"\"timestamp\"" as &[u8], b"\"time\"", b"\"ts\"", b"\"@timestamp\"", b"\"date\""].map(memchr::memmem::Finder::new)
        });
        for key in KEYS.iter() {
            let Some(at) = key.find(line) else { continue };
            let mut rest = &line[at + key.needle().len()..];
            rest = trim_ws(rest);
            if rest.first() != Some(&b':') {
                continue;
            }
            rest = trim_ws(&rest[1..]);
            match rest.first() {
                Some(b'"') => {
                    if let Some((ms, _)) = self.iso(&rest[1..]) {
                        return Some(ms);
                    }
                }
                Some(c) if c.is_ascii_digit() => {
                    if let Some(ms) = epoch_number(rest) {
                        return Some(ms);
                    }
                }
                _ => {}
            }
        }
        None
    }

    /// ISO 8601 / RFC 3339 at the start of `s`:
    /// `YYYY-MM-DD[T ]HH:MM[:SS[.frac]][Z|±HH[:]MM]`. Returns the instant and
    /// the number of bytes consumed.
    pub fn iso(&self, s: &[u8]) -> Option<(i64, usize)> {
        if s.len() < 16 {
            return None;
        }
        let year = (digit(s[0])? * 1000 + digit(s[1])? * 100 + digit(s[2])? * 10 + digit(s[3])?) as i32;
        if s[4] != b'-' || s[7] != b'-' || !(s[10] == b'T' || s[10] == b' ' || s[10] == b't') || s[13] != b':' {
            return None;
        }
        let month = two(s[5], s[6])?;
        let day = two(s[8], s[9])?;
        let hour = two(s[11], s[12])?;
        let min = two(s[14], s[15])?;
        let mut i = 16;
        let mut sec = 0;
        let mut frac_ms = 0;
        if s.get(i) == Some(&b':') {
            sec = two(*s.get(i + 1)?, *s.get(i + 2)?)?;
            i += 3;
            if matches!(s.get(i), Some(b'.') | Some(b',')) {
                let (ms, used) = fraction_ms(&s[i + 1..]);
                frac_ms = ms;
                i += 1 + used;
            }
        }
        let offset_min: Option<i64> = match s.get(i) {
            Some(b'Z') | Some(b'z') => {
                i += 1;
                Some(0)
            }
            Some(&c @ (b'+' | b'-')) => {
                let h = two(*s.get(i + 1)?, *s.get(i + 2)?)? as i64;
                let (m, used) = match s.get(i + 3) {
                    Some(b':') => (two(*s.get(i + 4)?, *s.get(i + 5)?)? as i64, 6),
                    Some(d) if d.is_ascii_digit() => (two(*s.get(i + 3)?, *s.get(i + 4)?)? as i64, 5),
                    _ => (0, 3),
                };
                i += used;
                let total = h * 60 + m;
                Some(if c == b'-' { -total } else { total })
            }
            _ => None,
        };
        if month == 0 || month > 12 || day == 0 || day > 31 || hour > 23 || min > 59 || sec > 60 {
            return None;
        }
        let ms = match offset_min {
            Some(off) => {
                let days = days_from_civil(year, month, day);
                days * DAY_MS + (hour as i64 * 3600 + min as i64 * 60 + sec as i64) * 1000 + frac_ms as i64 - off * 60_000
            }
            None => self.local_to_ms(Civil { year, month, day, hour, min, sec, frac_ms })?,
        };
        Some((ms, i))
    }

    /// A wall-clock time in the service zone, as ms since the epoch. In a
    /// DST gap the time is read as UTC offset before the gap; in a fold, the
    /// earlier instant.
    fn local_to_ms(&self, civil: Civil) -> Option<i64> {
        let Civil { year, month, day, hour, min, sec, frac_ms } = civil;
        if self.utc {
            if day > days_in_month(year, month) {
                return None;
            }
            let days = days_from_civil(year, month, day);
            return Some(days * DAY_MS + (hour as i64 * 3600 + min as i64 * 60 + sec.min(59) as i64) * 1000 + frac_ms as i64);
        }
        let naive = NaiveDate::from_ymd_opt(year, month, day)?.and_hms_milli_opt(hour, min, sec.min(59), frac_ms)?;
        match self.tz.from_local_datetime(&naive) {
            LocalResult::Single(t) => Some(t.timestamp_millis()),
            LocalResult::Ambiguous(a, _) => Some(a.timestamp_millis()),
            LocalResult::None => {
                // Inside a DST gap: shift by an hour.
                let later = naive + chrono::Duration::hours(1);
                self.tz.from_local_datetime(&later).earliest().map(|t| t.timestamp_millis() - 3_600_000)
            }
        }
    }
}

/// A wall-clock date and time as a log line writes it (no zone).
#[derive(Clone, Copy)]
struct Civil {
    year: i32,
    month: u32,
    day: u32,
    hour: u32,
    min: u32,
    sec: u32,
    frac_ms: u32,
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
#[inline]
pub fn days_from_civil(y: i32, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y as i64 - 1 } else { y as i64 };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 {
                29
            } else {
                28
            }
        }
    }
}

#[inline]
fn digit(b: u8) -> Option<u32> {
    if b.is_ascii_digit() {
        Some((b - b'0') as u32)
    } else {
        None
    }
}

#[inline]
fn two(a: u8, b: u8) -> Option<u32> {
    Some(digit(a)? * 10 + digit(b)?)
}

/// Milliseconds of a fraction's digits, and how many digits there were.
fn fraction_ms(s: &[u8]) -> (u32, usize) {
    let mut ms = 0u32;
    let mut n = 0usize;
    for &b in s {
        if !b.is_ascii_digit() {
            break;
        }
        if n < 3 {
            ms = ms * 10 + (b - b'0') as u32;
        }
        n += 1;
    }
    let mut k = n;
    while k < 3 {
        ms *= 10;
        k += 1;
    }
    (ms, n)
}

fn month_number(s: &[u8]) -> Option<u32> {
    let m = match s {
        b"Jan" => 1,
        b"Feb" => 2,
        b"Mar" => 3,
        b"Apr" => 4,
        b"May" => 5,
        b"Jun" => 6,
        b"Jul" => 7,
        b"Aug" => 8,
        b"Sep" => 9,
        b"Oct" => 10,
        b"Nov" => 11,
        b"Dec" => 12,
        _ => return None,
    };
    Some(m)
}

fn trim_ws(mut s: &[u8]) -> &[u8] {
    while let Some(&b) = s.first() {
        if b == b' ' || b == b'\t' {
            s = &s[1..];
        } else {
            break;
        }
    }
    s
}

/// Epoch seconds (with an optional fraction), millis, micros or nanos,
/// told apart by magnitude.
fn epoch_number(s: &[u8]) -> Option<i64> {
    let mut int: i64 = 0;
    let mut i = 0;
    while i < s.len() && s[i].is_ascii_digit() && i < 19 {
        int = int * 10 + (s[i] - b'0') as i64;
        i += 1;
    }
    if i == 0 {
        return None;
    }
    let mut frac_ms = 0u32;
    if s.get(i) == Some(&b'.') {
        frac_ms = fraction_ms(&s[i + 1..]).0;
    }
    Some(if int < 100_000_000_000 {
        int * 1000 + frac_ms as i64
    } else if int < 100_000_000_000_000 {
        int
    } else if int < 100_000_000_000_000_000 {
        int / 1000
    } else {
        int / 1_000_000
    })
}

/// RFC 3339 text of an instant (UTC, millisecond precision).
pub fn format_ms(ms: i64) -> String {
    let mut b = [0u8; 24];
    if format_ms_into(ms, &mut b) {
        return String::from_utf8(b.to_vec()).expect("ascii");
    }
    match Utc.timestamp_millis_opt(ms) {
        LocalResult::Single(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        _ => ms.to_string(),
    }
}

/// [`format_ms`] into `b` without allocating, for years 0..=9999 (returns
/// false, leaving `b` unspecified, for others: use [`format_ms`]).
#[inline]
pub fn format_ms_into(ms: i64, b: &mut [u8; 24]) -> bool {
    let days = ms.div_euclid(DAY_MS);
    let rem = ms.rem_euclid(DAY_MS);
    // Civil from days (H. Hinnant), years 0..=9999 by hand; others via chrono.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    if !(0..=9999).contains(&y) {
        return false;
    }
    let secs = rem / 1000;
    *b = *b"0000-00-00T00:00:00.000Z";
    let put = |b: &mut [u8; 24], at: usize, v: i64, width: usize| {
        let mut v = v;
        for i in (0..width).rev() {
            b[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(b, 0, y, 4);
    put(b, 5, m, 2);
    put(b, 8, d, 2);
    put(b, 11, secs / 3600, 2);
    put(b, 14, (secs / 60) % 60, 2);
    put(b, 17, secs % 60, 2);
    put(b, 20, rem % 1000, 3);
    true
}

/// Parse an IANA zone name (`UTC` when absent).
pub fn parse_tz(name: Option<&str>) -> Result<Tz, String> {
    match name.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(Tz::UTC),
        Some(n) => n.parse::<Tz>().map_err(|_| format!("unknown IANA timezone '{n}'")),
    }
}
