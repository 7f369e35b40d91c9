/*
 * HOSTILE_PRINT_FLOOD: PRINTs 64 KiB (the most one PRINT takes) from the
 * kernel's own memory, forever, as fast as it can. Stopped by --timeout;
 * the VMM keeps only a bounded tail of PRINT output.
 */
#include "seraph_abi.h"
#include "common.inc"

    GUEST_ENTRY
    .globl  flood
flood:
    mov     $0x100000, %edi
    mov     $0x10000, %esi
    HYPERCALL SERAPH_HC_PRINT
    jmp     flood
