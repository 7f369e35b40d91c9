//! The VMM's error type, with the process exit code for each kind.

use crate::report::exit_code;

/// Errors from building or running a machine.
#[derive(Debug, thiserror::Error)]
pub enum VmmError {
    /// The kernel image is not loadable.
    #[error("kernel: {0}")]
    Kernel(#[from] seraph_boot::ElfError),
    /// The boot structures do not fit.
    #[error("boot layout: {0}")]
    Plan(#[from] seraph_boot::PlanError),
    /// The kernel cannot be booted with the chosen protocol (a PVH note or
    /// a bzImage header is malformed, `--boot` asks for what the image
    /// lacks).
    #[error("kernel: {0}")]
    Boot(#[source] seraph_boot::LoadError),
    /// A command line or initrd that the protocol cannot take or that does not fit.
    #[error("{0}")]
    BootConfig(#[source] seraph_boot::LoadError),
    /// Guest memory could not be set up.
    #[error("guest memory: {0}")]
    Memory(#[from] seraph_memory::MemoryError),
    /// The framebuffer geometry is unusable.
    #[error("framebuffer: {0}")]
    Framebuffer(#[from] seraph_framebuffer::FramebufferError),
    /// A configuration value is unusable.
    #[error("{0}")]
    Config(String),
    /// An output (serial log file) cannot be created.
    #[error("{0}")]
    Output(String),
    /// An output file cannot be opened.
    #[error("cannot open {path}: {source}")]
    OpenOutput {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A device could not be put on a bus (overlapping ranges: a bug in
    /// the machine's layout).
    #[error("device layout: {0}")]
    Bus(#[from] seraph_bus::BusError),
    /// The disk image cannot be used.
    #[error("{0}")]
    Disk(#[from] seraph_nvme::DiskError),
    /// The web display cannot start (its address cannot be bound).
    #[error("cannot start the display: {0}")]
    Display(#[source] seraph_display::DisplayError),
    /// The gdb server cannot listen on its address.
    #[error("cannot listen for gdb on {addr}: {source}")]
    GdbListen {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// Why.
        #[source]
        source: seraph_gdb::GdbError,
    },
    /// A thread Seraph-V needs could not be started.
    #[error("cannot start a thread: {0}")]
    Thread(#[source] std::io::Error),
    /// The hypervisor failed or is unavailable.
    #[error("{0}")]
    Hypervisor(#[from] seraph_hypervisor::HypervisorError),
    /// A bug or an unexpected state in Seraph-V itself.
    #[error("internal error: {0}")]
    Internal(String),
    /// A NIC backend or its capture file cannot be set up (`--net`, `--net-capture`).
    #[error("{0}")]
    Net(#[from] seraph_net::NetError),
}

impl VmmError {
    /// Sorts a kernel-loading error: a Seraph ELF the loader refuses stays
    /// [`VmmError::Kernel`] (65) and a plan that does not fit
    /// [`VmmError::Plan`] (78), as before; other image problems are
    /// [`VmmError::Boot`] (65), command-line and initrd problems
    /// [`VmmError::BootConfig`] (78).
    pub fn from_load(e: seraph_boot::LoadError) -> Self {
        use seraph_boot::{DetectError, LoadError, PlanError};
        match e {
            LoadError::Plan(PlanError::Elf(elf)) | LoadError::Detect(DetectError::Elf(elf)) => {
                VmmError::Kernel(elf)
            }
            LoadError::Plan(plan) => VmmError::Plan(plan),
            LoadError::Memory(m) => VmmError::Memory(m),
            e @ (LoadError::Cmdline { .. }
            | LoadError::InitrdDoesNotFit { .. }
            | LoadError::SeraphHasNo(_)) => VmmError::BootConfig(e),
            other => VmmError::Boot(other),
        }
    }

    /// The documented process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            VmmError::Kernel(_) | VmmError::Boot(_) => exit_code::BAD_KERNEL,
            VmmError::BootConfig(_) => exit_code::CONFIG,
            VmmError::Plan(_) | VmmError::Memory(_) | VmmError::Framebuffer(_) => exit_code::CONFIG,
            VmmError::Config(_) | VmmError::Disk(_) => exit_code::CONFIG,
            VmmError::Bus(_) => exit_code::INTERNAL,
            VmmError::Display(_) | VmmError::GdbListen { .. } => exit_code::CANT_CREATE,
            VmmError::Output(_) | VmmError::OpenOutput { .. } => exit_code::CANT_CREATE,
            VmmError::Thread(_) => exit_code::OS_ERROR,
            VmmError::Hypervisor(seraph_hypervisor::HypervisorError::Unavailable(_)) => {
                exit_code::HYPERVISOR_UNAVAILABLE
            }
            VmmError::Hypervisor(_) | VmmError::Internal(_) => exit_code::INTERNAL,
            VmmError::Net(e) => e.exit_code(),
        }
    }
}
