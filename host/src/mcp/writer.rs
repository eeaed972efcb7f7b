//! The output side of the stdio transport: one task writes every outgoing
//! line in order, and [`OutputWatch`] tells whether anyone still reads them
//! (at end of input, calls are finished and answered only while someone does).

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Whether the peer has closed our output (stdout) without our writing to it.
pub(crate) type OutputProbe = Arc<dyn Fn() -> bool + Send + Sync>;

/// How often [`OutputWatch::gone`] asks the probe. It only runs while calls
/// are finishing after end of input, never during a session.
const PROBE_EVERY: Duration = Duration::from_millis(20);

/// Whether the client still reads what the server writes.
#[derive(Clone)]
pub(crate) struct OutputWatch {
    /// Cancelled by the writer when a write or flush fails (EPIPE and the like).
    broken: CancellationToken,
    /// Asks the transport directly (stdout: `poll(2)`); absent for in-memory pipes.
    probe: Option<OutputProbe>,
}

impl OutputWatch {
    pub(crate) fn new(probe: Option<OutputProbe>) -> Self {
        OutputWatch { broken: CancellationToken::new(), probe }
    }

    pub(crate) fn is_gone(&self) -> bool {
        self.broken.is_cancelled() || self.probe.as_ref().is_some_and(|p| p())
    }

    /// Resolves once the output is gone.
    pub(crate) async fn gone(&self) {
        while !self.is_gone() {
            if self.probe.is_none() {
                return self.broken.cancelled().await;
            }
            tokio::select! {
                _ = self.broken.cancelled() => return,
                _ = tokio::time::sleep(PROBE_EVERY) => {}
            }
        }
    }
}

/// Writes queued lines in order; flushes when the queue is momentarily empty.
/// After `close`, writes what is queued and returns. A failed write marks the
/// output gone in `watch` and drops further output.
pub(crate) async fn write_loop<W: AsyncWrite + Unpin>(
    mut w: W,
    mut rx: mpsc::UnboundedReceiver<String>,
    close: CancellationToken,
    watch: OutputWatch,
) {
    let mut broken = false;
    async fn put<W: AsyncWrite + Unpin>(w: &mut W, line: &str, broken: &mut bool, watch: &OutputWatch) {
        if *broken {
            return;
        }
        let r = async {
            w.write_all(line.as_bytes()).await?;
            w.write_all(b"\n").await
        }
        .await;
        if let Err(e) = r {
            tracing::warn!("writing to stdout failed; further output is dropped: {e}");
            *broken = true;
            watch.broken.cancel();
        }
    }
    loop {
        let first = tokio::select! {
            biased;
            line = rx.recv() => match line { Some(l) => l, None => break },
            _ = close.cancelled() => {
                while let Ok(l) = rx.try_recv() {
                    put(&mut w, &l, &mut broken, &watch).await;
                }
                break;
            }
        };
        put(&mut w, &first, &mut broken, &watch).await;
        while let Ok(l) = rx.try_recv() {
            put(&mut w, &l, &mut broken, &watch).await;
        }
        if !broken {
            if let Err(e) = w.flush().await {
                tracing::warn!("flushing stdout failed; further output is dropped: {e}");
                broken = true;
                watch.broken.cancel();
            }
        }
    }
    if !broken {
        let _ = w.flush().await;
    }
}

/// Whether nobody reads this process's stdout any more: the reading end of
/// its pipe is closed (`POLLERR`) or its socket or terminal hung up
/// (`POLLHUP`). A regular file or `/dev/null` is never gone.
#[cfg(unix)]
pub(crate) fn stdout_closed() -> bool {
    let mut fd = libc::pollfd { fd: libc::STDOUT_FILENO, events: 0, revents: 0 };
    // SAFETY: one valid pollfd, zero timeout.
    let n = unsafe { libc::poll(&mut fd, 1, 0) };
    n > 0 && fd.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0
}

#[cfg(not(unix))]
pub(crate) fn stdout_closed() -> bool {
    false
}
