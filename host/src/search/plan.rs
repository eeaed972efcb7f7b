//! What a search will read: the request validated, its window resolved, the
//! service's files listed (confined) and pruned by time range.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use grep_regex::{RegexMatcher, RegexMatcherBuilder};
use serde::{Deserialize, Serialize};

use super::files::{self, FileId, TimeRange};
use super::scan::TOLERANCE_MS;
use super::{timestamp, window, LogFormat, SearchCore, SearchError, SearchRequest, ServiceInfo, Window};

/// One file of a plan, with its identity and state when planned.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlannedFile {
    /// Canonical absolute path (inside the service's roots).
    pub path: PathBuf,
    pub id: FileId,
    pub gz: bool,
    pub range: TimeRange,
    /// First byte to search (a line start). 0 normally; a caller caching per
    /// segment may set it to the size already searched to scan only new bytes
    /// of a growing file (line numbers stay absolute via line checkpoints).
    /// Ignored for `.gz` files.
    pub start_offset: u64,
    /// Newlines in `[0, start_offset)`, when the caller knows them (a
    /// resumed search does): saves counting the prefix for line numbers.
    #[serde(default)]
    pub start_lines: Option<u64>,
    /// Bytes past this are not searched (the size when planned, so lines
    /// appended later are left to a later plan).
    pub end_offset: u64,
    /// Only this file (its device and inode): when the path names another
    /// file by the time it is read (rotated), it is not searched. Offsets
    /// from a follow cursor belong to one file.
    #[serde(default)]
    pub same_file: bool,
}

/// A validated search, its absolute window and the files it will read.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SearchPlan {
    pub request: SearchRequest,
    pub service: String,
    pub format: LogFormat,
    pub timezone: String,
    pub window: Option<Window>,
    /// Files to search, oldest first.
    pub files: Vec<PlannedFile>,
    /// Files of the service left out by the time window.
    pub files_pruned: u32,
    /// Those files (a follow cursor records where they end).
    #[serde(skip)]
    pub pruned: Vec<PlannedFile>,
    #[serde(skip)]
    pub(super) matcher: Option<Arc<RegexMatcher>>,
}

impl Serialize for LogFormat {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}
impl<'de> Deserialize<'de> for LogFormat {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        LogFormat::parse(&s, "format").map_err(|e| serde::de::Error::custom(e.message))
    }
}

impl SearchPlan {
    /// The window as the cache sees it. A bound outside every file's time
    /// range selects nothing different wherever it lies: it is left open,
    /// so a relative window asked again over logs that stopped growing
    /// finds the answer.
    pub fn key_window(&self) -> Option<Window> {
        self.window.map(|w| {
            let ranges = || self.files.iter().map(|f| f.range);
            Window {
                start_ms: if ranges().all(|r| r.first_ms.is_some_and(|x| x >= w.start_ms)) { i64::MIN } else { w.start_ms },
                end_ms: if ranges().all(|r| r.last_ms.is_some_and(|x| x < w.end_ms)) { i64::MAX } else { w.end_ms },
            }
        })
    }

    /// Total bytes the plan covers (compressed size for `.gz`).
    pub fn bytes_total(&self) -> u64 {
        self.files.iter().map(|f| f.end_offset.saturating_sub(f.start_offset)).sum()
    }
}

impl SearchCore {
    pub(super) fn build_matcher(&self, req: &SearchRequest) -> Result<RegexMatcher, SearchError> {
        let mut b = RegexMatcherBuilder::new();
        b.case_insensitive(req.case_insensitive)
            .fixed_strings(req.fixed_strings)
            .line_terminator(Some(b'\n'))
            // `^` and `$` anchor at line boundaries, as in rg.
            .multi_line(true)
            .size_limit(self.limits.regex_size_limit_bytes)
            .dfa_size_limit(self.limits.regex_size_limit_bytes);
        b.build(&req.pattern).map_err(|e| SearchError::invalid("pattern", format!("invalid pattern: {e}")))
    }

    /// Validate `req`, resolve its window against `now`, list and prune files.
    pub fn plan(&self, req: &SearchRequest, now: DateTime<Utc>) -> Result<SearchPlan, SearchError> {
        let service = self.service(&req.service)?;
        let format = match &req.log_format {
            Some(f) => LogFormat::parse(f, "log_format")?,
            None => service.format,
        };
        if req.context > self.limits.max_context_lines {
            return Err(SearchError::invalid(
                "context",
                format!("context {} is above the limit of {} lines", req.context, self.limits.max_context_lines),
            ));
        }
        if req.max_results > self.limits.max_results_cap {
            return Err(SearchError::invalid(
                "max_results",
                format!("max_results {} is above the limit of {}", req.max_results, self.limits.max_results_cap),
            ));
        }
        let window = window::resolve(req, service.tz, now)?;
        let matcher = self.build_matcher(req)?;
        let file_filter = match req.file_pattern.as_deref() {
            Some(p) => Some(files::file_pattern_matcher(p)?),
            None => None,
        };
        let mut planned = Vec::new();
        let mut pruned = Vec::new();
        let (mut found, escapes) = service.discover_with_escapes();
        if let Some(fp) = &file_filter {
            found.retain(|path| fp.selects(path, service.roots()));
            // Only what resolves outside the roots: say so, naming it,
            // rather than answer as if no such file existed.
            if found.is_empty() {
                fp.refuse_escapes(&escapes)?;
            }
        }
        for path in found {
            let Ok(meta) = std::fs::metadata(&path) else { continue };
            let id = FileId::of(&meta);
            let range = self.ranges.get(&path, id, format, service.tz);
            let file = PlannedFile {
                gz: files::is_gz(&path),
                path,
                id,
                range,
                start_offset: 0,
                start_lines: None,
                end_offset: id.size,
                same_file: false,
            };
            if let Some(w) = window {
                let before = range.last_ms.is_some_and(|l| l.saturating_add(TOLERANCE_MS) < w.start_ms);
                let after = range.first_ms.is_some_and(|f| f.saturating_sub(TOLERANCE_MS) >= w.end_ms);
                if before || after {
                    pruned.push(file);
                    continue;
                }
            }
            planned.push(file);
        }
        sort_oldest_first(&mut planned);
        Ok(SearchPlan {
            request: req.clone(),
            service: service.name.clone(),
            format,
            timezone: service.tz.name().to_string(),
            window,
            files: planned,
            files_pruned: pruned.len() as u32,
            pruned,
            matcher: Some(Arc::new(matcher)),
        })
    }

    /// The configured services with their files, sizes and time spans.
    pub fn list_services(&self) -> Vec<ServiceInfo> {
        self.list_services_where(|_| true)
    }

    /// [`Self::list_services`] of the services `keep` accepts (by name);
    /// the others' files are not looked at.
    pub fn list_services_where(&self, keep: impl Fn(&str) -> bool) -> Vec<ServiceInfo> {
        self.services
            .iter()
            .filter(|s| keep(&s.name))
            .map(|s| {
                let files = s.discover();
                let mut total = 0u64;
                let mut earliest: Option<i64> = None;
                let mut latest: Option<i64> = None;
                for p in &files {
                    let Ok(meta) = std::fs::metadata(p) else { continue };
                    let id = FileId::of(&meta);
                    total += id.size;
                    let r = self.ranges.get(p, id, s.format, s.tz);
                    if let Some(f) = r.first_ms {
                        earliest = Some(earliest.map_or(f, |e| e.min(f)));
                    }
                    if let Some(l) = r.last_ms {
                        latest = Some(latest.map_or(l, |e| e.max(l)));
                    }
                }
                ServiceInfo {
                    name: s.name.clone(),
                    description: s.description.clone(),
                    format: s.format.as_str().to_string(),
                    file_count: files.len() as u32,
                    total_bytes: total,
                    earliest: earliest.map(timestamp::format_ms),
                    latest: latest.map(timestamp::format_ms),
                }
            })
            .collect()
    }
}

/// Oldest first: by first stamp (else mtime), then rotation index, then path.
pub(super) fn sort_oldest_first(files: &mut [PlannedFile]) {
    files.sort_by(|a, b| {
        let ka = (a.range.first_ms.unwrap_or(a.id.mtime_ms()), std::cmp::Reverse(rotation_index(&a.path)));
        let kb = (b.range.first_ms.unwrap_or(b.id.mtime_ms()), std::cmp::Reverse(rotation_index(&b.path)));
        ka.cmp(&kb).then_with(|| a.path.cmp(&b.path))
    });
}

/// `app.log.3.gz` -> 3, `app.log` -> 0 (higher = older).
fn rotation_index(path: &Path) -> u32 {
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    name.rsplit('.').next().and_then(|s| s.parse().ok()).unwrap_or(0)
}
