/* HLT_NO_IRQ: PRINT "hlt guest\n", then HLT with interrupts disabled. */
#include "seraph_abi.h"
#include "common.inc"

    GUEST_ENTRY
    PRINT_TEXT "hlt guest\n"
    cli
    .globl  hlt_insn
hlt_insn:
    hlt
    jmp     hlt_insn
