//! A writer thread behind a bounded queue: the card's transmit path (on
//! the vCPU thread) hands a frame over without ever blocking, and a peer
//! that does not keep up costs dropped frames, never vCPU time.

use std::io;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;

/// Frames waiting for the writer thread; more are refused ([`io::ErrorKind::WouldBlock`]).
pub const WRITER_QUEUE: usize = 256;

/// The sending half of a writer thread; dropping it stops the thread.
#[derive(Debug)]
pub struct QueuedWriter {
    queue: Option<SyncSender<Vec<u8>>>,
    thread: Option<JoinHandle<()>>,
}

impl QueuedWriter {
    /// Starts thread `name`, which passes each queued frame to `send`
    /// (which may block); at most `capacity` frames wait.
    pub fn spawn(
        name: &str,
        capacity: usize,
        mut send: impl FnMut(&[u8]) + Send + 'static,
    ) -> io::Result<Self> {
        let (queue, frames): (_, Receiver<Vec<u8>>) = sync_channel(capacity.max(1));
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                while let Ok(frame) = frames.recv() {
                    send(&frame);
                }
            })?;
        Ok(Self {
            queue: Some(queue),
            thread: Some(thread),
        })
    }

    /// Queues a copy of `frame` without blocking: `WouldBlock` if the
    /// queue is full, `BrokenPipe` if the thread is gone.
    pub fn push(&self, frame: &[u8]) -> io::Result<()> {
        let Some(queue) = &self.queue else {
            return Err(io::ErrorKind::BrokenPipe.into());
        };
        match queue.try_send(frame.to_vec()) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(io::ErrorKind::WouldBlock.into()),
            Err(TrySendError::Disconnected(_)) => Err(io::ErrorKind::BrokenPipe.into()),
        }
    }
}

impl Drop for QueuedWriter {
    fn drop(&mut self) {
        // Closing the queue ends the thread once it has sent what was queued.
        self.queue = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    #[test]
    fn a_stalled_sender_never_blocks_the_pusher() {
        // The "peer" never takes a frame until released.
        let (release, gate) = channel::<()>();
        let gate = Mutex::new(gate);
        let sent = Arc::new(Mutex::new(0usize));
        let counted = sent.clone();
        let writer = QueuedWriter::spawn("test-writer", 16, move |_| {
            let _ = gate.lock().unwrap().recv();
            *counted.lock().unwrap() += 1;
        })
        .unwrap();
        let start = Instant::now();
        let mut accepted = 0;
        let mut refused = 0;
        for _ in 0..10_000 {
            match writer.push(&[0u8; 1500]) {
                Ok(()) => accepted += 1,
                Err(e) => {
                    assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
                    refused += 1;
                }
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "pushes never wait"
        );
        // The queue plus the one frame the thread holds.
        assert!((16..=17).contains(&accepted), "accepted {accepted}");
        assert_eq!(accepted + refused, 10_000);
        for _ in 0..accepted {
            release.send(()).unwrap();
        }
        drop(writer);
        assert_eq!(*sent.lock().unwrap(), accepted, "queued frames are sent");
    }
}
