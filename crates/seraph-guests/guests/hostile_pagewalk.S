/*
 * HOSTILE_PAGEWALK: page tables full of garbage. Builds a PML4 at physical
 * 0x201000 whose entry 0 is the boot PML4's (so code, stack and the first
 * 512 GiB stay mapped) and whose 511 other entries are garbage: present
 * entries pointing far beyond RAM, into the framebuffer and the MMIO hole,
 * with the reserved PS bit, and xorshift64 noise. Loads it into CR3 and
 * PRINTs through four garbage-mapped pointers: each must return -14
 * (EFAULT) with the VMM's page walk refusing, not crashing. Restores CR3,
 * PRINTs "hostile-pagewalk: ok\n" and EXITs 0, or EXITs with the number of
 * the failed check (1-4).
 */
#include "seraph_abi.h"
#include "common.inc"

#define GARBAGE_PML4 0x201000

.macro EXPECT_EFAULT addr, check
    movabs  $\addr, %rdi
    mov     $16, %esi
    HYPERCALL SERAPH_HC_PRINT
    mov     $\check, %r12d
    cmp     $-SERAPH_EFAULT, %rax
    jne     fail
.endm

    .section .rodata
msg:
    .ascii  "hostile-pagewalk: ok\n"
msg_end:

    GUEST_ENTRY
    cli
    mov     %cr3, %r14                      /* the boot PML4 */
    mov     $GARBAGE_PML4, %edi
    movabs  $0x2545F4914F6CDD1D, %r13
    mov     $1, %ecx
fill:
    XORSHIFT64_R13
    /* Present, address bits 51:40 all set: far beyond any RAM. */
    movabs  $0x000FFF0000000001, %rax
    or      %r13, %rax
    mov     %rax, (%rdi,%rcx,8)
    inc     %ecx
    cmp     $512, %ecx
    jb      fill
    /* A few deliberate shapes. */
    mov     $0xC0000003, %eax
    mov     %rax, 8*2(%rdi)                 /* a "table" in the framebuffer */
    mov     $0xFEE00003, %eax
    mov     %rax, 8*3(%rdi)                 /* a "table" on the LAPIC page */
    movq    $0x00000083, 8*4(%rdi)          /* PS set in a PML4E: reserved */
    mov     (%r14), %rax
    mov     %rax, (%rdi)                    /* entry 0: the boot identity map */
    mov     %rdi, %cr3

    EXPECT_EFAULT 0x0000010000000000, 1     /* PML4[2]: framebuffer table */
    EXPECT_EFAULT 0x0000018000000000, 2     /* PML4[3]: LAPIC table */
    EXPECT_EFAULT 0x0000020000000000, 3     /* PML4[4]: PS in a PML4E */
    EXPECT_EFAULT 0xFFFF800000000000, 4     /* PML4[256]: noise */

    mov     %r14, %cr3
    PRINT   msg, msg_end-msg
    EXIT    0
fail:
    mov     %r14, %cr3
    mov     %r12d, %edi
    HYPERCALL SERAPH_HC_EXIT
    HALT_FOREVER
