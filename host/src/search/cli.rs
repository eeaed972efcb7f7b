//! `logai search`: the core from the command line, printed like ripgrep.
//!
//! People get `path:line:text` (file headings and colour on a terminal),
//! context lines as `path-line-text` with `--` between groups, and a summary
//! on stderr. `--json` prints one JSON object per match
//! (`{"type":"match",...}`) and then a summary object (`{"type":"summary",...}`).
//! Exit status: 0 when something matched, 1 when nothing did, 2 on errors.

use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use chrono::Utc;
use owo_colors::OwoColorize;

use super::{SearchControl, SearchCore, SearchMatch, SearchRequest, SearchResponse, SessionDir};
use crate::config::Config;

/// Arguments of `logai search`.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct SearchArgs {
    /// Service to search (as configured; see `list_services`).
    #[arg(long, short = 's')]
    pub service: String,
    /// Regex (Rust syntax), or a literal with -F.
    #[arg(long, short = 'e')]
    pub pattern: String,
    /// Treat the pattern as a literal string.
    #[arg(long, short = 'F')]
    pub fixed_strings: bool,
    /// Case-insensitive match.
    #[arg(long, short = 'i')]
    pub ignore_case: bool,
    /// Only lines stamped within the last N minutes.
    #[arg(long)]
    pub minutes_back: Option<u32>,
    /// Only lines stamped within the last N hours.
    #[arg(long)]
    pub hours_back: Option<u32>,
    /// Only lines stamped on this date (YYYY-MM-DD, service timezone).
    #[arg(long)]
    pub date: Option<String>,
    /// Inclusive lower bound (RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
    /// Exclusive upper bound (RFC 3339).
    #[arg(long)]
    pub until: Option<String>,
    /// Glob on file names within the service's files.
    #[arg(long)]
    pub file_pattern: Option<String>,
    /// Override the service's log format: syslog, json, plain, auto.
    #[arg(long)]
    pub format: Option<String>,
    /// Lines of context before and after each match.
    #[arg(long, short = 'C', default_value_t = 0)]
    pub context: u32,
    /// Print at most this many matches (default: all; the count covers all).
    #[arg(long, short = 'm')]
    pub max_results: Option<u64>,
    /// JSON lines: one object per match, then a summary object.
    #[arg(long)]
    pub json: bool,
    /// The manifest (when the caller did not load one already).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

impl SearchArgs {
    pub fn request(&self, inline: u32) -> SearchRequest {
        SearchRequest {
            service: self.service.clone(),
            pattern: self.pattern.clone(),
            fixed_strings: self.fixed_strings,
            case_insensitive: self.ignore_case,
            minutes_back: self.minutes_back,
            hours_back: self.hours_back,
            date: self.date.clone(),
            since: self.since.clone(),
            until: self.until.clone(),
            file_pattern: self.file_pattern.clone(),
            log_format: self.format.clone(),
            context: self.context,
            max_results: inline,
        }
    }
}

/// Run `logai search`. Errors in the request print `logai search: <field>:
/// <message>` and exit 2.
pub fn run_cli(args: SearchArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let session = SessionDir::from_config(config)?;
    let core = SearchCore::new(config, session).map_err(|e| anyhow::anyhow!("{e}"))?;
    let limit = args.max_results.unwrap_or(u64::MAX);
    let inline = limit.min(config.limits.max_results_cap as u64) as u32;
    let req = args.request(inline);
    let fail = |e: super::SearchError| {
        match &e.field {
            Some(f) => eprintln!("logai search: {f}: {}", e.message),
            None => eprintln!("logai search: {}", e.message),
        }
        ExitCode::from(2)
    };
    let plan = match core.plan(&req, Utc::now()) {
        Ok(p) => p,
        Err(e) => return Ok(fail(e)),
    };
    let ctl = SearchControl::with_timeout(Duration::from_millis(config.limits.search_timeout_ms));
    let resp = match core.execute(&plan, &ctl) {
        Ok(r) => r,
        Err(e) => return Ok(fail(e)),
    };

    let stdout = io::stdout();
    let tty = stdout.is_terminal() && !args.json;
    let mut out = BufWriter::with_capacity(256 * 1024, stdout.lock());
    let mut printer = Printer::new(&args, tty);
    let mut printed = 0u64;
    let print_result = (|| -> io::Result<()> {
        for m in &resp.matches {
            if printed >= limit {
                break;
            }
            printer.print(&mut out, m)?;
            printed += 1;
        }
        // The rest, from the overflow, page by page.
        if let Some(ovf) = &resp.overflow {
            let mut offset = resp.matches.len() as u64;
            while printed < limit && offset < ovf.total {
                let page = core.read_overflow(&ovf.reference, offset, 10_000).map_err(|e| io::Error::other(e.message))?;
                if page.matches.is_empty() {
                    break;
                }
                for m in &page.matches {
                    if printed >= limit {
                        break;
                    }
                    printer.print(&mut out, m)?;
                    printed += 1;
                }
                offset += page.matches.len() as u64;
            }
        }
        if args.json {
            let mut summary = serde_json::to_value(SummaryView::from(&resp)).map_err(io::Error::other)?;
            summary["type"] = "summary".into();
            summary["printed"] = printed.into();
            serde_json::to_writer(&mut out, &summary).map_err(io::Error::other)?;
            out.write_all(b"\n")?;
        }
        out.flush()
    })();
    match print_result {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
        Err(e) => return Err(e.into()),
    }
    drop(out);
    eprintln!("{}", summary_line(&resp, printed));
    core.close();
    Ok(if resp.total_matches > 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// The summary printed to stderr after the matches.
fn summary_line(resp: &SearchResponse, printed: u64) -> String {
    let mut line = format!(
        "{} matches in {} of {} files ({} bytes searched, {} ms)",
        resp.total_matches, resp.files_matched, resp.files_searched, resp.bytes_scanned, resp.duration_ms
    );
    if printed < resp.total_matches {
        line.push_str(&format!("; printed {printed}"));
    }
    if let Some(r) = &resp.partial_reason {
        line.push_str(&format!("; partial: {r}"));
    }
    if let (Some(s), e) = (&resp.window_start, &resp.window_end) {
        line.push_str(&format!("; window {s} .. {}", e.as_deref().unwrap_or("now")));
    }
    line
}

#[derive(serde::Serialize)]
struct SummaryView<'a> {
    total_matches: u64,
    files_searched: u32,
    files_matched: u32,
    bytes_scanned: u64,
    truncated: bool,
    partial: bool,
    partial_reason: &'a Option<String>,
    duration_ms: u64,
    window_start: &'a Option<String>,
    window_end: &'a Option<String>,
}

impl<'a> From<&'a SearchResponse> for SummaryView<'a> {
    fn from(r: &'a SearchResponse) -> Self {
        SummaryView {
            total_matches: r.total_matches,
            files_searched: r.files_searched,
            files_matched: r.files_matched,
            bytes_scanned: r.bytes_scanned,
            truncated: r.truncated,
            partial: r.partial,
            partial_reason: &r.partial_reason,
            duration_ms: r.duration_ms,
            window_start: &r.window_start,
            window_end: &r.window_end,
        }
    }
}

struct Printer {
    json: bool,
    tty: bool,
    highlight: Option<regex::Regex>,
    last_file: Option<String>,
    /// Last line number printed in `last_file` (context dedup).
    last_line: u64,
}

impl Printer {
    fn new(args: &SearchArgs, tty: bool) -> Self {
        let highlight = if tty {
            let pat = if args.fixed_strings { regex::escape(&args.pattern) } else { args.pattern.clone() };
            regex::RegexBuilder::new(&pat).case_insensitive(args.ignore_case).build().ok()
        } else {
            None
        };
        Printer { json: args.json, tty, highlight, last_file: None, last_line: 0 }
    }

    fn print(&mut self, out: &mut impl Write, m: &SearchMatch) -> io::Result<()> {
        if self.json {
            let mut v = serde_json::to_value(m).map_err(io::Error::other)?;
            if let Some(obj) = v.as_object_mut() {
                obj.insert("type".into(), "match".into());
            }
            serde_json::to_writer(&mut *out, &v).map_err(io::Error::other)?;
            return out.write_all(b"\n");
        }
        let new_file = self.last_file.as_deref() != Some(m.file.as_str());
        if new_file {
            if self.tty {
                if self.last_file.is_some() {
                    writeln!(out)?;
                }
                writeln!(out, "{}", m.file.magenta())?;
            } else if self.last_file.is_some() && !(m.before.is_empty() && m.after.is_empty()) {
                writeln!(out, "--")?;
            }
            self.last_file = Some(m.file.clone());
            self.last_line = 0;
        }
        let first = m.before.first().map(|c| c.line_number).unwrap_or(m.line_number);
        if !new_file && self.last_line > 0 && first > self.last_line + 1 && !(m.before.is_empty() && m.after.is_empty()) {
            writeln!(out, "--")?;
        }
        for c in &m.before {
            if c.line_number > self.last_line {
                self.line(out, &m.file, c.line_number, &c.text, '-')?;
                self.last_line = c.line_number;
            }
        }
        if m.line_number > self.last_line {
            self.line(out, &m.file, m.line_number, &m.text, ':')?;
            self.last_line = m.line_number;
        }
        for c in &m.after {
            if c.line_number > self.last_line {
                self.line(out, &m.file, c.line_number, &c.text, '-')?;
                self.last_line = c.line_number;
            }
        }
        Ok(())
    }

    fn line(&self, out: &mut impl Write, file: &str, n: u64, text: &str, sep: char) -> io::Result<()> {
        if self.tty {
            write!(out, "{}{sep}", n.green())?;
            match (&self.highlight, sep) {
                (Some(re), ':') => {
                    let mut last = 0;
                    for mm in re.find_iter(text) {
                        write!(out, "{}{}", &text[last..mm.start()], mm.as_str().red().bold())?;
                        last = mm.end();
                    }
                    writeln!(out, "{}", &text[last..])
                }
                _ => writeln!(out, "{text}"),
            }
        } else {
            writeln!(out, "{file}{sep}{n}{sep}{text}")
        }
    }
}
