/*
 * The PC guest runtime's entry code (see pc.h and docs/test-kernels.md,
 * "The PC guest runtime"). One image boots two ways:
 *
 *  - Seraph boot protocol (seraph-v): `_start`, the ELF entry, in 64-bit
 *    long mode with RDI = boot info and the VMM's identity map of the first
 *    4 GiB.
 *  - PVH (QEMU `-kernel guest.elf`, seraph-v `--boot pvh`): `pc_pvh_start`,
 *    named by the XEN_ELFNOTE_PHYS32_ENTRY note, in 32-bit protected mode
 *    with paging off, flat segments, EBX = hvm_start_info. It zeroes .bss,
 *    builds its own identity map of the first 4 GiB with 2 MiB pages
 *    (the fourth GiB, the MMIO hole, uncached), enables PAE, EFER.LME and
 *    paging, loads its GDT (64-bit code 0x08, data 0x10) and jumps to
 *    64-bit code.
 *
 * Both switch to the runtime's own 32 KiB stack and call
 *     void pc_main(int protocol, unsigned long info);
 * with protocol PC_PROTOCOL_SERAPH (1) / PC_PROTOCOL_PVH (2) and info the
 * boot info / hvm_start_info physical address. If pc_main returns, the
 * guest exits with status 0 (pc_exit: Seraph EXIT hypercall, then
 * isa-debug-exit).
 *
 * Interrupts: 256 stubs (`pc_isr_table`) push a uniform frame (struct
 * pc_frame in pc.h) and call pc_handlers[vector](frame); pc_idt_install()
 * in pc.h fills the IDT (`pc_idt`) and the handler table.
 */
#define PC_PROTOCOL_SERAPH 1
#define PC_PROTOCOL_PVH 2
#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define PC_STACK_SIZE 0x8000

    .section .note.GNU-stack, "", @progbits

    /* The PVH entry note (QEMU and linux-loader look in PT_NOTE segments). */
    .section .note.Xen, "a", @note
    .balign 4
    .long   4                       /* namesz: "Xen\0" */
    .long   4                       /* descsz: a 32-bit physical address */
    .long   XEN_ELFNOTE_PHYS32_ENTRY
    .asciz  "Xen"
    .balign 4
    .long   pc_pvh_start

/* ---- Seraph boot protocol entry (64-bit) ------------------------------- */
    .section .text.entry, "ax"
    .code64
    .globl  _start
    .type   _start, @function
_start:
    cli
    cld
    mov     %rdi, %rsi              /* info = boot info */
    mov     $PC_PROTOCOL_SERAPH, %edi
    jmp     pc_enter_main
    .size   _start, . - _start

/* Common tail: ESI = info, EDI = protocol. */
pc_enter_main:
    mov     $pc_stack_top, %esp     /* zero-extends: the image is below 4 GiB */
    xor     %ebp, %ebp
    call    pc_main
    /* pc_main returned: exit 0 like pc_exit(0). */
    mov     $1, %eax
    xor     %edi, %edi
    outl    %eax, $0xE4
    xor     %eax, %eax
    outl    %eax, $0xF4
1:
    cli
    hlt
    jmp     1b

/* ---- PVH entry (32-bit protected mode, paging off) --------------------- */
    .code32
    .globl  pc_pvh_start
    .type   pc_pvh_start, @function
pc_pvh_start:
    cli
    cld
    mov     %ebx, %esi              /* keep the hvm_start_info address */

    /* Zero .bss (page tables and stack live there). */
    mov     $__pc_bss_start, %edi
    mov     $__pc_bss_end, %ecx
    sub     %edi, %ecx
    xor     %eax, %eax
    rep stosb

    /* PML4[0] -> PDPT; PDPT[0..3] -> the four PDs. */
    mov     $(pc_pdpt + 0x3), %eax
    mov     %eax, pc_pml4
    mov     $(pc_pd + 0x3), %eax
    xor     %ecx, %ecx
2:
    mov     %eax, pc_pdpt(,%ecx,8)
    add     $0x1000, %eax
    inc     %ecx
    cmp     $4, %ecx
    jb      2b

    /* 2048 PDEs of 2 MiB: P | RW | PS, plus PWT | PCD from 3 GiB up. */
    xor     %ecx, %ecx
    mov     $0x83, %eax
3:
    mov     %eax, %edx
    cmp     $1536, %ecx
    jb      4f
    or      $0x18, %edx
4:
    mov     %edx, pc_pd(,%ecx,8)
    add     $0x200000, %eax
    inc     %ecx
    cmp     $2048, %ecx
    jb      3b

    /* CR4.PAE, CR3, EFER.LME, CR0.PG. */
    mov     %cr4, %eax
    or      $0x20, %eax
    mov     %eax, %cr4
    mov     $pc_pml4, %eax
    mov     %eax, %cr3
    mov     $0xC0000080, %ecx
    rdmsr
    or      $0x100, %eax
    wrmsr
    mov     %cr0, %eax
    or      $0x80000001, %eax
    mov     %eax, %cr0

    lgdt    pc_gdt_desc
    ljmp    $0x08, $pc_pvh_long

    .code64
pc_pvh_long:
    mov     $0x10, %eax
    mov     %eax, %ds
    mov     %eax, %es
    mov     %eax, %ss
    mov     %eax, %fs
    mov     %eax, %gs
    mov     $PC_PROTOCOL_PVH, %edi  /* ESI = info (zero-extended by mov above) */
    mov     %esi, %esi
    jmp     pc_enter_main
    .size   pc_pvh_start, . - pc_pvh_start

/* ---- interrupt stubs --------------------------------------------------- */
/*
 * 256 stubs of 16 bytes each from pc_isr_stubs (vector n at
 * pc_isr_stubs + 16 * n). Each pushes a zero where the CPU pushes no error
 * code (all but 8, 10-14, 17, 21, 29, 30), then the vector, and jumps to
 * the common part, which saves the registers (struct pc_frame), calls
 * pc_handlers[vector](frame) and returns with iretq.
 */
    .balign 16
pc_isr_common:
    push    %rax
    push    %rbx
    push    %rcx
    push    %rdx
    push    %rsi
    push    %rdi
    push    %rbp
    push    %r8
    push    %r9
    push    %r10
    push    %r11
    push    %r12
    push    %r13
    push    %r14
    push    %r15
    cld
    mov     %rsp, %rdi              /* struct pc_frame * */
    mov     %rsp, %rbx
    and     $-16, %rsp
    mov     120(%rbx), %rax         /* frame->vector */
    movzbl  %al, %eax
    call    *pc_handlers(,%rax,8)
    mov     %rbx, %rsp
    pop     %r15
    pop     %r14
    pop     %r13
    pop     %r12
    pop     %r11
    pop     %r10
    pop     %r9
    pop     %r8
    pop     %rbp
    pop     %rdi
    pop     %rsi
    pop     %rdx
    pop     %rcx
    pop     %rbx
    pop     %rax
    add     $16, %rsp               /* vector and error code */
    iretq

    .balign 16
    .globl  pc_isr_stubs
pc_isr_stubs:
    .set    vec, 0
    .rept   256
    .org    pc_isr_stubs + 16 * vec, 0x90   /* fails if a stub outgrew 16 bytes */
    .if (vec == 8) || ((vec >= 10) && (vec <= 14)) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
    .else
    pushq   $0
    .endif
    pushq   $vec
    jmp     pc_isr_common
    .set    vec, vec + 1
    .endr
    .org    pc_isr_stubs + 16 * 256, 0x90

/* ---- data ---------------------------------------------------------------- */
    /* One initialised word, so the R W segment has file bytes (p_filesz > 0). */
    .section .data
    .balign 8
    .globl  pc_runtime_magic
pc_runtime_magic:
    .quad   0x454D49544E555250      /* "PRUNTIME" */

    .section .rodata
    .balign 8
pc_gdt:
    .quad   0                       /* null */
    .quad   0x00AF9A000000FFFF      /* 0x08: 64-bit code, DPL 0 */
    .quad   0x00CF92000000FFFF      /* 0x10: flat data */
pc_gdt_end:
    .balign 8
pc_gdt_desc:
    .word   pc_gdt_end - pc_gdt - 1
    .quad   pc_gdt

    .section .bss
    .balign 4096
    .globl  pc_pml4, pc_pdpt, pc_pd
pc_pml4:
    .skip   4096
pc_pdpt:
    .skip   4096
pc_pd:
    .skip   4 * 4096
    .globl  pc_idt
pc_idt:
    .skip   256 * 16
    .balign 8
    .globl  pc_handlers
pc_handlers:
    .skip   256 * 8
    .balign 16
pc_stack:
    .skip   PC_STACK_SIZE
pc_stack_top:
