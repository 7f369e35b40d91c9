/*
 * FAULT_PF_HANDLER: an IDT of 32 gates with only #PF (14) present, its
 * handler at 0x100100. The guest writes to 0xFFFF800030000000 (not present
 * at the PD level) at 0x100080; the handler PRINTs
 * "fault-pf-handler: page fault\n" (registers only: RSP still points at
 * the exception frame), then `sti` and `1: hlt; jmp 1b` forever (IF = 1,
 * nothing programmed to wake it). The frame holds error code 0x2 and RIP
 * 0x100080.
 */
#include "seraph_abi.h"
#include "common.inc"
#include "fault.inc"

    GUEST_ENTRY
    cli
    FAULT_IDT_LOAD
    FAULT_GATE 14, fault_pf_handler
    movabs  $0xFFFF800030000000, %rax
    .org    0x80, 0x90                      /* the write sits at 0x100080 */
    movl    $1, (%rax)
    /* Unreachable: the handler never returns. */
    EXIT    2
    HALT_FOREVER

    .org    0x100, 0x90                     /* the handler sits at 0x100100 */
fault_pf_handler:
    PRINT_TEXT "fault-pf-handler: page fault\n"
    sti
1:
    hlt
    jmp     1b
