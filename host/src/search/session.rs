//! The session directory and the overflow files in it.
//!
//! `SessionDir` is `$LOGAI_SESSION_DIR`, or `<server.session_root>/<session id>/`,
//! created 0700 and removed when the session ends (`close()` or drop). At
//! start, sibling directories left by sessions that were killed (older than
//! `server.session_sweep_age_minutes`, whose pid is no longer alive) are
//! swept.
//!
//! Overflows: when a search has more matches than `max_results`, every match
//! is written, in order, as one JSON object per line to `ovf-<random>.jsonl`
//! in the session directory. The client only ever sees the reference
//! (`ovf-<random>`); `read_overflow` resolves it through an in-memory table
//! of this session's overflows, so no client text reaches the filesystem.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use rand::Rng;

use super::api::{OverflowPage, SearchError, SearchErrorKind, SearchMatch};

/// Matches between two recorded byte offsets of an overflow file.
pub const OVERFLOW_STRIDE: u64 = 1024;

/// This session's private directory.
#[derive(Debug)]
pub struct SessionDir {
    path: PathBuf,
    /// Remove the directory itself on close (false when it was handed in by
    /// `$LOGAI_SESSION_DIR` and existed before; then only our files go).
    remove_dir: bool,
    closed: AtomicBool,
}

impl SessionDir {
    /// `$LOGAI_SESSION_DIR`, or `<session_root>/<session_id>`; sweeps stale siblings.
    pub fn for_session(session_root: &Path, session_id: &str, sweep_age: Duration) -> io::Result<SessionDir> {
        if let Some(p) = std::env::var_os("LOGAI_SESSION_DIR").filter(|v| !v.is_empty()) {
            let path = PathBuf::from(p);
            let existed = path.exists();
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&path)?;
            return Ok(SessionDir { path, remove_dir: !existed, closed: AtomicBool::new(false) });
        }
        if !session_root.exists() {
            // Shared by every user's sessions, like /tmp.
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(session_root)?;
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(session_root, std::fs::Permissions::from_mode(0o1777));
        }
        sweep(session_root, sweep_age);
        Self::create(session_root.join(session_id))
    }

    /// From the manifest: `server.session_root`, `server.session_sweep_age_minutes`
    /// and `identity::session_id()`.
    pub fn from_config(config: &crate::config::Config) -> io::Result<SessionDir> {
        let root = config.resolve(&config.server.session_root);
        Self::for_session(
            &root,
            &crate::identity::session_id(),
            Duration::from_secs(config.server.session_sweep_age_minutes.saturating_mul(60)),
        )
    }

    /// Create (0700) and own `path`; it is removed on close.
    pub fn create(path: PathBuf) -> io::Result<SessionDir> {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&path)?;
        let meta = std::fs::metadata(&path)?;
        if meta.uid() != unsafe { libc::getuid() } {
            return Err(io::Error::new(io::ErrorKind::PermissionDenied, format!("{} belongs to another user", path.display())));
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))?;
        Ok(SessionDir { path, remove_dir: true, closed: AtomicBool::new(false) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Remove the directory (or, for a handed-in one, our files). Idempotent.
    pub fn close(&self) {
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        if self.remove_dir {
            let _ = std::fs::remove_dir_all(&self.path);
        } else if let Ok(entries) = std::fs::read_dir(&self.path) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if name.starts_with("ovf-") || name.starts_with("spill-") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }
}

impl Drop for SessionDir {
    fn drop(&mut self) {
        self.close();
    }
}

/// The pid at the end of a session directory name (`local-123`, `ssh-...-123`).
fn pid_of(name: &str) -> Option<i32> {
    name.rsplit('-').next()?.parse().ok()
}

fn pid_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Remove sibling session dirs older than `age` whose pid is gone (ours only).
pub fn sweep(root: &Path, age: Duration) {
    let Ok(entries) = std::fs::read_dir(root) else { return };
    let uid = unsafe { libc::getuid() };
    let now = SystemTime::now();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with('.') {
            continue; // .lineindex-<uid> and other shared state
        }
        let Some(pid) = pid_of(&name) else { continue };
        let Ok(meta) = std::fs::symlink_metadata(e.path()) else { continue };
        if !meta.is_dir() || meta.uid() != uid {
            continue;
        }
        let old = meta.modified().ok().and_then(|m| now.duration_since(m).ok()).is_some_and(|d| d >= age);
        if old && !pid_alive(pid) {
            tracing::info!(dir = %e.path().display(), "removing a stale session directory");
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// A random reference, `ovf-<16 hex>`.
pub fn new_reference() -> String {
    let n: u64 = rand::rng().random();
    format!("ovf-{n:016x}")
}

/// Writes matches as JSON lines, recording the byte offset of every
/// [`OVERFLOW_STRIDE`]-th match.
pub struct JsonlWriter {
    out: BufWriter<File>,
    pub path: PathBuf,
    pub count: u64,
    pub bytes: u64,
    pub offsets: Vec<u64>,
    /// `(first match index, line base)`: stored line numbers are relative
    /// to the base of their segment (chunks of one file are searched in
    /// parallel before their bases are known); readers add it.
    pub segments: Vec<(u64, u64)>,
    scratch: Vec<u8>,
    /// `{"file":<escaped file>,"line_number":` for `file_prefix_for`.
    file_prefix: Vec<u8>,
    file_prefix_for: Option<String>,
    /// The last stamp formatted by `write_line` (its date part is reused
    /// for stamps of the same UTC day) and its day, or `i64::MIN`.
    stamp_buf: [u8; 24],
    stamp_day: i64,
}

/// Whether `t` is printable ASCII without `"` or `\\`: serde_json writes
/// such a string as is. No early exit, so it vectorizes.
#[inline]
fn json_plain(t: &[u8]) -> bool {
    let mut bad = false;
    for &c in t {
        bad |= !(0x20..0x80).contains(&c) | (c == b'"') | (c == b'\\');
    }
    !bad
}

/// `v` as `width` decimal digits at `b[at..]`.
#[inline]
fn put_digits(b: &mut [u8; 24], at: usize, mut v: i64, width: usize) {
    for i in (0..width).rev() {
        b[at + i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// Decimal digits of `v`, as serde_json (itoa) writes them.
#[inline]
fn push_u64(b: &mut Vec<u8>, mut v: u64) {
    let mut d = [0u8; 20];
    let mut i = d.len();
    loop {
        i -= 1;
        d[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    b.extend_from_slice(&d[i..]);
}

impl JsonlWriter {
    pub fn create(path: PathBuf) -> io::Result<JsonlWriter> {
        let f = std::fs::OpenOptions::new().write(true).create_new(true).open(&path)?;
        Ok(JsonlWriter {
            out: BufWriter::with_capacity(256 * 1024, f),
            path,
            count: 0,
            bytes: 0,
            offsets: Vec::new(),
            segments: Vec::new(),
            scratch: Vec::with_capacity(1024),
            file_prefix: Vec::new(),
            file_prefix_for: None,
            stamp_buf: [0; 24],
            stamp_day: i64::MIN,
        })
    }

    /// Continue writing at the end of a finished file (renamed to `path`).
    pub fn continue_from(path: PathBuf, f: FinishedJsonl) -> io::Result<JsonlWriter> {
        let file = std::fs::OpenOptions::new().append(true).open(&path)?;
        let bytes = file.metadata()?.len();
        Ok(JsonlWriter {
            out: BufWriter::with_capacity(256 * 1024, file),
            path,
            count: f.count,
            bytes,
            offsets: f.offsets,
            segments: f.segments,
            scratch: Vec::with_capacity(1024),
            file_prefix: Vec::new(),
            file_prefix_for: None,
            stamp_buf: [0; 24],
            stamp_day: i64::MIN,
        })
    }

    pub fn write(&mut self, m: &SearchMatch) -> io::Result<()> {
        if self.count.is_multiple_of(OVERFLOW_STRIDE) {
            self.offsets.push(self.bytes);
        }
        self.scratch.clear();
        serde_json::to_writer(&mut self.scratch, m).map_err(io::Error::other)?;
        self.scratch.push(b'\n');
        self.out.write_all(&self.scratch)?;
        self.bytes += self.scratch.len() as u64;
        self.count += 1;
        Ok(())
    }

    /// Write a match without context lines from borrowed parts, byte for
    /// byte what [`JsonlWriter::write`] writes for the equivalent
    /// [`SearchMatch`] (`file`, `line_number`, `timestamp` = the RFC 3339 of
    /// `stamp`, `text` = [`super::scan::line_text`] of `line`, empty
    /// `before`/`after`), without building it: the file name is escaped once
    /// per file, the stamp formatted on the stack, and a line that needs no
    /// JSON escaping is copied as is.
    pub fn write_line(&mut self, file: &str, line_number: u64, stamp: Option<i64>, line: &[u8]) -> io::Result<()> {
        if self.count.is_multiple_of(OVERFLOW_STRIDE) {
            self.offsets.push(self.bytes);
        }
        if self.file_prefix_for.as_deref() != Some(file) {
            self.file_prefix.clear();
            self.file_prefix.extend_from_slice(b"{\"file\":");
            serde_json::to_writer(&mut self.file_prefix, file).map_err(io::Error::other)?;
            self.file_prefix.extend_from_slice(b",\"line_number\":");
            self.file_prefix_for = Some(file.to_string());
        }
        let b = &mut self.scratch;
        b.clear();
        b.extend_from_slice(&self.file_prefix);
        push_u64(b, line_number);
        b.extend_from_slice(b",\"timestamp\":");
        match stamp {
            None => b.extend_from_slice(b"null"),
            Some(ms) => {
                const DAY_MS: i64 = 86_400_000;
                let day = ms.div_euclid(DAY_MS);
                let t = &mut self.stamp_buf;
                b.push(b'"');
                if day == self.stamp_day {
                    // Same day as the last stamp: only the time of day changes.
                    let rem = ms.rem_euclid(DAY_MS);
                    let secs = rem / 1000;
                    put_digits(t, 11, secs / 3600, 2);
                    put_digits(t, 14, (secs / 60) % 60, 2);
                    put_digits(t, 17, secs % 60, 2);
                    put_digits(t, 20, rem % 1000, 3);
                    b.extend_from_slice(t);
                } else if super::timestamp::format_ms_into(ms, t) {
                    self.stamp_day = day;
                    b.extend_from_slice(t);
                } else {
                    self.stamp_day = i64::MIN;
                    b.extend_from_slice(super::timestamp::format_ms(ms).as_bytes());
                }
                b.push(b'"');
            }
        }
        b.extend_from_slice(b",\"text\":");
        let mut t = line;
        if t.last() == Some(&b'\n') {
            t = &t[..t.len() - 1];
        }
        if t.last() == Some(&b'\r') {
            t = &t[..t.len() - 1];
        }
        if t.len() <= super::scan::MAX_LINE_BYTES && json_plain(t) {
            b.push(b'"');
            b.extend_from_slice(t);
            b.push(b'"');
        } else if let (true, Ok(s)) = (t.len() <= super::scan::MAX_LINE_BYTES, std::str::from_utf8(t)) {
            serde_json::to_writer(&mut *b, s).map_err(io::Error::other)?;
        } else {
            serde_json::to_writer(&mut *b, &super::scan::line_text(line)).map_err(io::Error::other)?;
        }
        b.extend_from_slice(b",\"before\":[],\"after\":[]}\n");
        self.out.write_all(b)?;
        self.bytes += b.len() as u64;
        self.count += 1;
        Ok(())
    }

    /// Append another writer's finished file.
    pub fn append_file(&mut self, other: &Path, count: u64, offsets: &[u64]) -> io::Result<()> {
        // Offsets of the other file land at multiples of the stride only
        // when our count is a multiple; rebuild lazily by scanning otherwise.
        let aligned = self.count.is_multiple_of(OVERFLOW_STRIDE);
        self.out.flush()?;
        let mut src = File::open(other)?;
        let copied = io::copy(&mut src, self.out.get_mut())?;
        if aligned {
            self.offsets.extend(offsets.iter().map(|o| o + self.bytes));
            self.bytes += copied;
            self.count += count;
        } else {
            // Re-derive offsets for the appended part.
            let base = self.bytes;
            let mut r = BufReader::new(File::open(other)?);
            let mut pos = 0u64;
            let mut line = Vec::new();
            loop {
                line.clear();
                let n = r.read_until(b'\n', &mut line)?;
                if n == 0 {
                    break;
                }
                if self.count.is_multiple_of(OVERFLOW_STRIDE) {
                    self.offsets.push(base + pos);
                }
                self.count += 1;
                pos += n as u64;
            }
            self.bytes += copied;
        }
        Ok(())
    }

    pub fn finish(mut self) -> io::Result<FinishedJsonl> {
        self.out.flush()?;
        Ok(FinishedJsonl { path: self.path, count: self.count, offsets: self.offsets, segments: self.segments })
    }
}

#[derive(Debug)]
pub struct FinishedJsonl {
    pub path: PathBuf,
    pub count: u64,
    pub offsets: Vec<u64>,
    pub segments: Vec<(u64, u64)>,
}

/// One part of an overflow: a file of matches whose stored line numbers
/// are relative to `base` (chunks of a file are searched in parallel before
/// their bases are known; readers add it).
#[derive(Debug)]
pub struct OverflowPart {
    /// Index of the part's first match in the whole overflow.
    pub first: u64,
    pub base: u64,
    pub file: FinishedJsonl,
}

/// An overflow: its parts, in order.
#[derive(Debug, Default)]
pub struct Overflow {
    pub parts: Vec<OverflowPart>,
    pub total: u64,
}

/// This session's overflows, by reference.
#[derive(Default)]
pub struct OverflowStore {
    map: Mutex<HashMap<String, std::sync::Arc<Overflow>>>,
}

impl OverflowStore {
    pub fn insert(&self, reference: String, o: Overflow) {
        self.map.lock().insert(reference, std::sync::Arc::new(o));
    }

    pub fn read(&self, reference: &str, offset: u64, limit: u32) -> Result<OverflowPage, SearchError> {
        let not_found = || SearchError {
            kind: SearchErrorKind::NotFound,
            message: format!("no overflow {reference:?} in this session (references are valid only in the session that produced them)"),
            field: Some("reference".into()),
        };
        let o = self.map.lock().get(reference).cloned().ok_or_else(not_found)?;
        let total = o.total;
        if offset >= total || limit == 0 {
            return Ok(OverflowPage { matches: Vec::new(), offset, total, eof: offset >= total });
        }
        let io = |e: io::Error| SearchError::internal(format!("overflow {reference}: {e}"));
        let mut matches = Vec::new();
        let mut index = offset;
        let mut p = o.parts.partition_point(|part| part.first <= offset).saturating_sub(1);
        while matches.len() < limit as usize && p < o.parts.len() {
            let part = &o.parts[p];
            let local = index - part.first;
            if local >= part.file.count {
                p += 1;
                continue;
            }
            let stride_idx = (local / OVERFLOW_STRIDE) as usize;
            let byte = part.file.offsets.get(stride_idx).copied().unwrap_or(0);
            let mut skip = local - stride_idx as u64 * OVERFLOW_STRIDE;
            let mut r = BufReader::new(File::open(&part.file.path).map_err(io)?);
            r.seek(SeekFrom::Start(byte)).map_err(io)?;
            let mut line = Vec::new();
            while matches.len() < limit as usize {
                line.clear();
                let n = r.read_until(b'\n', &mut line).map_err(io)?;
                if n == 0 {
                    break;
                }
                if skip > 0 {
                    skip -= 1;
                    continue;
                }
                let mut m: SearchMatch =
                    serde_json::from_slice(&line).map_err(|e| SearchError::internal(format!("overflow {reference} is damaged: {e}")))?;
                shift_lines(&mut m, part.base);
                matches.push(m);
                index += 1;
            }
            p += 1;
        }
        let eof = offset + matches.len() as u64 >= total;
        Ok(OverflowPage { matches, offset, total, eof })
    }
}

/// Add `base` to a match's line numbers (its context's too).
pub(super) fn shift_lines(m: &mut SearchMatch, base: u64) {
    if base == 0 {
        return;
    }
    m.line_number = m.line_number.wrapping_add(base);
    for c in m.before.iter_mut().chain(m.after.iter_mut()) {
        c.line_number = c.line_number.wrapping_add(base);
    }
}
