//! The tools' answers: `structuredContent` (serde types; the output schemas
//! are derived from them) and the readable text block (rg-like lines).

use std::collections::BTreeMap;
use std::fmt::Write;

use logai_plugin_sdk::schemars::{self, JsonSchema, Schema};
use serde::Serialize;

/// Longest line shown in the text block; the structured content carries the
/// line as the core returned it.
pub const TEXT_LINE_LIMIT: usize = 2000;

/// RFC 3339 timestamps in the output schemas.
fn date_time(schema: &mut Schema) {
    schema.insert("format".into(), "date-time".into());
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContextLine {
    #[schemars(range(min = 1))]
    pub line_number: u64,
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Match {
    /// Absolute path of the log file.
    pub file: String,
    /// 1-based line number in the (decompressed) file.
    #[schemars(range(min = 1))]
    pub line_number: u64,
    /// When the line was logged (RFC 3339); for unstamped lines such as stack traces, the stamp of the entry they belong to. Absent when unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(transform = date_time)]
    pub timestamp: Option<String>,
    /// The matching line.
    pub text: String,
    /// Context lines before the match, in order.
    pub before: Vec<ContextLine>,
    /// Context lines after the match, in order.
    pub after: Vec<ContextLine>,
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Overflow {
    /// Pass as `reference` to read_search_file.
    pub reference: String,
    /// Matches held by the overflow.
    pub total: u64,
    /// Pass as `offset` to read_search_file to continue after the matches shown.
    pub next_offset: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchOutput {
    pub service: String,
    pub pattern: String,
    /// Matches in time order of files, line order within a file.
    pub matches: Vec<Match>,
    /// Matches in `matches`.
    pub returned: u64,
    /// All matches found (inline and overflow).
    pub total_matches: u64,
    pub files_searched: u32,
    pub files_matched: u32,
    pub bytes_scanned: u64,
    /// More matches exist than were returned inline; see `overflow`.
    pub truncated: bool,
    /// The search stopped early (deadline or cancellation); counts cover what was searched.
    pub partial: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partial_reason: Option<String>,
    pub duration_ms: u64,
    /// The answer came from the shared result cache.
    pub cached: bool,
    /// Effective window start (inclusive), when a window was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(transform = date_time)]
    pub window_start: Option<String>,
    /// Effective window end (exclusive), when a window was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(transform = date_time)]
    pub window_end: Option<String>,
    /// Present when truncated: where every match of this search can be paged with read_search_file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overflow: Option<Overflow>,
    /// Where this answer leaves each file: pass it as after_cursor (with the same arguments) to get only the lines appended since, through log rotation.
    pub cursor: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PageOutput {
    pub reference: String,
    pub offset: u64,
    pub returned: u64,
    /// Matches held by the overflow.
    pub total: u64,
    /// This page reaches the end of the overflow.
    pub eof: bool,
    /// Offset of the next page; absent at the end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_offset: Option<u64>,
    pub matches: Vec<Match>,
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// Pass this as `service` to search_logs.
    pub name: String,
    pub description: String,
    /// Log format: syslog, json, plain or auto.
    pub format: String,
    pub file_count: u32,
    pub total_bytes: u64,
    /// Earliest timestamp in the logs (RFC 3339), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(transform = date_time)]
    pub earliest: Option<String>,
    /// Latest timestamp in the logs (RFC 3339), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(transform = date_time)]
    pub latest: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServicesOutput {
    /// Every service that can be searched, in manifest order.
    pub services: Vec<Service>,
}

/// Where to continue reading an overflow after the `shown` inline matches.
/// The core's overflow holds every match (so the next offset is `shown`);
/// should it hold only the rest, continuing starts at 0.
pub fn next_offset(total_matches: u64, overflow_total: u64, shown: u64) -> u64 {
    if overflow_total >= total_matches {
        shown
    } else {
        0
    }
}

pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

pub fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn clip(text: &str) -> String {
    if text.len() <= TEXT_LINE_LIMIT {
        return text.to_string();
    }
    let mut cut = TEXT_LINE_LIMIT;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{} … [line cut here, {} more bytes]", &text[..cut], text.len() - cut)
}

/// rg-like lines: a heading per file, `N:text` for matches, `N-text` for
/// context, `--` between non-adjacent groups. Overlapping context of nearby
/// matches is shown once.
pub fn render_matches(out: &mut String, matches: &[Match]) {
    let mut i = 0;
    while i < matches.len() {
        let file = &matches[i].file;
        let mut j = i;
        // line -> (text, is_match)
        let mut lines: BTreeMap<u64, (&str, bool)> = BTreeMap::new();
        while j < matches.len() && &matches[j].file == file {
            let m = &matches[j];
            for c in m.before.iter().chain(m.after.iter()) {
                lines.entry(c.line_number).or_insert((c.text.as_str(), false));
            }
            lines.insert(m.line_number, (m.text.as_str(), true));
            j += 1;
        }
        let _ = writeln!(out, "{file}");
        let mut prev: Option<u64> = None;
        for (n, (text, is_match)) in &lines {
            if let Some(p) = prev {
                if *n > p + 1 {
                    out.push_str("--\n");
                }
            }
            let _ = writeln!(out, "{n}{}{}", if *is_match { ':' } else { '-' }, clip(text));
            prev = Some(*n);
        }
        out.push('\n');
        i = j;
    }
}

pub struct SearchFlags<'a> {
    pub fixed_strings: bool,
    pub case_insensitive: bool,
    pub file_pattern: Option<&'a str>,
    /// The call gave after_cursor: only appended lines were searched.
    pub following: bool,
}

pub fn search_text(o: &SearchOutput, flags: &SearchFlags<'_>) -> String {
    let mut s = String::new();
    let mut how = Vec::new();
    if flags.fixed_strings {
        how.push("literal".to_string());
    }
    if flags.case_insensitive {
        how.push("case-insensitive".to_string());
    }
    if let Some(g) = flags.file_pattern {
        how.push(format!("files matching {g}"));
    }
    let how = if how.is_empty() { String::new() } else { format!(" ({})", how.join(", ")) };
    let _ = writeln!(
        s,
        "{}: {} for /{}/{} in {} of {} searched, {} scanned in {} ms{}",
        o.service,
        plural(o.total_matches, "match", "matches"),
        o.pattern,
        how,
        o.files_matched,
        plural(o.files_searched as u64, "file", "files"),
        human_bytes(o.bytes_scanned),
        o.duration_ms,
        if o.cached { " (cached)" } else { "" }
    );
    match (&o.window_start, &o.window_end) {
        (Some(a), Some(b)) => {
            let _ = writeln!(s, "time window: {a} (inclusive) to {b} (exclusive)");
        }
        (Some(a), None) => {
            let _ = writeln!(s, "time window: from {a}");
        }
        (None, Some(b)) => {
            let _ = writeln!(s, "time window: before {b}");
        }
        (None, None) => {}
    }
    if o.partial {
        let _ = writeln!(
            s,
            "PARTIAL RESULT: the search stopped early{}; the counts cover only what was searched. Narrow the time window or the pattern and search again.",
            o.partial_reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
        );
    }
    if let Some(ov) = &o.overflow {
        let _ = writeln!(
            s,
            "showing {} of {} matches; the rest are in overflow {}: call read_search_file with reference={}, offset={}",
            o.returned, o.total_matches, ov.reference, ov.reference, ov.next_offset
        );
    } else if o.truncated {
        let _ =
            writeln!(s, "showing {} of {} matches (no overflow was kept; narrow the search to see the rest)", o.returned, o.total_matches);
    }
    if o.matches.is_empty() {
        if o.total_matches == 0 && flags.following {
            s.push_str("No new matching lines since after_cursor.\n");
        } else if o.total_matches == 0 {
            s.push_str(
                "No matches. Try case_insensitive=true, a broader pattern, or a wider time window; list_services shows the time range each service covers.\n",
            );
        }
        return s;
    }
    s.push('\n');
    render_matches(&mut s, &o.matches);
    while s.ends_with("\n\n") {
        s.pop();
    }
    s
}

/// The last line of a search_logs answer: how to go on from its cursor.
pub fn cursor_hint(cursor: &str) -> String {
    format!(
        "\nnext: for only the lines appended after these, call search_logs again with the same arguments and after_cursor=\"{cursor}\" (add wait_ms to wait for them)\n"
    )
}

/// [`cursor_hint`] for a cursor too long for the text's budget.
pub fn cursor_hint_elsewhere(chars: usize) -> String {
    format!(
        "\nnext: for only the lines appended after these, call search_logs again with the same arguments and after_cursor set to structuredContent.cursor ({chars} characters; add wait_ms to wait for them)\n"
    )
}

pub fn page_text(o: &PageOutput) -> String {
    let mut s = String::new();
    if o.matches.is_empty() {
        let _ =
            writeln!(s, "overflow {}: no matches at offset {} (it holds {}).", o.reference, o.offset, plural(o.total, "match", "matches"));
        return s;
    }
    let _ = writeln!(s, "overflow {}: matches {}-{} of {}", o.reference, o.offset + 1, o.offset + o.returned, o.total);
    match o.next_offset {
        Some(n) if !o.eof => {
            let _ = writeln!(s, "more: call read_search_file with reference={}, offset={}", o.reference, n);
        }
        _ => {
            s.push_str("end of overflow\n");
        }
    }
    s.push('\n');
    render_matches(&mut s, &o.matches);
    while s.ends_with("\n\n") {
        s.pop();
    }
    s
}

pub fn services_text(o: &ServicesOutput) -> String {
    let mut s = String::new();
    if o.services.is_empty() {
        s.push_str("No services are configured: ask the operator to add [[service]] entries to the logai manifest.\n");
        return s;
    }
    let _ = writeln!(s, "{}:", plural(o.services.len() as u64, "service", "services"));
    for v in &o.services {
        let range = match (&v.earliest, &v.latest) {
            (Some(a), Some(b)) => format!("{a} to {b}"),
            (Some(a), None) => format!("from {a}"),
            (None, Some(b)) => format!("until {b}"),
            (None, None) => "time range unknown".to_string(),
        };
        let _ = writeln!(
            s,
            "- {}: {}\n  format {}, {}, {}, {}",
            v.name,
            if v.description.is_empty() { "(no description)" } else { &v.description },
            v.format,
            plural(v.file_count as u64, "file", "files"),
            human_bytes(v.total_bytes),
            range
        );
    }
    s.push_str("Search one with search_logs (service=<name>, pattern=<regex>, optionally a time window).\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(file: &str, n: u64, before: &[(u64, &str)], after: &[(u64, &str)]) -> Match {
        Match {
            file: file.into(),
            line_number: n,
            timestamp: None,
            text: format!("match {n}"),
            before: before.iter().map(|(n, t)| ContextLine { line_number: *n, text: t.to_string() }).collect(),
            after: after.iter().map(|(n, t)| ContextLine { line_number: *n, text: t.to_string() }).collect(),
        }
    }

    #[test]
    fn rg_like_lines_merge_context() {
        let ms = vec![
            m("/a.log", 3, &[(2, "two")], &[(4, "match 4")]),
            m("/a.log", 4, &[(3, "match 3")], &[(5, "five")]),
            m("/a.log", 9, &[(8, "eight")], &[]),
            m("/b.log", 1, &[], &[]),
        ];
        let mut s = String::new();
        render_matches(&mut s, &ms);
        assert_eq!(s, "/a.log\n2-two\n3:match 3\n4:match 4\n5-five\n--\n8-eight\n9:match 9\n\n/b.log\n1:match 1\n\n");
    }

    #[test]
    fn truncation_note_names_reference_and_offset() {
        let o = SearchOutput {
            service: "payments".into(),
            pattern: "timeout".into(),
            matches: vec![m("/a.log", 1, &[], &[])],
            returned: 1,
            total_matches: 5123,
            files_searched: 4,
            files_matched: 2,
            bytes_scanned: 2048,
            truncated: true,
            partial: false,
            partial_reason: None,
            duration_ms: 3,
            cached: false,
            window_start: None,
            window_end: None,
            overflow: Some(Overflow { reference: "ovf-1".into(), total: 5123, next_offset: 1 }),
            cursor: "lc1.x".into(),
        };
        let t = search_text(&o, &SearchFlags { fixed_strings: false, case_insensitive: false, file_pattern: None, following: false });
        assert!(
            t.contains("showing 1 of 5123 matches; the rest are in overflow ovf-1: call read_search_file with reference=ovf-1, offset=1"),
            "{t}"
        );
        assert!(t.starts_with("payments: 5123 matches for /timeout/ in 2 of 4 files searched, 2.0 KiB scanned"), "{t}");
    }

    #[test]
    fn long_lines_are_clipped_at_char_boundary() {
        let long = "é".repeat(TEXT_LINE_LIMIT);
        let c = clip(&long);
        assert!(c.contains("more bytes"));
    }

    #[test]
    fn overflow_offset() {
        assert_eq!(next_offset(500, 500, 100), 100);
        assert_eq!(next_offset(500, 400, 100), 0);
    }
}
