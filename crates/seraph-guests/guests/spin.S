/* SPIN: PRINT "spin guest\n", then spin forever (for --timeout). */
#include "seraph_abi.h"
#include "common.inc"

    GUEST_ENTRY
    PRINT_TEXT "spin guest\n"
    .globl  spin_insn
spin_insn:
    jmp     spin_insn
