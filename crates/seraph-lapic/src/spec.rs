//! xAPIC register offsets and bits (Intel SDM Vol. 3A, chapter "Advanced
//! Programmable Interrupt Controller"), and the values this model reports.

/// The IA32_APIC_BASE MSR number.
pub const MSR_IA32_APIC_BASE: u32 = 0x1B;
/// IA32_APIC_BASE bit 8: this processor is the bootstrap processor.
pub const APIC_BASE_BSP: u64 = 1 << 8;
/// IA32_APIC_BASE bit 10: x2APIC mode (not offered here: reserved).
pub const APIC_BASE_X2APIC: u64 = 1 << 10;
/// IA32_APIC_BASE bit 11: APIC global enable.
pub const APIC_BASE_ENABLE: u64 = 1 << 11;
/// IA32_APIC_BASE bits 51-12: the page's physical address (MAXPHYADDR 52).
pub const APIC_BASE_ADDR_MASK: u64 = 0x000F_FFFF_FFFF_F000;
/// The only APIC page address supported (the architectural default).
pub const APIC_DEFAULT_BASE: u64 = 0xFEE0_0000;
/// Size of the MMIO page.
pub const APIC_PAGE_SIZE: u64 = 0x1000;

/// Local APIC ID (bits 31-24).
pub const REG_ID: u32 = 0x20;
/// Version.
pub const REG_VERSION: u32 = 0x30;
/// Task priority.
pub const REG_TPR: u32 = 0x80;
/// Arbitration priority (read-only).
pub const REG_APR: u32 = 0x90;
/// Processor priority (read-only).
pub const REG_PPR: u32 = 0xA0;
/// End of interrupt (write-only).
pub const REG_EOI: u32 = 0xB0;
/// Remote read (read-only, legacy; reads 0).
pub const REG_RRD: u32 = 0xC0;
/// Logical destination.
pub const REG_LDR: u32 = 0xD0;
/// Destination format.
pub const REG_DFR: u32 = 0xE0;
/// Spurious interrupt vector.
pub const REG_SVR: u32 = 0xF0;
/// In-service register, 8 registers 0x10 apart (0x100-0x170).
pub const REG_ISR0: u32 = 0x100;
/// Trigger mode register, 8 registers (0x180-0x1F0).
pub const REG_TMR0: u32 = 0x180;
/// Interrupt request register, 8 registers (0x200-0x270).
pub const REG_IRR0: u32 = 0x200;
/// Error status.
pub const REG_ESR: u32 = 0x280;
/// Interrupt command, low half (writing it sends the IPI).
pub const REG_ICR_LOW: u32 = 0x300;
/// Interrupt command, high half (destination in bits 31-24).
pub const REG_ICR_HIGH: u32 = 0x310;
/// LVT timer.
pub const REG_LVT_TIMER: u32 = 0x320;
/// LVT thermal sensor.
pub const REG_LVT_THERMAL: u32 = 0x330;
/// LVT performance monitoring counters.
pub const REG_LVT_PERF: u32 = 0x340;
/// LVT LINT0.
pub const REG_LVT_LINT0: u32 = 0x350;
/// LVT LINT1.
pub const REG_LVT_LINT1: u32 = 0x360;
/// LVT error.
pub const REG_LVT_ERROR: u32 = 0x370;
/// Timer initial count.
pub const REG_TIMER_INITIAL: u32 = 0x380;
/// Timer current count (read-only).
pub const REG_TIMER_CURRENT: u32 = 0x390;
/// Timer divide configuration.
pub const REG_TIMER_DIVIDE: u32 = 0x3E0;

/// Version register: version 0x14 (integrated xAPIC), max LVT entry 5
/// (six LVTs: timer, thermal, perf, LINT0, LINT1, error; no CMCI), no
/// EOI-broadcast suppression.
pub const VERSION_VALUE: u32 = 0x0005_0014;

/// SVR at reset here: software-enabled, spurious vector 0xFF (the SDM's
/// power-up value is 0xFF; the Seraph boot protocol hands over 0x1FF).
pub const SVR_RESET: u32 = 0x1FF;
/// SVR bit 8: APIC software enable.
pub const SVR_ENABLE: u32 = 1 << 8;
/// SVR bits that exist: vector (7-0), enable (8), focus checking (9).
pub const SVR_WRITABLE: u32 = 0x3FF;

/// LVT: vector, bits 7-0.
pub const LVT_VECTOR: u32 = 0xFF;
/// LVT: delivery mode, bits 10-8.
pub const LVT_DELIVERY_MODE_SHIFT: u32 = 8;
/// LVT: mask, bit 16.
pub const LVT_MASKED: u32 = 1 << 16;
/// LVT timer: periodic mode, bit 17 (bit 18, TSC-deadline, is reserved here).
pub const LVT_TIMER_PERIODIC: u32 = 1 << 17;
/// Writable bits of the LVT timer (vector, mask, mode bit 17).
pub const LVT_TIMER_WRITABLE: u32 = 0x0003_00FF;
/// Writable bits of LVT thermal and perf (vector, delivery mode, mask).
pub const LVT_THERMAL_PERF_WRITABLE: u32 = 0x0001_07FF;
/// Writable bits of LVT LINT0/1 (vector, mode, polarity, trigger, mask).
pub const LVT_LINT_WRITABLE: u32 = 0x0001_A7FF;
/// Writable bits of LVT error (vector, mask).
pub const LVT_ERROR_WRITABLE: u32 = 0x0001_00FF;
/// LVT value at reset: masked.
pub const LVT_RESET: u32 = LVT_MASKED;
/// LINT0 at reset here: ExtINT, unmasked ("virtual wire", as a BIOS leaves it
/// and as KVM's in-kernel APIC resets it), so the 8259 reaches the CPU.
pub const LINT0_RESET: u32 = (DELIVERY_EXTINT as u32) << LVT_DELIVERY_MODE_SHIFT;
/// LINT1 at reset here: NMI, unmasked (virtual-wire setup).
pub const LINT1_RESET: u32 = (DELIVERY_NMI as u32) << LVT_DELIVERY_MODE_SHIFT;

/// Delivery mode: fixed.
pub const DELIVERY_FIXED: u8 = 0b000;
/// Delivery mode: lowest priority.
pub const DELIVERY_LOWEST: u8 = 0b001;
/// Delivery mode: NMI.
pub const DELIVERY_NMI: u8 = 0b100;
/// Delivery mode: INIT.
pub const DELIVERY_INIT: u8 = 0b101;
/// Delivery mode: start-up (SIPI).
pub const DELIVERY_STARTUP: u8 = 0b110;
/// Delivery mode: ExtINT.
pub const DELIVERY_EXTINT: u8 = 0b111;

/// ICR low writable bits (vector, mode, dest mode, level, trigger, shorthand).
pub const ICR_LOW_WRITABLE: u32 = 0x000C_CFFF;
/// ICR high writable bits (destination).
pub const ICR_HIGH_WRITABLE: u32 = 0xFF00_0000;
/// ICR: logical destination mode, bit 11.
pub const ICR_LOGICAL: u32 = 1 << 11;
/// ICR: destination shorthand, bits 19-18.
pub const ICR_SHORTHAND_SHIFT: u32 = 18;
/// Shorthand: none (use the destination field).
pub const SHORTHAND_NONE: u32 = 0;
/// Shorthand: self.
pub const SHORTHAND_SELF: u32 = 1;
/// Shorthand: all including self.
pub const SHORTHAND_ALL: u32 = 2;
/// Shorthand: all excluding self.
pub const SHORTHAND_OTHERS: u32 = 3;

/// ID, LDR: writable bits 31-24.
pub const ID_WRITABLE: u32 = 0xFF00_0000;
/// DFR: model in bits 31-28; bits 27-0 read as ones.
pub const DFR_WRITABLE: u32 = 0xF000_0000;
/// DFR value at reset (flat model).
pub const DFR_RESET: u32 = 0xFFFF_FFFF;
/// DFR model value for the flat model (bits 31-28 = 1111).
pub const DFR_MODEL_FLAT: u32 = 0xF;
/// Divide configuration: writable bits 0, 1 and 3.
pub const DIVIDE_WRITABLE: u32 = 0xB;

/// ESR bit 5: send illegal vector.
pub const ESR_SEND_ILLEGAL_VECTOR: u32 = 1 << 5;
/// ESR bit 6: receive illegal vector.
pub const ESR_RECEIVE_ILLEGAL_VECTOR: u32 = 1 << 6;
/// ESR bit 7: illegal register address.
pub const ESR_ILLEGAL_REGISTER: u32 = 1 << 7;

/// Timer input before the divider: 1 GHz (1 ns per tick), the "bus clock"
/// KVM's in-kernel APIC also uses. Divide-by-16 counts at 62.5 MHz.
pub const TIMER_FREQUENCY_HZ: u64 = 1_000_000_000;
/// Nanoseconds per timer input tick (before the divider).
pub const TIMER_NS_PER_TICK: u64 = 1_000_000_000 / TIMER_FREQUENCY_HZ;
