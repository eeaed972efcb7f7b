//! Files and environment variables, as the plugin's grants allow.
//!
//! A plugin sees only what its `[[plugin]]` entry grants (`dirs`, `env`).
//! Outside the grants, a path or a variable simply does not exist for the
//! guest, and the host never sees the attempt, so it cannot say what is
//! missing. These helpers can: a path outside every granted directory, or
//! a variable that is not there, comes back as [`Denied`], naming the grant
//! to add. Converted into an [`Error`](crate::Error) (`?`), it reaches the
//! model as an `isError: true` answer with that sentence.

/// Access the plugin was not granted: which file, directory or variable,
/// and the manifest line that would grant it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denied {
    what: String,
    grant: String,
}

impl Denied {
    /// A path outside every directory granted to the plugin; `dir` is the
    /// directory to grant.
    pub fn path(path: &str, dir: &str) -> Self {
        Denied { what: format!("{path} is outside the directories granted to this plugin"), grant: format!("dirs = [\"{dir}\"]") }
    }

    /// An environment variable the plugin does not see.
    pub fn env(name: &str) -> Self {
        Denied {
            what: format!("environment variable {name} is not visible to this plugin (not granted, or not set where logai runs)"),
            grant: format!("env = [\"{name}\"]"),
        }
    }

    /// The manifest grant that would allow the access (`dirs = ["/var/log/app"]`,
    /// `env = ["API_TOKEN"]`).
    pub fn grant(&self) -> &str {
        &self.grant
    }
}

impl std::fmt::Display for Denied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}; to allow it, add {} to the plugin's [[plugin]] entry in the logai manifest", self.what, self.grant)
    }
}

impl std::error::Error for Denied {}

/// Reading granted files. Grants are read-only directories (`dirs`), seen
/// by the guest at the path the manifest gives (`"host:guest"` or the same
/// path).
pub mod fs {
    use std::path::{Component, Path, PathBuf};

    use super::Denied;

    /// Why a read failed.
    #[derive(Debug)]
    pub enum Error {
        /// The path is outside every granted directory.
        Denied(Denied),
        /// The path is granted, but reading it failed (missing, not a file, ...).
        Io {
            /// The path as asked for.
            path: String,
            /// What went wrong.
            error: std::io::Error,
        },
    }

    impl std::fmt::Display for Error {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            match self {
                Error::Denied(d) => d.fmt(f),
                Error::Io { path, error } => write!(f, "cannot read {path}: {error}"),
            }
        }
    }

    impl std::error::Error for Error {}

    impl From<Denied> for Error {
        fn from(d: Denied) -> Self {
            Error::Denied(d)
        }
    }

    /// A file's contents as text.
    pub fn read_to_string(path: impl AsRef<Path>) -> Result<String, Error> {
        let (asked, real) = resolve(path.as_ref(), false)?;
        std::fs::read_to_string(real).map_err(|error| Error::Io { path: asked, error })
    }

    /// A file's contents.
    pub fn read(path: impl AsRef<Path>) -> Result<Vec<u8>, Error> {
        let (asked, real) = resolve(path.as_ref(), false)?;
        std::fs::read(real).map_err(|error| Error::Io { path: asked, error })
    }

    /// The names of a directory's entries, sorted.
    pub fn read_dir(path: impl AsRef<Path>) -> Result<Vec<String>, Error> {
        let (asked, real) = resolve(path.as_ref(), true)?;
        let io = |error| Error::Io { path: asked.clone(), error };
        let mut names = Vec::new();
        for entry in std::fs::read_dir(real).map_err(io)? {
            names.push(entry.map_err(io)?.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }

    /// The directories granted to this plugin, as the guest sees them.
    pub fn granted_dirs() -> Vec<String> {
        grants().into_iter().map(|(guest, _)| guest).collect()
    }

    /// `path` without `.` and `..` (lexically; grants are matched on the
    /// path the guest asks for).
    fn normalize(path: &Path) -> PathBuf {
        let mut out = PathBuf::new();
        for c in path.components() {
            match c {
                Component::CurDir => {}
                Component::ParentDir => {
                    out.pop();
                }
                other => out.push(other),
            }
        }
        out
    }

    /// The granted directory holding `path` and the path to open, or
    /// [`Denied`] naming the directory to grant.
    fn resolve(path: &Path, is_dir: bool) -> Result<(String, PathBuf), Error> {
        let asked = path.display().to_string();
        let norm = normalize(path);
        let grants = grants();
        if grants.is_empty() && !sandboxed() {
            return Ok((asked, path.to_path_buf()));
        }
        for (guest, host) in &grants {
            if let Ok(rest) = norm.strip_prefix(normalize(Path::new(guest))) {
                return Ok((asked, host.join(rest)));
            }
        }
        let dir = if is_dir { norm.clone() } else { norm.parent().map(Path::to_path_buf).unwrap_or_default() };
        let dir = if dir.as_os_str().is_empty() { "/".to_string() } else { dir.display().to_string() };
        Err(Denied::path(&asked, &dir).into())
    }

    /// (guest path, path to open) of every grant.
    #[cfg(target_arch = "wasm32")]
    fn grants() -> Vec<(String, PathBuf)> {
        wasip2::filesystem::preopens::get_directories().into_iter().map(|(_, guest)| (guest.clone(), PathBuf::from(guest))).collect()
    }

    #[cfg(target_arch = "wasm32")]
    fn sandboxed() -> bool {
        true
    }

    /// Natively: the test host's emulated grants (none: no sandbox).
    #[cfg(not(target_arch = "wasm32"))]
    fn grants() -> Vec<(String, PathBuf)> {
        crate::testing::granted_dirs()
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn sandboxed() -> bool {
        crate::testing::sandboxed()
    }
}

/// Reading granted environment variables (`env = [...]` in the plugin's
/// `[[plugin]]` entry).
pub mod env {
    use super::Denied;

    /// The value of `name`, or [`Denied`] naming the grant when the plugin
    /// does not see it.
    pub fn var(name: &str) -> Result<String, Denied> {
        lookup(name).ok_or_else(|| Denied::env(name))
    }

    #[cfg(target_arch = "wasm32")]
    fn lookup(name: &str) -> Option<String> {
        std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
    }

    /// Natively: the test host's emulated grants, or the process's
    /// environment when no test host is installed.
    #[cfg(not(target_arch = "wasm32"))]
    fn lookup(name: &str) -> Option<String> {
        crate::testing::env_var(name)
    }
}
