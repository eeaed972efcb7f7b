//! Services and their files: glob resolution, discovery, confinement, and
//! the time range of each file (first stamp, latest stamp of its tail),
//! cached by identity.
//!
//! Confinement: a service's *roots* are the literal base directories of its
//! globs (the path up to the first component with a glob metacharacter),
//! canonicalized once. A discovered file is canonicalized and kept only when
//! it still lies under a root, so a symlink that leaves the roots is refused.
//! Files are opened by that canonical path and their (dev, ino) is checked
//! against the plan before reading.

use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use globset::{Glob, GlobBuilder, GlobMatcher};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::api::SearchError;
use super::timestamp::{LogFormat, StampParser};

/// One configured service, resolved.
#[derive(Clone, Debug)]
pub struct Service {
    pub name: String,
    pub description: String,
    pub format: LogFormat,
    pub tz: Tz,
    pub globs: Vec<ServiceGlob>,
}

/// One of a service's path globs: its canonical literal base dir and the
/// glob rebuilt on top of it.
#[derive(Clone, Debug)]
pub struct ServiceGlob {
    /// As written in the manifest (for messages).
    pub configured: String,
    /// Canonical base directory (the confinement root), when it exists.
    pub root: Option<PathBuf>,
    /// Matcher over full paths under `root`.
    matcher: Option<GlobMatcher>,
    /// Whether matching files may lie in subdirectories of `root`.
    recursive: bool,
}

fn has_meta(s: &str) -> bool {
    s.contains(['*', '?', '[', '{'])
}

impl ServiceGlob {
    /// Resolve `pattern` (absolute, or relative to `base_dir`).
    pub fn new(pattern: &str, base_dir: &Path) -> Result<ServiceGlob, String> {
        let full = if Path::new(pattern).is_absolute() { PathBuf::from(pattern) } else { base_dir.join(pattern) };
        let full_s = full.to_string_lossy().to_string();
        // Split into literal base and glob remainder.
        let mut base = PathBuf::new();
        let mut rest: Vec<String> = Vec::new();
        for comp in Path::new(&full_s).components() {
            let c = comp.as_os_str().to_string_lossy().to_string();
            if rest.is_empty() && !has_meta(&c) {
                base.push(comp.as_os_str());
            } else {
                rest.push(c);
            }
        }
        if rest.is_empty() {
            // A literal file path: its directory is the root.
            let name = base.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            base.pop();
            rest.push(globset::escape(&name));
        }
        let recursive = rest.len() > 1 || rest.iter().any(|r| r.contains("**"));
        let root = std::fs::canonicalize(&base).ok().filter(|p| p.is_dir());
        let matcher = match &root {
            Some(root) => {
                let text = format!("{}/{}", root.to_string_lossy().trim_end_matches('/'), rest.join("/"));
                let glob =
                    GlobBuilder::new(&text).literal_separator(true).build().map_err(|e| format!("bad path glob {pattern:?}: {e}"))?;
                Some(glob.compile_matcher())
            }
            None => {
                // Still validate the glob syntax.
                Glob::new(&rest.join("/")).map_err(|e| format!("bad path glob {pattern:?}: {e}"))?;
                None
            }
        };
        Ok(ServiceGlob { configured: pattern.to_string(), root, matcher, recursive })
    }

    /// Files under the root matching the glob, canonical and confined;
    /// what resolves outside the roots goes to `escapes`.
    fn discover(&self, out: &mut Vec<PathBuf>, escapes: &mut Vec<Escape>) {
        let (Some(root), Some(matcher)) = (&self.root, &self.matcher) else { return };
        let mut stack = vec![(root.clone(), 0usize)];
        while let Some((dir, depth)) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                tracing::warn!(dir = %dir.display(), "cannot read log directory");
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let Ok(ft) = entry.file_type() else { continue };
                let is_dir = if ft.is_symlink() { path.is_dir() } else { ft.is_dir() };
                if is_dir {
                    if self.recursive && depth < 16 {
                        // Only descend into directories that stay under the root.
                        if let Ok(c) = std::fs::canonicalize(&path) {
                            if c.starts_with(root) {
                                stack.push((path, depth + 1));
                            } else {
                                escapes.push(Escape { path, root: root.clone(), dir: true });
                            }
                        }
                    }
                    continue;
                }
                if !matcher.is_match(&path) {
                    continue;
                }
                match std::fs::canonicalize(&path) {
                    Ok(canon) if canon.starts_with(root) => {
                        if canon.is_file() {
                            out.push(canon);
                        }
                    }
                    Ok(canon) => {
                        tracing::warn!(path = %path.display(), target = %canon.display(), root = %root.display(),
                            "refusing a log file that resolves outside its service's roots");
                        escapes.push(Escape { path, root: root.clone(), dir: false });
                    }
                    Err(_) => {}
                }
            }
        }
    }
}

impl Service {
    pub fn from_config(cfg: &crate::config::ServiceConfig, base_dir: &Path) -> Result<Service, SearchError> {
        let format =
            LogFormat::parse(&cfg.format, "format").map_err(|e| SearchError::internal(format!("service '{}': {}", cfg.name, e.message)))?;
        let tz = super::timestamp::parse_tz(cfg.timezone.as_deref())
            .map_err(|e| SearchError::internal(format!("service '{}': {e}", cfg.name)))?;
        let globs = cfg
            .paths
            .iter()
            .map(|p| ServiceGlob::new(p, base_dir))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| SearchError::internal(format!("service '{}': {e}", cfg.name)))?;
        for g in &globs {
            if g.root.is_none() {
                tracing::warn!(service = %cfg.name, glob = %g.configured, "the base directory of this path glob does not exist (yet)");
            }
        }
        Ok(Service { name: cfg.name.clone(), description: cfg.description.clone(), format, tz, globs })
    }

    pub fn roots(&self) -> impl Iterator<Item = &Path> {
        self.globs.iter().filter_map(|g| g.root.as_deref())
    }

    /// Every file of the service (canonical, confined, deduplicated).
    pub fn discover(&self) -> Vec<PathBuf> {
        self.discover_with_escapes().0
    }

    /// [`Service::discover`], and what the globs reach that resolves
    /// outside the roots (never read; named when a `file_pattern` asks for it).
    pub fn discover_with_escapes(&self) -> (Vec<PathBuf>, Vec<Escape>) {
        let (mut out, mut escapes) = (Vec::new(), Vec::new());
        for g in &self.globs {
            g.discover(&mut out, &mut escapes);
        }
        out.sort();
        out.dedup();
        (out, escapes)
    }

    /// Whether `path` (canonical) lies under one of the roots.
    pub fn confines(&self, path: &Path) -> bool {
        self.roots().any(|r| path.starts_with(r))
    }
}

/// A path under a service's root that its globs reach but that resolves
/// outside the roots (a symlink, or a directory symlink): never read.
#[derive(Clone, Debug)]
pub struct Escape {
    /// Where it was found, under the root (its target is never named).
    pub path: PathBuf,
    /// The root it was found under.
    pub root: PathBuf,
    /// A directory: the files behind it are not listed.
    pub dir: bool,
}

/// A client's `file_pattern`, validated and compiled. Patterns without a
/// separator match file names; with one, the path relative to the root.
pub struct FilePattern {
    text: String,
    matcher: GlobMatcher,
    with_sep: bool,
}

impl FilePattern {
    /// Whether it selects `path` (canonical, under one of `roots`).
    pub fn selects<'a>(&self, path: &Path, mut roots: impl Iterator<Item = &'a Path>) -> bool {
        if self.with_sep {
            roots.any(|r| path.strip_prefix(r).is_ok_and(|rel| self.matcher.is_match(rel)))
        } else {
            path.file_name().is_some_and(|n| self.matcher.is_match(Path::new(n)))
        }
    }

    /// Refused when it names something that resolves outside the roots: a
    /// file it matches, or a directory its literal leading components go
    /// through (`sub/*`, `sub/app.log`). Called when it selects no file
    /// inside the roots: skipping those silently would answer "no such
    /// file" for a file the caller can see in the directory. A pattern
    /// that also selects files inside searches those, as a search without
    /// one does.
    pub fn refuse_escapes(&self, escapes: &[Escape]) -> Result<(), SearchError> {
        let literal: Vec<&str> = self.text.split('/').take_while(|c| !has_meta(c)).collect();
        let parts = self.text.split('/').count();
        for e in escapes {
            let Ok(rel) = e.path.strip_prefix(&e.root) else { continue };
            let named = if e.dir {
                let dir: Vec<String> = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
                self.with_sep && dir.len() < parts && dir.len() <= literal.len() && dir.iter().zip(&literal).all(|(a, b)| a == b)
            } else if self.with_sep {
                self.matcher.is_match(rel)
            } else {
                e.path.file_name().is_some_and(|n| self.matcher.is_match(Path::new(n)))
            };
            if named {
                let what = if e.dir { "goes through the directory" } else { "names" };
                return Err(SearchError::forbidden(
                    "file_pattern",
                    format!(
                        "file_pattern {:?} {what} {}, which resolves outside the service's roots; it is never searched",
                        self.text,
                        e.path.display()
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Validate a client's `file_pattern` and compile it. Patterns without a
/// separator match file names; with one, the path relative to the root.
pub fn file_pattern_matcher(pattern: &str) -> Result<FilePattern, SearchError> {
    let p = pattern.trim();
    if p.is_empty() {
        return Err(SearchError::invalid("file_pattern", "file_pattern is empty"));
    }
    if p.starts_with('/') || p.starts_with('\\') || Path::new(p).is_absolute() {
        return Err(SearchError::forbidden(
            "file_pattern",
            format!("file_pattern {p:?} is an absolute path; it must be a glob on file names within the service's files"),
        ));
    }
    if p.contains('\\') || p.contains('\0') {
        return Err(SearchError::forbidden("file_pattern", format!("file_pattern {p:?} contains a backslash or NUL")));
    }
    if Path::new(p).components().any(|c| matches!(c, Component::ParentDir)) || p.split('/').any(|s| s == "..") {
        return Err(SearchError::forbidden(
            "file_pattern",
            format!("file_pattern {p:?} contains '..'; it may not leave the service's directories"),
        ));
    }
    let with_sep = p.contains('/');
    let glob = GlobBuilder::new(p)
        .literal_separator(true)
        .build()
        .map_err(|e| SearchError::invalid("file_pattern", format!("file_pattern {p:?} is not a valid glob: {e}")))?;
    Ok(FilePattern { text: p.to_string(), matcher: glob.compile_matcher(), with_sep })
}

/// A file's identity and state when planned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    /// Modification time, ns since the epoch.
    pub mtime_ns: i64,
}

impl FileId {
    pub fn of(meta: &Metadata) -> FileId {
        FileId { dev: meta.dev(), ino: meta.ino(), size: meta.len(), mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec() }
    }
    pub fn mtime_ms(&self) -> i64 {
        self.mtime_ns / 1_000_000
    }
    pub fn mtime(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.mtime_ms()).unwrap_or_else(Utc::now)
    }
}

pub fn is_gz(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "gz")
}

/// First and last stamp of a file (either may be unknown).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeRange {
    /// The first stamped line's.
    pub first_ms: Option<i64>,
    /// The latest stamp in the file's tail (64 KiB, more when it has none);
    /// for `.gz`, bounded by the mtime.
    pub last_ms: Option<i64>,
}

/// In-process cache of file time ranges, keyed by identity and state.
#[derive(Default)]
pub struct RangeCache {
    map: Mutex<HashMap<(FileId, LogFormat), TimeRange>>,
}

const HEAD_BYTES: usize = 64 * 1024;

impl RangeCache {
    pub fn get(&self, path: &Path, id: FileId, format: LogFormat, tz: Tz) -> TimeRange {
        if let Some(r) = self.map.lock().get(&(id, format)) {
            return *r;
        }
        let r = compute_range(path, id, format, tz);
        let mut map = self.map.lock();
        if map.len() > 100_000 {
            map.clear();
        }
        map.insert((id, format), r);
        r
    }
}

fn compute_range(path: &Path, id: FileId, format: LogFormat, tz: Tz) -> TimeRange {
    let parser = StampParser::new(format, tz, id.mtime());
    let Ok(file) = File::open(path) else { return TimeRange::default() };
    if is_gz(path) {
        // The head is cheap to decompress; the tail is not, so the last
        // stamp is bounded by the mtime (a rotated file is not written after).
        let mut dec = flate2::read::MultiGzDecoder::new(std::io::BufReader::new(ReadAt { file: &file, pos: 0 }));
        let mut head = vec![0u8; HEAD_BYTES];
        let mut n = 0;
        while n < head.len() {
            match dec.read(&mut head[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(_) => break,
            }
        }
        let first = first_stamp(&head[..n], &parser);
        let last = first.map(|f| f.max(id.mtime_ms()));
        return TimeRange { first_ms: first, last_ms: last };
    }
    let mut file = file;
    let mut head = vec![0u8; HEAD_BYTES.min(id.size as usize)];
    if read_full_at(&mut file, 0, &mut head).is_err() {
        return TimeRange::default();
    }
    let first = first_stamp(&head, &parser);
    let mut last = None;
    // Walk back from the end in growing chunks until a stamped line is
    // found. The latest stamp read, not the last line's: writers stamp a
    // line before writing it, so the last lines may be slightly out of order.
    let mut chunk = HEAD_BYTES as u64;
    loop {
        let start = id.size.saturating_sub(chunk);
        let mut tail = vec![0u8; (id.size - start) as usize];
        if read_full_at(&mut file, start, &mut tail).is_err() {
            break;
        }
        last = latest_stamp(&tail, start == 0, &parser);
        if last.is_some() || start == 0 || chunk >= 8 * 1024 * 1024 {
            break;
        }
        chunk *= 4;
    }
    TimeRange { first_ms: first, last_ms: last }
}

/// Fill `buf` from `offset` (short only at the end of the file).
/// Positional (`pread`): the file's position does not move, so these
/// bounded reads (time ranges, window probes, line starts, fingerprints)
/// never look like a scan to an outside observer; only a scan and a line
/// count move a log file's position, and both run under a search permit
/// (docs/search.md, "What a search reads, and when").
pub fn read_full_at(file: &mut File, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], offset + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A file read from the start by positional reads (its position stays put:
/// see [`read_full_at`]).
struct ReadAt<'a> {
    file: &'a File,
    pos: u64,
}

impl Read for ReadAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Stamp of the first stamped line in `buf` (which starts at a line start).
pub fn first_stamp(buf: &[u8], parser: &StampParser) -> Option<i64> {
    let mut pos = 0;
    let mut lines = 0;
    while pos < buf.len() && lines < 2000 {
        let end = memchr::memchr(b'\n', &buf[pos..]).map(|i| pos + i).unwrap_or(buf.len());
        if let Some(ms) = parser.parse(&buf[pos..end]) {
            return Some(ms);
        }
        pos = end + 1;
        lines += 1;
    }
    None
}

/// The latest stamp of the lines in `buf` (the last one may be unfinished).
/// When `at_start` is false the first (partial) line is skipped.
pub fn latest_stamp(buf: &[u8], at_start: bool, parser: &StampParser) -> Option<i64> {
    let mut pos = if at_start { 0 } else { memchr::memchr(b'\n', buf)? + 1 };
    let mut latest: Option<i64> = None;
    while pos < buf.len() {
        let end = memchr::memchr(b'\n', &buf[pos..]).map(|i| pos + i).unwrap_or(buf.len());
        if let Some(ms) = parser.parse(&buf[pos..end]) {
            latest = Some(latest.map_or(ms, |l| l.max(ms)));
        }
        pos = end + 1;
    }
    latest
}

/// Stamp of the last stamped complete line in `buf`. When `at_start` is
/// false the first (partial) line is skipped.
pub fn last_stamp(buf: &[u8], at_start: bool, parser: &StampParser) -> Option<i64> {
    let lo = if at_start { 0 } else { memchr::memchr(b'\n', buf).map(|i| i + 1)? };
    let mut end = buf.len();
    if end > lo && buf[end - 1] == b'\n' {
        end -= 1;
    }
    loop {
        if end < lo {
            return None;
        }
        let start = memchr::memrchr(b'\n', &buf[lo..end]).map(|i| lo + i + 1).unwrap_or(lo);
        if let Some(ms) = parser.parse(&buf[start..end]) {
            return Some(ms);
        }
        if start <= lo {
            return None;
        }
        end = start - 1;
    }
}
