/*
 * GDB_TARGET: a kernel with symbols for the GDB stub test. It calls
 * step_one() three times (each adds 1 to `counter`), then bad_path()
 * (which would exit 77; the test moves RIP to good_path(), which adds 100),
 * then writes 0x1234 to `watched` (the test's watchpoint), then EXITs with
 * `counter` as its status. Untouched by a debugger it exits 77.
 */
#include "pc.h"

volatile u64 counter;
volatile u64 watched;
const char greeting[] = "hello from the gdb guest";

__attribute__((noinline)) void step_one(void) { counter = counter + 1; }

__attribute__((noinline)) void good_path(void) { counter = counter + 100; }

/* Not noreturn as far as the compiler knows, so its caller goes on after
 * it: a debugger that moves RIP to good_path returns there. */
__attribute__((noinline)) void bad_path(void)
{
    serial_puts("gdb-target: bad path\n");
    if (counter < 1000)
        pc_exit(77);
}

void pc_main(int protocol, unsigned long info)
{
    (void)protocol;
    (void)info;
    serial_init();
    serial_puts(greeting);
    serial_puts("\n");
    for (int i = 0; i < 3; i++)
        step_one();
    bad_path();
    watched = 0x1234;
    serial_puts("gdb-target: done\n");
    pc_exit((u32)counter);
}
