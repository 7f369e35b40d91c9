//! Seraph-V's benchmark: what a kernel test costs on Seraph-V against the
//! floor that raw KVM allows and against QEMU microvm.
//!
//! `cargo run --release -p seraph-v-bench` measures, in one invocation:
//! 1. a port-I/O exit round trip (Seraph-V's run loop + bus vs a bare
//!    kvm-ioctls loop, [`exits`]);
//! 2. an MMIO exit round trip on a LAPIC register, the same way;
//! 3. cold start of `seraph-v` vs the `kvm-floor` program ([`spawn`]);
//! 4. QEMU microvm booting the same guest work ([`peers`]);
//! 5. the VMM's own resident memory ([`rss`]);
//! 6. the cost of a BMP and a PNG screenshot ([`shot`]);
//! 7. wake-up latency, a stdin byte to the halted guest's echo, and the
//!    VMM's CPU use while the guest sleeps ([`wake`]);
//! 8. VM-to-VM frames per second and round trip over `--net dgram`
//!    against a QEMU e1000 pair ([`netpair`]);
//! 9. NVMe 4 KiB random-read and sequential-write cost per command
//!    against QEMU's nvme ([`disk`]);
//!
//! and prints a table of min/median/max with the ratios against each goal
//! ([`report`]), written also as JSON ([`json`]). See docs/performance.md.

pub mod disk;
pub mod elf;
pub mod error;
pub mod exits;
pub mod floor;
pub mod json;
pub mod lines;
pub mod netpair;
pub mod patch;
pub mod peers;
pub mod procstat;
pub mod programs;
pub mod report;
pub mod rss;
pub mod shot;
pub mod spawn;
pub mod summary;
pub mod wake;
pub mod ws;

pub use error::BenchError;
pub use report::{Check, Report, Row};
pub use summary::{Goal, Summary};
