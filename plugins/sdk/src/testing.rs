//! Native test doubles of every host import, for unit tests of tools
//! (compiled only off `wasm32`).
//!
//! Compiled natively, the SDK's host imports call these doubles instead of
//! the host, so a tool runs in `cargo test` exactly as written:
//!
//! - [`log`](crate::log) records are captured ([`TestHost::logs`]) and
//!   echoed to stderr (which `cargo test` shows for failing tests);
//! - [`progress`](crate::progress) reports are recorded ([`TestHost::progress`]);
//! - [`cancelled`](crate::cancelled) is false until [`TestHost::cancel`];
//! - [`search`](crate::search) and [`metrics`](crate::metrics) are answered
//!   by the fixtures the test gives ([`TestHost::on_search`], ...), and
//!   every request is recorded ([`TestHost::searches`]);
//! - [`fs`](crate::fs) and [`env`](crate::env) see only the grants the test
//!   gives ([`TestHost::dir`], [`TestHost::env`]), as in the sandbox.
//!
//! ```ignore
//! use logai_plugin_sdk::testing::TestHost;
//!
//! #[test]
//! fn greets() {
//!     let host = TestHost::new();
//!     let r = host.call::<Hello>(json!({"name": "Ada"})).unwrap();
//!     assert_eq!(TestHost::text(&r), "Hello, Ada!");
//!     assert!(host.logs().iter().any(|l| l.message.contains("Ada")));
//! }
//! ```
//!
//! A test host belongs to the test's thread (tests run in parallel, each on
//! its own thread) and is uninstalled when dropped. Without one, the
//! imports still work: logs go to stderr, progress is dropped, searches
//! fail saying no fixture was given, metrics are empty, and files and
//! variables are the process's own.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;

use serde_json::Value;

use crate::aggregate::{AggregateRequest, AggregateResponse};
use crate::log::Level;
use crate::metrics::Snapshot;
use crate::search::{FollowResponse, OverflowPage, SearchError, SearchErrorKind, SearchRequest, SearchResponse, ServiceInfo};
use crate::{CallContext, CallResult, ContentBlock, Context, Plugin, RawTool, SearchLimits, ToolError, ToolSpec};

type Fixture<A, R> = Box<dyn Fn(A) -> R>;
type SearchFixture = Box<dyn Fn(&SearchRequest) -> Result<SearchResponse, SearchError>>;
type FollowFixture = Fixture<(SearchRequest, Option<String>, u32), Result<FollowResponse, SearchError>>;
type OverflowFixture = Fixture<(String, u64, u32), Result<OverflowPage, SearchError>>;

/// One captured log record.
#[derive(Clone, Debug, PartialEq)]
pub struct LogRecord {
    /// Its level.
    pub level: Level,
    /// Its message.
    pub message: String,
}

/// One recorded progress report.
#[derive(Clone, Debug, PartialEq)]
pub struct ProgressReport {
    /// Progress so far.
    pub progress: f64,
    /// The total, when the tool gave one.
    pub total: Option<f64>,
    /// The status message, when the tool gave one.
    pub message: Option<String>,
}

#[derive(Default)]
struct State {
    logs: Vec<LogRecord>,
    progress: Vec<ProgressReport>,
    cancelled: bool,
    searches: Vec<SearchRequest>,
    search: Option<SearchFixture>,
    services: Option<Fixture<(), Result<Vec<ServiceInfo>, SearchError>>>,
    overflow: Option<OverflowFixture>,
    metrics: Option<Snapshot>,
    window: Option<Fixture<u32, Snapshot>>,
    windows_read: Vec<u32>,
    follow: Option<FollowFixture>,
    summarize: Option<Fixture<AggregateRequest, Result<AggregateResponse, SearchError>>>,
    summaries: Vec<AggregateRequest>,
    dirs: Vec<(String, PathBuf)>,
    env: HashMap<String, String>,
    limits: SearchLimits,
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<RefCell<State>>>> = const { RefCell::new(None) };
}

fn with_state<R>(f: impl FnOnce(Option<&mut State>) -> R) -> R {
    let state = CURRENT.with(|c| c.borrow().clone());
    match state {
        Some(s) => f(Some(&mut s.borrow_mut())),
        None => f(None),
    }
}

/// The host a native test gives its tools: fixtures in, records out.
/// Installed for the current thread by [`TestHost::new`]; dropped, it is
/// uninstalled.
pub struct TestHost {
    state: Rc<RefCell<State>>,
}

impl Default for TestHost {
    fn default() -> Self {
        TestHost::new()
    }
}

impl TestHost {
    /// A host with no fixtures and no grants (as a plugin's manifest entry
    /// that grants nothing), installed for this thread.
    pub fn new() -> Self {
        let state = Rc::new(RefCell::new(State::default()));
        CURRENT.with(|c| *c.borrow_mut() = Some(state.clone()));
        TestHost { state }
    }

    /// Answer `search::search` with `f` (called with each request).
    pub fn on_search(self, f: impl Fn(&SearchRequest) -> Result<SearchResponse, SearchError> + 'static) -> Self {
        self.state.borrow_mut().search = Some(Box::new(f));
        self
    }

    /// Answer `search::list_services` with these services.
    pub fn services(self, services: Vec<ServiceInfo>) -> Self {
        self.state.borrow_mut().services = Some(Box::new(move |()| Ok(services.clone())));
        self
    }

    /// Answer `search::read_overflow` with `f(reference, offset, limit)`.
    pub fn on_read_overflow(self, f: impl Fn(&str, u64, u32) -> Result<OverflowPage, SearchError> + 'static) -> Self {
        self.state.borrow_mut().overflow = Some(Box::new(move |(r, o, l)| f(&r, o, l)));
        self
    }

    /// Answer `search::follow` with `f(request, cursor, wait_ms)`.
    pub fn on_follow(self, f: impl Fn(&SearchRequest, Option<&str>, u32) -> Result<FollowResponse, SearchError> + 'static) -> Self {
        self.state.borrow_mut().follow = Some(Box::new(move |(r, c, w)| f(&r, c.as_deref(), w)));
        self
    }

    /// Answer `aggregate::summarize` with `f` (called with each request).
    pub fn on_summarize(self, f: impl Fn(&AggregateRequest) -> Result<AggregateResponse, SearchError> + 'static) -> Self {
        self.state.borrow_mut().summarize = Some(Box::new(move |r| f(&r)));
        self
    }

    /// The `aggregate::summarize` requests made so far.
    pub fn summaries(&self) -> Vec<AggregateRequest> {
        self.state.borrow().summaries.clone()
    }

    /// Answer `metrics::read` with this snapshot.
    pub fn metrics(self, snapshot: Snapshot) -> Self {
        self.state.borrow_mut().metrics = Some(snapshot);
        self
    }

    /// Answer `metrics::read_window(minutes)` with `f(minutes)`; the
    /// windows asked for are in [`TestHost::windows_read`].
    pub fn on_read_window(self, f: impl Fn(u32) -> Snapshot + 'static) -> Self {
        self.state.borrow_mut().window = Some(Box::new(f));
        self
    }

    /// The `minutes` of every `metrics::read_window` so far, in order.
    pub fn windows_read(&self) -> Vec<u32> {
        self.state.borrow().windows_read.clone()
    }

    /// Grant a read-only directory: the guest sees `host_dir` at `guest`
    /// (as `dirs = ["host_dir:guest"]` in the manifest). Once a directory
    /// is granted, [`fs`](crate::fs) refuses paths outside the grants.
    pub fn dir(self, guest: impl Into<String>, host_dir: impl Into<PathBuf>) -> Self {
        self.state.borrow_mut().dirs.push((guest.into(), host_dir.into()));
        self
    }

    /// Grant an environment variable with this value (as `env = ["NAME"]`
    /// with `NAME` set). Other variables are not visible to
    /// [`env`](crate::env) under a test host.
    pub fn env(self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.state.borrow_mut().env.insert(name.into(), value.into());
        self
    }

    /// The operator's search limits the calls and the tool list see.
    pub fn limits(self, limits: SearchLimits) -> Self {
        self.state.borrow_mut().limits = limits;
        self
    }

    /// Cancel: from now on [`cancelled`](crate::cancelled) is true.
    pub fn cancel(&self) {
        self.state.borrow_mut().cancelled = true;
    }

    /// The log records written so far.
    pub fn logs(&self) -> Vec<LogRecord> {
        self.state.borrow().logs.clone()
    }

    /// The progress reports so far.
    pub fn progress(&self) -> Vec<ProgressReport> {
        self.state.borrow().progress.clone()
    }

    /// The search requests made so far.
    pub fn searches(&self) -> Vec<SearchRequest> {
        self.state.borrow().searches.clone()
    }

    /// The call context calls get: request id `1`, session `test`, user
    /// `test@local`, a 10 s deadline and this host's limits.
    pub fn call_context(&self) -> CallContext {
        CallContext {
            request_id: "1".into(),
            session_id: "test".into(),
            user: "test@local".into(),
            protocol_version: "2025-06-18".into(),
            client: None,
            traceparent: None,
            deadline_ms: 10_000,
            limits: self.state.borrow().limits,
        }
    }

    /// Call tool `T` with `args` as the host would: arguments deserialized
    /// (a mismatch is `Err(ToolError::InvalidArguments)` naming the path),
    /// the tool run, its answer in the contract's terms.
    pub fn call<T: RawTool>(&self, args: Value) -> Result<CallResult, ToolError> {
        let spec = T::spec_for(&self.state.borrow().limits);
        let ctx = Context::new(spec.name, args, self.call_context());
        T::call(&ctx)
    }

    /// Call the tool named `name` of plugin `P` (`export_tools!(MyPlugin = ...)`
    /// names it) as the host would, through the same JSON text.
    pub fn call_plugin<P: Plugin>(&self, name: &str, args: Value) -> Result<CallResult, ToolError> {
        crate::__private::call::<P>(name.to_string(), args.to_string(), self.call_context())
    }

    /// Plugin `P`'s tool list, as the host would get it for this host's limits.
    pub fn list<P: Plugin>(&self) -> Vec<ToolSpec> {
        P::tools(&self.state.borrow().limits)
    }

    /// The text blocks of a result, joined by newlines.
    pub fn text(result: &CallResult) -> String {
        result
            .content
            .iter()
            .filter_map(|b| match b {
                ContentBlock::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The structured content of a result, parsed.
    pub fn structured(result: &CallResult) -> Option<Value> {
        result.structured_content.as_deref().and_then(|s| serde_json::from_str(s).ok())
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        CURRENT.with(|c| {
            let mut c = c.borrow_mut();
            if c.as_ref().is_some_and(|s| Rc::ptr_eq(s, &self.state)) {
                *c = None;
            }
        });
    }
}

/// A search error saying which fixture is missing.
fn no_fixture(what: &str) -> SearchError {
    SearchError {
        kind: SearchErrorKind::Internal,
        message: format!("no {what} fixture: give one with logai_plugin_sdk::testing::TestHost"),
        field: None,
    }
}

pub(crate) fn granted_dirs() -> Vec<(String, PathBuf)> {
    with_state(|s| s.map(|s| s.dirs.clone()).unwrap_or_default())
}

/// Whether grants are emulated (a test host is installed).
pub(crate) fn sandboxed() -> bool {
    with_state(|s| s.is_some())
}

pub(crate) fn env_var(name: &str) -> Option<String> {
    with_state(|s| match s {
        Some(s) => s.env.get(name).cloned(),
        None => std::env::var(name).ok(),
    })
}

/// The imports' native implementations, shaped like the generated
/// bindings' modules.
pub(crate) mod double {
    use super::*;

    pub mod log {
        use super::*;

        pub fn write(level: Level, message: &str) {
            eprintln!("[{level:?}] {message}");
            with_state(|s| {
                if let Some(s) = s {
                    s.logs.push(LogRecord { level, message: message.to_string() })
                }
            });
        }
    }

    pub mod progress {
        use super::*;

        pub fn report(progress: f64, total: Option<f64>, message: Option<&str>) {
            with_state(|s| {
                if let Some(s) = s {
                    s.progress.push(ProgressReport { progress, total, message: message.map(str::to_string) })
                }
            });
        }
    }

    pub mod cancelled {
        use super::*;

        pub fn is_cancelled() -> bool {
            with_state(|s| s.is_some_and(|s| s.cancelled))
        }
    }

    pub mod search {
        use super::*;

        pub fn search(request: &SearchRequest) -> Result<SearchResponse, SearchError> {
            // Take the fixture out while it runs, so it may itself log.
            let fixture = with_state(|s| {
                s.map(|s| {
                    s.searches.push(request.clone());
                    s.search.take()
                })
            })
            .flatten();
            let Some(f) = fixture else { return Err(no_fixture("search")) };
            let out = f(request);
            with_state(|s| {
                if let Some(s) = s {
                    s.search.get_or_insert(f);
                }
            });
            out
        }

        pub fn list_services() -> Result<Vec<ServiceInfo>, SearchError> {
            let fixture = with_state(|s| s.and_then(|s| s.services.take()));
            let Some(f) = fixture else { return Err(no_fixture("list_services")) };
            let out = f(());
            with_state(|s| {
                if let Some(s) = s {
                    s.services.get_or_insert(f);
                }
            });
            out
        }

        pub fn read_overflow(reference: &str, offset: u64, limit: u32) -> Result<OverflowPage, SearchError> {
            let fixture = with_state(|s| s.and_then(|s| s.overflow.take()));
            let Some(f) = fixture else { return Err(no_fixture("read_overflow")) };
            let out = f((reference.to_string(), offset, limit));
            with_state(|s| {
                if let Some(s) = s {
                    s.overflow.get_or_insert(f);
                }
            });
            out
        }

        pub fn follow(request: &SearchRequest, cursor: Option<&str>, wait_ms: u32) -> Result<FollowResponse, SearchError> {
            let fixture = with_state(|s| s.and_then(|s| s.follow.take()));
            let Some(f) = fixture else { return Err(no_fixture("follow")) };
            let out = f((request.clone(), cursor.map(str::to_string), wait_ms));
            with_state(|s| {
                if let Some(s) = s {
                    s.follow.get_or_insert(f);
                }
            });
            out
        }
    }

    pub mod aggregate {
        use super::*;

        pub fn summarize(request: &AggregateRequest) -> Result<AggregateResponse, SearchError> {
            let fixture = with_state(|s| {
                s.and_then(|s| {
                    s.summaries.push(request.clone());
                    s.summarize.take()
                })
            });
            let Some(f) = fixture else { return Err(no_fixture("summarize")) };
            let out = f(request.clone());
            with_state(|s| {
                if let Some(s) = s {
                    s.summarize.get_or_insert(f);
                }
            });
            out
        }
    }

    pub mod metrics {
        use super::*;

        pub fn read() -> Snapshot {
            with_state(|s| s.and_then(|s| s.metrics.clone())).unwrap_or_else(|| Snapshot {
                counters: Vec::new(),
                gauges: Vec::new(),
                histograms: Vec::new(),
                source: "none".into(),
            })
        }

        pub fn read_window(minutes: u32) -> Snapshot {
            let fixture = with_state(|s| {
                s.and_then(|s| {
                    s.windows_read.push(minutes);
                    s.window.take()
                })
            });
            let Some(f) = fixture else { return Snapshot { source: "none".into(), ..Snapshot::default() } };
            let out = f(minutes);
            with_state(|s| {
                if let Some(s) = s {
                    s.window.get_or_insert(f);
                }
            });
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{json, Error, Json, Tool};

    /// Searches and reports.
    #[derive(serde::Deserialize, schemars::JsonSchema)]
    struct Probe {
        service: String,
    }

    #[derive(serde::Serialize, schemars::JsonSchema)]
    struct Found {
        matches: u64,
    }

    impl Tool for Probe {
        const NAME: &'static str = "probe";
        type Output = Json<Found>;
        fn call(self, _ctx: &Context) -> Result<Json<Found>, Error> {
            crate::log::info(format!("probing {}", self.service));
            crate::progress::report(1.0, Some(2.0), Some("half"));
            let r = crate::search::search(&SearchRequest::new(self.service, "x")).map_err(|e| Error::failed(e.message))?;
            Ok(Json(Found { matches: r.total_matches }))
        }
    }

    fn response(total: u64) -> SearchResponse {
        SearchResponse {
            matches: vec![],
            total_matches: total,
            files_searched: 1,
            files_matched: 0,
            bytes_scanned: 0,
            truncated: false,
            partial: false,
            partial_reason: None,
            duration_ms: 0,
            overflow: None,
            cached: false,
            window_start: None,
            window_end: None,
        }
    }

    #[test]
    fn imports_are_answered_and_recorded() {
        let host = TestHost::new().on_search(|r| Ok(response(r.pattern.len() as u64 + 6)));
        let r = host.call::<Probe>(json!({"service": "payments"})).unwrap();
        assert_eq!(TestHost::structured(&r), Some(json!({"matches": 7})));
        assert_eq!(host.logs(), vec![LogRecord { level: Level::Info, message: "probing payments".into() }]);
        assert_eq!(host.progress(), vec![ProgressReport { progress: 1.0, total: Some(2.0), message: Some("half".into()) }]);
        assert_eq!(host.searches()[0].service, "payments");
        assert!(!crate::cancelled());
        host.cancel();
        assert!(crate::cancelled());
    }

    #[test]
    fn without_a_fixture_a_search_fails_and_logging_still_works() {
        let host = TestHost::new();
        let r = host.call::<Probe>(json!({"service": "a"})).unwrap();
        assert!(r.is_error);
        assert!(TestHost::text(&r).contains("no search fixture"), "{}", TestHost::text(&r));
        drop(host);
        crate::log::warn("no host installed: still fine");
        assert_eq!(crate::metrics::read().source, "none");
    }

    #[test]
    fn grants_are_emulated_and_denials_name_the_grant() {
        let dir = std::env::temp_dir().join(format!("logai-sdk-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("app.log"), "line\n").unwrap();
        let _host = TestHost::new().dir("/logs", &dir).env("TOKEN", "t");
        assert_eq!(crate::fs::read_to_string("/logs/app.log").unwrap(), "line\n");
        assert_eq!(crate::fs::read_dir("/logs").unwrap(), vec!["app.log".to_string()]);
        let e = crate::fs::read_to_string("/etc/passwd").unwrap_err();
        assert!(matches!(&e, crate::fs::Error::Denied(d) if d.grant() == r#"dirs = ["/etc"]"#), "{e}");
        let e = crate::fs::read_to_string("/logs/../etc/shadow").unwrap_err();
        assert!(e.to_string().contains(r#"add dirs = ["/etc"] to the plugin's [[plugin]] entry"#), "{e}");
        assert!(matches!(crate::fs::read("/logs/missing"), Err(crate::fs::Error::Io { .. })));
        assert_eq!(crate::env::var("TOKEN").unwrap(), "t");
        let d = crate::env::var("HOME").unwrap_err();
        assert_eq!(d.grant(), r#"env = ["HOME"]"#);
        let e: Error = d.into();
        assert!(matches!(e, Error::Failed(m) if m.contains("environment variable HOME")));
        std::fs::remove_dir_all(&dir).ok();
    }
}
