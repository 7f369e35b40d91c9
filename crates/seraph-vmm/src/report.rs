//! How a run ended, the process exit code for it, and the one-line report.

use std::fmt;
use std::time::Duration;

use seraph_hypervisor::{InstructionBytes, Regs, SpecialRegs, VcpuEvents};

/// Process exit codes for the ways a run can end (see docs/exit-codes.md).
///
/// A guest's EXIT status is passed through as is (low 8 bits). The codes
/// below are what Seraph-V itself reports; they follow sysexits(3) for
/// input and setup errors and sit at 80+ for guest failures.
pub mod exit_code {
    /// The guest reached its idle loop (or EXIT with status 0).
    pub const IDLE: i32 = 0;
    /// Command-line usage error (clap's own code).
    pub const USAGE: i32 = 2;
    /// The kernel image is not a loadable ELF64 x86-64 kernel.
    pub const BAD_KERNEL: i32 = 65;
    /// An input file cannot be read.
    pub const NO_INPUT: i32 = 66;
    /// The hypervisor (/dev/kvm) cannot be used.
    pub const HYPERVISOR_UNAVAILABLE: i32 = 69;
    /// A failure inside Seraph-V itself.
    pub const INTERNAL: i32 = 70;
    /// An output file (screenshot, serial log) cannot be created.
    pub const CANT_CREATE: i32 = 73;
    /// The configuration does not fit (memory too small, framebuffer too large).
    pub const CONFIG: i32 = 78;
    /// The guest halted with interrupts disabled and nothing pending: it can never wake.
    pub const DEAD_HALT: i32 = 80;
    /// The guest triple-faulted (or otherwise shut the CPU down).
    pub const TRIPLE_FAULT: i32 = 81;
    /// The hypervisor could not run a guest instruction.
    pub const EMULATION_FAILURE: i32 = 82;
    /// The hypervisor refused to enter the guest, or failed internally.
    pub const HYPERVISOR_FAILURE: i32 = 83;
    /// `--timeout` expired.
    pub const TIMEOUT: i32 = 124;
    /// Stopped by Ctrl-C (128 + SIGINT), or Ctrl-A x on the serial console.
    pub const INTERRUPTED: i32 = 130;
    /// A thread Seraph-V needs could not be created (sysexits EX_OSERR).
    pub const OS_ERROR: i32 = 71;
    /// Killed from the attached debugger (gdb's `kill`), as 128 + SIGKILL.
    pub const KILLED: i32 = 137;
    /// Stopped by a termination signal: 128 + the signal (SIGHUP 129, SIGTERM 143).
    pub const SIGNAL_BASE: i32 = 128;
}

/// Why the guest was judged idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleKind {
    /// The configured number of consecutive HLT exits at one RIP.
    HltCount(u32),
    /// Halted with interrupts enabled and no device that can ever raise one.
    NothingCanWake,
}

/// The CPU state kept for crash reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuSnapshot {
    /// General-purpose registers.
    pub regs: Regs,
    /// Control and segment registers.
    pub sregs: SpecialRegs,
    /// The exception/interrupt state, where the backend could read it.
    pub events: Option<VcpuEvents>,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// The guest called EXIT with this status.
    GuestExit {
        /// The status the guest passed in RDI.
        status: u64,
    },
    /// The guest sits in an idle loop.
    Idle {
        /// What made it idle.
        kind: IdleKind,
        /// Where it halts.
        rip: u64,
        /// The last interrupt vector Seraph-V delivered, if any.
        last_vector: Option<u8>,
    },
    /// HLT with interrupts disabled and nothing pending.
    DeadHalt {
        /// Where it halted.
        rip: u64,
    },
    /// Triple fault / CPU shutdown.
    TripleFault {
        /// Registers at the fault.
        cpu: Option<Box<CpuSnapshot>>,
    },
    /// The hypervisor could not run an instruction.
    EmulationFailure {
        /// The instruction's address.
        rip: u64,
        /// Its bytes, from the hypervisor or read through the guest's page tables.
        instruction: Option<InstructionBytes>,
    },
    /// The hypervisor refused to enter the guest or failed internally.
    HypervisorFailure {
        /// What it said.
        detail: String,
    },
    /// `--timeout` expired.
    Timeout {
        /// The configured limit.
        after: Duration,
        /// Where the guest was.
        rip: Option<u64>,
    },
    /// Stopped from outside (Ctrl-C).
    Interrupted,
    /// Killed by the attached debugger (gdb's `kill`).
    Killed,
    /// The user pressed the display's "power off" button.
    PoweredOff,
    /// Stopped by a termination signal (SIGTERM, SIGHUP).
    Signalled {
        /// The signal number.
        signal: i32,
    },
}

impl RunOutcome {
    /// The process exit code for this outcome.
    pub fn exit_code(&self) -> i32 {
        match self {
            RunOutcome::GuestExit { status } => (*status & 0xff) as i32,
            RunOutcome::Idle { .. } => exit_code::IDLE,
            RunOutcome::DeadHalt { .. } => exit_code::DEAD_HALT,
            RunOutcome::TripleFault { .. } => exit_code::TRIPLE_FAULT,
            RunOutcome::EmulationFailure { .. } => exit_code::EMULATION_FAILURE,
            RunOutcome::HypervisorFailure { .. } => exit_code::HYPERVISOR_FAILURE,
            RunOutcome::Timeout { .. } => exit_code::TIMEOUT,
            RunOutcome::Interrupted => exit_code::INTERRUPTED,
            RunOutcome::Signalled { signal } => exit_code::SIGNAL_BASE + (signal & 0x7f),
            RunOutcome::Killed => exit_code::KILLED,
            RunOutcome::PoweredOff => exit_code::IDLE,
        }
    }
}

fn hex_or_unknown(v: Option<u64>) -> String {
    v.map_or_else(|| "unknown".to_owned(), |v| format!("{v:#x}"))
}

impl fmt::Display for RunOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunOutcome::GuestExit { status } => {
                write!(f, "guest exited with status {status}")
            }
            RunOutcome::Idle {
                kind,
                rip,
                last_vector,
            } => {
                match kind {
                    IdleKind::HltCount(n) => write!(f, "guest idle: {n} HLTs at rip {rip:#x}")?,
                    IdleKind::NothingCanWake => write!(
                        f,
                        "guest idle: halted at rip {rip:#x} with nothing that can wake it"
                    )?,
                }
                match last_vector {
                    Some(v) => write!(f, " (last interrupt delivered: vector {v:#04x})"),
                    None => write!(f, " (no interrupt delivered yet)"),
                }
            }
            RunOutcome::DeadHalt { rip } => write!(
                f,
                "guest halted with interrupts disabled at rip {rip:#x}: it can never wake"
            ),
            RunOutcome::TripleFault { cpu } => {
                write!(f, "guest triple fault")?;
                if let Some(cpu) = cpu {
                    let (r, s) = (&cpu.regs, &cpu.sregs);
                    write!(
                        f,
                        " at rip {:#x} rsp {:#x} rflags {:#x} cr0 {:#x} cr2 {:#x} cr3 {:#x} cr4 {:#x} efer {:#x} \
                         idt {:#x}+{:#x} rax {:#x} rdi {:#x}",
                        r.rip,
                        r.rsp,
                        r.rflags,
                        s.cr0,
                        s.cr2,
                        s.cr3,
                        s.cr4,
                        s.efer,
                        s.idt.base,
                        s.idt.limit,
                        r.rax,
                        r.rdi
                    )?;
                }
                Ok(())
            }
            RunOutcome::EmulationFailure { rip, instruction } => {
                write!(
                    f,
                    "emulation failure: the hypervisor cannot run the instruction at rip {rip:#x}"
                )?;
                match instruction {
                    Some(bytes) => write!(f, " (bytes: {bytes})"),
                    None => write!(f, " (bytes unreadable)"),
                }
            }
            RunOutcome::HypervisorFailure { detail } => write!(f, "hypervisor failure: {detail}"),
            RunOutcome::Timeout { after, rip } => write!(
                f,
                "timeout after {:.3}s, guest at rip {}",
                after.as_secs_f64(),
                hex_or_unknown(*rip)
            ),
            RunOutcome::Interrupted => write!(f, "interrupted (Ctrl-C)"),
            RunOutcome::Killed => write!(f, "killed from the debugger"),
            RunOutcome::PoweredOff => write!(f, "powered off from the display"),
            RunOutcome::Signalled { signal } => {
                let name = match signal {
                    1 => "SIGHUP",
                    15 => "SIGTERM",
                    _ => "a signal",
                };
                write!(f, "stopped by {name} ({signal})")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_distinct_and_guest_status_passes_through() {
        let outcomes = [
            RunOutcome::DeadHalt { rip: 1 },
            RunOutcome::TripleFault { cpu: None },
            RunOutcome::EmulationFailure {
                rip: 1,
                instruction: None,
            },
            RunOutcome::HypervisorFailure {
                detail: String::new(),
            },
            RunOutcome::Timeout {
                after: Duration::from_secs(1),
                rip: None,
            },
            RunOutcome::Interrupted,
        ];
        let mut codes: Vec<i32> = outcomes.iter().map(RunOutcome::exit_code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), outcomes.len());
        assert_eq!(RunOutcome::GuestExit { status: 42 }.exit_code(), 42);
        assert_eq!(RunOutcome::GuestExit { status: 0x1_01 }.exit_code(), 1);
    }

    #[test]
    fn report_lines_say_what_happened() {
        let idle = RunOutcome::Idle {
            kind: IdleKind::HltCount(100),
            rip: 0x100010,
            last_vector: Some(0x20),
        };
        assert_eq!(
            idle.to_string(),
            "guest idle: 100 HLTs at rip 0x100010 (last interrupt delivered: vector 0x20)"
        );
        let emu = RunOutcome::EmulationFailure {
            rip: 0x100000,
            instruction: Some(InstructionBytes::from_slice(&[0x66, 0x0f, 0xef])),
        };
        assert!(emu.to_string().ends_with("(bytes: 66 0f ef)"));
        assert_eq!(emu.exit_code(), exit_code::EMULATION_FAILURE);
    }
}
