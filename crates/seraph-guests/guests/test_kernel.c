/*
 * The Seraph test kernel: a small freestanding C kernel that checks the
 * Seraph-V boot contract (docs/test-kernels.md, seraph-boot-protocol.md),
 * draws a test picture and exits with 0 (all checks passed) or 1.
 *
 * Built three times from this one source:
 *   - identity-linked at 0x100000                    (no defines)
 *   - higher-half at 0xFFFF800000000000              (-DSERAPH_HIGHER_HALF)
 *   - the demo kernel: higher-half plus a banner line (-DSERAPH_HIGHER_HALF -DSERAPH_DEMO);
 *     instead of the test picture it counts LAPIC timer interrupts and
 *     draws a text screen of what it found (8x16 font, font8x16.h)
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
#ifdef SERAPH_DEMO
/* Shown on the demo screen. */
static u32 checks_run;
static i64 seen_print, seen_bad_pointer, seen_too_long, seen_unknown;
#endif

/* A named check: on failure print `CHECK FAILED: <name>` and, on the next
 * line, the value that was seen; then carry on. */
static void check(int ok, const char *name, u64 seen)
{
#ifdef SERAPH_DEMO
    checks_run++;
#endif
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
#ifdef SERAPH_DEMO
    seen_bad_pointer = r;
#endif
    r = hc_print(probe, 0x100000);
    check(r == -SERAPH_EINVAL, "PRINT length over 65536 returns -22", (u64)r);
#ifdef SERAPH_DEMO
    seen_too_long = r;
#endif
    r = hypercall(0x99, 0, 0, 0, 0);
    check(r == -SERAPH_ENOSYS, "unknown hypercall returns -38", (u64)r);
#ifdef SERAPH_DEMO
    seen_unknown = r;
#endif
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

#ifndef SERAPH_DEMO
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
#endif

#ifdef SERAPH_DEMO
/* ---- the demo: LAPIC timer interrupts and a text screen --------------- */

#include "font8x16.h"

#define LAPIC_EOI 0x0B0
#define LAPIC_SVR 0x0F0
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_INITIAL 0x380
#define LAPIC_CURRENT 0x390
#define LAPIC_DIVIDE 0x3E0
#define LVT_MASKED 0x10000U
#define LVT_PERIODIC 0x20000U
#define TIMER_VECTOR 0x20
#define SPURIOUS_VECTOR 0xFF
#define TIMER_TICKS_WANTED 20
#define NS_PER_MS 1000000ULL
#define NS_PER_S 1000000000ULL

static inline u32 lapic_read(u32 reg)
{
    return *(volatile u32 *)(LAPIC_BASE + reg);
}

static inline void lapic_write(u32 reg, u32 value)
{
    *(volatile u32 *)(LAPIC_BASE + reg) = value;
}

/* GET_TIME in ns since the Unix epoch; 0 if the hypercall failed. */
static u64 now_ns(void)
{
    i64 t = hypercall(SERAPH_HC_GET_TIME, 0, 0, 0, 0);
    return t < 0 ? 0 : (u64)t;
}

struct __attribute__((packed)) idt_entry {
    u16 offset_low;
    u16 selector;
    u8 ist;
    u8 type_attr;
    u16 offset_mid;
    u32 offset_high;
    u32 zero;
};

struct __attribute__((packed)) idt_pointer {
    u16 limit;
    u64 base;
};

struct interrupt_frame {
    u64 ip;
    u64 cs;
    u64 flags;
    u64 sp;
    u64 ss;
};

static struct idt_entry demo_idt[256];
static volatile u32 timer_ticks;

__attribute__((interrupt)) static void timer_isr(struct interrupt_frame *f)
{
    (void)f;
    timer_ticks++;
    lapic_write(LAPIC_EOI, 0);
}

__attribute__((interrupt)) static void spurious_isr(struct interrupt_frame *f)
{
    (void)f; /* a spurious interrupt takes no EOI */
}

static void set_gate(u8 vector, void *handler, u16 cs)
{
    u64 at = (u64)handler;
    demo_idt[vector].offset_low = (u16)at;
    demo_idt[vector].selector = cs;
    demo_idt[vector].ist = 0;
    demo_idt[vector].type_attr = 0x8E; /* present, ring 0, interrupt gate */
    demo_idt[vector].offset_mid = (u16)(at >> 16);
    demo_idt[vector].offset_high = (u32)(at >> 32);
    demo_idt[vector].zero = 0;
}

struct timer_result {
    int ran;            /* the periodic timer was started */
    u64 clock_hz;       /* LAPIC timer count rate after divide by 16 */
    u64 calibration_ns; /* how long the count was watched */
    u32 ticks;          /* interrupts received */
    u64 ticks_ns;       /* GET_TIME from starting the timer to the last tick */
};

/* Counts the LAPIC timer against GET_TIME for 10 ms, then runs it
 * periodically every 1 ms at vector 0x20 and halts until 20 interrupts
 * have arrived (or 1 s of GET_TIME has passed). Leaves the timer stopped
 * and interrupts off. No checks: the demo's checks are the test kernel's. */
static void run_timer(struct timer_result *out)
{
    out->ran = 0;
    out->clock_hz = 0;
    out->calibration_ns = 0;
    out->ticks = 0;
    out->ticks_ns = 0;

    lapic_write(LAPIC_SVR, 0x100 | SPURIOUS_VECTOR); /* APIC on */
    lapic_write(LAPIC_DIVIDE, 3);                    /* divide by 16 */
    lapic_write(LAPIC_LVT_TIMER, LVT_MASKED | TIMER_VECTOR);
    lapic_write(LAPIC_INITIAL, 0xFFFFFFFFU);
    u64 t0 = now_ns();
    u32 c0 = lapic_read(LAPIC_CURRENT);
    u64 t1 = t0;
    for (u32 i = 0; i < 100000 && t0 != 0 && t1 - t0 < 10 * NS_PER_MS; i++)
        t1 = now_ns();
    u32 c1 = lapic_read(LAPIC_CURRENT);
    lapic_write(LAPIC_INITIAL, 0);
    if (t1 <= t0 || c1 >= c0)
        return;
    out->calibration_ns = t1 - t0;
    out->clock_hz = (u64)(c0 - c1) * NS_PER_S / out->calibration_ns;
    u64 period = out->clock_hz / 1000;
    if (period == 0 || period > 0xFFFFFFFFULL)
        return;

    u16 cs;
    __asm__ volatile("mov %%cs, %0" : "=r"(cs));
    set_gate(TIMER_VECTOR, (void *)timer_isr, cs);
    set_gate(SPURIOUS_VECTOR, (void *)spurious_isr, cs);
    struct idt_pointer idtr = {sizeof(demo_idt) - 1, (u64)demo_idt};
    __asm__ volatile("lidt %0" : : "m"(idtr));

    out->ran = 1;
    timer_ticks = 0;
    lapic_write(LAPIC_LVT_TIMER, LVT_PERIODIC | TIMER_VECTOR);
    lapic_write(LAPIC_INITIAL, (u32)period);
    u64 start = now_ns(), last = start;
    __asm__ volatile("sti" ::: "memory");
    while (timer_ticks < TIMER_TICKS_WANTED && last - start < NS_PER_S) {
        __asm__ volatile("hlt" ::: "memory");
        last = now_ns();
    }
    __asm__ volatile("cli" ::: "memory");
    lapic_write(LAPIC_LVT_TIMER, LVT_MASKED | TIMER_VECTOR);
    lapic_write(LAPIC_INITIAL, 0);
    out->ticks = timer_ticks;
    out->ticks_ns = last - start;
}

/* ---- text on the framebuffer ------------------------------------------ */

/* Colours, 0x00RRGGBB. */
#define C_BACKGROUND 0x00101820
#define C_HEADER 0x001C2A3A
#define C_ACCENT 0x00FFC24A
#define C_HEADING 0x0070D0FF
#define C_LABEL 0x0090A4B8
#define C_VALUE 0x00EEF2F6
#define C_PASS 0x0060E080
#define C_FAIL 0x00FF6060

/* A pen: text colour on a background colour, as the 4 (scale 1) or 8
 * (scale 2) pixels of each 4-bit slice of a glyph row, so a glyph row is
 * 2 or 4 table copies. Built once per colour pair; every instruction
 * counts here (this machine's nested KVM emulates each one). */
struct pen {
    u64 scale1[16][2];
    u64 scale2[16][4];
};

enum { PEN_TITLE, PEN_SUBTITLE, PEN_HEADING, PEN_LABEL, PEN_VALUE, PEN_ACCENT, PEN_PASS,
       PEN_FAIL, PEN_COUNT };

static struct pen pens[PEN_COUNT];

static void make_pen(struct pen *pen, u32 fg, u32 bg)
{
    for (u32 n = 0; n < 16; n++) {
        u64 p[4];
        for (u32 i = 0; i < 4; i++)
            p[i] = (n & (8U >> i)) ? fg : bg;
        pen->scale1[n][0] = p[0] | p[1] << 32;
        pen->scale1[n][1] = p[2] | p[3] << 32;
        for (u32 i = 0; i < 4; i++)
            pen->scale2[n][i] = p[i] | p[i] << 32;
    }
}

static void make_pens(void)
{
    make_pen(&pens[PEN_TITLE], C_ACCENT, C_HEADER);
    make_pen(&pens[PEN_SUBTITLE], C_VALUE, C_HEADER);
    make_pen(&pens[PEN_HEADING], C_HEADING, C_BACKGROUND);
    make_pen(&pens[PEN_LABEL], C_LABEL, C_BACKGROUND);
    make_pen(&pens[PEN_VALUE], C_VALUE, C_BACKGROUND);
    make_pen(&pens[PEN_ACCENT], C_ACCENT, C_BACKGROUND);
    make_pen(&pens[PEN_PASS], C_PASS, C_BACKGROUND);
    make_pen(&pens[PEN_FAIL], C_FAIL, C_BACKGROUND);
}

/* One character cell (8x16 times scale 1 or 2) at (x, y), x even; skipped
 * if it does not fit on the framebuffer. The pen's background is already
 * on the screen, so blank glyph rows (and spaces) are not written. */
static void draw_char(const struct boot_info *bi, u64 x, u64 y, char c, const struct pen *pen,
                      u64 scale)
{
    u8 code = (u8)c;
    if (code == ' ')
        return;
    if (code < FONT_FIRST || code > FONT_LAST)
        code = '?';
    const u8 *glyph = font8x16[code - FONT_FIRST];
    u64 w = FONT_WIDTH * scale, h = FONT_HEIGHT * scale, stride = bi->fb_stride;
    if (x + w > bi->fb_width || y + h > bi->fb_height ||
        (y + h - 1) * stride + (x + w) * 4 > bi->framebuffer_size)
        return;
    u64 row = bi->framebuffer_base + y * stride + x * 4;
    if (scale == 1) {
        for (u32 r = 0; r < FONT_HEIGHT; r++, row += stride) {
            u32 bits = glyph[r];
            if (bits == 0)
                continue;
            const u64 *left = pen->scale1[bits >> 4], *right = pen->scale1[bits & 15];
            u64 *dst = (u64 *)row;
            dst[0] = left[0];
            dst[1] = left[1];
            dst[2] = right[0];
            dst[3] = right[1];
        }
        return;
    }
    for (u32 r = 0; r < FONT_HEIGHT; r++, row += 2 * stride) {
        u32 bits = glyph[r];
        if (bits == 0)
            continue;
        const u64 *left = pen->scale2[bits >> 4], *right = pen->scale2[bits & 15];
        u64 *dst = (u64 *)row, *below = (u64 *)(row + stride);
        for (u32 i = 0; i < 4; i++) {
            dst[i] = below[i] = left[i];
            dst[4 + i] = below[4 + i] = right[i];
        }
    }
}

/* Draws `s` from (x, y) with pen `p` (scale 1 or 2); returns the x after it. */
static u64 draw_text(const struct boot_info *bi, u64 x, u64 y, const char *s, int p, u64 scale)
{
    for (; *s != '\0'; s++, x += FONT_WIDTH * scale)
        draw_char(bi, x, y, *s, &pens[p], scale);
    return x;
}

/* A line of text being built. */
struct line {
    char s[128];
    u32 n;
};

static void l_clear(struct line *l)
{
    l->n = 0;
    l->s[0] = '\0';
}

static void l_char(struct line *l, char c)
{
    if (l->n + 1 < sizeof(l->s)) {
        l->s[l->n++] = c;
        l->s[l->n] = '\0';
    }
}

static void l_str(struct line *l, const char *s)
{
    while (*s != '\0')
        l_char(l, *s++);
}

/* Decimal, at least `digits` digits (zero-padded). */
static void l_dec(struct line *l, u64 v, u32 digits)
{
    char buf[20];
    u32 n = 0;
    do {
        buf[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0 && n < sizeof(buf));
    while (n < digits && n < sizeof(buf))
        buf[n++] = '0';
    while (n > 0)
        l_char(l, buf[--n]);
}

static void l_signed(struct line *l, i64 v)
{
    if (v < 0) {
        l_char(l, '-');
        l_dec(l, 0 - (u64)v, 1);
    } else {
        l_dec(l, (u64)v, 1);
    }
}

/* 0x and at least `digits` hex digits. */
static void l_hex(struct line *l, u64 v, u32 digits)
{
    u32 n = 1;
    while (n < 16 && (v >> (4 * n)) != 0)
        n++;
    if (n < digits)
        n = digits;
    l_str(l, "0x");
    while (n > 0) {
        u32 nibble = (u32)(v >> (4 * --n)) & 0xF;
        l_char(l, (char)(nibble < 10 ? '0' + nibble : 'A' + nibble - 10));
    }
}

/* `v / unit` with one decimal, rounded down. */
static void l_tenths(struct line *l, u64 v, u64 unit)
{
    l_dec(l, v / unit, 1);
    l_char(l, '.');
    l_dec(l, v % unit * 10 / unit, 1);
}

/* A byte count as GiB (from 16 GiB), MiB or KiB with one decimal (or bytes). */
static void l_size(struct line *l, u64 bytes)
{
    if (bytes >= (16ULL << 30)) {
        l_tenths(l, bytes, 1ULL << 30);
        l_str(l, " GiB");
    } else if (bytes >= (1ULL << 20)) {
        l_tenths(l, bytes, 1ULL << 20);
        l_str(l, " MiB");
    } else if (bytes >= 1024) {
        l_tenths(l, bytes, 1024);
        l_str(l, " KiB");
    } else {
        l_dec(l, bytes, 1);
        l_str(l, " B");
    }
}

/* Spaces up to column `col`. */
static void l_pad(struct line *l, u32 col)
{
    while (l->n < col && l->n + 1 < sizeof(l->s))
        l_char(l, ' ');
}

static int is_leap(u64 year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

/* "Tuesday 2026-12-01 13:20:35 UTC" from ns since the Unix epoch. */
static void l_utc(struct line *l, u64 ns)
{
    static const char *const weekdays[7] = {"Thursday", "Friday",  "Saturday", "Sunday",
                                            "Monday",   "Tuesday", "Wednesday"};
    static const u8 month_days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    u64 secs = ns / NS_PER_S;
    u64 days = secs / 86400, in_day = secs % 86400;
    l_str(l, weekdays[days % 7]); /* 1970-01-01 was a Thursday */
    l_char(l, ' ');
    u64 year = 1970;
    while (days >= (is_leap(year) ? 366U : 365U)) {
        days -= is_leap(year) ? 366 : 365;
        year++;
    }
    u32 month = 0;
    while (month < 11) {
        u64 len = month_days[month] + (month == 1 && is_leap(year) ? 1 : 0);
        if (days < len)
            break;
        days -= len;
        month++;
    }
    l_dec(l, year, 4);
    l_char(l, '-');
    l_dec(l, month + 1, 2);
    l_char(l, '-');
    l_dec(l, days + 1, 2);
    l_char(l, ' ');
    l_dec(l, in_day / 3600, 2);
    l_char(l, ':');
    l_dec(l, in_day % 3600 / 60, 2);
    l_char(l, ':');
    l_dec(l, in_day % 60, 2);
    l_str(l, " UTC");
}

static const char *type_name(u32 type)
{
    switch (type) {
    case 0: return "reserved";
    case 1: return "loader code";
    case 2: return "loader data";
    case 3: return "boot services code";
    case 4: return "boot services data";
    case 5: return "runtime code";
    case 6: return "runtime data";
    case 7: return "conventional";
    case 8: return "unusable";
    case 9: return "ACPI reclaim";
    case 10: return "ACPI NVS";
    case MEM_MMIO: return "MMIO";
    case MEM_MMIO_PORT: return "MMIO port space";
    case 13: return "PAL code";
    case 14: return "persistent";
    case MEM_KERNEL_IMAGE: return "kernel image";
    case MEM_KERNEL_STACK: return "kernel stack";
    case MEM_BOOT_INFO: return "boot info + map";
    default: return "other";
    }
}

/* Free for the kernel after boot: loader code/data, boot services, conventional. */
static int type_usable(u32 type)
{
    return type == 1 || type == 2 || type == 3 || type == 4 || type == 7;
}

/* Layout: a header band, the facts in a left column, the memory map in a
 * right column, the verdict at the bottom. */
#define MARGIN 32
#define LINE 18
#define HEADER_H 88
#define RIGHT_X 560
#define VALUE_COL 17 /* characters from a section's left edge to its values */

/* Body text stops above this line (the verdict), so on a small
 * framebuffer the last facts are left out instead of drawn over it. */
static u64 body_bottom;

static void body_text(const struct boot_info *bi, u64 x, u64 y, const char *s, int pen)
{
    if (y + FONT_HEIGHT <= body_bottom)
        draw_text(bi, x, y, s, pen, 1);
}

static u64 heading(const struct boot_info *bi, u64 x, u64 y, const char *text)
{
    body_text(bi, x, y, text, PEN_HEADING);
    return y + LINE + 2;
}

/* "  label          value" */
static u64 fact(const struct boot_info *bi, u64 x, u64 y, const char *label, const char *value)
{
    body_text(bi, x + 16, y, label, PEN_LABEL);
    body_text(bi, x + 8 * VALUE_COL, y, value, PEN_VALUE);
    return y + LINE;
}

static void fill_background(const struct boot_info *bi)
{
    u64 width = bi->fb_width, height = bi->fb_height, stride = bi->fb_stride;
    u64 fill = (u64)C_BACKGROUND | (u64)C_BACKGROUND << 32;
    u64 header = (u64)C_HEADER | (u64)C_HEADER << 32;
    for (u64 row = 0; row < height; row++) {
        u64 offset = row * stride;
        if (offset + width * 4 > bi->framebuffer_size)
            return;
        u64 addr = bi->framebuffer_base + offset, count = width / 2;
        u64 value = row < HEADER_H ? header : fill;
        __asm__ volatile("rep stosq" : "+D"(addr), "+c"(count) : "a"(value) : "memory");
        if (width & 1)
            fill_u32(addr, (u32)value, 1);
    }
}

static void draw_memory_map(const struct boot_info *bi, u64 x, u64 y)
{
    struct line l;
    u64 count = bi->memory_map_count;
    int readable = bi->memory_desc_size == sizeof(struct mem_desc) && count > 0 &&
                   count <= MAX_MAP_COUNT &&
                   identity_reachable(bi->memory_map_base, count * sizeof(struct mem_desc));
    l_clear(&l);
    l_str(&l, "MEMORY MAP (boot info, ");
    l_dec(&l, count, 1);
    l_str(&l, " entries)");
    y = heading(bi, x, y, l.s);
    if (!readable) {
        body_text(bi, x + 16, y, "not readable", PEN_FAIL);
        return;
    }
    const struct mem_desc *map = (const struct mem_desc *)bi->memory_map_base;

    /* Each entry, as many as fit above the totals by type. */
    body_text(bi, x + 16, y, "start         size        type", PEN_LABEL);
    y += LINE;
    u32 types[24], type_count = 0;
    u64 type_bytes[24], type_entries[24];
    u64 usable = 0, ram = 0;
    for (u32 i = 0; i < count; i++) {
        u64 bytes = desc_end(&map[i]) - map[i].phys_start;
        if (type_usable(map[i].type))
            usable += bytes;
        if (map[i].type != MEM_MMIO && map[i].type != MEM_MMIO_PORT)
            ram += bytes;
        u32 t = 0;
        while (t < type_count && types[t] != map[i].type)
            t++;
        if (t == type_count && type_count < 24) {
            types[t] = map[i].type;
            type_bytes[t] = 0;
            type_entries[t] = 0;
            type_count++;
        }
        if (t < type_count) {
            type_bytes[t] += bytes;
            type_entries[t]++;
        }
    }
    u64 totals_h = (u64)(type_count + 4) * LINE;
    u32 shown = 0;
    for (; shown < count && y + LINE + totals_h + LINE < body_bottom; shown++) {
        l_clear(&l);
        l_hex(&l, map[shown].phys_start, 8);
        l_pad(&l, 14);
        l_size(&l, desc_end(&map[shown]) - map[shown].phys_start);
        l_pad(&l, 26);
        l_str(&l, type_name(map[shown].type));
        if (map[shown].type <= 14) {
            l_str(&l, " (");
            l_dec(&l, map[shown].type, 1);
            l_char(&l, ')');
        }
        body_text(bi, x + 16, y, l.s, PEN_VALUE);
        y += LINE;
    }
    if (shown < count) {
        l_clear(&l);
        l_str(&l, "... and ");
        l_dec(&l, count - shown, 1);
        l_str(&l, " more");
        body_text(bi, x + 16, y, l.s, PEN_LABEL);
        y += LINE;
    }

    y += LINE / 2;
    y = heading(bi, x, y, "BY TYPE");
    for (u32 t = 0; t < type_count; t++) {
        l_clear(&l);
        l_str(&l, type_name(types[t]));
        l_pad(&l, 20);
        l_dec(&l, type_entries[t], 1);
        l_str(&l, type_entries[t] == 1 ? " entry " : " entries");
        l_pad(&l, 32);
        l_size(&l, type_bytes[t]);
        body_text(bi, x + 16, y, l.s, PEN_VALUE);
        y += LINE;
    }
    y += LINE / 2;
    l_clear(&l);
    l_str(&l, "usable RAM ");
    l_size(&l, usable);
    l_str(&l, " of ");
    l_size(&l, ram);
    body_text(bi, x + 16, y, l.s, PEN_ACCENT);
    y += LINE;
    body_text(bi, x + 16, y, "(usable: types 1-4 and 7, free after boot)", PEN_LABEL);
}

static void draw_demo_screen(const struct boot_info *bi, const struct timer_result *timer)
{
    if (!identity_reachable(bi->framebuffer_base, bi->framebuffer_size) ||
        bi->framebuffer_base == 0 || bi->fb_stride < (u64)bi->fb_width * 4)
        return;
    fill_background(bi);
    fill_rect(bi, 0, HEADER_H, bi->fb_width, 2, C_ACCENT);
    make_pens();

    draw_text(bi, MARGIN, 14, "Seraph-V demo kernel", PEN_TITLE, 2);
    draw_text(bi, MARGIN, 56,
              "The higher-half Seraph test kernel, entered in 64-bit long mode by Seraph-V: "
              "no firmware, no bootloader.",
              PEN_SUBTITLE, 1);

    /* The verdict at the bottom; the memory map in a right column if the
     * framebuffer is wide enough, else below the other facts. */
    u64 verdict_y = bi->fb_height >= 240 ? bi->fb_height - 80 : HEADER_H + 4;
    body_bottom = verdict_y - 4;
    int two_columns = bi->fb_width >= RIGHT_X + 48 * FONT_WIDTH;

    struct line l;
    u64 x = MARGIN, y = HEADER_H + 22;

    u32 a, b, c, d;
    cpuid(SERAPH_CPUID_SIGNATURE_LEAF, &a, &b, &c, &d);
    y = heading(bi, x, y, "HYPERVISOR (CPUID leaf 0x40000000)");
    l_clear(&l);
    l_char(&l, '"');
    u32 sig[3] = {b, c, d};
    for (u32 i = 0; i < 12; i++) {
        char ch = (char)(sig[i / 4] >> (8 * (i % 4)));
        if (ch == '\0')
            break;
        l_char(&l, ch >= 0x20 && ch <= 0x7E ? ch : '?');
    }
    l_char(&l, '"');
    y = fact(bi, x, y, "signature", l.s);
    l_clear(&l);
    l_hex(&l, a, 8);
    y = fact(bi, x, y, "max leaf", l.s);
    if (a >= SERAPH_CPUID_FEATURES_LEAF) {
        cpuid(SERAPH_CPUID_FEATURES_LEAF, &a, &b, &c, &d);
        l_clear(&l);
        l_str(&l, "port ");
        l_hex(&l, a, 2);
        l_str(&l, " (leaf 0x40000001)");
        y = fact(bi, x, y, "doorbell", l.s);
    }

    y += LINE / 2;
    y = heading(bi, x, y, "HYPERCALLS (out 0xE4, eax; RAX = number)");
    l_clear(&l);
    l_str(&l, "returned ");
    l_signed(&l, seen_print);
    l_str(&l, ", the length of its line");
    y = fact(bi, x, y, "PRINT", l.s);
    l_clear(&l);
    l_str(&l, "bad pointer ");
    l_signed(&l, seen_bad_pointer);
    l_str(&l, ", too long ");
    l_signed(&l, seen_too_long);
    l_str(&l, ", unknown ");
    l_signed(&l, seen_unknown);
    y = fact(bi, x, y, "errors", l.s);

    y += LINE / 2;
    y = heading(bi, x, y, "CLOCK (GET_TIME hypercall)");
    u64 now = now_ns();
    l_clear(&l);
    l_utc(&l, now);
    y = fact(bi, x, y, "guest time", l.s);
    l_clear(&l);
    l_dec(&l, now / NS_PER_S, 1);
    l_char(&l, '.');
    l_dec(&l, now % NS_PER_S / NS_PER_MS, 3);
    l_str(&l, " s since 1970");
    y = fact(bi, x, y, "Unix time", l.s);

    y += LINE / 2;
    y = heading(bi, x, y, "FRAMEBUFFER (boot info)");
    l_clear(&l);
    l_dec(&l, bi->fb_width, 1);
    l_str(&l, " x ");
    l_dec(&l, bi->fb_height, 1);
    l_str(&l, ", BGRA8, stride ");
    l_dec(&l, bi->fb_stride, 1);
    y = fact(bi, x, y, "geometry", l.s);
    l_clear(&l);
    l_hex(&l, bi->framebuffer_base, 8);
    l_str(&l, ", ");
    l_size(&l, bi->framebuffer_size);
    y = fact(bi, x, y, "base, size", l.s);

    y += LINE / 2;
    y = heading(bi, x, y, "TIMER (local APIC, vector 0x20)");
    if (timer->clock_hz != 0) {
        l_clear(&l);
        l_tenths(&l, timer->clock_hz, 1000000);
        l_str(&l, " MHz (bus/16), over ");
        l_tenths(&l, timer->calibration_ns, NS_PER_MS);
        l_str(&l, " ms");
        y = fact(bi, x, y, "count rate", l.s);
    } else {
        y = fact(bi, x, y, "count rate", "did not count");
    }
    l_clear(&l);
    if (timer->ran) {
        l_dec(&l, timer->ticks, 1);
        l_str(&l, " in ");
        l_tenths(&l, timer->ticks_ns, NS_PER_MS);
        l_str(&l, " ms (1 ms periodic; halted between)");
    } else {
        l_str(&l, "none (timer not started)");
    }
    y = fact(bi, x, y, "interrupts", l.s);

    y += LINE / 2;
    y = heading(bi, x, y, "KERNEL (boot info)");
    l_clear(&l);
    l_hex(&l, bi->kernel_virt_base, 16);
    y = fact(bi, x, y, "linked at", l.s);
    l_clear(&l);
    l_hex(&l, bi->kernel_phys_base, 8);
    l_str(&l, ", ");
    l_size(&l, bi->kernel_size);
    y = fact(bi, x, y, "loaded at", l.s);
    l_clear(&l);
    l_hex(&l, bi->pml4_phys, 8);
    y = fact(bi, x, y, "PML4 (CR3)", l.s);
    l_clear(&l);
    l_hex(&l, (u64)bi, 8);
    l_str(&l, " (RDI at entry)");
    y = fact(bi, x, y, "boot info", l.s);
    l_clear(&l);
    l_hex(&l, bi->stack_phys, 8);
    l_str(&l, ", ");
    l_size(&l, bi->stack_size);
    y = fact(bi, x, y, "stack", l.s);

    if (two_columns)
        draw_memory_map(bi, RIGHT_X, HEADER_H + 22);
    else
        draw_memory_map(bi, x, y + LINE / 2);

    fill_rect(bi, 0, verdict_y, bi->fb_width, 2, C_HEADER);
    l_clear(&l);
    if (failures == 0) {
        l_str(&l, "all ");
        l_dec(&l, checks_run, 1);
        l_str(&l, " checks passed");
    } else {
        l_dec(&l, failures, 1);
        l_str(&l, " of ");
        l_dec(&l, checks_run, 1);
        l_str(&l, " checks failed");
    }
    draw_text(bi, MARGIN, verdict_y + 14, l.s, failures == 0 ? PEN_PASS : PEN_FAIL, 2);
    draw_text(bi, MARGIN, verdict_y + 52,
              "Drawn by the guest with its own 8x16 font; seraph-v saved the framebuffer at "
              "exit.",
              PEN_LABEL, 1);
}
#endif

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
#ifdef SERAPH_DEMO
    seen_print = printed;
#endif

    int bi_ok = identity_reachable((u64)bi, sizeof(*bi));
    check(bi_ok, "boot info address", (u64)bi);
    if (bi_ok)
        check_boot_info(bi, entry_rsp);
    check_sections();
    check_cpuid();
    check_hypercalls();

#ifdef SERAPH_DEMO
    struct timer_result timer;
    run_timer(&timer);
    if (bi_ok)
        draw_demo_screen(bi, &timer);
#else
    if (bi_ok)
        draw_picture(bi);
#endif

    if (failures == 0) {
        serial_puts("Seraph test kernel: all checks passed\n");
    } else {
        serial_puts("Seraph test kernel: ");
        serial_put_dec(failures);
        serial_puts(" checks failed\n");
    }
    hypercall(SERAPH_HC_EXIT, failures == 0 ? 0 : 1, 0, 0, 0);
}
