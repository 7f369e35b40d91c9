//! Does this host deliver data breakpoints (DR7 write/access watchpoints)
//! to a guest? A KVM that emulates guest ring-0 code instruction by
//! instruction (as nested setups can) checks code breakpoints but not data
//! breakpoints, so watchpoints never fire there. The probe runs a two-byte
//! real-mode guest that writes a watched byte, once per process.

use std::sync::OnceLock;

use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::{Kvm, VcpuExit};

use super::debug;
use crate::debug::{GuestDebug, HwBreakKind, HwBreakpoint};

/// The probe guest: `mov byte [0x1000], 1` then `hlt`, at address 0 (real mode).
const PROBE_CODE: [u8; 6] = [0xc6, 0x06, 0x00, 0x10, 0x01, 0xf4];
/// The watched byte.
const WATCHED: u64 = 0x1000;
/// Guest memory of the probe: two pages.
const PROBE_MEM: usize = 0x2000;

/// True if a write watchpoint fires on this host (probed once, cached).
pub(super) fn data_breakpoints_fire(kvm: &Kvm) -> bool {
    static ANSWER: OnceLock<bool> = OnceLock::new();
    *ANSWER.get_or_init(|| probe(kvm).unwrap_or(false))
}

/// Anonymous memory for the probe guest, unmapped on drop.
struct ProbeMemory(*mut u8);

impl ProbeMemory {
    fn new() -> Option<Self> {
        // SAFETY: an anonymous private mapping with no address hint; the
        // result is checked for MAP_FAILED.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                PROBE_MEM,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        (ptr != libc::MAP_FAILED).then_some(Self(ptr.cast()))
    }
}

impl Drop for ProbeMemory {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, of PROBE_MEM bytes; the VM that
        // used it is dropped before this (declaration order in `probe`).
        unsafe { libc::munmap(self.0.cast(), PROBE_MEM) };
    }
}

fn probe(kvm: &Kvm) -> Option<bool> {
    let mem = ProbeMemory::new()?;
    // SAFETY: `mem` maps PROBE_MEM writable bytes; the code fits in the first page.
    unsafe { std::ptr::copy_nonoverlapping(PROBE_CODE.as_ptr(), mem.0, PROBE_CODE.len()) };
    let vm = kvm.create_vm().ok()?;
    let region = kvm_userspace_memory_region {
        slot: 0,
        flags: 0,
        guest_phys_addr: 0,
        memory_size: PROBE_MEM as u64,
        userspace_addr: mem.0 as u64,
    };
    // SAFETY: `mem` outlives the VM (declared before it, dropped after).
    unsafe { vm.set_user_memory_region(region) }.ok()?;
    let mut vcpu = vm.create_vcpu(0).ok()?;
    let mut sregs = vcpu.get_sregs().ok()?;
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    sregs.ds.base = 0;
    sregs.ds.selector = 0;
    vcpu.set_sregs(&sregs).ok()?;
    let mut regs = vcpu.get_regs().ok()?;
    regs.rip = 0;
    regs.rflags = 2;
    vcpu.set_regs(&regs).ok()?;
    let mut cfg = GuestDebug {
        enabled: true,
        ..Default::default()
    };
    cfg.hw[0] = Some(HwBreakpoint {
        addr: WATCHED,
        kind: HwBreakKind::Write,
        len: 1,
    });
    vcpu.set_guest_debug(&debug::guest_debug_struct(&cfg))
        .ok()?;
    for _ in 0..4 {
        match vcpu.run().ok()? {
            VcpuExit::Debug(_) => return Some(true),
            VcpuExit::Hlt | VcpuExit::Shutdown => return Some(false),
            _ => {}
        }
    }
    Some(false)
}

#[cfg(test)]
mod tests {
    use crate::Hypervisor;

    #[test]
    fn the_probe_answers_and_is_cached() {
        let Some(kvm) = crate::kvm::KvmHypervisor::for_test("data_breakpoint_probe") else {
            return;
        };
        let first = kvm.data_breakpoints();
        eprintln!("data breakpoints fire on this host: {first}");
        assert_eq!(kvm.data_breakpoints(), first);
    }
}
