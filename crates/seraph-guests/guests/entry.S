/*
 * Entry stub of the C test kernel. The VMM enters here in long mode with
 * RDI = boot info physical address and RSP = 16-byte-aligned stack top.
 * kernel_main(boot_info, entry_rsp) gets the untouched entry RSP so it can
 * check it against the boot info's stack fields.
 */
    .section .note.GNU-stack, "", @progbits

    .section .text.entry, "ax"
    .globl  _start
    .type   _start, @function
_start:
    cld
    mov     %rsp, %rsi          /* second argument: RSP at entry */
    call    kernel_main         /* RDI (boot info) passes through */
1:
    cli
    hlt
    jmp     1b
    .size   _start, . - _start
