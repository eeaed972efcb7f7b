//! A guest's stderr: the last few KiB are kept (a Rust panic message lands
//! here just before the trap), older output is dropped, writes never fail.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use parking_lot::Mutex;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

const KEEP: usize = 8 * 1024;

#[derive(Clone, Debug, Default)]
pub(crate) struct StderrTail(Arc<Mutex<Vec<u8>>>);

impl StderrTail {
    /// What the guest wrote (its last [`KEEP`] bytes), lossily decoded.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock()).into_owned()
    }

    /// The last non-empty lines, joined, at most `max` characters (for error
    /// messages).
    pub fn last_lines(&self, lines: usize, max: usize) -> Option<String> {
        let text = self.text();
        let picked: Vec<&str> = text.lines().map(str::trim_end).filter(|l| !l.is_empty()).collect();
        if picked.is_empty() {
            return None;
        }
        let start = picked.len().saturating_sub(lines);
        let mut s = picked[start..].join(" | ");
        if s.chars().count() > max {
            s = s.chars().take(max).collect::<String>() + "…";
        }
        Some(s)
    }

    /// The message of the last Rust panic written to stderr, as
    /// `message (at file:line:col)`.
    pub fn panic_message(&self) -> Option<String> {
        let text = self.text();
        let lines: Vec<&str> = text.lines().collect();
        let i = lines.iter().rposition(|l| l.contains(" panicked at "))?;
        let at = lines[i].split(" panicked at ").nth(1).unwrap_or("").trim_end_matches(':').trim();
        let msg: Vec<&str> = lines[i + 1..]
            .iter()
            .take_while(|l| !l.starts_with("note: run with `RUST_BACKTRACE") && !l.starts_with("stack backtrace:"))
            .map(|l| l.trim_end())
            .collect();
        let mut msg = msg.join("\n").trim().to_string();
        if msg.chars().count() > 500 {
            msg = msg.chars().take(500).collect::<String>() + "…";
        }
        Some(if at.is_empty() { msg } else { format!("{msg} (at {at})") })
    }

    fn push(&self, bytes: &[u8]) {
        let mut buf = self.0.lock();
        if bytes.len() >= KEEP {
            buf.clear();
            buf.extend_from_slice(&bytes[bytes.len() - KEEP..]);
        } else {
            let overflow = (buf.len() + bytes.len()).saturating_sub(KEEP);
            if overflow > 0 {
                buf.drain(..overflow);
            }
            buf.extend_from_slice(bytes);
        }
    }
}

impl AsyncWrite for StderrTail {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for StderrTail {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for StderrTail {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_tail() {
        let t = StderrTail::default();
        t.push(b"first\n");
        t.push(&vec![b'x'; KEEP]);
        t.push(b"\nthread 'main' panicked at src/lib.rs:3:5:\nboom\n");
        assert_eq!(t.last_lines(2, 200).unwrap(), "thread 'main' panicked at src/lib.rs:3:5: | boom");
        assert!(!t.text().contains("first"));
        assert_eq!(t.panic_message().unwrap(), "boom (at src/lib.rs:3:5)");
        t.push(b"note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n");
        assert_eq!(t.panic_message().unwrap(), "boom (at src/lib.rs:3:5)");
    }
}
