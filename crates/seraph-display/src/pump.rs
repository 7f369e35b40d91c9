//! The pump: polls the framebuffer's dirty state at most N times a second
//! and hands changed rectangles to every viewer's bounded queue.
//!
//! The pump never blocks on a viewer: a viewer whose queue is over budget
//! loses its queued updates and gets a full frame once it has sent what it
//! had. With no viewers the pump sleeps and touches nothing.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tungstenite::Bytes;

use crate::Shared;
use crate::frame::Shadow;

/// Messages a viewer may have waiting, whatever their size.
const MAX_QUEUED_MESSAGES: usize = 16;

#[derive(Debug, Default)]
struct QueueState {
    messages: VecDeque<Bytes>,
    bytes: usize,
    needs_full: bool,
}

/// One viewer's bounded queue of frame updates.
#[derive(Debug)]
pub(crate) struct ViewerQueue {
    state: Mutex<QueueState>,
    budget: usize,
}

impl ViewerQueue {
    pub(crate) fn new(budget: usize) -> Self {
        Self {
            state: Mutex::new(QueueState {
                needs_full: true,
                ..QueueState::default()
            }),
            budget,
        }
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next update to send, if any.
    pub(crate) fn pop(&self) -> Option<Bytes> {
        let mut s = self.lock();
        let m = s.messages.pop_front()?;
        s.bytes = s.bytes.saturating_sub(m.len());
        Some(m)
    }

    /// Offers a delta; false if the viewer fell behind now (its queue is
    /// emptied and it waits for a full frame). A viewer already waiting for
    /// a full frame skips deltas (true: nothing was lost, the full frame
    /// carries them).
    fn push_delta(&self, message: &Bytes) -> bool {
        let mut s = self.lock();
        if s.needs_full {
            return true;
        }
        if s.messages.len() >= MAX_QUEUED_MESSAGES || s.bytes + message.len() > self.budget {
            s.messages.clear();
            s.bytes = 0;
            s.needs_full = true;
            return false;
        }
        s.bytes += message.len();
        s.messages.push_back(message.clone());
        true
    }

    /// Whether the viewer waits for a full frame and has sent everything else.
    fn ready_for_full(&self) -> bool {
        let s = self.lock();
        s.needs_full && s.messages.is_empty()
    }

    fn push_full(&self, message: &Bytes) {
        let mut s = self.lock();
        if s.needs_full && s.messages.is_empty() {
            s.needs_full = false;
            s.bytes += message.len();
            s.messages.push_back(message.clone());
        }
    }

    fn force_full(&self) {
        let mut s = self.lock();
        s.messages.clear();
        s.bytes = 0;
        s.needs_full = true;
    }
}

/// The viewer list and the pump's wake-up.
#[derive(Debug, Default)]
pub(crate) struct PumpControl {
    viewers: Mutex<Vec<Arc<ViewerQueue>>>,
    wake: Condvar,
}

impl PumpControl {
    fn viewers(&self) -> MutexGuard<'_, Vec<Arc<ViewerQueue>>> {
        self.viewers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a viewer (it gets a full frame first) and wakes the pump.
    pub(crate) fn add(&self, viewer: Arc<ViewerQueue>) {
        self.viewers().push(viewer);
        self.wake.notify_all();
    }

    /// Removes a viewer.
    pub(crate) fn remove(&self, viewer: &Arc<ViewerQueue>) {
        self.viewers().retain(|v| !Arc::ptr_eq(v, viewer));
    }

    pub(crate) fn viewer_count(&self) -> usize {
        self.viewers().len()
    }

    /// Wakes the pump (shutdown).
    pub(crate) fn wake(&self) {
        let _guard = self.viewers();
        self.wake.notify_all();
    }
}

/// The pump thread's body.
pub(crate) fn run(shared: &Shared) {
    let rate = shared.config.max_updates_per_second.clamp(1, 1000);
    let interval = Duration::from_secs(1) / rate;
    let mut shadow = Shadow::default();
    let mut next = Instant::now();
    loop {
        // Sleep until the next tick, or until a viewer arrives when there is none.
        let viewers = {
            let mut list = shared.pump.viewers();
            loop {
                if shared.stopping() {
                    return;
                }
                let now = Instant::now();
                if list.is_empty() {
                    list = shared
                        .pump
                        .wake
                        .wait(list)
                        .unwrap_or_else(|p| p.into_inner());
                    next = Instant::now();
                } else if now < next {
                    list = shared
                        .pump
                        .wake
                        .wait_timeout(list, next - now)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                } else {
                    break list.clone();
                }
            }
        };
        next += interval;
        let now = Instant::now();
        if next < now {
            next = now;
        }
        tick(shared, &mut shadow, &viewers);
    }
}

fn tick(shared: &Shared, shadow: &mut Shadow, viewers: &[Arc<ViewerQueue>]) {
    let source = shared.source.as_ref();
    let geometry = source.geometry();
    if !geometry.is_valid() {
        return;
    }
    let mut built = 0u64;
    let mut dropped = 0u64;
    if shadow.geometry() != Some(geometry) {
        // First frame or a new mode: start over from a full read.
        let _ = source.take_dirty();
        shadow.refill(source, geometry);
        viewers.iter().for_each(|v| v.force_full());
    } else {
        let dirty = source.take_dirty();
        let rects = shadow.update(source, &dirty);
        if !rects.is_empty() {
            let message = Bytes::from(shadow.encode(&rects));
            built += 1;
            for v in viewers {
                if !v.push_delta(&message) {
                    dropped += 1;
                }
            }
        }
    }
    if viewers.iter().any(|v| v.ready_for_full()) {
        if let Some(full) = shadow.encode_full() {
            let full = Bytes::from(full);
            built += 1;
            viewers.iter().for_each(|v| v.push_full(&full));
        }
    }
    if built > 0 || dropped > 0 {
        let mut stats = shared.stats();
        stats.updates_built += built;
        stats.updates_dropped += dropped;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_and_asks_for_a_full_frame() {
        let q = ViewerQueue::new(100);
        let full = Bytes::from(vec![0u8; 10]);
        assert!(q.ready_for_full());
        q.push_full(&full);
        assert!(!q.ready_for_full());
        let delta = Bytes::from(vec![1u8; 40]);
        assert!(q.push_delta(&delta));
        assert!(q.push_delta(&delta));
        assert!(!q.push_delta(&delta), "over the byte budget");
        assert!(q.pop().is_none(), "queued deltas were discarded");
        assert!(q.push_delta(&delta));
        assert!(q.pop().is_none(), "no deltas until the full frame");
        assert!(q.ready_for_full());
        q.push_full(&full);
        assert_eq!(q.pop().map(|b| b.len()), Some(10));
    }
}
