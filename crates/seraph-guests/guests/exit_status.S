/* EXIT_STATUS: PRINT "exit-status guest\n", then EXIT with status 42. */
#include "seraph_abi.h"
#include "common.inc"

    .section .rodata
msg:
    .ascii  "exit-status guest\n"
msg_end:

    .section .text.entry, "ax"
    .globl  _start
    .type   _start, @function
_start:
    PRINT   msg, msg_end-msg
    EXIT    42
    HALT_FOREVER
