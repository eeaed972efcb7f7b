//! The search core's request and answer types. They mirror the WIT
//! `search` interface record for record (the plugin runtime converts), and
//! are serde types so the coordination cache can store answers as bytes.

use serde::{Deserialize, Serialize};

/// A search as asked. Exactly one time window field may be set, or none.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SearchRequest {
    pub service: String,
    pub pattern: String,
    pub fixed_strings: bool,
    pub case_insensitive: bool,
    pub minutes_back: Option<u32>,
    pub hours_back: Option<u32>,
    /// `YYYY-MM-DD` in the service's timezone.
    pub date: Option<String>,
    /// RFC 3339, inclusive.
    pub since: Option<String>,
    /// RFC 3339, exclusive.
    pub until: Option<String>,
    pub file_pattern: Option<String>,
    pub log_format: Option<String>,
    pub context: u32,
    pub max_results: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContextLine {
    pub line_number: u64,
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchMatch {
    pub file: String,
    pub line_number: u64,
    /// RFC 3339, when known.
    pub timestamp: Option<String>,
    pub text: String,
    pub before: Vec<ContextLine>,
    pub after: Vec<ContextLine>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OverflowRef {
    pub reference: String,
    pub total: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SearchResponse {
    pub matches: Vec<SearchMatch>,
    pub total_matches: u64,
    pub files_searched: u32,
    pub files_matched: u32,
    pub bytes_scanned: u64,
    pub truncated: bool,
    pub partial: bool,
    pub partial_reason: Option<String>,
    pub duration_ms: u64,
    pub overflow: Option<OverflowRef>,
    pub cached: bool,
    pub window_start: Option<String>,
    pub window_end: Option<String>,
}

impl SearchResponse {
    /// Present a stored answer as a cache hit: `cached`, and what this call
    /// really did: nothing scanned, no time in the search core (the stored
    /// answer carries its original scan's figures). Exact and narrowed hits
    /// alike (`SearchPlan::narrow` builds its answer this way).
    pub fn mark_cache_hit(&mut self) {
        self.cached = true;
        self.bytes_scanned = 0;
        self.duration_ms = 0;
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceInfo {
    pub name: String,
    pub description: String,
    pub format: String,
    pub file_count: u32,
    pub total_bytes: u64,
    pub earliest: Option<String>,
    pub latest: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OverflowPage {
    pub matches: Vec<SearchMatch>,
    pub offset: u64,
    pub total: u64,
    pub eof: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SearchErrorKind {
    InvalidRequest,
    Forbidden,
    RateLimited,
    Busy,
    NotFound,
    Cancelled,
    Internal,
}

/// Why a search could not run; `field` names the argument at fault.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct SearchError {
    pub kind: SearchErrorKind,
    pub message: String,
    pub field: Option<String>,
}

impl SearchError {
    pub fn new(kind: SearchErrorKind, message: impl Into<String>) -> Self {
        SearchError { kind, message: message.into(), field: None }
    }
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        SearchError { kind: SearchErrorKind::InvalidRequest, message: message.into(), field: Some(field.into()) }
    }
    pub fn forbidden(field: &str, message: impl Into<String>) -> Self {
        SearchError { kind: SearchErrorKind::Forbidden, message: message.into(), field: Some(field.into()) }
    }
    pub fn internal(message: impl Into<String>) -> Self {
        SearchError::new(SearchErrorKind::Internal, message)
    }
}
