//! The output side of the stdio transport: every outgoing line in order,
//! written by the task that made it ([`Outbox`]), and [`OutputWatch`] tells
//! whether anyone still reads them (at end of input, calls are finished and
//! answered only while someone does).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::AsyncWrite;
use tokio::sync::Notify;
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

/// Every outgoing line, written by the task that produced it.
///
/// A line goes straight to the writer from [`Outbox::send`] when nothing is
/// queued before it: for stdio on the reactor that is one `write(2)` on the
/// thread that made the answer, with no hand-off to another task or thread
/// (each costs a wake-up, tens of microseconds after idle). Only when the
/// writer cannot take the bytes now (a full pipe: the client is not
/// reading; tokio's blocking-pool stdout busy with the last line) does the
/// rest wait in the queue for the writer task, which owns the writer from
/// then until the queue is empty again; lines sent meanwhile queue behind,
/// so order holds. Sending never waits, so a client that does not read
/// cannot stall the reader (the queue is unbounded, as the channel was).
pub(crate) struct Outbox {
    state: Mutex<OutState>,
    /// Wakes the writer task when a line is left to it.
    handed_off: Notify,
    watch: OutputWatch,
}

struct OutState {
    writer: Pin<Box<dyn AsyncWrite + Send>>,
    /// Lines (newline included) not yet written; the first may be partly written.
    queue: VecDeque<Vec<u8>>,
    /// Bytes of the first queued line already written.
    written: usize,
    /// The writer task owns the writer until the queue is empty and flushed.
    with_task: bool,
    broken: bool,
}

impl Outbox {
    pub(crate) fn new<W: AsyncWrite + Send + 'static>(writer: W, watch: OutputWatch) -> Arc<Outbox> {
        Arc::new(Outbox {
            state: Mutex::new(OutState { writer: Box::pin(writer), queue: VecDeque::new(), written: 0, with_task: false, broken: false }),
            handed_off: Notify::new(),
            watch,
        })
    }

    /// Queue one line (without its newline) and write what the writer takes
    /// now. Never waits.
    pub(crate) fn send(&self, line: String) {
        let mut bytes = line.into_bytes();
        bytes.push(b'\n');
        let mut st = self.state.lock();
        if st.broken {
            return;
        }
        st.queue.push_back(bytes);
        if st.with_task {
            return;
        }
        // A no-op waker: whatever is not taken now is the task's to wait for
        // (it polls again with its own waker).
        if st.drain(&mut Context::from_waker(Waker::noop()), &self.watch).is_pending() {
            st.with_task = true;
            drop(st);
            self.handed_off.notify_one();
        }
    }

    /// Write what is left to the task until `close`, then whatever is queued.
    pub(crate) async fn run(self: Arc<Self>, close: CancellationToken) {
        loop {
            let closing = tokio::select! {
                biased;
                _ = self.handed_off.notified() => false,
                _ = close.cancelled() => true,
            };
            std::future::poll_fn(|cx| {
                let mut st = self.state.lock();
                let done = st.drain(cx, &self.watch);
                if done.is_ready() {
                    st.with_task = false;
                }
                done
            })
            .await;
            if closing {
                return;
            }
        }
    }
}

impl OutState {
    /// Write queued lines in order, then flush; `Pending` once the writer
    /// cannot take more (after registering `cx`). A failed write drops the
    /// queue and all later output and marks the output gone.
    fn drain(&mut self, cx: &mut Context<'_>, watch: &OutputWatch) -> Poll<()> {
        if self.broken {
            return Poll::Ready(());
        }
        let failed = loop {
            let Some(line) = self.queue.front() else {
                match self.writer.as_mut().poll_flush(cx) {
                    Poll::Ready(Ok(())) => return Poll::Ready(()),
                    Poll::Ready(Err(e)) => break e,
                    Poll::Pending => return Poll::Pending,
                }
            };
            match self.writer.as_mut().poll_write(cx, &line[self.written..]) {
                Poll::Ready(Ok(0)) => break std::io::ErrorKind::WriteZero.into(),
                Poll::Ready(Ok(n)) => {
                    self.written += n;
                    if self.written == line.len() {
                        self.queue.pop_front();
                        self.written = 0;
                    }
                }
                Poll::Ready(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Poll::Ready(Err(e)) => break e,
                Poll::Pending => return Poll::Pending,
            }
        };
        tracing::warn!("writing to stdout failed; further output is dropped: {failed}");
        self.broken = true;
        self.queue.clear();
        watch.broken.cancel();
        Poll::Ready(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn a_line_is_written_by_send_itself() {
        let (w, mut r) = tokio::io::duplex(1024);
        let out = Outbox::new(w, OutputWatch::new(None));
        // No writer task runs: the bytes can only have come from `send`.
        out.send("{\"id\":1}".into());
        let mut buf = [0u8; 9];
        r.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"{\"id\":1}\n");
    }

    #[tokio::test]
    async fn lines_keep_their_order_when_the_client_does_not_read() {
        let (w, mut r) = tokio::io::duplex(64);
        let out = Outbox::new(w, OutputWatch::new(None));
        let close = CancellationToken::new();
        let task = tokio::spawn(out.clone().run(close.clone()));
        // 500 lines into a 64-byte pipe nobody reads yet: `send` never waits.
        let expected: String = (0..500).map(|i| format!("line {i}\n")).collect();
        for i in 0..500 {
            out.send(format!("line {i}"));
        }
        let reader = tokio::spawn(async move {
            let mut text = String::new();
            r.read_to_string(&mut text).await.unwrap();
            text
        });
        close.cancel();
        task.await.unwrap();
        drop(out); // the writer with it: the reader sees the end
        assert_eq!(reader.await.unwrap(), expected);
    }

    #[tokio::test]
    async fn a_failed_write_drops_later_lines_and_marks_the_output_gone() {
        let (w, r) = tokio::io::duplex(64);
        drop(r);
        let watch = OutputWatch::new(None);
        let out = Outbox::new(w, watch.clone());
        out.send("lost".into());
        assert!(watch.is_gone());
        out.send("also lost".into());
    }
}
