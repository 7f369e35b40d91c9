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

use crate::x86::CpuidEntry;

/// Finds the CPUID entry for `leaf`/`subleaf` (`subleaf` only matters for
/// entries with `significant_index`).
pub fn lookup_cpuid(table: &[CpuidEntry], leaf: u32, subleaf: u32) -> Option<[u32; 4]> {
    table
        .iter()
        .find(|e| e.function == leaf && (!e.significant_index || e.index == subleaf))
        .map(|e| [e.eax, e.ebx, e.ecx, e.edx])
}

/// The CPUID leaves the partition is told to exit on, so that each vCPU
/// answers them from its `set_cpuid` table: all standard leaves up to 0x20,
/// the hypervisor range 0x4000_0000-0x4000_0010 and the extended leaves up to
/// 0x8000_0021. WHP fixes the list before `WHvSetupPartition`; other
/// leaves get WHP's own answers.
pub fn cpuid_exit_leaves() -> Vec<u32> {
    (0..=0x20u32)
        .chain(0x4000_0000..=0x4000_0010)
        .chain(0x8000_0000..=0x8000_0021)
        .collect()
}

/// Subleaf counts queried for leaves whose answer depends on ECX.
const SUBLEAVES: &[(u32, u32)] = &[
    (0x4, 8),
    (0x7, 3),
    (0xB, 4),
    (0xD, 20),
    (0xF, 2),
    (0x10, 4),
    (0x12, 4),
    (0x14, 2),
    (0x17, 4),
    (0x18, 4),
    (0x1D, 2),
    (0x1F, 6),
    (0x8000_001D, 5),
];

/// The (leaf, subleaf, significant_index) triples `supported_cpuid`
/// queries, given the maximum basic and extended leaves that leaf 0 and
/// leaf 0x8000_0000 report (capped at 0x20 and 0x8000_0021).
pub fn cpuid_query_plan(max_basic: u32, max_extended: u32) -> Vec<(u32, u32, bool)> {
    let basic = 0..=max_basic.min(0x20);
    let extended = if max_extended >= 0x8000_0000 {
        0x8000_0000..=max_extended.min(0x8000_0021)
    } else {
        0x8000_0000..=0x8000_0000
    };
    let mut plan = Vec::new();
    for leaf in basic.chain(extended) {
        match SUBLEAVES.iter().find(|(l, _)| *l == leaf) {
            Some(&(_, count)) => plan.extend((0..count).map(|sub| (leaf, sub, true))),
            None => plan.push((leaf, 0, false)),
        }
    }
    plan
}

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

    #[test]
    fn cpuid_exit_list_covers_the_leaves_the_vmm_sets() {
        let leaves = cpuid_exit_leaves();
        for leaf in [
            0,
            1,
            7,
            0xB,
            0xD,
            0x4000_0000,
            0x4000_0001,
            0x8000_0001,
            0x8000_0008,
        ] {
            assert!(leaves.contains(&leaf), "{leaf:#x}");
        }
        assert_eq!(leaves.len(), 0x21 + 0x11 + 0x22);
    }

    #[test]
    fn cpuid_query_plan_enumerates_subleaves_and_caps_maxima() {
        let plan = cpuid_query_plan(0xD, 0x8000_0008);
        assert_eq!(plan.first(), Some(&(0, 0, false)));
        assert!(plan.contains(&(7, 2, true)));
        assert!(!plan.contains(&(7, 3, true)));
        assert_eq!(plan.iter().filter(|(l, _, _)| *l == 0xD).count(), 20);
        assert_eq!(plan.last(), Some(&(0x8000_0008, 0, false)));
        assert!(!plan.iter().any(|(l, _, _)| (0xE..0x8000_0000).contains(l)));
        // Absurd maxima from a hostile or odd host are capped.
        let capped = cpuid_query_plan(u32::MAX, u32::MAX);
        assert_eq!(capped.iter().map(|(l, _, _)| *l).max(), Some(0x8000_0021));
        // A maximum extended leaf below 0x8000_0000 still queries 0x8000_0000 only.
        let no_ext = cpuid_query_plan(1, 0);
        assert_eq!(no_ext.last(), Some(&(0x8000_0000, 0, false)));
    }

    #[test]
    fn lookup_respects_significant_index() {
        let t = [CpuidEntry {
            function: 4,
            index: 1,
            significant_index: true,
            eax: 0x21,
            ..Default::default()
        }];
        assert_eq!(lookup_cpuid(&t, 4, 1), Some([0x21, 0, 0, 0]));
        assert_eq!(lookup_cpuid(&t, 4, 0), None);
    }

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
