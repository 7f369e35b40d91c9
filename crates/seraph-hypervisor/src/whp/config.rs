//! Partition configuration decisions that do not need a partition.

/// IA32_TIME_STAMP_COUNTER.
pub const MSR_TSC: u32 = 0x10;
/// IA32_APIC_BASE.
pub const MSR_APIC_BASE: u32 = 0x1B;
/// IA32_BIOS_SIGN_ID (microcode update patch level).
pub const MSR_BIOS_SIGN_ID: u32 = 0x8B;
/// IA32_MISC_ENABLE.
pub const MSR_MISC_ENABLE: u32 = 0x1A0;

/// `WHV_X64_MSR_EXIT_BITMAP` bits (WinHvPlatformDefs.h).
pub mod msr_exit {
    /// MSRs the hypervisor does not implement exit (reads and writes).
    pub const UNHANDLED_MSRS: u64 = 1 << 0;
    /// WRMSR to IA32_TSC exits.
    pub const TSC_WRITE: u64 = 1 << 1;
    /// RDMSR of IA32_TSC exits.
    pub const TSC_READ: u64 = 1 << 2;
    /// WRMSR to IA32_APIC_BASE exits (reads never do).
    pub const APIC_BASE_WRITE: u64 = 1 << 3;
    /// RDMSR of IA32_MISC_ENABLE exits.
    pub const MISC_ENABLE_READ: u64 = 1 << 4;
    /// RDMSR of IA32_BIOS_SIGN_ID exits.
    pub const MC_UPDATE_PATCH_LEVEL_READ: u64 = 1 << 5;
}

/// The MSR exit bitmap for `VmConfig::vmm_msrs`. WHP cannot intercept
/// arbitrary MSRs: unimplemented MSRs always exit (as OpenVMM sets it for
/// a user-mode APIC), and the few MSRs WHP can forward exit when the VMM
/// asks for them. An APIC_BASE write exits; its read does not, so the
/// backend keeps the hypervisor's register equal to what the VMM accepted
/// (see `pending.rs`).
pub fn msr_exit_bitmap(vmm_msrs: &[u32]) -> u64 {
    let mut bits = msr_exit::UNHANDLED_MSRS;
    for msr in vmm_msrs {
        bits |= match *msr {
            MSR_APIC_BASE => msr_exit::APIC_BASE_WRITE,
            MSR_TSC => msr_exit::TSC_READ | msr_exit::TSC_WRITE,
            MSR_MISC_ENABLE => msr_exit::MISC_ENABLE_READ,
            MSR_BIOS_SIGN_ID => msr_exit::MC_UPDATE_PATCH_LEVEL_READ,
            _ => 0,
        };
    }
    bits
}

/// Whether a guest's VMCALL reaches the VMM as a Seraph hypercall on WHP.
/// No: without the `HypercallExit` extended exit the Microsoft hypervisor
/// handles VMCALL itself (Hyper-V hypercall ABI: #UD until the guest
/// enables the hypercall page), and this backend does not request that
/// exit. Guests use the port doorbell (`VmConfig::hypercall_port`), as on
/// KVM. See `docs/windows.md`.
pub const VMCALL_REACHES_VMM: bool = false;

/// IA32_PAT at power-on and reset (Intel SDM vol. 3, 13.12.4): WB, WT,
/// UC-, UC, repeated. Written at vCPU creation: WHP's initial PAT is not
/// documented, and KVM starts vCPUs with this value.
pub const PAT_RESET: u64 = 0x0007_0406_0007_0406;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pat_is_the_architectural_reset_value() {
        // PA0..PA7 = WB(6) WT(4) UC-(7) UC(0), twice.
        let types: Vec<u64> = (0..8).map(|i| (PAT_RESET >> (8 * i)) & 0xFF).collect();
        assert_eq!(types, [6, 4, 7, 0, 6, 4, 7, 0]);
    }

    #[test]
    fn vmm_msrs_set_the_msr_exit_bitmap() {
        // Nothing asked: only unimplemented MSRs exit.
        assert_eq!(msr_exit_bitmap(&[]), 0b1);
        // A VMM-side LAPIC: ApicBaseMsrWrite | UnhandledMsrs.
        assert_eq!(msr_exit_bitmap(&[MSR_APIC_BASE]), 0b1001);
        assert_eq!(
            msr_exit_bitmap(&[MSR_TSC, MSR_MISC_ENABLE, MSR_BIOS_SIGN_ID, 0xC000_0080]),
            0b11_0111
        );
    }

    #[test]
    fn vmcall_is_not_a_seraph_transport_on_whp() {
        const { assert!(!VMCALL_REACHES_VMM) };
        // ... and the backend does not ask for hypercall exits.
        assert_eq!(
            super::super::plan::extended_vm_exits(u64::MAX) & (1 << 5),
            0
        );
    }
}
