/*
 * BENCH_PVH: bench_hello's twin for QEMU (`-M microvm -kernel`), entered
 * through the PVH boot protocol: 32-bit protected mode, paging off, flat
 * segments, EBX = hvm_start_info (unused). It initialises COM1, writes the
 * same line "bench-hello: hello over COM1\n" polling LSR.THRE, then ends
 * the way pc_exit does, so the same file runs on both VMMs: the Seraph EXIT
 * hypercall with BENCH_EXIT_STATUS (5) (seraph-v --boot pvh exits 5; QEMU
 * ignores port 0xE4), then 5 to isa-debug-exit at port 0xF4 (QEMU exits
 * with (5 << 1) | 1 = 11). Linked as ELF64 (qemu-system-x86_64 takes both).
 */
#include "seraph_abi.h"
#include "common.inc"
#include "bench_common.inc"

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define ISA_DEBUG_EXIT_PORT 0xF4

    /* The PVH entry note QEMU looks for in PT_NOTE segments. */
    .section .note.Xen, "a", @note
    .balign 4
    .long   4                       /* namesz: "Xen\0" */
    .long   8                       /* descsz */
    .long   XEN_ELFNOTE_PHYS32_ENTRY
    .asciz  "Xen"
    .balign 4
    .quad   _start                  /* physical 32-bit entry */

    .section .rodata
hello_line:
    .ascii  "bench-hello: hello over COM1\n"
hello_line_end:

    .section .text.entry, "ax"
    .code32
    .globl  _start
    .type   _start, @function
_start:
    cli
    SERIAL_INIT
    mov     $hello_line, %esi
    mov     $(hello_line_end-hello_line), %edi
pvh_next:
    movb    (%esi), %bl
    SERIAL_PUTC_BL
    inc     %esi
    dec     %edi
    jnz     pvh_next
    mov     $SERAPH_HC_EXIT, %eax
    mov     $BENCH_EXIT_STATUS, %edi
    outl    %eax, $SERAPH_DOORBELL_PORT
    mov     $BENCH_EXIT_STATUS, %eax
    outl    %eax, $ISA_DEBUG_EXIT_PORT
pvh_halt:
    hlt
    jmp     pvh_halt
