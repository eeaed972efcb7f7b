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
        /// Take `pattern` as a literal string, not a regex.
        pub fixed_strings: bool,
        /// Match regardless of case.
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
        /// 1-based line number within the (decompressed) file.
        pub line_number: u64,
        /// The line, without its newline.
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
        /// The matching line, without its newline.
        pub text: String,
        /// Lines before the match (`context_before`), oldest first.
        pub before: Vec<ContextLine>,
        /// Lines after the match (`context_after`), in file order.
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
        /// The matches returned inline (at most `max_results`).
        pub matches: Vec<SearchMatch>,
        /// Every match in the window, inline or in the overflow.
        pub total_matches: u64,
        /// Files the window selected and the search read.
        pub files_searched: u32,
        /// Files with at least one match.
        pub files_matched: u32,
        /// Bytes this call scanned (0 for a cache hit).
        pub bytes_scanned: u64,
        /// More matches exist than were returned inline.
        pub truncated: bool,
        /// The search stopped early (deadline or cancellation).
        pub partial: bool,
        /// Why the search stopped early, when `partial`.
        pub partial_reason: Option<String>,
        /// Time in the search core, in milliseconds (0 for a cache hit).
        pub duration_ms: u64,
        /// Present when `truncated`.
        pub overflow: Option<OverflowRef>,
        /// The answer came from the shared result cache.
        pub cached: bool,
        /// The effective window searched, RFC 3339, when any.
        pub window_start: Option<String>,
        /// End of the effective window, RFC 3339, when any.
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
        /// Service name, as searches name it.
        pub name: String,
        /// What the service's logs are, from the manifest.
        pub description: String,
        /// How its lines are read: `syslog`, `json`, `plain` or `auto`.
        pub format: String,
        /// Log files the service's globs select now (rotated and gzipped included).
        pub file_count: u32,
        /// Their total size on disk, in bytes.
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
        /// The matches of this page, in overflow order.
        pub matches: Vec<SearchMatch>,
        /// Index of the page's first match within the overflow.
        pub offset: u64,
        /// Matches in the whole overflow.
        pub total: u64,
        /// The page reaches the end of the overflow.
        pub eof: bool,
    }
}

record! { $ __follow_response: search = FollowResponse;
    /// A search answer and the cursor to go on from (`search.follow`).
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
    pub struct FollowResponse {
        /// The matches of this call.
        pub response: SearchResponse,
        /// Opaque: pass it back to get only what was appended since.
        pub cursor: String,
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
        /// What kind of failure.
        pub kind: SearchErrorKind,
        /// What went wrong and what to do, for the model.
        pub message: String,
        /// The argument at fault (`$.max_results`), when one is.
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
