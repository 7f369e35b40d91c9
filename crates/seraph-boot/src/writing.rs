//! Writing a [`BootPlan`] into fresh guest memory.

use seraph_memory::MemoryError;
use seraph_memory::gdt::write_gdt_and_tss;
use seraph_memory::page_tables::write_page_tables;
use vm_memory::GuestMemoryMmap;

use crate::elf::KernelImage;
use crate::error::PlanError;
use crate::placement::Placement;
use crate::plan::{BootPlan, EntryState, TSS_OFFSET};

impl BootPlan {
    /// Loads the kernel and writes page tables, GDT/TSS, boot info and
    /// memory map. `kernel` and `kernel_bytes` must be what the plan was
    /// made from. `mem` must be fresh from
    /// [`seraph_memory::create_guest_memory`] (all zero): the primordial
    /// arena (promised zeroed), the stacks and the kernel's bss are left
    /// untouched, so none of them costs host memory before the guest uses it.
    pub fn write(
        &self,
        mem: &GuestMemoryMmap,
        kernel: &KernelImage,
        kernel_bytes: &[u8],
    ) -> Result<EntryState, PlanError> {
        self.write_to(mem, kernel, kernel_bytes, false)
    }

    /// [`BootPlan::write`] into memory that held something before (a
    /// reused guest memory): also zeroes the kernel's bss, the stacks and
    /// the boot-info and GDT pages. The primordial arena is still not written.
    pub fn write_over_used(
        &self,
        mem: &GuestMemoryMmap,
        kernel: &KernelImage,
        kernel_bytes: &[u8],
    ) -> Result<EntryState, PlanError> {
        self.write_to(mem, kernel, kernel_bytes, true)
    }

    fn write_to(
        &self,
        mem: &GuestMemoryMmap,
        kernel: &KernelImage,
        kernel_bytes: &[u8],
        used: bool,
    ) -> Result<EntryState, PlanError> {
        if kernel.phys_base != self.kernel_phys_base
            || kernel.size != self.kernel_size
            || kernel.entry != self.entry
            || kernel.virt_base != self.kernel_virt_base
        {
            return Err(PlanError::KernelMismatch);
        }
        // Fresh guest memory (see `create_guest_memory`) is already zero:
        // the 16 MiB arena, the stacks and the rest of the boot-info and GDT
        // pages are written only over used memory. Touching them would cost
        // a host page fault per page before the guest runs (the arena alone
        // 4096), and a start-up that a bare-KVM program does not pay.
        if used {
            for (what, p) in [
                ("initial stack", self.stack),
                ("IST1 stack", self.ist_stack),
                ("boot info", self.boot_info),
                ("GDT and TSS", self.gdt),
            ] {
                zero(mem, what, p)?;
            }
            kernel.load_zeroing_bss(mem, kernel_bytes)?;
        } else {
            kernel.load(mem, kernel_bytes)?;
        }
        write_page_tables(mem, &self.page_tables)?;
        let gdt = write_gdt_and_tss(
            mem,
            self.gdt.base,
            self.gdt.base + TSS_OFFSET,
            self.ist_stack.end(),
        )?;
        write_bytes(
            mem,
            "boot info",
            &self.boot_info().to_bytes(),
            self.boot_info.base,
        )?;
        let map: Vec<u8> = self.memory_map.iter().flat_map(|d| d.to_bytes()).collect();
        write_bytes(mem, "memory map", &map, self.memory_map_base)?;
        Ok(self.entry_state(gdt))
    }
}

use seraph_memory::write_guest as write_bytes;

fn zero(mem: &GuestMemoryMmap, what: &'static str, p: Placement) -> Result<(), MemoryError> {
    static ZEROS: [u8; 0x1_0000] = [0; 0x1_0000];
    let mut at = p.base;
    while at < p.end() {
        let chunk = (p.end() - at).min(ZEROS.len() as u64);
        write_bytes(mem, what, &ZEROS[..chunk as usize], at)?;
        at += chunk;
    }
    Ok(())
}
