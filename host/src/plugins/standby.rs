//! Standby instances: each plugin keeps instances made ahead of their
//! calls, made (and finished calls' stores dropped) on a thread of its own.

use std::sync::Arc;

use super::bindings::tool as tb;
use super::state::{PluginState, Watch};
use super::HostServices;

/// What standby needs from the plugin it serves: its [`Standby`] and a way
/// to make one fresh instance (the plugin runtime implements it; standby
/// knows nothing else of a plugin).
pub(super) trait Instances: Send + Sync + 'static {
    /// The plugin's standby state.
    fn standby(&self) -> &Standby;
    /// The plugin's name, for the log.
    fn name(&self) -> &str;
    /// Make one instance, bounded by the plugin's time limit.
    fn instantiate(&self, services: Arc<dyn HostServices>) -> impl std::future::Future<Output = Result<Ready, String>> + Send;
}

/// Instances kept ready per plugin: two, so back-to-back calls find one
/// while the last call's replacement is still being made.
pub(super) const STANDBY_DEPTH: usize = 2;

/// Instances kept ready for a large component (an interpreter, on the
/// on-demand engine): each holds the image pages its start-up touched, and
/// its calls take milliseconds, beside which the replacement's making is
/// short.
pub(super) const LARGE_STANDBY_DEPTH: usize = 1;

/// One instance made ahead of its call, so instantiation (store, WASI
/// context, the guest's start-up code) and tearing down the last call's
/// store (resetting its memory slot) are off the call's critical path.
/// Each instance still serves exactly one call and is never reused: a
/// standby has run no call, seen no arguments, and gets the call's scope
/// and deadline when taken. If making one fails (a guest whose start-up
/// traps or loops), standby is switched off for that plugin and calls
/// instantiate inline, where the failure is reported to the caller.
#[derive(Default)]
pub(super) struct Standby {
    /// Up to [`Standby::depth`] instances, each for one call.
    ready: parking_lot::Mutex<Vec<Ready>>,
    /// A large component's (on the on-demand engine).
    large: bool,
    /// Stores of finished calls, dropped by the background task.
    retired: parking_lot::Mutex<Vec<wasmtime::Store<PluginState>>>,
    busy: std::sync::atomic::AtomicBool,
    off: std::sync::atomic::AtomicBool,
}

pub(super) struct Ready {
    pub(super) store: wasmtime::Store<PluginState>,
    pub(super) bindings: tb::ToolPlugin,
    pub(super) watch: Watch,
}

impl Standby {
    /// Standby for a plugin on `engine`: [`STANDBY_DEPTH`] instances, or
    /// for a large component (on the on-demand engine) [`LARGE_STANDBY_DEPTH`],
    /// with its finished instances dropped right after their answers.
    pub(super) fn for_engine(engine: &wasmtime::Engine) -> Standby {
        let pooled = super::engine::shared().is_ok_and(|s| wasmtime::Engine::same(&s.engine, engine));
        Standby { large: !pooled, ..Standby::default() }
    }

    fn depth(&self) -> usize {
        if self.large {
            LARGE_STANDBY_DEPTH
        } else {
            STANDBY_DEPTH
        }
    }
}

impl Standby {
    /// An instance made ahead, if one is ready.
    ///
    /// (Nothing is made at load: start-up is on every session's critical
    /// path, and a plugin that is never called costs nothing. The first
    /// call instantiates on demand and starts the standby.)
    pub(super) fn take(&self) -> Option<Ready> {
        self.ready.lock().pop()
    }
}

/// Hand a finished call's store to the background task (which drops it and
/// makes the next standby instance; a large component's store is dropped
/// here, after the answer), starting that task unless it is already running.
pub(super) fn retire<P: Instances>(plugin: &Arc<P>, store: wasmtime::Store<PluginState>, services: Arc<dyn HostServices>) {
    use std::sync::atomic::Ordering;
    let standby = plugin.standby();
    if standby.large {
        // Its memory (the pages the call touched, several MiB) is
        // released by the drop: as soon as the answer is out, not when
        // the standby thread (busy making the next instance, or not
        // scheduled on a loaded machine) gets to it.
        crate::call::after_answer(move || drop(store));
    } else {
        standby.retired.lock().push(store);
    }
    if standby.busy.swap(true, Ordering::AcqRel) {
        return;
    }
    let plugin = plugin.clone();
    spawn_standby_work(async move {
        let standby = plugin.standby();
        loop {
            drop(std::mem::take(&mut *standby.retired.lock()));
            while !standby.off.load(Ordering::Relaxed) && standby.ready.lock().len() < standby.depth() {
                match plugin.instantiate(services.clone()).await {
                    Ok(ready) => standby.ready.lock().push(ready),
                    Err(why) => {
                        standby.off.store(true, Ordering::Relaxed);
                        tracing::debug!(plugin = %plugin.name(), "no standby instance ({why}); calls instantiate on demand");
                    }
                }
            }
            standby.busy.store(false, Ordering::Release);
            // A store retired after the drain above, while this task
            // still looked busy, would otherwise wait for the next call.
            if standby.retired.lock().is_empty() || standby.busy.swap(true, Ordering::AcqRel) {
                break;
            }
        }
    });
}

/// Run standby work (dropping finished stores, making the next instances)
/// on the standby thread, or on the current runtime if that thread could
/// not be started.
///
/// On the workers this work ran right after each call, on the worker that
/// had just written the answer and would read the next request: a request
/// arriving meanwhile waited for it (busy back-to-back calls paid it). On a
/// thread of its own it runs beside the session and a call never waits for
/// it: the call takes a standby made earlier (two are kept), or instantiates
/// inline when it finds none, as before. Handing the work over wakes that
/// thread (a system call), so it happens after the answer is written.
pub(super) fn spawn_standby_work(work: impl std::future::Future<Output = ()> + Send + 'static) {
    match standby_runtime() {
        Some(handle) => crate::call::after_answer(move || drop(handle.spawn(work))),
        None => drop(tokio::spawn(work)),
    }
}

/// The process's standby thread: a current-thread runtime (its own timers
/// bound instantiation) that lives as long as the process.
pub(super) fn standby_runtime() -> Option<&'static tokio::runtime::Handle> {
    static HANDLE: std::sync::OnceLock<Option<tokio::runtime::Handle>> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::channel();
            let started =
                std::thread::Builder::new().name("logai-standby".into()).spawn(move || match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => {
                        let _ = tx.send(Some(rt.handle().clone()));
                        rt.block_on(std::future::pending::<()>());
                    }
                    Err(e) => {
                        tracing::warn!("cannot start the standby runtime ({e}); standby instances are made on the workers");
                        let _ = tx.send(None);
                    }
                });
            match started {
                Ok(_) => rx.recv().ok().flatten(),
                Err(e) => {
                    tracing::warn!("cannot start the standby thread ({e}); standby instances are made on the workers");
                    None
                }
            }
        })
        .as_ref()
}
