//! xAPIC local APIC for Seraph-V.
//!
//! [`Lapic`] is a pure state machine over the 4 KiB register page at
//! 0xFEE0_0000 (bus offsets 0..0x1000) and the IA32_APIC_BASE MSR. A
//! [`Clock`] drives the timer. The VMM asks [`Lapic::pending_vector`] before
//! each guest entry, calls [`Lapic::acknowledge`] when it injects the
//! vector, asks [`Lapic::next_deadline_ns`] when the vCPU halts, and uses
//! [`Lapic::accepts_pic_interrupts`] to decide whether 8259 vectors reach
//! the CPU.
//!
//! What is modelled: one processor's xAPIC (no x2APIC, no TSC-deadline
//! timer, no relocation of the page), fixed-delivery self-IPIs, edge
//! triggered interrupts only (TMR stays 0). See `docs/devices.md`.

#![forbid(unsafe_code)]

mod bitmap;
pub mod spec;
mod timer;

#[cfg(test)]
mod tests;

use seraph_bus::{BusDevice, fill_le, le_value};
use seraph_clock::Clock;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bitmap::VectorBitmap;
use spec::*;
use timer::Timer;

/// Errors from IA32_APIC_BASE writes; the VMM answers each with #GP(0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ApicError {
    /// Bits that are reserved (0-7, 9, 52-63) were set.
    #[error("IA32_APIC_BASE write {value:#x} sets reserved bits")]
    ReservedBits {
        /// The value written.
        value: u64,
    },
    /// The x2APIC enable bit (10) was set; x2APIC is not offered.
    #[error("IA32_APIC_BASE write {value:#x} enables x2APIC, which is not offered")]
    X2ApicUnsupported {
        /// The value written.
        value: u64,
    },
    /// The page was moved away from 0xFEE0_0000; relocation is not supported.
    #[error("IA32_APIC_BASE write moves the APIC page to {base:#x}; only 0xfee00000 is supported")]
    Relocation {
        /// The base address asked for.
        base: u64,
    },
}

/// Index of each LVT entry in [`Lapic::lvt`].
#[derive(Debug, Clone, Copy)]
enum Lvt {
    Timer = 0,
    Thermal = 1,
    Perf = 2,
    Lint0 = 3,
    Lint1 = 4,
    Error = 5,
}

impl Lvt {
    fn from_register(reg: u32) -> Option<(Self, u32)> {
        Some(match reg {
            REG_LVT_TIMER => (Self::Timer, LVT_TIMER_WRITABLE),
            REG_LVT_THERMAL => (Self::Thermal, LVT_THERMAL_PERF_WRITABLE),
            REG_LVT_PERF => (Self::Perf, LVT_THERMAL_PERF_WRITABLE),
            REG_LVT_LINT0 => (Self::Lint0, LVT_LINT_WRITABLE),
            REG_LVT_LINT1 => (Self::Lint1, LVT_LINT_WRITABLE),
            REG_LVT_ERROR => (Self::Error, LVT_ERROR_WRITABLE),
            _ => return None,
        })
    }
}

/// One processor's local APIC in xAPIC mode.
#[derive(Debug)]
pub struct Lapic<C> {
    clock: C,
    /// IA32_APIC_BASE bit 11.
    hw_enabled: bool,
    bsp: bool,
    /// The APIC ID the processor was created with (restored on reset).
    reset_id: u8,
    id: u32,
    tpr: u32,
    ldr: u32,
    dfr: u32,
    svr: u32,
    irr: VectorBitmap,
    isr: VectorBitmap,
    tmr: VectorBitmap,
    /// Errors seen since the last ESR write.
    esr_pending: u32,
    /// What ESR reads return (latched by the last ESR write).
    esr: u32,
    icr_low: u32,
    icr_high: u32,
    lvt: [u32; 6],
    timer: Timer,
    unsupported_ipis: u64,
    last_unsupported_ipi: Option<u64>,
    /// Counts vectors set in IRR, shared with whoever polls this APIC.
    irr_events: Arc<AtomicU64>,
}

impl<C: Clock> Lapic<C> {
    /// The bootstrap processor's APIC, ID 0, globally enabled, in the reset
    /// state described by [`spec`] (SVR 0x1FF, LINT0 ExtINT, LINT1 NMI,
    /// other LVTs masked, timer stopped).
    pub fn new(clock: C) -> Self {
        Self::with_id(clock, 0, true)
    }

    /// An APIC with the given ID; `bsp` sets IA32_APIC_BASE bit 8.
    pub fn with_id(clock: C, apic_id: u8, bsp: bool) -> Self {
        let mut lapic = Self {
            clock,
            hw_enabled: true,
            bsp,
            reset_id: apic_id,
            id: 0,
            tpr: 0,
            ldr: 0,
            dfr: 0,
            svr: 0,
            irr: VectorBitmap::default(),
            isr: VectorBitmap::default(),
            tmr: VectorBitmap::default(),
            esr_pending: 0,
            esr: 0,
            icr_low: 0,
            icr_high: 0,
            lvt: [0; 6],
            timer: Timer::default(),
            unsupported_ipis: 0,
            irr_events: Arc::new(AtomicU64::new(0)),
            last_unsupported_ipi: None,
        };
        lapic.reset_registers();
        lapic
    }

    fn reset_registers(&mut self) {
        self.id = u32::from(self.reset_id) << 24;
        self.tpr = 0;
        self.ldr = 0;
        self.dfr = DFR_RESET;
        self.svr = SVR_RESET;
        self.irr = VectorBitmap::default();
        self.isr = VectorBitmap::default();
        self.tmr = VectorBitmap::default();
        self.esr_pending = 0;
        self.esr = 0;
        self.icr_low = 0;
        self.icr_high = 0;
        self.lvt = [LVT_RESET; 6];
        self.lvt[Lvt::Lint0 as usize] = LINT0_RESET;
        self.lvt[Lvt::Lint1 as usize] = LINT1_RESET;
        self.timer = Timer::default();
    }

    fn now(&self) -> u64 {
        self.clock.now_ns()
    }

    fn software_enabled(&self) -> bool {
        self.svr & SVR_ENABLE != 0
    }

    fn lvt_masked(&self, lvt: Lvt) -> bool {
        self.lvt[lvt as usize] & LVT_MASKED != 0
    }

    /// The APIC ID (bits 31-24 of the ID register).
    pub fn apic_id(&self) -> u8 {
        (self.id >> 24) as u8
    }

    // ----- interrupt delivery -------------------------------------------

    /// Brings the timer up to the clock's time, raising its vector if due.
    fn update_timer(&mut self) {
        let now = self.now();
        let expired = self.timer.update(now);
        if expired > 0 && !self.lvt_masked(Lvt::Timer) {
            let vector = (self.lvt[Lvt::Timer as usize] & LVT_VECTOR) as u8;
            self.accept_fixed(vector);
        }
    }

    /// A fixed interrupt arrives: vectors 0-15 are illegal (ESR bit 6).
    fn accept_fixed(&mut self, vector: u8) {
        if vector < 16 {
            self.record_error(ESR_RECEIVE_ILLEGAL_VECTOR);
        } else if self.hw_enabled && self.software_enabled() {
            self.set_irr(vector);
        }
    }

    /// Requests `vector` and counts the event for [`Lapic::irr_events`].
    fn set_irr(&mut self, vector: u8) {
        self.irr.set(vector);
        self.irr_events.fetch_add(1, Ordering::Relaxed);
    }

    /// A counter that grows every time a vector is set in IRR (timer
    /// expiry, error, self-IPI, external interrupt), readable without
    /// locking the APIC: a VMM compares it with the value at its last poll
    /// to learn, with one atomic load, that an interrupt may be pending.
    pub fn irr_events(&self) -> Arc<AtomicU64> {
        self.irr_events.clone()
    }

    /// Logs errors in ESR and raises the LVT error interrupt for new ones.
    fn record_error(&mut self, bits: u32) {
        let new = bits & !self.esr_pending;
        self.esr_pending |= bits;
        if new == 0 || self.lvt_masked(Lvt::Error) || !self.software_enabled() {
            return;
        }
        let vector = (self.lvt[Lvt::Error as usize] & LVT_VECTOR) as u8;
        if vector < 16 {
            // Logged, not delivered (and no further error interrupt for it).
            self.esr_pending |= ESR_RECEIVE_ILLEGAL_VECTOR;
        } else {
            self.set_irr(vector);
        }
    }

    /// A fixed interrupt from outside (an I/O APIC or MSI, say) for `vector`.
    pub fn accept_interrupt(&mut self, vector: u8) {
        self.accept_fixed(vector);
    }

    /// Processor priority: TPR, or the class of the highest in-service vector.
    fn ppr(&self) -> u32 {
        let isrv = u32::from(self.isr.highest().unwrap_or(0));
        if (self.tpr >> 4) >= (isrv >> 4) {
            self.tpr
        } else {
            isrv & 0xF0
        }
    }

    /// Arbitration priority as the SDM defines it.
    fn apr(&self) -> u32 {
        let isrv = u32::from(self.isr.highest().unwrap_or(0)) >> 4;
        let irrv = u32::from(self.irr.highest().unwrap_or(0)) >> 4;
        let tpr = self.tpr >> 4;
        if tpr >= irrv && tpr > isrv {
            self.tpr
        } else {
            tpr.max(isrv).max(irrv) << 4
        }
    }

    /// The vector to inject now: the highest requested vector whose priority
    /// class is above the processor priority (so an un-EOI'd vector blocks
    /// its own and lower classes), after bringing the timer up to date.
    /// Vectors already requested are still delivered while the APIC is
    /// software-disabled (SDM: pending interrupts "are held and require
    /// handling"); none are delivered while it is globally disabled.
    pub fn pending_vector(&mut self) -> Option<u8> {
        self.update_timer();
        if !self.hw_enabled {
            return None;
        }
        let vector = self.irr.highest()?;
        ((u32::from(vector) >> 4) > (self.ppr() >> 4)).then_some(vector)
    }

    /// The task-priority register (bits 7:0; CR8 mirrors bits 7:4).
    pub fn tpr(&self) -> u8 {
        (self.tpr & 0xff) as u8
    }

    /// Sets the task-priority register (from a MOV to CR8: TPR = CR8 << 4).
    pub fn set_tpr(&mut self, tpr: u8) {
        self.tpr = u32::from(tpr);
    }

    /// The VMM injected `vector`: IRR bit to ISR. Ignored if not requested.
    pub fn acknowledge(&mut self, vector: u8) {
        if self.irr.contains(vector) {
            self.irr.clear(vector);
            self.isr.set(vector);
        }
    }

    fn eoi(&mut self) {
        if let Some(vector) = self.isr.highest() {
            self.isr.clear(vector);
            self.tmr.clear(vector);
        }
    }

    /// Clock time at which the timer next raises its vector (in the past if
    /// an expiry is due but not yet processed), or `None` if the timer is
    /// stopped, its LVT is masked, the APIC is disabled, or an expiry could
    /// not reach the CPU: the timer's vector is already requested (in IRR;
    /// another expiry coalesces into it), or its priority class is at or
    /// below the processor priority (an in-service vector or TPR blocks
    /// it). Either changes only when the guest takes an interrupt or writes
    /// EOI or TPR, which the VMM sees anyway; so an interrupt storm waiting
    /// for its handler's EOI does not kick the vCPU out of the guest in a
    /// loop.
    pub fn next_deadline_ns(&self) -> Option<u64> {
        if !self.hw_enabled || !self.software_enabled() || self.lvt_masked(Lvt::Timer) {
            return None;
        }
        let vector = (self.lvt[Lvt::Timer as usize] & LVT_VECTOR) as u8;
        // An illegal vector (< 16) is never delivered: its expiries only
        // set an ESR bit, which is no reason to wake or kick the vCPU.
        let blocked = vector < 16 || (u32::from(vector) >> 4) <= (self.ppr() >> 4);
        if self.irr.contains(vector) || blocked {
            return None;
        }
        self.timer.next_expiry_ns()
    }

    /// True if 8259 interrupts (INTR) reach the CPU: the APIC is globally
    /// disabled (IA32_APIC_BASE bit 11 clear), or LINT0 is unmasked with
    /// ExtINT delivery. A software-disabled APIC has LINT0 masked, so it
    /// returns false then. (The same rule as KVM's in-kernel APIC.)
    pub fn accepts_pic_interrupts(&self) -> bool {
        let lint0 = self.lvt[Lvt::Lint0 as usize];
        let mode = ((lint0 >> LVT_DELIVERY_MODE_SHIFT) & 7) as u8;
        !self.hw_enabled || (lint0 & LVT_MASKED == 0 && mode == DELIVERY_EXTINT)
    }

    /// Number of IPIs sent with a delivery mode this model does not carry
    /// out (SMI, NMI, INIT, start-up, reserved): they are accepted and dropped.
    pub fn unsupported_ipi_count(&self) -> u64 {
        self.unsupported_ipis
    }

    /// The last unsupported IPI as `(ICR high << 32) | ICR low`.
    pub fn last_unsupported_ipi(&self) -> Option<u64> {
        self.last_unsupported_ipi
    }

    // ----- IA32_APIC_BASE -------------------------------------------------

    /// IA32_APIC_BASE: 0xFEE0_0000 | enable (bit 11) | BSP (bit 8).
    pub fn read_apic_base(&self) -> u64 {
        let mut value = APIC_DEFAULT_BASE;
        if self.hw_enabled {
            value |= APIC_BASE_ENABLE;
        }
        if self.bsp {
            value |= APIC_BASE_BSP;
        }
        value
    }

    /// Writes IA32_APIC_BASE. Supported: setting and clearing the enable
    /// bit (clearing it resets every register, as the SDM allows; the page
    /// then reads as all-ones and ignores writes). The BSP bit is read-only.
    /// Errors (#GP in the guest): reserved bits, x2APIC enable, relocation.
    pub fn write_apic_base(&mut self, value: u64) -> Result<(), ApicError> {
        let known = APIC_BASE_BSP | APIC_BASE_X2APIC | APIC_BASE_ENABLE | APIC_BASE_ADDR_MASK;
        if value & !known != 0 {
            return Err(ApicError::ReservedBits { value });
        }
        if value & APIC_BASE_X2APIC != 0 {
            return Err(ApicError::X2ApicUnsupported { value });
        }
        let base = value & APIC_BASE_ADDR_MASK;
        if base != APIC_DEFAULT_BASE {
            return Err(ApicError::Relocation { base });
        }
        let enable = value & APIC_BASE_ENABLE != 0;
        if self.hw_enabled && !enable {
            self.reset_registers();
        }
        self.hw_enabled = enable;
        Ok(())
    }

    // ----- registers --------------------------------------------------------

    /// Reads the 32-bit register at 16-byte-aligned `reg`; `None` if reserved.
    fn read_register(&mut self, reg: u32) -> Option<u32> {
        self.update_timer();
        let bank = |base: u32| {
            (base..base + 0x80)
                .contains(&reg)
                .then(|| ((reg - base) >> 4) as usize)
        };
        if let Some(i) = bank(REG_ISR0) {
            return Some(self.isr.word(i));
        }
        if let Some(i) = bank(REG_TMR0) {
            return Some(self.tmr.word(i));
        }
        if let Some(i) = bank(REG_IRR0) {
            return Some(self.irr.word(i));
        }
        if let Some((lvt, _)) = Lvt::from_register(reg) {
            return Some(self.lvt[lvt as usize]);
        }
        Some(match reg {
            REG_ID => self.id,
            REG_VERSION => VERSION_VALUE,
            REG_TPR => self.tpr,
            REG_APR => self.apr(),
            REG_PPR => self.ppr(),
            REG_EOI | REG_RRD => 0,
            REG_LDR => self.ldr,
            REG_DFR => self.dfr,
            REG_SVR => self.svr,
            REG_ESR => self.esr,
            REG_ICR_LOW => self.icr_low, // delivery status (bit 12) always idle
            REG_ICR_HIGH => self.icr_high,
            REG_TIMER_INITIAL => self.timer.initial(),
            REG_TIMER_CURRENT => self.timer.current(self.now()),
            REG_TIMER_DIVIDE => self.timer.divide_config(),
            _ => return None,
        })
    }

    /// Writes the register at `reg`; false if the address is reserved.
    fn write_register(&mut self, reg: u32, value: u32) -> bool {
        self.update_timer();
        let now = self.now();
        if let Some((lvt, writable)) = Lvt::from_register(reg) {
            let mut value = value & writable;
            if !self.software_enabled() {
                value |= LVT_MASKED; // masks cannot be cleared while disabled
            }
            if let Lvt::Timer = lvt {
                self.timer
                    .set_periodic(value & LVT_TIMER_PERIODIC != 0, now);
            }
            self.lvt[lvt as usize] = value;
            return true;
        }
        let read_only = (REG_ISR0..REG_ESR).contains(&reg)
            || matches!(
                reg,
                REG_VERSION | REG_APR | REG_PPR | REG_RRD | REG_TIMER_CURRENT
            );
        if read_only {
            return true; // writes to read-only registers are ignored
        }
        match reg {
            REG_ID => self.id = value & ID_WRITABLE,
            REG_TPR => self.tpr = value & 0xFF,
            REG_EOI => self.eoi(),
            REG_LDR => self.ldr = value & ID_WRITABLE,
            REG_DFR => self.dfr = (value & DFR_WRITABLE) | !DFR_WRITABLE,
            REG_SVR => self.write_svr(value),
            REG_ESR => {
                self.esr = self.esr_pending;
                self.esr_pending = 0;
            }
            REG_ICR_LOW => {
                self.icr_low = value & ICR_LOW_WRITABLE;
                self.send_ipi();
            }
            REG_ICR_HIGH => self.icr_high = value & ICR_HIGH_WRITABLE,
            REG_TIMER_INITIAL => self.timer.set_initial(value, now),
            REG_TIMER_DIVIDE => self.timer.set_divide(value & DIVIDE_WRITABLE, now),
            _ => return false,
        }
        true
    }

    fn write_svr(&mut self, value: u32) {
        self.svr = value & SVR_WRITABLE;
        if !self.software_enabled() {
            for lvt in &mut self.lvt {
                *lvt |= LVT_MASKED;
            }
        }
    }

    /// True if a destination-field IPI addresses this APIC.
    fn is_destination(&self, dest: u32, logical: bool) -> bool {
        if dest == 0xFF {
            return true;
        }
        if !logical {
            return dest == self.id >> 24;
        }
        let ldr = self.ldr >> 24;
        if self.dfr >> 28 == DFR_MODEL_FLAT {
            ldr & dest != 0
        } else {
            // Cluster model: cluster in bits 7-4, members in bits 3-0.
            dest >> 4 == ldr >> 4 && dest & ldr & 0xF != 0
        }
    }

    fn send_ipi(&mut self) {
        let low = self.icr_low;
        let vector = (low & 0xFF) as u8;
        let mode = ((low >> 8) & 7) as u8;
        let to_self = match (low >> ICR_SHORTHAND_SHIFT) & 3 {
            SHORTHAND_SELF | SHORTHAND_ALL => true,
            SHORTHAND_OTHERS => false,
            _ => self.is_destination(self.icr_high >> 24, low & ICR_LOGICAL != 0),
        };
        match mode {
            DELIVERY_FIXED | DELIVERY_LOWEST => {
                if vector < 16 {
                    self.record_error(ESR_SEND_ILLEGAL_VECTOR);
                } else if to_self {
                    self.accept_fixed(vector);
                }
            }
            _ => {
                self.unsupported_ipis = self.unsupported_ipis.saturating_add(1);
                self.last_unsupported_ipi = Some((u64::from(self.icr_high) << 32) | u64::from(low));
            }
        }
    }
}

impl<C: Clock> BusDevice for Lapic<C> {
    /// Each 16-byte slot holds a 32-bit register in its first 4 bytes; the
    /// other 12 bytes read 0. Narrower or misaligned reads inside the first 4
    /// bytes return those bytes (model-specific on hardware). Reserved
    /// registers read 0 and set ESR bit 7. A globally disabled APIC reads
    /// all-ones.
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        if !self.hw_enabled {
            data.fill(0xFF);
            return;
        }
        let mut cached: Option<(u64, u32)> = None;
        for (i, byte) in data.iter_mut().enumerate() {
            let Some(addr) = offset.checked_add(i as u64).filter(|&a| a < APIC_PAGE_SIZE) else {
                *byte = 0;
                continue;
            };
            let slot = addr & !0xF;
            let value = match cached {
                Some((s, v)) if s == slot => v,
                _ => {
                    let reg = u32::try_from(slot).unwrap_or(u32::MAX);
                    let v = self.read_register(reg).unwrap_or_else(|| {
                        self.record_error(ESR_ILLEGAL_REGISTER);
                        0
                    });
                    cached = Some((slot, v));
                    v
                }
            };
            let at = addr & 0xF;
            *byte = if at < 4 {
                value.to_le_bytes()[at as usize]
            } else {
                0
            };
        }
    }

    /// Only 32-bit writes at 16-byte-aligned offsets take effect (the SDM's
    /// access rule; others are dropped, as KVM does). Writes to read-only
    /// registers are ignored; writes to reserved ones set ESR bit 7.
    fn write(&mut self, offset: u64, data: &[u8]) {
        if !self.hw_enabled || data.len() != 4 || offset & 0xF != 0 || offset >= APIC_PAGE_SIZE {
            return;
        }
        let value = le_value(data) as u32;
        let reg = u32::try_from(offset).unwrap_or(u32::MAX);
        if !self.write_register(reg, value) {
            self.record_error(ESR_ILLEGAL_REGISTER);
        }
    }
}

/// Reads a 32-bit register through the bus interface (for tests and tools).
pub fn read_u32<D: BusDevice + ?Sized>(device: &mut D, offset: u64) -> u32 {
    let mut buf = [0u8; 4];
    device.read(offset, &mut buf);
    le_value(&buf) as u32
}

/// Writes a 32-bit register through the bus interface (for tests and tools).
pub fn write_u32<D: BusDevice + ?Sized>(device: &mut D, offset: u64, value: u32) {
    let mut buf = [0u8; 4];
    fill_le(&mut buf, u64::from(value));
    device.write(offset, &buf);
}
