//! Kernel-backed search slots: the cap itself, whatever Redis does.
//!
//! Every session of a host is a local process, so the caps can live in the
//! kernel: a scope (global, or one service) is a directory of N slot files,
//! and a running search holds an exclusive `flock` on one file of each scope
//! it counts against. The kernel grants a lock to one open file at a time and
//! drops it when its holder exits, SIGKILL included, so at most N searches
//! run in a scope across every process that shares the directory, in every
//! Redis state: fast, slow, paused, evicting or gone, or some sessions on
//! Redis and others not. Redis adds first-come-first-served order across
//! sessions and the shared view (gauges, queue positions); it no longer
//! holds the cap (see `permits` and docs/coordination.md).
//!
//! Layout: `<slot_dir>/<domain>/global/<i>` and
//! `<slot_dir>/<domain>/service/<name>/<i>`, where the domain names the
//! sessions that coordinate together (the Redis key prefix and a digest of
//! the Redis target, so two deployments on one host never share slots).
//! Directories are created sticky and world-writable like `/tmp`, slot files
//! readable by all: sessions of different accounts share one directory
//! (`flock` works on a read-only descriptor).
//!
//! Waiting is polling (`LOCK_NB`, backing off to [`POLL_MAX`]) plus a wake-up
//! when this process frees a slot: a blocking `flock` could not be
//! cancelled, nor bounded by the caller's deadline.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// First retry after a slot was found taken; doubles up to [`POLL_MAX`].
const POLL_MIN: Duration = Duration::from_millis(1);
/// Longest pause between two tries while every slot is taken.
const POLL_MAX: Duration = Duration::from_millis(20);

/// One slot of a scope, as this process sees it.
#[derive(Default)]
struct Slot {
    /// Its file, opened on first use and kept open for reuse.
    file: Option<Arc<File>>,
    /// Whether this process holds its lock.
    held_here: bool,
}

impl Slot {
    /// The slot's open file, opening (creating) file `i` of `dir` once.
    fn file(&mut self, dir: &Path, i: usize) -> io::Result<Arc<File>> {
        if let Some(f) = &self.file {
            return Ok(f.clone());
        }
        let f = Arc::new(open_slot(dir, i)?);
        self.file = Some(f.clone());
        Ok(f)
    }
}

/// One scope's slot files.
struct SlotSet {
    dir: PathBuf,
    slots: Mutex<Vec<Slot>>,
}

impl SlotSet {
    fn new(dir: PathBuf, n: u32) -> SlotSet {
        SlotSet { dir, slots: Mutex::new((0..n.max(1)).map(|_| Slot::default()).collect()) }
    }

    /// Lock a free slot without waiting: `Ok(None)` when all are taken.
    /// Starts at a slot picked by `start` so concurrent takers spread out.
    fn try_take(self: &Arc<Self>, start: usize) -> io::Result<Option<SlotHold>> {
        let mut slots = self.slots.lock();
        let n = slots.len();
        for k in 0..n {
            let i = (start + k) % n;
            // A lock belongs to an open file: this process's second try on
            // a file it holds would succeed, so held slots are skipped here.
            if slots[i].held_here {
                continue;
            }
            let file = slots[i].file(&self.dir, i)?;
            if flock(&file, libc::LOCK_EX | libc::LOCK_NB)? {
                slots[i].held_here = true;
                return Ok(Some(SlotHold { set: self.clone(), index: i, file }));
            }
        }
        Ok(None)
    }

    /// Slots held right now by any process (a snapshot: each free slot is
    /// probed with a shared lock taken and dropped at once).
    fn in_use(&self) -> u32 {
        let mut slots = self.slots.lock();
        let mut used = 0;
        for (i, slot) in slots.iter_mut().enumerate() {
            if slot.held_here {
                used += 1;
                continue;
            }
            let Ok(file) = slot.file(&self.dir, i) else { continue };
            match flock(&file, libc::LOCK_SH | libc::LOCK_NB) {
                Ok(true) => {
                    let _ = flock(&file, libc::LOCK_UN);
                }
                Ok(false) => used += 1,
                Err(_) => {}
            }
        }
        used
    }
}

/// A slot held by this process; dropping it unlocks the file.
pub(crate) struct SlotHold {
    set: Arc<SlotSet>,
    index: usize,
    file: Arc<File>,
}

impl Drop for SlotHold {
    fn drop(&mut self) {
        // Unlock before marking it free here, so this process never takes
        // a file it still holds (a second flock on it would be a no-op).
        let _ = flock(&self.file, libc::LOCK_UN);
        if let Some(slot) = self.set.slots.lock().get_mut(self.index) {
            slot.held_here = false;
        }
    }
}

/// The slots a running search holds: one per service, one global.
pub(crate) struct Held {
    service: Option<SlotHold>,
    global: Option<SlotHold>,
    released: Arc<Notify>,
}

impl Drop for Held {
    fn drop(&mut self) {
        // Unlock first, then wake this process's waiters to take them.
        self.global.take();
        self.service.take();
        self.released.notify_waiters();
    }
}

/// Why a search got no slots.
#[derive(Debug)]
pub(crate) enum SlotWait {
    /// The deadline came first; the in-use counts at that moment.
    TimedOut {
        global: u32,
        service: u32,
    },
    Cancelled,
}

/// Every scope's slot files under one domain directory.
pub(crate) struct Slots {
    root: PathBuf,
    global: Arc<SlotSet>,
    limit_global: u32,
    services: Mutex<HashMap<String, Arc<SlotSet>>>,
    per_service: u32,
    released: Arc<Notify>,
}

impl Slots {
    /// Slots under `<dir>/<domain>`, creating the directories. An error
    /// names the directory: searches cannot be capped across sessions
    /// without it.
    pub(crate) fn open(dir: &Path, domain: &str, global: u32, per_service: u32) -> io::Result<Slots> {
        let root = dir.join(domain);
        let global_dir = root.join("global");
        make_shared_dir(&global_dir)?;
        // Fail now, not on the first search: the directory must take a slot file.
        open_slot(&global_dir, 0)?;
        Ok(Slots {
            global: Arc::new(SlotSet::new(global_dir, global)),
            limit_global: global.max(1),
            root,
            services: Mutex::new(HashMap::new()),
            per_service: per_service.max(1),
            released: Arc::new(Notify::new()),
        })
    }

    /// Where the slot files live.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    fn service(&self, name: &str) -> io::Result<Arc<SlotSet>> {
        if let Some(s) = self.services.lock().get(name) {
            return Ok(s.clone());
        }
        let dir = self.root.join("service").join(file_name(name));
        make_shared_dir(&dir)?;
        let set = Arc::new(SlotSet::new(dir, self.per_service));
        Ok(self.services.lock().entry(name.to_string()).or_insert(set).clone())
    }

    /// Slots held right now, by any process: global, and for `service`.
    pub(crate) fn in_use(&self, service: &str) -> (u32, u32) {
        let s = self.service(service).map(|s| s.in_use()).unwrap_or(0);
        (self.global.in_use(), s)
    }

    /// Slots held right now, by any process: global, and per service this
    /// process has seen.
    pub(crate) fn in_use_all(&self) -> (u32, Vec<(String, u32)>) {
        let services: Vec<(String, Arc<SlotSet>)> = self.services.lock().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        (self.global.in_use(), services.into_iter().map(|(k, v)| (k, v.in_use())).collect())
    }

    /// Limits as the slot files count them.
    pub(crate) fn limits(&self) -> (u32, u32) {
        (self.limit_global, self.per_service)
    }

    /// One try: a service slot, then a global one; both or neither.
    pub(crate) fn try_acquire(&self, service: &str) -> io::Result<Option<Held>> {
        let svc = self.service(service)?;
        let start = rand::random::<u32>() as usize;
        let Some(s) = svc.try_take(start)? else { return Ok(None) };
        let Some(g) = self.global.try_take(start)? else { return Ok(None) };
        Ok(Some(Held { service: Some(s), global: Some(g), released: self.released.clone() }))
    }

    /// Wait for a service slot and a global slot until `deadline`.
    /// `on_tick` is called about once a second while waiting.
    pub(crate) async fn acquire(
        &self,
        service: &str,
        cancel: &CancellationToken,
        deadline: Instant,
        mut on_tick: impl FnMut(),
    ) -> io::Result<Result<Held, SlotWait>> {
        let mut pause = POLL_MIN;
        let mut next_tick = Instant::now() + Duration::from_secs(1);
        loop {
            // Armed before trying: a release between the try and the
            // sleep wakes this waiter instead of being missed.
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            if let Some(held) = self.try_acquire(service)? {
                return Ok(Ok(held));
            }
            let now = Instant::now();
            if now >= deadline {
                let (global, service) = self.in_use(service);
                return Ok(Err(SlotWait::TimedOut { global, service }));
            }
            if now >= next_tick {
                on_tick();
                next_tick = now + Duration::from_secs(1);
            }
            let sleep = pause.min(deadline - now);
            tokio::select! {
                _ = tokio::time::sleep(sleep) => pause = (pause * 2).min(POLL_MAX),
                _ = &mut released => pause = POLL_MIN,
                _ = cancel.cancelled() => return Ok(Err(SlotWait::Cancelled)),
            }
        }
    }
}

/// The directory name of the sessions that coordinate together: the Redis
/// key prefix and, with Redis, a digest of its (password-free) target.
pub(crate) fn domain(prefix: &str, redis_target: Option<&str>) -> String {
    use sha2::{Digest, Sha256};
    let prefix = file_name(prefix);
    match redis_target {
        Some(t) => format!("{prefix}-{}", &hex::encode(Sha256::digest(t.as_bytes()))[..12]),
        None => format!("{prefix}-local"),
    }
}

/// A file name for any service name or prefix: kept when it is plain,
/// else a digest (names come from the manifest, never from agents).
fn file_name(name: &str) -> String {
    let plain = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if plain {
        name.to_string()
    } else {
        use sha2::{Digest, Sha256};
        format!("x-{}", &hex::encode(Sha256::digest(name.as_bytes()))[..16])
    }
}

/// Create `dir` (and parents) sticky and writable by every account, like
/// `/tmp`; directories that exist are left as their owner set them.
pub(super) fn make_shared_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut missing = Vec::new();
    let mut p = dir;
    while !p.exists() {
        missing.push(p.to_path_buf());
        match p.parent() {
            Some(parent) => p = parent,
            None => break,
        }
    }
    for d in missing.iter().rev() {
        match std::fs::DirBuilder::new().mode(0o1777).create(d) {
            Ok(()) => {
                // The umask narrowed the mode: set it as meant.
                std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o1777))?;
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io::Error::new(e.kind(), format!("cannot create the search slot directory {}: {e}", d.display()))),
        }
    }
    Ok(())
}

/// Open (creating) slot file `i` of a scope: read-write when allowed, else
/// read-only (another account created it; `flock` needs no write access).
fn open_slot(dir: &Path, i: usize) -> io::Result<File> {
    let path = dir.join(i.to_string());
    match OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o644).open(&path) {
        Ok(f) => Ok(f),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => OpenOptions::new()
            .read(true)
            .open(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot open the search slot file {}: {e}", path.display()))),
        Err(e) => Err(io::Error::new(e.kind(), format!("cannot open the search slot file {}: {e}", path.display()))),
    }
}

/// `flock(2)`: `Ok(false)` when a non-blocking request found it taken.
fn flock(file: &File, op: libc::c_int) -> io::Result<bool> {
    loop {
        // SAFETY: the descriptor is open for as long as `file` lives.
        let r = unsafe { libc::flock(file.as_raw_fd(), op) };
        if r == 0 {
            return Ok(true);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EWOULDBLOCK) => return Ok(false),
            _ => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_n_holders_per_scope_and_release_frees() {
        let dir = tempfile::tempdir().unwrap();
        let a = Slots::open(dir.path(), "d", 2, 1).unwrap();
        let b = Slots::open(dir.path(), "d", 2, 1).unwrap();
        let x = a.try_acquire("x").unwrap().expect("a slot");
        // The same service from another opener (another process's view):
        // its one service slot is taken.
        assert!(b.try_acquire("x").unwrap().is_none());
        // And from the same process.
        assert!(a.try_acquire("x").unwrap().is_none());
        let y = b.try_acquire("y").unwrap().expect("global has room for two");
        assert!(a.try_acquire("z").unwrap().is_none(), "global is full");
        assert_eq!(a.in_use("x"), (2, 1));
        drop(x);
        assert!(b.try_acquire("z").unwrap().is_some());
        drop(y);
    }

    #[test]
    fn names_become_file_names() {
        assert_eq!(file_name("payments"), "payments");
        assert!(file_name("../etc").starts_with("x-"));
        assert!(file_name("a/b").starts_with("x-"));
        assert_ne!(domain("logai", Some("redis://h:1")), domain("logai", Some("redis://h:2")));
        assert_eq!(domain("logai", None), "logai-local");
    }
}
