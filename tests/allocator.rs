//! Issue #12: a guest that behaves like Seraph OS's physical memory manager
//! (frees memory types 1, 2, 3 and 7, reserves only what Seraph OS reserves,
//! keeps the boot PML4, then scribbles over every free page) must still have
//! working paging, stack, boot info, GDT and TSS afterwards: everything the
//! kernel keeps using is typed reserved or a Seraph type, wherever the boot
//! plan put it. Both link styles, default and relocated boot structures, and
//! RAM sizes that add physical-map tables.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use seraph_v::boot::BootPlan;
use seraph_v::vmm::{MachineConfig, RunOutcome};

const MIB: u64 = 1 << 20;
const PAGE: u64 = 4096;

/// Pages Seraph OS's allocator would hand out under `plan`: types 1, 2, 3
/// and 7, minus the first 1 MiB, the stack, the arena and the kernel image
/// (only when kernel_phys_base != 0).
fn free_pages(plan: &BootPlan) -> u64 {
    let mut reserved = vec![
        (0, MIB),
        (plan.stack.base, plan.stack.end()),
        (plan.arena.base, plan.arena.end()),
    ];
    if plan.kernel_phys_base != 0 {
        reserved.push((
            plan.kernel_phys_base,
            plan.kernel_phys_base + plan.kernel_size,
        ));
    }
    plan.memory_map
        .iter()
        .filter(|d| [1, 2, 3, 7].contains(&d.memory_type))
        .flat_map(|d| (0..d.page_count).map(move |i| d.phys_start + i * PAGE))
        .filter(|page| !reserved.iter().any(|&(s, e)| *page + PAGE > s && *page < e))
        .count() as u64
}

/// Boots `kernel` and checks its run; `None` when KVM tests are skipped
/// (SERAPH_V_SKIP_KVM=1, which `kvm_or_skip` reports).
fn run_allocator(name: &str, kernel: &[u8], memory_mib: u64, map_heap: bool) -> Option<BootPlan> {
    let kvm = common::kvm_or_skip(name)?;
    let config = MachineConfig {
        memory_size: memory_mib * MIB,
        map_heap,
        ..common::quiet()
    };
    let (machine, report) = common::boot(&kvm, config, kernel);
    let serial = common::text(&report.serial);
    let plan = machine
        .boot_plan()
        .expect("a Seraph kernel has a boot plan")
        .clone();
    let pages = free_pages(&plan);
    assert!(pages > 1000, "{name}: {pages} free pages");
    assert!(
        serial.contains(&format!("allocator: scribbled {pages} pages\n")),
        "{name}: serial:\n{serial}"
    );
    assert!(
        serial.ends_with(seraph_guests::ALLOCATOR_OK),
        "{name}: serial:\n{serial}\noutcome: {:?}",
        report.outcome
    );
    assert_eq!(
        report.outcome,
        RunOutcome::GuestExit { status: 0 },
        "{name}"
    );
    Some(plan)
}

#[test]
fn identity_kernel_with_default_boot_structures_survives_its_allocator() {
    let Some(plan) = run_allocator(
        "allocator_identity",
        seraph_guests::ALLOCATOR_IDENTITY,
        64,
        false,
    ) else {
        return;
    };
    assert_eq!(plan.page_tables.pml4(), 0x1000, "default places");
    assert!(plan.relocations.is_empty());
}

#[test]
fn higher_half_kernel_with_relocated_boot_structures_survives_its_allocator() {
    let Some(plan) = run_allocator(
        "allocator_higher_half",
        seraph_guests::ALLOCATOR_HIGHER_HALF,
        64,
        false,
    ) else {
        return;
    };
    // The kernel sits at physical 0: the page tables moved above 1 MiB,
    // where the 1 MiB reservation no longer hides them.
    assert_eq!(plan.kernel_phys_base, 0);
    assert!(
        plan.page_tables.pml4() >= MIB,
        "{:#x}",
        plan.page_tables.pml4()
    );
}

/// A RAM size over 1 GiB: the physical map needs more than one PD, so the
/// page tables grow (and, relocated, move further).
fn big_ram(name: &str, kernel: &[u8], mib: u64, heap: bool) {
    let Some(plan) = run_allocator(name, kernel, mib, heap) else {
        return;
    };
    assert!(plan.page_tables.size() > 0xA000, "{name}");
    assert_eq!(plan.heap_backing.is_some(), heap, "{name}");
}

#[test]
fn identity_kernel_with_2050_mib_survives_its_allocator() {
    big_ram(
        "allocator_identity_2050m",
        seraph_guests::ALLOCATOR_IDENTITY_SPARSE,
        2050,
        false,
    );
}

#[test]
fn higher_half_kernel_with_1026_mib_survives_its_allocator() {
    big_ram(
        "allocator_higher_half_1026m",
        seraph_guests::ALLOCATOR_HIGHER_HALF_SPARSE,
        1026,
        false,
    );
}

#[test]
fn higher_half_kernel_with_2050_mib_and_the_heap_map_survives_its_allocator() {
    big_ram(
        "allocator_higher_half_2050m_heap",
        seraph_guests::ALLOCATOR_HIGHER_HALF_SPARSE,
        2050,
        true,
    );
}
