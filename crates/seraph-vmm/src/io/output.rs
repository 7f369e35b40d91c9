//! The output queue and the I/O thread that drains it.
//!
//! A sink that cannot block (a regular file, or a pipe or terminal opened
//! non-blocking) is written directly by whoever pushes, as long as nothing
//! is queued for it: most runs never need the thread. The first write that
//! would block (a full pipe, a slow terminal) queues the rest and starts
//! the I/O thread, which writes the queue in order; pushes queue behind it
//! until it has caught up. The queue is bounded: past [`QUEUE_LIMIT`]
//! output is dropped and counted, never waited for.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Bytes the queue holds at most; output beyond is dropped and counted.
pub const QUEUE_LIMIT: usize = 4 << 20;

/// Queued writes for one sink are merged up to this size.
const MERGE_LIMIT: usize = 64 * 1024;

/// Which sink a chunk goes to (an index into the sinks the queue was made with).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SinkId(pub usize);

/// A place output goes.
pub struct Sink {
    /// The writer.
    pub out: Box<dyn Write + Send>,
    /// Writes never block (a regular file, or a non-blocking descriptor
    /// that says "would block" instead): the pusher may write it directly.
    pub never_blocks: bool,
}

impl Sink {
    /// A sink whose writes may block: always written by the I/O thread.
    pub fn blocking(out: Box<dyn Write + Send>) -> Self {
        Self {
            out,
            never_blocks: false,
        }
    }
}

#[derive(Default)]
struct Queue {
    chunks: VecDeque<(SinkId, Vec<u8>)>,
    bytes: usize,
    /// A chunk is being written by the thread (taken, not yet done).
    busy: bool,
    quit: bool,
}

/// Write errors on one sink.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinkFailure {
    /// Bytes the sink refused.
    pub bytes: u64,
    /// The last error, as text.
    pub last_error: String,
}

/// What happened to the output, for the run report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutputStats {
    /// Bytes dropped because the queue was full (the reader too slow).
    pub dropped: u64,
    /// Write errors per sink ([`SinkId`] index), for sinks that had any.
    pub failures: Vec<(SinkId, SinkFailure)>,
}

impl OutputStats {
    /// The failures of `sink`, if it had any.
    pub fn failure(&self, sink: SinkId) -> Option<&SinkFailure> {
        self.failures
            .iter()
            .find(|(s, _)| *s == sink)
            .map(|(_, f)| f)
    }
}

struct Shared {
    /// Lock order: `queue` before `sinks`, never the other way.
    queue: Mutex<Queue>,
    sinks: Mutex<Vec<Sink>>,
    /// Signalled when a chunk arrives or quit is set.
    more: Condvar,
    /// Signalled when the queue becomes empty and idle.
    drained: Condvar,
    dropped: AtomicU64,
    failures: Mutex<Vec<(SinkId, SinkFailure)>>,
    /// The I/O thread, once started.
    thread: Mutex<Option<JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A bounded queue of output chunks and the thread that writes them.
pub struct OutputQueue {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for OutputQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputQueue").finish_non_exhaustive()
    }
}

impl OutputQueue {
    /// A queue writing to `sinks` (indexed by [`SinkId`]); its I/O thread
    /// starts with the first write that would block.
    pub fn new(sinks: Vec<Sink>) -> Self {
        Self {
            shared: Arc::new(Shared {
                queue: Mutex::new(Queue::default()),
                sinks: Mutex::new(sinks),
                more: Condvar::new(),
                drained: Condvar::new(),
                dropped: AtomicU64::new(0),
                failures: Mutex::new(Vec::new()),
                thread: Mutex::new(None),
            }),
        }
    }

    /// A queue whose every sink may block, with its I/O thread started now.
    pub fn start(sinks: Vec<Box<dyn Write + Send>>) -> io::Result<Self> {
        let queue = Self::new(sinks.into_iter().map(Sink::blocking).collect());
        ensure_thread(&queue.shared)?;
        Ok(queue)
    }

    /// A writer that queues to `sink`.
    pub fn writer(&self, sink: SinkId) -> QueueWriter {
        QueueWriter {
            shared: self.shared.clone(),
            sink,
        }
    }

    /// Waits until everything queued is written, or `limit` passes (a
    /// reader that never reads must not hold the process). Returns true
    /// if the queue drained.
    pub fn drain(&self, limit: Duration) -> bool {
        let until = Instant::now() + limit;
        let mut q = lock(&self.shared.queue);
        loop {
            if q.chunks.is_empty() && !q.busy {
                return true;
            }
            let now = Instant::now();
            if now >= until {
                return false;
            }
            q = self
                .shared
                .drained
                .wait_timeout(q, until - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    /// What was dropped or failed so far.
    pub fn stats(&self) -> OutputStats {
        OutputStats {
            dropped: self.shared.dropped.load(Ordering::Relaxed),
            failures: lock(&self.shared.failures).clone(),
        }
    }

    /// True once the I/O thread was needed (a write would have blocked).
    pub fn thread_started(&self) -> bool {
        lock(&self.shared.thread).is_some()
    }
}

impl Drop for OutputQueue {
    fn drop(&mut self) {
        lock(&self.shared.queue).quit = true;
        self.shared.more.notify_all();
        // A thread blocked writing to a pipe nobody reads cannot be joined
        // without hanging: it is left to end with the process.
        if let Some(thread) = lock(&self.shared.thread).take() {
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
    }
}

/// Starts the I/O thread if it is not running.
fn ensure_thread(shared: &Arc<Shared>) -> io::Result<()> {
    let mut slot = lock(&shared.thread);
    if slot.is_none() {
        let theirs = shared.clone();
        *slot = Some(
            std::thread::Builder::new()
                .name("seraph-v-io".into())
                .spawn(move || run(&theirs))?,
        );
    }
    Ok(())
}

fn run(shared: &Shared) {
    loop {
        let (sink, chunk) = {
            let mut q = lock(&shared.queue);
            loop {
                if let Some(next) = q.chunks.pop_front() {
                    q.bytes -= next.1.len();
                    q.busy = true;
                    break next;
                }
                q.busy = false;
                shared.drained.notify_all();
                if q.quit {
                    return;
                }
                q = shared.more.wait(q).unwrap_or_else(|p| p.into_inner());
            }
        };
        let result = match lock(&shared.sinks).get_mut(sink.0) {
            Some(s) => write_all_retrying(s.out.as_mut(), &chunk),
            None => Err(io::Error::other("no such output")),
        };
        if let Err(e) = result {
            record_failure(shared, sink, chunk.len(), &e);
        }
    }
}

/// Adds a write error of `len` bytes to `sink`'s failures.
fn record_failure(shared: &Shared, sink: SinkId, len: usize, error: &io::Error) {
    let mut failures = lock(&shared.failures);
    let at = match failures.iter().position(|(s, _)| *s == sink) {
        Some(at) => at,
        None => {
            failures.push((sink, SinkFailure::default()));
            failures.len() - 1
        }
    };
    if let Some((_, entry)) = failures.get_mut(at) {
        entry.bytes += len as u64;
        entry.last_error = error.to_string();
    }
}

/// Writes all of `data`, waiting out a non-blocking sink's "would block".
fn write_all_retrying(out: &mut dyn Write, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        match out.write(data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = data.get(n..).unwrap_or_default(),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => return Err(e),
        }
    }
    out.flush()
}

/// Writes as much of `data` as `out` takes without blocking; returns the
/// bytes left (on "would block") or the error.
fn write_without_blocking<'d>(out: &mut dyn Write, mut data: &'d [u8]) -> io::Result<&'d [u8]> {
    while !data.is_empty() {
        match out.write(data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = data.get(n..).unwrap_or_default(),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(data),
            Err(e) => return Err(e),
        }
    }
    Ok(data)
}

/// Queues bytes for one sink; never blocks, never fails (a full queue
/// drops and counts).
#[derive(Clone)]
pub struct QueueWriter {
    shared: Arc<Shared>,
    sink: SinkId,
}

impl std::fmt::Debug for QueueWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueWriter")
            .field("sink", &self.sink)
            .finish()
    }
}

impl QueueWriter {
    /// Writes `data` at once if its sink cannot block and nothing is queued
    /// ahead of it, else queues it; returns false if it was dropped
    /// (queue full).
    pub fn push(&self, data: &[u8]) -> bool {
        if data.is_empty() {
            return true;
        }
        let mut q = lock(&self.shared.queue);
        let mut rest = data;
        if q.chunks.is_empty() && !q.busy {
            let mut sinks = lock(&self.shared.sinks);
            if let Some(sink) = sinks.get_mut(self.sink.0).filter(|s| s.never_blocks) {
                match write_without_blocking(sink.out.as_mut(), data) {
                    Ok([]) => {
                        let _ = sink.out.flush();
                        return true;
                    }
                    Ok(left) => rest = left,
                    Err(e) => {
                        drop(sinks);
                        record_failure(&self.shared, self.sink, data.len(), &e);
                        return true;
                    }
                }
            }
        }
        if q.bytes + rest.len() > QUEUE_LIMIT {
            drop(q);
            self.shared
                .dropped
                .fetch_add(rest.len() as u64, Ordering::Relaxed);
            return false;
        }
        q.bytes += rest.len();
        // Small writes (COM1 flushes at every newline) join the last queued
        // chunk for the same sink: memory stays near the payload, not one
        // allocation per line.
        match q.chunks.back_mut() {
            Some((sink, last)) if *sink == self.sink && last.len() + rest.len() <= MERGE_LIMIT => {
                last.extend_from_slice(rest);
            }
            _ => q.chunks.push_back((self.sink, rest.to_vec())),
        }
        drop(q);
        if ensure_thread(&self.shared).is_err() {
            // No thread can be had: write here rather than lose the output.
            self.write_queue_here();
        }
        self.shared.more.notify_one();
        true
    }

    /// Writes what the sinks take now on the calling thread (when no I/O
    /// thread can start), never waiting: what a full sink does not take
    /// stays queued (and is dropped past the limit).
    fn write_queue_here(&self) {
        let mut q = lock(&self.shared.queue);
        let mut sinks = lock(&self.shared.sinks);
        while let Some((sink, chunk)) = q.chunks.pop_front() {
            q.bytes -= chunk.len();
            let result = match sinks.get_mut(sink.0) {
                Some(s) if s.never_blocks => write_without_blocking(s.out.as_mut(), &chunk),
                // A sink that may block cannot be written from here.
                Some(_) => Ok(&chunk[..]),
                None => Err(io::Error::other("no such output")),
            };
            match result {
                Ok([]) => {}
                Ok(left) => {
                    q.bytes += left.len();
                    q.chunks.push_front((sink, left.to_vec()));
                    return;
                }
                Err(e) => record_failure(&self.shared, sink, chunk.len(), &e),
            }
        }
    }
}

impl Write for QueueWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.push(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
