//! Guests that fault on purpose, for `seraph-fault`'s reports.

use crate::Guest;

/// Fault guest: IF = 0 and an empty IDT (limit 0), then `movl $1, (%rax)`
/// at [`FAULT_PF_WRITE_RIP`] with RAX = [`FAULT_PF_ADDRESS`] (not present at
/// the PD level of the boot tables' physical map): an undeliverable #PF,
/// error code 0x2, so the CPU triple-faults. No output.
pub const FAULT_PF_WRITE: &[u8] = guest_elf!("fault_pf_write.elf");

/// Fault guest: IF = 0, an IDT of 32 gates with only #PF present, then
/// `movq $1, (%rax)` at [`FAULT_GP_RIP`] with RAX = [`FAULT_GP_ADDRESS`]
/// (non-canonical): #GP(0) with an absent #GP gate (and #DF gate), so the
/// CPU triple-faults. EXITs 3 if a #PF is delivered instead. No output.
pub const FAULT_GP: &[u8] = guest_elf!("fault_gp.elf");

/// [`FAULT_GP`] with `wrmsr` of MSR [`FAULT_GP_WRMSR_MSR`] (unknown to
/// everyone, refused with #GP) at [`FAULT_GP_RIP`] instead of the
/// non-canonical write.
pub const FAULT_GP_WRMSR: &[u8] = guest_elf!("fault_gp_wrmsr.elf");

/// Fault guest: an IDT of 32 gates with only #PF present (handler at
/// [`FAULT_PF_HANDLER_ENTRY`]); writes to [`FAULT_PF_ADDRESS`] at
/// [`FAULT_GP_RIP`] (0x100080). The handler PRINTs
/// [`FAULT_PF_HANDLER_PRINT`] without touching the stack, then `sti` and a
/// `hlt; jmp` loop forever: the run ends idle inside the handler, with the
/// exception frame (error code 0x2) at RSP.
pub const FAULT_PF_HANDLER: &[u8] = guest_elf!("fault_pf_handler.elf");

/// The unmapped address [`FAULT_PF_WRITE`] and [`FAULT_PF_HANDLER`] write:
/// entry 384 of the physical map's PD (PML4 entry 256, PDPT entry 0) is not present.
pub const FAULT_PF_ADDRESS: u64 = 0xFFFF_8000_3000_0000;

/// Where [`FAULT_PF_WRITE`]'s faulting write is.
pub const FAULT_PF_WRITE_RIP: u64 = 0x10_0040;

/// Where the faulting instruction of [`FAULT_GP`], [`FAULT_GP_WRMSR`] and
/// [`FAULT_PF_HANDLER`] is.
pub const FAULT_GP_RIP: u64 = 0x10_0080;

/// The non-canonical address [`FAULT_GP`] writes.
pub const FAULT_GP_ADDRESS: u64 = 0x0000_8000_0000_0000;

/// The MSR [`FAULT_GP_WRMSR`] writes.
pub const FAULT_GP_WRMSR_MSR: u32 = 0xC0DE_0001;

/// The entry of [`FAULT_PF_HANDLER`]'s #PF handler.
pub const FAULT_PF_HANDLER_ENTRY: u64 = 0x10_0100;

/// The one PRINT line of [`FAULT_PF_HANDLER`].
pub const FAULT_PF_HANDLER_PRINT: &str = "fault-pf-handler: page fault\n";

static FAULT: [Guest; 4] = [
    Guest {
        name: "fault-pf-write",
        elf: FAULT_PF_WRITE,
        description: "no IDT, a write to an unmapped address: #PF, triple fault",
    },
    Guest {
        name: "fault-gp",
        elf: FAULT_GP,
        description: "a non-canonical write with the #GP gate absent: #GP, triple fault",
    },
    Guest {
        name: "fault-gp-wrmsr",
        elf: FAULT_GP_WRMSR,
        description: "wrmsr of an unknown MSR with the #GP gate absent: #GP, triple fault",
    },
    Guest {
        name: "fault-pf-handler",
        elf: FAULT_PF_HANDLER,
        description: "a #PF taken by a handler that PRINTs and idles in a hlt loop",
    },
];

/// The fault guests of `seraph-fault`'s tests (not in [`all`](crate::all): they end in
/// triple faults or idle inside an exception handler on purpose).
pub fn fault_guests() -> &'static [Guest] {
    &FAULT
}
