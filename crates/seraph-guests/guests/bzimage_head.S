/*
 * The tiny bzImage test kernel's setup header and entry points (with
 * linux_check.c, linked by bzimage.ld, turned into a flat bzImage by
 * `objcopy -O binary` in build.rs). File layout:
 *
 *   0x000-0x3FF  boot sector + one setup sector (setup_sects = 1): zeros
 *                but the setup header at 0x1F1 (protocol 2.15, LOADED_HIGH,
 *                code32_start 1 MiB, XLF_KERNEL_64, syssize and init_size
 *                computed by the linker script). There is no real-mode
 *                code: only 32- and 64-bit boot-protocol entries work.
 *   0x400-       the protected-mode kernel, loaded at 0x100000:
 *                +0x000 startup_32 (32-bit entry: reports and exits 32),
 *                +0x200 startup_64 (64-bit entry: RSI = boot_params,
 *                calls linux_main on its own stack).
 */
#define SETUP_SECTS 1

    .section .note.GNU-stack, "", @progbits

    .section .setup, "a"
    .code16
bz_boot_sector:
    .org    0x1F1
    .byte   SETUP_SECTS             /* 0x1F1 setup_sects */
    .word   0                       /* 0x1F2 root_flags */
    .long   __bz_syssize            /* 0x1F4 syssize (16-byte units) */
    .word   0                       /* 0x1F8 ram_size */
    .word   0xFFFF                  /* 0x1FA vid_mode: normal */
    .word   0                       /* 0x1FC root_dev */
    .word   0xAA55                  /* 0x1FE boot_flag */
    .byte   0xEB, 0xFE              /* 0x200 jump: no real-mode setup, spin */
    .ascii  "HdrS"                  /* 0x202 header */
    .word   0x020F                  /* 0x206 version 2.15 */
    .long   0                       /* 0x208 realmode_swtch */
    .word   0x1000                  /* 0x20C start_sys_seg */
    .word   0                       /* 0x20E kernel_version */
    .byte   0                       /* 0x210 type_of_loader (the loader writes it) */
    .byte   0x01                    /* 0x211 loadflags: LOADED_HIGH */
    .word   0x8000                  /* 0x212 setup_move_size */
    .long   0x100000                /* 0x214 code32_start */
    .long   0                       /* 0x218 ramdisk_image */
    .long   0                       /* 0x21C ramdisk_size */
    .long   0                       /* 0x220 bootsect_kludge */
    .word   0                       /* 0x224 heap_end_ptr */
    .byte   0                       /* 0x226 ext_loader_ver */
    .byte   0                       /* 0x227 ext_loader_type */
    .long   0                       /* 0x228 cmd_line_ptr */
    .long   0x7FFFFFFF              /* 0x22C initrd_addr_max */
    .long   0x200000                /* 0x230 kernel_alignment */
    .byte   0                       /* 0x234 relocatable_kernel */
    .byte   21                      /* 0x235 min_alignment (2 MiB) */
    .word   0x0001                  /* 0x236 xloadflags: XLF_KERNEL_64 */
    .long   2047                    /* 0x238 cmdline_size */
    .long   0                       /* 0x23C hardware_subarch */
    .quad   0                       /* 0x240 hardware_subarch_data */
    .long   0                       /* 0x248 payload_offset */
    .long   0                       /* 0x24C payload_length */
    .quad   0                       /* 0x250 setup_data */
    .quad   0x100000                /* 0x258 pref_address */
    .long   __bz_init_size          /* 0x260 init_size */
    .long   0                       /* 0x264 handover_offset */
    .long   0                       /* 0x268 kernel_info_offset */
    .org    (SETUP_SECTS + 1) * 512

    .section .text.head, "ax"
    .code32
    .globl  startup_32
startup_32:
    /* 32-bit entry (ESI = boot_params): not what Seraph-V uses for this
     * kernel; say so on COM1 and exit 32. */
    cli
    mov     $bz_msg32, %esi
1:
    movb    (%esi), %al
    test    %al, %al
    jz      2f
    mov     $0x3F8, %dx
    outb    %al, %dx
    inc     %esi
    jmp     1b
2:
    mov     $1, %eax
    mov     $32, %edi
    outl    %eax, $0xE4
    mov     $32, %eax
    outl    %eax, $0xF4
3:
    hlt
    jmp     3b

    .org    0x200
    .code64
    .globl  startup_64
startup_64:
    cli
    cld
    mov     %rsi, %rdi              /* linux_main(boot_params) */
    mov     $bz_stack_top, %esp
    xor     %ebp, %ebp
    call    linux_main
4:
    cli
    hlt
    jmp     4b

    .section .rodata
bz_msg32:
    .asciz  "linux-check: 32-bit entry\n"

    .section .bss
    .balign 16
bz_stack:
    .skip   0x4000
bz_stack_top:
