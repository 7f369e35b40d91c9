/*
 * HOSTILE_UNBACKED: MMIO and port I/O where no device is. Reads must return
 * all-ones (as on a PC), writes must be dropped. 6 MMIO accesses (4 reads,
 * 2 writes) and 6 port accesses (4 reads, 2 writes) reach the VMM
 * unanswered. EXITs 0 if every read saw all-ones, else the number of the
 * failed check (1-8).
 */
#include "seraph_abi.h"
#include "common.inc"

    GUEST_ENTRY
    cli
    /* Beyond 512 MiB of RAM, below the framebuffer: no memory, no device. */
    mov     $0x80000000, %eax
    mov     $1, %r12d
    movl    (%rax), %ebx                /* MMIO read 1 */
    cmp     $0xFFFFFFFF, %ebx
    jne     fail
    movl    $0x12345678, (%rax)         /* MMIO write 1: dropped */
    mov     $2, %r12d
    movl    (%rax), %ebx                /* MMIO read 2 */
    cmp     $0xFFFFFFFF, %ebx
    jne     fail
    /* The I/O APIC's page: nothing emulates it. */
    mov     $0xFEC00000, %eax
    mov     $3, %r12d
    movl    (%rax), %ebx                /* MMIO read 3 */
    cmp     $0xFFFFFFFF, %ebx
    jne     fail
    mov     $4, %r12d
    movq    8(%rax), %rbx               /* MMIO read 4 (8 bytes) */
    cmp     $-1, %rbx
    jne     fail
    movb    $0x5A, 16(%rax)             /* MMIO write 2: dropped */

    /* An unknown port, at three widths, and COM2 (absent). */
    mov     $0x1234, %dx
    mov     $5, %r12d
    xor     %eax, %eax
    inb     %dx, %al                    /* port read 1 */
    cmp     $0xFF, %eax
    jne     fail
    mov     $6, %r12d
    xor     %eax, %eax
    inw     %dx, %ax                    /* port read 2 */
    cmp     $0xFFFF, %eax
    jne     fail
    mov     $7, %r12d
    inl     %dx, %eax                   /* port read 3 */
    cmp     $0xFFFFFFFF, %eax
    jne     fail
    outb    %al, %dx                    /* port write 1: dropped */
    outl    %eax, %dx                   /* port write 2: dropped */
    mov     $0x2F8, %dx
    mov     $8, %r12d
    xor     %eax, %eax
    inb     %dx, %al                    /* port read 4 */
    cmp     $0xFF, %eax
    jne     fail
    EXIT    0
    FAIL_EXIT_R12
