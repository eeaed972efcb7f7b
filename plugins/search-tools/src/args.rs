//! The checks a JSON Schema cannot express (the host has validated each
//! argument against the derived schema before the plugin runs): one time
//! window at most, calendar dates, RFC 3339 stamps, `until` after `since`.
//! Every error names the argument at fault as a JSON path (`$.date`).

use crate::SearchLogs;

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
    let leap = (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
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

impl ArgError {
    /// An error at argument `field`.
    pub fn at(field: &str, message: impl Into<String>) -> Self {
        ArgError::new(field, message)
    }
}

/// The time window arguments every tool takes.
pub struct WindowArgs<'a> {
    pub minutes_back: Option<u32>,
    pub hours_back: Option<u32>,
    pub date: Option<&'a str>,
    pub since: Option<&'a str>,
    pub until: Option<&'a str>,
}

/// What `search_logs`' schema cannot say.
pub fn check_search(a: &SearchLogs) -> Result<(), ArgError> {
    check_window(&WindowArgs {
        minutes_back: a.minutes_back,
        hours_back: a.hours_back,
        date: a.date.as_deref(),
        since: a.since.as_deref(),
        until: a.until.as_deref(),
    })
}

/// One window at most, real dates, RFC 3339 bounds in order.
pub fn check_window(a: &WindowArgs<'_>) -> Result<(), ArgError> {
    let mut windows: Vec<&str> = Vec::new();
    if a.minutes_back.is_some() {
        windows.push("minutes_back");
    }
    if a.hours_back.is_some() {
        windows.push("hours_back");
    }
    if a.date.is_some() {
        windows.push("date");
    }
    if a.since.is_some() || a.until.is_some() {
        windows.push(if a.since.is_some() { "since" } else { "until" });
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
    if let Some(d) = a.date {
        check_date(d).map_err(|e| ArgError::new("date", e))?;
    }
    if let Some(s) = a.since {
        check_rfc3339(s).map_err(|e| ArgError::new("since", e))?;
    }
    if let Some(u) = a.until {
        check_rfc3339(u).map_err(|e| ArgError::new("until", e))?;
    }
    if let (Some(s), Some(u)) = (a.since, a.until) {
        // Same offset notation: compare lexically (the host checks the general case).
        let same_zone = s.len() == u.len() && s.ends_with(['Z', 'z']) && u.ends_with(['Z', 'z']);
        if same_zone && s >= u {
            return Err(ArgError::new("until", format!("until ({u}) must be after since ({s})")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use logai_plugin_sdk::testing::TestHost;
    use logai_plugin_sdk::{json, ToolError};

    fn parse(v: serde_json::Value) -> SearchLogs {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn one_window_only() {
        let e = check_search(&parse(json!({"service":"a","pattern":"x","hours_back":1,"date":"2026-01-01"}))).unwrap_err();
        assert_eq!(e.path, "$.date");
        assert!(e.message.contains("hours_back and date"), "{e}");
        check_search(&parse(json!({"service":"a","pattern":"x","since":"2026-01-01T00:00:00Z","until":"2026-01-02T00:00:00Z"}))).unwrap();
        let e = check_search(&parse(json!({"service":"a","pattern":"x","since":"2026-01-02T00:00:00Z","until":"2026-01-01T00:00:00Z"})))
            .unwrap_err();
        assert_eq!(e.path, "$.until");
    }

    #[test]
    fn types_and_unknown_arguments_name_the_path() {
        let host = TestHost::new();
        for (args, path) in [
            (json!({"service":"a","pattern":"x","context":1.5}), "$.context"),
            (json!({"service":"a","pattern":"x","log_format":"xml"}), "$.log_format"),
            (json!({"service":"a","pattern":"x","bogus":1}), "$.bogus"),
            (json!({"service":"a","pattern":"x","minutes_back":"5"}), "$.minutes_back"),
        ] {
            match host.call::<SearchLogs>(args.clone()) {
                Err(ToolError::InvalidArguments(a)) => assert_eq!(a.path, path, "{args}: {}", a.message),
                other => panic!("{args}: {other:?}"),
            }
        }
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
}
