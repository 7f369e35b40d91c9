/*
 * HOSTILE_PRINT_TOP: PRINT from the last bytes of the address space.
 * Builds a PML4 at physical 0x201000 whose entry 0 is the boot PML4's (code
 * and stack stay mapped) and whose entry 511 maps, through fresh tables,
 * the last virtual page 0xFFFF_FFFF_FFFF_F000 onto physical 0x205000. The
 * last 16 bytes of that page hold HOSTILE_PRINT_TOP_TEXT. Then:
 *   1. PRINT(0xFFFF_FFFF_FFFF_FFF0, 16) must return 16 (the range ends at
 *      exactly 2^64, which is not a wrap);
 *   2. PRINT(0xFFFF_FFFF_FFFF_FFFF, 1) must return 1 (its last byte, '\n');
 *   3. PRINT(0xFFFF_FFFF_FFFF_FFF0, 17) must return -14 (it wraps to 0).
 * Restores CR3 and EXITs 0, or EXITs with the number of the failed check.
 */
#include "seraph_abi.h"
#include "common.inc"

#define TOP_PML4 0x201000
#define TOP_PDPT 0x202000
#define TOP_PD   0x203000
#define TOP_PT   0x204000
#define TOP_PAGE 0x205000

.macro EXPECT_PRINT addr, len, result, check
    movabs  $\addr, %rdi
    mov     $\len, %esi
    HYPERCALL SERAPH_HC_PRINT
    mov     $\check, %r12d
    cmp     $\result, %rax
    jne     fail
.endm

    .section .rodata
text:
    .ascii  "top16 PRINT ok!\n"     /* exactly 16 bytes */
text_end:

    GUEST_ENTRY
    cli
    mov     %cr3, %r14                      /* the boot PML4 */
    /* Zero the five pages. */
    mov     $TOP_PML4, %edi
    xor     %eax, %eax
    mov     $(5 * 4096 / 8), %ecx
    cld
    rep stosq
    /* The text at the end of the data page. */
    lea     text(%rip), %rsi
    mov     $(TOP_PAGE + 4096 - 16), %edi
    mov     $16, %ecx
    rep movsb
    /* The chain PML4[511] -> PDPT[511] -> PD[511] -> PT[511] -> page. */
    mov     $TOP_PML4, %edi
    mov     (%r14), %rax
    mov     %rax, (%rdi)                    /* entry 0: the boot identity map */
    movq    $(TOP_PDPT | 3), 8*511(%rdi)
    movq    $(TOP_PD | 3), TOP_PDPT - TOP_PML4 + 8*511(%rdi)
    movq    $(TOP_PT | 3), TOP_PD - TOP_PML4 + 8*511(%rdi)
    movq    $(TOP_PAGE | 3), TOP_PT - TOP_PML4 + 8*511(%rdi)
    mov     %rdi, %cr3

    EXPECT_PRINT 0xFFFFFFFFFFFFFFF0, 16, 16, 1
    EXPECT_PRINT 0xFFFFFFFFFFFFFFFF, 1, 1, 2
    EXPECT_PRINT 0xFFFFFFFFFFFFFFF0, 17, -SERAPH_EFAULT, 3

    mov     %r14, %cr3
    EXIT    0
fail:
    mov     %r14, %cr3
    mov     %r12d, %edi
    HYPERCALL SERAPH_HC_EXIT
    HALT_FOREVER
