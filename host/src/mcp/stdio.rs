//! This process's stdin and stdout for [`super::serve_stdio`], on the
//! runtime's reactor when they are pipes or sockets.
//!
//! tokio's `stdin()` and `stdout()` run every read and every write on the
//! blocking pool: a line in is a hand-off from a pool thread to the server's
//! task, an answer out a hand-off to another pool thread, and after a second
//! of idle each of those threads is parked and costs tens of microseconds to
//! wake. What ssh and MCP clients give a server are pipes (or a socket), and
//! those can wait in epoll like any socket: in non-blocking mode and
//! registered with the reactor, the worker the kernel wakes for a line reads
//! it, answers it and writes the answer itself, as `cat` would. Anything
//! else (a terminal, a regular file, `/dev/null`) keeps tokio's types.
//!
//! Non-blocking mode belongs to the open file, which others may share (the
//! parent's terminal is never switched; a pipe normally has no other
//! holder): it is switched back when the session ends, and stdout stays
//! blocking when stderr is the same pipe (log lines must never meet EAGAIN).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::unix::pipe;
use tokio::net::UnixStream;

/// stdin: a pipe or socket on the reactor, or tokio's blocking-pool reader.
pub(crate) struct Input {
    kind: InKind,
    _mode: Option<Restore>,
}

enum InKind {
    Pipe(pipe::Receiver),
    Socket(UnixStream),
    Pool(tokio::io::Stdin),
}

/// stdout: a pipe or socket on the reactor, or tokio's blocking-pool writer.
pub(crate) struct Output {
    kind: OutKind,
    _mode: Option<Restore>,
}

enum OutKind {
    Pipe(pipe::Sender),
    Socket(UnixStream),
    Pool(tokio::io::Stdout),
}

impl Input {
    /// Must be called on the runtime (registration needs its reactor).
    pub(crate) fn stdin() -> Input {
        match reactor_stdin() {
            Ok(Some((kind, mode))) => Input { kind, _mode: mode },
            Ok(None) => Input { kind: InKind::Pool(tokio::io::stdin()), _mode: None },
            Err(e) => {
                tracing::debug!("stdin stays on the blocking pool: {e}");
                Input { kind: InKind::Pool(tokio::io::stdin()), _mode: None }
            }
        }
    }

    /// Whether reads wait in the reactor (not on the blocking pool).
    pub(crate) fn on_reactor(&self) -> bool {
        !matches!(self.kind, InKind::Pool(_))
    }
}

impl Output {
    /// Must be called on the runtime (registration needs its reactor).
    pub(crate) fn stdout() -> Output {
        match reactor_stdout() {
            Ok(Some((kind, mode))) => Output { kind, _mode: mode },
            Ok(None) => Output { kind: OutKind::Pool(tokio::io::stdout()), _mode: None },
            Err(e) => {
                tracing::debug!("stdout stays on the blocking pool: {e}");
                Output { kind: OutKind::Pool(tokio::io::stdout()), _mode: None }
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

fn reactor_stdin() -> io::Result<Option<(InKind, Option<Restore>)>> {
    let stdin = io::stdin();
    let fd = stdin.as_fd();
    let (kind, _) = kind_of(fd)?;
    if matches!(kind, Kind::Other) {
        return Ok(None);
    }
    let owned = fd.try_clone_to_owned()?;
    let mode = Restore::make_nonblocking(fd)?;
    let kind = match kind {
        Kind::Pipe => InKind::Pipe(pipe::Receiver::from_owned_fd(owned)?),
        Kind::Socket => InKind::Socket(UnixStream::from_std(std::os::unix::net::UnixStream::from(owned))?),
        Kind::Other => return Ok(None),
    };
    Ok(Some((kind, mode)))
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
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().kind {
            InKind::Pipe(p) => Pin::new(p).poll_read(cx, buf),
            InKind::Socket(s) => Pin::new(s).poll_read(cx, buf),
            InKind::Pool(s) => Pin::new(s).poll_read(cx, buf),
        }
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
