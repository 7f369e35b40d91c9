//! The output queue and the I/O thread that drains it.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Bytes the queue holds at most; output beyond is dropped and counted.
pub const QUEUE_LIMIT: usize = 4 << 20;

/// Which sink a chunk goes to (an index into the sinks the queue was made with).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SinkId(pub usize);

#[derive(Default)]
struct Queue {
    chunks: VecDeque<(SinkId, Vec<u8>)>,
    bytes: usize,
    /// A chunk is being written (taken from the queue, not yet done).
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
    queue: Mutex<Queue>,
    /// Signalled when a chunk arrives or quit is set.
    more: Condvar,
    /// Signalled when the queue becomes empty and idle.
    drained: Condvar,
    dropped: AtomicU64,
    failures: Mutex<Vec<(SinkId, SinkFailure)>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A bounded queue of output chunks and the thread that writes them.
pub struct OutputQueue {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for OutputQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputQueue").finish_non_exhaustive()
    }
}

impl OutputQueue {
    /// Starts the I/O thread writing to `sinks` (indexed by [`SinkId`]).
    pub fn start(sinks: Vec<Box<dyn Write + Send>>) -> io::Result<Self> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            more: Condvar::new(),
            drained: Condvar::new(),
            dropped: AtomicU64::new(0),
            failures: Mutex::new(Vec::new()),
        });
        let theirs = shared.clone();
        let thread = std::thread::Builder::new()
            .name("seraph-v-io".into())
            .spawn(move || run(&theirs, sinks))?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
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
}

impl Drop for OutputQueue {
    fn drop(&mut self) {
        lock(&self.shared.queue).quit = true;
        self.shared.more.notify_all();
        // A thread blocked writing to a pipe nobody reads cannot be joined
        // without hanging: it is left to end with the process.
        if let Some(thread) = self.thread.take() {
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
    }
}

fn run(shared: &Shared, mut sinks: Vec<Box<dyn Write + Send>>) {
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
        let result = match sinks.get_mut(sink.0) {
            Some(out) => write_all_retrying(out.as_mut(), &chunk),
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
    /// Queues `data`; returns false if it was dropped (queue full).
    pub fn push(&self, data: &[u8]) -> bool {
        if data.is_empty() {
            return true;
        }
        let mut q = lock(&self.shared.queue);
        if q.bytes + data.len() > QUEUE_LIMIT {
            drop(q);
            self.shared
                .dropped
                .fetch_add(data.len() as u64, Ordering::Relaxed);
            return false;
        }
        q.bytes += data.len();
        q.chunks.push_back((self.sink, data.to_vec()));
        drop(q);
        self.shared.more.notify_one();
        true
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
mod tests {
    use super::*;

    /// A sink that blocks until released, then records.
    #[derive(Clone, Default)]
    struct Gate {
        open: Arc<(Mutex<bool>, Condvar)>,
        got: Arc<Mutex<Vec<u8>>>,
    }
    impl Write for Gate {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let mut open = lock(&self.open.0);
            while !*open {
                open = self.open.1.wait(open).unwrap();
            }
            lock(&self.got).extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    struct Full;
    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::other("no space"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stuck_sink_never_blocks_writers_and_drops_past_the_limit() {
        let gate = Gate::default();
        let q = OutputQueue::start(vec![Box::new(gate.clone()), Box::new(Full)]).unwrap();
        let mut w = q.writer(SinkId(0));
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..(QUEUE_LIMIT / chunk.len() + 8) {
            w.write_all(&chunk).unwrap();
        }
        assert!(q.stats().dropped > 0, "a full queue drops");
        assert!(
            !q.drain(Duration::from_millis(10)),
            "the stuck sink holds output"
        );
        *lock(&gate.open.0) = true;
        gate.open.1.notify_all();
        assert!(q.drain(Duration::from_secs(10)));
        let written = lock(&gate.got).len() as u64;
        assert_eq!(
            written + q.stats().dropped,
            (QUEUE_LIMIT / chunk.len() + 8) as u64 * 64 * 1024
        );
        q.writer(SinkId(1)).push(b"lost");
        assert!(q.drain(Duration::from_secs(10)));
        let stats = q.stats();
        let failure = stats.failure(SinkId(1)).unwrap();
        assert_eq!(failure.bytes, 4);
        assert_eq!(failure.last_error, "no space");
        assert!(stats.failure(SinkId(0)).is_none());
    }
}
