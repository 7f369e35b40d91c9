//! Reading guest memory as the guest sees it, and the machine as the
//! hypercall dispatcher sees it.

use seraph_clock::OracleClock;
use seraph_hypervisor::{SpecialRegs, Vcpu};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::console::Console;
use crate::entry::{CR0_PG, CR4_LA57, EFER_LMA};
use crate::hypercall::{GuestFault, HypercallContext};

/// Reads guest memory at `addr` as the guest sees it: physical with paging
/// off, through its page tables in 4-level long mode. Other paging modes
/// (32-bit, PAE without long mode, 5-level) are refused: the walker only
/// knows the mode Seraph-V boots guests in.
pub fn read_guest(
    mem: &GuestMemoryMmap,
    sregs: &SpecialRegs,
    addr: u64,
    buf: &mut [u8],
) -> Result<(), GuestFault> {
    if sregs.cr0 & CR0_PG == 0 {
        return mem
            .read_slice(buf, GuestAddress(addr))
            .map_err(|_| GuestFault);
    }
    if sregs.efer & EFER_LMA == 0 || sregs.cr4 & CR4_LA57 != 0 {
        return Err(GuestFault);
    }
    seraph_memory::walk::read_virt(mem, sregs.cr3, addr, buf).map_err(|_| GuestFault)
}

/// True if guest-physical `addr..addr + len` is backed by guest memory.
pub fn physically_backed(mem: &GuestMemoryMmap, addr: u64, len: usize) -> bool {
    use vm_memory::GuestMemoryBackend;
    mem.check_range(GuestAddress(addr), len.max(1))
}

/// The machine as the hypercall dispatcher sees it.
pub(crate) struct GuestView<'a, V: Vcpu + ?Sized> {
    pub(crate) vcpu: &'a V,
    pub(crate) mem: &'a GuestMemoryMmap,
    pub(crate) console: &'a mut Console,
    pub(crate) oracle: &'a OracleClock,
}

impl<V: Vcpu + ?Sized> HypercallContext for GuestView<'_, V> {
    fn read_guest_virtual(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), GuestFault> {
        let sregs = self.vcpu.special_regs().map_err(|_| GuestFault)?;
        read_guest(self.mem, &sregs, addr, buf)
    }

    fn print(&mut self, bytes: &[u8]) {
        self.console.write(bytes);
    }

    fn unix_time_ns(&self) -> u64 {
        self.oracle.unix_time_ns()
    }
}
