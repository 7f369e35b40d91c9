/*
 * FAULT_GP: IF = 0 and an IDT of 32 gates where only #PF (14) is present
 * (its handler EXITs 3). At 0x100080 the guest faults with #GP(0):
 *   default:             `movq $1, (%rax)` with RAX = 0x0000800000000000,
 *                        a non-canonical address;
 *   FAULT_GP_WRMSR=1:    `wrmsr` of MSR 0xC0DE0001, which nothing knows
 *                        (the hypervisor refuses it with #GP).
 * The #GP gate is absent (#NP), and so is #DF's: the CPU triple-faults.
 * No output.
 */
#include "seraph_abi.h"
#include "common.inc"
#include "fault.inc"

    GUEST_ENTRY
    cli
    FAULT_IDT_LOAD
    FAULT_GATE 14, fault_gp_pf_handler
#ifdef FAULT_GP_WRMSR
    mov     $0xC0DE0001, %ecx
    xor     %eax, %eax
    xor     %edx, %edx
    .org    0x80, 0x90                      /* the fault sits at 0x100080 */
    wrmsr
#else
    movabs  $0x0000800000000000, %rax
    .org    0x80, 0x90                      /* the fault sits at 0x100080 */
    movq    $1, (%rax)
#endif
    /* Unreachable on a correct VMM. */
    EXIT    2
    HALT_FOREVER

fault_gp_pf_handler:
    EXIT    3
    HALT_FOREVER
