//! The search path: one search request answered, coordinated with every
//! other session. Knows nothing of MCP; reaches Redis only through
//! [`Coordinator`]; the search core does the reading.
//!
//! ```text
//! Lookup::answer(coord, scope, request)
//!   bounded        the request within the configured caps
//!   access         the session's person may search the service ([access]),
//!                  checked before anything reads a log or the cache
//!   rate limit     per user, system wide
//!   plan           validate, resolve the window, list files with their state
//!   cached         the exact key (covers every parameter and each file's
//!                  identity/size/mtime), else an answer to the same question
//!                  that covers this one, cut down to it (`search::cover`);
//!                  a miss claims the key (single flight: concurrent misses on
//!                  it wait for this search's answer, bounded)
//!   search         a permit (global + per service, leased), the search core
//!                  on a blocking thread, resumed from the request's tail when
//!                  the log only grew (`search::tail`)
//!   store          the answer, listed under its question; the next tail
//! ```
//!
//! `Lookup::follow` (the plugins' `search.follow`) takes the same steps
//! once per call; its first call (no cursor) is this search, when the
//! files end at line ends, and leaves a cursor; calls with a cursor read
//! only what was appended (`search::follow`), uncached, polling for up to
//! `wait_ms` with a permit only while a scan runs (see [`follow`]).
//!
//! Answers are cached with every match inline (a truncated answer's
//! overflow file belongs to the session that ran the search, so it is read
//! back first) and `max_results` is not in the key: a hit is cut to the
//! caller's `max_results`, the rest written to an overflow of the caller's
//! session, which it pages like any other. Every key is made in [`keys`].

use std::sync::Arc;
use std::time::Duration;

use crate::call::CallScope;
use crate::config::Config;
use crate::coord::{CacheClaim, Coordinator};
use crate::search::{SearchCore, SearchError, SearchErrorKind, SearchPlan, SearchRequest, SearchResponse};

mod access;
pub mod aggregate;
mod follow;
mod fresh;
pub mod keys;
mod shared;

pub use access::Grant;

use shared::Listing;

/// Answers searches for one session, through the shared cache and permits.
pub struct Lookup {
    core: Arc<SearchCore>,
    policy: Policy,
    grant: Grant,
}

/// The configured caps and switches the path applies.
struct Policy {
    cache_enabled: bool,
    search_timeout: Duration,
    max_results_cap: u32,
    max_context: u32,
    default_max_results: u32,
    global_limit: u32,
    /// Most matches an answer may have to be shared through the cache.
    max_shared_matches: u64,
}

impl Policy {
    fn from_config(config: &Config) -> Policy {
        Policy {
            cache_enabled: config.cache.enabled,
            search_timeout: Duration::from_millis(config.limits.search_timeout_ms),
            max_results_cap: config.limits.max_results_cap,
            max_context: config.limits.max_context_lines,
            default_max_results: config.limits.default_max_results,
            global_limit: config.limits.max_global_searches,
            // Stored compressed (LZ4): at 20 bytes a match at least, more
            // would exceed max_entry_kb anyway.
            max_shared_matches: config.cache.max_entry_kb * 1024 / 20,
        }
    }

    /// Bound what the agent asked for by the configured caps.
    fn bounded(&self, mut req: SearchRequest) -> Result<SearchRequest, SearchError> {
        if req.max_results == 0 {
            req.max_results = self.default_max_results;
        }
        if req.max_results > self.max_results_cap {
            return Err(SearchError::invalid(
                "max_results",
                format!("max_results = {} is over the cap of {} (limits.max_results_cap)", req.max_results, self.max_results_cap),
            ));
        }
        if req.context > self.max_context {
            return Err(SearchError::invalid(
                "context",
                format!("context = {} is over the cap of {} (limits.max_context_lines)", req.context, self.max_context),
            ));
        }
        Ok(req)
    }
}

impl Lookup {
    /// The search path for this session's person ([`crate::identity::person`]).
    pub fn new(config: &Config, core: Arc<SearchCore>) -> Lookup {
        Lookup::for_person(config, core, &crate::identity::person())
    }

    pub fn for_person(config: &Config, core: Arc<SearchCore>, person: &str) -> Lookup {
        Lookup { core, policy: Policy::from_config(config), grant: Grant::for_person(config, person) }
    }

    /// What this session's person may search.
    pub fn grant(&self) -> &Grant {
        &self.grant
    }

    /// Answer `req` for the call `scope`: from the cache when it can, else
    /// by searching under a permit (and caching what it found).
    pub async fn answer(&self, coord: &Coordinator, scope: &CallScope, req: SearchRequest) -> Result<SearchResponse, SearchError> {
        let req = self.policy.bounded(req)?;
        self.grant.check(&req.service)?;
        coord.check_rate(&scope.user).await.map_err(|e| SearchError::new(SearchErrorKind::RateLimited, e.to_string()))?;
        let plan = Arc::new(self.plan(req).await?);
        let key = keys::answer(&plan);
        Pending { lookup: self, coord, scope, plan, key, listing: None, claim: None }.answer().await
    }

    async fn plan(&self, req: SearchRequest) -> Result<SearchPlan, SearchError> {
        let core = self.core.clone();
        // Relative windows (`minutes_back`) resolve against `now` rounded up
        // to the next whole second, so the same question asked within that
        // second shares one cache key. Never stale: the key also covers each
        // file's size and mtime, so a grown log is a different key.
        let now = ceil_to_second(chrono::Utc::now());
        tokio::task::spawn_blocking(move || core.plan(&req, now))
            .await
            .map_err(|e| SearchError::internal(format!("search planning failed: {e}")))?
    }
}

/// One search on its way to an answer: its plan and what the cache said.
struct Pending<'a> {
    lookup: &'a Lookup,
    coord: &'a Coordinator,
    scope: &'a CallScope,
    plan: Arc<SearchPlan>,
    /// The answer's cache key ([`keys::answer`]).
    key: String,
    /// On a miss: the question this answers and what its answer will
    /// cover, to look for a covering answer and to list this one once
    /// stored (not made on a hit, nor without a cache).
    listing: Option<Listing>,
    /// Single flight: held while this search runs, so sessions missing on
    /// the same key wait for its answer; dropped once it is stored.
    claim: Option<CacheClaim>,
}

impl Pending<'_> {
    async fn answer(mut self) -> Result<SearchResponse, SearchError> {
        if self.lookup.policy.cache_enabled {
            if let Some(answer) = self.cached().await {
                return answer;
            }
        }
        self.search().await
    }
}

fn ceil_to_second(t: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    use chrono::{DurationRound, TimeDelta};
    let floor = t.duration_trunc(TimeDelta::seconds(1)).unwrap_or(t);
    if floor == t {
        t
    } else {
        floor + TimeDelta::seconds(1)
    }
}
