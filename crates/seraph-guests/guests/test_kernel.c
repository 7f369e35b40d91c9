/*
 * The Seraph test kernel: a small freestanding C kernel that checks the
 * Seraph-V boot contract (docs/test-kernels.md, seraph-boot-protocol.md),
 * draws a test picture and exits with 0 (all checks passed) or 1.
 *
 * Built three times from this one source:
 *   - identity-linked at 0x100000                    (no defines)
 *   - higher-half at 0xFFFF800000000000              (-DSERAPH_HIGHER_HALF)
 *   - the demo kernel: higher-half plus a banner line (-DSERAPH_HIGHER_HALF -DSERAPH_DEMO)
 *
 * Integer-only (-mgeneral-regs-only): this project's nested KVM emulates
 * every guest ring-0 instruction and cannot emulate SSE arithmetic or BMI2.
 * Output lines end with a single '\n'.
 */
#include "seraph_abi.h"
#include "kernel_lib.h"


#define PHYS_MAP_BASE 0xFFFF800000000000ULL
#define FOUR_GIB 0x100000000ULL
#define PAGE_SIZE 4096ULL

#ifdef SERAPH_HIGHER_HALF
#define KERNEL_VIRT_TO_PHYS_OFFSET PHYS_MAP_BASE
#else
#define KERNEL_VIRT_TO_PHYS_OFFSET 0ULL
#endif

/* ---- boot info (packed, 280 bytes) ------------------------------------ */

#define BOOT_INFO_MAGIC 0x5345524150484254ULL
#define BOOT_INFO_VERSION 1
#define BOOT_FLAG_FRAMEBUFFER 0x1
#define BOOT_FLAG_SERIAL 0x10

struct __attribute__((packed)) boot_info {
    u64 magic;
    u32 version;
    u32 flags;
    u64 framebuffer_base;
    u64 framebuffer_size;
    u32 fb_width;
    u32 fb_height;
    u32 fb_stride;
    u32 fb_format;
    u64 memory_map_base;
    u64 memory_map_size;
    u64 memory_desc_size;
    u32 memory_desc_version;
    u32 memory_map_count;
    u64 kernel_phys_base;
    u64 kernel_virt_base;
    u64 kernel_size;
    u64 rsdp_address;
    u64 smbios_address;
    u64 stack_phys;
    u64 stack_size;
    u64 primordial_arena_phys;
    u64 primordial_arena_size;
    u64 pml4_phys;
    u8 reserved[120];
};

_Static_assert(sizeof(struct boot_info) == 280, "boot info is 280 bytes");
_Static_assert(__builtin_offsetof(struct boot_info, framebuffer_base) == 16, "offset");
_Static_assert(__builtin_offsetof(struct boot_info, fb_format) == 44, "offset");
_Static_assert(__builtin_offsetof(struct boot_info, memory_map_base) == 48, "offset");
_Static_assert(__builtin_offsetof(struct boot_info, memory_map_count) == 76, "offset");
_Static_assert(__builtin_offsetof(struct boot_info, kernel_phys_base) == 80, "offset");
_Static_assert(__builtin_offsetof(struct boot_info, stack_phys) == 120, "offset");
_Static_assert(__builtin_offsetof(struct boot_info, pml4_phys) == 152, "offset");

/* Memory descriptor (packed, 40 bytes). */
struct __attribute__((packed)) mem_desc {
    u32 type;
    u32 padding;
    u64 phys_start;
    u64 virt_start;
    u64 page_count;
    u64 attribute;
};

_Static_assert(sizeof(struct mem_desc) == 40, "descriptor is 40 bytes");

#define MEM_MMIO 11
#define MEM_MMIO_PORT 12
#define MEM_KERNEL_IMAGE 0x80000000U
#define MEM_KERNEL_STACK 0x80000001U
#define MEM_BOOT_INFO 0x80000002U

/* More descriptors than any sane map; bounds the walks. */
#define MAX_MAP_COUNT 1024
#define LAPIC_BASE 0xFEE00000ULL

/* 2020-01-01T00:00:00Z in nanoseconds since the Unix epoch. */
#define TIME_2020_NS 1577836800000000000ULL

/* ---- sections the VMM must load (and zero) ---------------------------- */

extern char __kernel_start[];
extern char __kernel_end[];

/* .bss: must read as zero (catches VMMs that skip p_memsz > p_filesz). */
u8 bss_probe[4096];
/* .data: must hold its initial value (catches VMMs that skip .data). */
u64 data_probe = 0x5345524150485644ULL;

void kernel_main(const struct boot_info *bi, u64 entry_rsp);

/* ---- checks ----------------------------------------------------------- */

static u32 failures;

/* A named check: on failure print `CHECK FAILED: <name>` and, on the next
 * line, the value that was seen; then carry on. */
static void check(int ok, const char *name, u64 seen)
{
    if (ok)
        return;
    failures++;
    serial_puts("CHECK FAILED: ");
    serial_puts(name);
    serial_puts("\n  seen: ");
    serial_put_hex(seen);
    serial_puts("\n");
}

static u64 kernel_virt_to_phys(u64 virt)
{
    return virt - KERNEL_VIRT_TO_PHYS_OFFSET;
}

/* True if [addr, addr + len) lies below 4 GiB (reachable through the
 * VMM's identity map, so reading it cannot page-fault). */
static int identity_reachable(u64 addr, u64 len)
{
    return addr < FOUR_GIB && len <= FOUR_GIB - addr;
}

static u64 desc_end(const struct mem_desc *d)
{
    /* page_count comes from the VMM: saturate instead of wrapping. */
    if (d->page_count > (~0ULL - d->phys_start) / PAGE_SIZE)
        return ~0ULL;
    return d->phys_start + d->page_count * PAGE_SIZE;
}

/* Type of the descriptor covering `addr`, or 0xFFFFFFFF if none does. */
static u32 map_type_at(const struct mem_desc *map, u32 count, u64 addr)
{
    for (u32 i = 0; i < count; i++) {
        if (addr >= map[i].phys_start && addr < desc_end(&map[i]))
            return map[i].type;
    }
    return 0xFFFFFFFFU;
}

static void check_memory_map(const struct boot_info *bi)
{
    u64 count = bi->memory_map_count;

    check(bi->memory_desc_size == sizeof(struct mem_desc), "memory map descriptor size",
          bi->memory_desc_size);
    check(bi->memory_desc_version == 1, "memory map descriptor version",
          bi->memory_desc_version);
    check(bi->memory_map_size == count * bi->memory_desc_size, "memory map size",
          bi->memory_map_size);

    int readable = bi->memory_desc_size == sizeof(struct mem_desc) && count > 0 &&
                   count <= MAX_MAP_COUNT &&
                   identity_reachable(bi->memory_map_base, count * sizeof(struct mem_desc));
    check(readable, "memory map readable", bi->memory_map_base);
    if (!readable)
        return;

    const struct mem_desc *map = (const struct mem_desc *)bi->memory_map_base;

    int sorted = 1, disjoint = 1, aligned = 1;
    u64 bad_sorted = 0, bad_disjoint = 0, bad_aligned = 0;
    for (u32 i = 0; i < count; i++) {
        if (map[i].phys_start & (PAGE_SIZE - 1)) {
            if (aligned)
                bad_aligned = map[i].phys_start;
            aligned = 0;
        }
        if (i > 0 && map[i].phys_start <= map[i - 1].phys_start) {
            if (sorted)
                bad_sorted = map[i].phys_start;
            sorted = 0;
        }
        if (i > 0 && map[i].phys_start < desc_end(&map[i - 1])) {
            if (disjoint)
                bad_disjoint = map[i].phys_start;
            disjoint = 0;
        }
    }
    check(sorted, "memory map sorted", bad_sorted);
    check(disjoint, "memory map non-overlapping", bad_disjoint);
    check(aligned, "memory map page-aligned", bad_aligned);

    /* No gap from 0 to the end of the last RAM entry (types other than
     * MMIO 11 and MMIO port 12): every entry up to it starts where the
     * previous one ended. */
    int have_ram = 0;
    u32 last_ram = 0;
    for (u32 i = 0; i < count; i++) {
        if (map[i].type != MEM_MMIO && map[i].type != MEM_MMIO_PORT) {
            have_ram = 1;
            last_ram = i;
        }
    }
    int no_gap = have_ram;
    u64 gap_at = 0;
    u64 expected_start = 0;
    for (u32 i = 0; have_ram && i <= last_ram; i++) {
        if (map[i].phys_start != expected_start) {
            if (no_gap)
                gap_at = expected_start;
            no_gap = 0;
        }
        expected_start = desc_end(&map[i]);
    }
    check(no_gap, "memory map has no gap", gap_at);

    u32 lapic_type = map_type_at(map, count, LAPIC_BASE);
    check(lapic_type == MEM_MMIO, "memory map covers local APIC", lapic_type);

    u32 bi_type = map_type_at(map, count, (u64)bi);
    check(bi_type == MEM_BOOT_INFO, "memory map boot info entry", bi_type);

    /* The kernel: a function's address and the last byte of .bss. */
    u64 code_phys = kernel_virt_to_phys((u64)&kernel_main);
    u64 end_phys = kernel_virt_to_phys((u64)__kernel_end - 1);
    u32 code_type = map_type_at(map, count, code_phys);
    u32 end_type = map_type_at(map, count, end_phys);
    check(code_type == MEM_KERNEL_IMAGE && end_type == MEM_KERNEL_IMAGE,
          "memory map kernel entry", code_type == MEM_KERNEL_IMAGE ? end_type : code_type);
}

static void check_boot_info(const struct boot_info *bi, u64 entry_rsp)
{
    check(bi->magic == BOOT_INFO_MAGIC, "boot info magic", bi->magic);
    check(bi->version == BOOT_INFO_VERSION, "boot info version", bi->version);
    u32 want_flags = BOOT_FLAG_FRAMEBUFFER | BOOT_FLAG_SERIAL;
    check((bi->flags & want_flags) == want_flags, "boot info flags", bi->flags);

    u64 width = bi->fb_width, height = bi->fb_height, stride = bi->fb_stride;
    check(bi->framebuffer_base == 0xC0000000ULL, "framebuffer base", bi->framebuffer_base);
    check(bi->fb_format == 0, "framebuffer format", bi->fb_format);
    check(stride >= width * 4, "framebuffer stride", stride);
    check(bi->framebuffer_size == width * height * 4, "framebuffer size", bi->framebuffer_size);

    check_memory_map(bi);

    u64 kernel_start = (u64)__kernel_start;
    check(bi->kernel_phys_base == kernel_virt_to_phys(kernel_start), "kernel_phys_base",
          bi->kernel_phys_base);
    check(bi->kernel_virt_base == kernel_start, "kernel_virt_base", bi->kernel_virt_base);

    u64 cr3 = read_cr3();
    check(bi->pml4_phys == (cr3 & 0x000FFFFFFFFFF000ULL), "pml4_phys == CR3", cr3);

    /* RSP is an identity-mapped address; accept a physical-map alias too. */
    u64 rsp_phys = entry_rsp >= PHYS_MAP_BASE ? entry_rsp - PHYS_MAP_BASE : entry_rsp;
    int rsp_in_stack = rsp_phys >= bi->stack_phys && bi->stack_size <= ~0ULL - bi->stack_phys &&
                       rsp_phys <= bi->stack_phys + bi->stack_size;
    check(rsp_in_stack, "entry RSP in stack", entry_rsp);
    check((entry_rsp & 0xF) == 0, "entry RSP aligned", entry_rsp);
}

static void check_sections(void)
{
    const volatile u8 *bss = bss_probe;
    int zero = 1;
    for (u32 i = 0; i < sizeof(bss_probe); i++) {
        if (bss[i] != 0) {
            zero = 0;
            break;
        }
    }
    check(zero, "bss zeroed", 0);

    const volatile u64 *data = &data_probe;
    check(*data == 0x5345524150485644ULL, "data loaded", *data);
}

static void check_cpuid(void)
{
    u32 a, b, c, d;
    cpuid(SERAPH_CPUID_SIGNATURE_LEAF, &a, &b, &c, &d);
    /* "Sera" "ph-V" "\0\0\0\0" */
    int sig = b == 0x61726553U && c == 0x562D6870U && d == 0;
    check(sig, "cpuid signature", ((u64)c << 32) | b);
    check(a >= SERAPH_CPUID_FEATURES_LEAF, "cpuid max leaf", a);

    cpuid(SERAPH_CPUID_FEATURES_LEAF, &a, &b, &c, &d);
    check(a == SERAPH_DOORBELL_PORT && b == 1, "cpuid doorbell leaf", ((u64)b << 32) | a);
}

static void check_hypercalls(void)
{
    u64 t1 = (u64)hypercall(SERAPH_HC_GET_TIME, 0, 0, 0, 0);
    u64 t2 = (u64)hypercall(SERAPH_HC_GET_TIME, 0, 0, 0, 0);
    /* Errors are negative: as u64 they are huge, so bound from above too. */
    int sane1 = t1 >= TIME_2020_NS && t1 < 0x8000000000000000ULL;
    int sane2 = t2 >= TIME_2020_NS && t2 < 0x8000000000000000ULL;
    check(sane1 && sane2, "GET_TIME after 2020", sane1 ? t2 : t1);
    check(t2 >= t1, "GET_TIME non-decreasing", t2);

    static const char probe[] = "x";
    i64 r = hc_print((const void *)0x00007FFFFFFF0000ULL, 16);
    check(r == -SERAPH_EFAULT, "PRINT bad pointer returns -14", (u64)r);
    r = hc_print(probe, 0x100000);
    check(r == -SERAPH_EINVAL, "PRINT length over 65536 returns -22", (u64)r);
    r = hypercall(0x99, 0, 0, 0, 0);
    check(r == -SERAPH_ENOSYS, "unknown hypercall returns -38", (u64)r);
}

/* ---- the picture ------------------------------------------------------ */

static void fill_u32(u64 addr, u32 value, u64 count)
{
    __asm__ volatile("rep stosl" : "+D"(addr), "+c"(count) : "a"(value) : "memory");
}

/* Fill a rectangle clipped to the framebuffer, one `rep stosl` per row. */
static void fill_rect(const struct boot_info *bi, u64 x, u64 y, u64 w, u64 h, u32 color)
{
    u64 width = bi->fb_width, height = bi->fb_height, stride = bi->fb_stride;
    if (x >= width || y >= height)
        return;
    if (w > width - x)
        w = width - x;
    if (h > height - y)
        h = height - y;
    for (u64 row = y; row < y + h; row++) {
        u64 offset = row * stride + x * 4;
        if (offset + w * 4 > bi->framebuffer_size)
            return;
        fill_u32(bi->framebuffer_base + offset, color, w);
    }
}

static void draw_picture(const struct boot_info *bi)
{
    if (!identity_reachable(bi->framebuffer_base, bi->framebuffer_size) ||
        bi->framebuffer_base == 0 || bi->fb_stride < (u64)bi->fb_width * 4)
        return;
    fill_rect(bi, 0, 0, 256, 32, 0x00FF0000);  /* red */
    fill_rect(bi, 0, 32, 256, 32, 0x0000FF00); /* green */
    fill_rect(bi, 0, 64, 256, 32, 0x000000FF); /* blue */
    fill_rect(bi, 0, 96, 256, 32, 0x00FFFFFF); /* white */
    u64 cx = bi->fb_width / 2, cy = bi->fb_height / 2;
    if (cx >= 32 && cy >= 32)
        fill_rect(bi, cx - 32, cy - 32, 64, 64, 0x00FFFF00); /* yellow */
}

/* ---- main ------------------------------------------------------------- */

void kernel_main(const struct boot_info *bi, u64 entry_rsp)
{
    static const char print_line[] = "Seraph test kernel: hello from PRINT\n";

    serial_init();
#ifdef SERAPH_DEMO
    serial_puts("Seraph-V demo kernel: the higher-half Seraph test kernel\n");
#endif
    serial_puts("Seraph test kernel: hello from serial\n");

    u64 len = str_len(print_line);
    i64 printed = hc_print(print_line, len);
    check(printed == (i64)len, "PRINT returns length", (u64)printed);

    int bi_ok = identity_reachable((u64)bi, sizeof(*bi));
    check(bi_ok, "boot info address", (u64)bi);
    if (bi_ok)
        check_boot_info(bi, entry_rsp);
    check_sections();
    check_cpuid();
    check_hypercalls();

    if (bi_ok)
        draw_picture(bi);

    if (failures == 0) {
        serial_puts("Seraph test kernel: all checks passed\n");
    } else {
        serial_puts("Seraph test kernel: ");
        serial_put_dec(failures);
        serial_puts(" checks failed\n");
    }
    hypercall(SERAPH_HC_EXIT, failures == 0 ? 0 : 1, 0, 0, 0);
}
