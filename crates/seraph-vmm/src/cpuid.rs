//! The guest's CPUID: the host's leaves filtered to what this VM really
//! offers, plus the Seraph-V hypervisor leaves at 0x4000_0000.

use seraph_hypervisor::CpuidEntry;

use crate::hypercall::{ABI_VERSION, HYPERCALL_PORT};

/// First hypervisor leaf: max hypervisor leaf and the signature.
pub const LEAF_HYPERVISOR: u32 = 0x4000_0000;
/// Second hypervisor leaf: the hypercall transport.
pub const LEAF_SERAPH_FEATURES: u32 = 0x4000_0001;
/// "Seraph-V" followed by four NUL bytes, as EBX, ECX, EDX.
pub const SIGNATURE: [u32; 3] = [
    u32::from_le_bytes(*b"Sera"),
    u32::from_le_bytes(*b"ph-V"),
    0,
];

// Leaf 1 ECX
const ECX_MONITOR: u32 = 1 << 3;
const ECX_VMX: u32 = 1 << 5;
const ECX_SMX: u32 = 1 << 6;
const ECX_PDCM: u32 = 1 << 15;
const ECX_X2APIC: u32 = 1 << 21;
const ECX_TSC_DEADLINE: u32 = 1 << 24;
const ECX_HYPERVISOR: u32 = 1 << 31;
// Leaf 1 EDX
const EDX_APIC: u32 = 1 << 9;
// Leaf 6 EAX (thermal/power): nothing emulated.
// Leaf 0x8000_0001 ECX
const EXT_ECX_SVM: u32 = 1 << 2;

/// Whether native VMCALL also reaches the VMM (bit 0 of leaf 0x4000_0001 ECX).
pub const FEATURE_VMCALL_TRAPS: u32 = 1 << 0;

/// Builds the guest's CPUID from the host's supported leaves.
///
/// Keeps what the hardware runs natively, sets APIC (our LAPIC model is
/// there), clears what Seraph-V does not emulate (x2APIC, TSC-deadline timer,
/// MONITOR/MWAIT, nested virtualization, perf capabilities), marks the CPU
/// as running under a hypervisor, and replaces the host hypervisor's leaves
/// with Seraph-V's. `vmcall_traps` says whether the backend delivers plain
/// VMCALL to the VMM (WHP) or not (KVM).
pub fn guest_cpuid(host: &[CpuidEntry], vmcall_traps: bool) -> Vec<CpuidEntry> {
    let mut out: Vec<CpuidEntry> = host
        .iter()
        .filter(|e| !(0x4000_0000..0x5000_0000).contains(&e.function))
        .copied()
        .collect();
    for e in &mut out {
        match e.function {
            1 => {
                e.ecx &=
                    !(ECX_MONITOR | ECX_VMX | ECX_SMX | ECX_PDCM | ECX_X2APIC | ECX_TSC_DEADLINE);
                e.ecx |= ECX_HYPERVISOR;
                e.edx |= EDX_APIC;
                // Initial APIC ID (EBX[31:24]) = 0: one vCPU, the BSP.
                e.ebx &= 0x00ff_ffff;
            }
            5 => {
                // MONITOR/MWAIT leaf: not offered.
                e.eax = 0;
                e.ebx = 0;
                e.ecx = 0;
                e.edx = 0;
            }
            0x8000_0001 => e.ecx &= !EXT_ECX_SVM,
            _ => {}
        }
    }
    out.push(CpuidEntry {
        function: LEAF_HYPERVISOR,
        eax: LEAF_SERAPH_FEATURES,
        ebx: SIGNATURE[0],
        ecx: SIGNATURE[1],
        edx: SIGNATURE[2],
        ..Default::default()
    });
    out.push(CpuidEntry {
        function: LEAF_SERAPH_FEATURES,
        eax: u32::from(HYPERCALL_PORT),
        ebx: ABI_VERSION,
        ecx: if vmcall_traps {
            FEATURE_VMCALL_TRAPS
        } else {
            0
        },
        ..Default::default()
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(entries: &[CpuidEntry], function: u32) -> CpuidEntry {
        *entries.iter().find(|e| e.function == function).unwrap()
    }

    #[test]
    fn filters_host_leaves_and_adds_seraph_leaves() {
        let host = [
            CpuidEntry {
                function: 1,
                ecx: ECX_X2APIC | ECX_TSC_DEADLINE | ECX_VMX | 1, // SSE3 stays
                edx: 1,                                           // FPU, no APIC
                ebx: 0x0300_0800,
                ..Default::default()
            },
            CpuidEntry {
                function: 0x4000_0000,
                ebx: u32::from_le_bytes(*b"KVMK"),
                ..Default::default()
            },
            CpuidEntry {
                function: 0x4000_0001,
                eax: 0xffff,
                ..Default::default()
            },
        ];
        let guest = guest_cpuid(&host, false);
        let l1 = leaf(&guest, 1);
        assert_eq!(l1.ecx, 1 | ECX_HYPERVISOR);
        assert_eq!(l1.edx, 1 | EDX_APIC);
        assert_eq!(l1.ebx, 0x0000_0800);
        let hv = leaf(&guest, LEAF_HYPERVISOR);
        assert_eq!(hv.eax, LEAF_SERAPH_FEATURES);
        let sig: Vec<u8> = [hv.ebx, hv.ecx, hv.edx]
            .iter()
            .flat_map(|r| r.to_le_bytes())
            .collect();
        assert_eq!(&sig, b"Seraph-V\0\0\0\0");
        let features = leaf(&guest, LEAF_SERAPH_FEATURES);
        assert_eq!(features.eax, 0xe4);
        assert_eq!(features.ebx, 1);
        assert_eq!(features.ecx, 0);
        assert_eq!(
            guest
                .iter()
                .filter(|e| e.function == LEAF_HYPERVISOR)
                .count(),
            1
        );
        assert_eq!(
            leaf(&guest_cpuid(&host, true), LEAF_SERAPH_FEATURES).ecx,
            FEATURE_VMCALL_TRAPS
        );
    }
}
