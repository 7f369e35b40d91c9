/*
 * BENCH_MMIO: bench_blocks x 16 32-bit reads of the local APIC version
 * register (0xFEE0_0030, trapped MMIO), unrolled like bench_pio, then
 * EXIT 0. The address is reached through the VMM's identity map.
 */
#include "seraph_abi.h"
#include "common.inc"
#include "bench_common.inc"

#define LAPIC_VERSION 0xFEE00030

    BENCH_COUNT 1000

    GUEST_ENTRY
    mov     bench_blocks(%rip), %rsi
    mov     $LAPIC_VERSION, %ebx    /* zero-extends into RBX */
    test    %rsi, %rsi
    jz      mmio_done
mmio_block:
    .rept   BENCH_BLOCK
    movl    (%rbx), %eax
    .endr
    dec     %rsi
    jnz     mmio_block
mmio_done:
    EXIT    0
    HALT_FOREVER
