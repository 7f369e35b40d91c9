/*
 * TRIPLE_FAULT: load an IDT with limit 0, then read an address outside the
 * VMM's 4 GiB identity map. The #PF cannot be delivered (no IDT), nor can
 * the #GP/#DF that follow: the CPU shuts down (triple fault).
 * No int3/ud2: this project's nested KVM cannot emulate int3.
 */
#include "seraph_abi.h"
#include "common.inc"

    .section .rodata
    .balign 16
null_idt:
    .word   0           /* limit */
    .quad   0           /* base */

    GUEST_ENTRY
    cli
    lidt    null_idt(%rip)
    movabs  $0x0000123400000000, %rax   /* PML4[0x24]: not present */
    mov     (%rax), %rax
    /* Unreachable on a correct VMM. */
    EXIT    2
    HALT_FOREVER
