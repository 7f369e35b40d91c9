//! The Seraph-V VMM: composes a hypervisor backend, guest memory, the Seraph
//! boot protocol and device models into a machine, runs its vCPU loop,
//! answers hypercalls, detects idle, and reports how the run ended.
//!
//! ```no_run
//! use seraph_vmm::{Machine, MachineConfig};
//! use seraph_hypervisor::kvm::KvmHypervisor;
//!
//! let kernel = std::fs::read("kernel.elf").unwrap();
//! let kvm = KvmHypervisor::new().unwrap();
//! let mut machine = Machine::new(&kvm, MachineConfig::quiet(), &kernel).unwrap();
//! let report = machine.run().unwrap();
//! println!("{} (exit code {})", report.outcome, report.exit_code());
//! ```

/// Writes one `--debug` line to stderr; a closed or full stderr is
/// ignored (never a panic, as `eprintln!` would).
macro_rules! debug_line {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "[seraph-v] {}", format_args!($($arg)*));
    }};
}
pub(crate) use debug_line;

mod attach;
mod builder;
pub mod config;
pub(crate) mod console;
pub mod control;
pub(crate) mod cpuid;
pub(crate) mod deadline;
pub mod devices;
mod display;
pub(crate) mod entry;
pub mod error;
pub mod gdb;
pub(crate) mod guest_view;
pub mod hypercall;
pub mod interrupts;
pub mod io;
pub mod machine;
pub mod report;
pub(crate) mod residency;
pub mod stats;
mod stop;
mod tally;
mod vcpu_loop;

pub use config::{MachineConfig, SerialSink};
pub use control::{VcpuControl, VcpuEvent};
pub use entry::entry_registers;

// The crates a front end needs, so that one dependency on seraph-vmm is enough.
pub use seraph_boot as boot;
pub use seraph_display as display_server;
pub use seraph_framebuffer as framebuffer;
pub use seraph_gdb as gdb_server;
pub use seraph_hypervisor as hypervisor;
pub use seraph_net as net;
pub use seraph_nvme as nvme;

/// The host's hypervisor type: KVM on Linux.
#[cfg(target_os = "linux")]
pub type HostHypervisor = seraph_hypervisor::kvm::KvmHypervisor;

/// The host's hypervisor type: the Windows Hypervisor Platform on Windows.
#[cfg(windows)]
pub type HostHypervisor = seraph_hypervisor::whp::WhpHypervisor;

/// Opens the host's hypervisor (`/dev/kvm` on Linux, WHP on Windows), with
/// an error that says what to do when it is not usable.
#[cfg(any(target_os = "linux", windows))]
pub fn host_hypervisor() -> Result<HostHypervisor, seraph_hypervisor::HypervisorError> {
    HostHypervisor::new()
}
pub use error::VmmError;
pub use machine::{Machine, OutputReport, RunReport, StopHandle, StopReason};
pub use report::{IdleKind, RunOutcome, exit_code};
pub use stats::RunStats;
