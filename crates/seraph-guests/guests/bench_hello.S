/*
 * BENCH_HELLO: the cold-start and peer guest (64-bit, Seraph boot protocol).
 * 1. PRINTs "bench-hello: started\n" (the first exit: the benchmark's
 *    "first instruction" mark, flushed to stdout at once);
 * 2. initialises COM1 and writes "bench-hello: hello over COM1\n",
 *    polling LSR.THRE before each byte;
 * 3. EXITs with status 5 (BENCH_EXIT_STATUS).
 * bench_pvh.S is its twin for QEMU's PVH boot.
 */
#include "seraph_abi.h"
#include "common.inc"
#include "bench_common.inc"

    .section .rodata
started:
    .ascii  "bench-hello: started\n"
started_end:
    .globl  hello_line
hello_line:
    .ascii  "bench-hello: hello over COM1\n"
hello_line_end:

    GUEST_ENTRY
    PRINT   started, started_end-started
    SERIAL_INIT
    lea     hello_line(%rip), %rsi
    mov     $(hello_line_end-hello_line), %edi
hello_next:
    movb    (%rsi), %bl
    SERIAL_PUTC_BL
    inc     %rsi
    dec     %edi
    jnz     hello_next
    EXIT    BENCH_EXIT_STATUS
    HALT_FOREVER
