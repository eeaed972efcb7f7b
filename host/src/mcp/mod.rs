//! The MCP server: newline-delimited JSON-RPC 2.0 over stdio, both protocol
//! eras on one stream.
//!
//! - **2025 era** (2025-11-25, 2025-06-18, 2025-03-26): `initialize` →
//!   `notifications/initialized`, `ping`, `tools/list`, `tools/call`,
//!   `notifications/cancelled`, `notifications/progress`.
//! - **2026-07-28** (stateless): `server/discover`, and every request carries
//!   `params._meta["io.modelcontextprotocol/protocolVersion"]` and
//!   `["io.modelcontextprotocol/clientCapabilities"]`; such a request is served
//!   on its own, with or without an earlier `initialize`, and every result
//!   carries `resultType` and the server's identity in
//!   `_meta["io.modelcontextprotocol/serverInfo"]`.
//!
//! This room knows nothing of Redis or wasmtime: tools are reached only
//! through [`ToolHost`]. See `docs/mcp.md` for the error codes and the
//! choices made where the spec leaves room.
//!
//! Wiring (`serve.rs`):
//! ```ignore
//! let opts = logai::mcp::ServerOptions::from_config(&config.server);
//! logai::mcp::serve_stdio(tool_host, opts).await?;
//! ```

mod era;
mod id_scan;
mod jsonrpc;
mod reader;
mod schema;
mod server;
mod shared;
mod stdio;
mod tool_result;
mod tools_call;
mod tools_list;
mod writer;

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncWrite};

use crate::call::ToolHost;

pub use reader::{Line, LineReader};

/// Legacy (initialize handshake) protocol versions, newest first.
pub const LEGACY_PROTOCOL_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26"];
/// Stateless (per-request `_meta`) protocol versions, newest first.
pub const MODERN_PROTOCOL_VERSIONS: &[&str] = &["2026-07-28"];

/// Default cap on one JSON-RPC message (one line): 8 MiB.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 8 * 1024 * 1024;

/// How the server presents itself and the bounds it works within.
#[derive(Clone)]
pub struct ServerOptions {
    /// `serverInfo.name`.
    pub name: String,
    /// `serverInfo.version`.
    pub version: String,
    /// `serverInfo.title`, when set.
    pub title: Option<String>,
    /// Returned by `initialize` and `server/discover`.
    pub instructions: Option<String>,
    /// Tools per `tools/list` page (at least 1).
    pub tools_page_size: usize,
    /// Tool calls running at once; more wait (they are not refused).
    pub max_concurrent_calls: usize,
    /// This process's session id (into every `CallScope`).
    pub session_id: String,
    /// `user@address` (into every `CallScope`).
    pub user: String,
    /// On end of input, while the client still reads stdout: how long calls
    /// already running get to finish and be answered before they are cancelled.
    pub shutdown_grace: Duration,
    /// Upper bound handed to tools as `CallScope::deadline` (plugins apply
    /// their own, usually shorter, `timeout_ms`).
    pub call_timeout: Duration,
    /// Longest accepted message line; longer lines get `-32600` and are discarded.
    pub max_message_bytes: usize,
    /// `ttlMs` cache hint on `server/discover` and 2026 `tools/list` results.
    pub cache_ttl: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            name: "logai".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            title: None,
            instructions: None,
            tools_page_size: 50,
            max_concurrent_calls: 16,
            session_id: crate::identity::session_id(),
            user: crate::identity::local_user(),
            shutdown_grace: Duration::from_secs(2),
            call_timeout: Duration::from_secs(300),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            cache_ttl: Duration::from_secs(300),
        }
    }
}

impl std::fmt::Debug for ServerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerOptions")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("tools_page_size", &self.tools_page_size)
            .field("max_concurrent_calls", &self.max_concurrent_calls)
            .field("session_id", &self.session_id)
            .field("user", &self.user)
            .field("shutdown_grace", &self.shutdown_grace)
            .finish_non_exhaustive()
    }
}

impl ServerOptions {
    /// Options from the manifest's `[server]` table; identity from the
    /// environment (see [`crate::identity`]).
    pub fn from_config(server: &crate::config::ServerConfig) -> Self {
        ServerOptions {
            name: server.name.clone(),
            instructions: server.instructions.clone(),
            tools_page_size: server.tools_page_size.max(1),
            max_concurrent_calls: server.max_concurrent_calls.max(1),
            shutdown_grace: Duration::from_millis(server.shutdown_grace_ms),
            ..ServerOptions::default()
        }
    }
}

/// Serve MCP on this process's stdin/stdout until stdin closes. Returns `Ok`
/// once the calls still running then have been answered (within
/// `shutdown_grace`, while stdout is open) or cancelled.
///
/// The session runs on a thread of its own that blocks in `read(2)` on
/// stdin, as `cat` does: the kernel wakes the thread that reads the line,
/// answers it (a `tools/call` too, until it first waits) and writes the
/// answer. On a worker it would wait in the reactor and be woken through
/// it; on the `block_on` thread each line came from a blocking-pool reader
/// and each answer went to a blocking-pool writer, a hand-off and a wake-up
/// each way. Calls that wait go on on the runtime's workers.
pub async fn serve_stdio(host: Arc<dyn ToolHost>, opts: ServerOptions) -> anyhow::Result<()> {
    let handle = tokio::runtime::Handle::current();
    let probe: writer::OutputProbe = Arc::new(writer::stdout_closed);
    if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
        // A current-thread runtime only runs while its own thread drives it:
        // no thread of ours may block in it, nor wait for it from outside.
        let stdin = tokio::io::BufReader::with_capacity(64 * 1024, tokio::io::stdin());
        return server::run(stdin, tokio::io::stdout(), host, opts, Some(probe)).await;
    }
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("logai-session".into())
        .spawn(move || {
            // Unconstrained: the session is this thread's only work and never
            // yields while it reads; under tokio's cooperative budget every
            // answer after the first 128 operations would look unwritable and
            // go to the writer task on a worker.
            let r = handle.block_on(tokio::task::unconstrained(async move {
                let input = stdio::Input::stdin().map_err(|e| anyhow::anyhow!("cannot read stdin: {e}"))?;
                let (output, blocking_again) = stdio::Output::stdout();
                tracing::debug!(stdout_on_reactor = output.on_reactor(), "serving stdio");
                let stdin = tokio::io::BufReader::with_capacity(64 * 1024, input);
                let r = server::run(stdin, output, host, opts, Some(probe)).await;
                drop(blocking_again);
                r
            }));
            let _ = done.send(r);
        })
        .map_err(|e| anyhow::anyhow!("cannot start the session thread: {e}"))?;
    result.await.map_err(|_| anyhow::anyhow!("the session thread ended without a result"))?
}

/// Serve MCP on any reader/writer pair (tests use an in-memory duplex).
pub async fn serve<R, W>(reader: R, writer: W, host: Arc<dyn ToolHost>, opts: ServerOptions) -> anyhow::Result<()>
where
    R: AsyncBufRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send + 'static,
{
    server::run(reader, writer, host, opts, None).await
}
