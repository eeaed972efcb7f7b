//! Argument parsing and the checks a JSON Schema cannot express. Every
//! error names the argument at fault as a JSON path (`$.date`).

use serde_json::Value;

use crate::schema::{Limits, LOG_FORMATS};

/// An argument the plugin refuses: `path` is a JSON path into the arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArgError {
    pub path: String,
    pub message: String,
}

impl ArgError {
    fn new(field: &str, message: impl Into<String>) -> Self {
        ArgError { path: format!("$.{field}"), message: message.into() }
    }
}

impl std::fmt::Display for ArgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// A validated `search_logs` call.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SearchArgs {
    pub service: String,
    pub pattern: String,
    pub fixed_strings: bool,
    pub case_insensitive: bool,
    pub minutes_back: Option<u32>,
    pub hours_back: Option<u32>,
    pub date: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub file_pattern: Option<String>,
    pub log_format: Option<String>,
    pub context: u32,
    pub max_results: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PageArgs {
    pub reference: String,
    pub offset: u64,
    pub limit: u32,
}

fn object(args: &str) -> Result<serde_json::Map<String, Value>, ArgError> {
    let v: Value =
        serde_json::from_str(args).map_err(|e| ArgError { path: "$".into(), message: format!("arguments are not valid JSON: {e}") })?;
    match v {
        Value::Object(m) => Ok(m),
        Value::Null => Ok(Default::default()),
        other => Err(ArgError { path: "$".into(), message: format!("arguments must be a JSON object, got {}", kind(&other)) }),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn unknown_field(map: &serde_json::Map<String, Value>, known: &[&str]) -> Result<(), ArgError> {
    for k in map.keys() {
        if !known.contains(&k.as_str()) {
            return Err(ArgError {
                path: format!("$.{k}"),
                message: format!("unknown argument '{k}'; the arguments are: {}", known.join(", ")),
            });
        }
    }
    Ok(())
}

fn opt_string(field: &str, v: Option<&Value>, max_len: usize) -> Result<Option<String>, ArgError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            if s.is_empty() {
                return Err(ArgError::new(field, "must not be empty"));
            }
            if s.len() > max_len {
                return Err(ArgError::new(field, format!("is {} bytes long; at most {max_len} allowed", s.len())));
            }
            if s.contains('\0') {
                return Err(ArgError::new(field, "must not contain NUL characters"));
            }
            Ok(Some(s.clone()))
        }
        Some(other) => Err(ArgError::new(field, format!("must be a string, got {}", kind(other)))),
    }
}

fn req_string(field: &str, v: Option<&Value>, max_len: usize) -> Result<String, ArgError> {
    opt_string(field, v, max_len)?.ok_or_else(|| ArgError::new(field, "is required"))
}

fn opt_bool(field: &str, v: Option<&Value>) -> Result<bool, ArgError> {
    match v {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(ArgError::new(field, format!("must be true or false, got {}", kind(other)))),
    }
}

fn opt_int(field: &str, v: Option<&Value>, min: u64, max: u64) -> Result<Option<u64>, ArgError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            let i = n.as_u64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= u64::MAX as f64).map(|f| f as u64));
            match i {
                Some(i) if i >= min && i <= max => Ok(Some(i)),
                Some(i) => Err(ArgError::new(field, format!("is {i}; it must be between {min} and {max}"))),
                None => Err(ArgError::new(field, format!("must be a whole number between {min} and {max}, got {n}"))),
            }
        }
        Some(other) => Err(ArgError::new(field, format!("must be a whole number between {min} and {max}, got {}", kind(other)))),
    }
}

/// `YYYY-MM-DD` naming a real calendar day.
pub fn check_date(s: &str) -> Result<(), String> {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' || !digits(0..4) || !digits(5..7) || !digits(8..10) {
        return Err(format!("'{s}' is not a date in the form YYYY-MM-DD (e.g. 2026-11-20)"));
    }
    let y: u32 = s[0..4].parse().unwrap();
    let m: u32 = s[5..7].parse().unwrap();
    let d: u32 = s[8..10].parse().unwrap();
    if !(1..=12).contains(&m) {
        return Err(format!("'{s}' has month {m}; months run 01 to 12"));
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][(m - 1) as usize];
    if d < 1 || d > days {
        return Err(format!("'{s}' is not a day of that month (it has {days} days)"));
    }
    Ok(())
}

/// RFC 3339 `date-time`: `YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)`
/// (a space or lowercase `t` may separate date and time, as RFC 3339 allows).
pub fn check_rfc3339(s: &str) -> Result<(), String> {
    let bad = || format!("'{s}' is not an RFC 3339 timestamp (e.g. 2026-11-20T14:00:00Z or 2026-11-20T15:00:00+01:00)");
    if s.len() < 20 || !s.is_ascii() {
        return Err(bad());
    }
    check_date(&s[..10]).map_err(|e| format!("{}: {e}", bad()))?;
    let b = s.as_bytes();
    if !matches!(b[10], b'T' | b't' | b' ') {
        return Err(bad());
    }
    let t = &b[11..];
    let two = |i: usize| -> Option<u32> {
        if t.len() >= i + 2 && t[i].is_ascii_digit() && t[i + 1].is_ascii_digit() {
            Some(((t[i] - b'0') * 10 + (t[i + 1] - b'0')) as u32)
        } else {
            None
        }
    };
    let (Some(hh), Some(mm), Some(ss)) = (two(0), two(3), two(6)) else { return Err(bad()) };
    if t[2] != b':' || t[5] != b':' || hh > 23 || mm > 59 || ss > 60 {
        return Err(bad());
    }
    let mut i = 8;
    if t.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while t.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return Err(bad());
        }
    }
    match &t[i..] {
        [b'Z' | b'z'] => Ok(()),
        [sign, h1, h2, b':', m1, m2] if matches!(sign, b'+' | b'-') && [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit()) => {
            let oh = (h1 - b'0') * 10 + (h2 - b'0');
            let om = (m1 - b'0') * 10 + (m2 - b'0');
            if oh > 23 || om > 59 {
                Err(bad())
            } else {
                Ok(())
            }
        }
        _ => Err(format!("{}: the time zone offset (Z or +HH:MM) is missing or malformed", bad())),
    }
}

pub const SEARCH_FIELDS: [&str; 13] = [
    "service",
    "pattern",
    "fixed_strings",
    "case_insensitive",
    "minutes_back",
    "hours_back",
    "date",
    "since",
    "until",
    "file_pattern",
    "log_format",
    "context",
    "max_results",
];

pub fn parse_search(args: &str, limits: &Limits) -> Result<SearchArgs, ArgError> {
    let m = object(args)?;
    unknown_field(&m, &SEARCH_FIELDS)?;
    let service = req_string("service", m.get("service"), 128)?;
    let pattern = req_string("pattern", m.get("pattern"), 4096)?;
    let fixed_strings = opt_bool("fixed_strings", m.get("fixed_strings"))?;
    let case_insensitive = opt_bool("case_insensitive", m.get("case_insensitive"))?;
    let minutes_back = opt_int("minutes_back", m.get("minutes_back"), 1, 525_600)?.map(|v| v as u32);
    let hours_back = opt_int("hours_back", m.get("hours_back"), 1, 87_600)?.map(|v| v as u32);
    let date = opt_string("date", m.get("date"), 10)?;
    let since = opt_string("since", m.get("since"), 64)?;
    let until = opt_string("until", m.get("until"), 64)?;
    let file_pattern = opt_string("file_pattern", m.get("file_pattern"), 256)?;
    let log_format = opt_string("log_format", m.get("log_format"), 16)?;
    let context = opt_int("context", m.get("context"), 0, limits.max_context_lines as u64)?.unwrap_or(0) as u32;
    let max_results =
        opt_int("max_results", m.get("max_results"), 1, limits.max_results_cap as u64)?.unwrap_or(limits.default_max_results as u64) as u32;

    // At most one window.
    let mut windows: Vec<&str> = Vec::new();
    if minutes_back.is_some() {
        windows.push("minutes_back");
    }
    if hours_back.is_some() {
        windows.push("hours_back");
    }
    if date.is_some() {
        windows.push("date");
    }
    if since.is_some() || until.is_some() {
        windows.push(if since.is_some() { "since" } else { "until" });
    }
    if windows.len() > 1 {
        return Err(ArgError::new(
            windows[1],
            format!(
                "give one time window, not several: {} were all set. Use minutes_back, hours_back, date, or since/until (alone or together).",
                windows.join(" and ")
            ),
        ));
    }
    if let Some(d) = &date {
        check_date(d).map_err(|e| ArgError::new("date", e))?;
    }
    if let Some(s) = &since {
        check_rfc3339(s).map_err(|e| ArgError::new("since", e))?;
    }
    if let Some(u) = &until {
        check_rfc3339(u).map_err(|e| ArgError::new("until", e))?;
    }
    if let (Some(s), Some(u)) = (&since, &until) {
        // Same offset notation: compare lexically (the host checks the general case).
        let same_zone = s.len() == u.len() && s.ends_with(['Z', 'z']) && u.ends_with(['Z', 'z']);
        if same_zone && s.as_str() >= u.as_str() {
            return Err(ArgError::new("until", format!("until ({u}) must be after since ({s})")));
        }
    }
    if let Some(f) = &log_format {
        if !LOG_FORMATS.contains(&f.as_str()) {
            return Err(ArgError::new("log_format", format!("'{f}' is not a log format; use one of {}", LOG_FORMATS.join(", "))));
        }
    }
    Ok(SearchArgs {
        service,
        pattern,
        fixed_strings,
        case_insensitive,
        minutes_back,
        hours_back,
        date,
        since,
        until,
        file_pattern,
        log_format,
        context,
        max_results,
    })
}

pub fn parse_page(args: &str, limits: &Limits) -> Result<PageArgs, ArgError> {
    let m = object(args)?;
    unknown_field(&m, &["reference", "offset", "limit"])?;
    let reference = req_string("reference", m.get("reference"), 256)?;
    let offset = opt_int("offset", m.get("offset"), 0, u64::MAX)?.unwrap_or(0);
    let limit = opt_int("limit", m.get("limit"), 1, limits.max_page as u64)?.unwrap_or(limits.default_page as u64) as u32;
    Ok(PageArgs { reference, offset, limit })
}

pub fn parse_none(args: &str) -> Result<(), ArgError> {
    let m = object(args)?;
    unknown_field(&m, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l() -> Limits {
        Limits::default()
    }

    #[test]
    fn minimal_search_gets_defaults() {
        let a = parse_search(r#"{"service":"payments","pattern":"timeout"}"#, &l()).unwrap();
        assert_eq!(a.service, "payments");
        assert_eq!(a.max_results, 100);
        assert_eq!(a.context, 0);
        assert!(!a.fixed_strings && !a.case_insensitive);
    }

    #[test]
    fn one_window_only() {
        let e = parse_search(r#"{"service":"a","pattern":"x","hours_back":1,"date":"2026-01-01"}"#, &l()).unwrap_err();
        assert_eq!(e.path, "$.date");
        assert!(e.message.contains("hours_back and date"), "{e}");
        let ok =
            parse_search(r#"{"service":"a","pattern":"x","since":"2026-01-01T00:00:00Z","until":"2026-01-02T00:00:00Z"}"#, &l()).unwrap();
        assert_eq!(ok.until.as_deref(), Some("2026-01-02T00:00:00Z"));
        let e = parse_search(r#"{"service":"a","pattern":"x","since":"2026-01-02T00:00:00Z","until":"2026-01-01T00:00:00Z"}"#, &l())
            .unwrap_err();
        assert_eq!(e.path, "$.until");
    }

    #[test]
    fn bounds_and_types_name_the_field() {
        let e = parse_search(r#"{"service":"a","pattern":"x","max_results":5000}"#, &l()).unwrap_err();
        assert_eq!(e.path, "$.max_results");
        let e = parse_search(r#"{"service":"a","pattern":"x","context":-1}"#, &l()).unwrap_err();
        assert_eq!(e.path, "$.context");
        let e = parse_search(r#"{"service":"a","pattern":"x","context":1.5}"#, &l()).unwrap_err();
        assert_eq!(e.path, "$.context");
        let e = parse_search(r#"{"service":"a","pattern":"x","bogus":1}"#, &l()).unwrap_err();
        assert_eq!(e.path, "$.bogus");
        let e = parse_search(r#"{"pattern":"x"}"#, &l()).unwrap_err();
        assert_eq!(e.path, "$.service");
        let e = parse_search(r#"{"service":"a","pattern":""}"#, &l()).unwrap_err();
        assert_eq!(e.path, "$.pattern");
        let e = parse_search(r#"{"service":"a","pattern":"x","log_format":"xml"}"#, &l()).unwrap_err();
        assert_eq!(e.path, "$.log_format");
        let e = parse_search(r#"[1]"#, &l()).unwrap_err();
        assert_eq!(e.path, "$");
    }

    #[test]
    fn dates_and_stamps() {
        assert!(check_date("2024-02-29").is_ok());
        assert!(check_date("2023-02-29").is_err());
        assert!(check_date("2026-13-01").is_err());
        assert!(check_date("2026-1-01").is_err());
        assert!(check_rfc3339("2026-11-20T14:00:00Z").is_ok());
        assert!(check_rfc3339("2026-11-20T14:00:00.123+01:00").is_ok());
        assert!(check_rfc3339("2026-11-20 14:00:00-05:30").is_ok());
        assert!(check_rfc3339("2026-11-20T14:00:00").is_err());
        assert!(check_rfc3339("2026-11-20T25:00:00Z").is_err());
        assert!(check_rfc3339("yesterday").is_err());
    }

    #[test]
    fn page_args() {
        let p = parse_page(r#"{"reference":"abc"}"#, &l()).unwrap();
        assert_eq!((p.offset, p.limit), (0, 100));
        let e = parse_page(r#"{"reference":"abc","limit":0}"#, &l()).unwrap_err();
        assert_eq!(e.path, "$.limit");
        assert!(parse_none("{}").is_ok());
        assert!(parse_none(r#"{"x":1}"#).is_err());
    }
}
