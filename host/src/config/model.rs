//! The manifest's data model. Every table is strict (`deny_unknown_fields`)
//! and every field has a documented default, so an empty manifest is valid.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The whole manifest.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub cache: CacheConfig,
    #[serde(default)]
    pub redis: RedisConfig,
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    /// Extra services file (relative to the manifest's directory).
    #[serde(default)]
    pub services_file: Option<String>,
    #[serde(default)]
    pub service: Vec<ServiceConfig>,
    #[serde(default)]
    pub plugin: Vec<PluginConfig>,
    #[serde(default)]
    pub exporter: Vec<ExporterConfig>,
    /// Who may search which services; unset: everyone, every service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<super::AccessConfig>,

    /// Directory relative paths resolve against (the manifest's directory).
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// Where the manifest came from (for `config check` and logs).
    #[serde(skip)]
    pub source: String,
}

impl Config {
    /// Where the search caps' slot files live: `limits.slot_dir`, else
    /// `<server.session_root>/slots`, against the manifest's directory.
    pub fn slot_dir(&self) -> PathBuf {
        match self.limits.slot_dir.trim() {
            "" => LimitsConfig::slot_dir_under(&self.resolve(&self.server.session_root)),
            d => self.resolve(d),
        }
    }

    /// Resolve a path from the manifest against its directory.
    pub fn resolve(&self, p: impl AsRef<Path>) -> PathBuf {
        let p = p.as_ref();
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }

    /// Apply the environment variable names of existing deployments over the
    /// manifest (`MAX_GLOBAL_SEARCHES=30` beats `limits.max_global_searches`).
    pub(crate) fn apply_env_overrides(&mut self) -> Result<(), String> {
        fn num<T: std::str::FromStr>(name: &str, slot: &mut T) -> Result<(), String> {
            if let Ok(v) = std::env::var(name) {
                if !v.trim().is_empty() {
                    *slot = v.trim().parse().map_err(|_| format!("environment variable {name}={v:?} is not a valid number"))?;
                }
            }
            Ok(())
        }
        num("MAX_GLOBAL_SEARCHES", &mut self.limits.max_global_searches)?;
        num("MAX_PER_SERVICE_SEARCHES", &mut self.limits.max_per_service_searches)?;
        num("RATE_LIMIT_PER_USER_PER_MINUTE", &mut self.limits.rate_limit_per_user_per_minute)?;
        num("RATE_LIMIT_BURST", &mut self.limits.rate_limit_burst)?;
        num("SLOW_SEARCH_MS", &mut self.telemetry.slow_search_ms)?;
        num("CACHE_TTL_MINUTES", &mut self.cache.ttl_minutes)?;
        num("CACHE_MAX_SIZE_MB", &mut self.cache.max_size_mb)?;
        if let Ok(url) = std::env::var("REDIS_URL") {
            if !url.trim().is_empty() {
                self.redis.url = Some(url);
            }
        } else if let Ok(host) = std::env::var("REDIS_HOST") {
            if !host.trim().is_empty() {
                let port = std::env::var("REDIS_PORT").unwrap_or_else(|_| "6379".into());
                let auth = std::env::var("REDIS_PASSWORD").ok().filter(|p| !p.is_empty()).map(|p| format!(":{p}@")).unwrap_or_default();
                self.redis.url = Some(format!("redis://{auth}{host}:{port}/"));
            }
        }
        if let Ok(level) = std::env::var("LOG_LEVEL") {
            if !level.trim().is_empty() {
                self.server.log_level = level;
            }
        }
        if let Ok(format) = std::env::var("LOG_FORMAT") {
            if !format.trim().is_empty() {
                self.server.log_format = format;
            }
        }
        Ok(())
    }
}

/// `[server]`
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Name reported in `serverInfo`.
    pub name: String,
    /// Short instructions for the model, sent at `initialize`/`server/discover`.
    pub instructions: Option<String>,
    /// `trace`, `debug`, `info`, `warn`, `error`, or an `EnvFilter` directive.
    pub log_level: String,
    /// `text` or `json`.
    pub log_format: String,
    /// Write logs to this file instead of stderr.
    pub log_file: Option<String>,
    /// Where per-session overflow directories live (`$LOGAI_SESSION_DIR` overrides).
    pub session_root: String,
    /// Session directories older than this (left by killed sessions) are swept at start.
    pub session_sweep_age_minutes: u64,
    /// Precompiled component cache (`$LOGAI_CACHE_DIR` overrides).
    pub compile_cache_dir: Option<String>,
    /// Tools per `tools/list` page.
    pub tools_page_size: usize,
    /// Calls one session may run at once; more wait.
    pub max_concurrent_calls: usize,
    /// On EOF with stdout still open: how long calls already running get to
    /// finish and be answered before they are cancelled.
    pub shutdown_grace_ms: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            name: "logai".into(),
            instructions: None,
            log_level: "info".into(),
            log_format: "text".into(),
            log_file: None,
            session_root: "/tmp/logai".into(),
            session_sweep_age_minutes: 24 * 60,
            compile_cache_dir: None,
            tools_page_size: 50,
            max_concurrent_calls: 16,
            shutdown_grace_ms: 2000,
        }
    }
}

/// `[limits]`
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Searches running at once across all sessions (`MAX_GLOBAL_SEARCHES`).
    pub max_global_searches: u32,
    /// Searches running at once per service (`MAX_PER_SERVICE_SEARCHES`).
    pub max_per_service_searches: u32,
    /// How long a search waits for a permit before failing as busy.
    pub permit_wait_ms: u64,
    /// Permit lease; a holder that dies loses its permit after this.
    pub permit_lease_ms: u64,
    /// Directory of the slot files that hold the search caps across every
    /// session of the host (`flock`, released by the kernel when a session
    /// dies). Every session of a deployment must reach the same one. Empty:
    /// `<server.session_root>/slots`.
    pub slot_dir: String,
    /// Per-user rate (`RATE_LIMIT_PER_USER_PER_MINUTE`).
    pub rate_limit_per_user_per_minute: u32,
    /// Calls a user may make at once above the steady rate.
    pub rate_limit_burst: u32,
    /// Default `max_results` of `search_logs`.
    pub default_max_results: u32,
    /// Hard cap on `max_results`.
    pub max_results_cap: u32,
    /// Hard cap on `context`.
    pub max_context_lines: u32,
    /// A search stops after this and returns what it found, marked partial.
    pub search_timeout_ms: u64,
    /// Largest regex (compiled size) accepted.
    pub regex_size_limit_bytes: usize,
}

impl LimitsConfig {
    /// The slot directory under a session root (the default `slot_dir`).
    pub fn slot_dir_under(session_root: &Path) -> PathBuf {
        session_root.join("slots")
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_global_searches: 20,
            max_per_service_searches: 5,
            permit_wait_ms: 30_000,
            permit_lease_ms: 10_000,
            slot_dir: String::new(),
            rate_limit_per_user_per_minute: 120,
            rate_limit_burst: 30,
            default_max_results: 100,
            max_results_cap: 1000,
            max_context_lines: 10,
            search_timeout_ms: 30_000,
            regex_size_limit_bytes: 10 * 1024 * 1024,
        }
    }
}

/// `[cache]`
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    pub enabled: bool,
    /// `CACHE_TTL_MINUTES`
    pub ttl_minutes: u64,
    /// `CACHE_MAX_SIZE_MB`
    pub max_size_mb: u64,
    /// Results larger than this as stored (LZ4-compressed) are not cached.
    pub max_entry_kb: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig { enabled: true, ttl_minutes: 10, max_size_mb: 500, max_entry_kb: 1024 }
    }
}

/// `[redis]`
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `redis://`, `rediss://` (TLS); `REDIS_URL` or `REDIS_HOST`/`REDIS_PORT`/`REDIS_PASSWORD`
    /// override. Unset: local state only.
    pub url: Option<String>,
    /// Prefix of every key, so deployments can share one Redis.
    pub key_prefix: String,
    /// Timeout of every Redis call.
    pub op_timeout_ms: u64,
    /// Time to connect at start before falling back to local state.
    pub connect_timeout_ms: u64,
    /// Longest wait between reconnection attempts.
    pub max_backoff_ms: u64,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig { url: None, key_prefix: "logai".into(), op_timeout_ms: 250, connect_timeout_ms: 500, max_backoff_ms: 5_000 }
    }
}

/// `[telemetry]`
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// Events held for export; when full, new events are dropped and counted.
    pub queue_capacity: usize,
    /// Events per batch handed to an exporter.
    pub batch_size: usize,
    /// Longest an event waits before its batch is sent.
    pub batch_interval_ms: u64,
    /// Searches slower than this are reported as slow (`SLOW_SEARCH_MS`).
    pub slow_search_ms: u64,
    /// Exit waits at most this long for the queue to drain.
    pub flush_timeout_ms: u64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig { queue_capacity: 4096, batch_size: 256, batch_interval_ms: 1000, slow_search_ms: 5000, flush_timeout_ms: 2000 }
    }
}

/// `[[service]]`: a set of log files searched together.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Globs of log files, rotated and gzipped ones included. Relative globs
    /// resolve against the manifest's directory.
    pub paths: Vec<String>,
    /// `syslog` (RFC 3164 / 5424), `json`, `plain` or `auto`.
    #[serde(default = "default_format")]
    pub format: String,
    /// IANA zone for stamps without one (`UTC` when unset).
    #[serde(default)]
    pub timezone: Option<String>,
}

fn default_format() -> String {
    "auto".into()
}

/// Permissions granted to a plugin or exporter. Default: nothing.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Grants {
    /// Linear memory cap per instance, MB.
    pub memory_mb: Option<u64>,
    /// Wall-clock limit per call, ms.
    pub timeout_ms: Option<u64>,
    /// Environment variables passed through (by name).
    pub env: Vec<String>,
    /// Host directories preopened read-only (`"/host/path"` or `"/host/path:/guest/path"`).
    pub dirs: Vec<String>,
    /// Hosts outgoing HTTP may reach (`host` or `host:port`).
    pub allowed_hosts: Vec<String>,
    /// UDP/TCP addresses the plugin may connect or send to (`ip:port`).
    pub allowed_sockets: Vec<String>,
}

/// `[[plugin]]`: a tool plugin.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(try_from = "RawEntry")]
pub struct PluginConfig {
    pub name: String,
    /// Path of the `.wasm` component (relative to the manifest's directory).
    pub component: String,
    pub enabled: bool,
    pub grants: Grants,
}

/// `[[exporter]]`: a telemetry exporter plugin. Off unless `enabled = true`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(try_from = "RawEntry")]
pub struct ExporterConfig {
    pub name: String,
    pub component: String,
    pub enabled: bool,
    /// Handed to the exporter's `configure` as JSON.
    pub settings: toml::Table,
    pub grants: Grants,
}

/// One `[[plugin]]`/`[[exporter]]` table as written: grants sit inline
/// beside `name` (serde cannot combine `flatten` with `deny_unknown_fields`,
/// and a typo in a grant must be an error, not a silent default).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    name: String,
    component: String,
    enabled: Option<bool>,
    #[serde(default)]
    settings: Option<toml::Table>,
    memory_mb: Option<u64>,
    timeout_ms: Option<u64>,
    #[serde(default)]
    env: Vec<String>,
    #[serde(default)]
    dirs: Vec<String>,
    #[serde(default)]
    allowed_hosts: Vec<String>,
    #[serde(default)]
    allowed_sockets: Vec<String>,
}

impl RawEntry {
    fn grants(&self) -> Grants {
        Grants {
            memory_mb: self.memory_mb,
            timeout_ms: self.timeout_ms,
            env: self.env.clone(),
            dirs: self.dirs.clone(),
            allowed_hosts: self.allowed_hosts.clone(),
            allowed_sockets: self.allowed_sockets.clone(),
        }
    }
}

impl TryFrom<RawEntry> for PluginConfig {
    type Error = String;
    fn try_from(raw: RawEntry) -> Result<Self, String> {
        if raw.settings.is_some() {
            return Err(format!("plugin '{}': `settings` is only for [[exporter]] entries", raw.name));
        }
        Ok(PluginConfig { grants: raw.grants(), name: raw.name, component: raw.component, enabled: raw.enabled.unwrap_or(true) })
    }
}

impl TryFrom<RawEntry> for ExporterConfig {
    type Error = String;
    fn try_from(raw: RawEntry) -> Result<Self, String> {
        Ok(ExporterConfig {
            grants: raw.grants(),
            settings: raw.settings.clone().unwrap_or_default(),
            name: raw.name,
            component: raw.component,
            enabled: raw.enabled.unwrap_or(false),
        })
    }
}
