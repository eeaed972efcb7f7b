//! Time windows: the request's `minutes_back` | `hours_back` | `date` |
//! `since`/`until`, resolved to an absolute half-open `[start, end)` in ms.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::api::{SearchError, SearchRequest};
use super::timestamp::format_ms;

/// An absolute window, `[start_ms, end_ms)`; open ends are `i64::MIN`/`i64::MAX`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Window {
    pub start_ms: i64,
    pub end_ms: i64,
}

impl Window {
    #[inline]
    pub fn contains(&self, ms: i64) -> bool {
        ms >= self.start_ms && ms < self.end_ms
    }
    pub fn start_text(&self) -> Option<String> {
        (self.start_ms != i64::MIN).then(|| format_ms(self.start_ms))
    }
    pub fn end_text(&self) -> Option<String> {
        (self.end_ms != i64::MAX).then(|| format_ms(self.end_ms))
    }
}

/// Resolve the request's window (none when no window field is set).
/// Relative windows end at `now`. More than one kind is refused, naming both.
pub fn resolve(req: &SearchRequest, tz: Tz, now: DateTime<Utc>) -> Result<Option<Window>, SearchError> {
    let mut kinds: Vec<&str> = Vec::new();
    if req.minutes_back.is_some() {
        kinds.push("minutes_back");
    }
    if req.hours_back.is_some() {
        kinds.push("hours_back");
    }
    if req.date.is_some() {
        kinds.push("date");
    }
    if req.since.is_some() || req.until.is_some() {
        kinds.push(if req.since.is_some() { "since" } else { "until" });
    }
    if kinds.len() > 1 {
        return Err(SearchError::invalid(
            kinds[1],
            format!(
                "`{}` and `{}` both set a time window; use only one of minutes_back, hours_back, date, or since/until",
                kinds[0], kinds[1]
            ),
        ));
    }
    let now_ms = now.timestamp_millis();
    if let Some(m) = req.minutes_back {
        if m == 0 {
            return Err(SearchError::invalid("minutes_back", "minutes_back must be at least 1"));
        }
        return Ok(Some(Window { start_ms: now_ms - m as i64 * 60_000, end_ms: now_ms }));
    }
    if let Some(h) = req.hours_back {
        if h == 0 {
            return Err(SearchError::invalid("hours_back", "hours_back must be at least 1"));
        }
        return Ok(Some(Window { start_ms: now_ms - h as i64 * 3_600_000, end_ms: now_ms }));
    }
    if let Some(d) = &req.date {
        let day = NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d")
            .map_err(|_| SearchError::invalid("date", format!("date {d:?} is not a YYYY-MM-DD date")))?;
        let start = local_midnight(tz, day).ok_or_else(|| SearchError::invalid("date", format!("date {d:?} has no midnight in {tz}")))?;
        let next = day.succ_opt().ok_or_else(|| SearchError::invalid("date", format!("date {d:?} is out of range")))?;
        let end = local_midnight(tz, next)
            .ok_or_else(|| SearchError::invalid("date", format!("date {d:?} has no following midnight in {tz}")))?;
        return Ok(Some(Window { start_ms: start, end_ms: end }));
    }
    if req.since.is_some() || req.until.is_some() {
        let parse = |field: &str, v: &str| -> Result<i64, SearchError> {
            DateTime::parse_from_rfc3339(v.trim())
                .map(|t| t.timestamp_millis())
                .map_err(|e| SearchError::invalid(field, format!("{field} {v:?} is not an RFC 3339 timestamp: {e}")))
        };
        let start = match &req.since {
            Some(s) => parse("since", s)?,
            None => i64::MIN,
        };
        let end = match &req.until {
            Some(u) => parse("until", u)?,
            None => i64::MAX,
        };
        if start >= end {
            return Err(SearchError::invalid("until", "until must be later than since"));
        }
        return Ok(Some(Window { start_ms: start, end_ms: end }));
    }
    Ok(None)
}

fn local_midnight(tz: Tz, day: NaiveDate) -> Option<i64> {
    let naive = day.and_hms_opt(0, 0, 0)?;
    tz.from_local_datetime(&naive)
        .earliest()
        .or_else(|| tz.from_local_datetime(&(naive + chrono::Duration::hours(1))).earliest())
        .map(|t| t.timestamp_millis())
}
