//! PVH and Linux boot protocols end to end on /dev/kvm (issue #17): the
//! images are loaded by `seraph_boot::load_kernel`, the vCPU is set from
//! its `CpuEntry`, and a small run loop below plays COM1 (THR and LSR),
//! the EXIT hypercall and isa-debug-exit. Each guest checks its own boot
//! structures from inside and reports over COM1.
//!
//! The run loop stands in for `seraph_vmm::Machine` until the VMM applies a
//! `CpuEntry` itself; `entry_registers` is the mapping the VMM needs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use seraph_v::boot::{BootConfig, BootProtocol, BootRequest, CpuEntry, LoadedKernel, load_kernel};
use seraph_v::hypervisor::kvm::KvmHypervisor;
use seraph_v::hypervisor::{
    Completion, Hypervisor, MemoryRegion, Regs, SpecialRegs, Vcpu, Vm, VmConfig, VmExit,
};
use seraph_v::memory::vm_memory::{GuestMemoryBackend, GuestMemoryRegion};
use seraph_v::memory::{GuestMemoryMmap, create_guest_memory};

const MIB: u64 = 1 << 20;

/// The registers a `CpuEntry` describes, on top of the vCPU's reset state
/// (the VMM's own function; the APIC base stays as the vCPU has it).
fn entry_registers(entry: &CpuEntry, reset: &SpecialRegs) -> (Regs, SpecialRegs) {
    seraph_v::vmm::entry_registers(entry, reset, reset.apic_base)
}

/// How a run ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// EXIT hypercall with this status.
    Exit(u64),
    /// isa-debug-exit (port 0xF4) with this value.
    DebugExit(u32),
    /// Anything else (halt, fault, emulation failure, too many exits).
    Other(String),
}

struct Run {
    serial: String,
    end: End,
}

fn boot(
    kvm: &KvmHypervisor,
    ram_size: u64,
    kernel: &[u8],
    request: BootRequest<'_>,
) -> (LoadedKernel, Run) {
    let mem: GuestMemoryMmap = create_guest_memory(ram_size).unwrap();
    let loaded = load_kernel(&mem, kernel, &request).unwrap();
    let run = run(kvm, &mem, &loaded.entry);
    (loaded, run)
}

fn run(kvm: &KvmHypervisor, mem: &GuestMemoryMmap, entry: &CpuEntry) -> Run {
    let mut vm = kvm
        .create_vm(&VmConfig {
            hypercall_port: Some(0xE4),
            vmm_msrs: Vec::new(),
        })
        .unwrap();
    for (slot, region) in mem.iter().enumerate() {
        let region = MemoryRegion {
            slot: slot as u32,
            guest_addr: region.start_addr().0,
            size: region.len(),
            host_addr: region.as_ptr(),
        };
        // SAFETY: `mem` outlives the VM: both live until this function returns,
        // and the VM is dropped first (declared later).
        unsafe { vm.map_memory(region).unwrap() };
    }
    let mut vcpu = vm.create_vcpu(0).unwrap();
    vcpu.set_cpuid(&kvm.supported_cpuid().unwrap()).unwrap();
    let (regs, sregs) = entry_registers(entry, &vcpu.special_regs().unwrap());
    vcpu.set_special_regs(&sregs).unwrap();
    vcpu.set_regs(&regs).unwrap();

    let mut serial = Vec::new();
    let mut dlab = false;
    for _ in 0..1_000_000 {
        let completion = match vcpu.run().unwrap() {
            // COM1: THR bytes (not the divisor latch while LCR.DLAB is set).
            VmExit::IoOut {
                port: 0x3FB, data, ..
            } => {
                dlab = data.first().is_some_and(|lcr| lcr & 0x80 != 0);
                None
            }
            VmExit::IoOut {
                port: 0x3F8, data, ..
            } => {
                if !dlab {
                    serial.extend_from_slice(data);
                }
                None
            }
            VmExit::IoOut {
                port: 0xF4, data, ..
            } => {
                let mut v = [0u8; 4];
                v[..data.len().min(4)].copy_from_slice(&data[..data.len().min(4)]);
                return Run {
                    serial: String::from_utf8_lossy(&serial).into_owned(),
                    end: End::DebugExit(u32::from_le_bytes(v)),
                };
            }
            VmExit::IoOut { .. } | VmExit::MmioWrite { .. } | VmExit::Interrupted => None,
            VmExit::IoIn { port, data, .. } => {
                data.fill(if port == 0x3FD { 0x60 } else { 0xFF });
                None
            }
            VmExit::MmioRead { data, .. } => {
                data.fill(0xFF);
                None
            }
            VmExit::Hypercall(call) if call.nr == 1 => {
                return Run {
                    serial: String::from_utf8_lossy(&serial).into_owned(),
                    end: End::Exit(call.args[0]),
                };
            }
            VmExit::Hypercall(_) => Some(Completion::Hypercall(-38i64 as u64)),
            VmExit::MsrRead { .. } => Some(Completion::MsrRead(None)),
            VmExit::MsrWrite { .. } => Some(Completion::MsrWrite(false)),
            VmExit::Cpuid { .. } => Some(Completion::Cpuid([0; 4])),
            other => {
                let what = format!("{other:?}");
                let rip = vcpu.regs().map_or(0, |r| r.rip);
                return Run {
                    serial: String::from_utf8_lossy(&serial).into_owned(),
                    end: End::Other(format!("{what} at rip {rip:#x}")),
                };
            }
        };
        if let Some(c) = completion {
            vcpu.complete(c).unwrap();
        }
    }
    Run {
        serial: String::from_utf8_lossy(&serial).into_owned(),
        end: End::Other("no end after 1000000 exits".into()),
    }
}

fn request<'a>(
    ram_size: u64,
    cmdline: &'a str,
    initrd: Option<&'a [u8]>,
    force: Option<BootProtocol>,
) -> BootRequest<'a> {
    BootRequest {
        config: BootConfig {
            ram_size,
            ..BootConfig::default()
        },
        cmdline,
        initrd,
        force,
    }
}

fn assert_pvh_check_passed(run: &Run, ram_size: u64) {
    let serial = &run.serial;
    assert!(serial.starts_with("pvh-check: hello\n"), "serial: {serial}");
    assert!(
        serial.contains(&format!("pvh-check: ram top {ram_size:#018x}\n")),
        "serial: {serial}"
    );
    assert!(
        serial.contains("pvh-check: framebuffer window reserved\n"),
        "serial: {serial}"
    );
    assert!(
        serial.contains("pvh-check: local APIC page reserved\n"),
        "serial: {serial}"
    );
    assert!(
        serial.ends_with(seraph_guests::PVH_CHECK_OK),
        "serial: {serial}"
    );
    assert_eq!(run.end, End::Exit(0), "serial: {serial}");
}

#[test]
fn pvh_elf64_guest_builds_long_mode_and_checks_its_start_info() {
    let Some(kvm) = KvmHypervisor::for_test("pvh_elf64_guest") else {
        return;
    };
    let initrd = seraph_guests::test_initrd();
    let (loaded, run) = boot(
        &kvm,
        512 * MIB,
        seraph_guests::PVH_CHECK,
        request(
            512 * MIB,
            seraph_guests::PVH_CHECK_CMDLINE,
            Some(&initrd),
            Some(BootProtocol::Pvh),
        ),
    );
    assert_eq!(loaded.protocol, BootProtocol::Pvh);
    // Not forced, the same image boots as Seraph: its ELF entry is the 64-bit one.
    assert_eq!(loaded.detection.protocol, BootProtocol::Seraph);
    assert!(matches!(loaded.entry, CpuEntry::Protected32(e) if e.ebx == 0xE000));
    assert_pvh_check_passed(&run, 512 * MIB);
}

#[test]
fn pvh_elf32_guest_is_detected_as_pvh_and_passes() {
    let Some(kvm) = KvmHypervisor::for_test("pvh_elf32_guest") else {
        return;
    };
    let initrd = seraph_guests::test_initrd();
    let (loaded, run) = boot(
        &kvm,
        256 * MIB,
        seraph_guests::PVH_CHECK_32,
        request(
            256 * MIB,
            seraph_guests::PVH_CHECK_CMDLINE,
            Some(&initrd),
            None,
        ),
    );
    assert_eq!(loaded.protocol, BootProtocol::Pvh);
    assert_eq!(loaded.initrd.map(|m| m.size), Some(initrd.len() as u64));
    assert_pvh_check_passed(&run, 256 * MIB);
}

#[test]
fn qemu_pvh_images_boot_unchanged() {
    let Some(kvm) = KvmHypervisor::for_test("qemu_pvh_images") else {
        return;
    };
    // The bench's QEMU guest: its ELF entry is its PVH entry, so it is PVH by default.
    let (loaded, run) = boot(
        &kvm,
        128 * MIB,
        seraph_guests::BENCH_PVH,
        request(128 * MIB, "", None, None),
    );
    assert_eq!(loaded.protocol, BootProtocol::Pvh);
    assert_eq!(run.serial, seraph_guests::BENCH_HELLO_LINE);
    // It ends with the EXIT hypercall (QEMU ignores port 0xE4 and takes the
    // isa-debug-exit write that follows).
    assert_eq!(
        run.end,
        End::Exit(u64::from(seraph_guests::BENCH_EXIT_STATUS))
    );

    // A PC-runtime guest (what the device test guests are built on), PVH forced.
    let (_, run) = boot(
        &kvm,
        128 * MIB,
        seraph_guests::PC_SELFTEST,
        request(128 * MIB, "", None, Some(BootProtocol::Pvh)),
    );
    assert!(
        run.serial.starts_with("pc-selftest: hello (pvh)\n"),
        "serial: {}",
        run.serial
    );
    assert!(
        run.serial.ends_with(seraph_guests::PC_SELFTEST_OK),
        "serial: {}",
        run.serial
    );
    assert_eq!(run.end, End::Exit(0));
}

#[test]
fn tiny_bzimage_boots_through_the_64bit_linux_entry_and_checks_its_boot_params() {
    let Some(kvm) = KvmHypervisor::for_test("tiny_bzimage") else {
        return;
    };
    let initrd = seraph_guests::test_initrd();
    let (loaded, run) = boot(
        &kvm,
        512 * MIB,
        seraph_guests::LINUX_CHECK_BZIMAGE,
        request(
            512 * MIB,
            seraph_guests::LINUX_CHECK_CMDLINE,
            Some(&initrd),
            None,
        ),
    );
    assert_eq!(loaded.protocol, BootProtocol::Linux);
    assert!(matches!(loaded.entry, CpuEntry::Long64(e) if e.rip == 0x10_0200 && e.rsi == 0xE000));
    let serial = &run.serial;
    assert!(
        serial.starts_with("linux-check: hello (64-bit entry)\n"),
        "serial: {serial}"
    );
    assert!(
        serial.contains("linux-check: ram top 0x0000000020000000\n"),
        "serial: {serial}"
    );
    assert!(
        serial.ends_with(seraph_guests::LINUX_CHECK_OK),
        "serial: {serial}"
    );
    assert_eq!(run.end, End::Exit(0), "serial: {serial}");
}

#[test]
fn bzimage_without_xlf_kernel_64_enters_at_its_32bit_entry() {
    let Some(kvm) = KvmHypervisor::for_test("bzimage_32bit_entry") else {
        return;
    };
    let mut image = seraph_guests::LINUX_CHECK_BZIMAGE.to_vec();
    image[0x236] = 0; // xloadflags: no 64-bit entry
    let (loaded, run) = boot(&kvm, 64 * MIB, &image, request(64 * MIB, "", None, None));
    assert!(
        matches!(loaded.entry, CpuEntry::Protected32(e) if e.eip == 0x10_0000 && e.esi == 0xE000)
    );
    // The kernel's 32-bit entry reports itself and exits 32.
    assert_eq!(run.serial, "linux-check: 32-bit entry\n");
    assert_eq!(run.end, End::Exit(32));
}
