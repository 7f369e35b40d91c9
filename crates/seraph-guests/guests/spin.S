/* SPIN: PRINT "spin guest\n", then spin forever (for --timeout). */
#include "seraph_abi.h"
#include "common.inc"

    .section .rodata
msg:
    .ascii  "spin guest\n"
msg_end:

    .section .text.entry, "ax"
    .globl  _start
    .type   _start, @function
_start:
    PRINT   msg, msg_end-msg
    .globl  spin_insn
spin_insn:
    jmp     spin_insn
