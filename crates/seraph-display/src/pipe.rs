//! A bounded byte pipe from viewers' typing to a reader thread.
//!
//! The VMM's serial input thread reads a `Read` source into COM1's FIFO,
//! paced by the guest. [`serial_pipe`] gives it one: the
//! [`InputSink::serial_input`](crate::InputSink::serial_input)
//! implementation pushes into the [`SerialPipeWriter`] (never blocking;
//! bytes that do not fit are dropped and counted) and the input thread
//! reads the [`SerialPipeReader`], which blocks until bytes come and ends
//! (reads 0) once the writer is dropped.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

#[derive(Debug, Default)]
struct State {
    bytes: VecDeque<u8>,
    closed: bool,
    dropped: u64,
}

#[derive(Debug)]
struct Pipe {
    state: Mutex<State>,
    ready: Condvar,
    capacity: usize,
}

impl Pipe {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A pipe holding at most `capacity` bytes (at least 1).
pub fn serial_pipe(capacity: usize) -> (SerialPipeWriter, SerialPipeReader) {
    let pipe = Arc::new(Pipe {
        state: Mutex::new(State::default()),
        ready: Condvar::new(),
        capacity: capacity.max(1),
    });
    (
        SerialPipeWriter { pipe: pipe.clone() },
        SerialPipeReader { pipe },
    )
}

/// The writing end; dropping it ends the pipe.
#[derive(Debug)]
pub struct SerialPipeWriter {
    pipe: Arc<Pipe>,
}

impl SerialPipeWriter {
    /// Queues as much of `bytes` as fits; returns how many were taken.
    pub fn push(&self, bytes: &[u8]) -> usize {
        let mut s = self.pipe.lock();
        let room = self.pipe.capacity.saturating_sub(s.bytes.len());
        let taken = bytes.len().min(room);
        s.bytes.extend(bytes.iter().take(taken).copied());
        s.dropped = s.dropped.saturating_add((bytes.len() - taken) as u64);
        drop(s);
        if taken > 0 {
            self.pipe.ready.notify_all();
        }
        taken
    }

    /// Bytes dropped because the pipe was full.
    pub fn dropped(&self) -> u64 {
        self.pipe.lock().dropped
    }
}

impl Drop for SerialPipeWriter {
    fn drop(&mut self) {
        self.pipe.lock().closed = true;
        self.pipe.ready.notify_all();
    }
}

/// The reading end: blocks until bytes come; 0 once the writer is gone and
/// everything was read.
#[derive(Debug)]
pub struct SerialPipeReader {
    pipe: Arc<Pipe>,
}

impl Read for SerialPipeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut s = self.pipe.lock();
        while s.bytes.is_empty() && !s.closed {
            s = self.pipe.ready.wait(s).unwrap_or_else(|p| p.into_inner());
        }
        let n = buf.len().min(s.bytes.len());
        for (dst, src) in buf.iter_mut().zip(s.bytes.drain(..n)) {
            *dst = src;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_flow_overflow_drops_and_close_ends() {
        let (w, mut r) = serial_pipe(4);
        assert_eq!(w.push(b"abcdef"), 4);
        assert_eq!(w.dropped(), 2);
        let mut buf = [0u8; 8];
        assert_eq!(r.read(&mut buf).ok(), Some(4));
        assert_eq!(&buf[..4], b"abcd");
        let reader = std::thread::spawn(move || {
            let mut all = Vec::new();
            let _ = r.read_to_end(&mut all);
            all
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(w.push(b"xy"), 2);
        drop(w);
        assert_eq!(reader.join().ok(), Some(b"xy".to_vec()));
    }
}
