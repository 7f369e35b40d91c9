//! The benchmark guests (`seraph-v-bench`).

use crate::Guest;

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

/// The benchmark guests (not in [`all`](crate::all): [`BENCH_PVH`] is a QEMU guest).
pub fn bench_guests() -> &'static [Guest] {
    &BENCH
}
