//! Unit tests of `explain_x86` and `explain_halted_handler` on the boot
//! page tables Seraph-V builds (identity map of 4 GiB in 2 MiB pages).

use seraph_hypervisor::{
    DescriptorTable, InstructionBytes, PendingException, Regs, SpecialRegs, VcpuEvents,
};
use seraph_memory::vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use seraph_memory::{PageTableLayout, create_guest_memory, write_page_tables};

use super::explain::{X86FaultState, explain_halted_handler, explain_x86};
use crate::report::{Access, Cause, Level};

const MIB: u64 = 1 << 20;
const UNMAPPED: u64 = 0x0000_1234_0000_0000;

fn booted() -> (GuestMemoryMmap, Regs, SpecialRegs) {
    let mem = create_guest_memory(64 * MIB).unwrap();
    write_page_tables(&mem, &PageTableLayout::new(0x1000, 64 * MIB)).unwrap();
    let regs = Regs {
        rip: 0x10_0010,
        rsp: 0x9_FFF0,
        rflags: 0x2,
        ..Default::default()
    };
    let mut sregs = SpecialRegs {
        cr0: 0x8005_0033,
        cr3: 0x1000,
        cr4: 0x620,
        efer: 0xD00,
        gdt: DescriptorTable {
            base: 0,
            limit: 0x27,
        },
        ..Default::default()
    };
    sregs.cs.selector = 0x8;
    (mem, regs, sregs)
}

fn state<'a>(
    regs: &'a Regs,
    sregs: &'a SpecialRegs,
    events: Option<&'a VcpuEvents>,
    insn: Option<&'a InstructionBytes>,
) -> X86FaultState<'a> {
    X86FaultState {
        regs,
        sregs,
        events,
        instruction: insn,
    }
}

#[test]
fn a_reported_page_fault_is_explained_with_its_level() {
    let (mem, regs, mut sregs) = booted();
    sregs.cr2 = UNMAPPED;
    let events = VcpuEvents {
        exception: Some(PendingException {
            vector: 14,
            error_code: Some(2),
            injected: true,
        }),
        ..Default::default()
    };
    let r = explain_x86(&mem, &state(&regs, &sregs, Some(&events), None));
    assert_eq!(r.mnemonic, "#PF");
    assert_eq!(r.access, Some(Access::Write));
    assert_eq!(
        (r.cause, r.level),
        (Some(Cause::NotPresent), Some(Level::Pml4))
    );
    assert_eq!(
        r.to_string(),
        "#PF page fault at rip 0x100010: write to 0x123400000000 \
         (not present at PML4 level; error code 0x2: write, supervisor, not-present); \
         #PF cannot be delivered: the IDT is empty (limit 0)"
    );
}

#[test]
fn without_events_the_instruction_at_rip_names_the_fault() {
    let (mem, mut regs, sregs) = booted();
    // mov (%rax),%rax with RAX unmapped: a read #PF at the PML4.
    regs.rax = UNMAPPED;
    let mov = InstructionBytes::from_slice(&[0x48, 0x8B, 0x00]);
    let r = explain_x86(&mem, &state(&regs, &sregs, None, Some(&mov)));
    assert_eq!((r.mnemonic, r.address), ("#PF", Some(UNMAPPED)));
    assert_eq!(r.access, Some(Access::Read));
    assert_eq!(r.level, Some(Level::Pml4));
    assert_eq!(
        r.syndrome.as_deref(),
        Some("error code 0x0: read, supervisor, not-present")
    );
    // The same with a non-canonical RAX: #GP(0).
    regs.rax = 0x8000_0000_0000;
    let r = explain_x86(&mem, &state(&regs, &sregs, None, Some(&mov)));
    assert_eq!((r.mnemonic, r.cause), ("#GP", Some(Cause::NonCanonical)));
    assert!(r.to_string().contains("read from 0x800000000000"), "{r}");
    assert!(r.to_string().contains("error code 0x0: no selector"), "{r}");
    // The bytes are read from guest memory when the caller has none.
    assert!(
        mem.write_slice(&[0x0F, 0x30], GuestAddress(regs.rip))
            .is_ok()
    );
    regs.rcx = 0xC000_DEAD;
    let r = explain_x86(&mem, &state(&regs, &sregs, None, None));
    assert_eq!(r.mnemonic, "#GP");
    assert!(r.to_string().contains("wrmsr of MSR 0xc000dead"), "{r}");
}

#[test]
fn an_unfetchable_rip_cr2_and_nothing() {
    let (mem, mut regs, mut sregs) = booted();
    regs.rip = UNMAPPED + 0x10;
    let r = explain_x86(&mem, &state(&regs, &sregs, None, None));
    assert_eq!((r.mnemonic, r.access), ("#PF", Some(Access::Execute)));
    assert_eq!(r.address, Some(UNMAPPED + 0x10));
    assert!(
        r.to_string()
            .contains("instruction-fetch, supervisor, not-present"),
        "{r}"
    );
    // RIP fine, instruction not understood, CR2 unmapped.
    regs.rip = 0x10_0000;
    assert!(mem.write_slice(&[0x90; 15], GuestAddress(regs.rip)).is_ok());
    sregs.cr2 = 0x2_0000_0000;
    let r = explain_x86(&mem, &state(&regs, &sregs, None, None));
    assert_eq!(
        (r.mnemonic, r.address, r.level),
        ("#PF", Some(0x2_0000_0000), Some(Level::Pdpt))
    );
    assert!(r.to_string().contains("derived from cr2"), "{r}");
    // CR2 mapped: no explanation, but the bytes are shown.
    sregs.cr2 = 0x1000;
    let r = explain_x86(&mem, &state(&regs, &sregs, None, None));
    assert_eq!(r.mnemonic, "shutdown");
    assert!(r.to_string().contains("instruction at rip: 90 90"), "{r}");
}

#[test]
fn delivery_problems_are_named() {
    let (mem, mut regs, mut sregs) = booted();
    // An IDT at 0x20000 with a present #PF gate whose handler is unmapped,
    // no #DF gate, and a stack that is not mapped.
    let handler = UNMAPPED;
    let mut gate = [0u8; 16];
    gate[0..2].copy_from_slice(&(handler as u16).to_le_bytes());
    gate[2..4].copy_from_slice(&8u16.to_le_bytes());
    gate[5] = 0x8E;
    gate[6..8].copy_from_slice(&((handler >> 16) as u16).to_le_bytes());
    gate[8..12].copy_from_slice(&((handler >> 32) as u32).to_le_bytes());
    assert!(
        mem.write_slice(&gate, GuestAddress(0x2_0000 + 14 * 16))
            .is_ok()
    );
    sregs.idt = DescriptorTable {
        base: 0x2_0000,
        limit: 16 * 16 - 1,
    };
    regs.rsp = 0x3_0000_0000;
    sregs.cr2 = 0x3_0000_0000;
    let events = VcpuEvents {
        exception: Some(PendingException {
            vector: 14,
            error_code: Some(2),
            injected: false,
        }),
        ..Default::default()
    };
    let text = explain_x86(&mem, &state(&regs, &sregs, Some(&events), None)).to_string();
    assert!(
        text.contains(
            "#PF handler at 0x123400000000 cannot be fetched (not present at PML4 level)"
        ),
        "{text}"
    );
    assert!(
        text.contains("the stack at 0x2fffffff8 cannot take the frame (not present at PDPT level)"),
        "{text}"
    );
    assert!(
        text.contains("nor can #DF: the IDT gate for vector 0x08 is not present"),
        "{text}"
    );
    // #GP beyond the limit.
    sregs.idt.limit = 13 * 16 - 1;
    let events = VcpuEvents {
        exception: Some(PendingException {
            vector: 13,
            error_code: Some(0),
            injected: false,
        }),
        ..Default::default()
    };
    let text = explain_x86(&mem, &state(&regs, &sregs, Some(&events), None)).to_string();
    assert!(
        text.starts_with("#GP general protection at rip 0x100010 (error code 0x0"),
        "{text}"
    );
    assert!(
        text.contains("vector 0x0d is beyond the IDT limit 0xcf"),
        "{text}"
    );
}

#[test]
fn a_halted_page_fault_handler_is_found_and_its_frame_read() {
    let (mem, mut regs, mut sregs) = booted();
    let handler = 0x10_0200u64;
    let mut gate = [0u8; 16];
    gate[0..2].copy_from_slice(&(handler as u16).to_le_bytes());
    gate[2..4].copy_from_slice(&8u16.to_le_bytes());
    gate[5] = 0x8E;
    gate[6..8].copy_from_slice(&((handler >> 16) as u16).to_le_bytes());
    assert!(
        mem.write_slice(&gate, GuestAddress(0x2_0000 + 14 * 16))
            .is_ok()
    );
    sregs.idt = DescriptorTable {
        base: 0x2_0000,
        limit: 32 * 16 - 1,
    };
    sregs.cr2 = UNMAPPED;
    // Frame: error code 2, RIP 0x100040, CS 8, RFLAGS 0x202, RSP, SS 0x10.
    let frame: Vec<u8> = [2u64, 0x10_0040, 8, 0x202, 0x9_FFF0, 0x10]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect();
    regs.rsp = 0x9_FFC0;
    assert!(mem.write_slice(&frame, GuestAddress(regs.rsp)).is_ok());
    regs.rip = handler + 3;
    let r = explain_halted_handler(&mem, &regs, &sregs).unwrap();
    assert_eq!(
        r.to_string(),
        "#PF page fault at rip 0x100040: write to 0x123400000000 \
         (not present at PML4 level; error code 0x2: write, supervisor, not-present); \
         the guest's handler at 0x100200 took it and halts at rip 0x100203"
    );
    // A RIP below every handler is not in one.
    regs.rip = 0x10_0100;
    assert!(explain_halted_handler(&mem, &regs, &sregs).is_none());
    // A moved RSP: the frame is refused, the handler still named.
    regs.rip = handler + 3;
    regs.rsp = 0x9_FFC8;
    let r = explain_halted_handler(&mem, &regs, &sregs).unwrap();
    assert_eq!(r.pc, None);
    assert!(
        r.to_string().contains("not readable or has been moved"),
        "{r}"
    );
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Any register state over boot tables with a garbage page (IDT,
        /// stack, tables all possibly pointing into it): both explainers
        /// finish, and the line starts with the report's mnemonic.
        #[test]
        fn any_state_is_explained_without_a_panic(
            garbage in proptest::collection::vec(any::<u8>(), 4096),
            rip: u64, rsp: u64, rax: u64, rbx: u64, cr2: u64,
            cr3 in prop_oneof![Just(0x1000u64), Just(0x2_0000u64), any::<u64>()],
            idt_base in prop_oneof![Just(0x2_0000u64), any::<u64>()],
            idt_limit: u16,
            insn in proptest::collection::vec(any::<u8>(), 0..16),
            vector in proptest::option::of(any::<u8>()),
            code in proptest::option::of(any::<u32>()),
        ) {
            let (mem, mut regs, mut sregs) = booted();
            prop_assert!(mem.write_slice(&garbage, GuestAddress(0x2_0000)).is_ok());
            (regs.rip, regs.rsp, regs.rax, regs.rbx) = (rip, rsp, rax, rbx);
            (sregs.cr2, sregs.cr3) = (cr2, cr3);
            sregs.idt = DescriptorTable { base: idt_base, limit: idt_limit };
            let events = VcpuEvents {
                exception: vector.map(|vector| PendingException {
                    vector,
                    error_code: code,
                    injected: true,
                }),
                ..Default::default()
            };
            let bytes = InstructionBytes::from_slice(&insn);
            let r = explain_x86(&mem, &state(&regs, &sregs, Some(&events), Some(&bytes)));
            prop_assert!(r.to_string().starts_with(r.mnemonic));
            let r = explain_x86(&mem, &state(&regs, &sregs, None, None));
            prop_assert!(r.to_string().starts_with(r.mnemonic));
            if let Some(r) = explain_halted_handler(&mem, &regs, &sregs) {
                prop_assert!(r.to_string().starts_with(r.mnemonic));
            }
        }
    }
}
