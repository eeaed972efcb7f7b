//! Following a service's logs like `tail -f`, through rotation.
//!
//! A cursor's text is `lc1.` and base64url of its deflated JSON.
//!
//! A [`Cursor`] records, per file of the service, where the last answer
//! left it: device and inode, the byte offset reached (a line start: an
//! unfinished last line is read again next time), the newlines before it
//! (so line numbers stay absolute), and a digest of the file's first bytes
//! (up to 4 KiB, at most the offset). [`SearchCore::plan_follow`] plans the
//! next call from it, file by file (oldest first):
//!
//! 1. **Same file** (same device and inode, at least as long as the offset,
//!    same first bytes; a `.gz`: same size and mtime): read from the offset.
//!    `app.log` renamed to `app.log.1` keeps its inode: late writes to it
//!    are read on from where the cursor stood.
//! 2. **A copy of a cursor file** (another inode whose first bytes, decoded
//!    for `.gz`, are the cursor file's): the rotated copy of a file the
//!    cursor was reading (`delaycompress` compressing `app.log.1` into
//!    `app.log.2.gz`, or `copytruncate` copying `app.log`). When the
//!    original is gone, the copy is read from the original's offset (a
//!    `.gz` decoded up to it); while the original is still there (the
//!    compression is under way), the copy is not read and the next cursor
//!    places it where the original got to.
//! 3. **An older file** (another inode, last modified more than 2 s before
//!    the cursor was made: mtimes are coarse): its lines were there when
//!    the cursor was made (moved in, or a copy whose first bytes changed):
//!    skipped, recorded at its end.
//! 4. **A new file** (anything else: the new `app.log` after a rotation):
//!    read from its start.
//!
//! A file shorter than its cursor offset whose content is in no copy
//! (truncated in place) is read from its start again, and the answer says
//! so (`partial_reason`: lines written between the last call and the
//! truncation are lost with it). A cursor
//! file found nowhere stays in the cursor for [`GONE_KEPT_MS`] (a rotation
//! seen half-way), then is dropped.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::files::read_full_at;
use super::lineindex::fingerprint;
use super::plan::sort_oldest_first;
use super::{PlannedFile, SearchCore, SearchError, SearchPlan, SearchRequest};

/// Cursor text: this prefix, then base64url (no padding) of its JSON, deflated.
const PREFIX: &str = "lc1.";
/// The most JSON a cursor may inflate to.
const MAX_JSON: u64 = 16 << 20;
/// Bytes at a file's start whose digest tells the file apart.
const HEAD_BYTES: u64 = 4096;
/// How long a cursor keeps a file it no longer finds.
pub const GONE_KEPT_MS: i64 = 10 * 60 * 1000;
/// File mtimes come from a coarse clock (and some file systems keep whole
/// seconds): a file is older than a cursor only by more than this.
const MTIME_SLACK_NS: i64 = 2_000_000_000;
/// `off` of a `.gz` file read to its end.
const GZ_DONE: u64 = u64::MAX;

/// Where a follow stands in each file of one service (opaque to clients).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    /// Format version (1).
    pub v: u32,
    /// The service it follows.
    pub service: String,
    /// When it was made (before the files were listed), ns since the epoch:
    /// a file it does not know that was last modified before is not new.
    pub at_ns: i64,
    /// The window end used (ms since the epoch), when the window had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_end_ms: Option<i64>,
    pub files: Vec<CursorFile>,
}

/// One file of a cursor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CursorFile {
    pub dev: u64,
    pub ino: u64,
    pub gz: bool,
    /// First byte not yet read (a line start; decoded bytes for `.gz`,
    /// [`GZ_DONE`] once read to its end).
    pub off: u64,
    /// Newlines before `off`, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines: Option<u64>,
    /// Bytes of the file's start digested in `head` (`min(off, 4096)`, 0 for `.gz`).
    pub head_len: u64,
    /// FNV-1a of those bytes.
    pub head: u64,
    /// Size and mtime when recorded (a `.gz` is the same file only unchanged).
    pub size: u64,
    pub mtime_ns: i64,
    /// Not found since then (ns since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gone_ns: Option<i64>,
}

impl Cursor {
    pub fn encode(&self) -> String {
        use std::io::Write;
        let json = serde_json::to_vec(self).expect("cursor serializes");
        let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&json).expect("deflate into memory");
        let bytes = z.finish().expect("deflate into memory");
        format!("{PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
    }

    pub fn decode(text: &str) -> Result<Cursor, SearchError> {
        let bad = |why: &str| {
            SearchError::invalid("cursor", format!("not a cursor this server gave ({why}); pass the cursor of the last answer unchanged"))
        };
        let body = text.trim().strip_prefix(PREFIX).ok_or_else(|| bad("unknown format"))?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(body).map_err(|_| bad("not base64url"))?;
        let mut json = Vec::new();
        // Bounded: a cursor is small; a bomb is refused, not inflated.
        flate2::read::DeflateDecoder::new(&bytes[..]).take(MAX_JSON).read_to_end(&mut json).map_err(|_| bad("damaged"))?;
        let c: Cursor = serde_json::from_slice(&json).map_err(|_| bad("damaged"))?;
        if c.v != 1 {
            return Err(bad(&format!("version {}", c.v)));
        }
        Ok(c)
    }
}

/// What one follow call reads, and the cursor it leaves.
#[derive(Debug)]
pub struct FollowPlan {
    /// The files to read, each over the bytes not read yet.
    pub plan: SearchPlan,
    /// No cursor was given and every file ends at a line end: `plan` is the
    /// ordinary search's plan, whose answer the cache may hold.
    pub ordinary: bool,
    /// What the answer should say besides (truncated files).
    pub notes: Vec<String>,
    made_ns: i64,
    window_end_ms: Option<i64>,
    /// Every file's entry once its planned bytes are read.
    done: Vec<Slot>,
}

/// One entry of the next cursor.
#[derive(Debug)]
struct Slot {
    /// Where the file stands once its planned bytes are read.
    next: CursorFile,
    /// Where it stood before (kept when its read did not finish).
    before: Option<CursorFile>,
    /// Index in `plan.files`, when read.
    read: Option<usize>,
    /// A copy of the slot at this index (rule 2, original still there).
    copy_of: Option<usize>,
}

impl FollowPlan {
    /// Whether anything is to be read.
    pub fn has_work(&self) -> bool {
        !self.plan.files.is_empty()
    }

    /// The cursor once this plan was searched: files whose read finished at
    /// their planned end (`lines_at_end` per plan file, when known), the
    /// others where they stood.
    pub fn cursor(&self, finished: &[bool], lines_at_end: &[Option<u64>]) -> Cursor {
        let mut out: Vec<Option<CursorFile>> = self
            .done
            .iter()
            .map(|s| match s.read {
                Some(i) if finished.get(i).copied().unwrap_or(false) => {
                    let mut next = s.next.clone();
                    next.lines = next.lines.or(lines_at_end.get(i).copied().flatten()).filter(|_| !next.gz);
                    Some(next)
                }
                Some(_) => s.before.clone().or_else(|| Some(s.next.clone())),
                None => Some(s.next.clone()),
            })
            .collect();
        for (k, s) in self.done.iter().enumerate() {
            if let (Some(o), Some(mut mine)) = (s.copy_of, out[k].clone()) {
                if let Some(orig) = &out[o] {
                    mine.off = orig.off;
                    mine.lines = orig.lines;
                    mine.head_len = orig.head_len;
                    mine.head = orig.head;
                    out[k] = Some(mine);
                }
            }
        }
        Cursor {
            v: 1,
            service: self.plan.service.clone(),
            at_ns: self.made_ns,
            window_end_ms: self.window_end_ms,
            files: out.into_iter().flatten().collect(),
        }
    }
}

/// How a file of the service is read this time.
enum Start {
    /// From this offset, with the newlines before it when known.
    From(u64, Option<u64>),
    /// Not read: recorded at its end.
    Skip,
    /// Not read: a copy of the slot of this file (its original).
    CopyOf(usize),
}

impl SearchCore {
    /// Plan a follow call of `req` at `now`, after `cursor` (none: the
    /// first call, an ordinary search of the window, leaving a cursor).
    pub fn plan_follow(&self, req: &SearchRequest, now: DateTime<Utc>, cursor: Option<&Cursor>) -> Result<FollowPlan, SearchError> {
        let made_ns = Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
        let mut plan = self.plan(req, now)?;
        match cursor {
            None => Ok(first(plan, made_ns)),
            Some(c) => {
                if c.service != plan.service {
                    return Err(SearchError::invalid(
                        "cursor",
                        format!("the cursor follows service '{}', not '{}'; start without a cursor", c.service, plan.service),
                    ));
                }
                // Appended lines are new whatever their stamp: a relative
                // window keeps its start, not its end.
                if req.minutes_back.is_some() || req.hours_back.is_some() {
                    if let Some(w) = plan.window.as_mut() {
                        w.end_ms = i64::MAX;
                    }
                }
                Ok(after(plan, c, made_ns))
            }
        }
    }
}

/// The first call: the ordinary plan, each plain file up to its last line
/// end (when one ends mid-line the plan is no longer the ordinary one).
fn first(mut plan: SearchPlan, made_ns: i64) -> FollowPlan {
    let mut ordinary = true;
    let mut done = Vec::new();
    for (i, f) in plan.files.iter_mut().enumerate() {
        f.same_file = true;
        if !f.gz {
            let end = line_end(&f.path, 0, f.end_offset);
            ordinary &= end == f.end_offset;
            f.end_offset = end;
        }
        // A first answer leaves every file at its end, finished or not
        // (following is about what comes next; a partial answer says so).
        done.push(Slot { next: entry_at_end(f), before: None, read: Some(i), copy_of: None });
    }
    for f in &plan.pruned {
        let mut f = f.clone();
        if !f.gz {
            f.end_offset = line_end(&f.path, 0, f.end_offset);
        }
        done.push(Slot { next: entry_at_end(&f), before: None, read: None, copy_of: None });
    }
    let window_end_ms = plan.window.map(|w| w.end_ms).filter(|e| *e != i64::MAX);
    FollowPlan { plan, ordinary, notes: Vec::new(), made_ns, window_end_ms, done }
}

/// A call after `c`: every file of the service (none pruned: only what was
/// appended is read, and the window applies to it line by line).
fn after(mut plan: SearchPlan, c: &Cursor, made_ns: i64) -> FollowPlan {
    let mut all: Vec<PlannedFile> = std::mem::take(&mut plan.files);
    all.append(&mut std::mem::take(&mut plan.pruned));
    plan.files_pruned = 0;
    sort_oldest_first(&mut all);
    let mut notes = Vec::new();
    let starts = assign(&all, c, &mut notes);
    let mut done: Vec<Slot> = Vec::with_capacity(all.len());
    for (f, start) in all.into_iter().zip(starts) {
        let mut f = f;
        f.same_file = true;
        let slot = match start {
            Start::From(off, lines) => {
                let before = Some(entry_at(&f, off, lines));
                if !f.gz {
                    f.end_offset = line_end(&f.path, off, f.end_offset);
                }
                let next = entry_at_end(&f);
                if f.gz || f.end_offset > off {
                    f.start_offset = off;
                    f.start_lines = lines;
                    plan.files.push(f);
                    Slot { next, before, read: Some(plan.files.len() - 1), copy_of: None }
                } else {
                    Slot { next: entry_at(&f, off, lines), before, read: None, copy_of: None }
                }
            }
            Start::Skip => {
                if !f.gz {
                    f.end_offset = line_end(&f.path, 0, f.end_offset);
                }
                Slot { next: entry_at_end(&f), before: None, read: None, copy_of: None }
            }
            Start::CopyOf(k) => Slot { next: entry_at(&f, 0, Some(0)), before: None, read: None, copy_of: Some(k) },
        };
        done.push(slot);
    }
    // Cursor files found nowhere: kept a while (a rotation seen half-way).
    for e in orphans(c, &done, made_ns) {
        done.push(Slot { next: e, before: None, read: None, copy_of: None });
    }
    let window_end_ms = plan.window.map(|w| w.end_ms).filter(|e| *e != i64::MAX);
    FollowPlan { plan, ordinary: false, notes, made_ns, window_end_ms, done }
}

/// The cursor's files no file of the service continues, not gone too long.
fn orphans(c: &Cursor, done: &[Slot], now_ns: i64) -> Vec<CursorFile> {
    let present = |e: &CursorFile| done.iter().any(|s| s.next.dev == e.dev && s.next.ino == e.ino);
    c.files
        .iter()
        .filter(|e| !present(e))
        .filter(|e| e.gone_ns.is_none_or(|g| now_ns.saturating_sub(g) < GONE_KEPT_MS * 1_000_000))
        .map(|e| CursorFile { gone_ns: Some(e.gone_ns.unwrap_or(now_ns)), ..e.clone() })
        .collect()
}

/// How each file (oldest first) is read after `c` (rules 1 to 4 of the module doc).
fn assign(files: &[PlannedFile], c: &Cursor, notes: &mut Vec<String>) -> Vec<Start> {
    // Rule 1: the cursor's entry continued by the same file.
    let mut continued: Vec<Option<usize>> = vec![None; files.len()];
    let mut shorter: Vec<(usize, usize)> = Vec::new();
    let mut used = vec![false; c.files.len()];
    for (i, f) in files.iter().enumerate() {
        let Some(k) = (0..c.files.len()).find(|&k| !used[k] && (c.files[k].dev, c.files[k].ino) == (f.id.dev, f.id.ino)) else {
            continue;
        };
        let e = &c.files[k];
        let same = if f.gz {
            e.gz && e.size == f.id.size && e.mtime_ns == f.id.mtime_ns
        } else if f.id.size < e.off {
            shorter.push((i, k));
            false
        } else {
            !e.gz && head_of(&f.path, false, e.head_len).is_some_and(|h| fingerprint(&h) == e.head)
        };
        if same {
            continued[i] = Some(k);
            used[k] = true;
        }
    }
    let mut starts = Vec::with_capacity(files.len());
    let mut copied = vec![false; c.files.len()];
    for (i, f) in files.iter().enumerate() {
        if let Some(k) = continued[i] {
            let e = &c.files[k];
            starts.push(if e.gz && e.off == GZ_DONE { Start::Skip } else { Start::From(e.off, e.lines) });
            continue;
        }
        // Rule 2: a copy of a cursor file (by its first bytes).
        if let Some(k) = copy_source(f, c, &copied) {
            copied[k] = true;
            let e = &c.files[k];
            match continued.iter().position(|x| *x == Some(k)) {
                Some(orig) => starts.push(Start::CopyOf(orig)),
                None => starts.push(Start::From(e.off, e.lines)),
            }
            continue;
        }
        // Rule 3: an older file; rule 4: a new one.
        let older = f.id.mtime_ns < c.at_ns.saturating_sub(MTIME_SLACK_NS);
        starts.push(if older { Start::Skip } else { Start::From(0, Some(0)) });
    }
    // Shorter than the cursor's offset, its content found in no copy (that
    // is a rotation, or a new file under a reused inode): truncated in place.
    for (i, k) in shorter {
        if !copied[k] {
            notes.push(format!(
                "{}: shorter than where the cursor stood (truncated in place); read from its start",
                files[i].path.display()
            ));
        }
    }
    starts
}

/// The cursor file `f` is a copy of: same first bytes (decoded for `.gz`),
/// at least as long as its offset (plain copies), not matched before.
fn copy_source(f: &PlannedFile, c: &Cursor, copied: &[bool]) -> Option<usize> {
    let longest = c.files.iter().filter(|e| !e.gz && e.head_len > 0).map(|e| e.head_len).max()?;
    let head = head_of(&f.path, f.gz, longest)?;
    c.files.iter().enumerate().position(|(k, e)| {
        !copied[k]
            && !e.gz
            && e.head_len > 0
            && (e.dev, e.ino) != (f.id.dev, f.id.ino)
            && head.len() as u64 >= e.head_len
            && fingerprint(&head[..e.head_len as usize]) == e.head
            && (f.gz || f.id.size >= e.off)
    })
}

/// The first `n` bytes of a file (decoded for `.gz`); fewer when it is shorter.
fn head_of(path: &Path, gz: bool, n: u64) -> Option<Vec<u8>> {
    let mut buf = Vec::with_capacity(n as usize);
    let file = File::open(path).ok()?;
    if gz {
        // A `.gz` still being written may not decode yet: no head.
        flate2::read::MultiGzDecoder::new(file).take(n).read_to_end(&mut buf).ok()?;
    } else {
        file.take(n).read_to_end(&mut buf).ok()?;
    }
    Some(buf)
}

/// The entry of `f` at `off` (a line start) with `lines` before it.
fn entry_at(f: &PlannedFile, off: u64, lines: Option<u64>) -> CursorFile {
    let head_len = if f.gz { 0 } else { off.min(HEAD_BYTES) };
    let head = match head_len {
        0 => fingerprint(&[]),
        n => head_of(&f.path, false, n).filter(|h| h.len() as u64 == n).map(|h| fingerprint(&h)).unwrap_or(0),
    };
    CursorFile {
        dev: f.id.dev,
        ino: f.id.ino,
        gz: f.gz,
        off,
        lines,
        head_len,
        head,
        size: f.id.size,
        mtime_ns: f.id.mtime_ns,
        gone_ns: None,
    }
}

/// The entry of `f` once read to its planned end (a `.gz`: to its end).
fn entry_at_end(f: &PlannedFile) -> CursorFile {
    if f.gz {
        return CursorFile { off: GZ_DONE, ..entry_at(f, 0, None) };
    }
    entry_at(f, f.end_offset, None)
}

/// The end of the last complete line in `[from, size)` of a plain file
/// (`from` when there is none): an unfinished last line waits.
fn line_end(path: &Path, from: u64, size: u64) -> u64 {
    let Ok(mut file) = File::open(path) else { return from };
    // Most files end with a newline: one byte tells.
    let mut last = [0u8; 1];
    if size > from && read_full_at(&mut file, size - 1, &mut last).ok() == Some(1) && last[0] == b'\n' {
        return size;
    }
    let mut hi = size;
    let mut buf = vec![0u8; 64 * 1024];
    while hi > from {
        let lo = hi.saturating_sub(buf.len() as u64).max(from);
        let part = &mut buf[..(hi - lo) as usize];
        match read_full_at(&mut file, lo, part) {
            Ok(n) if n == part.len() => {}
            _ => return from,
        }
        if let Some(i) = memchr::memrchr(b'\n', part) {
            return lo + i as u64 + 1;
        }
        hi = lo;
    }
    from
}

#[cfg(test)]
#[path = "follow_tests.rs"]
mod tests;
