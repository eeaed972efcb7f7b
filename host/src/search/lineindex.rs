//! Line-number checkpoints, so a search that starts in the middle of a file
//! (time-window binary search, or a byte segment) reports the same 1-based
//! line numbers as a scan from the start, without counting the whole prefix
//! every time.
//!
//! A checkpoint `k` records how many `\n` bytes lie in `[0, k * STEP)`.
//! Checkpoints are recorded as a side effect of scanning (every scan counts
//! lines anyway) and of counting a prefix. They are keyed by (dev, ino) and
//! validated by a fingerprint of the file's first bytes, so an appended file
//! keeps its checkpoints and a truncated/replaced one loses them.
//!
//! The index lives in process memory and, when a directory is given, is
//! persisted per file (`<dir>/<dev>-<ino>.idx`, written atomically), so a new
//! session (a new process) finds the checkpoints an earlier one recorded.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use super::files::read_full_at;

/// Distance between checkpoints.
pub const STEP: u64 = 4 * 1024 * 1024;
/// Bytes of the file head covered by the fingerprint.
const FP_BYTES: usize = 4096;
const MAGIC: &[u8; 8] = b"LGAIIDX1";

#[derive(Clone, Debug, Default)]
struct Entry {
    fingerprint: u64,
    fp_len: u32,
    /// `lines[k]` = newlines in `[0, (k + 1) * STEP)`.
    lines: Vec<u64>,
}

/// Counts newlines over a stream of bytes at absolute offsets and records
/// checkpoints as it crosses multiples of [`STEP`].
#[derive(Clone, Debug)]
pub struct LineCounter {
    pub abs: u64,
    pub lines: u64,
    pub checkpoints: Vec<(u64, u64)>,
    record: bool,
}

impl LineCounter {
    pub fn new(abs: u64, lines: u64, record: bool) -> Self {
        LineCounter { abs, lines, checkpoints: Vec::new(), record }
    }

    /// Count `bytes`, which start at `self.abs`.
    #[inline]
    pub fn advance(&mut self, bytes: &[u8]) {
        if !self.record {
            self.lines += count_newlines(bytes);
            self.abs += bytes.len() as u64;
            return;
        }
        let mut off = 0usize;
        while off < bytes.len() {
            let next = (self.abs / STEP + 1) * STEP;
            let take = ((next - self.abs) as usize).min(bytes.len() - off);
            self.lines += count_newlines(&bytes[off..off + take]);
            self.abs += take as u64;
            off += take;
            if self.abs == next {
                self.checkpoints.push((next, self.lines));
            }
        }
    }
}

#[inline]
pub fn count_newlines(bytes: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', bytes).count() as u64
}

/// Process-wide checkpoint store.
pub struct LineIndex {
    map: Mutex<HashMap<(u64, u64), Entry>>,
    dir: Option<PathBuf>,
}

/// FNV-1a of `bytes` (file fingerprints here, tail digests in `tail`).
pub(crate) fn fingerprint(bytes: &[u8]) -> u64 {
    // FNV-1a: stable across processes and versions.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl LineIndex {
    /// `dir`: where checkpoints persist between processes (created 0700), or none.
    pub fn new(dir: Option<PathBuf>) -> LineIndex {
        let dir = dir.and_then(|d| {
            use std::os::unix::fs::{DirBuilderExt, MetadataExt};
            let _ = std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&d);
            // Only trust a directory we own.
            match std::fs::metadata(&d) {
                Ok(m) if m.is_dir() && m.uid() == unsafe { libc::getuid() } => Some(d),
                _ => None,
            }
        });
        LineIndex { map: Mutex::new(HashMap::new()), dir }
    }

    fn file_fp(file: &mut File, size: u64) -> Option<(u64, u32)> {
        let n = (size as usize).min(FP_BYTES);
        let mut buf = vec![0u8; n];
        let got = read_full_at(file, 0, &mut buf).ok()?;
        Some((fingerprint(&buf[..got]), got as u32))
    }

    fn load(&self, dev: u64, ino: u64) -> Option<Entry> {
        let dir = self.dir.as_ref()?;
        let mut f = File::open(dir.join(format!("{dev}-{ino}.idx"))).ok()?;
        let mut data = Vec::new();
        f.read_to_end(&mut data).ok()?;
        if data.len() < 20 || &data[..8] != MAGIC {
            return None;
        }
        let fingerprint = u64::from_le_bytes(data[8..16].try_into().ok()?);
        let fp_len = u32::from_le_bytes(data[16..20].try_into().ok()?);
        let lines = data[20..].chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())).collect();
        Some(Entry { fingerprint, fp_len, lines })
    }

    fn store(dir: &Path, dev: u64, ino: u64, e: &Entry) {
        let mut data = Vec::with_capacity(20 + e.lines.len() * 8);
        data.extend_from_slice(MAGIC);
        data.extend_from_slice(&e.fingerprint.to_le_bytes());
        data.extend_from_slice(&e.fp_len.to_le_bytes());
        for l in &e.lines {
            data.extend_from_slice(&l.to_le_bytes());
        }
        let tmp = dir.join(format!(".{dev}-{ino}.{}.tmp", std::process::id()));
        let ok = File::create(&tmp).and_then(|mut f| f.write_all(&data)).is_ok();
        if ok {
            let _ = std::fs::rename(&tmp, dir.join(format!("{dev}-{ino}.idx")));
        } else {
            let _ = std::fs::remove_file(&tmp);
        }
    }

    /// The best checkpoint at or before `offset`: `(checkpoint_offset, newlines_before_it)`.
    pub fn lookup(&self, file: &mut File, dev: u64, ino: u64, size: u64, offset: u64) -> (u64, u64) {
        let Some((fp, fp_len)) = Self::file_fp(file, size) else { return (0, 0) };
        let mut map = self.map.lock();
        let valid = |e: &Entry| e.fingerprint == fp && e.fp_len == fp_len;
        if !map.get(&(dev, ino)).is_some_and(valid) {
            match self.load(dev, ino) {
                Some(e) if valid(&e) => {
                    map.insert((dev, ino), e);
                }
                _ => {
                    map.remove(&(dev, ino));
                    return (0, 0);
                }
            }
        }
        let e = &map[&(dev, ino)];
        let k = ((offset / STEP) as usize).min(e.lines.len());
        // Checkpoints beyond the current size are stale (file shrank).
        let mut k = k;
        while k > 0 && k as u64 * STEP > size {
            k -= 1;
        }
        if k == 0 {
            (0, 0)
        } else {
            (k as u64 * STEP, e.lines[k - 1])
        }
    }

    /// Record checkpoints `(offset, newlines_before)` (offsets multiples of STEP).
    pub fn record(&self, file: &mut File, dev: u64, ino: u64, size: u64, checkpoints: &[(u64, u64)]) {
        if checkpoints.is_empty() {
            return;
        }
        let Some((fp, fp_len)) = Self::file_fp(file, size) else { return };
        let mut map = self.map.lock();
        let e = map.entry((dev, ino)).or_default();
        if e.fingerprint != fp || e.fp_len != fp_len {
            *e = Entry { fingerprint: fp, fp_len, lines: Vec::new() };
        }
        let before = e.lines.len();
        for &(off, lines) in checkpoints {
            let k = (off / STEP) as usize;
            if k == 0 || off % STEP != 0 {
                continue;
            }
            if k - 1 == e.lines.len() {
                e.lines.push(lines);
            }
        }
        if e.lines.len() > before {
            if let Some(dir) = &self.dir {
                Self::store(dir, dev, ino, e);
            }
        }
    }

    /// Newlines in `[0, offset)`, from the best checkpoint plus a count of the
    /// rest (in parallel over `threads`, recording the checkpoints crossed).
    pub fn lines_before(&self, file: &mut File, dev: u64, ino: u64, size: u64, offset: u64) -> std::io::Result<u64> {
        if offset == 0 {
            return Ok(0);
        }
        let (ck, lines) = self.lookup(file, dev, ino, size, offset);
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).clamp(1, 8) as u64;
        // Split at STEP multiples so every part records whole checkpoints.
        let steps = (offset - ck).div_ceil(STEP).max(1);
        let per = steps.div_ceil(threads) * STEP;
        let mut bounds = Vec::new();
        let mut at = ck;
        while at < offset {
            let end = (at + per).min(offset);
            bounds.push((at, end));
            at = end;
        }
        let f: &File = file;
        let parts: Vec<std::io::Result<LineCounter>> = std::thread::scope(|s| {
            let handles: Vec<_> = bounds
                .iter()
                .map(|&(lo, hi)| {
                    s.spawn(move || -> std::io::Result<LineCounter> {
                        use std::io::{Seek, SeekFrom};
                        use std::os::unix::fs::FileExt;
                        // Each part reads in sequence through an open file of
                        // its own (the same inode, reopened through
                        // /proc/self/fd), so its position moves as the count
                        // goes: an outside look at /proc/PID/fdinfo sees this
                        // work as it sees a scan (docs/search.md, "What a
                        // search reads, and when"). Without /proc: positional reads.
                        let mut own = File::open(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(f))).ok();
                        if let Some(o) = own.as_mut() {
                            o.seek(SeekFrom::Start(lo))?;
                        }
                        let mut counter = LineCounter::new(lo, 0, true);
                        let mut buf = vec![0u8; 1 << 20];
                        while counter.abs < hi {
                            let want = ((hi - counter.abs) as usize).min(buf.len());
                            let got = match own.as_mut() {
                                Some(o) => o.read(&mut buf[..want])?,
                                None => f.read_at(&mut buf[..want], counter.abs)?,
                            };
                            if got == 0 {
                                break;
                            }
                            counter.advance(&buf[..got]);
                        }
                        Ok(counter)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(std::io::Error::other("line count panicked")))).collect()
        });
        let mut total = lines;
        let mut checkpoints = Vec::new();
        for part in parts {
            let part = part?;
            checkpoints.extend(part.checkpoints.iter().map(|&(o, l)| (o, l + total)));
            total += part.lines;
        }
        self.record(file, dev, ino, size, &checkpoints);
        Ok(total)
    }
}
