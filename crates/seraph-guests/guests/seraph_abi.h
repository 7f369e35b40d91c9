/*
 * Seraph-V guest ABI constants, shared by the C test kernel and the
 * assembly guests (both go through the C preprocessor).
 *
 * Hypercalls: RAX = number, arguments in RDI, RSI, RDX, RCX, result in RAX.
 * Transport: `out 0xE4, eax` (the imm8 port form, so RDX stays free for the
 * third argument). The VMM reads the registers and writes RAX back before
 * the guest continues.
 */
#ifndef SERAPH_ABI_H
#define SERAPH_ABI_H

#define SERAPH_DOORBELL_PORT 0xE4

#define SERAPH_HC_PRINT    0
#define SERAPH_HC_EXIT     1
#define SERAPH_HC_GET_TIME 2

#define SERAPH_EFAULT 14
#define SERAPH_EINVAL 22
#define SERAPH_ENOSYS 38

#define SERAPH_CPUID_SIGNATURE_LEAF 0x40000000
#define SERAPH_CPUID_FEATURES_LEAF  0x40000001

/* COM1 16550 UART. */
#define COM1_BASE 0x3F8
#define COM1_THR  (COM1_BASE + 0)
#define COM1_DLL  (COM1_BASE + 0)
#define COM1_IER  (COM1_BASE + 1)
#define COM1_DLM  (COM1_BASE + 1)
#define COM1_FCR  (COM1_BASE + 2)
#define COM1_LCR  (COM1_BASE + 3)
#define COM1_MCR  (COM1_BASE + 4)
#define COM1_LSR  (COM1_BASE + 5)
#define COM1_LSR_THRE 0x20

/* How many times a guest polls LSR before writing a byte anyway, so a UART
 * model that never reports THRE cannot hang a guest forever. */
#define COM1_POLL_LIMIT 1000

#endif
