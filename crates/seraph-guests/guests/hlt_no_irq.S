/* HLT_NO_IRQ: PRINT "hlt guest\n", then HLT with interrupts disabled. */
#include "seraph_abi.h"
#include "common.inc"

    .section .rodata
msg:
    .ascii  "hlt guest\n"
msg_end:

    .section .text.entry, "ax"
    .globl  _start
    .type   _start, @function
_start:
    PRINT   msg, msg_end-msg
    cli
    .globl  hlt_insn
hlt_insn:
    hlt
    jmp     hlt_insn
