//! The benchmark's one error type.

use std::path::PathBuf;

/// Everything that can stop a measurement.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A KVM ioctl of the floor failed.
    #[error("{call} failed: {source}")]
    Kvm {
        /// The ioctl.
        call: &'static str,
        /// The errno it returned.
        source: std::io::Error,
    },
    /// Guest memory could not be created or written.
    #[error("guest memory: {0}")]
    Memory(String),
    /// The guest ELF is not what the floor's loader takes.
    #[error("guest ELF: {0}")]
    Elf(String),
    /// The guest did something the benchmark did not expect.
    #[error("guest: {0}")]
    Guest(String),
    /// Seraph-V's own machine failed.
    #[error("seraph-vmm: {0}")]
    Vmm(#[from] seraph_vmm::VmmError),
    /// Seraph-V's boot planning failed (floor layout).
    #[error("seraph-boot: {0}")]
    Boot(String),
    /// A child process could not be run, or ended the wrong way.
    #[error("{program}: {detail}")]
    Child {
        /// The program.
        program: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Encoding a screenshot failed.
    #[error("screenshot: {0}")]
    Screenshot(String),
    /// Bad command-line arguments.
    #[error("{0}")]
    Usage(String),
    /// A program or file the bench needs is missing or could not be built.
    #[error("setup: {0}")]
    Setup(String),
}

impl BenchError {
    /// A KVM ioctl failure from kvm-ioctls' error.
    pub fn kvm(call: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> Self {
        move |e| Self::Kvm {
            call,
            source: std::io::Error::from_raw_os_error(e.errno()),
        }
    }

    /// An I/O failure on `path`.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}
