//! The precompiled component cache.
//!
//! `logai precompile` (and any `serve` that misses) compiles each component
//! once and writes `Component::serialize` output to the cache directory as
//! `<sha256 of the component>-<engine digest>.cwasm`, with a sidecar
//! `.meta.json` recording what the artifact was made from, the artifact's
//! own sha256 and length, and the component's tool list. A warm start
//! verifies the artifact and maps it (`Component::deserialize_file`, so
//! compiled code and memory images are shared file-backed pages), and
//! reads the tool list from the sidecar: no compilation and no
//! instantiation. An artifact's sha256 is checked once per file identity.
//!
//! The component's own sha256 is remembered per path together with the
//! file's identity (device, inode, size, mtime, ctime), so a warm start
//! reads neither the component nor anything but the artifact and its record.
//!
//! Only artifacts this cache wrote are loaded: the directory is private to
//! the user (0700, owned by them), and an artifact is deserialized only when
//! its sidecar matches the component's hash, this engine's digest, and the
//! artifact's own length and sha256. Anything else (stale, foreign,
//! truncated, corrupt) is rejected, recompiled and rewritten atomically
//! (temp file + rename).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

use super::spec::RawToolSpec;
use crate::config::Config;

const META_VERSION: u32 = 1;

/// Where the cache lives: `$LOGAI_CACHE_DIR`, else `server.compile_cache_dir`
/// (relative to the manifest), else `$XDG_CACHE_HOME/logai`, else
/// `~/.cache/logai`. `None` when none can be determined.
pub fn cache_dir(config: &Config) -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("LOGAI_CACHE_DIR").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(d));
    }
    if let Some(d) = config.server.compile_cache_dir.as_deref().filter(|d| !d.is_empty()) {
        return Some(config.resolve(d));
    }
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(x).join("logai"));
    }
    std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| PathBuf::from(h).join(".cache/logai"))
}

#[derive(Serialize, Deserialize)]
struct Meta {
    version: u32,
    component_sha256: String,
    engine: String,
    wasmtime: String,
    artifact_sha256: String,
    artifact_bytes: u64,
    /// The component's `tools.list` answer, once known (tool plugins only).
    #[serde(default)]
    tools: Option<Vec<RawToolSpec>>,
    /// What the list was made for (the search limits it was given; see
    /// `spec::list_key`): a list made for other limits is not reused.
    #[serde(default)]
    tools_for: Option<String>,
}

/// How a component was obtained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded from a valid artifact.
    Hit,
    /// Not in the cache: compiled and written.
    Compiled,
    /// An artifact was there but unusable (the reason); recompiled and rewritten.
    Replaced(String),
    /// No usable cache directory (the reason): compiled in memory.
    Uncached(String),
}

impl std::fmt::Display for CacheOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CacheOutcome::Hit => f.write_str("up to date"),
            CacheOutcome::Compiled => f.write_str("compiled"),
            CacheOutcome::Replaced(why) => write!(f, "recompiled ({why})"),
            CacheOutcome::Uncached(why) => write!(f, "compiled, not cached ({why})"),
        }
    }
}

/// A valid artifact, its cached tool list and what the list was made for.
type Hit = (Component, Option<Vec<RawToolSpec>>, Option<String>);

pub(crate) struct Loaded {
    pub component: Component,
    pub outcome: CacheOutcome,
    /// Cached tool list, on a hit.
    pub tools: Option<Vec<RawToolSpec>>,
    /// What the cached list was made for (`spec::list_key`).
    pub tools_for: Option<String>,
    /// Where its artifact is (when cached), to record the tool list.
    pub entry: Option<Entry>,
}

/// One cache entry's paths and identity.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub artifact: PathBuf,
    meta: PathBuf,
    component_sha256: String,
    engine: String,
}

/// The opened cache directory.
pub(crate) struct ArtifactCache {
    dir: Result<PathBuf, String>,
    engine_digest: String,
}

impl ArtifactCache {
    /// Open (creating it 0700 when missing) the cache for `config`. A
    /// directory that cannot be used is remembered with the reason; loads
    /// then compile in memory.
    pub fn open(config: &Config, engine: &Engine) -> ArtifactCache {
        let engine_digest = super::engine::compatibility_digest(engine);
        let dir = match cache_dir(config) {
            None => Err("no cache directory: set LOGAI_CACHE_DIR or HOME".to_string()),
            Some(d) => prepare_dir(&d).map(|_| d),
        };
        if let Err(why) = &dir {
            tracing::warn!("precompiled component cache disabled: {why}");
        }
        ArtifactCache { dir, engine_digest }
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_ref().ok().map(PathBuf::as_path)
    }

    /// Load `path`'s component: from the cache when a valid artifact is
    /// there, else compile it (and cache it).
    pub fn load(&self, engine: &Engine, path: &Path) -> Result<Loaded, String> {
        let read = || fs::read(path).map_err(|e| format!("cannot read component {}: {e}", path.display()));
        let dir = match &self.dir {
            Ok(d) => d,
            Err(why) => {
                let component = compile(engine, &read()?, path)?;
                return Ok(Loaded { component, outcome: CacheOutcome::Uncached(why.clone()), tools: None, tools_for: None, entry: None });
            }
        };
        // The component's sha256: remembered per path and file identity
        // (device, inode, size, mtime, ctime), so a warm start does not
        // read and hash every component again.
        let stat = fs::metadata(path).map_err(|e| format!("cannot read component {}: {e}", path.display()))?;
        let (component_sha256, mut bytes) = match remembered_sha(dir, path, &stat) {
            Some(sha) => (sha, None),
            None => {
                let bytes = read()?;
                let sha = hex::encode(Sha256::digest(&bytes));
                remember_sha(dir, path, &stat, &sha);
                (sha, Some(bytes))
            }
        };
        let key = format!("{component_sha256}-{}", self.engine_digest);
        let mut entry = Entry {
            artifact: dir.join(format!("{key}.cwasm")),
            meta: dir.join(format!("{key}.meta.json")),
            component_sha256,
            engine: self.engine_digest.clone(),
        };
        let rejected = match self.try_hit(engine, &entry) {
            Ok(Some((component, tools, tools_for))) => {
                return Ok(Loaded { component, outcome: CacheOutcome::Hit, tools, tools_for, entry: Some(entry) })
            }
            Ok(None) => None,
            Err(why) => Some(why),
        };
        let bytes = match bytes.take() {
            Some(b) => b,
            None => {
                // Compile what is on disk now, keyed by what it really is.
                let b = read()?;
                let sha = hex::encode(Sha256::digest(&b));
                if sha != entry.component_sha256 {
                    let key = format!("{sha}-{}", self.engine_digest);
                    entry.artifact = dir.join(format!("{key}.cwasm"));
                    entry.meta = dir.join(format!("{key}.meta.json"));
                    entry.component_sha256 = sha.clone();
                    if let Ok(st) = fs::metadata(path) {
                        remember_sha(dir, path, &st, &sha);
                    }
                }
                b
            }
        };
        let component = compile(engine, &bytes, path)?;
        let outcome = match self.write(&entry, &component, None) {
            Ok(()) => match rejected {
                Some(why) => CacheOutcome::Replaced(why),
                None => CacheOutcome::Compiled,
            },
            Err(e) => {
                tracing::warn!("cannot write {}: {e}", entry.artifact.display());
                CacheOutcome::Uncached(format!("cannot write the cache: {e}"))
            }
        };
        let entry = matches!(outcome, CacheOutcome::Compiled | CacheOutcome::Replaced(_)).then_some(entry);
        Ok(Loaded { component, outcome, tools: None, tools_for: None, entry })
    }

    /// `Ok(None)`: no entry; `Err(why)`: an entry that must not be used.
    fn try_hit(&self, engine: &Engine, e: &Entry) -> Result<Option<Hit>, String> {
        let meta_text = match fs::read(&e.meta) {
            Ok(t) => t,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return if e.artifact.exists() { Err("artifact without its record".into()) } else { Ok(None) };
            }
            Err(err) => return Err(format!("cannot read its record: {err}")),
        };
        let meta: Meta = serde_json::from_slice(&meta_text).map_err(|err| format!("unreadable record: {err}"))?;
        if meta.version != META_VERSION
            || meta.component_sha256 != e.component_sha256
            || meta.engine != e.engine
            || meta.wasmtime != wasmtime_version()
        {
            return Err("stale record".into());
        }
        check_private(&e.artifact)?;
        let file = fs::File::open(&e.artifact).map_err(|err| format!("cannot read the artifact: {err}"))?;
        let st = file.metadata().map_err(|err| format!("cannot stat the artifact: {err}"))?;
        if st.len() != meta.artifact_bytes {
            return Err("artifact length mismatch".into());
        }
        // Hashed once per file identity (device, inode, size, mtime, ctime):
        // an artifact verified before and not touched since is not read again.
        let dir = self.dir.as_ref().map_err(Clone::clone)?;
        if remembered_sha(dir, &e.artifact, &st).as_deref() != Some(meta.artifact_sha256.as_str()) {
            if sha256_of(&file).map_err(|err| format!("cannot read the artifact: {err}"))? != meta.artifact_sha256 {
                return Err("artifact hash mismatch".into());
            }
            remember_sha(dir, &e.artifact, &st, &meta.artifact_sha256);
        }
        let component = map_verified(engine, &file)?;
        Ok(Some((component, meta.tools, meta.tools_for)))
    }

    fn write(&self, e: &Entry, component: &Component, tools: Option<Vec<RawToolSpec>>) -> Result<(), String> {
        let artifact = component.serialize().map_err(|err| format!("serialize failed: {err:#}"))?;
        let meta = Meta {
            version: META_VERSION,
            component_sha256: e.component_sha256.clone(),
            engine: e.engine.clone(),
            wasmtime: wasmtime_version(),
            artifact_sha256: hex::encode(Sha256::digest(&artifact)),
            artifact_bytes: artifact.len() as u64,
            tools,
            tools_for: None,
        };
        write_atomic(&e.artifact, &artifact)?;
        write_atomic(&e.meta, &serde_json::to_vec_pretty(&meta).map_err(|err| err.to_string())?)
    }

    /// Record a component's tool list, and what it was made for, beside
    /// its artifact.
    pub fn record_tools(&self, e: &Entry, tools_for: &str, tools: &[RawToolSpec]) {
        let result = (|| -> Result<(), String> {
            let text = fs::read(&e.meta).map_err(|err| err.to_string())?;
            let mut meta: Meta = serde_json::from_slice(&text).map_err(|err| err.to_string())?;
            meta.tools = Some(tools.to_vec());
            meta.tools_for = Some(tools_for.to_string());
            write_atomic(&e.meta, &serde_json::to_vec_pretty(&meta).map_err(|err| err.to_string())?)
        })();
        if let Err(err) = result {
            tracing::warn!("cannot record the tool list in {}: {err}", e.meta.display());
        }
    }
}

/// What a component file was when its sha256 was taken.
#[derive(Serialize, Deserialize, PartialEq)]
struct SourceStamp {
    path: PathBuf,
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    sha256: String,
}

impl SourceStamp {
    fn of(path: &Path, st: &fs::Metadata, sha256: String) -> SourceStamp {
        SourceStamp {
            path: path.to_path_buf(),
            dev: st.dev(),
            ino: st.ino(),
            size: st.size(),
            mtime_ns: st.mtime() as i128 * 1_000_000_000 + st.mtime_nsec() as i128,
            ctime_ns: st.ctime() as i128 * 1_000_000_000 + st.ctime_nsec() as i128,
            sha256,
        }
    }
}

fn stamp_path(dir: &Path, path: &Path) -> PathBuf {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let h = Sha256::digest(abs.as_os_str().as_encoded_bytes());
    dir.join(format!("source-{}.json", hex::encode(&h[..12])))
}

fn remembered_sha(dir: &Path, path: &Path, st: &fs::Metadata) -> Option<String> {
    let sp = stamp_path(dir, path);
    check_private(&sp).ok()?;
    let stamp: SourceStamp = serde_json::from_slice(&fs::read(sp).ok()?).ok()?;
    let abs = std::path::absolute(path).ok()?;
    let now = SourceStamp::of(&abs, st, stamp.sha256.clone());
    (stamp == now && stamp.sha256.len() == 64).then_some(stamp.sha256)
}

fn remember_sha(dir: &Path, path: &Path, st: &fs::Metadata, sha: &str) {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    if let Ok(text) = serde_json::to_vec(&SourceStamp::of(&abs, st, sha.to_string())) {
        let _ = write_atomic(&stamp_path(dir, path), &text);
    }
}

/// The sha256 of an open file, read in chunks (no copy of the whole file).
fn sha256_of(mut file: &fs::File) -> std::io::Result<String> {
    let mut h = Sha256::new();
    std::io::copy(&mut file, &mut h)?;
    Ok(hex::encode(h.finalize()))
}

/// Deserialize the artifact `file` (opened, checked and verified by the
/// caller) by mapping it, through `/proc/self/fd` so the very inode checked
/// is mapped: its code and its linear-memory images stay file-backed pages,
/// read on demand and shared (page cache) by every instance and process,
/// instead of a private copy per process. Without `/proc`, the bytes are
/// read and deserialized as before.
fn map_verified(engine: &Engine, file: &fs::File) -> Result<Component, String> {
    use std::os::fd::AsRawFd;
    let fd_path = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
    // SAFETY: the file is exactly what this cache wrote for this component
    // and this engine (length and sha256 checked, in a directory only this
    // user can write, replaced only by rename, never rewritten in place),
    // and wasmtime checks its header against the engine again.
    if fd_path.exists() {
        return unsafe { Component::deserialize_file(engine, &fd_path) }.map_err(|err| format!("deserialize failed: {err:#}"));
    }
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut &*file, &mut bytes).map_err(|err| format!("cannot read the artifact: {err}"))?;
    unsafe { Component::deserialize(engine, &bytes) }.map_err(|err| format!("deserialize failed: {err:#}"))
}

fn wasmtime_version() -> String {
    // The engine digest covers the version too; this makes records readable.
    "48".to_string()
}

fn compile(engine: &Engine, bytes: &[u8], path: &Path) -> Result<Component, String> {
    Component::new(engine, bytes).map_err(|e| {
        let msg = format!("{e:#}");
        if bytes.starts_with(b"\0asm\x01\0\0\0") {
            format!("{} is a core WebAssembly module, not a component (build for wasm32-wasip2): {msg}", path.display())
        } else {
            format!("{} is not a valid WebAssembly component: {msg}", path.display())
        }
    })
}

fn prepare_dir(dir: &Path) -> Result<(), String> {
    if !dir.exists() {
        fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let md = fs::metadata(dir).map_err(|e| format!("cannot use {}: {e}", dir.display()))?;
    if !md.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    let uid = unsafe { libc::geteuid() };
    if md.uid() != uid {
        return Err(format!("{} belongs to another user (uid {})", dir.display(), md.uid()));
    }
    if md.mode() & 0o022 != 0 {
        // Ours but writable by others: tighten it rather than trust it.
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("{} is writable by others and cannot be made private: {e}", dir.display()))?;
    }
    Ok(())
}

fn check_private(path: &Path) -> Result<(), String> {
    let md = fs::symlink_metadata(path).map_err(|e| format!("cannot stat the artifact: {e}"))?;
    if !md.is_file() {
        return Err("the artifact is not a regular file".into());
    }
    if md.uid() != unsafe { libc::geteuid() } {
        return Err("the artifact belongs to another user".into());
    }
    if md.mode() & 0o022 != 0 {
        return Err("the artifact is writable by others".into());
    }
    Ok(())
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let dir = path.parent().ok_or("no parent directory")?;
    let tmp = dir.join(format!(
        ".{}.{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("artifact"),
        std::process::id(),
        rand::random::<u32>()
    ));
    let result = (|| -> std::io::Result<()> {
        let mut f = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_data()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(format!("cannot write {}: {e}", path.display()));
    }
    Ok(())
}
