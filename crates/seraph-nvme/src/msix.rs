//! MSI-X: the capability in configuration space, the vector table and the
//! pending-bit array (both in BAR0 above the doorbells).

use std::sync::Arc;

use seraph_irq::{MsiMessage, MsiSink};
use seraph_pci::ConfigSpace;

/// MSI-X capability id.
pub const CAP_ID: u8 = 0x11;
/// Message Control: MSI-X enable.
const CTRL_ENABLE: u16 = 1 << 15;
/// Message Control: function mask.
const CTRL_MASK: u16 = 1 << 14;
/// Vector control: masked.
const VECTOR_MASKED: u32 = 1;

/// MSI-X state: table, pending bits and where the capability lives.
pub struct Msix {
    cap_offset: Option<u16>,
    table: Vec<[u32; 4]>,
    pending: Vec<bool>,
    sink: Arc<dyn MsiSink>,
}

impl std::fmt::Debug for Msix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Msix")
            .field("vectors", &self.table.len())
            .field("pending", &self.pending.iter().filter(|p| **p).count())
            .finish()
    }
}

impl Msix {
    /// Adds an MSI-X capability with `vectors` vectors whose table is at
    /// `table_offset` and PBA at `pba_offset` of BAR `bar`.
    pub fn new(
        config: &mut ConfigSpace,
        vectors: u16,
        bar: u8,
        table_offset: u32,
        pba_offset: u32,
        sink: Arc<dyn MsiSink>,
    ) -> Self {
        let ctrl = vectors.saturating_sub(1) & 0x7FF;
        let mut body = Vec::with_capacity(10);
        body.extend_from_slice(&ctrl.to_le_bytes());
        body.extend_from_slice(&(table_offset | u32::from(bar & 7)).to_le_bytes());
        body.extend_from_slice(&(pba_offset | u32::from(bar & 7)).to_le_bytes());
        // Only the enable and function-mask bits are writable.
        // No room for 12 bytes in a fresh header cannot happen; without the
        // capability the guest simply never sees MSI-X.
        let cap_offset = config.add_capability(CAP_ID, &body, &[0, 0xC0]).ok();
        let n = usize::from(vectors);
        Self {
            cap_offset,
            table: vec![[0, 0, 0, VECTOR_MASKED]; n],
            pending: vec![false; n],
            sink,
        }
    }

    fn control(config: &ConfigSpace, cap: Option<u16>) -> u16 {
        let Some(cap) = cap else {
            return 0;
        };
        let raw = config.raw(cap + 2, 2);
        match raw {
            [lo, hi] => u16::from_le_bytes([*lo, *hi]),
            _ => 0,
        }
    }

    /// True if the guest enabled MSI-X.
    pub fn enabled(&self, config: &ConfigSpace) -> bool {
        Self::control(config, self.cap_offset) & CTRL_ENABLE != 0
    }

    fn function_masked(&self, config: &ConfigSpace) -> bool {
        Self::control(config, self.cap_offset) & CTRL_MASK != 0
    }

    /// Signals `vector`, or records it pending while masked. Vectors past
    /// the table are dropped.
    pub fn notify(&mut self, config: &ConfigSpace, vector: u16) {
        let v = usize::from(vector);
        let Some(entry) = self.table.get(v).copied() else {
            return;
        };
        if !self.enabled(config) {
            return;
        }
        if self.function_masked(config) || entry[3] & VECTOR_MASKED != 0 || !config.bus_master() {
            if let Some(p) = self.pending.get_mut(v) {
                *p = true;
            }
            return;
        }
        self.sink.signal(MsiMessage {
            address: u64::from(entry[0]) | u64::from(entry[1]) << 32,
            data: entry[2],
        });
    }

    /// Delivers pending vectors that are no longer masked (after a change
    /// of the function mask, a vector's mask or bus mastering).
    pub fn deliver_unmasked(&mut self, config: &ConfigSpace) {
        if !self.enabled(config) || self.function_masked(config) || !config.bus_master() {
            return;
        }
        for v in 0..self.table.len() {
            let masked = self.table.get(v).is_none_or(|e| e[3] & VECTOR_MASKED != 0);
            if self.pending.get(v) == Some(&true) && !masked {
                if let Some(p) = self.pending.get_mut(v) {
                    *p = false;
                }
                self.notify(config, v as u16);
            }
        }
    }

    /// Reads a dword of the table at byte `offset` inside it.
    pub fn table_read(&self, offset: u64) -> u32 {
        let v = (offset / 16) as usize;
        let word = ((offset % 16) / 4) as usize;
        self.table
            .get(v)
            .and_then(|e| e.get(word))
            .copied()
            .unwrap_or(0)
    }

    /// Writes a dword of the table at byte `offset` inside it.
    pub fn table_write(&mut self, config: &ConfigSpace, offset: u64, value: u32) {
        let v = (offset / 16) as usize;
        let word = ((offset % 16) / 4) as usize;
        if let Some(slot) = self.table.get_mut(v).and_then(|e| e.get_mut(word)) {
            *slot = if word == 3 {
                value & VECTOR_MASKED
            } else {
                value
            };
        }
        if word == 3 {
            self.deliver_unmasked(config);
        }
    }

    /// Reads a dword of the pending-bit array at byte `offset` inside it.
    pub fn pba_read(&self, offset: u64) -> u32 {
        let first = (offset / 4 * 32) as usize;
        (0..32).fold(0u32, |acc, bit| {
            let set = self.pending.get(first + bit).copied().unwrap_or(false);
            acc | u32::from(set) << bit
        })
    }
}
