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
//! and key prefix deliver each other's counts. A file is claimed by renaming
//! it (atomic; one claimer wins) and removed once delivered; a claim whose
//! owner died is taken over after [`STALE_CLAIM`].

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

/// A claim older than this belongs to a session that died mid-delivery.
pub(crate) const STALE_CLAIM: Duration = Duration::from_secs(60);

const SUFFIX: &str = ".json";
const CLAIMED: &str = ".claimed-";

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

/// A spooled file this process claimed.
#[derive(Debug)]
pub(crate) struct Claimed {
    path: PathBuf,
    /// The name it goes back to when delivery fails.
    unclaimed: PathBuf,
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
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&serde_json::to_vec(entry).map_err(io::Error::other)?)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        Ok(path)
    }

    /// Whether anything waits here (cheap: one directory read).
    pub(crate) fn has_files(&self) -> bool {
        std::fs::read_dir(&self.dir).map(|mut d| d.any(|e| e.is_ok_and(|e| deliverable(&e.path())))).unwrap_or(false)
    }

    /// Claim every waiting file (and stale claims) for `me`. Files that
    /// cannot be read as a spool entry are left, named in the log.
    pub(crate) fn claim(&self, me: &str) -> Vec<Claimed> {
        let Ok(dir) = std::fs::read_dir(&self.dir) else { return Vec::new() };
        let mut out = Vec::new();
        for e in dir.flatten() {
            let path = e.path();
            let Some(unclaimed) = unclaimed_name(&path) else { continue };
            if is_claim(&path) && !is_stale(&path) {
                continue;
            }
            let claim = PathBuf::from(format!("{}{CLAIMED}{}", unclaimed.display(), file_safe(me)));
            if std::fs::rename(&path, &claim).is_err() {
                continue; // another session took it first
            }
            // Fresh for the staleness test of other sessions.
            if let Ok(f) = std::fs::File::options().write(true).open(&claim) {
                let _ = f.set_modified(SystemTime::now());
            }
            match std::fs::read(&claim).ok().and_then(|b| serde_json::from_slice::<Spooled>(&b).ok()) {
                Some(entry) => out.push(Claimed { path: claim, unclaimed, entry }),
                None => {
                    tracing::warn!(file = %claim.display(), "unreadable metrics spool file left in place");
                }
            }
        }
        out
    }

    /// Delivered: gone.
    pub(crate) fn done(&self, c: Claimed) {
        if let Err(e) = std::fs::remove_file(&c.path) {
            tracing::warn!(file = %c.path.display(), error = %e, "delivered metrics spool file not removed");
        }
    }

    /// Not delivered: back for the next session to try.
    pub(crate) fn release(&self, c: Claimed) {
        let _ = std::fs::rename(&c.path, &c.unclaimed);
    }
}

/// `<process>.json` for a spool file or a claim of one, `None` otherwise.
fn unclaimed_name(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_str()?;
    let base = match name.find(CLAIMED) {
        Some(i) => &name[..i],
        None => name,
    };
    (base.ends_with(SUFFIX) && !base.starts_with('.')).then(|| path.with_file_name(base))
}

fn is_claim(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.contains(CLAIMED))
}

fn is_stale(path: &Path) -> bool {
    let age = std::fs::metadata(path).and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok());
    age.is_some_and(|a| a > STALE_CLAIM)
}

fn deliverable(path: &Path) -> bool {
    unclaimed_name(path).is_some() && (!is_claim(path) || is_stale(path))
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
    fn a_spooled_entry_is_claimed_once_and_gone_when_delivered() {
        let d = tempfile::tempdir().unwrap();
        let spool = Spool::new(d.path().join("spool"));
        assert!(!spool.has_files());
        spool.put(&entry("11-aa")).unwrap();
        assert!(spool.has_files());
        let claimed = spool.claim("22-bb");
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].entry, entry("11-aa"));
        assert_eq!(claimed[0].entry.next_batch(), 5);
        // A fresh claim is not another session's to take.
        assert!(spool.claim("33-cc").is_empty());
        assert!(!spool.has_files());
        for c in claimed {
            spool.done(c);
        }
        assert_eq!(std::fs::read_dir(spool.dir()).unwrap().count(), 0);
    }

    #[test]
    fn an_undelivered_claim_goes_back_and_a_stale_one_is_taken_over() {
        let d = tempfile::tempdir().unwrap();
        let spool = Spool::new(d.path().join("spool"));
        spool.put(&entry("11-aa")).unwrap();
        for c in spool.claim("22-bb") {
            spool.release(c);
        }
        let again = spool.claim("33-cc");
        assert_eq!(again.len(), 1);
        // Its claimer died: made old, it is deliverable again.
        let old = SystemTime::now() - STALE_CLAIM - Duration::from_secs(5);
        std::fs::File::options().write(true).open(&again[0].path).unwrap().set_modified(old).unwrap();
        assert!(spool.has_files());
        let taken = spool.claim("44-dd");
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].entry.process, "11-aa");
    }
}
