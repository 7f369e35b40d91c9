/* IDLE_LOOP: PRINT "idle guest\n", then the classic idle loop with IF = 1. */
#include "seraph_abi.h"
#include "common.inc"

    .section .rodata
msg:
    .ascii  "idle guest\n"
msg_end:

    .section .text.entry, "ax"
    .globl  _start
    .type   _start, @function
_start:
    PRINT   msg, msg_end-msg
    sti
    .globl  idle_hlt
idle_hlt:
    hlt
    jmp     idle_hlt
