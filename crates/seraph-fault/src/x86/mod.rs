//! x86 faults: the exception table, error codes, a page-walk explainer
//! that checks access rights, the guest's IDT, and [`explain_x86`].

pub mod error_code;
pub mod exceptions;
pub mod explain;
pub mod idt;
pub mod insn;
pub mod walk;

#[cfg(test)]
mod explain_tests;

pub use error_code::{ErrorCode, PageFaultError, SelectorError, SelectorTable};
pub use exceptions::{EXCEPTIONS, ExceptionClass, ExceptionInfo, exception};
pub use explain::{X86FaultState, explain_halted_handler, explain_x86};
pub use idt::{ExceptionFrame, HandlerMatch, IdtGate, IdtProblem};
pub use walk::{AccessIntent, PagingControls, WalkFault, WalkOutcome, explain_access};
