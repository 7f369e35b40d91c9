/*
 * BENCH_PIO: bench_blocks x 16 `outb` to COM1's THR (port 0x3F8), unrolled
 * so the loop's own dec/jnz is 2 instructions per 16 exits, then EXIT 0.
 * No LSR polling: every instruction in the loop body is one port-I/O exit.
 */
#include "seraph_abi.h"
#include "common.inc"
#include "bench_common.inc"

    BENCH_COUNT 1000

    GUEST_ENTRY
    mov     bench_blocks(%rip), %rsi
    mov     $COM1_THR, %dx
    mov     $'.', %al
    test    %rsi, %rsi
    jz      pio_done
pio_block:
    .rept   BENCH_BLOCK
    outb    %al, %dx
    .endr
    dec     %rsi
    jnz     pio_block
pio_done:
    EXIT    0
    HALT_FOREVER
