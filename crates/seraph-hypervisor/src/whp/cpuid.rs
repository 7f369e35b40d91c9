//! CPUID answers that depend on the vCPU and its current state.
//!
//! The VMM's table starts from `supported_cpuid`, a snapshot of a fresh
//! VP, and is the same for every vCPU. Some bits are not constants: KVM
//! updates them in the kernel, and on WHP this backend does, at each
//! CPUID exit it answers from the table:
//!
//! - leaf 1 ECX bit 27 (OSXSAVE) = CR4.OSXSAVE (bit 18);
//! - leaf 7 subleaf 0 ECX bit 4 (OSPKE) = CR4.PKE (bit 22);
//! - leaf 0xD subleaf 0 EBX = the XSAVE area size for the features enabled
//!   in XCR0 (subleaf 1 EBX likewise, for XCR0 with no supervisor states);
//! - the initial APIC id: leaf 1 EBX bits 31-24, and the x2APIC id in EDX
//!   of leaves 0xB and 0x1F, are the vCPU's index.

use super::translate::lookup_cpuid;
use crate::x86::CpuidEntry;

/// CR4.OSXSAVE.
pub const CR4_OSXSAVE: u64 = 1 << 18;
/// CR4.PKE.
pub const CR4_PKE: u64 = 1 << 22;

/// The state the dynamic bits follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuidState {
    /// CR4 at the CPUID.
    pub cr4: u64,
    /// XCR0 at the CPUID.
    pub xcr0: u64,
    /// The vCPU's APIC id (its index).
    pub apic_id: u32,
}

/// True if the answer to `leaf` depends on [`CpuidState`] (the exit then
/// reads CR4 and XCR0).
pub fn depends_on_state(leaf: u32) -> bool {
    matches!(leaf, 0x1 | 0x7 | 0xD)
}

/// The size of an XSAVE area holding the components enabled in `xcr0`:
/// the legacy area and header (576 bytes), or the end of the furthest
/// enabled component (offset and size from leaf 0xD subleaf N).
pub fn xsave_size(table: &[CpuidEntry], xcr0: u64) -> u32 {
    let mut size = 576u32;
    for component in 2..63u32 {
        if xcr0 & (1 << component) == 0 {
            continue;
        }
        if let Some([len, offset, _, _]) = lookup_cpuid(table, 0xD, component) {
            size = size.max(offset.saturating_add(len));
        }
    }
    size
}

/// `result` (the table's answer to `leaf`/`subleaf`) with the bits that
/// follow the vCPU's state and identity filled in.
pub fn fix_up(
    leaf: u32,
    subleaf: u32,
    result: [u32; 4],
    state: &CpuidState,
    table: &[CpuidEntry],
) -> [u32; 4] {
    let [eax, mut ebx, mut ecx, mut edx] = result;
    match (leaf, subleaf) {
        (0x1, _) => {
            ecx = set_bit(ecx, 27, state.cr4 & CR4_OSXSAVE != 0);
            ebx = (ebx & 0x00FF_FFFF) | (state.apic_id & 0xFF) << 24;
        }
        (0x7, 0) => ecx = set_bit(ecx, 4, state.cr4 & CR4_PKE != 0),
        (0xD, 0) | (0xD, 1) => ebx = xsave_size(table, state.xcr0),
        (0xB, _) | (0x1F, _) => edx = state.apic_id,
        _ => {}
    }
    [eax, ebx, ecx, edx]
}

fn set_bit(v: u32, bit: u32, on: bool) -> u32 {
    if on { v | (1 << bit) } else { v & !(1 << bit) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(function: u32, index: u32, regs: [u32; 4]) -> CpuidEntry {
        CpuidEntry {
            function,
            index,
            significant_index: true,
            eax: regs[0],
            ebx: regs[1],
            ecx: regs[2],
            edx: regs[3],
        }
    }

    /// A snapshot like a fresh VP's: OSXSAVE and OSPKE clear, XSAVE size
    /// for x87+SSE only, APIC id 0.
    fn table() -> Vec<CpuidEntry> {
        vec![
            entry(0x1, 0, [0x806C1, 0x0010_0800, 0x7FFA_FBBF & !(1 << 27), 0]),
            entry(0x7, 0, [0, 0, 0, 0]),
            entry(0xD, 0, [0x7, 576, 1088, 0]),
            entry(0xD, 1, [0xF, 576, 0, 0]),
            entry(0xD, 2, [256, 576, 0, 0]), // AVX: 256 bytes at 576
            entry(0xD, 9, [8, 2688, 0, 0]),  // PKRU: 8 bytes at 2688
            entry(0xB, 0, [1, 1, 0x100, 0]),
        ]
    }

    fn answer(leaf: u32, sub: u32, state: &CpuidState) -> [u32; 4] {
        let t = table();
        let r = lookup_cpuid(&t, leaf, sub).unwrap_or([0; 4]);
        fix_up(leaf, sub, r, state, &t)
    }

    #[test]
    fn osxsave_and_ospke_follow_cr4() {
        let off = CpuidState {
            cr4: 0,
            xcr0: 1,
            apic_id: 0,
        };
        let on = CpuidState {
            cr4: CR4_OSXSAVE | CR4_PKE,
            ..off
        };
        assert_eq!(answer(1, 0, &off)[2] & (1 << 27), 0);
        assert_ne!(answer(1, 0, &on)[2] & (1 << 27), 0);
        assert_eq!(answer(7, 0, &off)[2] & (1 << 4), 0);
        assert_ne!(answer(7, 0, &on)[2] & (1 << 4), 0);
        // Other leaf-1 bits are the table's.
        assert_eq!(answer(1, 0, &on)[2] & 0xFFFF, 0x7FFA_FBBF & 0xFFFF);
        assert!(depends_on_state(1) && depends_on_state(7) && depends_on_state(0xD));
        assert!(!depends_on_state(0x8000_0001));
    }

    #[test]
    fn the_xsave_size_follows_xcr0() {
        let x87_sse = CpuidState {
            cr4: CR4_OSXSAVE,
            xcr0: 0b11,
            apic_id: 0,
        };
        assert_eq!(answer(0xD, 0, &x87_sse)[1], 576);
        let avx = CpuidState {
            xcr0: 0b111,
            ..x87_sse
        };
        assert_eq!(answer(0xD, 0, &avx)[1], 832);
        let pkru = CpuidState {
            xcr0: 0b111 | (1 << 9),
            ..x87_sse
        };
        assert_eq!(answer(0xD, 0, &pkru)[1], 2696);
        // ECX (the maximum size) stays the table's.
        assert_eq!(answer(0xD, 0, &pkru)[2], 1088);
    }

    #[test]
    fn the_apic_id_is_the_vcpus() {
        let cpu3 = CpuidState {
            cr4: 0,
            xcr0: 1,
            apic_id: 3,
        };
        let leaf1 = answer(1, 0, &cpu3);
        assert_eq!(leaf1[1] >> 24, 3);
        assert_eq!(leaf1[1] & 0x00FF_FFFF, 0x10_0800);
        assert_eq!(answer(0xB, 0, &cpu3)[3], 3);
        assert_eq!(answer(0xB, 0, &cpu3)[2], 0x100);
    }
}
