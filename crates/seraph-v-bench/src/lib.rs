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
//!
//! and prints a table of min/median/max with the ratios against each goal
//! ([`report`]), written also as JSON ([`json`]). See docs/performance.md.

pub mod elf;
pub mod error;
pub mod exits;
pub mod floor;
pub mod json;
pub mod patch;
pub mod peers;
pub mod report;
pub mod rss;
pub mod shot;
pub mod spawn;
pub mod summary;

pub use error::BenchError;
pub use report::{Check, Report, Row};
pub use summary::{Goal, Summary};
