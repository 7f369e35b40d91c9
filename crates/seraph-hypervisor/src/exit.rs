//! The arch-neutral exit model.
//!
//! A [`VmExit`] says what the guest did that the hypervisor could not finish
//! alone. Data-carrying exits borrow the backend's buffer: a read is answered
//! by filling `data` in place before the next `run`. On AArch64, a stage-2
//! data abort with a valid syndrome maps to `MmioRead`/`MmioWrite`, HVC to
//! `Hypercall`, WFI to `Halt`, and PSCI SYSTEM_OFF/RESET to `Shutdown`.

/// Why the VM stopped on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownReason {
    /// x86 triple fault (or any shutdown condition the CPU entered).
    TripleFault,
    /// The guest asked to power off (AArch64 PSCI SYSTEM_OFF, ACPI S5).
    PowerOff,
    /// The guest asked to reset the machine.
    Reset,
}

/// Up to 15 bytes of a guest instruction (the x86 maximum length).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InstructionBytes {
    /// The bytes; only the first `len` are valid.
    pub bytes: [u8; 15],
    /// How many bytes are valid.
    pub len: u8,
}

impl InstructionBytes {
    /// The valid bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len.min(15))]
    }

    /// Builds from a slice, keeping at most 15 bytes.
    pub fn from_slice(src: &[u8]) -> Self {
        let mut out = Self::default();
        let n = src.len().min(15);
        out.bytes[..n].copy_from_slice(&src[..n]);
        out.len = n as u8;
        out
    }
}

impl std::fmt::Display for InstructionBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, b) in self.as_slice().iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A hypercall with the spec's convention: number in RAX (x0 on AArch64),
/// arguments in RDI, RSI, RDX, RCX (x1-x4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hypercall {
    /// The hypercall number.
    pub nr: u64,
    /// The four argument registers.
    pub args: [u64; 4],
}

/// The answer to an exit that needs one, given to [`crate::Vcpu::complete`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// The hypercall's result (into RAX / x0).
    Hypercall(u64),
    /// The value an MSR read returns, or `None` to raise #GP.
    MsrRead(Option<u64>),
    /// Whether an MSR write is accepted (`false` raises #GP).
    MsrWrite(bool),
    /// EAX, EBX, ECX, EDX for a CPUID exit.
    Cpuid([u32; 4]),
}

/// What the guest did that the VMM must handle.
#[derive(Debug, PartialEq, Eq)]
pub enum VmExit<'a> {
    /// x86 `in`: fill `data` with what the port returns.
    IoIn {
        /// Port number.
        port: u16,
        /// Bytes per access: 1, 2 or 4.
        size: u8,
        /// `data.len() / size` consecutive reads of `size` bytes from the
        /// same port (more than one for string I/O, `rep insb` and kin).
        data: &'a mut [u8],
    },
    /// x86 `out` of `data` to `port`.
    IoOut {
        /// Port number.
        port: u16,
        /// Bytes per access: 1, 2 or 4.
        size: u8,
        /// `data.len() / size` consecutive writes of `size` bytes to the
        /// same port (more than one for string I/O, `rep outsb` and kin).
        data: &'a [u8],
    },
    /// A read of unbacked guest-physical memory: fill `data`.
    MmioRead {
        /// Guest-physical address.
        addr: u64,
        /// The access, 1 to 8 bytes.
        data: &'a mut [u8],
    },
    /// A write to unbacked guest-physical memory.
    MmioWrite {
        /// Guest-physical address.
        addr: u64,
        /// The bytes written.
        data: &'a [u8],
    },
    /// A hypercall; answer it with [`Completion::Hypercall`].
    Hypercall(Hypercall),
    /// The vCPU halted (HLT, WFI) and waits for an interrupt.
    Halt,
    /// The guest can now take the interrupt the VMM asked a window for.
    InterruptWindow,
    /// `run` was stopped by a kick or a signal; nothing happened in the guest.
    Interrupted,
    /// The VM stopped itself.
    Shutdown(ShutdownReason),
    /// A debug event (breakpoint, watchpoint, single step) at `pc`.
    Debug {
        /// Guest instruction pointer.
        pc: u64,
        /// What fired.
        cause: crate::debug::DebugCause,
    },
    /// An MSR read the backend leaves to the VMM; answer with [`Completion::MsrRead`].
    MsrRead {
        /// MSR number.
        index: u32,
    },
    /// An MSR write the backend leaves to the VMM; answer with [`Completion::MsrWrite`].
    MsrWrite {
        /// MSR number.
        index: u32,
        /// The value written.
        value: u64,
    },
    /// A CPUID the backend leaves to the VMM; answer with [`Completion::Cpuid`].
    Cpuid {
        /// EAX at the CPUID.
        leaf: u32,
        /// ECX at the CPUID.
        subleaf: u32,
    },
    /// The hypervisor could not emulate a guest instruction.
    EmulationFailure {
        /// The instruction bytes, if the backend reported them.
        instruction: Option<InstructionBytes>,
    },
    /// The hardware refused to enter the guest (invalid guest state).
    FailedEntry {
        /// The hardware's reason code.
        reason: u64,
    },
    /// The hypervisor hit an internal error.
    InternalError {
        /// Backend-specific sub-code.
        code: u32,
        /// What the backend said about it.
        detail: String,
    },
    /// An exit this backend does not translate (raw reason kept for reports).
    Unknown {
        /// The backend's raw exit reason.
        reason: u64,
    },
}

/// The kind of an exit without its data (for statistics and reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ExitKind {
    /// [`VmExit::IoIn`].
    IoIn,
    /// [`VmExit::IoOut`].
    IoOut,
    /// [`VmExit::MmioRead`].
    MmioRead,
    /// [`VmExit::MmioWrite`].
    MmioWrite,
    /// [`VmExit::Hypercall`].
    Hypercall,
    /// [`VmExit::Halt`].
    Halt,
    /// [`VmExit::InterruptWindow`].
    InterruptWindow,
    /// [`VmExit::Interrupted`].
    Interrupted,
    /// [`VmExit::Shutdown`].
    Shutdown,
    /// [`VmExit::Debug`].
    Debug,
    /// [`VmExit::MsrRead`].
    MsrRead,
    /// [`VmExit::MsrWrite`].
    MsrWrite,
    /// [`VmExit::Cpuid`].
    Cpuid,
    /// [`VmExit::EmulationFailure`].
    EmulationFailure,
    /// [`VmExit::FailedEntry`].
    FailedEntry,
    /// [`VmExit::InternalError`].
    InternalError,
    /// [`VmExit::Unknown`].
    Unknown,
}

impl ExitKind {
    /// Every kind, in declaration order (`kind as usize` indexes it).
    pub const ALL: [ExitKind; 17] = [
        ExitKind::IoIn,
        ExitKind::IoOut,
        ExitKind::MmioRead,
        ExitKind::MmioWrite,
        ExitKind::Hypercall,
        ExitKind::Halt,
        ExitKind::InterruptWindow,
        ExitKind::Interrupted,
        ExitKind::Shutdown,
        ExitKind::Debug,
        ExitKind::MsrRead,
        ExitKind::MsrWrite,
        ExitKind::Cpuid,
        ExitKind::EmulationFailure,
        ExitKind::FailedEntry,
        ExitKind::InternalError,
        ExitKind::Unknown,
    ];

    /// This kind's position in [`ExitKind::ALL`], for counting in an array.
    pub fn index(self) -> usize {
        self as usize
    }

    /// A short lower-case name for reports.
    pub fn name(self) -> &'static str {
        match self {
            ExitKind::IoIn => "io-in",
            ExitKind::IoOut => "io-out",
            ExitKind::MmioRead => "mmio-read",
            ExitKind::MmioWrite => "mmio-write",
            ExitKind::Hypercall => "hypercall",
            ExitKind::Halt => "halt",
            ExitKind::InterruptWindow => "interrupt-window",
            ExitKind::Interrupted => "interrupted",
            ExitKind::Shutdown => "shutdown",
            ExitKind::Debug => "debug",
            ExitKind::MsrRead => "msr-read",
            ExitKind::MsrWrite => "msr-write",
            ExitKind::Cpuid => "cpuid",
            ExitKind::EmulationFailure => "emulation-failure",
            ExitKind::FailedEntry => "failed-entry",
            ExitKind::InternalError => "internal-error",
            ExitKind::Unknown => "unknown",
        }
    }
}

impl VmExit<'_> {
    /// The kind of this exit.
    pub fn kind(&self) -> ExitKind {
        match self {
            VmExit::IoIn { .. } => ExitKind::IoIn,
            VmExit::IoOut { .. } => ExitKind::IoOut,
            VmExit::MmioRead { .. } => ExitKind::MmioRead,
            VmExit::MmioWrite { .. } => ExitKind::MmioWrite,
            VmExit::Hypercall(_) => ExitKind::Hypercall,
            VmExit::Halt => ExitKind::Halt,
            VmExit::InterruptWindow => ExitKind::InterruptWindow,
            VmExit::Interrupted => ExitKind::Interrupted,
            VmExit::Shutdown(_) => ExitKind::Shutdown,
            VmExit::Debug { .. } => ExitKind::Debug,
            VmExit::MsrRead { .. } => ExitKind::MsrRead,
            VmExit::MsrWrite { .. } => ExitKind::MsrWrite,
            VmExit::Cpuid { .. } => ExitKind::Cpuid,
            VmExit::EmulationFailure { .. } => ExitKind::EmulationFailure,
            VmExit::FailedEntry { .. } => ExitKind::FailedEntry,
            VmExit::InternalError { .. } => ExitKind::InternalError,
            VmExit::Unknown { .. } => ExitKind::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instruction_bytes_keep_at_most_fifteen_and_print_as_hex() {
        let ib = InstructionBytes::from_slice(&[0x0f, 0x01, 0xc1]);
        assert_eq!(ib.as_slice(), &[0x0f, 0x01, 0xc1]);
        assert_eq!(ib.to_string(), "0f 01 c1");
        let long = InstructionBytes::from_slice(&[0x90; 20]);
        assert_eq!(long.as_slice().len(), 15);
    }

    #[test]
    fn all_lists_every_kind_at_its_index() {
        for (i, kind) in ExitKind::ALL.iter().enumerate() {
            assert_eq!(kind.index(), i);
        }
        let mut names: Vec<_> = ExitKind::ALL.iter().map(|k| k.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ExitKind::ALL.len());
    }

    #[test]
    fn kinds_have_distinct_names() {
        let mut data = [0u8; 1];
        let exits = [
            VmExit::IoIn {
                port: 1,
                size: 1,
                data: &mut data,
            },
            VmExit::Halt,
            VmExit::Shutdown(ShutdownReason::TripleFault),
        ];
        let names: Vec<_> = exits.iter().map(|e| e.kind().name()).collect();
        assert_eq!(names, ["io-in", "halt", "shutdown"]);
    }
}
