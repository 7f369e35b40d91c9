//! Test guests for Seraph-V: small x86_64 kernels built from `guests/*.c`
//! and `guests/*.S` with the system `gcc` and `ld` at `cargo build` time and
//! embedded here as ELF bytes, so tests, the CLI and benchmarks have real
//! guests without committed binaries.
//!
//! Every guest enters through the Seraph boot protocol
//! (`void _start(const Seraph_BootInfo *)`, long mode, RDI = boot info) and
//! talks to the VMM through the port-I/O hypercall doorbell: RAX = number,
//! arguments in RDI, RSI, RDX, RCX, then `out 0xE4, eax`; the VMM writes the
//! result to RAX. PRINT = 0, EXIT = 1, GET_TIME = 2.
//!
//! All serial and PRINT output lines end with a single `\n` (no `\r`).
//! The exact strings, statuses, addresses and colours that integration tests
//! check are in [`expected`]. See `docs/test-kernels.md` for the why.

#![forbid(unsafe_code)]

pub mod expected;

/// One embedded guest kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guest {
    /// Short name, kebab-case (e.g. `"exit-status"`), unique in [`all`].
    pub name: &'static str,
    /// The ELF64 x86-64 executable image (ET_EXEC).
    pub elf: &'static [u8],
    /// One line on what the guest does and how its run ends.
    pub description: &'static str,
}

macro_rules! guest_elf {
    ($file:literal) => {
        include_bytes!(concat!(env!("OUT_DIR"), "/", $file))
    };
}

mod bench;
mod boot;
mod devices;
mod faults;

pub use bench::*;
pub use boot::*;
pub use devices::*;
pub use faults::*;

/// The Seraph test kernel (C), identity-linked: p_vaddr == p_paddr, from
/// 0x100000; entry 0x100000.
///
/// Behaviour, in order (lines end with `\n`):
/// 1. initialises COM1 and writes [`expected::TEST_KERNEL_SERIAL_HELLO`]
///    over serial;
/// 2. PRINTs [`expected::TEST_KERNEL_PRINT_HELLO`] and checks the result
///    equals its length;
/// 3. runs the named checks of [`expected::TEST_KERNEL_CHECKS`]; each failure
///    writes `CHECK FAILED: <name>` then `  seen: 0x<16 hex digits>` (the
///    offending value) over serial, and the kernel carries on;
/// 4. draws the test picture ([`expected::test_picture_pixel`]) using the
///    boot info's framebuffer geometry;
/// 5. writes [`expected::TEST_KERNEL_ALL_PASSED`] or
///    `Seraph test kernel: N checks failed` over serial;
/// 6. EXITs with status 0 if every check passed, else 1.
///
/// It has a 4 KiB `.bss` array (checked to be zero), a `.data` word
/// (checked to hold its initial value) and `.rodata` strings, in three
/// PT_LOAD segments (R X, R, R W with p_memsz > p_filesz).
pub const TEST_KERNEL_IDENTITY: &[u8] = guest_elf!("test_kernel_identity.elf");

/// The Seraph test kernel linked like real Seraph OS kernels: p_vaddr from
/// exactly 0xFFFF_8000_0000_0000, p_paddr from 0x100000, entry
/// 0xFFFF_8000_0000_0000.
///
/// Its bytes must sit at physical p_vaddr - 0xFFFF_8000_0000_0000 (0
/// upward), so the VMM has to move its page tables, boot info and stack
/// elsewhere. Same behaviour and output as [`TEST_KERNEL_IDENTITY`]; the
/// kernel checks `kernel_phys_base` == 0 and `kernel_virt_base` ==
/// 0xFFFF_8000_0000_0000.
pub const TEST_KERNEL_HIGHER_HALF: &[u8] = guest_elf!("test_kernel_higher_half.elf");

/// What `cargo run --release` boots: the higher-half test kernel built with
/// one extra first serial line, [`expected::DEMO_BANNER`], and a different
/// screen. Same checks and output as [`TEST_KERNEL_HIGHER_HALF`]; then,
/// instead of the test picture, it counts 20 LAPIC timer interrupts and
/// draws a text screen (its own 8x16 font) of what it found: the CPUID
/// signature, hypercall results, GET_TIME as a UTC date, the framebuffer,
/// the timer, the memory map and "all N checks passed". Exits 0 on a
/// correct VMM.
pub const DEMO_KERNEL: &[u8] = guest_elf!("demo_kernel.elf");

/// PRINTs [`expected::EXIT_STATUS_PRINT`], then EXITs with status
/// [`expected::EXIT_STATUS_CODE`] (42). Identity-linked at 0x100000.
pub const EXIT_STATUS: &[u8] = guest_elf!("exit_status.elf");

/// Loads an IDT with limit 0, then reads
/// [`expected::TRIPLE_FAULT_ADDRESS`] (outside the 4 GiB identity map):
/// #PF with no IDT, so the CPU triple-faults (shutdown). No output.
pub const TRIPLE_FAULT: &[u8] = guest_elf!("triple_fault.elf");

/// Executes `pxor (%rax), %xmm0` with RAX = 0xFEE0_0030 (the local APIC's
/// version register, trapped MMIO) at [`expected::EMULATION_FAILURE_RIP`]:
/// KVM's instruction emulator cannot emulate it, so the run ends in an
/// emulation failure (instruction bytes
/// [`expected::EMULATION_FAILURE_INSN`]). If anything completes the
/// instruction after all, the guest EXITs with status 3. No output.
pub const EMULATION_FAILURE: &[u8] = guest_elf!("emulation_failure.elf");

/// PRINTs [`expected::HLT_NO_IRQ_PRINT`], then `cli; hlt` at
/// [`expected::HLT_NO_IRQ_HLT_RIP`] (followed by a jump back to the hlt):
/// a halt that can never wake.
pub const HLT_NO_IRQ: &[u8] = guest_elf!("hlt_no_irq.elf");

/// PRINTs [`expected::IDLE_LOOP_PRINT`], then `sti` and the classic idle
/// loop `1: hlt; jmp 1b` with the hlt at [`expected::IDLE_LOOP_HLT_RIP`]
/// (IF = 1, no interrupt source programmed).
pub const IDLE_LOOP: &[u8] = guest_elf!("idle_loop.elf");

/// PRINTs [`expected::SPIN_PRINT`], then `jmp .` forever at
/// [`expected::SPIN_RIP`] (for `--timeout`).
pub const SPIN: &[u8] = guest_elf!("spin.elf");

/// Initialises COM1, writes [`expected::SERIAL_FLOOD_BYTES`] (100000) bytes
/// `'x'` to it (polling LSR.THRE once per 16-byte FIFO burst), then EXITs
/// with status 0. No newline, no PRINT.
pub const SERIAL_FLOOD: &[u8] = guest_elf!("serial_flood.elf");

/// [`SERIAL_FLOOD`] that never stops: `'x'` to COM1 forever (for stalled
/// readers and `--timeout`).
pub const SERIAL_FOREVER: &[u8] = guest_elf!("serial_forever.elf");

/// COM1 through string I/O: initialises COM1, writes
/// [`expected::STRING_IO_LINE`] with one `rep outsb`, reads LSR four times
/// with one `rep insb`, and EXITs with how many of those reads had THRE
/// set ([`expected::STRING_IO_EXIT`], 4, on a correct VMM). Identity-linked.
pub const STRING_IO: &[u8] = guest_elf!("string_io.elf");

/// The timer test kernel (C, identity-linked): does what a real Seraph OS
/// boot does with the PIT, LAPIC and PIC and checks that interrupts arrive.
///
/// 1. MSRs: IA32_APIC_BASE reads 0xFEE0_0900 and takes its own value back,
///    a reserved bit and an unknown MSR raise #GP (caught and skipped);
///    serial `msr: IA32_APIC_BASE 0x00000000fee00900`;
/// 2. a LAPIC error interrupt (vector 0x41) raised by reading a reserved
///    register, received while spinning; serial
///    `lapic: error interrupt at vector 0x41`;
/// 3. PIT channel 0 mode 0 (count 11932) and the read-back loop until OUT;
/// 4. LAPIC calibration against that 10 ms wait (Seraph OS's sequence);
///    serial `lapic: N ticks in 10 ms`;
/// 5. a periodic LAPIC timer at vector 0x20 (1 ms), `sti; hlt` until 10
///    ticks (the handler writes EOI); serial
///    `lapic: N periodic ticks at vector 0x20`;
/// 6. the same timer while the CPU spins with IF = 1 and never halts,
///    until 10 more ticks (each must interrupt running code); serial
///    `lapic: N ticks while spinning`;
/// 7. PIT mode 2 (1 ms) on IRQ0 through the 8259 pair at vector 0x30 with
///    LINT0 in ExtINT mode, until 10 ticks; serial
///    `pic: N PIT ticks on IRQ0 at vector 0x30`.
///
/// Then serial and PRINT [`expected::TIMER_ALL_PASSED`] and EXIT 0, or EXIT
/// 1 if a check failed (`CHECK FAILED: ...` lines). An exception EXITs with
/// 100 + vector.
pub const TIMER_KERNEL: &[u8] = guest_elf!("timer_kernel.elf");

/// The timer kernel built to end like a real Seraph OS boot: calibration,
/// a periodic LAPIC timer at vector 0x20 whose handler writes EOI, PRINT
/// [`expected::SERAPH_IDLE_PRINT`], then `sti; hlt` forever. A VMM that
/// delivers timer interrupts in the idle loop ends the run as idle after
/// the configured number of HLTs at one RIP, with vector 0x20 delivered.
pub const SERAPH_IDLE_KERNEL: &[u8] = guest_elf!("seraph_idle_kernel.elf");

/// Hostile guest: PRINT with a pointer beyond 512 MiB of RAM, a wrapping
/// range, lengths of 64 KiB + 1 and 2^64 - 1, pointers to the local APIC
/// and I/O APIC pages, a non-canonical and an unmapped pointer, and a range
/// running past the end of RAM; each must return -14 or -22 and print
/// nothing. Then PRINTs [`HOSTILE_PRINT_OK`] and EXITs 0, or
/// EXITs with the number (1-10) of the first check that failed. Needs the
/// default 512 MiB of RAM.
pub const HOSTILE_PRINT: &[u8] = guest_elf!("hostile_print.elf");

/// Hostile guest: six unknown hypercall numbers (3, 0xE4, 0x7FFF_FFFF,
/// 2^32, 2^63 + 1, 2^64 - 1; two of them have PRINT's or EXIT's low 32
/// bits), each must return -38. Then PRINTs
/// [`HOSTILE_HYPERCALL_OK`] and EXITs 0, or EXITs with the number
/// (1-6) of the failed check.
pub const HOSTILE_HYPERCALL: &[u8] = guest_elf!("hostile_hypercall.elf");

/// Hostile guest: with IF = 0, 4 MMIO reads and 2 writes where nothing is
/// (0x8000_0000 beyond 512 MiB of RAM, and the I/O APIC page), then 4 port
/// reads and 2 writes to absent ports (0x1234 at widths 1, 2 and 4, and
/// COM2's 0x2F8). Every read must see all-ones. EXITs 0, or with the number
/// (1-8) of the failed check.
pub const HOSTILE_UNBACKED: &[u8] = guest_elf!("hostile_unbacked.elf");

/// Hostile guest: with IF = 0, xorshift64 values written at widths 1, 2 and
/// 4 to every port of Seraph-V's devices (PIC pair, PIT, port 0x61, port
/// 0x80, COM1), each followed by a read, 4 rounds; then to every 32-bit
/// slot of the local APIC page, each followed by a read. EXITs 0.
pub const HOSTILE_REGISTERS: &[u8] = guest_elf!("hostile_registers.elf");

/// Hostile guest: an interrupt storm. The LAPIC timer periodic at vector
/// 0x20 with count 1 and divide-by-1 (the smallest period); the handler
/// counts and EOIs; the guest spins with IF = 1 until
/// [`HOSTILE_STORM_COUNT`] interrupts arrived, then masks the
/// timer and EXITs 0.
pub const HOSTILE_STORM: &[u8] = guest_elf!("hostile_storm.elf");

/// [`HOSTILE_STORM`] that never stops (for `--timeout` and stop requests):
/// it spins taking interrupts forever.
pub const HOSTILE_STORM_FOREVER: &[u8] = guest_elf!("hostile_storm_forever.elf");

/// Hostile guest: PRINTs 64 KiB from 0x100000 in a loop forever (stopped by
/// `--timeout`); the VMM must keep its memory bounded.
pub const HOSTILE_PRINT_FLOOD: &[u8] = guest_elf!("hostile_print_flood.elf");

/// Hostile guest: loads CR3 with a PML4 whose entry 0 is the boot one and
/// whose other entries are garbage (beyond RAM, framebuffer, LAPIC page,
/// reserved PS bit, noise), PRINTs through four garbage-mapped pointers
/// (each must return -14), restores CR3, PRINTs
/// [`HOSTILE_PAGEWALK_OK`] and EXITs 0, or EXITs with the number
/// (1-4) of the failed check.
pub const HOSTILE_PAGEWALK: &[u8] = guest_elf!("hostile_pagewalk.elf");

/// Maps the last virtual page of the address space (through a copy of the
/// boot PML4), PRINTs its last 16 bytes ([`HOSTILE_PRINT_TOP_TEXT`]) and its
/// very last byte, checks that 17 bytes there wrap (-14), restores CR3 and
/// EXITs 0, or EXITs with the number (1-3) of the failed check.
pub const HOSTILE_PRINT_TOP: &[u8] = guest_elf!("hostile_print_top.elf");

/// The 16 bytes [`HOSTILE_PRINT_TOP`] keeps at the top of the address space.
pub const HOSTILE_PRINT_TOP_TEXT: &str = "top16 PRINT ok!\n";

/// The one PRINT line of [`HOSTILE_PRINT`] on a correct VMM.
pub const HOSTILE_PRINT_OK: &str = "hostile-print: ok\n";

/// The one PRINT line of [`HOSTILE_HYPERCALL`] on a correct VMM.
pub const HOSTILE_HYPERCALL_OK: &str = "hostile-hypercall: ok\n";

/// The one PRINT line of [`HOSTILE_PAGEWALK`] on a correct VMM.
pub const HOSTILE_PAGEWALK_OK: &str = "hostile-pagewalk: ok\n";

/// Interrupts [`HOSTILE_STORM`] takes before it EXITs.
pub const HOSTILE_STORM_COUNT: u64 = 1000;

static ALL: [Guest; 21] = [
    Guest {
        name: "test-kernel-identity",
        elf: TEST_KERNEL_IDENTITY,
        description: "Seraph test kernel linked at 0x100000: checks the boot contract, draws the test picture, exits 0 if all checks pass",
    },
    Guest {
        name: "test-kernel-higher-half",
        elf: TEST_KERNEL_HIGHER_HALF,
        description: "Seraph test kernel linked at 0xFFFF800000000000 (loaded from physical 0): same checks and picture, exits 0 if all pass",
    },
    Guest {
        name: "demo",
        elf: DEMO_KERNEL,
        description: "the higher-half test kernel with a demo banner line and a text screen of what it checked: what `cargo run --release` boots; exits 0",
    },
    Guest {
        name: "exit-status",
        elf: EXIT_STATUS,
        description: "PRINTs `exit-status guest`, then EXITs with status 42",
    },
    Guest {
        name: "triple-fault",
        elf: TRIPLE_FAULT,
        description: "loads an empty IDT and reads an unmapped address: triple fault",
    },
    Guest {
        name: "emulation-failure",
        elf: EMULATION_FAILURE,
        description: "pxor with a local APIC MMIO operand: KVM cannot emulate it (emulation failure)",
    },
    Guest {
        name: "hlt-no-irq",
        elf: HLT_NO_IRQ,
        description: "PRINTs `hlt guest`, then cli; hlt: a halt that can never wake",
    },
    Guest {
        name: "idle-loop",
        elf: IDLE_LOOP,
        description: "PRINTs `idle guest`, then sti and a hlt loop (idle detection)",
    },
    Guest {
        name: "spin",
        elf: SPIN,
        description: "PRINTs `spin guest`, then spins forever (for --timeout)",
    },
    Guest {
        name: "serial-flood",
        elf: SERIAL_FLOOD,
        description: "writes 100000 bytes 'x' to COM1, then EXITs with status 0",
    },
    Guest {
        name: "string-io",
        elf: STRING_IO,
        description: "rep outsb of a line to COM1 and rep insb of LSR; EXITs with the THRE count (4)",
    },
    Guest {
        name: "timer",
        elf: TIMER_KERNEL,
        description: "PIT read-back wait, LAPIC calibration, periodic LAPIC timer and PIT IRQ0 via the PIC; EXITs 0",
    },
    Guest {
        name: "seraph-idle",
        elf: SERAPH_IDLE_KERNEL,
        description: "a real Seraph OS boot's timer setup, then an sti; hlt idle loop receiving timer interrupts",
    },
    Guest {
        name: "hostile-print",
        elf: HOSTILE_PRINT,
        description: "PRINTs with bad pointers and lengths (each -14 or -22), then EXITs 0",
    },
    Guest {
        name: "hostile-hypercall",
        elf: HOSTILE_HYPERCALL,
        description: "unknown hypercall numbers (each -38), then EXITs 0",
    },
    Guest {
        name: "hostile-unbacked",
        elf: HOSTILE_UNBACKED,
        description: "MMIO and port I/O where no device is (reads all-ones), then EXITs 0",
    },
    Guest {
        name: "hostile-registers",
        elf: HOSTILE_REGISTERS,
        description: "random values to every device port and LAPIC register with IF = 0, then EXITs 0",
    },
    Guest {
        name: "hostile-storm",
        elf: HOSTILE_STORM,
        description: "LAPIC timer storm (count 1, periodic) with an EOIing handler, EXITs 0 after 1000 interrupts",
    },
    Guest {
        name: "hostile-storm-forever",
        elf: HOSTILE_STORM_FOREVER,
        description: "the LAPIC timer storm without end (for --timeout)",
    },
    Guest {
        name: "hostile-print-flood",
        elf: HOSTILE_PRINT_FLOOD,
        description: "PRINTs 64 KiB forever (for --timeout and memory bounds)",
    },
    Guest {
        name: "hostile-pagewalk",
        elf: HOSTILE_PAGEWALK,
        description: "PRINTs through garbage page tables (each -14), then EXITs 0",
    },
];

/// Every embedded guest, in a fixed order (the three C kernels first).
pub fn all() -> &'static [Guest] {
    &ALL
}

/// The guest called `name` (see [`Guest::name`]), if there is one.
pub fn by_name(name: &str) -> Option<&'static Guest> {
    ALL.iter().find(|guest| guest.name == name)
}

#[cfg(test)]
mod tests;
