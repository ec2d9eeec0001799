//! Where `dbhook serve` writes its log: stderr, a batch at a time.
//!
//! The server logs one line per admission review. Written straight to stderr, each line was a
//! `write` system call, and the two runtime workers queued on stderr's lock for it (a `futex`
//! call per review): together about a fifth of a review's CPU time, more than the policy
//! itself. Lines are appended to a buffer instead and a background thread writes what has
//! gathered every [`FLUSH_EVERY`], so under load one system call carries hundreds of lines. A
//! line reaches stderr at most that much later; the buffer is written at once when it holds
//! [`FLUSH_AT`] bytes, when the server stops, and before a panic message (so the lines before a
//! crash come before its report).

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, Once, PoisonError};
use std::time::Duration;

/// How often the background thread writes the buffered lines.
pub const FLUSH_EVERY: Duration = Duration::from_millis(50);

/// A buffer this full is written by the thread that filled it, which bounds the memory held.
pub const FLUSH_AT: usize = 256 * 1024;

/// Lines not yet written.
static PENDING: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// Held while a batch is taken and written, so batches reach stderr in the order of their lines.
static WRITING: Mutex<()> = Mutex::new(());

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves a buffer of complete lines: still fine to use.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The `tracing` writer: appends each formatted event to the buffer.
#[derive(Debug, Clone, Copy, Default)]
pub struct Buffered;

impl Write for Buffered {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let full = {
            let mut pending = lock(&PENDING);
            pending.extend_from_slice(buf);
            pending.len() >= FLUSH_AT
        };
        if full {
            flush_into(&mut io::stderr());
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        flush_into(&mut io::stderr());
        Ok(())
    }
}

/// Writes the buffered lines to `out`. Errors are dropped: there is nowhere left to report a
/// log that cannot be written.
fn flush_into(out: &mut dyn Write) {
    let _writing = lock(&WRITING);
    let batch = std::mem::take(&mut *lock(&PENDING));
    if !batch.is_empty() {
        let _ = out.write_all(&batch);
        let _ = out.flush();
    }
}

/// Writes whatever is buffered now.
pub fn flush() {
    flush_into(&mut io::stderr());
}

/// Whether the writer thread runs; until it does (or if it could not start) lines go straight
/// to stderr.
static BUFFERING: AtomicBool = AtomicBool::new(false);

/// Starts the thread that writes the buffer every [`FLUSH_EVERY`], and makes a panic write the
/// buffer before its message. Once per process; later calls do nothing.
pub fn start() {
    static STARTED: Once = Once::new();
    STARTED.call_once(|| {
        let spawned = std::thread::Builder::new().name("log-writer".into()).spawn(|| {
            loop {
                std::thread::sleep(FLUSH_EVERY);
                flush();
            }
        });
        if spawned.is_err() {
            return;
        }
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            flush();
            report(info);
        }));
        BUFFERING.store(true, Ordering::Release);
    });
}

/// The writer `tracing` asks for at each event.
pub enum LogWriter {
    Buffered(Buffered),
    Direct(io::Stderr),
}

pub fn make_writer() -> LogWriter {
    if BUFFERING.load(Ordering::Acquire) {
        LogWriter::Buffered(Buffered)
    } else {
        LogWriter::Direct(io::stderr())
    }
}

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            LogWriter::Buffered(w) => w.write(buf),
            LogWriter::Direct(w) => w.write(buf),
        }
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            LogWriter::Buffered(w) => w.write_all(buf),
            LogWriter::Direct(w) => w.write_all(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            LogWriter::Buffered(w) => w.flush(),
            LogWriter::Direct(w) => w.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_wait_in_the_buffer_and_come_out_whole_and_in_order() {
        let mut out = Vec::new();
        flush_into(&mut out);
        out.clear();
        let mut w = Buffered;
        w.write_all(b"first line\n").unwrap();
        w.write_all(b"second line\n").unwrap();
        assert!(lock(&PENDING).ends_with(b"first line\nsecond line\n"));
        flush_into(&mut out);
        assert!(
            out.ends_with(b"first line\nsecond line\n"),
            "{}",
            String::from_utf8_lossy(&out)
        );
        assert!(lock(&PENDING).is_empty());
        let mut again = Vec::new();
        flush_into(&mut again);
        assert!(again.is_empty(), "a flushed line is written once");
    }
}
