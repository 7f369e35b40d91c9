/* IDLE_LOOP: PRINT "idle guest\n", then the classic idle loop with IF = 1. */
#include "seraph_abi.h"
#include "common.inc"

    GUEST_ENTRY
    PRINT_TEXT "idle guest\n"
    sti
    .globl  idle_hlt
idle_hlt:
    hlt
    jmp     idle_hlt
