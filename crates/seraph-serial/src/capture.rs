//! A bounded record of the most recent bytes.

use std::collections::VecDeque;

/// Keeps the last `limit` bytes pushed into it and forgets older ones, so a
/// guest that prints forever costs at most `limit` bytes of memory.
#[derive(Debug, Clone, Default)]
pub struct CaptureRing {
    bytes: VecDeque<u8>,
    limit: usize,
}

impl CaptureRing {
    /// An empty ring that keeps at most `limit` bytes (0 keeps nothing).
    pub fn new(limit: usize) -> Self {
        Self {
            bytes: VecDeque::new(),
            limit,
        }
    }

    /// Appends `data`, dropping the oldest bytes beyond the limit.
    pub fn push(&mut self, data: &[u8]) {
        if data.len() >= self.limit {
            self.bytes.clear();
            let tail = data.len() - self.limit;
            self.bytes.extend(&data[tail..]);
            return;
        }
        let overflow = (self.bytes.len() + data.len()).saturating_sub(self.limit);
        self.bytes.drain(..overflow);
        self.bytes.extend(data);
    }

    /// The kept bytes, oldest first.
    pub fn to_vec(&self) -> Vec<u8> {
        let (a, b) = self.bytes.as_slices();
        [a, b].concat()
    }

    /// Number of bytes kept.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// True if nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The most bytes kept.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes of memory the ring holds allocated now.
    pub fn allocated(&self) -> usize {
        self.bytes.capacity()
    }

    /// Forgets everything kept.
    pub fn clear(&mut self) {
        self.bytes.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_most_recent_bytes() {
        let mut ring = CaptureRing::new(4);
        ring.push(b"ab");
        ring.push(b"cd");
        assert_eq!(ring.to_vec(), b"abcd");
        ring.push(b"e");
        assert_eq!(ring.to_vec(), b"bcde");
        ring.push(b"0123456789");
        assert_eq!(ring.to_vec(), b"6789");
        assert_eq!(ring.len(), 4);
        ring.clear();
        assert!(ring.is_empty());
    }

    #[test]
    fn zero_limit_keeps_nothing() {
        let mut ring = CaptureRing::new(0);
        ring.push(b"abc");
        ring.push(b"");
        assert!(ring.is_empty());
        assert_eq!(ring.limit(), 0);
    }

    #[test]
    fn memory_stays_bounded() {
        let mut ring = CaptureRing::new(1000);
        for i in 0..100_000u32 {
            ring.push(&i.to_le_bytes()[..1 + (i % 4) as usize]);
        }
        assert_eq!(ring.len(), 1000);
        assert!(ring.allocated() <= 2048, "{}", ring.allocated());
    }
}
