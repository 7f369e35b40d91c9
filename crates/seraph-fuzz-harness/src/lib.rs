//! Seraph-V's fuzz targets as plain functions over bytes.
//!
//! Each `pub fn` takes an arbitrary byte string, decodes it into calls on one
//! piece of guest-facing code, and checks that code's invariants. It never
//! panics on any input unless the code under test is wrong: a panic here is
//! a bug found. The cargo-fuzz project in `fuzz/` (nightly, its own
//! workspace) calls these functions from libFuzzer; on stable, the test in
//! `tests/corpus_replay.rs` replays every committed corpus file in
//! `fuzz/corpus/<target>/` through the function named in [`TARGETS`], so CI
//! checks each past finding without a fuzzing run.
//!
//! | target | code under test |
//! |---|---|
//! | `elf_boot` | ELF parse, boot plan, writing it into guest memory, memory-map validation |
//! | `boot_protocols` | kernel detection, the PVH note and bzImage header parsers, loading what they accept |
//! | `memory_map` | the memory-map builder from arbitrary claims, the validator, boot-info encoding |
//! | `lapic`, `pit`, `pic`, `serial` | each device's register interface, driven by reads, writes and [`seraph_clock::FakeClock`] advances |
//! | `hypercall` | hypercall dispatch with arbitrary registers against a fake guest |
//! | `page_walk` | the guest page walker and PRINT over real guest memory with garbage tables |
//! | `arm64_trap` | the AArch64 ESR_EL2 decoder, trap description, `VmExit` mapping and fault report (seraph-fault) |
//! | `nvme_command` | NVMe admin and I/O command parsing and execution, registers and doorbells |
//! | `pci_config` | PCI configuration space through the host bridge, BAR sizing and moves applied to the buses |
//! | `aether_regs`, `aether_rings` | the Aether NIC's register decoding, its descriptor parsing and rings over garbage memory |

#![forbid(unsafe_code)]

pub mod aether;
pub mod arm64_trap;
pub mod boot_protocols;
mod bytes;
pub mod devices;
pub mod elf_boot;
pub mod hypercalls;
pub mod memory_map;
pub mod nvme;
pub mod pci;

pub use aether::{aether_regs, aether_rings};
pub use arm64_trap::arm64_trap;
pub use boot_protocols::boot_protocols;
pub use devices::{lapic, pic, pit, serial};
pub use elf_boot::elf_boot;
pub use hypercalls::{hypercall, page_walk};
pub use memory_map::memory_map;
pub use nvme::nvme_command;
pub use pci::pci_config;

/// A fuzz target: a function that takes any bytes and panics only on a bug.
pub type Target = fn(&[u8]);

/// Every target by name; the name is also the cargo-fuzz target's name and
/// the corpus directory (`fuzz/corpus/<name>/`).
pub const TARGETS: &[(&str, Target)] = &[
    ("elf_boot", elf_boot),
    ("boot_protocols", boot_protocols),
    ("memory_map", memory_map),
    ("lapic", lapic),
    ("pit", pit),
    ("pic", pic),
    ("serial", serial),
    ("hypercall", hypercall),
    ("page_walk", page_walk),
    ("arm64_trap", arm64_trap),
    ("pci_config", pci_config),
    ("nvme_command", nvme_command),
    ("aether_regs", aether_regs),
    ("aether_rings", aether_rings),
];

/// The target called `name`, if there is one.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_takes_empty_and_saturated_input() {
        for (name, run) in TARGETS {
            run(&[]);
            run(&[0xFF; 512]);
            run(&[0x00; 512]);
            assert_eq!(target(name).map(|f| f as usize), Some(*run as usize));
        }
        assert!(target("no-such-target").is_none());
    }

    #[test]
    fn a_lapic_storm_over_the_whole_clock_range_finishes() {
        // Timer periodic with count 1, divide 1, then a 2^64 - 1 ns step:
        // op 1 = 4-byte write (op / 4 = 3 -> len 4), op 2 = clock step.
        let mut input = Vec::new();
        for (reg, value) in [(0x3E0u16, 0xBu32), (0x320, 0x2_0020), (0x380, 1)] {
            input.push(1 | (3 << 2));
            input.extend_from_slice(&reg.to_le_bytes());
            input.extend_from_slice(&value.to_le_bytes());
        }
        input.extend_from_slice(&[2, 3]);
        input.extend_from_slice(&u64::MAX.to_le_bytes());
        input.push(3); // take and acknowledge the pending vector
        lapic(&input);
    }
}
