//! Unit tests: the built ELF files are what the docs promise. The ELF headers
//! are parsed by hand here (no ELF crate) so the tests do not share a parser
//! with the VMM under test.

use super::*;
use std::process::Command;

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const PF_X: u32 = 1;
const PF_W: u32 = 2;
const PF_R: u32 = 4;
const SHT_SYMTAB: u32 = 2;
const HIGHER_HALF_BASE: u64 = 0xFFFF_8000_0000_0000;

fn u16_at(bytes: &[u8], offset: usize) -> u16 {
    u16::from_le_bytes(bytes[offset..offset + 2].try_into().unwrap())
}

fn u32_at(bytes: &[u8], offset: usize) -> u32 {
    u32::from_le_bytes(bytes[offset..offset + 4].try_into().unwrap())
}

fn u64_at(bytes: &[u8], offset: usize) -> u64 {
    u64::from_le_bytes(bytes[offset..offset + 8].try_into().unwrap())
}

#[derive(Debug, Clone, Copy)]
struct Phdr {
    p_type: u32,
    flags: u32,
    offset: u64,
    vaddr: u64,
    paddr: u64,
    filesz: u64,
    memsz: u64,
    align: u64,
}

struct Elf<'a> {
    bytes: &'a [u8],
    e_type: u16,
    machine: u16,
    entry: u64,
    phdrs: Vec<Phdr>,
}

impl<'a> Elf<'a> {
    fn parse(bytes: &'a [u8]) -> Self {
        assert_eq!(&bytes[0..4], b"\x7fELF", "ELF magic");
        assert_eq!(bytes[4], 2, "ELFCLASS64");
        assert_eq!(bytes[5], 1, "ELFDATA2LSB");
        assert_eq!(bytes[6], 1, "EV_CURRENT");
        assert_eq!(u16_at(bytes, 54), 56, "e_phentsize");
        let phoff = usize::try_from(u64_at(bytes, 32)).unwrap();
        let phnum = usize::from(u16_at(bytes, 56));
        let phdrs = (0..phnum)
            .map(|i| {
                let at = phoff + i * 56;
                Phdr {
                    p_type: u32_at(bytes, at),
                    flags: u32_at(bytes, at + 4),
                    offset: u64_at(bytes, at + 8),
                    vaddr: u64_at(bytes, at + 16),
                    paddr: u64_at(bytes, at + 24),
                    filesz: u64_at(bytes, at + 32),
                    memsz: u64_at(bytes, at + 40),
                    align: u64_at(bytes, at + 48),
                }
            })
            .collect();
        Elf {
            bytes,
            e_type: u16_at(bytes, 16),
            machine: u16_at(bytes, 18),
            entry: u64_at(bytes, 24),
            phdrs,
        }
    }

    fn loads(&self) -> Vec<Phdr> {
        self.phdrs
            .iter()
            .copied()
            .filter(|p| p.p_type == PT_LOAD)
            .collect()
    }

    /// The file bytes at virtual address `vaddr`.
    fn bytes_at(&self, vaddr: u64, len: usize) -> &'a [u8] {
        let seg = self
            .loads()
            .into_iter()
            .find(|p| vaddr >= p.vaddr && vaddr + len as u64 <= p.vaddr + p.filesz)
            .unwrap_or_else(|| panic!("{vaddr:#x} is not in a loaded segment"));
        let start = usize::try_from(seg.offset + (vaddr - seg.vaddr)).unwrap();
        &self.bytes[start..start + len]
    }

    /// The value of symbol `name` from .symtab.
    fn symbol(&self, name: &str) -> u64 {
        let b = self.bytes;
        let shoff = usize::try_from(u64_at(b, 40)).unwrap();
        let shentsize = usize::from(u16_at(b, 58));
        let shnum = usize::from(u16_at(b, 60));
        let section = |i: usize| shoff + i * shentsize;
        for i in 0..shnum {
            let sh = section(i);
            if u32_at(b, sh + 4) != SHT_SYMTAB {
                continue;
            }
            let sym_off = usize::try_from(u64_at(b, sh + 24)).unwrap();
            let sym_size = usize::try_from(u64_at(b, sh + 32)).unwrap();
            let link = usize::try_from(u32_at(b, sh + 40)).unwrap();
            let str_off = usize::try_from(u64_at(b, section(link) + 24)).unwrap();
            for s in (sym_off..sym_off + sym_size).step_by(24) {
                let name_at = str_off + usize::try_from(u32_at(b, s)).unwrap();
                let end = name_at + b[name_at..].iter().position(|&c| c == 0).unwrap();
                if &b[name_at..end] == name.as_bytes() {
                    return u64_at(b, s + 8);
                }
            }
        }
        panic!("symbol {name} not found");
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// `objdump -d` of a built guest (binutils is a build requirement anyway).
fn disassembly(file: &str) -> String {
    let path = format!("{}/{file}", env!("OUT_DIR"));
    let output = Command::new("objdump")
        .args(["-d", "--no-show-raw-insn", &path])
        .output()
        .expect("objdump (binutils) runs");
    assert!(output.status.success(), "objdump -d {path} failed");
    String::from_utf8(output.stdout).unwrap()
}

/// Instructions this machine's nested KVM cannot emulate, or that the test
/// guests must not contain: SSE/AVX registers, x87, BMI1/2, rdrand/rdseed,
/// xsave, int3, cmpxchg16b.
const FORBIDDEN: &[&str] = &[
    "xmm",
    "ymm",
    "zmm",
    "%st",
    "fld",
    "fst",
    "fild",
    "fist",
    "shlx",
    "shrx",
    "sarx",
    "rorx",
    "mulx",
    "pdep",
    "pext",
    "bzhi",
    "andn",
    "blsr",
    "blsi",
    "blsmsk",
    "tzcnt",
    "lzcnt",
    "rdrand",
    "rdseed",
    "xsave",
    "xrstor",
    "xgetbv",
    "int3",
    "cmpxchg16b",
    "vzeroupper",
];

fn forbidden_in(file: &str) -> Vec<String> {
    disassembly(file)
        .lines()
        .filter(|line| line.starts_with(' ') && line.contains(":\t"))
        .filter(|line| {
            let insn = line.split(":\t").nth(1).unwrap_or("");
            FORBIDDEN.iter().any(|bad| insn.contains(bad))
        })
        .map(str::to_owned)
        .collect()
}

/// (guest, ELF file name in OUT_DIR)
const FILES: &[(&str, &str)] = &[
    ("test-kernel-identity", "test_kernel_identity.elf"),
    ("test-kernel-higher-half", "test_kernel_higher_half.elf"),
    ("demo", "demo_kernel.elf"),
    ("exit-status", "exit_status.elf"),
    ("triple-fault", "triple_fault.elf"),
    ("emulation-failure", "emulation_failure.elf"),
    ("hlt-no-irq", "hlt_no_irq.elf"),
    ("idle-loop", "idle_loop.elf"),
    ("spin", "spin.elf"),
    ("serial-flood", "serial_flood.elf"),
    ("string-io", "string_io.elf"),
    ("timer", "timer_kernel.elf"),
    ("seraph-idle", "seraph_idle_kernel.elf"),
    ("hostile-print", "hostile_print.elf"),
    ("hostile-hypercall", "hostile_hypercall.elf"),
    ("hostile-unbacked", "hostile_unbacked.elf"),
    ("hostile-registers", "hostile_registers.elf"),
    ("hostile-storm", "hostile_storm.elf"),
    ("hostile-storm-forever", "hostile_storm_forever.elf"),
    ("hostile-print-flood", "hostile_print_flood.elf"),
    ("hostile-pagewalk", "hostile_pagewalk.elf"),
];

#[test]
fn every_guest_is_a_static_elf64_x86_64_executable() {
    for guest in all() {
        let elf = Elf::parse(guest.elf);
        assert_eq!(elf.e_type, 2, "{}: ET_EXEC", guest.name);
        assert_eq!(elf.machine, 62, "{}: EM_X86_64", guest.name);
        assert!(
            elf.phdrs
                .iter()
                .all(|p| p.p_type != PT_DYNAMIC && p.p_type != PT_INTERP),
            "{}: no dynamic sections",
            guest.name
        );
        let loads = elf.loads();
        assert!(!loads.is_empty(), "{}: has PT_LOADs", guest.name);
        for p in &loads {
            assert_eq!(p.align, 0x1000, "{}: 4 KiB segment alignment", guest.name);
            assert_eq!(p.offset % 0x1000, p.vaddr % 0x1000, "{}", guest.name);
            assert!(p.memsz >= p.filesz, "{}", guest.name);
            assert!(
                p.offset + p.filesz <= guest.elf.len() as u64,
                "{}",
                guest.name
            );
        }
        // The entry is `_start`, inside an executable segment.
        assert_eq!(elf.entry, elf.symbol("_start"), "{}: entry", guest.name);
        let exec = loads
            .iter()
            .find(|p| p.flags & PF_X != 0)
            .unwrap_or_else(|| panic!("{}: no executable segment", guest.name));
        assert!(
            elf.entry >= exec.vaddr && elf.entry < exec.vaddr + exec.filesz,
            "{}: entry in the code segment",
            guest.name
        );
        // No writable + executable segment.
        assert!(
            loads
                .iter()
                .all(|p| p.flags & (PF_W | PF_X) != (PF_W | PF_X)),
            "{}: no W+X segment",
            guest.name
        );
    }
}

#[test]
fn identity_guests_are_linked_at_1_mib_with_vaddr_equal_paddr() {
    for guest in all()
        .iter()
        .filter(|g| g.elf != TEST_KERNEL_HIGHER_HALF && g.elf != DEMO_KERNEL)
    {
        let elf = Elf::parse(guest.elf);
        let loads = elf.loads();
        assert_eq!(loads[0].vaddr, 0x10_0000, "{}", guest.name);
        assert_eq!(elf.entry, 0x10_0000, "{}", guest.name);
        for p in &loads {
            assert_eq!(p.vaddr, p.paddr, "{}: p_vaddr == p_paddr", guest.name);
        }
    }
}

#[test]
fn higher_half_kernels_have_vma_at_the_physical_map_and_lma_at_1_mib() {
    for bytes in [TEST_KERNEL_HIGHER_HALF, DEMO_KERNEL] {
        let elf = Elf::parse(bytes);
        let loads = elf.loads();
        assert_eq!(loads[0].vaddr, HIGHER_HALF_BASE);
        assert_eq!(loads[0].paddr, 0x10_0000);
        for p in &loads {
            assert_eq!(p.paddr, p.vaddr - HIGHER_HALF_BASE + 0x10_0000);
        }
        assert_eq!(elf.entry, HIGHER_HALF_BASE);
        assert_eq!(elf.symbol("__kernel_start"), HIGHER_HALF_BASE);
        // The whole image fits well inside the first 2 MiB above the base.
        assert!(elf.symbol("__kernel_end") < HIGHER_HALF_BASE + 0x20_0000);
    }
}

#[test]
fn test_kernels_have_text_rodata_data_and_a_4k_bss() {
    for bytes in [TEST_KERNEL_IDENTITY, TEST_KERNEL_HIGHER_HALF, DEMO_KERNEL] {
        let elf = Elf::parse(bytes);
        let loads = elf.loads();
        let flags: Vec<u32> = loads.iter().map(|p| p.flags).collect();
        assert_eq!(flags, [PF_R | PF_X, PF_R, PF_R | PF_W]);
        let data = loads[2];
        assert!(data.filesz >= 8, ".data has file bytes");
        assert!(data.memsz - data.filesz >= 4096, ".bss is at least 4 KiB");
        let bss_probe = elf.symbol("bss_probe");
        assert!(
            bss_probe >= data.vaddr + data.filesz && bss_probe + 4096 <= data.vaddr + data.memsz
        );
        assert_eq!(
            elf.bytes_at(elf.symbol("data_probe"), 8),
            0x5345_5241_5048_5644u64.to_le_bytes()
        );
        assert_eq!(elf.symbol("__kernel_end"), data.vaddr + data.memsz);
    }
}

#[test]
fn test_kernels_contain_every_line_and_check_name() {
    for bytes in [TEST_KERNEL_IDENTITY, TEST_KERNEL_HIGHER_HALF, DEMO_KERNEL] {
        for text in [
            expected::TEST_KERNEL_SERIAL_HELLO,
            expected::TEST_KERNEL_PRINT_HELLO,
            expected::TEST_KERNEL_ALL_PASSED,
            expected::CHECK_FAILED_PREFIX,
            "Seraph test kernel: ",
            " checks failed\n",
        ] {
            assert!(contains(bytes, text.as_bytes()), "missing {text:?}");
        }
        for name in expected::TEST_KERNEL_CHECKS {
            let mut with_nul = name.as_bytes().to_vec();
            with_nul.push(0);
            assert!(contains(bytes, &with_nul), "missing check name {name:?}");
        }
    }
    assert!(contains(DEMO_KERNEL, expected::DEMO_BANNER.as_bytes()));
    assert!(!contains(
        TEST_KERNEL_HIGHER_HALF,
        expected::DEMO_BANNER.as_bytes()
    ));
    assert!(!contains(
        TEST_KERNEL_IDENTITY,
        expected::DEMO_BANNER.as_bytes()
    ));
}

#[test]
fn c_kernels_use_no_sse_x87_bmi_or_other_unemulated_instructions() {
    for file in [
        "test_kernel_identity.elf",
        "test_kernel_higher_half.elf",
        "demo_kernel.elf",
    ] {
        let bad = forbidden_in(file);
        assert!(bad.is_empty(), "{file} contains: {bad:#?}");
        let text = disassembly(file);
        assert!(text.contains("rep stos"), "{file}: draws with rep stos");
        assert!(
            text.contains("out    %eax,$0xe4"),
            "{file}: uses the doorbell"
        );
        assert!(text.contains("mov    %cr3,"), "{file}: reads CR3");
        assert!(text.contains("cpuid"), "{file}: uses CPUID");
    }
}

#[test]
fn timer_kernels_use_no_unemulated_instructions_and_install_an_idt() {
    for file in ["timer_kernel.elf", "seraph_idle_kernel.elf"] {
        let bad = forbidden_in(file);
        assert!(bad.is_empty(), "{file} contains: {bad:#?}");
        let text = disassembly(file);
        assert!(text.contains("lidt"), "{file}: loads its IDT");
        assert!(text.contains("iretq"), "{file}: has interrupt handlers");
        assert!(text.contains("sti"), "{file}: enables interrupts");
    }
}

#[test]
fn tiny_guests_use_no_unemulated_instructions_except_the_deliberate_pxor() {
    for (name, file) in FILES.iter().skip(3) {
        let bad = forbidden_in(file);
        if *name == "emulation-failure" {
            assert_eq!(bad.len(), 1, "{bad:#?}");
            assert!(bad[0].contains("pxor   (%rax),%xmm0"), "{bad:#?}");
        } else {
            assert!(bad.is_empty(), "{file} contains: {bad:#?}");
        }
    }
}

#[test]
fn print_payloads_are_in_the_tiny_guests() {
    let cases = [
        (EXIT_STATUS, expected::EXIT_STATUS_PRINT),
        (HLT_NO_IRQ, expected::HLT_NO_IRQ_PRINT),
        (IDLE_LOOP, expected::IDLE_LOOP_PRINT),
        (SPIN, expected::SPIN_PRINT),
    ];
    for (bytes, text) in cases {
        let elf = Elf::parse(bytes);
        // PRINT: lea msg(%rip),%rdi; mov $len,%esi; mov $0,%eax; out %eax,$0xe4
        let code = elf.bytes_at(elf.entry, 19);
        let rel = i32::from_le_bytes(code[3..7].try_into().unwrap());
        assert_eq!(&code[0..3], [0x48, 0x8D, 0x3D]);
        let msg = (elf.entry + 7).wrapping_add_signed(i64::from(rel));
        assert_eq!(elf.bytes_at(msg, text.len()), text.as_bytes());
        assert_eq!(code[7], 0xBE);
        assert_eq!(
            u32::from_le_bytes(code[8..12].try_into().unwrap()) as usize,
            text.len()
        );
        assert_eq!(&code[12..19], [0xB8, 0, 0, 0, 0, 0xE7, 0xE4]);
    }
}

#[test]
fn exit_status_guest_exits_with_42() {
    let elf = Elf::parse(EXIT_STATUS);
    // mov $42,%edi; mov $1,%eax; out %eax,$0xe4 right after the PRINT.
    assert_eq!(
        elf.bytes_at(elf.entry + 19, 12),
        [0xBF, 42, 0, 0, 0, 0xB8, 1, 0, 0, 0, 0xE7, 0xE4]
    );
    assert_eq!(expected::EXIT_STATUS_CODE, 42);
}

#[test]
fn halting_and_spinning_guests_stop_at_the_documented_rips() {
    let hlt = Elf::parse(HLT_NO_IRQ);
    assert_eq!(hlt.symbol("hlt_insn"), expected::HLT_NO_IRQ_HLT_RIP);
    // cli; hlt; jmp hlt
    assert_eq!(
        hlt.bytes_at(expected::HLT_NO_IRQ_HLT_RIP - 1, 4),
        [0xFA, 0xF4, 0xEB, 0xFD]
    );

    let idle = Elf::parse(IDLE_LOOP);
    assert_eq!(idle.symbol("idle_hlt"), expected::IDLE_LOOP_HLT_RIP);
    // sti; hlt; jmp hlt
    assert_eq!(
        idle.bytes_at(expected::IDLE_LOOP_HLT_RIP - 1, 4),
        [0xFB, 0xF4, 0xEB, 0xFD]
    );

    let spin = Elf::parse(SPIN);
    assert_eq!(spin.symbol("spin_insn"), expected::SPIN_RIP);
    // jmp .
    assert_eq!(spin.bytes_at(expected::SPIN_RIP, 2), [0xEB, 0xFE]);
}

#[test]
fn emulation_failure_guest_runs_pxor_on_the_lapic_page() {
    let elf = Elf::parse(EMULATION_FAILURE);
    assert_eq!(
        elf.symbol("emulation_failure_insn"),
        expected::EMULATION_FAILURE_RIP
    );
    // mov $0xfee00030,%eax (zero-extends into RAX)
    assert_eq!(elf.bytes_at(elf.entry, 5), [0xB8, 0x30, 0x00, 0xE0, 0xFE]);
    assert_eq!(
        u32::from_le_bytes(elf.bytes_at(elf.entry + 1, 4).try_into().unwrap()) as u64,
        expected::EMULATION_FAILURE_MMIO_ADDRESS
    );
    assert_eq!(
        elf.bytes_at(expected::EMULATION_FAILURE_RIP, 4),
        expected::EMULATION_FAILURE_INSN
    );
    // Fallback: mov $3,%edi; mov $1,%eax; out %eax,$0xe4
    assert_eq!(
        elf.bytes_at(expected::EMULATION_FAILURE_RIP + 4, 12),
        [0xBF, 3, 0, 0, 0, 0xB8, 1, 0, 0, 0, 0xE7, 0xE4]
    );
}

#[test]
fn triple_fault_guest_loads_an_empty_idt_then_reads_an_unmapped_address() {
    let elf = Elf::parse(TRIPLE_FAULT);
    let idt = elf.symbol("null_idt");
    assert_eq!(elf.bytes_at(idt, 10), [0u8; 10], "limit 0, base 0");
    let code = elf.bytes_at(elf.entry, 21);
    assert_eq!(code[0], 0xFA, "cli");
    assert_eq!(&code[1..4], [0x0F, 0x01, 0x1D], "lidt rip-relative");
    let rel = i32::from_le_bytes(code[4..8].try_into().unwrap());
    assert_eq!((elf.entry + 8).wrapping_add_signed(i64::from(rel)), idt);
    assert_eq!(&code[8..10], [0x48, 0xB8], "movabs to rax");
    assert_eq!(
        u64::from_le_bytes(code[10..18].try_into().unwrap()),
        expected::TRIPLE_FAULT_ADDRESS
    );
    assert_eq!(&code[18..21], [0x48, 0x8B, 0x00], "mov (%rax),%rax");
    // Not covered by the 4 GiB identity map or the physical map.
    const {
        assert!(expected::TRIPLE_FAULT_ADDRESS >= 1 << 32);
        assert!(expected::TRIPLE_FAULT_ADDRESS < 1 << 47);
    }
}

#[test]
fn serial_flood_writes_100000_bytes_in_16_byte_bursts_then_exits_0() {
    let text = disassembly("serial_flood.elf");
    assert!(text.contains("mov    $0x186a,%esi"), "6250 bursts");
    assert!(text.contains("mov    $0x10,%ecx"), "16 bytes a burst");
    assert!(text.contains("mov    $0x78,%al"), "'x'");
    assert!(text.contains("mov    $0x3f8,%dx"), "COM1 THR");
    assert!(text.contains("mov    $0x3fd,%dx"), "COM1 LSR");
    assert_eq!(6250 * 16, expected::SERIAL_FLOOD_BYTES);
    let elf = Elf::parse(SERIAL_FLOOD);
    let burst = elf.symbol("burst");
    let code = elf.loads()[0];
    let after_burst = usize::try_from(code.vaddr + code.filesz - burst).unwrap();
    // EXIT 0 after the loop: mov $0,%edi; mov $1,%eax; out %eax,$0xe4
    assert!(contains(
        elf.bytes_at(burst, after_burst),
        &[0xBF, 0, 0, 0, 0, 0xB8, 1, 0, 0, 0, 0xE7, 0xE4]
    ));
}

#[test]
fn all_lists_every_guest_once_with_unique_names() {
    let guests = all();
    assert_eq!(guests.len(), FILES.len());
    for (guest, (name, _)) in guests.iter().zip(FILES) {
        assert_eq!(guest.name, *name);
        assert!(!guest.description.is_empty());
        assert_eq!(by_name(name), Some(guest));
    }
    assert_eq!(by_name("no-such-guest"), None);
    assert_eq!(by_name("exit-status").map(|g| g.elf), Some(EXIT_STATUS));
    assert_eq!(by_name("demo").map(|g| g.elf), Some(DEMO_KERNEL));
}

#[test]
fn test_picture_at_1024x768() {
    let px = |x, y| expected::test_picture_pixel(x, y, 1024, 768);
    assert_eq!(px(0, 0), Some(expected::RED));
    assert_eq!(px(255, 31), Some(0x00FF_0000));
    assert_eq!(px(0, 32), Some(0x0000_FF00));
    assert_eq!(px(100, 64), Some(0x0000_00FF));
    assert_eq!(px(255, 127), Some(0x00FF_FFFF));
    assert_eq!(px(256, 0), Some(0));
    assert_eq!(px(0, 128), Some(0));
    // Yellow square: x 480..=543, y 352..=415.
    assert_eq!(px(480, 352), Some(0x00FF_FF00));
    assert_eq!(px(543, 415), Some(0x00FF_FF00));
    assert_eq!(px(479, 352), Some(0));
    assert_eq!(px(544, 415), Some(0));
    assert_eq!(px(480, 416), Some(0));
    assert_eq!(px(1023, 767), Some(0));
    assert_eq!(px(1024, 0), None);
    assert_eq!(px(0, 768), None);
}

#[test]
fn test_picture_on_small_and_odd_framebuffers() {
    // 200x100: the block is clipped; the square (68..132, 18..82) covers it.
    let px = |x, y| expected::test_picture_pixel(x, y, 200, 100);
    assert_eq!(px(199, 0), Some(expected::RED));
    assert_eq!(px(68, 18), Some(expected::YELLOW));
    assert_eq!(px(131, 81), Some(expected::YELLOW));
    assert_eq!(px(132, 81), Some(expected::BLUE));
    assert_eq!(px(0, 99), Some(expected::WHITE));
    // 40x40: no room for the square (width/2 < 32): bands only.
    assert_eq!(
        expected::test_picture_pixel(20, 20, 40, 40),
        Some(expected::RED)
    );
    assert_eq!(expected::test_picture_pixel(0, 0, 0, 0), None);
}

#[test]
fn failed_line_format() {
    assert_eq!(
        expected::test_kernel_failed_line(3),
        "Seraph test kernel: 3 checks failed\n"
    );
}
