//! Metric batches Redis would not take before their session ended, kept on
//! disk until another session of the host hands them over.
//!
//! A session's counts live in its memory until Redis takes them. When Redis
//! refuses them for longer than the session lives (out of memory with
//! `noeviction`, paused, gone), the session writes what is left here at
//! exit; any later flush that reaches Redis delivers the files. Delivery
//! keeps the original process id and batch numbers, so Redis's exactly-once
//! check (`metrics_flush.lua`) also holds for spooled batches: a batch whose
//! reply was lost and that was spooled anyway is not counted twice.
//!
//! The directory sits beside the slot files of the same coordination domain
//! (`<slot_dir>/<domain>/spool`), so only sessions sharing one Redis target
//! and key prefix deliver each other's counts. A deliverer holds an
//! exclusive `flock` on the file while it delivers and removes it before
//! letting go; the kernel drops the lock of a deliverer that dies, so the
//! file is simply delivered again by someone else (counted once: the batch
//! numbers). Like the slots, the lock needs no write access to the file.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

const SUFFIX: &str = ".json";

/// What one ended session had not delivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Spooled {
    /// The process id the batches were numbered under.
    pub process: String,
    /// The Redis data epoch it last flushed into ("" = never).
    pub epoch: String,
    /// Undelivered batches, oldest first: (number, field deltas).
    pub batches: Vec<(u64, Vec<(String, f64)>)>,
    /// Everything the process recorded: sent instead when Redis lost its
    /// data since (a new epoch), as a live session would.
    pub totals: Vec<(String, f64)>,
}

impl Spooled {
    /// The number after the last batch (for a resend of the totals).
    pub(crate) fn next_batch(&self) -> u64 {
        self.batches.iter().map(|(n, _)| *n).max().unwrap_or(0) + 1
    }
}

/// A spooled file this process holds the lock of.
#[derive(Debug)]
pub(crate) struct Claimed {
    path: PathBuf,
    /// Locked while delivering; dropped = unlocked.
    _file: File,
    pub entry: Spooled,
}

/// The spool directory of one coordination domain.
#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
}

impl Spool {
    pub(crate) fn new(dir: PathBuf) -> Spool {
        Spool { dir }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Write `entry` as `<process>.json` (written aside, then renamed: a
    /// reader never sees half a file).
    pub(crate) fn put(&self, entry: &Spooled) -> io::Result<PathBuf> {
        super::slots::make_shared_dir(&self.dir)?;
        let name = format!("{}{SUFFIX}", file_safe(&entry.process));
        let path = self.dir.join(&name);
        // Hidden while written: never taken for a spool file.
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let mut f = File::create(&tmp)?;
        f.write_all(&serde_json::to_vec(entry).map_err(io::Error::other)?)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        Ok(path)
    }

    /// Whether anything waits here (cheap: one directory read).
    pub(crate) fn has_files(&self) -> bool {
        std::fs::read_dir(&self.dir).map(|mut d| d.any(|e| e.is_ok_and(|e| is_spooled(&e.path())))).unwrap_or(false)
    }

    /// Lock every waiting file no other session is delivering. Files that
    /// cannot be read as a spool entry are left, named in the log.
    pub(crate) fn claim(&self) -> Vec<Claimed> {
        let Ok(dir) = std::fs::read_dir(&self.dir) else { return Vec::new() };
        dir.flatten().map(|e| e.path()).filter(|p| is_spooled(p)).filter_map(|p| lock(&p)).collect()
    }

    /// Delivered: removed while still locked, so nobody delivers it again.
    pub(crate) fn done(&self, c: Claimed) {
        if let Err(e) = std::fs::remove_file(&c.path) {
            tracing::warn!(file = %c.path.display(), error = %e, "delivered metrics spool file not removed");
        }
    }
}

/// The file at `path`, locked and read; `None` when another session holds
/// it or it was delivered (removed) between the listing and the lock.
fn lock(path: &Path) -> Option<Claimed> {
    let file = File::open(path).ok()?;
    file.try_lock().ok()?;
    let (held, now) = (file.metadata().ok()?, std::fs::metadata(path).ok()?);
    if (held.dev(), held.ino()) != (now.dev(), now.ino()) {
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    match serde_json::from_slice::<Spooled>(&bytes) {
        Ok(entry) => Some(Claimed { path: path.to_path_buf(), _file: file, entry }),
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "unreadable metrics spool file left in place");
            None
        }
    }
}

fn is_spooled(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with(SUFFIX) && !n.starts_with('.'))
}

fn file_safe(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(process: &str) -> Spooled {
        Spooled {
            process: process.into(),
            epoch: "e1".into(),
            batches: vec![(3, vec![("c\tx\t[]".into(), 2.0)]), (4, vec![("c\tx\t[]".into(), 1.0)])],
            totals: vec![("c\tx\t[]".into(), 7.0)],
        }
    }

    #[test]
    fn a_spooled_entry_is_delivered_by_one_session_and_gone_after() {
        let d = tempfile::tempdir().unwrap();
        let spool = Spool::new(d.path().join("spool"));
        assert!(!spool.has_files());
        spool.put(&entry("11-aa")).unwrap();
        assert!(spool.has_files());
        let claimed = spool.claim();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].entry, entry("11-aa"));
        assert_eq!(claimed[0].entry.next_batch(), 5);
        // Held (a lock of its own, as another process would take): not another's to take.
        assert!(Spool::new(d.path().join("spool")).claim().is_empty());
        for c in claimed {
            spool.done(c);
        }
        assert!(!spool.has_files());
        assert_eq!(std::fs::read_dir(spool.dir()).unwrap().count(), 0);
    }

    #[test]
    fn an_undelivered_entry_is_anyones_once_its_holder_lets_go() {
        let d = tempfile::tempdir().unwrap();
        let spool = Spool::new(d.path().join("spool"));
        spool.put(&entry("11-aa")).unwrap();
        // A holder that stopped (or died: the kernel drops its lock).
        drop(spool.claim());
        let again = spool.claim();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].entry.process, "11-aa");
    }
}
