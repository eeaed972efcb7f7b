//! Field facets (the top values of each JSON field, or of syslog `program`
//! and `host`) and the key a line is grouped by (`group_by`).
//!
//! Bounded: at most [`MAX_FIELDS`] fields and [`MAX_VALUES`] distinct values
//! per field are counted one by one; values past that cap count in `other`
//! (and the facet says `capped`). Below the caps the counts are exact.

use std::borrow::Cow;

use rustc_hash::FxHashMap;

use logai_records::aggregate::{Facet, ValueCount};

use super::json::{self, Pairs, Val};
use super::level::Level;
use crate::patterns::message::Header;

pub const MAX_FIELDS: usize = 64;
pub const MAX_VALUES: usize = 1000;
/// Values are cut to this many characters (with `…`).
pub const MAX_VALUE_CHARS: usize = 80;
/// JSON fields that hold the stamp or the message, not a facet.
const NOT_FACETS: [&str; 11] =
    ["timestamp", "@timestamp", "time", "ts", "msg", "message", "log", "stack", "stack_trace", "exception", "text"];

/// What a line is grouped by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupBy {
    Level,
    Pattern,
    Program,
    Host,
    /// A JSON field, dotted for nesting (`http.status`).
    Field(String),
    /// The pattern's first capture group that took part in the match.
    Capture,
}

impl GroupBy {
    pub fn parse(s: &str) -> Result<GroupBy, String> {
        Ok(match s {
            "level" => GroupBy::Level,
            "pattern" => GroupBy::Pattern,
            "program" => GroupBy::Program,
            "host" => GroupBy::Host,
            "capture" => GroupBy::Capture,
            _ => match s.strip_prefix("field:") {
                Some(f) if !f.is_empty() => GroupBy::Field(f.to_string()),
                _ => {
                    return Err(format!(
                        "group_by '{s}' is not one of level, pattern, program, host, capture, field:NAME (a JSON field, dotted for nesting)"
                    ))
                }
            },
        })
    }
}

/// Cut to [`MAX_VALUE_CHARS`] characters, with `…`.
pub fn cut(s: &str) -> Cow<'_, str> {
    if s.len() <= MAX_VALUE_CHARS {
        return Cow::Borrowed(s);
    }
    match s.char_indices().nth(MAX_VALUE_CHARS) {
        None => Cow::Borrowed(s),
        Some((at, _)) => Cow::Owned(format!("{}…", &s[..at])),
    }
}

/// The text of the field at a dotted `path` of a JSON line's pairs.
pub fn field_text(pairs: Pairs<'_>, path: &str) -> Option<String> {
    let (head, rest) = match path.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    let (_, v) = pairs.into_iter().find(|(k, _)| *k == head.as_bytes())?;
    match (rest, v) {
        (None, v) => v.text().map(|t| cut(&t).into_owned()),
        (Some(r), Val::Object(o)) => field_text(json::pairs(o)?, r),
        _ => None,
    }
}

/// What a line offers a group key: its level, and its syslog header
/// (JSON fields are looked up in the line itself).
pub struct Line<'a> {
    pub line: &'a [u8],
    pub header: Option<Header<'a>>,
    pub level: Level,
}

impl GroupBy {
    /// The line's key (`None`: the line has no such value; it counts under
    /// `(none)`). `Pattern` and `Capture` are the caller's.
    pub fn key(&self, l: &Line<'_>) -> Option<String> {
        let text = |b: &[u8]| cut(&String::from_utf8_lossy(b)).into_owned();
        match self {
            GroupBy::Level => Some(l.level.as_str().to_string()),
            GroupBy::Program => l.header.and_then(|h| h.program).map(text),
            GroupBy::Host => l.header.and_then(|h| h.host).map(text),
            GroupBy::Field(path) => json::pairs(l.line).and_then(|p| field_text(p, path)),
            GroupBy::Pattern | GroupBy::Capture => None,
        }
    }
}

#[derive(Clone, Debug, Default)]
struct Counts {
    lines: u64,
    values: FxHashMap<String, u64>,
    capped: bool,
    other: u64,
}

impl Counts {
    fn add(&mut self, value: &str, n: u64) {
        self.lines += n;
        if let Some(c) = self.values.get_mut(value) {
            *c += n;
        } else if self.values.len() < MAX_VALUES {
            self.values.insert(value.to_string(), n);
        } else {
            self.capped = true;
            self.other += n;
        }
    }
}

/// Top values per field.
#[derive(Clone, Debug, Default)]
pub struct Facets {
    fields: FxHashMap<String, Counts>,
    /// Fields past [`MAX_FIELDS`] were not counted.
    fields_capped: bool,
}

impl Facets {
    fn add(&mut self, name: &str, value: &str, n: u64) {
        let value = cut(value);
        if let Some(c) = self.fields.get_mut(name) {
            c.add(&value, n);
        } else if self.fields.len() < MAX_FIELDS {
            let mut c = Counts::default();
            c.add(&value, n);
            self.fields.insert(name.to_string(), c);
        } else {
            self.fields_capped = true;
        }
    }

    /// One top-level pair of a JSON line: a scalar, or an object's scalars
    /// (one level of nesting, dotted).
    pub fn add_pair(&mut self, key: &[u8], v: Val<'_>) {
        let key = json::utf8(key);
        if NOT_FACETS.contains(&key.as_ref()) {
            return;
        }
        match v {
            Val::Object(o) => {
                for (k2, v2) in json::pairs(o).into_iter().flatten() {
                    if let Some(t) = v2.text() {
                        self.add(&format!("{key}.{}", String::from_utf8_lossy(k2)), &t, 1);
                    }
                }
            }
            v => {
                if let Some(t) = v.text() {
                    self.add(&key, &t, 1);
                }
            }
        }
    }

    /// A syslog line's `program` and `host`.
    pub fn add_header(&mut self, h: &Header<'_>) {
        if let Some(p) = h.program {
            self.add("program", &String::from_utf8_lossy(p), 1);
        }
        if let Some(p) = h.host {
            self.add("host", &String::from_utf8_lossy(p), 1);
        }
    }

    pub fn merge(&mut self, other: Facets) {
        self.fields_capped |= other.fields_capped;
        for (name, c) in other.fields {
            let room = self.fields.len() < MAX_FIELDS;
            match self.fields.get_mut(&name) {
                Some(mine) => {
                    mine.capped |= c.capped;
                    mine.other += c.other;
                    mine.lines += c.other;
                    for (v, n) in c.values {
                        mine.add(&v, n);
                    }
                }
                None if room => {
                    self.fields.insert(name, c);
                }
                None => self.fields_capped = true,
            }
        }
    }

    /// The facets, most telling first: fields whose values were all counted
    /// (fewest distinct first: a level or status says more than an id), then
    /// capped ones; each with its `top` values.
    pub fn top(&self, top: usize) -> Vec<Facet> {
        let mut out: Vec<Facet> = self
            .fields
            .iter()
            .map(|(name, c)| {
                let mut vals: Vec<(&String, &u64)> = c.values.iter().collect();
                vals.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
                let shown: Vec<ValueCount> = vals.iter().take(top).map(|(v, n)| ValueCount { value: (*v).clone(), count: **n }).collect();
                let in_top: u64 = shown.iter().map(|v| v.count).sum();
                Facet {
                    name: name.clone(),
                    lines: c.lines,
                    distinct: c.values.len() as u64,
                    capped: c.capped,
                    other: c.lines - in_top,
                    top: shown,
                }
            })
            .collect();
        out.sort_by(|a, b| a.capped.cmp(&b.capped).then(a.distinct.cmp(&b.distinct)).then(b.lines.cmp(&a.lines)).then(a.name.cmp(&b.name)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facets_count_json_fields_and_cap_values() {
        let mut f = Facets::default();
        for i in 0..1500u32 {
            let line =
                format!(r#"{{"ts":"x","level":"{}","id":"r{i}","http":{{"status":200}}}}"#, if i % 3 == 0 { "ERROR" } else { "INFO" });
            for (k, v) in json::pairs(line.as_bytes()).unwrap() {
                f.add_pair(k, v);
            }
        }
        let top = f.top(5);
        let names: Vec<&str> = top.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["http.status", "level", "id"]);
        assert_eq!(top[1].top[0], ValueCount { value: "INFO".into(), count: 1000 });
        assert!(top[2].capped && top[2].lines == 1500 && top[2].distinct == MAX_VALUES as u64);
        assert_eq!(top[2].other, 1500 - 5);
        let line = br#"{"http":{"status":503,"path":"/x"},"msg":"m"}"#;
        assert_eq!(field_text(json::pairs(line).unwrap(), "http.status").as_deref(), Some("503"));
        assert_eq!(field_text(json::pairs(line).unwrap(), "http.nope"), None);
    }

    #[test]
    fn group_by_parses_and_says_what_it_takes() {
        assert_eq!(GroupBy::parse("field:http.status"), Ok(GroupBy::Field("http.status".into())));
        assert!(GroupBy::parse("colour").unwrap_err().contains("field:NAME"));
    }
}
