//! The manifest: `logai.toml` (and an optional `services.toml`).
//!
//! Loading is: find the file (`--config`, `$LOGAI_CONFIG`,
//! `./config/logai.toml`, `/etc/logai/logai.toml`, else the embedded
//! defaults) → read `.env` beside it → expand `${VAR}` / `${VAR:-default}`
//! → parse strictly (unknown keys are errors, so typos do not silently fall
//! back to defaults) → apply the deployment's environment overrides
//! (`MAX_GLOBAL_SEARCHES`, ...) → validate. Every error names the file, the
//! line and the column.

mod access;
mod expand;
mod model;

pub use access::{AccessConfig, AccessGroup, ALL_SERVICES};
pub use model::*;

use std::path::{Path, PathBuf};

/// The defaults compiled into the binary: the bundled sample services and
/// first-party plugins, no Redis, no exporters.
pub const EMBEDDED_MANIFEST: &str = include_str!("../../../config/logai.toml");

/// Where the effective manifest came from.
#[derive(Clone, Debug)]
pub enum Source {
    File(PathBuf),
    Embedded,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::File(p) => write!(f, "{}", p.display()),
            Source::Embedded => f.write_str("<embedded defaults>"),
        }
    }
}

/// A manifest error: which file, where in it, and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{file}{}: {message}", location(*.line, *.column))]
pub struct ConfigError {
    pub file: String,
    /// 1-based, when known.
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

fn location(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(":{l}:{c}"),
        (Some(l), None) => format!(":{l}"),
        _ => String::new(),
    }
}

impl ConfigError {
    fn whole_file(file: &str, message: impl Into<String>) -> Self {
        ConfigError { file: file.into(), line: None, column: None, message: message.into() }
    }

    /// An error located at a byte offset of `text`.
    fn at(file: &str, text: &str, offset: usize, message: impl Into<String>) -> Self {
        let (line, column) = line_col(text, offset);
        ConfigError { file: file.into(), line: Some(line), column: Some(column), message: message.into() }
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    (line, before[line_start..].chars().count() + 1)
}

/// Pick the manifest file: explicit path, `$LOGAI_CONFIG`, `./config/logai.toml`,
/// `/etc/logai/logai.toml`, else the embedded defaults.
pub fn locate(explicit: Option<&Path>) -> Source {
    if let Some(p) = explicit {
        return Source::File(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("LOGAI_CONFIG").filter(|v| !v.is_empty()) {
        return Source::File(PathBuf::from(p));
    }
    for candidate in ["config/logai.toml", "/etc/logai/logai.toml"] {
        let p = PathBuf::from(candidate);
        if p.is_file() {
            return Source::File(p);
        }
    }
    Source::Embedded
}

/// Locate and load the manifest.
pub fn load(explicit: Option<&Path>) -> Result<Config, ConfigError> {
    load_from(locate(explicit))
}

/// Load the manifest from a given source.
pub fn load_from(source: Source) -> Result<Config, ConfigError> {
    let (text, base_dir, file_name) = match &source {
        Source::File(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ConfigError::whole_file(&path.display().to_string(), format!("cannot read the manifest: {e}")))?;
            let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
            let dir = if dir.as_os_str().is_empty() { PathBuf::from(".") } else { dir };
            // Absolute, so paths resolved against it do not depend on the cwd later.
            let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
            (text, dir, path.display().to_string())
        }
        Source::Embedded => {
            // Relative paths in the embedded manifest resolve against the
            // directory holding config/ in a checkout (where the quick start
            // runs), else the binary's share directory.
            let dir = embedded_base_dir();
            let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
            (EMBEDDED_MANIFEST.to_string(), dir, source.to_string())
        }
    };
    let dotenv = base_dir.join(".env");
    if dotenv.is_file() {
        // Variables already in the environment win over .env.
        dotenvy::from_path(&dotenv)
            .map_err(|e| ConfigError::whole_file(&dotenv.display().to_string(), format!("cannot read .env: {e}")))?;
    }
    let mut config = parse(&text, &file_name, &base_dir)?;
    config.source = source.to_string();
    if let Some(services_file) = config.services_file.clone() {
        let path = config.resolve(&services_file);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| ConfigError::whole_file(&path.display().to_string(), format!("cannot read services file: {e}")))?;
        let mut extra = parse_services(&text, &path.display().to_string())?;
        // Paths in a services file are relative to that file, wherever the
        // manifest that names it lives.
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        for service in &mut extra {
            for p in &mut service.paths {
                if !Path::new(p.as_str()).is_absolute() {
                    *p = dir.join(&*p).display().to_string();
                }
            }
        }
        config.service.extend(extra);
    }
    validate(&config, &text, &file_name)?;
    Ok(config)
}

fn embedded_base_dir() -> PathBuf {
    // `./config` when run from a checkout; otherwise next to the binary
    // (`/usr/local/share/logai` style installs put config/ beside bin/).
    let cwd = PathBuf::from("config");
    if cwd.is_dir() {
        return cwd;
    }
    if let Ok(exe) = std::env::current_exe() {
        if let Some(root) = exe.parent().and_then(Path::parent) {
            for cand in [root.join("config"), root.join("share/logai/config")] {
                if cand.is_dir() {
                    return cand;
                }
            }
            // target/{debug,release}/logai inside a checkout.
            if let Some(repo) = root.parent() {
                if repo.join("config").is_dir() {
                    return repo.join("config");
                }
            }
        }
    }
    PathBuf::from("config")
}

/// Parse manifest text (after `${VAR}` expansion) into a [`Config`].
pub fn parse(text: &str, file: &str, base_dir: &Path) -> Result<Config, ConfigError> {
    let expanded = expand::expand_env(text).map_err(|e| ConfigError::at(file, text, e.offset, e.message))?;
    let mut config: Config = toml::from_str(&expanded).map_err(|e| toml_error(file, &expanded, &e))?;
    config.base_dir = base_dir.to_path_buf();
    config.apply_env_overrides().map_err(|m| ConfigError::whole_file(file, m))?;
    Ok(config)
}

fn parse_services(text: &str, file: &str) -> Result<Vec<ServiceConfig>, ConfigError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct ServicesFile {
        #[serde(default)]
        service: Vec<ServiceConfig>,
    }
    let expanded = expand::expand_env(text).map_err(|e| ConfigError::at(file, text, e.offset, e.message))?;
    let parsed: ServicesFile = toml::from_str(&expanded).map_err(|e| toml_error(file, &expanded, &e))?;
    Ok(parsed.service)
}

fn toml_error(file: &str, text: &str, e: &toml::de::Error) -> ConfigError {
    let message = e.message().to_string();
    match e.span() {
        Some(span) => ConfigError::at(file, text, span.start, message),
        None => ConfigError::whole_file(file, message),
    }
}

/// Checks that serde cannot express: duplicate names, value ranges.
fn validate(config: &Config, text: &str, file: &str) -> Result<(), ConfigError> {
    let locate_name = |table: &str, name: &str| -> ConfigError {
        // Point at the second `name = "..."` declaration of this table kind.
        let needle = format!("\"{name}\"");
        let offsets: Vec<usize> = text.match_indices(&needle).map(|(i, _)| i).collect();
        let off = offsets.get(1).or(offsets.first()).copied().unwrap_or(0);
        ConfigError::at(file, text, off, format!("two [[{table}]] entries are named '{name}'"))
    };
    let mut seen = std::collections::HashSet::new();
    for p in &config.plugin {
        if !seen.insert(p.name.as_str()) {
            return Err(locate_name("plugin", &p.name));
        }
    }
    let mut seen = std::collections::HashSet::new();
    for s in &config.service {
        if !seen.insert(s.name.as_str()) {
            return Err(locate_name("service", &s.name));
        }
        if s.paths.is_empty() {
            return Err(ConfigError::whole_file(file, format!("service '{}' has no paths", s.name)));
        }
    }
    let mut seen = std::collections::HashSet::new();
    for x in &config.exporter {
        if !seen.insert(x.name.as_str()) {
            return Err(locate_name("exporter", &x.name));
        }
    }
    if config.limits.max_global_searches == 0 || config.limits.max_per_service_searches == 0 {
        return Err(ConfigError::whole_file(file, "limits.max_global_searches and limits.max_per_service_searches must be at least 1"));
    }
    if let Some(e) = access::validate(config, text, file).into_iter().next() {
        return Err(e);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
