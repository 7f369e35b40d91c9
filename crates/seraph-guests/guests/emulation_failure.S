/*
 * EMULATION_FAILURE: an SSE arithmetic instruction whose memory operand is
 * the local APIC's MMIO page (version register at 0xFEE00030). The access
 * traps, and KVM's instruction emulator cannot emulate pxor, so KVM_RUN
 * ends with KVM_EXIT_INTERNAL_ERROR (suberror 1, emulation failure).
 * SSE is enabled at entry (CR4.OSFXSR), so no #UD comes first.
 */
#include "seraph_abi.h"
#include "common.inc"

    GUEST_ENTRY
    mov     $0xFEE00030, %eax   /* zero-extended: a 32-bit disp would sign-extend */
    .globl  emulation_failure_insn
emulation_failure_insn:
    pxor    (%rax), %xmm0
    /* Only reached if something emulated the instruction after all. */
    EXIT    3
    HALT_FOREVER
