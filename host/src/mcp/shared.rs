//! What the dispatcher and the request handlers share: the session's
//! state (`Shared`), one request as handed on (`Request`), the calls under
//! way (`Calls`) and the one way an answer leaves (`send`).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::{Map, Value};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::era::Era;
use super::schema::Catalog;
use super::writer::Outbox;
use super::ServerOptions;
use crate::call::ToolHost;

/// A call under way, found by its request id when the client cancels it.
pub(super) struct InFlight {
    pub(super) token: CancellationToken,
    pub(super) client_cancelled: Arc<AtomicBool>,
}

pub(super) struct Shared {
    pub(super) host: Arc<dyn ToolHost>,
    pub(super) opts: ServerOptions,
    pub(super) catalog: Catalog,
    pub(super) out: Arc<Outbox>,
    pub(super) inflight: Mutex<HashMap<String, InFlight>>,
    pub(super) permits: Arc<Semaphore>,
    pub(super) shutdown: CancellationToken,
}

/// One request as the dispatcher hands it on: what was asked and the era it
/// is served under. Handlers take this instead of its parts one by one.
pub(super) struct Request {
    pub(super) id: Value,
    pub(super) method: String,
    pub(super) params: Map<String, Value>,
    pub(super) era: Era,
    /// `traceparent` from `params._meta`, when sent.
    pub(super) traceparent: Option<String>,
}

/// The session's calls: the one the line just read started, and those
/// running as tasks of their own.
#[derive(Default)]
pub(super) struct Calls {
    pub(super) started: Option<Pin<Box<dyn Future<Output = bool> + Send>>>,
    pub(super) tasks: JoinSet<bool>,
}

pub(super) fn send(shared: &Shared, msg: Value) {
    // Written now when the writer takes it; a broken output drops it (and
    // was logged once).
    shared.out.send(msg.to_string());
}
