//! Mining files: a file is cut into chunks at fixed offsets, mined on N
//! threads, and the chunk tables are folded in chunk order. Each chunk is
//! read in blocks of [`BLOCK`] bytes, each mined while it is still in the
//! CPU's cache (a whole chunk read at once is out of cache by the time its
//! lines are looked at).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::{Config, MessageFormat, Miner};

/// Bytes read at a time within a chunk.
const BLOCK: usize = 256 << 10;

/// Bytes per chunk of a file: fixed, so chunk boundaries (and with them any
/// compaction) do not depend on the number of workers.
pub const CHUNK: u64 = 8 << 20;

/// Mines a whole file with `workers` threads (chunks of [`CHUNK`] bytes,
/// each line in the chunk where it starts, tables folded in chunk order).
pub fn mine_file(path: &Path, source: u32, format: MessageFormat, config: Config, workers: usize) -> io::Result<Miner> {
    let file = File::open(path)?;
    let size = file.metadata()?.len();
    mine_range(&file, source, 0..size, format, config, Split { workers, chunk: CHUNK })
}

/// How [`mine_range`] divides its work: `workers` threads take chunks of
/// `chunk` bytes.
#[derive(Clone, Copy, Debug)]
pub struct Split {
    /// Threads (at least one, at most one per chunk).
    pub workers: usize,
    /// Bytes per chunk.
    pub chunk: u64,
}

/// Mines the lines that start in `range` of `file` (a line that starts
/// before its end is read to its end). `range.start` must be a line start.
pub fn mine_range(
    file: &File,
    source: u32,
    range: std::ops::Range<u64>,
    format: MessageFormat,
    config: Config,
    split: Split,
) -> io::Result<Miner> {
    let std::ops::Range { start, end } = range;
    let Split { workers, chunk } = split;
    let chunks = (end.saturating_sub(start)).div_ceil(chunk.max(1)) as usize;
    let next = AtomicUsize::new(0);
    // Finished chunk tables wait here until every earlier one is folded.
    struct Fold {
        done: std::collections::BTreeMap<usize, Miner>,
        next: usize,
        acc: Miner,
        err: Option<io::Error>,
    }
    let fold = Mutex::new(Fold { done: Default::default(), next: 0, acc: Miner::new(config), err: None });
    std::thread::scope(|s| {
        for _ in 0..workers.clamp(1, chunks.max(1)) {
            s.spawn(|| {
                let mut buf = ChunkBuf::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= chunks {
                        break;
                    }
                    let lo = start + i as u64 * chunk;
                    let hi = (lo + chunk).min(end);
                    let mut m = Miner::new(config);
                    let lines = Lines { file, lo, hi, origin: start, block: BLOCK.min(chunk as usize).max(256) };
                    if let Err(e) = lines.mine(&mut buf, |bytes, at| m.add_chunk(bytes, source, at, format, None)) {
                        fold.lock().unwrap_or_else(|p| p.into_inner()).err.get_or_insert(e);
                    }
                    let mut f = fold.lock().unwrap_or_else(|p| p.into_inner());
                    f.done.insert(i, m);
                    loop {
                        let n = f.next;
                        let Some(m) = f.done.remove(&n) else { break };
                        f.acc.merge(m);
                        f.next += 1;
                    }
                }
            });
        }
    });
    let f = fold.into_inner().unwrap_or_else(|p| p.into_inner());
    match f.err {
        Some(e) => Err(e),
        None => Ok(f.acc),
    }
}

/// A read buffer that keeps its bytes between chunks: it is zeroed only when
/// it grows, not before every read.
#[derive(Default)]
struct ChunkBuf {
    data: Vec<u8>,
    len: usize,
}

impl ChunkBuf {
    fn bytes(&self) -> &[u8] {
        &self.data[..self.len]
    }

    /// Appends up to `len` bytes read at `at` (fewer at the end of the file).
    fn read_at(&mut self, file: &File, at: u64, len: usize) -> io::Result<()> {
        if self.data.len() < self.len + len {
            self.data.resize(self.len + len, 0);
        }
        let mut got = 0;
        while got < len {
            let n = file.read_at(&mut self.data[self.len + got..self.len + len], at + got as u64)?;
            if n == 0 {
                break;
            }
            got += n;
        }
        self.len += got;
        Ok(())
    }
}

/// The lines that start in `[lo, hi)` of a file whose lines start at
/// `origin` (`lo == origin` is a line start; past `origin`, a line starts at
/// `lo` only when the byte before it is a newline).
struct Lines<'a> {
    file: &'a File,
    lo: u64,
    hi: u64,
    origin: u64,
    block: usize,
}

impl Lines<'_> {
    /// Reads them `block` bytes at a time, giving `each` every run of whole
    /// lines with the file offset it starts at. A line that starts before
    /// `hi` is read to its end.
    fn mine(&self, buf: &mut ChunkBuf, mut each: impl FnMut(&[u8], u64)) -> io::Result<()> {
        let Lines { file, lo, hi, origin, block } = *self;
        // `buf` holds the file's bytes from offset `pos`.
        let mut pos = if lo > origin { lo - 1 } else { lo };
        let mut next = pos;
        let mut before_first = lo > origin;
        buf.len = 0;
        loop {
            let had = buf.len;
            buf.read_at(file, next, block)?;
            next += (buf.len - had) as u64;
            let eof = buf.len - had < block;
            let data = buf.bytes();
            let mut start = 0;
            if before_first {
                // The first line starts after the first newline.
                match memchr::memchr(b'\n', data) {
                    Some(nl) if pos + nl as u64 + 1 >= hi => return Ok(()),
                    Some(nl) => {
                        start = nl + 1;
                        before_first = false;
                    }
                    None if eof => return Ok(()),
                    None => {
                        (pos, buf.len) = (next, 0);
                        continue;
                    }
                }
            }
            // Whole lines: up to the last newline.
            let mut end = memchr::memrchr(b'\n', &data[start..]).map_or(start, |i| start + i + 1);
            let done = pos + end as u64 >= hi;
            if done {
                // Only up to the end of the line holding byte hi - 1.
                let cut = (hi - pos) as usize - 1;
                end = cut + memchr::memchr(b'\n', &data[cut..end]).expect("a newline at or after hi - 1") + 1;
            }
            if end > start {
                each(&data[start..end], pos + start as u64);
            }
            if done {
                return Ok(());
            }
            if eof {
                // A last line without a newline.
                if end < data.len() {
                    each(&data[end..], pos + end as u64);
                }
                return Ok(());
            }
            // Carry the unfinished line to the front.
            buf.data.copy_within(end..buf.len, 0);
            buf.len -= end;
            pos += end as u64;
        }
    }
}
