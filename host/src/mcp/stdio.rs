//! This process's stdin and stdout for [`super::serve_stdio`].
//!
//! tokio's `stdin()` and `stdout()` run every read and every write on the
//! blocking pool: a line in is a hand-off from a pool thread to the server's
//! task, an answer out a hand-off to another pool thread, and after a second
//! of idle each of those threads is parked and costs tens of microseconds to
//! wake. Here the session has a thread of its own that reads stdin itself,
//! blocking in `read(2)` as `cat` does ([`Input`]): the kernel wakes the
//! thread that reads, answers and writes. stdout, when it is a pipe or a
//! socket, is non-blocking and registered with the reactor ([`Output`]), so
//! an answer is written at once by whoever made it and only what a full pipe
//! cannot take waits (for a writer task); anything else (a terminal, a
//! file, `/dev/null`) keeps tokio's blocking-pool writer.
//!
//! Non-blocking mode belongs to the open file, which others may share (the
//! parent's terminal is never switched; a pipe normally has no other
//! holder): it is switched back when the session ends, and stdout stays
//! blocking when stderr is the same pipe (log lines must never meet EAGAIN).
//! stdin is never switched; when it shares its open file with stdout (one
//! socket for both), a read that would block waits in `poll(2)`.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::unix::pipe;
use tokio::net::UnixStream;

/// stdin, read with blocking reads on the session's thread. Its
/// `poll_read` never returns `Pending`: it waits in the kernel, so it must
/// only be polled on a thread of its own, never on a runtime worker.
pub(crate) struct Input {
    file: std::fs::File,
}

/// stdout: a pipe or socket on the reactor, or tokio's blocking-pool writer.
pub(crate) struct Output {
    kind: OutKind,
}

/// Puts stdout's open file back in blocking mode when dropped, if
/// [`Output::stdout`] switched it (dropped when the session ends: the
/// output itself may live a little longer, in a finished call's state).
pub(crate) struct Blocking {
    _restore: Option<Restore>,
}

enum OutKind {
    Pipe(pipe::Sender),
    Socket(UnixStream),
    Pool(tokio::io::Stdout),
}

impl Input {
    pub(crate) fn stdin() -> io::Result<Input> {
        Ok(Input { file: std::fs::File::from(io::stdin().as_fd().try_clone_to_owned()?) })
    }

    fn read_blocking(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::io::Read;
        loop {
            match self.file.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => wait_readable(self.file.as_fd())?,
                r => return r,
            }
        }
    }
}

/// Wait until `fd` can be read (or is at its end, or failed).
fn wait_readable(fd: BorrowedFd<'_>) -> io::Result<()> {
    let mut p = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd for a descriptor we hold open.
    if unsafe { libc::poll(&mut p, 1, -1) } < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(())
}

impl Output {
    /// Must be called on the runtime (registration needs its reactor).
    pub(crate) fn stdout() -> (Output, Blocking) {
        match reactor_stdout() {
            Ok(Some((kind, mode))) => (Output { kind }, Blocking { _restore: mode }),
            Ok(None) => (Output { kind: OutKind::Pool(tokio::io::stdout()) }, Blocking { _restore: None }),
            Err(e) => {
                tracing::debug!("stdout stays on the blocking pool: {e}");
                (Output { kind: OutKind::Pool(tokio::io::stdout()) }, Blocking { _restore: None })
            }
        }
    }

    /// Whether writes go straight to the descriptor (not to the blocking pool).
    pub(crate) fn on_reactor(&self) -> bool {
        !matches!(self.kind, OutKind::Pool(_))
    }
}

/// What fd 0 or fd 1 is, as far as waiting on it goes.
enum Kind {
    Pipe,
    Socket,
    Other,
}

fn kind_of(fd: BorrowedFd<'_>) -> io::Result<(Kind, (u64, u64))> {
    let md = std::fs::File::from(fd.try_clone_to_owned()?).metadata()?;
    let ft = md.file_type();
    let kind = if ft.is_fifo() {
        Kind::Pipe
    } else if ft.is_socket() {
        Kind::Socket
    } else {
        Kind::Other
    };
    Ok((kind, (md.dev(), md.ino())))
}

fn reactor_stdout() -> io::Result<Option<(OutKind, Option<Restore>)>> {
    let stdout = io::stdout();
    let fd = stdout.as_fd();
    let (kind, id) = kind_of(fd)?;
    if matches!(kind, Kind::Other) {
        return Ok(None);
    }
    if let Ok((_, stderr_id)) = kind_of(io::stderr().as_fd()) {
        if stderr_id == id {
            tracing::debug!("stderr is the same file as stdout; stdout stays blocking");
            return Ok(None);
        }
    }
    let owned = fd.try_clone_to_owned()?;
    let mode = Restore::make_nonblocking(fd)?;
    let kind = match kind {
        Kind::Pipe => OutKind::Pipe(pipe::Sender::from_owned_fd(owned)?),
        Kind::Socket => OutKind::Socket(UnixStream::from_std(std::os::unix::net::UnixStream::from(owned))?),
        Kind::Other => return Ok(None),
    };
    Ok(Some((kind, mode)))
}

/// Switches `O_NONBLOCK` back off when dropped, if it was off before.
struct Restore(OwnedFd);

impl Restore {
    /// Turns `O_NONBLOCK` on; `Some` when it was off (and must be put back).
    fn make_nonblocking(fd: BorrowedFd<'_>) -> io::Result<Option<Restore>> {
        let flags = get_flags(fd)?;
        if flags & libc::O_NONBLOCK != 0 {
            return Ok(None);
        }
        let keep = fd.try_clone_to_owned()?;
        set_flags(fd, flags | libc::O_NONBLOCK)?;
        Ok(Some(Restore(keep)))
    }
}

impl Drop for Restore {
    fn drop(&mut self) {
        let fd = self.0.as_fd();
        if let Ok(flags) = get_flags(fd) {
            let _ = set_flags(fd, flags & !libc::O_NONBLOCK);
        }
    }
}

fn get_flags(fd: BorrowedFd<'_>) -> io::Result<libc::c_int> {
    // SAFETY: F_GETFL on a descriptor we hold open; no pointers involved.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if flags < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(flags)
    }
}

fn set_flags(fd: BorrowedFd<'_>, flags: libc::c_int) -> io::Result<()> {
    // SAFETY: F_SETFL on a descriptor we hold open; no pointers involved.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags) } < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

impl AsyncRead for Input {
    fn poll_read(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let n = self.get_mut().read_blocking(buf.initialize_unfilled())?;
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Output {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().kind {
            OutKind::Pipe(p) => Pin::new(p).poll_write(cx, buf),
            OutKind::Socket(s) => Pin::new(s).poll_write(cx, buf),
            OutKind::Pool(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().kind {
            OutKind::Pipe(p) => Pin::new(p).poll_flush(cx),
            OutKind::Socket(s) => Pin::new(s).poll_flush(cx),
            OutKind::Pool(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Never half-close: stdout may be the same socket as stdin.
        self.poll_flush(cx)
    }
}
