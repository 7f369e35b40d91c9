//! 256-bit vector bitmaps (IRR, ISR, TMR), stored as eight 32-bit registers.

/// One bit per interrupt vector.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct VectorBitmap([u32; 8]);

impl VectorBitmap {
    pub(crate) fn set(&mut self, vector: u8) {
        self.0[usize::from(vector >> 5)] |= 1 << (vector & 31);
    }

    pub(crate) fn clear(&mut self, vector: u8) {
        self.0[usize::from(vector >> 5)] &= !(1 << (vector & 31));
    }

    pub(crate) fn contains(&self, vector: u8) -> bool {
        self.0[usize::from(vector >> 5)] & (1 << (vector & 31)) != 0
    }

    /// The highest vector set.
    pub(crate) fn highest(&self) -> Option<u8> {
        self.0.iter().enumerate().rev().find_map(|(i, &word)| {
            (word != 0).then(|| (i as u32 * 32 + 31 - word.leading_zeros()) as u8)
        })
    }

    /// Register `index` (0-7): vectors 32*index .. 32*index+31.
    pub(crate) fn word(&self, index: usize) -> u32 {
        self.0.get(index).copied().unwrap_or(0)
    }
}
