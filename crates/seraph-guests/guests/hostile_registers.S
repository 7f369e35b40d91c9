/*
 * HOSTILE_REGISTERS: pseudo-random values (xorshift64, fixed seed) written
 * to every port of Seraph-V's devices at widths 1, 2 and 4 (each followed
 * by a read), REG_ROUNDS times, then to every 32-bit slot of the local APIC
 * page (each followed by a read). Interrupts stay disabled, so whatever the
 * writes arm is never delivered. Then EXITs 0.
 */
#include "seraph_abi.h"
#include "common.inc"

#define REG_ROUNDS 4
#define LAPIC_BASE 0xFEE00000


    .section .rodata
    .balign 2
ports:
    .word   0x20, 0x21, 0xA0, 0xA1              /* PIC pair */
    .word   0x40, 0x41, 0x42, 0x43, 0x61        /* PIT, port 0x61 */
    .word   0x80                                /* POST */
    .word   0x3F8, 0x3F9, 0x3FA, 0x3FB, 0x3FC, 0x3FD, 0x3FE, 0x3FF /* COM1 */
ports_end:

    GUEST_ENTRY
    cli
    movabs  $0x2545F4914F6CDD1D, %r13
    mov     $REG_ROUNDS, %r14d
round:
    lea     ports(%rip), %rsi
port:
    movzwl  (%rsi), %edx
    XORSHIFT64_R13
    mov     %r13, %rax
    outb    %al, %dx
    inb     %dx, %al
    XORSHIFT64_R13
    mov     %r13, %rax
    outw    %ax, %dx
    inw     %dx, %ax
    XORSHIFT64_R13
    mov     %r13, %rax
    outl    %eax, %dx
    inl     %dx, %eax
    add     $2, %rsi
    lea     ports_end(%rip), %rax
    cmp     %rax, %rsi
    jb      port
    dec     %r14d
    jnz     round

    /* Every 32-bit slot of the LAPIC page, 0x000-0xFFC. */
    mov     $LAPIC_BASE, %ebx
    xor     %ecx, %ecx
lapic:
    XORSHIFT64_R13
    mov     %r13, %rax
    movl    %eax, (%rbx,%rcx)
    movl    (%rbx,%rcx), %eax
    add     $4, %ecx
    cmp     $0x1000, %ecx
    jb      lapic
    EXIT    0
    HALT_FOREVER
