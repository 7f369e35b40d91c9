//! A cursor over fuzz input: fixed-size little-endian reads that yield zero
//! once the input runs out, so every byte string decodes to something.

/// Reads numbers from the front of a byte string.
#[derive(Debug, Clone)]
pub(crate) struct Bytes<'a> {
    rest: &'a [u8],
}

impl<'a> Bytes<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self { rest: data }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Up to `n` bytes (fewer at the end of the input).
    pub(crate) fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.rest.len());
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        head
    }

    fn le<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let head = self.take(N);
        out[..head.len()].copy_from_slice(head);
        out
    }

    pub(crate) fn u8(&mut self) -> u8 {
        self.le::<1>()[0]
    }

    pub(crate) fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.le())
    }

    pub(crate) fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.le())
    }

    pub(crate) fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.le())
    }

    /// A clock step: mostly small (a few ns to ~65 ms), sometimes huge.
    pub(crate) fn duration_ns(&mut self) -> u64 {
        match self.u8() % 4 {
            0 => u64::from(self.u8()),
            1 => u64::from(self.u16()) * 1000,
            2 => u64::from(self.u32()),
            _ => self.u64(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_little_endian_and_pads_with_zero() {
        let mut b = Bytes::new(&[0x01, 0x02, 0x03]);
        assert_eq!(b.u16(), 0x0201);
        assert_eq!(b.u32(), 0x03);
        assert!(b.is_empty());
        assert_eq!(b.u64(), 0);
        assert_eq!(b.take(5), &[] as &[u8]);
    }
}
