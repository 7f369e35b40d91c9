/*
 * The timer test kernel: does what a real Seraph OS boot does with the
 * PIT, the local APIC and the PIC, and checks that interrupts really arrive.
 *
 * Scenarios, in order (serial lines end with '\n'), after the MSR checks and
 * a LAPIC error interrupt raised by a reserved-register read:
 *   1. PIT channel 0 in mode 0 (0x43 = 0x30, count 11932 = 10 ms), then
 *      the read-back command (0x43 = 0xE2) and `in 0x40` until status bit 7
 *      (OUT) is 1, exactly as Seraph OS waits.
 *   2. LAPIC calibration as Seraph OS does it: SVR 0x1FF, ESR written twice,
 *      LVTs masked (0x10000), divide 3 (by 16), initial count 0xFFFFFFFF,
 *      the PIT wait of scenario 1, then the current count.
 *   3. A periodic LAPIC timer at vector 0x20 with a period of 1/10 of the
 *      calibrated 10 ms, an IDT, `sti` and a HLT loop until 10 ticks have
 *      been counted (the handler writes EOI).
 *   3b. the same timer while the CPU spins with IF = 1 and never halts,
 *      until 10 more ticks: each must interrupt running code;
 *   4. PIT channel 0 in mode 2 (1 ms) on IRQ0 through the 8259 pair
 *      (ICW1-ICW4 with `out 0x80` delays, vectors 0x30/0x38, all but IRQ0
 *      masked; LAPIC LINT0 in ExtINT mode), until 10 ticks.
 *
 * Built twice:
 *   - timer_kernel.elf: runs 1-4, reports over serial and PRINT, EXITs 0
 *     if every check passed, else 1; exceptions EXIT 100 + vector.
 *   - seraph_idle_kernel.elf (-DSERAPH_IDLE): runs 1-2, starts the
 *     periodic timer and then, like Seraph OS's kernel_main, sits in
 *     `sti; hlt` forever: the VMM must deliver timer interrupts there and
 *     end the run as idle.
 */
#include "kernel_lib.h"

#define LAPIC_BASE 0xFEE00000ULL
#define LAPIC_TPR 0x080
#define LAPIC_EOI 0x0B0
#define LAPIC_SVR 0x0F0
#define LAPIC_ESR 0x280
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_LVT_LINT0 0x350
#define LAPIC_LVT_LINT1 0x360
#define LAPIC_LVT_ERROR 0x370
#define LAPIC_INITIAL 0x380
#define LAPIC_CURRENT 0x390
#define LAPIC_DIVIDE 0x3E0

#define LVT_MASKED 0x10000U
#define LVT_PERIODIC 0x20000U
#define LVT_EXTINT 0x700U

#define TIMER_VECTOR 0x20
#define PIC_MASTER_VECTOR 0x30
#define PIC_SLAVE_VECTOR 0x38
#define SPURIOUS_VECTOR 0xFF
#define ERROR_VECTOR 0x41
#define LAPIC_RESERVED 0x040 /* a reserved register: reading it is an error */

#define PIT_HZ 1193182ULL
#define PIT_COUNT_10MS 11932
#define PIT_COUNT_1MS 1193
#define TICKS_WANTED 10

/* Polls and halts give up after this many tries, so a broken timer model
 * ends the run with a failed check instead of hanging it. */
#define POLL_LIMIT 2000000U
#define HLT_LIMIT 100000U

static u32 failures;
static volatile u32 lapic_ticks;
static volatile u32 pit_ticks;

static void check(int ok, const char *what, u64 seen)
{
    if (ok)
        return;
    failures++;
    serial_puts("CHECK FAILED: ");
    serial_puts(what);
    serial_puts("\n  seen: ");
    serial_put_hex(seen);
    serial_puts("\n");
}

static void say(const char *text)
{
    serial_puts(text);
    hc_print(text, str_len(text));
}

/* ---- local APIC --------------------------------------------------------- */

static inline u32 lapic_read(u32 reg)
{
    return *(volatile u32 *)(LAPIC_BASE + reg);
}

static inline void lapic_write(u32 reg, u32 value)
{
    *(volatile u32 *)(LAPIC_BASE + reg) = value;
}

/* ---- IDT ------------------------------------------------------------------ */

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

typedef unsigned long long uword_t;

static struct idt_entry idt[256];

static void set_gate(u8 vector, void *handler)
{
    u64 at = (u64)handler;
    idt[vector].offset_low = (u16)at;
    idt[vector].selector = 0x08;
    idt[vector].ist = vector == 8 ? 1 : 0; /* double faults on IST1 */
    idt[vector].type_attr = 0x8E;          /* present, ring 0, interrupt gate */
    idt[vector].offset_mid = (u16)(at >> 16);
    idt[vector].offset_high = (u32)(at >> 32);
    idt[vector].zero = 0;
}

static void load_idt(void)
{
    struct idt_pointer p = {sizeof(idt) - 1, (u64)idt};
    __asm__ volatile("lidt %0" : : "m"(p));
}

__attribute__((noreturn)) static void fatal_exception(u32 vector, u64 rip)
{
    serial_puts("exception ");
    serial_put_dec(vector);
    serial_puts(" at rip ");
    serial_put_hex(rip);
    serial_puts("\n");
    for (;;)
        hypercall(SERAPH_HC_EXIT, 100 + vector, 0, 0, 0);
}

#define EXCEPTION(n)                                                               \
    __attribute__((interrupt)) static void exception_##n(struct interrupt_frame *f) \
    {                                                                              \
        fatal_exception(n, f->ip);                                                 \
    }
#define EXCEPTION_WITH_CODE(n)                                                         \
    __attribute__((interrupt)) static void exception_##n(struct interrupt_frame *f,    \
                                                         uword_t code)                \
    {                                                                                  \
        (void)code;                                                                    \
        fatal_exception(n, f->ip);                                                     \
    }

EXCEPTION(0)
EXCEPTION(6)
EXCEPTION_WITH_CODE(8)
EXCEPTION_WITH_CODE(14)

/* #GP is expected while probing MSRs: then skip the 2-byte rdmsr/wrmsr. */
static volatile u32 expect_gp;
static volatile u32 gp_seen;

__attribute__((interrupt)) static void exception_13(struct interrupt_frame *f, uword_t code)
{
    (void)code;
    if (!expect_gp)
        fatal_exception(13, f->ip);
    gp_seen++;
    f->ip += 2;
}

__attribute__((interrupt)) static void lapic_timer_isr(struct interrupt_frame *f)
{
    (void)f;
    lapic_ticks++;
    lapic_write(LAPIC_EOI, 0);
}

__attribute__((interrupt)) static void pit_isr(struct interrupt_frame *f)
{
    (void)f;
    pit_ticks++;
    outb(0x20, 0x20); /* non-specific EOI to the master PIC */
}

static volatile u32 lapic_errors;

__attribute__((interrupt)) static void lapic_error_isr(struct interrupt_frame *f)
{
    (void)f;
    lapic_errors++;
    lapic_write(LAPIC_EOI, 0);
}

__attribute__((interrupt)) static void spurious_isr(struct interrupt_frame *f)
{
    (void)f; /* spurious: no EOI */
}

static void install_idt(void)
{
    set_gate(0, exception_0);
    set_gate(6, exception_6);
    set_gate(8, exception_8);
    set_gate(13, exception_13);
    set_gate(14, exception_14);
    set_gate(TIMER_VECTOR, lapic_timer_isr);
    set_gate(PIC_MASTER_VECTOR, pit_isr);
    set_gate(PIC_MASTER_VECTOR + 7, spurious_isr);
    set_gate(PIC_SLAVE_VECTOR + 7, spurious_isr);
    set_gate(SPURIOUS_VECTOR, spurious_isr);
    set_gate(ERROR_VECTOR, lapic_error_isr);
    load_idt();
}

/* ---- MSRs ----------------------------------------------------------------- */

#define MSR_IA32_APIC_BASE 0x1B
#define MSR_NONEXISTENT 0x4B564D99 /* an unassigned index: #GP on hardware */

static u64 rdmsr(u32 index)
{
    u32 lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(index));
    return ((u64)hi << 32) | lo;
}

static void wrmsr(u32 index, u64 value)
{
    __asm__ volatile("wrmsr" : : "c"(index), "a"((u32)value), "d"((u32)(value >> 32)));
}

/* IA32_APIC_BASE reads the LAPIC's base with the enable and BSP bits;
 * writing it back is accepted; an unknown MSR and a reserved bit raise #GP. */
static void check_msrs(void)
{
    u64 base = rdmsr(MSR_IA32_APIC_BASE);
    check(base == 0xFEE00900ULL, "IA32_APIC_BASE reads 0xFEE00900", base);
    expect_gp = 1;
    gp_seen = 0;
    wrmsr(MSR_IA32_APIC_BASE, base);
    check(gp_seen == 0, "IA32_APIC_BASE write-back accepted", gp_seen);
    wrmsr(MSR_IA32_APIC_BASE, base | (1ULL << 40));
    check(gp_seen == 1, "IA32_APIC_BASE reserved bit raises #GP", gp_seen);
    (void)rdmsr(MSR_NONEXISTENT);
    check(gp_seen == 2, "unknown MSR raises #GP", gp_seen);
    expect_gp = 0;
    serial_puts("msr: IA32_APIC_BASE ");
    serial_put_hex(base);
    serial_puts("\n");
}

/* ---- scenarios ---------------------------------------------------------- */

/* A LAPIC *read* of a reserved register raises the error interrupt (LVT
 * error unmasked): it must arrive while the CPU then spins without any
 * exit, so the VMM has to look for interrupts after device reads too. */
static void lapic_error_interrupt(void)
{
    lapic_write(LAPIC_LVT_ERROR, ERROR_VECTOR);
    __asm__ volatile("sti");
    (void)lapic_read(LAPIC_RESERVED);
    for (u32 spins = 0; lapic_errors == 0 && spins < POLL_LIMIT; spins++)
        __asm__ volatile("pause");
    __asm__ volatile("cli");
    lapic_write(LAPIC_LVT_ERROR, LVT_MASKED);
    lapic_write(LAPIC_ESR, 0); /* latch and clear the recorded error */
    check(lapic_errors == 1, "LAPIC error interrupt after a reserved read", lapic_errors);
    serial_puts("lapic: error interrupt at vector 0x41\n");
}


/* Scenario 1: Seraph OS's 10 ms wait. Returns the number of polls. */
static u64 pit_wait_10ms(void)
{
    outb(0x43, 0x30); /* channel 0, lobyte/hibyte, mode 0 */
    outb(0x40, PIT_COUNT_10MS & 0xFF);
    outb(0x40, PIT_COUNT_10MS >> 8);
    for (u32 polls = 1; polls <= POLL_LIMIT; polls++) {
        outb(0x43, 0xE2); /* read-back: status of channel 0 */
        if (inb(0x40) & 0x80)
            return polls;
    }
    return 0;
}

/* Scenario 2: calibrate the LAPIC timer against the PIT. Returns ticks per 10 ms. */
static u32 lapic_calibrate(void)
{
    lapic_write(LAPIC_SVR, 0x1FF);
    lapic_write(LAPIC_TPR, 0);
    lapic_write(LAPIC_ESR, 0);
    lapic_write(LAPIC_ESR, 0);
    (void)lapic_read(LAPIC_ESR);
    lapic_write(LAPIC_LVT_TIMER, LVT_MASKED);
    lapic_write(LAPIC_LVT_LINT0, LVT_MASKED);
    lapic_write(LAPIC_LVT_LINT1, LVT_MASKED);
    lapic_write(LAPIC_LVT_ERROR, LVT_MASKED);
    lapic_write(LAPIC_DIVIDE, 3);
    lapic_write(LAPIC_INITIAL, 0xFFFFFFFFU);
    u64 polls = pit_wait_10ms();
    u32 current = lapic_read(LAPIC_CURRENT);
    check(polls != 0, "PIT read-back reports OUT", polls);
    check(current < 0xFFFFFFFFU, "LAPIC current count counts down", current);
    lapic_write(LAPIC_INITIAL, 0);
    return 0xFFFFFFFFU - current;
}

static void start_periodic_timer(u32 ticks_per_10ms)
{
    u32 period = ticks_per_10ms / 10;
    if (period == 0)
        period = 1;
    lapic_write(LAPIC_LVT_TIMER, TIMER_VECTOR | LVT_PERIODIC);
    lapic_write(LAPIC_INITIAL, period);
}

/* Halts until `*counter` reaches `wanted`; returns the HLTs it took. */
static u32 halt_until(volatile u32 *counter, u32 wanted)
{
    u32 halts = 0;
    while (*counter < wanted && halts < HLT_LIMIT) {
        __asm__ volatile("sti; hlt; cli");
        halts++;
    }
    return halts;
}

/* Scenario 3. */
__attribute__((unused)) static void lapic_periodic(u32 ticks_per_10ms)
{
    u64 t0 = (u64)hypercall(SERAPH_HC_GET_TIME, 0, 0, 0, 0);
    start_periodic_timer(ticks_per_10ms);
    halt_until(&lapic_ticks, TICKS_WANTED);
    lapic_write(LAPIC_LVT_TIMER, LVT_MASKED);
    lapic_write(LAPIC_INITIAL, 0);
    u64 elapsed = (u64)hypercall(SERAPH_HC_GET_TIME, 0, 0, 0, 0) - t0;
    check(lapic_ticks >= TICKS_WANTED, "LAPIC periodic timer ticks", lapic_ticks);
    /* Ten 1 ms periods cannot take less than 9 ms of host time. */
    check(elapsed >= 9000000ULL, "LAPIC period matches calibration", elapsed);
    serial_puts("lapic: ");
    serial_put_dec(lapic_ticks);
    serial_puts(" periodic ticks at vector 0x20\n");
}

/* Scenario 3b: the same periodic timer while the CPU spins with IF = 1 and
 * never halts, so every tick must interrupt running guest code (the VMM
 * has to kick the vCPU out of the guest at the deadline). */
__attribute__((unused)) static void lapic_while_spinning(u32 ticks_per_10ms)
{
    u32 start = lapic_ticks;
    start_periodic_timer(ticks_per_10ms);
    __asm__ volatile("sti");
    for (u32 spins = 0; lapic_ticks - start < TICKS_WANTED && spins < POLL_LIMIT; spins++)
        __asm__ volatile("pause");
    __asm__ volatile("cli");
    lapic_write(LAPIC_LVT_TIMER, LVT_MASKED);
    lapic_write(LAPIC_INITIAL, 0);
    u32 got = lapic_ticks - start;
    check(got >= TICKS_WANTED, "LAPIC ticks interrupt a spinning CPU", got);
    serial_puts("lapic: ");
    serial_put_dec(got);
    serial_puts(" ticks while spinning\n");
}

__attribute__((unused)) static void pic_init(void)
{
    static const u8 icw[2][4] = {{0x11, PIC_MASTER_VECTOR, 0x04, 0x01},
                                 {0x11, PIC_SLAVE_VECTOR, 0x02, 0x01}};
    for (int step = 0; step < 4; step++) {
        outb(step == 0 ? 0x20 : 0x21, icw[0][step]);
        outb(0x80, 0);
        outb(step == 0 ? 0xA0 : 0xA1, icw[1][step]);
        outb(0x80, 0);
    }
    outb(0x21, 0xFE); /* only IRQ0 */
    outb(0xA1, 0xFF);
}

/* Scenario 4. */
__attribute__((unused)) static void pit_irq0_through_pic(void)
{
    pic_init();
    lapic_write(LAPIC_LVT_LINT0, LVT_EXTINT);
    outb(0x43, 0x34); /* channel 0, lobyte/hibyte, mode 2 */
    outb(0x40, PIT_COUNT_1MS & 0xFF);
    outb(0x40, PIT_COUNT_1MS >> 8);
    halt_until(&pit_ticks, TICKS_WANTED);
    outb(0x21, 0xFF);
    outb(0x43, 0x30); /* back to mode 0: no more periodic edges */
    check(pit_ticks >= TICKS_WANTED, "PIT IRQ0 through the PIC", pit_ticks);
    serial_puts("pic: ");
    serial_put_dec(pit_ticks);
    serial_puts(" PIT ticks on IRQ0 at vector 0x30\n");
}

void kernel_main(const void *boot_info, u64 entry_rsp);

void kernel_main(const void *boot_info, u64 entry_rsp)
{
    (void)boot_info;
    (void)entry_rsp;
    serial_init();
    install_idt();
    say("timer kernel: start\n");
    check_msrs();
    lapic_error_interrupt();

    u32 ticks = lapic_calibrate();
    check(ticks > 0, "LAPIC calibration", ticks);
    serial_puts("lapic: ");
    serial_put_dec(ticks);
    serial_puts(" ticks in 10 ms\n");

#ifdef SERAPH_IDLE
    /* Like Seraph OS's kernel_main: periodic timer on, then idle forever. */
    start_periodic_timer(ticks);
    say("timer kernel: idle\n");
    for (;;)
        __asm__ volatile("sti; hlt");
#else
    lapic_periodic(ticks);
    lapic_while_spinning(ticks);
    pit_irq0_through_pic();
    if (failures == 0) {
        say("timer kernel: all checks passed\n");
    } else {
        serial_put_dec(failures);
        say(" timer checks failed\n");
    }
    for (;;)
        hypercall(SERAPH_HC_EXIT, failures == 0 ? 0 : 1, 0, 0, 0);
#endif
}
