//! What the VMM pushes to viewers besides pixels: console bytes and status.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

/// The run state the page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The guest runs.
    Running,
    /// The guest went idle (its HLT loop); the run goes on for the viewer.
    Idle,
    /// The guest exited with this status.
    Exited(i32),
}

impl Status {
    /// The status as the page's JSON message.
    pub(crate) fn to_json(self) -> String {
        match self {
            Status::Running => r#"{"t":"status","state":"running"}"#.to_owned(),
            Status::Idle => r#"{"t":"status","state":"idle"}"#.to_owned(),
            Status::Exited(code) => format!(r#"{{"t":"status","state":"exited","code":{code}}}"#),
        }
    }
}

#[derive(Debug)]
struct Inner {
    ring: VecDeque<u8>,
    capacity: usize,
    /// Bytes ever pushed (the stream position after the newest byte).
    total: u64,
    status: Status,
    status_version: u64,
}

/// The VMM's side of the viewers' console and status (cheap to clone; any thread).
///
/// Console bytes go into a bounded ring: a viewer that falls more than the
/// ring's capacity behind skips the oldest bytes, and a new viewer starts
/// with the ring's contents (the recent tail).
#[derive(Debug, Clone)]
pub struct DisplayFeed {
    inner: Arc<Mutex<Inner>>,
}

impl DisplayFeed {
    /// A feed whose console ring holds `capacity` bytes (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            inner: Arc::new(Mutex::new(Inner {
                ring: VecDeque::with_capacity(capacity),
                capacity,
                total: 0,
                status: Status::Running,
                status_version: 0,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends console output (COM1 or PRINT); never blocks on viewers.
    pub fn console(&self, bytes: &[u8]) {
        let mut inner = self.lock();
        let cap = inner.capacity;
        let keep = bytes.len().min(cap);
        let tail = bytes.get(bytes.len() - keep..).unwrap_or(&[]);
        let overflow = (inner.ring.len() + keep).saturating_sub(cap);
        let drop = overflow.min(inner.ring.len());
        inner.ring.drain(..drop);
        inner.ring.extend(tail.iter().copied());
        inner.total = inner.total.saturating_add(bytes.len() as u64);
    }

    /// Sets the status the page shows.
    pub fn set_status(&self, status: Status) {
        let mut inner = self.lock();
        if inner.status != status {
            inner.status = status;
            inner.status_version += 1;
        }
    }

    /// The current status.
    pub fn status(&self) -> Status {
        self.lock().status
    }

    /// The status and its version (bumped on every change).
    pub(crate) fn status_versioned(&self) -> (Status, u64) {
        let inner = self.lock();
        (inner.status, inner.status_version)
    }

    /// The stream position where a new viewer starts: the oldest byte kept.
    pub(crate) fn start_position(&self) -> u64 {
        let inner = self.lock();
        inner.total - inner.ring.len() as u64
    }

    /// Up to `max` bytes from stream position `from` on (skipping bytes the
    /// ring no longer holds); returns the bytes and the new position.
    pub(crate) fn read_from(&self, from: u64, max: usize) -> (Vec<u8>, u64) {
        let inner = self.lock();
        let oldest = inner.total - inner.ring.len() as u64;
        let from = from.clamp(oldest, inner.total);
        let skip = (from - oldest) as usize;
        let bytes: Vec<u8> = inner.ring.iter().skip(skip).take(max).copied().collect();
        let next = from + bytes.len() as u64;
        (bytes, next)
    }
}

/// Console output as a writer (e.g. a sink of the VMM's output queue):
/// every write is taken whole and never blocks.
impl std::io::Write for DisplayFeed {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.console(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_feed_is_a_writer() {
        use std::io::Write;
        let feed = DisplayFeed::new(64);
        let mut sink: Box<dyn Write + Send> = Box::new(feed.clone());
        assert!(sink.write_all(b"via Write\n").is_ok());
        assert!(sink.flush().is_ok());
        assert_eq!(feed.read_from(0, 100).0, b"via Write\n");
    }

    #[test]
    fn the_ring_keeps_the_tail_and_readers_skip_lost_bytes() {
        let feed = DisplayFeed::new(8);
        feed.console(b"hello ");
        let (b, pos) = feed.read_from(feed.start_position(), 100);
        assert_eq!(b, b"hello ");
        feed.console(b"world, again");
        // 18 bytes pushed, 8 kept: "d, again".
        assert_eq!(feed.start_position(), 10);
        let (b, pos2) = feed.read_from(pos, 3);
        assert_eq!(b, b"d, ");
        let (b, end) = feed.read_from(pos2, 100);
        assert_eq!(b, b"again");
        assert_eq!(end, 18);
        assert!(feed.read_from(end, 100).0.is_empty());
        feed.console(&[b'x'; 100]);
        assert_eq!(feed.read_from(0, 100).0, [b'x'; 8]);
    }

    #[test]
    fn status_versions_change_only_on_change() {
        let feed = DisplayFeed::new(1);
        let (s, v) = feed.status_versioned();
        assert_eq!(s, Status::Running);
        feed.set_status(Status::Running);
        assert_eq!(feed.status_versioned().1, v);
        feed.set_status(Status::Exited(-3));
        assert_eq!(feed.status(), Status::Exited(-3));
        assert_eq!(feed.status_versioned().1, v + 1);
        assert!(Status::Exited(-3).to_json().contains("-3"));
    }
}
