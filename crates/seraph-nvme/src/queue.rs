//! Submission and completion queue state (the rings live in guest memory).

use crate::command::{CQE_SIZE, SQE_SIZE};

/// A submission queue: the guest writes entries and moves the tail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubQueue {
    /// Guest-physical base.
    pub base: u64,
    /// Entries.
    pub size: u32,
    /// Next entry the controller consumes.
    pub head: u32,
    /// One past the last entry the guest submitted.
    pub tail: u32,
    /// The completion queue its completions go to.
    pub cqid: u16,
}

impl SubQueue {
    /// An empty queue of `size` entries at `base`.
    pub fn new(base: u64, size: u32, cqid: u16) -> Self {
        Self {
            base,
            size,
            head: 0,
            tail: 0,
            cqid,
        }
    }

    /// True if no submitted entry is left.
    pub fn is_empty(&self) -> bool {
        self.head == self.tail
    }

    /// Address of the entry at the head.
    pub fn head_addr(&self) -> u64 {
        self.base + u64::from(self.head) * SQE_SIZE as u64
    }

    /// Consumes the head entry.
    pub fn advance(&mut self) {
        self.head = (self.head + 1) % self.size.max(1);
    }

    /// Submitted entries not yet consumed.
    pub fn outstanding(&self) -> u32 {
        (self.tail + self.size - self.head) % self.size.max(1)
    }
}

/// A completion queue: the controller writes entries, the guest moves the head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompQueue {
    /// Guest-physical base.
    pub base: u64,
    /// Entries.
    pub size: u32,
    /// Next entry the guest will consume (its last doorbell value).
    pub head: u32,
    /// Next entry the controller writes.
    pub tail: u32,
    /// Phase tag of entries written in the current pass.
    pub phase: bool,
    /// Interrupts enabled.
    pub interrupts: bool,
    /// MSI-X vector.
    pub vector: u16,
}

impl CompQueue {
    /// An empty queue of `size` entries at `base` (phase 1 first).
    pub fn new(base: u64, size: u32, interrupts: bool, vector: u16) -> Self {
        Self {
            base,
            size,
            head: 0,
            tail: 0,
            phase: true,
            interrupts,
            vector,
        }
    }

    /// True if posting one more entry would overwrite one the guest has not
    /// consumed.
    pub fn is_full(&self) -> bool {
        (self.tail + 1) % self.size.max(1) == self.head
    }

    /// True if entries were posted that the guest has not acknowledged.
    pub fn has_unread(&self) -> bool {
        self.head != self.tail
    }

    /// Address of the entry at the tail.
    pub fn tail_addr(&self) -> u64 {
        self.base + u64::from(self.tail) * CQE_SIZE as u64
    }

    /// Moves past the entry just written, flipping the phase on wrap.
    pub fn advance(&mut self) {
        self.tail += 1;
        if self.tail >= self.size {
            self.tail = 0;
            self.phase = !self.phase;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_queues_fill_and_flip_phase() {
        let mut cq = CompQueue::new(0x1000, 3, true, 0);
        assert!(!cq.is_full());
        cq.advance();
        cq.advance();
        assert!(cq.is_full(), "one slot stays free");
        assert_eq!(cq.tail_addr(), 0x1000 + 32);
        cq.advance();
        assert_eq!(cq.tail, 0);
        assert!(!cq.phase);
        cq.head = 2;
        assert!(cq.has_unread());
    }

    #[test]
    fn submission_queues_wrap() {
        let mut sq = SubQueue::new(0x2000, 4, 1);
        sq.tail = 1;
        assert_eq!(sq.outstanding(), 1);
        sq.head = 3;
        assert_eq!(sq.outstanding(), 2);
        sq.advance();
        assert_eq!(sq.head, 0);
        assert_eq!(sq.head_addr(), 0x2000);
    }
}
