/*
 * HOSTILE_PRINT: PRINT with pointers and lengths a broken kernel might pass.
 * Each call must return -14 (EFAULT) or -22 (EINVAL), print nothing and not
 * stop the VM. Assumes 512 MiB of RAM (the default). Then PRINTs
 * "hostile-print: ok\n" and EXITs 0; on the first wrong result it EXITs
 * with the number of the failed check (1-10).
 */
#include "seraph_abi.h"
#include "common.inc"

/* PRINT(\addr, \len) must return -\err; otherwise fail with check \check. */
.macro EXPECT_PRINT addr, len, err, check
    movabs  $\addr, %rdi
    movabs  $\len, %rsi
    HYPERCALL SERAPH_HC_PRINT
    mov     $\check, %r12d
    cmp     $-\err, %rax
    jne     fail
.endm

    .section .rodata
msg:
    .ascii  "hostile-print: ok\n"
msg_end:

    GUEST_ENTRY
    /* 1: identity-mapped, but beyond 512 MiB of RAM (no memory there). */
    EXPECT_PRINT 0x80000000, 16, SERAPH_EFAULT, 1
    /* 2: the range wraps around the top of the address space. */
    EXPECT_PRINT 0xFFFFFFFFFFFFFFF0, 0x100, SERAPH_EFAULT, 2
    /* 3: one byte over the 64 KiB PRINT limit. */
    EXPECT_PRINT 0x100000, 0x10001, SERAPH_EINVAL, 3
    /* 4: a length of 2^64 - 1. */
    EXPECT_PRINT 0x100000, 0xFFFFFFFFFFFFFFFF, SERAPH_EINVAL, 4
    /* 5: the local APIC page (MMIO hole). */
    EXPECT_PRINT 0xFEE00000, 16, SERAPH_EFAULT, 5
    /* 6: the I/O APIC page (MMIO hole, no device). */
    EXPECT_PRINT 0xFEC00000, 16, SERAPH_EFAULT, 6
    /* 7: a non-canonical address. */
    EXPECT_PRINT 0x0000800000000000, 16, SERAPH_EFAULT, 7
    /* 8: canonical, but not mapped by the boot page tables. */
    EXPECT_PRINT 0x0000123400000000, 16, SERAPH_EFAULT, 8
    /* 9: starts in RAM and runs past its end (512 MiB). */
    EXPECT_PRINT 0x1FFFFFF8, 16, SERAPH_EFAULT, 9
    /* 10: a good PRINT still works afterwards. */
    PRINT   msg, msg_end-msg
    mov     $10, %r12d
    cmp     $(msg_end-msg), %rax
    jne     fail
    EXIT    0
    FAIL_EXIT_R12
