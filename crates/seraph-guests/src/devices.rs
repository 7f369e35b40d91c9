//! Guests of the PC devices: the PC runtime's self-test, the RTC, the
//! Aether NIC, the Atlas disk (NVMe), PCI, the serial console, the live
//! display, the GDB stub and undeliverable interrupts.

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
