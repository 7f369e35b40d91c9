//! A bare KVM machine for the fault experiments: the guest is loaded and
//! entered exactly as `seraph_vmm::Machine` does it (the boot plan, the
//! spec's long-mode entry state), but the test keeps the vCPU, so it can
//! read `Vcpu::events()` right at the exit that ended the run, which the
//! VMM's run report does not carry today. Only PRINT and EXIT hypercalls
//! and halts are handled; other port I/O and MMIO read as all-ones.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use seraph_boot::{BootConfig, BootPlan, KernelImage};
use seraph_hypervisor::kvm::{KvmHypervisor, KvmVcpu, KvmVm};
use seraph_hypervisor::{
    Completion, Hypervisor, MemoryRegion, Regs, Segment, SpecialRegs, Vcpu, VcpuEvents, Vm,
    VmConfig, VmExit,
};
use seraph_memory::vm_memory::{
    Address, Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryRegion,
};
use seraph_memory::{GuestMemoryMmap, read_virt};

/// The hypercall doorbell port of the Seraph ABI.
const DOORBELL: u16 = 0xE4;
const RAM: u64 = 512 << 20;

/// Opens /dev/kvm for a test (the project's gate: skipped, and said so, with
/// SERAPH_V_SKIP_KVM=1; a clear failure without KVM otherwise).
pub fn kvm_or_skip(test: &str) -> Option<KvmHypervisor> {
    KvmHypervisor::for_test(test)
}

/// A guest booted on a bare KVM VM.
pub struct Bare {
    // Field order is drop order: the vCPU before the VM before its memory.
    pub vcpu: KvmVcpu,
    _vm: KvmVm,
    pub mem: GuestMemoryMmap,
}

/// How a bare run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// KVM_EXIT_SHUTDOWN (a triple fault).
    Shutdown,
    /// The guest called EXIT.
    Exit(u64),
    /// `hlts` HLT exits in a row at one RIP.
    Halted { rip: u64, interrupts_on: bool },
    /// Anything else (the exit, debug-printed).
    Other(String),
}

/// What the vCPU looked like when the run ended, read before anything else.
#[derive(Debug, Clone)]
pub struct Ending {
    pub end: End,
    pub regs: Regs,
    pub sregs: SpecialRegs,
    pub events: VcpuEvents,
    pub print: String,
}

fn flat(selector: u16, code: bool) -> Segment {
    Segment {
        base: 0,
        limit: 0xffff_ffff,
        selector,
        type_: if code { 0xb } else { 0x3 },
        present: true,
        dpl: 0,
        db: !code,
        s: true,
        l: code,
        g: true,
        avl: false,
        unusable: false,
    }
}

/// Loads `elf` and sets the spec's entry state, as `Machine::new` does.
pub fn boot(kvm: &KvmHypervisor, elf: &[u8]) -> Bare {
    let image = KernelImage::parse(elf, RAM).expect("kernel parses");
    let config = BootConfig {
        ram_size: RAM,
        ..BootConfig::default()
    };
    let plan = BootPlan::new(&image, &config).expect("boot plan");
    let mem = seraph_memory::create_guest_memory(RAM).expect("guest memory");
    let entry = plan.write(&mem, &image, elf).expect("boot plan written");
    let mut vm = kvm
        .create_vm(&VmConfig {
            hypercall_port: Some(DOORBELL),
            vmm_msrs: Vec::new(),
        })
        .expect("VM");
    for (slot, region) in mem.iter().enumerate() {
        let region = MemoryRegion {
            slot: slot as u32,
            guest_addr: region.start_addr().raw_value(),
            size: region.len(),
            host_addr: region.as_ptr(),
        };
        // SAFETY: the region belongs to `mem`, which `Bare` owns and drops
        // after the VM (field order); vm-memory never remaps a live region.
        unsafe { vm.map_memory(region).expect("map memory") };
    }
    let mut vcpu = vm.create_vcpu(0).expect("vCPU");
    vcpu.set_cpuid(&kvm.supported_cpuid().expect("CPUID"))
        .expect("set CPUID");
    let mut sregs = vcpu.special_regs().expect("sregs");
    let gdt = &entry.gdt;
    sregs.cs = flat(gdt.code_selector, true);
    let data = flat(gdt.data_selector, false);
    (sregs.ds, sregs.es, sregs.fs, sregs.gs, sregs.ss) = (data, data, data, data, data);
    sregs.tr = Segment {
        base: gdt.tss_base,
        limit: gdt.tss_limit,
        selector: gdt.tss_selector,
        type_: 0xb,
        present: true,
        ..Default::default()
    };
    sregs.gdt.base = gdt.gdt_base;
    sregs.gdt.limit = gdt.gdt_limit;
    sregs.idt.base = 0;
    sregs.idt.limit = 0;
    sregs.cr0 = 0x8001_0033; // PG | WP | NE | ET | MP | PE
    sregs.cr3 = entry.cr3;
    sregs.cr4 = 0x620; // OSXMMEXCPT | OSFXSR | PAE
    sregs.efer = 0xD00; // NXE | LMA | LME
    vcpu.set_special_regs(&sregs).expect("set sregs");
    vcpu.set_regs(&Regs {
        rip: entry.rip,
        rsp: entry.rsp,
        rdi: entry.rdi,
        rflags: 0x2,
        ..Default::default()
    })
    .expect("set regs");
    Bare { vcpu, _vm: vm, mem }
}

/// Runs until a shutdown, an EXIT, `hlts` HLTs at one RIP, or another exit.
/// MSR accesses are refused (#GP), as Seraph-V refuses unknown MSRs.
pub fn run(bare: &mut Bare, hlts: u32) -> Ending {
    let mut print = Vec::new();
    let mut last_hlt = (u64::MAX, 0u32);
    let end = loop {
        let exit = bare.vcpu.run().expect("KVM_RUN");
        let completion = match exit {
            VmExit::Shutdown(_) => break End::Shutdown,
            VmExit::Hypercall(hc) if hc.nr == 1 => break End::Exit(hc.args[0]),
            VmExit::Hypercall(hc) => {
                let (ptr, len) = (hc.args[0], hc.args[1].min(4096) as usize);
                let sregs = bare.vcpu.special_regs().expect("sregs");
                let mut buf = vec![0u8; len];
                let ok = read_virt(&bare.mem, sregs.cr3, ptr, &mut buf).is_ok();
                if ok {
                    print.extend_from_slice(&buf);
                }
                Some(Completion::Hypercall(if ok {
                    len as u64
                } else {
                    (-14i64) as u64
                }))
            }
            VmExit::Halt => {
                let regs = bare.vcpu.regs().expect("regs");
                last_hlt = if last_hlt.0 == regs.rip {
                    (regs.rip, last_hlt.1 + 1)
                } else {
                    (regs.rip, 1)
                };
                let interrupts_on = regs.rflags & (1 << 9) != 0;
                if !interrupts_on || last_hlt.1 >= hlts {
                    break End::Halted {
                        rip: regs.rip,
                        interrupts_on,
                    };
                }
                None
            }
            VmExit::IoIn { data, .. } | VmExit::MmioRead { data, .. } => {
                data.fill(0xFF);
                None
            }
            VmExit::IoOut { .. } | VmExit::MmioWrite { .. } | VmExit::Interrupted => None,
            VmExit::MsrRead { .. } => Some(Completion::MsrRead(None)),
            VmExit::MsrWrite { .. } => Some(Completion::MsrWrite(false)),
            other => break End::Other(format!("{other:?}")),
        };
        if let Some(c) = completion {
            bare.vcpu.complete(c).expect("complete");
        }
    };
    // Events first: nothing may run between the exit and this read.
    let events = bare.vcpu.events().expect("KVM_GET_VCPU_EVENTS");
    Ending {
        end,
        regs: bare.vcpu.regs().expect("regs"),
        sregs: bare.vcpu.special_regs().expect("sregs"),
        events,
        print: String::from_utf8_lossy(&print).into_owned(),
    }
}

/// Reads `len` bytes of guest-physical memory.
pub fn phys(mem: &GuestMemoryMmap, addr: u64, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    mem.read_slice(&mut buf, GuestAddress(addr))
        .expect("guest memory");
    buf
}
