//! The floor: a bare kvm-ioctls VM with no device model and no seraph crate
//! in its run loop, running the same guest ELF as Seraph-V.
//!
//! Two ways to lay out memory:
//! - [`Layout::SeraphBoot`]: guest memory and boot structures exactly as
//!   `seraph_vmm::Machine` makes them (seraph-memory + seraph-boot), so
//!   an exit benchmark compares only the run loops;
//! - [`Layout::Minimal`]: what the `kvm-floor` program does, the least that
//!   runs the guest: one anonymous RAM mapping, three page-table pages
//!   identity-mapping the first 1 GiB with 2 MiB pages (so no LAPIC page:
//!   for port-I/O guests only), the PT_LOADs copied in, no GDT in memory
//!   (segment registers are loaded directly).

use std::io::Write;

use kvm_bindings::{KVM_MAX_CPUID_ENTRIES, kvm_regs, kvm_segment, kvm_userspace_memory_region};
use kvm_ioctls::{Kvm, VcpuExit, VcpuFd, VmFd};
use vm_memory::{
    Address, Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion,
};

use crate::elf::MinimalElf;
use crate::error::BenchError;

/// Port of the Seraph hypercall doorbell.
pub const DOORBELL_PORT: u16 = 0xE4;
/// COM1 transmit register.
pub const COM1_THR: u16 = 0x3F8;
/// COM1 line control register.
pub const COM1_LCR: u16 = 0x3FB;
/// What the floor answers to any port read: LSR with THRE and TEMT set,
/// so a guest polling COM1 never waits.
pub const PORT_READ_VALUE: u8 = 0x60;

const HC_PRINT: u64 = 0;
const HC_EXIT: u64 = 1;
/// -ENOSYS, for hypercalls the floor does not know.
const HC_ENOSYS: u64 = (-38i64) as u64;

// Entry state (the same values as the Seraph boot protocol's).
const CR0: u64 = 1 | (1 << 1) | (1 << 4) | (1 << 5) | (1 << 16) | (1 << 31);
const CR4: u64 = (1 << 5) | (1 << 9) | (1 << 10);
const EFER: u64 = (1 << 8) | (1 << 10) | (1 << 11);
const RFLAGS_RESERVED: u64 = 0x2;

/// Minimal layout: page tables at 0x1000 (PML4), 0x2000 (PDPT), 0x3000 (PD).
const MIN_PML4: u64 = 0x1000;
const MIN_PDPT: u64 = 0x2000;
const MIN_PD: u64 = 0x3000;
const MIN_STACK_TOP: u64 = 0x9_0000;
const PTE_P_RW: u64 = 0x3;
const PTE_PS: u64 = 0x80;
const LARGE_PAGE: u64 = 0x20_0000;

/// How the floor lays out guest memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// As Seraph-V does (seraph-memory regions, seraph-boot plan).
    SeraphBoot,
    /// The minimum: RAM, 3 page-table pages, the PT_LOADs.
    Minimal,
}

/// What a floor run saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FloorRun {
    /// The guest's EXIT status.
    pub status: u64,
    /// Port writes other than the doorbell.
    pub port_writes: u64,
    /// Port reads.
    pub port_reads: u64,
    /// MMIO reads.
    pub mmio_reads: u64,
    /// MMIO writes.
    pub mmio_writes: u64,
    /// Bytes written to COM1's THR (kept only when echoing).
    pub serial: Vec<u8>,
}

/// A bare KVM VM with one vCPU at the guest's entry point.
pub struct FloorVm {
    // Field order is drop order: vCPU, VM, then the memory KVM points into.
    vcpu: VcpuFd,
    _vm: VmFd,
    mem: GuestMemoryMmap,
}

impl std::fmt::Debug for FloorVm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FloorVm").finish_non_exhaustive()
    }
}

fn segment(selector: u16, code: bool) -> kvm_segment {
    kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector,
        type_: if code { 0xb } else { 0x3 },
        present: 1,
        dpl: 0,
        db: u8::from(!code),
        s: 1,
        l: u8::from(code),
        g: 1,
        avl: 0,
        unusable: 0,
        padding: 0,
    }
}

fn mem_err(e: impl std::fmt::Display) -> BenchError {
    BenchError::Memory(e.to_string())
}

/// Entry registers the layout produced.
struct Entry {
    rip: u64,
    rsp: u64,
    rdi: u64,
    cr3: u64,
    gdt_base: u64,
    gdt_limit: u16,
    code_selector: u16,
    data_selector: u16,
    tss_selector: u16,
    tss_base: u64,
    tss_limit: u32,
}

fn seraph_layout(kernel: &[u8], ram_size: u64) -> Result<(GuestMemoryMmap, Entry), BenchError> {
    let config = seraph_boot::BootConfig {
        ram_size,
        ..Default::default()
    };
    let image = seraph_boot::KernelImage::parse(kernel, ram_size)
        .map_err(|e| BenchError::Boot(e.to_string()))?;
    let plan =
        seraph_boot::BootPlan::new(&image, &config).map_err(|e| BenchError::Boot(e.to_string()))?;
    let mem = seraph_memory::create_guest_memory(ram_size).map_err(mem_err)?;
    let entry = plan
        .write(&mem, &image, kernel)
        .map_err(|e| BenchError::Boot(e.to_string()))?;
    let gdt = entry.gdt;
    Ok((
        mem,
        Entry {
            rip: entry.rip,
            rsp: entry.rsp,
            rdi: entry.rdi,
            cr3: entry.cr3,
            gdt_base: gdt.gdt_base,
            gdt_limit: gdt.gdt_limit,
            code_selector: gdt.code_selector,
            data_selector: gdt.data_selector,
            tss_selector: gdt.tss_selector,
            tss_base: gdt.tss_base,
            tss_limit: gdt.tss_limit,
        },
    ))
}

/// The three page-table pages of the minimal layout, as (address, bytes).
pub fn minimal_page_tables() -> [(u64, Vec<u8>); 3] {
    let page = |entries: &mut dyn Iterator<Item = u64>| -> Vec<u8> {
        let mut bytes = vec![0u8; 4096];
        for (slot, value) in bytes.chunks_exact_mut(8).zip(entries) {
            slot.copy_from_slice(&value.to_le_bytes());
        }
        bytes
    };
    [
        (MIN_PML4, page(&mut std::iter::once(MIN_PDPT | PTE_P_RW))),
        (MIN_PDPT, page(&mut std::iter::once(MIN_PD | PTE_P_RW))),
        (
            MIN_PD,
            page(&mut (0..512u64).map(|i| (i * LARGE_PAGE) | PTE_P_RW | PTE_PS)),
        ),
    ]
}

fn minimal_layout(kernel: &[u8], ram_size: u64) -> Result<(GuestMemoryMmap, Entry), BenchError> {
    let elf = MinimalElf::parse(kernel)?;
    let len = usize::try_from(ram_size).map_err(mem_err)?;
    let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), len)]).map_err(mem_err)?;
    for (addr, bytes) in minimal_page_tables() {
        mem.write_slice(&bytes, GuestAddress(addr))
            .map_err(mem_err)?;
    }
    for seg in &elf.segments {
        let fits = seg
            .paddr
            .checked_add(seg.mem_size)
            .is_some_and(|end| end <= ram_size && seg.paddr >= 0x10_0000);
        let bytes = kernel
            .get(seg.offset..seg.offset.saturating_add(seg.file_size))
            .filter(|_| fits)
            .ok_or_else(|| BenchError::Elf(format!("segment at {:#x} outside RAM", seg.paddr)))?;
        mem.write_slice(bytes, GuestAddress(seg.paddr))
            .map_err(mem_err)?;
        // Fresh anonymous memory is already zero: no bss work needed.
    }
    Ok((
        mem,
        Entry {
            rip: elf.entry,
            rsp: MIN_STACK_TOP,
            rdi: 0,
            cr3: MIN_PML4,
            gdt_base: 0,
            gdt_limit: 0,
            code_selector: 0x08,
            data_selector: 0x10,
            tss_selector: 0x18,
            tss_base: 0,
            tss_limit: 0x67,
        },
    ))
}

/// The minimal layout alone (no VM): guest memory with the page tables and
/// PT_LOADs written, as `kvm-floor` makes it.
pub fn minimal_memory(kernel: &[u8], ram_size: u64) -> Result<GuestMemoryMmap, BenchError> {
    minimal_layout(kernel, ram_size).map(|(mem, _)| mem)
}

impl FloorVm {
    /// Creates the VM, lays out memory for `kernel` and puts the vCPU at its entry.
    pub fn new(
        kvm: &Kvm,
        kernel: &[u8],
        layout: Layout,
        ram_size: u64,
    ) -> Result<Self, BenchError> {
        let (mem, entry) = match layout {
            Layout::SeraphBoot => seraph_layout(kernel, ram_size)?,
            Layout::Minimal => minimal_layout(kernel, ram_size)?,
        };
        let vm = kvm.create_vm().map_err(BenchError::kvm("KVM_CREATE_VM"))?;
        for (slot, region) in mem.iter().enumerate() {
            let region = kvm_userspace_memory_region {
                slot: u32::try_from(slot).map_err(mem_err)?,
                flags: 0,
                guest_phys_addr: region.start_addr().raw_value(),
                memory_size: region.len(),
                userspace_addr: region.as_ptr() as u64,
            };
            // SAFETY: the range belongs to `mem`, which this struct owns and
            // drops after the VM (field order); vm-memory never remaps it.
            unsafe { vm.set_user_memory_region(region) }
                .map_err(BenchError::kvm("KVM_SET_USER_MEMORY_REGION"))?;
        }
        let vcpu = vm
            .create_vcpu(0)
            .map_err(BenchError::kvm("KVM_CREATE_VCPU"))?;
        // Long mode needs CPUID to say LM: hand the vCPU what KVM supports.
        let cpuid = kvm
            .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
            .map_err(BenchError::kvm("KVM_GET_SUPPORTED_CPUID"))?;
        vcpu.set_cpuid2(&cpuid)
            .map_err(BenchError::kvm("KVM_SET_CPUID2"))?;
        let mut sregs = vcpu.get_sregs().map_err(BenchError::kvm("KVM_GET_SREGS"))?;
        sregs.cs = segment(entry.code_selector, true);
        let data = segment(entry.data_selector, false);
        sregs.ds = data;
        sregs.es = data;
        sregs.fs = data;
        sregs.gs = data;
        sregs.ss = data;
        sregs.tr = kvm_segment {
            base: entry.tss_base,
            limit: entry.tss_limit,
            selector: entry.tss_selector,
            type_: 0xb,
            present: 1,
            ..Default::default()
        };
        sregs.gdt.base = entry.gdt_base;
        sregs.gdt.limit = entry.gdt_limit;
        sregs.idt.base = 0;
        sregs.idt.limit = 0;
        sregs.cr0 = CR0;
        sregs.cr3 = entry.cr3;
        sregs.cr4 = CR4;
        sregs.efer = EFER;
        vcpu.set_sregs(&sregs)
            .map_err(BenchError::kvm("KVM_SET_SREGS"))?;
        vcpu.set_regs(&kvm_regs {
            rip: entry.rip,
            rsp: entry.rsp,
            rdi: entry.rdi,
            rflags: RFLAGS_RESERVED,
            ..Default::default()
        })
        .map_err(BenchError::kvm("KVM_SET_REGS"))?;
        Ok(Self { vcpu, _vm: vm, mem })
    }

    /// Guest memory (for residency counts).
    pub fn memory(&self) -> &GuestMemoryMmap {
        &self.mem
    }

    /// The exit-benchmark loop: `run()`, count the exit, continue, until
    /// the doorbell rings (the guest's EXIT). No device model, no register
    /// reads: the floor of a port-I/O or MMIO round trip.
    pub fn run_exit_loop(&mut self) -> Result<FloorRun, BenchError> {
        let mut run = FloorRun::default();
        loop {
            match self.vcpu.run().map_err(BenchError::kvm("KVM_RUN"))? {
                VcpuExit::IoOut(DOORBELL_PORT, _) => return Ok(run),
                VcpuExit::IoOut(..) => run.port_writes += 1,
                VcpuExit::MmioRead(..) => run.mmio_reads += 1,
                VcpuExit::MmioWrite(..) => run.mmio_writes += 1,
                VcpuExit::IoIn(_, data) => {
                    data.fill(PORT_READ_VALUE);
                    run.port_reads += 1;
                }
                other => return Err(BenchError::Guest(format!("unexpected exit {other:?}"))),
            }
        }
    }

    /// Runs a guest that PRINTs, writes COM1 and EXITs (bench-hello): PRINT
    /// bytes go to `out` at once, COM1 bytes (THR writes with DLAB clear) go
    /// to `out` at the EXIT, every port read returns [`PORT_READ_VALUE`].
    /// The run's `status` is the EXIT status.
    pub fn run_guest(&mut self, out: &mut dyn Write) -> Result<FloorRun, BenchError> {
        let mut run = FloorRun::default();
        // LCR bit 7 (DLAB) turns the THR port into the divisor latch.
        let mut dlab = false;
        loop {
            let doorbell = match self.vcpu.run().map_err(BenchError::kvm("KVM_RUN"))? {
                VcpuExit::IoOut(DOORBELL_PORT, _) => true,
                VcpuExit::IoOut(COM1_THR, data) => {
                    if !dlab {
                        run.serial.extend_from_slice(data);
                    }
                    run.port_writes += 1;
                    false
                }
                VcpuExit::IoOut(COM1_LCR, data) => {
                    dlab = data.first().is_some_and(|lcr| lcr & 0x80 != 0);
                    run.port_writes += 1;
                    false
                }
                VcpuExit::IoOut(..) => {
                    run.port_writes += 1;
                    false
                }
                VcpuExit::IoIn(_, data) => {
                    data.fill(PORT_READ_VALUE);
                    run.port_reads += 1;
                    false
                }
                VcpuExit::MmioRead(_, data) => {
                    data.fill(0xff);
                    run.mmio_reads += 1;
                    false
                }
                VcpuExit::MmioWrite(..) => {
                    run.mmio_writes += 1;
                    false
                }
                other => return Err(BenchError::Guest(format!("unexpected exit {other:?}"))),
            };
            if !doorbell {
                continue;
            }
            let mut regs = self
                .vcpu
                .get_regs()
                .map_err(BenchError::kvm("KVM_GET_REGS"))?;
            match regs.rax {
                HC_EXIT => {
                    run.status = regs.rdi;
                    let _ = out.write_all(&run.serial);
                    let _ = out.flush();
                    return Ok(run);
                }
                HC_PRINT => {
                    // Identity-linked guests: the virtual address is physical.
                    let len = usize::try_from(regs.rsi.min(4096)).unwrap_or(0);
                    let mut bytes = vec![0u8; len];
                    regs.rax = match self.mem.read_slice(&mut bytes, GuestAddress(regs.rdi)) {
                        Ok(()) => {
                            let _ = out.write_all(&bytes);
                            let _ = out.flush();
                            len as u64
                        }
                        Err(_) => (-14i64) as u64,
                    };
                }
                _ => regs.rax = HC_ENOSYS,
            }
            self.vcpu
                .set_regs(&regs)
                .map_err(BenchError::kvm("KVM_SET_REGS"))?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_page_tables_identity_map_the_first_gib() {
        let [(pml4_at, pml4), (pdpt_at, pdpt), (pd_at, pd)] = minimal_page_tables();
        assert_eq!((pml4_at, pdpt_at, pd_at), (0x1000, 0x2000, 0x3000));
        let entry =
            |page: &[u8], i: usize| u64::from_le_bytes(page[i * 8..i * 8 + 8].try_into().unwrap());
        assert_eq!(entry(&pml4, 0), 0x2003);
        assert_eq!(entry(&pml4, 1), 0);
        assert_eq!(entry(&pdpt, 0), 0x3003);
        assert_eq!(entry(&pd, 0), 0x83);
        assert_eq!(entry(&pd, 1), 0x20_0083);
        assert_eq!(entry(&pd, 511), 0x3FE0_0083);
    }

    /// Opens /dev/kvm for a real-KVM test, under the project's KVM test
    /// rule (`KvmHypervisor::for_test`).
    fn kvm() -> Option<Kvm> {
        seraph_hypervisor::kvm::KvmHypervisor::for_test("floor test")?;
        Kvm::new().ok()
    }

    #[test]
    fn floor_counts_every_exit_of_the_exit_guests() {
        let Some(kvm) = kvm() else { return };
        for layout in [Layout::SeraphBoot, Layout::Minimal] {
            let pio = crate::patch::with_blocks(seraph_guests::BENCH_PIO, 2).unwrap();
            let mut vm = FloorVm::new(&kvm, &pio, layout, 64 << 20).unwrap();
            let run = vm.run_exit_loop().unwrap();
            assert_eq!((run.port_writes, run.mmio_reads), (32, 0), "{layout:?}");
        }
        // The minimal layout maps only the first 1 GiB: no LAPIC page.
        let mmio = crate::patch::with_blocks(seraph_guests::BENCH_MMIO, 3).unwrap();
        let mut vm = FloorVm::new(&kvm, &mmio, Layout::SeraphBoot, 64 << 20).unwrap();
        let run = vm.run_exit_loop().unwrap();
        assert_eq!((run.port_writes, run.mmio_reads), (0, 48));
    }

    #[test]
    fn floor_runs_bench_hello_to_its_exit_status() {
        let Some(kvm) = kvm() else { return };
        let mut vm =
            FloorVm::new(&kvm, seraph_guests::BENCH_HELLO, Layout::Minimal, 64 << 20).unwrap();
        let mut out = Vec::new();
        let run = vm.run_guest(&mut out).unwrap();
        assert_eq!(run.status, 5);
        let expected = format!(
            "{}{}",
            seraph_guests::BENCH_HELLO_STARTED,
            seraph_guests::BENCH_HELLO_LINE
        );
        assert_eq!(String::from_utf8(out).unwrap(), expected);
        // One LSR poll per byte (THRE is always set here), 7 init writes.
        let line = seraph_guests::BENCH_HELLO_LINE.len() as u64;
        assert_eq!(run.port_reads, line);
        assert_eq!(run.port_writes, line + 7);
    }

    #[test]
    fn entry_segments_are_flat_long_mode() {
        let cs = segment(0x08, true);
        assert_eq!((cs.l, cs.db, cs.type_, cs.present), (1, 0, 0xb, 1));
        let ds = segment(0x10, false);
        assert_eq!((ds.l, ds.db, ds.type_), (0, 1, 0x3));
        assert_eq!(CR0, 0x8001_0033);
        assert_eq!(EFER, 0xD00);
    }
}
