/*
 * HOSTILE_HYPERCALL: unknown hypercall numbers, including ones whose low
 * 32 bits are PRINT (0) or EXIT (1): the number is the full RAX, so each
 * must return -38 (ENOSYS) and the VM must go on. Then PRINTs
 * "hostile-hypercall: ok\n" and EXITs 0; on a wrong result it EXITs with
 * the number of the failed check (1-6).
 */
#include "seraph_abi.h"
#include "common.inc"

.macro EXPECT_ENOSYS nr, check
    movabs  $\nr, %rax
    mov     $0x100000, %edi     /* a valid PRINT pointer, in case */
    mov     $4, %esi
    outl    %eax, $SERAPH_DOORBELL_PORT
    mov     $\check, %r12d
    cmp     $-SERAPH_ENOSYS, %rax
    jne     fail
.endm

    .section .rodata
msg:
    .ascii  "hostile-hypercall: ok\n"
msg_end:

    GUEST_ENTRY
    EXPECT_ENOSYS 3, 1
    EXPECT_ENOSYS 0xE4, 2
    EXPECT_ENOSYS 0x7FFFFFFF, 3
    EXPECT_ENOSYS 0x100000000, 4            /* low 32 bits: PRINT */
    EXPECT_ENOSYS 0x8000000000000001, 5     /* low 32 bits: EXIT */
    EXPECT_ENOSYS 0xFFFFFFFFFFFFFFFF, 6
    PRINT   msg, msg_end-msg
    EXIT    0
    FAIL_EXIT_R12
