/*
 * SERIAL_FLOOD: write 100000 bytes 'x' to COM1, then EXIT 0.
 * Built with -DFOREVER=1 (SERIAL_FOREVER): writes 'x' forever.
 * Polls LSR.THRE once per 16 bytes (the 16550's FIFO depth: THRE set means
 * the whole transmit FIFO is empty), then writes 16 bytes with plain OUTs.
 */
#include "seraph_abi.h"
#include "common.inc"

#define FLOOD_BYTES 100000
#define FIFO_DEPTH 16

    GUEST_ENTRY
    SERIAL_INIT
    mov     $(FLOOD_BYTES / FIFO_DEPTH), %esi   /* 6250 bursts of 16 */
burst:
    SERIAL_WAIT_THRE
    mov     $COM1_THR, %dx
    mov     $'x', %al
    mov     $FIFO_DEPTH, %ecx
byte:
    outb    %al, %dx
    dec     %ecx
    jnz     byte
    dec     %esi
    jnz     burst
#ifdef FOREVER
    mov     $(FLOOD_BYTES / FIFO_DEPTH), %esi
    jmp     burst
#endif
    EXIT    0
    HALT_FOREVER

#if FLOOD_BYTES % FIFO_DEPTH != 0
#error "FLOOD_BYTES must be a multiple of FIFO_DEPTH"
#endif
