/*
 * ALLOCATOR_KERNEL: behaves like Seraph OS's physical memory manager at
 * boot (issue #12), then checks that the machine still works.
 *
 * 1. Frees every page the memory map types 1 (loader code), 2 (loader
 *    data), 3 (boot services) or 7 (conventional); reserves exactly what
 *    Seraph OS reserves: the first 1 MiB, the stack (stack_phys/stack_size),
 *    the primordial arena and its own image only when kernel_phys_base != 0.
 *    It keeps the boot PML4 (CR3) as its own.
 * 2. "Allocates" every free page and scribbles over all of it (rep stosq);
 *    built with -DALLOCATOR_SPARSE, over six qwords of each page where page
 *    tables, a GDT/TSS and the boot info keep what matters (this machine's
 *    nested KVM emulates each stored qword, 0.7 us: big RAM sizes use this).
 * 3. Reloads CR3 (flushing the TLB) and checks: the boot info and memory
 *    map unchanged, paging through the identity map and the physical map
 *    at 0xFFFF_8000_0000_0000 (kernel data, last RAM page), its stack (a
 *    deep recursion; RSP inside the boot info's stack), the GDT unchanged
 *    and usable (CS reloaded by lretq, data segments reloaded), and the TSS
 *    with its IST1 stack (a #UD through an IST1 gate).
 *
 * COM1 lines: "allocator: hello", "allocator: scribbled N pages",
 * "allocator: ok"; EXIT 0. A failed check: "allocator: FAILED <what> seen
 * 0x..." and EXIT with its number (2-12). Broken page tables end the run
 * in a triple fault instead.
 *
 * Built identity-linked and higher-half (-DSERAPH_HIGHER_HALF), full and
 * sparse, with entry.S; integer-only.
 */
#include "kernel_lib.h"

#define PHYS_MAP_BASE 0xFFFF800000000000ULL
#ifdef SERAPH_HIGHER_HALF
#define VIRT_TO_PHYS(v) ((u64)(v) - PHYS_MAP_BASE)
#else
#define VIRT_TO_PHYS(v) ((u64)(v))
#endif
#define MIB 0x100000ULL
#define PAGE 4096ULL
#define BOOT_INFO_MAGIC 0x5345524150484254ULL

void kernel_main(u64 boot_info, u64 entry_rsp);

static volatile u64 data_word = 0x5345524150484144ULL;
static u8 boot_info_copy[280];
static u8 gdt_copy[40];
static u64 map_sum;

static u64 rd64(u64 addr) { return *(volatile u64 *)addr; }
static u32 rd32(u64 addr) { return *(volatile u32 *)addr; }

static __attribute__((noreturn)) void fail(u32 step, const char *what, u64 seen)
{
    serial_puts("allocator: FAILED ");
    serial_puts(what);
    serial_puts(" seen ");
    serial_put_hex(seen);
    serial_puts("\n");
    hypercall(SERAPH_HC_EXIT, step, 0, 0, 0);
    for (;;)
        __asm__ volatile("cli; hlt");
}

struct reserved {
    u64 start, end;
};
static struct reserved reserved[4];
static u32 reserved_count;

static void reserve(u64 start, u64 size)
{
    reserved[reserved_count].start = start;
    reserved[reserved_count].end = start + size;
    reserved_count++;
}

/* The first reserved range that overlaps [start, end), or 0. */
static const struct reserved *first_overlap(u64 start, u64 end)
{
    const struct reserved *best = 0;
    for (u32 i = 0; i < reserved_count; i++) {
        const struct reserved *r = &reserved[i];
        if (r->end > start && r->start < end && (!best || r->start < best->start))
            best = r;
    }
    return best;
}

static u64 checksum(u64 addr, u64 len)
{
    u64 sum = 0;
    for (u64 i = 0; i < len; i++)
        sum = sum * 31 + *(volatile u8 *)(addr + i);
    return sum;
}

#ifdef ALLOCATOR_SPARSE
/* Sparse: per page, the qwords at 0 (PML4[0], a GDT's null slot, a boot
 * info's magic), 0x80 and 0xA0 (a TSS's start and IST1), 0x800
 * (PML4[256]), 0xFF0 (PML4[510]) and 0xFF8. */
static void scribble(u64 start, u64 end)
{
    for (u64 page = start; page < end; page += PAGE) {
        u64 pattern = 0xDEAD0000BEEF0000ULL ^ page;
        *(volatile u64 *)(page) = pattern;
        *(volatile u64 *)(page + 0x80) = pattern;
        *(volatile u64 *)(page + 0xA0) = pattern;
        *(volatile u64 *)(page + 0x800) = pattern;
        *(volatile u64 *)(page + 0xFF0) = pattern;
        *(volatile u64 *)(page + 0xFF8) = pattern;
    }
}
#else
/* Every byte of [start, end). */
static void scribble(u64 start, u64 end)
{
    u64 *p = (u64 *)start;
    u64 count = (end - start) / 8;
    u64 pattern = 0xDEAD0000BEEF0000ULL;
    __asm__ volatile("rep stosq" : "+D"(p), "+c"(count) : "a"(pattern) : "memory");
}
#endif

static u64 recurse(u64 depth)
{
    volatile u64 pad[4] = {depth, depth + 1, depth + 2, depth + 3};
    if (depth == 0)
        return pad[0];
    return pad[1] + recurse(depth - 1);
}

struct gdtr {
    u16 limit;
    u64 base;
} __attribute__((packed));

struct idt_entry {
    u16 offset_low, selector;
    u8 ist, type_attr;
    u16 offset_mid;
    u32 offset_high, zero;
} __attribute__((packed));

struct interrupt_frame {
    u64 ip, cs, flags, sp, ss;
};

static struct idt_entry idt[256];
static volatile u64 ud_rsp;
static volatile u32 ud_count;

__attribute__((interrupt)) static void ud_handler(struct interrupt_frame *f)
{
    volatile u64 here = 0;
    ud_rsp = (u64)&here;
    ud_count++;
    f->ip += 2; /* over ud2 */
}

static void set_gate(u8 vector, void *handler, u8 ist)
{
    u64 at = (u64)handler;
    idt[vector].offset_low = (u16)at;
    idt[vector].selector = 0x08;
    idt[vector].ist = ist;
    idt[vector].type_attr = 0x8E;
    idt[vector].offset_mid = (u16)(at >> 16);
    idt[vector].offset_high = (u32)(at >> 32);
    idt[vector].zero = 0;
}

void kernel_main(u64 bi, u64 entry_rsp)
{
    serial_init();
    serial_puts("allocator: hello\n");
    if (bi == 0 || bi >= 0x100000000ULL || rd64(bi) != BOOT_INFO_MAGIC)
        fail(2, "boot info magic", bi);

    u64 map = rd64(bi + 48), desc_size = rd64(bi + 64);
    u32 count = rd32(bi + 76);
    u64 kernel_phys_base = rd64(bi + 80), kernel_size = rd64(bi + 96);
    u64 stack_phys = rd64(bi + 120), stack_size = rd64(bi + 128);
    u64 arena = rd64(bi + 136), arena_size = rd64(bi + 144);
    u64 pml4 = rd64(bi + 152);
    if (desc_size != 40 || count == 0 || count > 100 || map >= 0x100000000ULL)
        fail(2, "memory map", count);
    u64 cr3 = read_cr3() & 0x000FFFFFFFFFF000ULL;
    if (cr3 != pml4)
        fail(3, "pml4_phys == CR3 (the kernel keeps the boot PML4)", cr3);

    /* Seraph OS's reservations. */
    reserve(0, MIB);
    reserve(stack_phys, stack_size);
    reserve(arena, arena_size);
    if (kernel_phys_base != 0)
        reserve(kernel_phys_base, kernel_size);

    for (u32 i = 0; i < 280; i++)
        boot_info_copy[i] = *(volatile u8 *)(bi + i);
    map_sum = checksum(map, count * desc_size);
    struct gdtr gdtr;
    __asm__ volatile("sgdt %0" : "=m"(gdtr));
    for (u32 i = 0; i < 40; i++)
        gdt_copy[i] = *(volatile u8 *)(gdtr.base + i);

    /* Free types 1, 2, 3, 7; allocate and scribble over every free page. */
    u64 pages = 0;
    for (u32 i = 0; i < count; i++) {
        u64 d = map + i * desc_size;
        u32 type = rd32(d);
        if (type != 1 && type != 2 && type != 3 && type != 7)
            continue;
        u64 start = rd64(d + 8), end = start + rd64(d + 24) * PAGE;
        /* Free [start, end) minus the reserved ranges. */
        while (start < end) {
            const struct reserved *r = first_overlap(start, end);
            u64 stop = r ? (r->start > start ? r->start : start) : end;
            if (stop > start) {
                scribble(start, stop);
                pages += (stop - start) / PAGE;
            }
            if (!r)
                break;
            start = (r->end + PAGE - 1) & ~(PAGE - 1);
        }
    }
    __asm__ volatile("mov %%cr3, %%rax; mov %%rax, %%cr3" : : : "rax", "memory");
    serial_puts("allocator: scribbled ");
    serial_put_dec(pages);
    serial_puts(" pages\n");

    /* Boot info and map untouched. */
    for (u32 i = 0; i < 280; i++) {
        if (*(volatile u8 *)(bi + i) != boot_info_copy[i])
            fail(4, "boot info unchanged", i);
    }
    if (checksum(map, count * desc_size) != map_sum)
        fail(5, "memory map unchanged", map_sum);

    /* Paging: kernel data through its link address and the physical map;
     * the last RAM page through the identity and physical maps. */
    if (data_word != 0x5345524150484144ULL)
        fail(6, "kernel data through its link address", data_word);
    if (rd64(PHYS_MAP_BASE + VIRT_TO_PHYS(&data_word)) != 0x5345524150484144ULL)
        fail(6, "kernel data through the physical map", VIRT_TO_PHYS(&data_word));
    u64 ram_top = 0;
    for (u32 i = 0; i < count; i++) {
        u64 d = map + i * desc_size;
        u32 type = rd32(d);
        u64 end = rd64(d + 8) + rd64(d + 24) * PAGE;
        if (type != 11 && type != 12 && end > ram_top)
            ram_top = end;
    }
    *(volatile u64 *)(ram_top - 8) = 0x1122334455667788ULL;
    if (rd64(PHYS_MAP_BASE + ram_top - 8) != 0x1122334455667788ULL)
        fail(7, "last RAM page through the physical map", ram_top);

    /* Stack. */
    u64 deep = recurse(300);
    if (deep != 45450) /* sum of d + 1 for d = 1..300 */
        fail(8, "deep recursion", deep);
    u64 rsp;
    __asm__ volatile("mov %%rsp, %0" : "=r"(rsp));
    u64 rsp_phys = rsp >= PHYS_MAP_BASE ? rsp - PHYS_MAP_BASE : rsp;
    if (rsp_phys < stack_phys || rsp_phys > stack_phys + stack_size)
        fail(8, "RSP inside the boot stack", rsp);
    (void)entry_rsp;

    /* GDT: unchanged, and usable (reload CS with lretq, then the data segments). */
    for (u32 i = 0; i < 40; i++) {
        if (*(volatile u8 *)(gdtr.base + i) != gdt_copy[i])
            fail(9, "GDT unchanged", i);
    }
    __asm__ volatile("pushq $0x08\n\t"
                     "leaq 1f(%%rip), %%rax\n\t"
                     "pushq %%rax\n\t"
                     "lretq\n"
                     "1:\n\t"
                     "mov $0x10, %%eax\n\t"
                     "mov %%eax, %%ds\n\t"
                     "mov %%eax, %%es\n\t"
                     "mov %%eax, %%ss\n\t"
                     :
                     :
                     : "rax", "memory");

    /* TSS and IST1: #UD through an IST1 gate must run on the IST stack. */
    set_gate(6, (void *)ud_handler, 1);
    struct gdtr idtr = {sizeof(idt) - 1, (u64)idt};
    __asm__ volatile("lidt %0" : : "m"(idtr));
    __asm__ volatile("ud2" : : : "memory");
    u64 ist_phys = ud_rsp >= PHYS_MAP_BASE ? ud_rsp - PHYS_MAP_BASE : ud_rsp;
    if (ud_count != 1)
        fail(10, "#UD handler ran", ud_count);
    if (ist_phys >= stack_phys && ist_phys < stack_phys + stack_size)
        fail(11, "#UD ran on the IST1 stack, not the kernel stack", ud_rsp);

    serial_puts("allocator: ok\n");
    hypercall(SERAPH_HC_EXIT, 0, 0, 0, 0);
    for (;;)
        __asm__ volatile("cli; hlt");
}
