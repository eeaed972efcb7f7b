//! WIT interface `search`: the search core's request and answer. The host
//! also caches answers as JSON of these types.

use serde::{Deserialize, Serialize};

use crate::{choice, record};

record! { $ __search_request: search = SearchRequest;
    /// A search as asked. Exactly one time window field may be set, or none.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
    pub struct SearchRequest {
        /// Service name, as `list-services` names it.
        pub service: String,
        /// Rust regex syntax, or a literal when `fixed_strings`.
        pub pattern: String,
        pub fixed_strings: bool,
        pub case_insensitive: bool,
        /// Only lines stamped within the last N minutes.
        pub minutes_back: Option<u32>,
        /// Only lines stamped within the last N hours.
        pub hours_back: Option<u32>,
        /// `YYYY-MM-DD` in the service's timezone.
        pub date: Option<String>,
        /// RFC 3339, inclusive.
        pub since: Option<String>,
        /// RFC 3339, exclusive.
        pub until: Option<String>,
        /// Glob on file names within the service's paths.
        pub file_pattern: Option<String>,
        /// Overrides the service's format: `syslog`, `json`, `plain`, `auto`.
        pub log_format: Option<String>,
        /// Lines of context before and after each match.
        pub context: u32,
        /// Matches returned inline; the rest go to the overflow.
        pub max_results: u32,
    }
}

impl SearchRequest {
    /// A request for `pattern` (a Rust regex) in `service`, no time
    /// window, no context, up to 100 inline matches. Set the other fields
    /// directly.
    pub fn new(service: impl Into<String>, pattern: impl Into<String>) -> Self {
        SearchRequest { service: service.into(), pattern: pattern.into(), max_results: 100, ..Default::default() }
    }
}

record! { $ __context_line: search = ContextLine;
    /// A line around a match.
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    pub struct ContextLine {
        pub line_number: u64,
        pub text: String,
    }
}

record! { $ __search_match: search = SearchMatch;
    /// One matching line with its context.
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    pub struct SearchMatch {
        /// Path of the file, as configured (absolute).
        pub file: String,
        /// 1-based line number within the (decompressed) file.
        pub line_number: u64,
        /// RFC 3339, when known (for unstamped lines, the stamp of the entry
        /// they belong to).
        pub timestamp: Option<String>,
        pub text: String,
        pub before: Vec<ContextLine>,
        pub after: Vec<ContextLine>,
    }
}

record! { $ __overflow_ref: search = OverflowRef;
    /// Where the matches beyond `max_results` went.
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    pub struct OverflowRef {
        /// Opaque reference for `read-overflow`.
        pub reference: String,
        /// Matches in the overflow (all matches, in order).
        pub total: u64,
    }
}

record! { $ __search_response: search = SearchResponse;
    /// A search's answer.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
    pub struct SearchResponse {
        pub matches: Vec<SearchMatch>,
        pub total_matches: u64,
        pub files_searched: u32,
        pub files_matched: u32,
        pub bytes_scanned: u64,
        /// More matches exist than were returned inline.
        pub truncated: bool,
        /// The search stopped early (deadline or cancellation).
        pub partial: bool,
        pub partial_reason: Option<String>,
        pub duration_ms: u64,
        /// Present when `truncated`.
        pub overflow: Option<OverflowRef>,
        /// The answer came from the shared result cache.
        pub cached: bool,
        /// The effective window searched, RFC 3339, when any.
        pub window_start: Option<String>,
        pub window_end: Option<String>,
    }
}

impl SearchResponse {
    /// Present a stored answer as a cache hit: `cached`, and what this call
    /// really did: nothing scanned, no time in the search core (the stored
    /// answer carries its original scan's figures). Exact and narrowed hits
    /// alike.
    pub fn mark_cache_hit(&mut self) {
        self.cached = true;
        self.bytes_scanned = 0;
        self.duration_ms = 0;
    }
}

record! { $ __service_info: search = ServiceInfo;
    /// One configured service.
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    pub struct ServiceInfo {
        pub name: String,
        pub description: String,
        pub format: String,
        pub file_count: u32,
        pub total_bytes: u64,
        /// Earliest timestamp seen, RFC 3339, when known.
        pub earliest: Option<String>,
        /// Latest timestamp seen, RFC 3339, when known.
        pub latest: Option<String>,
    }
}

record! { $ __overflow_page: search = OverflowPage;
    /// A page of an overflow.
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    pub struct OverflowPage {
        pub matches: Vec<SearchMatch>,
        pub offset: u64,
        pub total: u64,
        /// The page reaches the end of the overflow.
        pub eof: bool,
    }
}

choice! { $ __search_error_kind: search = SearchErrorKind;
    /// Why a search could not run.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "kebab-case")]
    pub enum SearchErrorKind {
        /// Unknown service, bad regex, bad time window, bad glob.
        InvalidRequest,
        /// A path left the service's roots.
        Forbidden,
        /// The user's rate limit was hit.
        RateLimited,
        /// All permits were busy past the bounded wait.
        Busy,
        /// The overflow reference is unknown or not this session's.
        NotFound,
        /// The client cancelled the call.
        Cancelled,
        /// Anything else (I/O errors, ...).
        Internal,
    }
}

record! { $ __search_error: search = SearchError;
    /// Why a search could not run; `field` names the argument at fault.
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    pub struct SearchError {
        pub kind: SearchErrorKind,
        pub message: String,
        pub field: Option<String>,
    }
}

impl SearchError {
    /// An error of `kind` naming no argument.
    pub fn new(kind: SearchErrorKind, message: impl Into<String>) -> Self {
        SearchError { kind, message: message.into(), field: None }
    }
    /// A bad request, blaming argument `field`.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        SearchError { kind: SearchErrorKind::InvalidRequest, message: message.into(), field: Some(field.into()) }
    }
    /// A path outside the service's roots, through argument `field`.
    pub fn forbidden(field: &str, message: impl Into<String>) -> Self {
        SearchError { kind: SearchErrorKind::Forbidden, message: message.into(), field: Some(field.into()) }
    }
    /// Anything else.
    pub fn internal(message: impl Into<String>) -> Self {
        SearchError::new(SearchErrorKind::Internal, message)
    }
}

impl std::fmt::Display for SearchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SearchError {}
