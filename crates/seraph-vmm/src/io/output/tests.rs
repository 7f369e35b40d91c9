//! The output queue: direct writes, the lazily started thread, the bound.

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

/// A sink that says "would block" after `room` bytes, until given more room.
#[derive(Clone, Default)]
struct Pipe {
    room: Arc<Mutex<usize>>,
    got: Arc<Mutex<Vec<u8>>>,
}
impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut room = lock(&self.room);
        if *room == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(*room);
        *room -= n;
        lock(&self.got).extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_sink_that_takes_everything_needs_no_thread() {
    let pipe = Pipe::default();
    *lock(&pipe.room) = 1 << 20;
    let q = OutputQueue::new(vec![Sink {
        out: Box::new(pipe.clone()),
        never_blocks: true,
    }]);
    let w = q.writer(SinkId(0));
    assert!(w.push(b"hello "));
    assert!(w.push(b"world\n"));
    assert_eq!(*lock(&pipe.got), b"hello world\n");
    assert!(!q.thread_started(), "no write would have blocked");
    assert!(q.drain(Duration::from_millis(1)));
}

#[test]
fn a_write_that_would_block_hands_over_to_the_thread_in_order() {
    let pipe = Pipe::default();
    *lock(&pipe.room) = 4;
    let q = OutputQueue::new(vec![Sink {
        out: Box::new(pipe.clone()),
        never_blocks: true,
    }]);
    let w = q.writer(SinkId(0));
    assert!(w.push(b"abcdef"));
    assert!(q.thread_started());
    assert!(
        w.push(b"gh"),
        "queued behind the rest, not written ahead of it"
    );
    assert_eq!(*lock(&pipe.got), b"abcd");
    *lock(&pipe.room) = 100;
    assert!(q.drain(Duration::from_secs(10)));
    assert_eq!(*lock(&pipe.got), b"abcdefgh");
    // Caught up: direct writes again.
    assert!(w.push(b"ij"));
    assert_eq!(*lock(&pipe.got), b"abcdefghij");
}

#[test]
fn many_small_writes_to_a_stuck_sink_merge_into_few_chunks() {
    let gate = Gate::default();
    let q = OutputQueue::start(vec![Box::new(gate.clone())]).unwrap();
    let w = q.writer(SinkId(0));
    // The first chunk may already be with the thread, stuck in the sink.
    for _ in 0..100_000 {
        w.push(b"\n");
    }
    let chunks = lock(&q.shared.queue).chunks.len();
    assert!(chunks <= 3, "{chunks} chunks for 100000 one-byte writes");
    *lock(&gate.open.0) = true;
    gate.open.1.notify_all();
    assert!(q.drain(Duration::from_secs(10)));
    assert_eq!(lock(&gate.got).len(), 100_000);
}
