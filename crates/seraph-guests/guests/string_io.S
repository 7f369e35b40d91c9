/* STRING_IO: COM1 through string I/O. `rep outsb` writes a whole line to
 * THR in one instruction (the VMM sees one exit carrying many bytes for
 * one port), then `rep insb` reads LSR four times onto the stack. EXITs
 * with the number of those four LSR bytes that have THRE set (4 on a
 * correct VMM). */
#include "seraph_abi.h"
#include "common.inc"

    .section .rodata
line:
    .ascii  "string io: a line through rep outsb\n"
line_end:

    GUEST_ENTRY
    SERIAL_INIT
    cld
    lea     line(%rip), %rsi
    mov     $(line_end - line), %ecx
    mov     $COM1_THR, %dx
    rep outsb
    sub     $16, %rsp
    mov     %rsp, %rdi
    mov     $4, %ecx
    mov     $COM1_LSR, %dx
    rep insb
    xor     %edi, %edi
    mov     $4, %ecx
    mov     %rsp, %rsi
count:
    movzbl  (%rsi), %eax
    shr     $5, %eax            /* THRE is bit 5 */
    and     $1, %eax
    add     %eax, %edi
    inc     %rsi
    dec     %ecx
    jnz     count
    HYPERCALL SERAPH_HC_EXIT
    HALT_FOREVER
