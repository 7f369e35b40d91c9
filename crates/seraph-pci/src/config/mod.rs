//! A type-0 PCI configuration space: identity, command/status, BARs with
//! the sizing protocol, interrupt pin/line and a capability list.

use crate::command;

/// Offsets of the standard header registers.
pub mod reg {
    /// Vendor id (16 bits).
    pub const VENDOR_ID: u16 = 0x00;
    /// Device id (16 bits).
    pub const DEVICE_ID: u16 = 0x02;
    /// Command register (16 bits).
    pub const COMMAND: u16 = 0x04;
    /// Status register (16 bits).
    pub const STATUS: u16 = 0x06;
    /// Revision id (8 bits).
    pub const REVISION: u16 = 0x08;
    /// Programming interface, subclass, class (bytes 0x09-0x0B).
    pub const CLASS_CODE: u16 = 0x09;
    /// Header type (8 bits).
    pub const HEADER_TYPE: u16 = 0x0E;
    /// First BAR (six dwords follow).
    pub const BAR0: u16 = 0x10;
    /// Subsystem vendor id (16 bits).
    pub const SUBSYSTEM_VENDOR_ID: u16 = 0x2C;
    /// Subsystem id (16 bits).
    pub const SUBSYSTEM_ID: u16 = 0x2E;
    /// Capabilities pointer (8 bits).
    pub const CAPABILITIES: u16 = 0x34;
    /// Interrupt line (8 bits, scratch for software).
    pub const INTERRUPT_LINE: u16 = 0x3C;
    /// Interrupt pin (8 bits, 1 = INTA#).
    pub const INTERRUPT_PIN: u16 = 0x3D;
}

/// Status register: the function has a capability list.
const STATUS_CAP_LIST: u16 = 1 << 4;
/// Status register: the function's INTx is asserted.
const STATUS_INTERRUPT: u16 = 1 << 3;
/// Size of a type-0 configuration space (without PCIe extended space).
pub const CONFIG_SIZE: usize = 256;
/// Number of BARs in a type-0 header.
pub const BAR_COUNT: usize = 6;

/// Who a function is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PciIds {
    /// Vendor id.
    pub vendor: u16,
    /// Device id.
    pub device: u16,
    /// Subsystem vendor id.
    pub subsystem_vendor: u16,
    /// Subsystem id.
    pub subsystem: u16,
    /// Revision id.
    pub revision: u8,
    /// Base class (e.g. 0x01 storage, 0x02 network).
    pub class: u8,
    /// Subclass.
    pub subclass: u8,
    /// Programming interface.
    pub prog_if: u8,
}

/// What kind of address space a BAR decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BarKind {
    /// Port I/O space.
    Io,
    /// 32-bit memory space.
    Memory32,
    /// 64-bit memory space (takes two BAR registers).
    Memory64,
}

/// A BAR a device implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarSpec {
    /// Address space.
    pub kind: BarKind,
    /// Size in bytes: a power of two, at least 16 (memory) or 4 (I/O).
    pub size: u64,
    /// Prefetchable memory.
    pub prefetchable: bool,
}

impl BarSpec {
    /// A 32-bit, non-prefetchable memory BAR of `size` bytes.
    pub fn memory32(size: u64) -> Self {
        Self {
            kind: BarKind::Memory32,
            size,
            prefetchable: false,
        }
    }

    /// A 64-bit, non-prefetchable memory BAR of `size` bytes.
    pub fn memory64(size: u64) -> Self {
        Self {
            kind: BarKind::Memory64,
            size,
            prefetchable: false,
        }
    }

    /// An I/O BAR of `size` ports.
    pub fn io(size: u64) -> Self {
        Self {
            kind: BarKind::Io,
            size,
            prefetchable: false,
        }
    }

    fn flag_bits(&self) -> u32 {
        match self.kind {
            BarKind::Io => 0x1,
            BarKind::Memory32 => u32::from(self.prefetchable) << 3,
            BarKind::Memory64 => 0x4 | u32::from(self.prefetchable) << 3,
        }
    }

    fn flag_mask(&self) -> u64 {
        match self.kind {
            BarKind::Io => 0x3,
            _ => 0xf,
        }
    }
}

/// An active BAR window: where a BAR decodes right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarWindow {
    /// BAR index (0-5; a 64-bit BAR is named by its low register).
    pub bar: usize,
    /// Address space.
    pub kind: BarKind,
    /// First address.
    pub base: u64,
    /// Length in bytes.
    pub size: u64,
}

/// Errors building a configuration space (a device model's own mistake).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// BAR index out of range, or a 64-bit BAR in slot 5.
    #[error("BAR {0} does not exist or cannot hold this kind")]
    BadBarIndex(usize),
    /// The BAR's size is not a power of two of at least the minimum.
    #[error("BAR size {0:#x} is not a power of two >= 16 (memory) or 4 (I/O)")]
    BadBarSize(u64),
    /// The BAR slot (or its upper half) is already used.
    #[error("BAR {0} is already defined")]
    BarInUse(usize),
    /// No room left for a capability.
    #[error("no room for a capability of {0} bytes")]
    NoRoom(usize),
}

/// A type-0 configuration space.
#[derive(Debug, Clone)]
pub struct ConfigSpace {
    bytes: [u8; CONFIG_SIZE],
    /// Bits the guest may write, per byte (outside BARs).
    writable: [u8; CONFIG_SIZE],
    /// Per BAR register: the BAR defined there; the upper register of a
    /// 64-bit BAR holds `None` and is marked in `upper_half`.
    bars: [Option<BarSpec>; BAR_COUNT],
    upper_half: [bool; BAR_COUNT],
    /// Where the next capability goes, and the last one's offset.
    next_cap: u16,
    last_cap: Option<u16>,
}

fn read_le(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .rev()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
}

impl ConfigSpace {
    /// A header for `ids` with no BARs, no interrupt pin and no capabilities.
    pub fn new(ids: PciIds) -> Self {
        let mut s = Self {
            bytes: [0; CONFIG_SIZE],
            writable: [0; CONFIG_SIZE],
            bars: [None; BAR_COUNT],
            upper_half: [false; BAR_COUNT],
            next_cap: 0x40,
            last_cap: None,
        };
        s.put16(reg::VENDOR_ID, ids.vendor);
        s.put16(reg::DEVICE_ID, ids.device);
        s.bytes[usize::from(reg::REVISION)] = ids.revision;
        s.bytes[usize::from(reg::CLASS_CODE)] = ids.prog_if;
        s.bytes[usize::from(reg::CLASS_CODE) + 1] = ids.subclass;
        s.bytes[usize::from(reg::CLASS_CODE) + 2] = ids.class;
        s.put16(reg::SUBSYSTEM_VENDOR_ID, ids.subsystem_vendor);
        s.put16(reg::SUBSYSTEM_ID, ids.subsystem);
        let cmd_mask =
            command::IO_SPACE | command::MEMORY_SPACE | command::BUS_MASTER | command::INTX_DISABLE;
        s.writable[usize::from(reg::COMMAND)] = cmd_mask as u8;
        s.writable[usize::from(reg::COMMAND) + 1] = (cmd_mask >> 8) as u8;
        s.writable[usize::from(reg::INTERRUPT_LINE)] = 0xff;
        s
    }

    fn put16(&mut self, offset: u16, value: u16) {
        let o = usize::from(offset);
        self.bytes[o..o + 2].copy_from_slice(&value.to_le_bytes());
    }

    fn get16(&self, offset: u16) -> u16 {
        let o = usize::from(offset);
        u16::from_le_bytes([self.bytes[o], self.bytes[o + 1]])
    }

    fn bar_register(&self, index: usize) -> u32 {
        let o = usize::from(reg::BAR0) + 4 * index;
        u32::from_le_bytes([
            self.bytes[o],
            self.bytes[o + 1],
            self.bytes[o + 2],
            self.bytes[o + 3],
        ])
    }

    fn set_bar_register(&mut self, index: usize, value: u32) {
        let o = usize::from(reg::BAR0) + 4 * index;
        self.bytes[o..o + 4].copy_from_slice(&value.to_le_bytes());
    }

    /// Defines BAR `index` (a 64-bit BAR also takes `index + 1`).
    pub fn add_bar(&mut self, index: usize, spec: BarSpec) -> Result<(), ConfigError> {
        let wide = spec.kind == BarKind::Memory64;
        let last = if wide { index + 1 } else { index };
        if last >= BAR_COUNT {
            return Err(ConfigError::BadBarIndex(index));
        }
        let min = if spec.kind == BarKind::Io { 4 } else { 16 };
        if !spec.size.is_power_of_two() || spec.size < min {
            return Err(ConfigError::BadBarSize(spec.size));
        }
        for i in index..=last {
            if self.bars[i].is_some() || self.upper_half[i] {
                return Err(ConfigError::BarInUse(i));
            }
        }
        self.bars[index] = Some(spec);
        self.set_bar_register(index, spec.flag_bits());
        if wide {
            self.upper_half[index + 1] = true;
            self.set_bar_register(index + 1, 0);
        }
        Ok(())
    }

    /// Sets the interrupt pin (1 = INTA# ... 4 = INTD#, 0 = none).
    pub fn set_interrupt_pin(&mut self, pin: u8) {
        self.bytes[usize::from(reg::INTERRUPT_PIN)] = pin;
    }

    /// Appends a capability with id `id` and `body` (the bytes after the id
    /// and next pointer); `writable` gives per body byte the bits the guest
    /// may write (shorter than `body`: the rest read-only). Returns the
    /// capability's offset.
    pub fn add_capability(
        &mut self,
        id: u8,
        body: &[u8],
        writable: &[u8],
    ) -> Result<u16, ConfigError> {
        let len = 2 + body.len();
        let start = usize::from(self.next_cap);
        let end = start + len;
        if end > CONFIG_SIZE {
            return Err(ConfigError::NoRoom(len));
        }
        self.bytes[start] = id;
        self.bytes[start + 1] = 0;
        self.bytes[start + 2..end].copy_from_slice(body);
        for (i, w) in writable.iter().take(body.len()).enumerate() {
            self.writable[start + 2 + i] = *w;
        }
        let offset = self.next_cap;
        match self.last_cap {
            Some(prev) => self.bytes[usize::from(prev) + 1] = offset as u8,
            None => {
                self.bytes[usize::from(reg::CAPABILITIES)] = offset as u8;
                let status = self.get16(reg::STATUS) | STATUS_CAP_LIST;
                self.put16(reg::STATUS, status);
            }
        }
        self.last_cap = Some(offset);
        // Capabilities are dword-aligned.
        self.next_cap = ((end + 3) & !3) as u16;
        Ok(offset)
    }

    /// Reads `data.len()` bytes at `offset`; bytes past the end read 0xFF.
    pub fn read(&self, offset: u16, data: &mut [u8]) {
        for (i, b) in data.iter_mut().enumerate() {
            let at = usize::from(offset) + i;
            *b = self.bytes.get(at).copied().unwrap_or(0xff);
        }
    }

    /// Reads a little-endian value of `len` (1, 2, 4) bytes at `offset`.
    pub fn read_value(&self, offset: u16, len: usize) -> u64 {
        let mut buf = [0u8; 8];
        let len = len.min(8);
        self.read(offset, &mut buf[..len]);
        read_le(&buf[..len])
    }

    /// Applies a guest write: read-only bits stay, BARs follow the sizing
    /// protocol. Returns the BARs whose address changed.
    pub fn write(&mut self, offset: u16, data: &[u8]) -> Vec<usize> {
        let before = self.bar_addresses();
        for (i, &b) in data.iter().enumerate() {
            let at = usize::from(offset) + i;
            if at >= CONFIG_SIZE {
                break;
            }
            let bar_lo = usize::from(reg::BAR0);
            if (bar_lo..bar_lo + 4 * BAR_COUNT).contains(&at) {
                self.write_bar_byte((at - bar_lo) / 4, (at - bar_lo) % 4, b);
            } else {
                let w = self.writable[at];
                self.bytes[at] = (self.bytes[at] & !w) | (b & w);
            }
        }
        let after = self.bar_addresses();
        (0..BAR_COUNT).filter(|&i| before[i] != after[i]).collect()
    }

    fn write_bar_byte(&mut self, index: usize, byte: usize, value: u8) {
        let mut reg = self.bar_register(index).to_le_bytes();
        reg[byte] = value;
        let raw = u32::from_le_bytes(reg);
        let new = if let Some(spec) = self.bars[index] {
            let mask = !(spec.size - 1) & !spec.flag_mask();
            (u64::from(raw) & mask) as u32 | spec.flag_bits()
        } else if self.upper_half[index] {
            let spec = index
                .checked_sub(1)
                .and_then(|lo| self.bars[lo])
                .map(|s| s.size)
                .unwrap_or(0);
            let mask = (!(spec.wrapping_sub(1))) >> 32;
            raw & mask as u32
        } else {
            0
        };
        self.set_bar_register(index, new);
    }

    /// The address each BAR register pair decodes (`None` for no BAR).
    fn bar_addresses(&self) -> [Option<u64>; BAR_COUNT] {
        let mut out = [None; BAR_COUNT];
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = self.bar_address(i);
        }
        out
    }

    /// The spec of BAR `index`, if the device defines one there.
    pub fn bar_spec(&self, index: usize) -> Option<BarSpec> {
        self.bars.get(index).copied().flatten()
    }

    /// The address BAR `index` is programmed with (whether or not decoding is on).
    pub fn bar_address(&self, index: usize) -> Option<u64> {
        let spec = self.bar_spec(index)?;
        let low = u64::from(self.bar_register(index)) & !spec.flag_mask();
        Some(match spec.kind {
            BarKind::Memory64 => low | u64::from(self.bar_register(index + 1)) << 32,
            _ => low,
        })
    }

    /// Programs BAR `index` with `address` (as firmware would before boot).
    pub fn set_bar_address(&mut self, index: usize, address: u64) {
        let Some(spec) = self.bar_spec(index) else {
            return;
        };
        let low = (address & !(spec.size - 1) & 0xffff_ffff & !spec.flag_mask()) as u32;
        self.set_bar_register(index, low | spec.flag_bits());
        if spec.kind == BarKind::Memory64 {
            self.set_bar_register(index + 1, (address >> 32) as u32);
        }
    }

    /// The command register.
    pub fn command(&self) -> u16 {
        self.get16(reg::COMMAND)
    }

    /// Sets the command register (as firmware would); read-only bits are kept out.
    pub fn set_command(&mut self, value: u16) {
        let o = reg::COMMAND;
        self.write(o, &value.to_le_bytes());
    }

    /// True if memory BARs decode.
    pub fn memory_enabled(&self) -> bool {
        self.command() & command::MEMORY_SPACE != 0
    }

    /// True if I/O BARs decode.
    pub fn io_enabled(&self) -> bool {
        self.command() & command::IO_SPACE != 0
    }

    /// True if the device may DMA (and write MSI messages).
    pub fn bus_master(&self) -> bool {
        self.command() & command::BUS_MASTER != 0
    }

    /// True if the guest disabled INTx.
    pub fn intx_disabled(&self) -> bool {
        self.command() & command::INTX_DISABLE != 0
    }

    /// Records whether the function's INTx is asserted (status bit 3).
    pub fn set_interrupt_status(&mut self, asserted: bool) {
        let s = self.get16(reg::STATUS) & !STATUS_INTERRUPT;
        self.put16(reg::STATUS, s | if asserted { STATUS_INTERRUPT } else { 0 });
    }

    /// The interrupt line register (what software wrote there).
    pub fn interrupt_line(&self) -> u8 {
        self.bytes[usize::from(reg::INTERRUPT_LINE)]
    }

    /// Sets the interrupt line register (as firmware would).
    pub fn set_interrupt_line(&mut self, line: u8) {
        self.bytes[usize::from(reg::INTERRUPT_LINE)] = line;
    }

    /// The interrupt pin (0 = none, 1 = INTA#).
    pub fn interrupt_pin(&self) -> u8 {
        self.bytes[usize::from(reg::INTERRUPT_PIN)]
    }

    /// Direct access to the raw bytes of a capability body a device owns
    /// (e.g. to read MSI-X control after a write), `len` bytes at `offset`.
    pub fn raw(&self, offset: u16, len: usize) -> &[u8] {
        let start = usize::from(offset).min(CONFIG_SIZE);
        let end = start.saturating_add(len).min(CONFIG_SIZE);
        &self.bytes[start..end]
    }

    /// Sets raw bytes (device-side updates of read-only fields).
    pub fn set_raw(&mut self, offset: u16, data: &[u8]) {
        for (i, &b) in data.iter().enumerate() {
            if let Some(slot) = self.bytes.get_mut(usize::from(offset) + i) {
                *slot = b;
            }
        }
    }

    /// The BAR windows that decode right now: programmed, non-zero, and
    /// enabled by the command register.
    pub fn active_windows(&self) -> Vec<BarWindow> {
        (0..BAR_COUNT)
            .filter_map(|bar| {
                let spec = self.bar_spec(bar)?;
                let base = self.bar_address(bar)?;
                let on = match spec.kind {
                    BarKind::Io => self.io_enabled(),
                    _ => self.memory_enabled(),
                };
                (on && base != 0).then_some(BarWindow {
                    bar,
                    kind: spec.kind,
                    base,
                    size: spec.size,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
