/*
 * FAULT_PF_WRITE: IF = 0 and an empty IDT (limit 0), then `movl $1, (%rax)`
 * at 0x100040 with RAX = 0xFFFF800030000000: the physical map's PD covers
 * only the first 512 MiB, so its entry 384 is not present. The #PF (error
 * code 0x2: write, supervisor, not-present) cannot be delivered, nor the
 * #GP/#DF that follow: the CPU triple-faults. No output.
 */
#include "seraph_abi.h"
#include "common.inc"

    .section .rodata
    .balign 16
fault_null_idt:
    .word   0           /* limit */
    .quad   0           /* base */

    GUEST_ENTRY
    cli
    lidt    fault_null_idt(%rip)
    movabs  $0xFFFF800030000000, %rax
    .org    0x40, 0x90                      /* the write sits at 0x100040 */
    movl    $1, (%rax)
    /* Unreachable on a correct VMM. */
    EXIT    2
    HALT_FOREVER
