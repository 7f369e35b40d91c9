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

/// Fault guest: IF = 0 and an empty IDT (limit 0), then `movl $1, (%rax)`
/// at [`FAULT_PF_WRITE_RIP`] with RAX = [`FAULT_PF_ADDRESS`] (not present at
/// the PD level of the boot tables' physical map): an undeliverable #PF,
/// error code 0x2, so the CPU triple-faults. No output.
pub const FAULT_PF_WRITE: &[u8] = guest_elf!("fault_pf_write.elf");

/// Fault guest: IF = 0, an IDT of 32 gates with only #PF present, then
/// `movq $1, (%rax)` at [`FAULT_GP_RIP`] with RAX = [`FAULT_GP_ADDRESS`]
/// (non-canonical): #GP(0) with an absent #GP gate (and #DF gate), so the
/// CPU triple-faults. EXITs 3 if a #PF is delivered instead. No output.
pub const FAULT_GP: &[u8] = guest_elf!("fault_gp.elf");

/// [`FAULT_GP`] with `wrmsr` of MSR [`FAULT_GP_WRMSR_MSR`] (unknown to
/// everyone, refused with #GP) at [`FAULT_GP_RIP`] instead of the
/// non-canonical write.
pub const FAULT_GP_WRMSR: &[u8] = guest_elf!("fault_gp_wrmsr.elf");

/// Fault guest: an IDT of 32 gates with only #PF present (handler at
/// [`FAULT_PF_HANDLER_ENTRY`]); writes to [`FAULT_PF_ADDRESS`] at
/// [`FAULT_GP_RIP`] (0x100080). The handler PRINTs
/// [`FAULT_PF_HANDLER_PRINT`] without touching the stack, then `sti` and a
/// `hlt; jmp` loop forever: the run ends idle inside the handler, with the
/// exception frame (error code 0x2) at RSP.
pub const FAULT_PF_HANDLER: &[u8] = guest_elf!("fault_pf_handler.elf");

/// The unmapped address [`FAULT_PF_WRITE`] and [`FAULT_PF_HANDLER`] write:
/// entry 384 of the physical map's PD (PML4 entry 256, PDPT entry 0) is not present.
pub const FAULT_PF_ADDRESS: u64 = 0xFFFF_8000_3000_0000;

/// Where [`FAULT_PF_WRITE`]'s faulting write is.
pub const FAULT_PF_WRITE_RIP: u64 = 0x10_0040;

/// Where the faulting instruction of [`FAULT_GP`], [`FAULT_GP_WRMSR`] and
/// [`FAULT_PF_HANDLER`] is.
pub const FAULT_GP_RIP: u64 = 0x10_0080;

/// The non-canonical address [`FAULT_GP`] writes.
pub const FAULT_GP_ADDRESS: u64 = 0x0000_8000_0000_0000;

/// The MSR [`FAULT_GP_WRMSR`] writes.
pub const FAULT_GP_WRMSR_MSR: u32 = 0xC0DE_0001;

/// The entry of [`FAULT_PF_HANDLER`]'s #PF handler.
pub const FAULT_PF_HANDLER_ENTRY: u64 = 0x10_0100;

/// The one PRINT line of [`FAULT_PF_HANDLER`].
pub const FAULT_PF_HANDLER_PRINT: &str = "fault-pf-handler: page fault\n";

static FAULT: [Guest; 4] = [
    Guest {
        name: "fault-pf-write",
        elf: FAULT_PF_WRITE,
        description: "no IDT, a write to an unmapped address: #PF, triple fault",
    },
    Guest {
        name: "fault-gp",
        elf: FAULT_GP,
        description: "a non-canonical write with the #GP gate absent: #GP, triple fault",
    },
    Guest {
        name: "fault-gp-wrmsr",
        elf: FAULT_GP_WRMSR,
        description: "wrmsr of an unknown MSR with the #GP gate absent: #GP, triple fault",
    },
    Guest {
        name: "fault-pf-handler",
        elf: FAULT_PF_HANDLER,
        description: "a #PF taken by a handler that PRINTs and idles in a hlt loop",
    },
];

/// The fault guests of `seraph-fault`'s tests (not in [`all`]: they end in
/// triple faults or idle inside an exception handler on purpose).
pub fn fault_guests() -> &'static [Guest] {
    &FAULT
}

/// Benchmark guest: `bench_blocks` x 16 `outb` to COM1's THR (port 0x3F8,
/// byte `'.'`), unrolled 16 to a loop iteration, then EXIT 0. The block
/// count is a little-endian u64 right after the 8-byte magic
/// [`BENCH_COUNT_MAGIC`] in the ELF file (default 1000); seraph-v-bench
/// rewrites it before loading. Identity-linked at 0x100000.
pub const BENCH_PIO: &[u8] = guest_elf!("bench_pio.elf");

/// Benchmark guest: `bench_blocks` x 16 32-bit reads of the local APIC
/// version register at 0xFEE0_0030 (trapped MMIO), unrolled like
/// [`BENCH_PIO`], then EXIT 0. Same patchable count after
/// [`BENCH_COUNT_MAGIC`].
pub const BENCH_MMIO: &[u8] = guest_elf!("bench_mmio.elf");

/// Benchmark guest for cold start and peers: PRINTs
/// `bench-hello: started\n` (its first exit), writes
/// `bench-hello: hello over COM1\n` to COM1 polling LSR.THRE, then EXITs
/// with status [`BENCH_EXIT_STATUS`].
pub const BENCH_HELLO: &[u8] = guest_elf!("bench_hello.elf");

/// [`BENCH_HELLO`]'s twin for QEMU `-M microvm`: a PVH ELF (Xen note
/// PHYS32_ENTRY in a PT_NOTE) entered in 32-bit protected mode; writes the
/// same COM1 line, then writes [`BENCH_EXIT_STATUS`] to isa-debug-exit at
/// port 0xF4. Not bootable by Seraph-V (no 64-bit entry).
pub const BENCH_PVH: &[u8] = guest_elf!("bench_pvh.elf");

/// The PC guest runtime's self-test (`pc_entry.S` + `pc_selftest.c`,
/// `pc.ld`; see docs/test-kernels.md, "The PC guest runtime"). Boots under
/// the Seraph protocol (ELF entry `_start`) and as a PVH kernel (Xen
/// PHYS32_ENTRY note, e.g. QEMU `-kernel`). Writes
/// `pc-selftest: hello (seraph)` or `(pvh)`, checks the boot info magic,
/// two exceptions through the runtime's IDT and the PCI host bridge
/// 8086:1237 at 00:00.0 (`no pci` without a PCI bus), then writes
/// [`PC_SELFTEST_OK`] and exits 0 (EXIT hypercall,
/// then isa-debug-exit); a failed step exits with its number (2-4).
pub const PC_SELFTEST: &[u8] = guest_elf!("pc_selftest.elf");

/// The last COM1 line of [`PC_SELFTEST`] when every step passed.
pub const PC_SELFTEST_OK: &str = "pc-selftest: ok\n";

/// Reads the date from the CMOS RTC (ports 0x70/0x71) as a PC kernel does:
/// sees the update-in-progress flag rise and fall with an update, then
/// reads the date after UIP clears in BCD, binary and 12-hour modes and
/// compares each with GET_TIME (within 2 s); writes [`RTC_DATE_OK`] and
/// exits 0, or exits with the failed step (1-5, 9).
pub const RTC_DATE: &[u8] = guest_elf!("rtc_date.elf");

/// The last COM1 line of [`RTC_DATE`] when every step passed.
pub const RTC_DATE_OK: &str = "rtc-date: ok\n";

/// Takes the RTC's periodic interrupt (IRQ8 through the slave 8259 at
/// vector 0x28): 64 at 1024 Hz, 4 at 8 Hz (each no faster than its rate,
/// by GET_TIME), none with PIE off; writes [`RTC_PERIODIC_OK`] and exits
/// 0, or exits with the failed step (1-3).
pub const RTC_PERIODIC: &[u8] = guest_elf!("rtc_periodic.elf");

/// The last COM1 line of [`RTC_PERIODIC`] when every step passed.
pub const RTC_PERIODIC_OK: &str = "rtc-periodic: ok\n";

/// Aether NIC pair guest, polling (`aether_pair.c` on the PC runtime; boots
/// under the Seraph protocol and as a PVH kernel, e.g. QEMU with `-device
/// e1000`). Finds 8086:100E on PCI bus 0, resets it, reads the MAC through
/// EERD (checks RAL0/RAH0 and the 0xBABA checksum), sets up both rings. The
/// guest whose MAC ends in 00:01 sends [`AETHER_PAIR_FRAMES`] numbered
/// Aether frames (EtherType 0x88B5, 60-1514 bytes) and checks every byte of
/// each echo; any other guest checks and echoes them. Ends with
/// `aether-pair: sender ok 1000 frames` or `aether-pair: echo ok 1000
/// frames` and exit 0; failures print `aether-pair: FAILED ...` and exit 10-39.
pub const AETHER_PAIR: &[u8] = guest_elf!("aether_pair.elf");

/// [`AETHER_PAIR`] driven by INTx through the 8259 PIC (line from config
/// 0x3C, vectors 0x20-0x2F, a 100 Hz PIT tick for timeouts); its lines end
/// with ` irqs <n>` and it fails (22) if no NIC interrupt arrived.
pub const AETHER_PAIR_IRQ: &[u8] = guest_elf!("aether_pair_irq.elf");

/// Frames the [`AETHER_PAIR`] sender sends.
pub const AETHER_PAIR_FRAMES: u32 = 1000;

/// Aether NIC guest answering ARP and ICMP echo for 10.99.0.2 (polling);
/// after 3 echo replies writes `aether-ping: ok` and exits 0.
pub const AETHER_PING: &[u8] = guest_elf!("aether_ping.elf");

/// The IPv4 address [`AETHER_PING`] answers for.
pub const AETHER_PING_IP: &str = "10.99.0.2";

/// A hostile Aether NIC driver (Seraph-V only): transmit and receive rings
/// outside RAM, tails and heads past the ring, a buffer outside RAM, a
/// 20 000-byte frame; after each, checks the ring stopped (and MPC moved for
/// receive), resets the card and goes on. Finally receives one frame from
/// the peer and sends one 60-byte Aether frame (kind 9) to broadcast; writes
/// `aether-hostile: step <n> ok` for steps 1-7, then `aether-hostile: ok`,
/// exit 0 (a failed step exits 50 + n).
pub const AETHER_HOSTILE: &[u8] = guest_elf!("aether_hostile.elf");

/// The Atlas disk driver (`pc_entry.S` + `nvme_driver.c`, `pc.ld`; Seraph
/// and PVH entry): finds an NVMe controller by class 01/08/02 on bus 0,
/// brings it up (ASQ as two 32-bit halves, ACQ as one 64-bit write),
/// identifies it, creates a 256-entry queue pair, checks that LBA 0 starts
/// with [`NVME_HOST_PATTERN`], writes, flushes and reads back 64 KiB at LBA
/// 64 through a chained PRP list, checks LBA Out of Range for reads past
/// the end, increments the `ATLAS-RUN-<n>` counter at LBA 1 (flushed; line
/// `nvme-driver: run <n>`), shuts the controller down and ends with
/// [`NVME_DRIVER_OK`] and exit 0. A failure prints
/// `nvme-driver: FAILED ...` and exits with its step number (1-9, 90/91
/// for a lost or malformed completion). Polls its completions. Proven on
/// QEMU's `-device nvme` (crates/seraph-nvme/tests/qemu_reference.rs).
pub const NVME_DRIVER: &[u8] = guest_elf!("nvme_driver.elf");

/// [`NVME_DRIVER`] for a read-only disk: instead of writing, expects
/// Identify Namespace to report write protection and a Write to fail with
/// Namespace is Write Protected (status 0x20); line
/// `nvme-driver: read-only status ok`. (QEMU 7.2 does not report write
/// protection: seraph-v only.)
pub const NVME_DRIVER_READONLY: &[u8] = guest_elf!("nvme_driver_readonly.elf");

/// [`NVME_DRIVER`] with MSI-X (enabled before the controller): admin CQ on
/// vector 0 (IDT 0x50), I/O CQ 1 on vector 1 (IDT 0x51); both must
/// interrupt (line `nvme-driver: msi-x vectors 0 and 1 ok`).
pub const NVME_DRIVER_MSIX: &[u8] = guest_elf!("nvme_driver_msix.elf");

/// What the host writes at the start of LBA 0 before booting [`NVME_DRIVER`].
pub const NVME_HOST_PATTERN: &[u8] = b"ATLAS-HOST-PATTERN";

/// The last COM1 line of [`NVME_DRIVER`] and its variants on success.
pub const NVME_DRIVER_OK: &str = "nvme-driver: ok\n";

/// Hostile Atlas disk guest (`nvme_stress.c`, seraph-v only): bad queue
/// ids, sizes and bases, an SQ on a missing CQ, bad deletes, doorbells of
/// missing queues and past a queue's end, PRPs beyond RAM and with bad
/// offsets (each must get seraph-nvme's status), 65535 reads through a
/// 65536-entry queue pair from one doorbell write (collected while reading
/// CSTS), and a 2-entry CQ never read; ends with [`NVME_HOSTILE_OK`] and
/// exit 0, leaving completions unread. A failure exits with its step (1-6).
pub const NVME_HOSTILE: &[u8] = guest_elf!("nvme_hostile.elf");

/// The last COM1 line of [`NVME_HOSTILE`] on success.
pub const NVME_HOSTILE_OK: &str = "nvme-hostile: ok\n";

/// Atlas disk write stream (crash safety): for i = 0, 1, ... writes LBA
/// 256 + i starting with `ATLAS-STREAM-` and i as 16 hex digits (the rest
/// of the block the byte i & 0xFF), flushes, then prints
/// `nvme-stream: flushed <i>`; `nvme-stream: done` and exit 0 at the end
/// of the disk. Its test kills seraph-v mid-stream.
pub const NVME_STREAM: &[u8] = guest_elf!("nvme_stream.elf");

/// Atlas disk benchmark (seraph-v and QEMU `-device nvme` alike): 20000 4
/// KiB random reads, then 20000 4 KiB sequential writes and a Flush, at
/// queue depth 1, polled; prints `nvme-bench: randread-4k 20000 ops <n>
/// cycles` and `nvme-bench: seqwrite-4k ...` (TSC cycles: compare VMMs on
/// one host by cycles per op), then `nvme-bench: ok` and exit 0.
pub const NVME_BENCH: &[u8] = guest_elf!("nvme_bench.elf");

/// Platform v2's PCI proof: enumerates bus 0, sizes and moves the PCI test
/// device's BAR (and tries to put it over RAM), uses its I/O BAR and takes
/// its INTx through the PIC; prints [`PCI_TESTDEV_OK`] and exits 0 (needs
/// `MachineConfig::pci_testdev`). A failed step exits with its number.
pub const PCI_TESTDEV: &[u8] = guest_elf!("pci_testdev.elf");

/// The last COM1 line of [`PCI_TESTDEV`] when every step passed.
pub const PCI_TESTDEV_OK: &str = "pci-testdev: ok\n";

/// Typed input: sleeps in HLT with IF=1, woken by COM1 receive interrupts
/// (IRQ4 through the PIC); echoes each byte as an "echo: c" line and exits
/// 0 on 'q' after "serial-echo: bye after N interrupts". Prints
/// [`SERIAL_ECHO_READY`] when it waits for input.
pub const SERIAL_ECHO: &[u8] = guest_elf!("serial_echo.elf");

/// For the live display test: paints four quadrants (red, green, blue,
/// white), prints "display-kbd: ready", takes PS/2 keyboard interrupts
/// (IRQ1, set 1): each make code prints "display-kbd: key 0xNN" and paints
/// a yellow 64x64 square at the centre; Escape exits 0.
pub const DISPLAY_KBD: &[u8] = guest_elf!("display_kbd.elf");

/// For the benchmark's display row: prints "display-redraw: ready", reads
/// a decimal frame count ended by a newline from COM1 (sleeping in HLT,
/// woken by COM1's receive interrupt), redraws the
/// whole 1024x768 framebuffer that many times, prints `display-redraw: N
/// frames C cycles` (C: TSC cycles of the loop) and exits 0.
pub const DISPLAY_REDRAW: &[u8] = guest_elf!("display_redraw.elf");

/// A kernel with symbols for the GDB stub test: `step_one` x3 (each
/// `counter += 1`), `bad_path` (exits 77 unless a debugger moves RIP to
/// `good_path`, which adds 100), then a write to `watched`, then EXIT with
/// `counter`. Identity-linked at 1 MiB, so symbol addresses are physical too.
pub const GDB_TARGET: &[u8] = guest_elf!("gdb_target.elf");

/// The line [`SERIAL_ECHO`] prints once it waits for input.
pub const SERIAL_ECHO_READY: &str = "serial-echo: ready\n";

/// A periodic LAPIC timer with an illegal vector (5), a 2M-iteration loop,
/// then `sti; hlt`: must end idle ("nothing can wake it") without timer kicks.
pub const UNDELIVERABLE_LAPIC_VECTOR: &[u8] = guest_elf!("undeliverable_1.elf");
/// A periodic PIT with the PIC never initialised, then `sti; hlt`: idle at once.
pub const UNDELIVERABLE_PIT_NO_PIC: &[u8] = guest_elf!("undeliverable_2.elf");
/// PIT IRQ0 taken once and never EOI'd, then `sti; hlt`: idle at once, last vector 0x20.
pub const UNDELIVERABLE_NO_EOI: &[u8] = guest_elf!("undeliverable_3.elf");
/// CR8 = 15 blocks a LAPIC timer at 0x20; the LAPIC TPR must read 0xF0;
/// writing TPR 0 through MMIO must make CR8 read 0 and let the timer in
/// ("undeliverable: timer in with cr8 0"); exits 0.
pub const CR8_TPR: &[u8] = guest_elf!("undeliverable_4.elf");

/// PVH test guest (`pc_entry.S` + `pvh_check.c`, `pc.ld`), a 64-bit-class
/// ELF: boot it with PVH forced (its ELF entry is the runtime's 64-bit
/// Seraph entry), command line [`PVH_CHECK_CMDLINE`] and module
/// [`test_initrd`]. From the 32-bit PVH entry it builds its own long mode,
/// then checks the `hvm_start_info`: magic, a sorted memory map with RAM
/// from 1 MiB (line `pvh-check: ram top 0x<16 hex digits>`), the
/// framebuffer window and LAPIC page reserved (lines
/// `pvh-check: framebuffer window reserved`,
/// `pvh-check: local APIC page reserved`; `no ...` under QEMU), the command
/// line and the module's size and bytes. Ends with [`PVH_CHECK_OK`] and exit
/// 0; a failed check prints `pvh-check: FAILED ...` and exits 1-12.
pub const PVH_CHECK: &[u8] = guest_elf!("pvh_check.elf");

/// [`PVH_CHECK`] converted to a 32-bit-class ELF (`objcopy -O elf32-i386`):
/// same code, segments and PVH note, EM_386.
pub const PVH_CHECK_32: &[u8] = guest_elf!("pvh_check32.elf");

/// The command line [`PVH_CHECK`] expects.
pub const PVH_CHECK_CMDLINE: &str = "pvh-check cmdline=ok";

/// The last COM1 line of [`PVH_CHECK`] when every check passed.
pub const PVH_CHECK_OK: &str = "pvh-check: ok\n";

/// The tiny bzImage test kernel (`bzimage_head.S` + `linux_check.c`,
/// `bzimage.ld`, flattened by `objcopy -O binary`): a real setup header
/// (protocol 2.15, one setup sector, LOADED_HIGH, code32_start 1 MiB,
/// XLF_KERNEL_64, syssize and init_size from the linker) and no real-mode
/// code. Its 64-bit entry (load address + 0x200) checks CS 0x10, DS/SS
/// 0x18, the zero page (setup header copied, type_of_loader 0xFF), the E820
/// map, the command line [`LINUX_CHECK_CMDLINE`] and the initrd
/// [`test_initrd`], writes [`LINUX_CHECK_OK`] and exits 0 (a failed check:
/// `linux-check: FAILED ...`, exit 2-12). Its 32-bit entry writes
/// `linux-check: 32-bit entry` and exits 32.
pub const LINUX_CHECK_BZIMAGE: &[u8] = guest_elf!("linux_check.bzimage");

/// The command line [`LINUX_CHECK_BZIMAGE`] expects.
pub const LINUX_CHECK_CMDLINE: &str = "linux-check cmdline=ok console=ttyS0";

/// The last COM1 line of [`LINUX_CHECK_BZIMAGE`] when every check passed.
pub const LINUX_CHECK_OK: &str = "linux-check: ok\n";

/// The initrd / PVH module [`PVH_CHECK`] and [`LINUX_CHECK_BZIMAGE`] expect:
/// 0x2345 bytes, `SERAPH-MODULE-01` then byte i = i * 7 + 3 (mod 256).
pub fn test_initrd() -> Vec<u8> {
    let mut data = b"SERAPH-MODULE-01".to_vec();
    data.extend((16u32..0x2345).map(|i| (i.wrapping_mul(7).wrapping_add(3)) as u8));
    data
}

/// Behaves like Seraph OS's physical memory manager at boot (issue #12):
/// frees every page the memory map types 1, 2, 3 or 7, reserves only the
/// first 1 MiB, the boot stack, the primordial arena and (if
/// kernel_phys_base != 0) its image, keeps the boot PML4, and scribbles
/// over every free page (`rep stosq`). Then, with the TLB flushed, checks
/// the boot info and map, paging through the identity and physical maps,
/// its stack, the GDT (reloading CS and the data segments) and the TSS's
/// IST1 stack (a #UD through an IST1 gate). COM1:
/// `allocator: scribbled N pages`, then [`ALLOCATOR_OK`] and EXIT 0; a
/// failed check prints `allocator: FAILED ...` and EXITs 2-11; freed page
/// tables end in a triple fault. Identity-linked.
pub const ALLOCATOR_IDENTITY: &[u8] = guest_elf!("allocator_identity.elf");

/// [`ALLOCATOR_IDENTITY`] linked higher-half (its boot structures move
/// above its image at physical 0).
pub const ALLOCATOR_HIGHER_HALF: &[u8] = guest_elf!("allocator_higher_half.elf");

/// [`ALLOCATOR_IDENTITY`] scribbling only six qwords per free page (0,
/// 0x80, 0xA0, 0x800, 0xFF0, 0xFF8: where page tables, a GDT/TSS and the
/// boot info keep what matters), for RAM sizes above 1 GiB on an emulating
/// nested KVM.
pub const ALLOCATOR_IDENTITY_SPARSE: &[u8] = guest_elf!("allocator_identity_sparse.elf");

/// [`ALLOCATOR_HIGHER_HALF`] with the sparse scribble.
pub const ALLOCATOR_HIGHER_HALF_SPARSE: &[u8] = guest_elf!("allocator_higher_half_sparse.elf");

/// The last COM1 line of the allocator kernels when every check passed.
pub const ALLOCATOR_OK: &str = "allocator: ok\n";

/// The magic before the patchable u64 block count in [`BENCH_PIO`] and
/// [`BENCH_MMIO`].
pub const BENCH_COUNT_MAGIC: &[u8; 8] = b"SVBENCH1";

/// Accesses per loop block in [`BENCH_PIO`] and [`BENCH_MMIO`].
pub const BENCH_BLOCK: u64 = 16;

/// The EXIT status of [`BENCH_HELLO`] and the isa-debug-exit value of
/// [`BENCH_PVH`].
pub const BENCH_EXIT_STATUS: u32 = 5;

/// The COM1 line [`BENCH_HELLO`] and [`BENCH_PVH`] write.
pub const BENCH_HELLO_LINE: &str = "bench-hello: hello over COM1\n";

/// The PRINT line [`BENCH_HELLO`] starts with.
pub const BENCH_HELLO_STARTED: &str = "bench-hello: started\n";

static BENCH: [Guest; 4] = [
    Guest {
        name: "bench-pio",
        elf: BENCH_PIO,
        description: "benchmark: N x 16 outb to COM1 THR, then EXITs 0",
    },
    Guest {
        name: "bench-mmio",
        elf: BENCH_MMIO,
        description: "benchmark: N x 16 reads of LAPIC 0xFEE00030, then EXITs 0",
    },
    Guest {
        name: "bench-hello",
        elf: BENCH_HELLO,
        description: "benchmark: PRINTs a start line, writes one COM1 line, EXITs 5",
    },
    Guest {
        name: "bench-pvh",
        elf: BENCH_PVH,
        description: "benchmark: bench-hello's PVH twin for QEMU microvm (isa-debug-exit 5)",
    },
];

/// The benchmark guests (not in [`all`]: [`BENCH_PVH`] is a QEMU guest).
pub fn bench_guests() -> &'static [Guest] {
    &BENCH
}

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
