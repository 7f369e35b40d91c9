//! The x86 exception vectors 0-31: mnemonic, name, class, and whether the
//! CPU pushes an error code (Intel SDM vol. 3A, table 6-1).

/// How the CPU reports an exception: where RIP points and whether it restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExceptionClass {
    /// Reported at the faulting instruction; restartable.
    Fault,
    /// Reported after the instruction.
    Trap,
    /// Not restartable (#DF, #MC).
    Abort,
    /// Not an exception: NMI or an external interrupt.
    Interrupt,
    /// Fault or trap depending on the condition (#DB).
    FaultOrTrap,
}

/// One exception vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExceptionInfo {
    /// The vector, 0-31.
    pub vector: u8,
    /// `#PF`, `#GP`, ...
    pub mnemonic: &'static str,
    /// "page fault", "general protection", ...
    pub name: &'static str,
    /// Fault, trap or abort.
    pub class: ExceptionClass,
    /// The CPU pushes an error code (in protected and long mode).
    pub error_code: bool,
}

const fn e(
    vector: u8,
    mnemonic: &'static str,
    name: &'static str,
    class: ExceptionClass,
    error_code: bool,
) -> ExceptionInfo {
    ExceptionInfo {
        vector,
        mnemonic,
        name,
        class,
        error_code,
    }
}

use ExceptionClass::{Abort, Fault, FaultOrTrap, Interrupt, Trap};

/// Vectors 0-31 in order (reserved vectors included, named "reserved").
pub const EXCEPTIONS: [ExceptionInfo; 32] = [
    e(0, "#DE", "divide error", Fault, false),
    e(1, "#DB", "debug", FaultOrTrap, false),
    e(2, "NMI", "non-maskable interrupt", Interrupt, false),
    e(3, "#BP", "breakpoint", Trap, false),
    e(4, "#OF", "overflow", Trap, false),
    e(5, "#BR", "bound range exceeded", Fault, false),
    e(6, "#UD", "invalid opcode", Fault, false),
    e(7, "#NM", "device not available", Fault, false),
    e(8, "#DF", "double fault", Abort, true),
    e(9, "#CSO", "coprocessor segment overrun", Fault, false),
    e(10, "#TS", "invalid TSS", Fault, true),
    e(11, "#NP", "segment not present", Fault, true),
    e(12, "#SS", "stack-segment fault", Fault, true),
    e(13, "#GP", "general protection", Fault, true),
    e(14, "#PF", "page fault", Fault, true),
    e(15, "#15", "reserved", Fault, false),
    e(16, "#MF", "x87 floating-point error", Fault, false),
    e(17, "#AC", "alignment check", Fault, true),
    e(18, "#MC", "machine check", Abort, false),
    e(19, "#XM", "SIMD floating-point exception", Fault, false),
    e(20, "#VE", "virtualization exception", Fault, false),
    e(21, "#CP", "control protection", Fault, true),
    e(22, "#22", "reserved", Fault, false),
    e(23, "#23", "reserved", Fault, false),
    e(24, "#24", "reserved", Fault, false),
    e(25, "#25", "reserved", Fault, false),
    e(26, "#26", "reserved", Fault, false),
    e(27, "#27", "reserved", Fault, false),
    e(28, "#HV", "hypervisor injection", Fault, false),
    e(29, "#VC", "VMM communication", Fault, true),
    e(30, "#SX", "security exception", Fault, true),
    e(31, "#31", "reserved", Fault, false),
];

/// Vector numbers of the exceptions this crate explains in detail.
pub mod vector {
    /// Double fault.
    pub const DF: u8 = 8;
    /// Invalid TSS.
    pub const TS: u8 = 10;
    /// Segment not present.
    pub const NP: u8 = 11;
    /// Stack-segment fault.
    pub const SS: u8 = 12;
    /// General protection.
    pub const GP: u8 = 13;
    /// Page fault.
    pub const PF: u8 = 14;
    /// Control protection.
    pub const CP: u8 = 21;
}

/// The exception at `vector`, or `None` for 32-255 (interrupt vectors).
pub fn exception(vector: u8) -> Option<&'static ExceptionInfo> {
    EXCEPTIONS.get(usize::from(vector))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_in_vector_order_with_the_sdm_error_code_set() {
        for (i, info) in EXCEPTIONS.iter().enumerate() {
            assert_eq!(usize::from(info.vector), i);
        }
        let with_code: Vec<u8> = EXCEPTIONS
            .iter()
            .filter(|e| e.error_code)
            .map(|e| e.vector)
            .collect();
        assert_eq!(with_code, [8, 10, 11, 12, 13, 14, 17, 21, 29, 30]);
        let pf = exception(vector::PF).unwrap_or(&EXCEPTIONS[0]);
        assert_eq!((pf.mnemonic, pf.name), ("#PF", "page fault"));
        assert_eq!(exception(13).map(|e| e.mnemonic), Some("#GP"));
        assert_eq!(exception(8).map(|e| e.class), Some(ExceptionClass::Abort));
        assert!(exception(32).is_none());
        assert!(exception(255).is_none());
    }
}
