/*
 * HOSTILE_STORM: an interrupt storm. The local APIC timer in periodic mode
 * with the smallest count (1) and divide-by-1 at vector 0x20; the handler
 * counts in %r15 and writes EOI. The guest spins with IF = 1 until
 * STORM_COUNT interrupts arrived, masks the timer and EXITs 0. Built with
 * STORM_FOREVER it never stops (for --timeout and stop requests).
 * The IDT is built at run time at physical 0x200000 (free RAM, identity
 * mapped); only vector 0x20 is present.
 */
#include "seraph_abi.h"
#include "common.inc"

#define STORM_COUNT 1000
#define LAPIC_BASE 0xFEE00000
#define IDT_BASE 0x200000
#define STORM_VECTOR 0x20

    GUEST_ENTRY
    cli
    /* IDT entry for STORM_VECTOR: offset, selector 0x08, interrupt gate. */
    lea     storm_handler(%rip), %rax
    mov     %rax, %rdx
    and     $0xFFFF, %edx                       /* offset 15:0 */
    or      $(0x08 << 16), %edx                 /* selector */
    mov     %rax, %rcx
    shr     $16, %rcx
    and     $0xFFFF, %ecx
    shl     $48, %rcx                           /* offset 31:16 */
    or      %rcx, %rdx
    movabs  $(0x8E00 << 32), %rcx               /* present, DPL 0, interrupt gate */
    or      %rcx, %rdx
    mov     $(IDT_BASE + STORM_VECTOR * 16), %edi
    mov     %rdx, (%rdi)
    shr     $32, %rax
    mov     %rax, 8(%rdi)                       /* offset 63:32, reserved 0 */
    sub     $16, %rsp
    movw    $(256 * 16 - 1), (%rsp)
    movq    $IDT_BASE, 2(%rsp)
    lidt    (%rsp)
    add     $16, %rsp

    xor     %r15d, %r15d
    mov     $LAPIC_BASE, %ebx
    movl    $0x1FF, 0xF0(%rbx)                  /* SVR: enabled */
    movl    $0xB, 0x3E0(%rbx)                   /* divide by 1 */
    movl    $(0x20000 | STORM_VECTOR), 0x320(%rbx) /* periodic, unmasked */
    movl    $1, 0x380(%rbx)                     /* initial count 1 */
    sti
    .globl  storm_spin
storm_spin:
#ifdef STORM_FOREVER
    jmp     storm_spin
#else
    cmp     $STORM_COUNT, %r15
    jb      storm_spin
    cli
    movl    $0x10000, 0x320(%rbx)               /* mask the timer */
    movl    $0, 0x380(%rbx)                     /* and stop it */
    EXIT    0
    HALT_FOREVER
#endif

storm_handler:
    push    %rax
    inc     %r15
    mov     $(LAPIC_BASE + 0xB0), %eax
    movl    $0, (%rax)                          /* EOI */
    pop     %rax
    iretq
