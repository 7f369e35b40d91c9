/*
 * The PC guest runtime: helpers for C guests that boot both under seraph-v
 * (Seraph boot protocol) and under QEMU as a PVH kernel. Link with
 * pc_entry.S and pc.ld; write `void pc_main(int protocol, unsigned long
 * info)`. See docs/test-kernels.md, "The PC guest runtime".
 *
 * Everything here is `static inline` (unused helpers cost nothing and
 * -Wunused-function stays quiet). Integer-only: build with
 * -mgeneral-regs-only. Do not include kernel_lib.h in the same file (both
 * define inb/outb).
 */
#ifndef SERAPH_PC_H
#define SERAPH_PC_H

#include "seraph_abi.h"

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef long long i64;
typedef unsigned long usize;

/* pc_main's first argument. */
#define PC_PROTOCOL_SERAPH 1 /* info = Seraph_BootInfo physical address */
#define PC_PROTOCOL_PVH 2    /* info = hvm_start_info physical address */

#define PC_SERAPH_BOOT_MAGIC 0x5345524150484254ULL
#define PC_PVH_START_MAGIC 0x336ec578U
#define PC_ISA_DEBUG_EXIT_PORT 0xF4

void pc_main(int protocol, unsigned long info);

/* ---- port I/O ------------------------------------------------------------ */

static inline void outb(u16 port, u8 value) { __asm__ volatile("outb %0, %1" : : "a"(value), "Nd"(port)); }
static inline void outw(u16 port, u16 value) { __asm__ volatile("outw %0, %1" : : "a"(value), "Nd"(port)); }
static inline void outl(u16 port, u32 value) { __asm__ volatile("outl %0, %1" : : "a"(value), "Nd"(port)); }

static inline u8 inb(u16 port)
{
    u8 value;
    __asm__ volatile("inb %1, %0" : "=a"(value) : "Nd"(port));
    return value;
}

static inline u16 inw(u16 port)
{
    u16 value;
    __asm__ volatile("inw %1, %0" : "=a"(value) : "Nd"(port));
    return value;
}

static inline u32 inl(u16 port)
{
    u32 value;
    __asm__ volatile("inl %1, %0" : "=a"(value) : "Nd"(port));
    return value;
}

/* A short delay: a write to the POST port 0x80 (what the PIC code uses). */
static inline void io_wait(void) { outb(0x80, 0); }

/* ---- MMIO (volatile, one access of the given width) ---------------------- */

static inline u8 mmio_read8(u64 addr) { return *(volatile u8 *)addr; }
static inline u16 mmio_read16(u64 addr) { return *(volatile u16 *)addr; }
static inline u32 mmio_read32(u64 addr) { return *(volatile u32 *)addr; }
static inline u64 mmio_read64(u64 addr) { return *(volatile u64 *)addr; }
static inline void mmio_write8(u64 addr, u8 value) { *(volatile u8 *)addr = value; }
static inline void mmio_write16(u64 addr, u16 value) { *(volatile u16 *)addr = value; }
static inline void mmio_write32(u64 addr, u32 value) { *(volatile u32 *)addr = value; }
static inline void mmio_write64(u64 addr, u64 value) { *(volatile u64 *)addr = value; }

/* Compiler barrier (x86 keeps stores to WB memory in order for devices). */
static inline void barrier(void) { __asm__ volatile("" : : : "memory"); }

/* ---- memory -------------------------------------------------------------- */

static inline void *memset(void *dst, int value, usize len)
{
    void *d = dst;
    __asm__ volatile("rep stosb" : "+D"(d), "+c"(len) : "a"(value) : "memory");
    return dst;
}

static inline void *memcpy(void *dst, const void *src, usize len)
{
    void *d = dst;
    __asm__ volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(len) : : "memory");
    return dst;
}

static inline int memcmp(const void *a, const void *b, usize len)
{
    const u8 *x = a, *y = b;
    for (usize i = 0; i < len; i++) {
        if (x[i] != y[i])
            return x[i] < y[i] ? -1 : 1;
    }
    return 0;
}

/* ---- COM1 serial ----------------------------------------------------------- */

static inline void serial_init(void)
{
    outb(COM1_IER, 0x00);
    outb(COM1_LCR, 0x80); /* DLAB */
    outb(COM1_DLL, 0x01); /* 115200 baud */
    outb(COM1_DLM, 0x00);
    outb(COM1_LCR, 0x03); /* 8N1 */
    outb(COM1_FCR, 0xC7);
    outb(COM1_MCR, 0x0B);
}

/* Polls LSR.THRE, giving up after COM1_POLL_LIMIT reads (never hangs). */
static inline void serial_putc(char c)
{
    for (u32 i = 0; i < COM1_POLL_LIMIT; i++) {
        if (inb(COM1_LSR) & COM1_LSR_THRE)
            break;
    }
    outb(COM1_THR, (u8)c);
}

static inline void serial_puts(const char *s)
{
    while (*s)
        serial_putc(*s++);
}

/* "0x" and 16 hex digits. */
static inline void serial_put_hex(u64 value)
{
    serial_puts("0x");
    for (int shift = 60; shift >= 0; shift -= 4)
        serial_putc("0123456789abcdef"[(value >> shift) & 0xF]);
}

static inline void serial_put_dec(u64 value)
{
    char digits[20];
    int n = 0;
    do {
        digits[n++] = (char)('0' + value % 10);
        value /= 10;
    } while (value != 0 && n < 20);
    while (n > 0)
        serial_putc(digits[--n]);
}

/* ---- ending a run ---------------------------------------------------------- */

/*
 * Seraph-V: EXIT hypercall (RAX = 1, RDI = status, out 0xE4) stops the VM
 * with that status. QEMU: nothing listens on 0xE4; then isa-debug-exit
 * (-device isa-debug-exit,iobase=0xf4,iosize=4) ends QEMU with exit code
 * (status << 1) | 1. Anything else: cli; hlt forever.
 */
static inline __attribute__((noreturn)) void pc_exit(u32 status)
{
    u64 nr = SERAPH_HC_EXIT;
    __asm__ volatile("outl %%eax, %[port]"
                     : "+a"(nr)
                     : "D"((u64)status), [port] "i"(SERAPH_DOORBELL_PORT)
                     : "memory");
    outl(PC_ISA_DEBUG_EXIT_PORT, status);
    for (;;)
        __asm__ volatile("cli; hlt");
}

/* ---- PCI configuration mechanism #1 (ports 0xCF8 / 0xCFC) ---------------- */

#define PCI_CONFIG_ADDRESS 0xCF8
#define PCI_CONFIG_DATA 0xCFC

static inline u32 pci_address(u8 bus, u8 slot, u8 func, u8 offset)
{
    return 0x80000000U | ((u32)bus << 16) | ((u32)(slot & 0x1F) << 11) | ((u32)(func & 7) << 8) |
           (offset & 0xFC);
}

static inline u32 pci_read32(u8 bus, u8 slot, u8 func, u8 offset)
{
    outl(PCI_CONFIG_ADDRESS, pci_address(bus, slot, func, offset));
    return inl(PCI_CONFIG_DATA);
}

static inline u16 pci_read16(u8 bus, u8 slot, u8 func, u8 offset)
{
    outl(PCI_CONFIG_ADDRESS, pci_address(bus, slot, func, offset));
    return inw((u16)(PCI_CONFIG_DATA + (offset & 2)));
}

static inline u8 pci_read8(u8 bus, u8 slot, u8 func, u8 offset)
{
    outl(PCI_CONFIG_ADDRESS, pci_address(bus, slot, func, offset));
    return inb((u16)(PCI_CONFIG_DATA + (offset & 3)));
}

static inline void pci_write32(u8 bus, u8 slot, u8 func, u8 offset, u32 value)
{
    outl(PCI_CONFIG_ADDRESS, pci_address(bus, slot, func, offset));
    outl(PCI_CONFIG_DATA, value);
}

static inline void pci_write16(u8 bus, u8 slot, u8 func, u8 offset, u16 value)
{
    outl(PCI_CONFIG_ADDRESS, pci_address(bus, slot, func, offset));
    outw((u16)(PCI_CONFIG_DATA + (offset & 2)), value);
}

static inline void pci_write8(u8 bus, u8 slot, u8 func, u8 offset, u8 value)
{
    outl(PCI_CONFIG_ADDRESS, pci_address(bus, slot, func, offset));
    outb((u16)(PCI_CONFIG_DATA + (offset & 3)), value);
}

/*
 * Scans bus 0, functions 0-7 of each slot (functions 1-7 only on
 * multi-function devices). Returns (slot << 3) | func of the first match,
 * or -1 if none.
 */
static inline int pci_find(u16 vendor, u16 device)
{
    for (u8 slot = 0; slot < 32; slot++) {
        for (u8 func = 0; func < 8; func++) {
            u32 id = pci_read32(0, slot, func, 0x00);
            if ((id & 0xFFFF) == 0xFFFF) {
                if (func == 0)
                    break;
                continue;
            }
            if ((id & 0xFFFF) == vendor && (id >> 16) == device)
                return (slot << 3) | func;
            if (func == 0 && !(pci_read8(0, slot, 0, 0x0E) & 0x80))
                break; /* single-function device */
        }
    }
    return -1;
}

/* ---- interrupts: IDT and handlers ----------------------------------------- */

/* What pc_entry.S's stubs push; the handler may change it (iretq uses it). */
struct pc_frame {
    u64 r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
    u64 vector, error;
    u64 rip, cs, rflags, rsp, ss;
};
_Static_assert(__builtin_offsetof(struct pc_frame, vector) == 120, "pc_entry.S reads the vector at 120");

typedef void (*pc_handler)(struct pc_frame *frame);

extern u8 pc_isr_stubs[];       /* 256 stubs of 16 bytes */
extern u8 pc_idt[];             /* 256 gates of 16 bytes */
extern pc_handler pc_handlers[256];

/* Default handler: reports the vector, error code and RIP, then pc_exit(0x80 + vector). */
static inline void pc_unhandled_interrupt(struct pc_frame *frame)
{
    serial_puts("pc: unhandled interrupt vector ");
    serial_put_dec(frame->vector);
    serial_puts(" error ");
    serial_put_hex(frame->error);
    serial_puts(" rip ");
    serial_put_hex(frame->rip);
    serial_puts("\n");
    pc_exit(0x80 + (u32)(frame->vector & 0x7F));
}

static inline void pc_set_handler(u8 vector, pc_handler handler) { pc_handlers[vector] = handler; }

/* Fills all 256 gates (interrupt gates, DPL 0, current CS) and loads the IDT.
 * Every vector gets pc_unhandled_interrupt until pc_set_handler replaces it. */
static inline void pc_idt_install(void)
{
    u16 cs;
    __asm__ volatile("mov %%cs, %0" : "=r"(cs));
    for (u32 v = 0; v < 256; v++) {
        u64 target = (u64)pc_isr_stubs + 16 * v;
        u8 *gate = pc_idt + 16 * v;
        u64 low = (target & 0xFFFF) | ((u64)cs << 16) | (0x8EULL << 40) | ((target & 0xFFFF0000ULL) << 32);
        *(volatile u64 *)gate = low;
        *(volatile u64 *)(gate + 8) = target >> 32;
        pc_handlers[v] = pc_unhandled_interrupt;
    }
    struct __attribute__((packed)) {
        u16 limit;
        u64 base;
    } idtr = {256 * 16 - 1, (u64)pc_idt};
    __asm__ volatile("lidt %0" : : "m"(idtr) : "memory");
}

static inline void pc_sti(void) { __asm__ volatile("sti" : : : "memory"); }
static inline void pc_cli(void) { __asm__ volatile("cli" : : : "memory"); }

/* ---- 8259 PIC pair --------------------------------------------------------- */

#define PIC1_CMD 0x20
#define PIC1_DATA 0x21
#define PIC2_CMD 0xA0
#define PIC2_DATA 0xA1

/* ICW1-ICW4 on both chips: IRQ 0-7 at master_base, 8-15 at slave_base,
 * slave on IRQ2, 8086 mode; then every line masked. */
static inline void pic_remap(u8 master_base, u8 slave_base)
{
    outb(PIC1_CMD, 0x11);
    io_wait();
    outb(PIC2_CMD, 0x11);
    io_wait();
    outb(PIC1_DATA, master_base);
    io_wait();
    outb(PIC2_DATA, slave_base);
    io_wait();
    outb(PIC1_DATA, 0x04);
    io_wait();
    outb(PIC2_DATA, 0x02);
    io_wait();
    outb(PIC1_DATA, 0x01);
    io_wait();
    outb(PIC2_DATA, 0x01);
    io_wait();
    outb(PIC1_DATA, 0xFF);
    outb(PIC2_DATA, 0xFF);
}

/* Unmasks an IRQ line (0-15); a slave line also unmasks the cascade (IRQ2). */
static inline void pic_unmask(u8 irq)
{
    if (irq < 8) {
        outb(PIC1_DATA, (u8)(inb(PIC1_DATA) & ~(1u << irq)));
    } else {
        outb(PIC2_DATA, (u8)(inb(PIC2_DATA) & ~(1u << (irq - 8))));
        outb(PIC1_DATA, (u8)(inb(PIC1_DATA) & ~(1u << 2)));
    }
}

static inline void pic_mask(u8 irq)
{
    if (irq < 8)
        outb(PIC1_DATA, (u8)(inb(PIC1_DATA) | (1u << irq)));
    else
        outb(PIC2_DATA, (u8)(inb(PIC2_DATA) | (1u << (irq - 8))));
}

/* Non-specific EOI for an IRQ (to the slave too for IRQ 8-15). */
static inline void pic_eoi(u8 irq)
{
    if (irq >= 8)
        outb(PIC2_CMD, 0x20);
    outb(PIC1_CMD, 0x20);
}

/*
 * Lets the 8259 reach the CPU through the local APIC: LVT LINT0 in ExtINT
 * mode, unmasked (seraph-v resets LINT0 masked; firmware under QEMU usually
 * did this already). Call before pic_unmask + sti.
 */
#define PC_LAPIC_BASE 0xFEE00000ULL
static inline void pc_lapic_lint0_extint(void) { mmio_write32(PC_LAPIC_BASE + 0x350, 0x700); }

#endif
