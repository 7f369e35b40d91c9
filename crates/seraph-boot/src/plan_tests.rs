use super::*;
use crate::boot_info::{
    MEM_BOOT_INFO, MEM_CONVENTIONAL, MEM_KERNEL_IMAGE, MEM_KERNEL_STACK, MEM_LOADER_DATA, MEM_MMIO,
    MEM_RESERVED,
};
use crate::elf::test_elf::{build, higher_half_kernel, identity_kernel, load};
use crate::memory_map::validate;
use seraph_memory::{create_guest_memory, read_virt, translate};
use vm_memory::{Bytes, GuestAddress};

fn plan_for(bytes: &[u8], config: &BootConfig) -> (KernelImage, BootPlan) {
    let kernel = KernelImage::parse(bytes, config.ram_size).unwrap();
    let plan = BootPlan::new(&kernel, config).unwrap();
    (kernel, plan)
}

fn types(plan: &BootPlan) -> Vec<(u32, u64, u64)> {
    plan.memory_map
        .iter()
        .map(|d| (d.memory_type, d.phys_start, d.phys_end()))
        .collect()
}

#[test]
fn default_plan_uses_spec_addresses() {
    let (_, plan) = plan_for(&identity_kernel(), &BootConfig::default());
    assert_eq!(plan.page_tables.pml4(), 0x1000);
    assert_eq!(plan.page_tables.heap, None);
    assert_eq!(plan.gdt.base, 0xD000);
    assert_eq!(
        plan.ist_stack,
        Placement {
            base: 0xE000,
            size: 0x2000
        }
    );
    assert_eq!(plan.boot_info.base, 0x8_0000);
    assert_eq!(plan.memory_map_base, 0x8_0118);
    assert_eq!(
        plan.stack,
        Placement {
            base: 0x9_0000,
            size: 0x1_0000
        }
    );
    assert_eq!(
        plan.arena,
        Placement {
            base: 0x0100_0000,
            size: 0x0100_0000
        }
    );
    assert_eq!(plan.heap_backing, None);
    assert!(plan.relocations.is_empty());
    assert_eq!(
        types(&plan),
        vec![
            (MEM_RESERVED, 0, 0x1000),
            (MEM_RESERVED, 0x1000, 0xB000),
            (MEM_CONVENTIONAL, 0xB000, 0xD000),
            (MEM_RESERVED, 0xD000, 0xE000),
            (MEM_RESERVED, 0xE000, 0x1_0000),
            (MEM_CONVENTIONAL, 0x1_0000, 0x8_0000),
            (MEM_BOOT_INFO, 0x8_0000, 0x8_1000),
            (MEM_CONVENTIONAL, 0x8_1000, 0x9_0000),
            (MEM_KERNEL_STACK, 0x9_0000, 0xA_0000),
            (MEM_CONVENTIONAL, 0xA_0000, 0x10_0000),
            (MEM_KERNEL_IMAGE, 0x10_0000, 0x10_5000),
            (MEM_CONVENTIONAL, 0x10_5000, 0x0100_0000),
            (MEM_LOADER_DATA, 0x0100_0000, 0x0200_0000),
            (MEM_CONVENTIONAL, 0x0200_0000, 0x2000_0000),
            (MEM_MMIO, 0xC000_0000, 0xC100_0000),
            (MEM_MMIO, 0xD000_0000, 0xE000_0000),
            (MEM_MMIO, 0xFEE0_0000, 0xFEE0_1000),
        ]
    );
}

#[test]
fn heap_option_places_backing_at_default() {
    let config = BootConfig {
        map_heap: true,
        ..BootConfig::default()
    };
    let (_, plan) = plan_for(&identity_kernel(), &config);
    assert_eq!(
        plan.heap_backing,
        Some(Placement {
            base: 0x0200_0000,
            size: 0x0400_0000
        })
    );
    assert_eq!(
        plan.page_tables.heap,
        Some(HeapMapping {
            backing_phys: 0x0200_0000
        })
    );
    assert!(plan.relocations.is_empty());
    assert_eq!(validate(&plan.memory_map, config.ram_size), Ok(()));
}

#[test]
fn higher_half_kernel_moves_low_structures() {
    let config = BootConfig::default();
    let bytes = higher_half_kernel();
    let (kernel, plan) = plan_for(&bytes, &config);
    // Kernel occupies 0..0x233000: everything low moves above it.
    assert_eq!(
        plan.kernel,
        Placement {
            base: 0,
            size: 0x23_3000
        }
    );
    assert_eq!(plan.page_tables.base, 0x23_3000);
    assert_eq!(plan.gdt.base, 0x23_D000);
    assert_eq!(plan.ist_stack.base, 0x23_E000);
    assert_eq!(plan.boot_info.base, 0x24_0000);
    assert_eq!(plan.stack.base, 0x24_1000);
    assert_eq!(plan.arena.base, 0x0100_0000);
    let moved: Vec<(&str, u64, u64)> = plan
        .relocations
        .iter()
        .map(|r| (r.what, r.default, r.actual))
        .collect();
    assert_eq!(
        moved,
        vec![
            ("page tables", 0x1000, 0x23_3000),
            ("GDT and TSS", 0xD000, 0x23_D000),
            ("IST1 stack", 0xE000, 0x23_E000),
            ("boot info and memory map", 0x8_0000, 0x24_0000),
            ("initial stack", 0x9_0000, 0x24_1000),
        ]
    );
    // No low reserved page: the kernel image starts at 0.
    assert_eq!(types(&plan)[0], (MEM_KERNEL_IMAGE, 0, 0x23_3000));

    let mem = create_guest_memory(config.ram_size).unwrap();
    let entry = plan.write(&mem, &kernel, &bytes).unwrap();
    assert_eq!(entry.cr3, 0x23_3000);
    assert_eq!(entry.rdi, 0x24_0000);
    assert_eq!(entry.rsp, 0x25_1000);
    assert_eq!(entry.rip, 0xFFFF_8000_0000_0040);
    assert_eq!(entry.gdt.gdt_base, 0x23_D000);
    assert_eq!(entry.gdt.tss_base, 0x23_D080);
    let mut info = [0u8; 280];
    mem.read_slice(&mut info, GuestAddress(0x24_0000)).unwrap();
    let u64_at = |off: usize| u64::from_le_bytes(info[off..off + 8].try_into().unwrap());
    assert_eq!(u64_at(48), 0x24_0118, "memory_map_base");
    assert_eq!(u64_at(80), 0, "kernel_phys_base");
    assert_eq!(u64_at(88), 0xFFFF_8000_0000_0000, "kernel_virt_base");
    assert_eq!(u64_at(96), 0x23_3000, "kernel_size");
    assert_eq!(u64_at(120), 0x24_1000, "stack_phys");
    assert_eq!(u64_at(152), 0x23_3000, "pml4_phys");
    // The entry point translates through the new tables to the kernel's bytes.
    assert_eq!(translate(&mem, entry.cr3, entry.rip), Ok(0x40));
    let mut code = [0u8; 2];
    read_virt(&mem, entry.cr3, entry.rip, &mut code).unwrap();
    assert_eq!(code, [0x11, 0x11]);
}

#[test]
fn write_then_read_back_for_several_ram_sizes() {
    for (ram_mib, map_heap) in [
        (64, false),
        (96, true),
        (512, false),
        (1026, true),
        (2050, false),
    ] {
        let config = BootConfig {
            ram_size: ram_mib * MIB,
            map_heap,
            ..BootConfig::default()
        };
        let bytes = identity_kernel();
        let (kernel, plan) = plan_for(&bytes, &config);
        assert!(
            plan.relocations.is_empty(),
            "{ram_mib} MiB: {:?}",
            plan.relocations
        );
        assert_eq!(
            validate(&plan.memory_map, config.ram_size),
            Ok(()),
            "{ram_mib} MiB"
        );
        let mem = create_guest_memory(config.ram_size).unwrap();
        let entry = plan.write(&mem, &kernel, &bytes).unwrap();
        assert_eq!(
            (entry.rip, entry.rsp, entry.rdi, entry.cr3),
            (0x10_0010, 0xA_0000, 0x8_0000, 0x1000)
        );

        let mut info = [0u8; 280];
        mem.read_slice(&mut info, GuestAddress(0x8_0000)).unwrap();
        assert_eq!(info, plan.boot_info().to_bytes());
        assert_eq!(info[0..8], [0x54, 0x42, 0x48, 0x50, 0x41, 0x52, 0x45, 0x53]);
        let u32_at = |off: usize| u32::from_le_bytes(info[off..off + 4].try_into().unwrap());
        let u64_at = |off: usize| u64::from_le_bytes(info[off..off + 8].try_into().unwrap());
        assert_eq!(u32_at(12), 0x11, "flags FRAMEBUFFER|SERIAL");
        assert_eq!(u64_at(16), 0xC000_0000);
        assert_eq!(u64_at(24), 3 * MIB);
        assert_eq!(
            (u32_at(32), u32_at(36), u32_at(40), u32_at(44)),
            (1024, 768, 4096, 0)
        );
        assert_eq!(u64_at(48), 0x8_0118);
        let count = u32_at(76) as usize;
        assert_eq!(count, plan.memory_map.len());
        assert_eq!(u64_at(56), count as u64 * 40);
        assert_eq!((u64_at(64), u32_at(72)), (40, 1));
        assert_eq!(
            (u64_at(80), u64_at(88), u64_at(96)),
            (0x10_0000, 0x10_0000, 0x5000)
        );
        assert_eq!((u64_at(120), u64_at(128)), (0x9_0000, 0x1_0000));
        assert_eq!(
            (u64_at(136), u64_at(144), u64_at(152)),
            (0x0100_0000, 0x0100_0000, 0x1000)
        );

        // Decode the map from guest memory and validate it.
        let mut raw = vec![0u8; count * 40];
        mem.read_slice(&mut raw, GuestAddress(0x8_0118)).unwrap();
        let decoded: Vec<MemoryDescriptor> = raw
            .chunks_exact(40)
            .map(|c| MemoryDescriptor {
                memory_type: u32::from_le_bytes(c[0..4].try_into().unwrap()),
                phys_start: u64::from_le_bytes(c[8..16].try_into().unwrap()),
                virt_start: u64::from_le_bytes(c[16..24].try_into().unwrap()),
                page_count: u64::from_le_bytes(c[24..32].try_into().unwrap()),
                attribute: u64::from_le_bytes(c[32..40].try_into().unwrap()),
            })
            .collect();
        assert_eq!(decoded, plan.memory_map);
        assert_eq!(validate(&decoded, config.ram_size), Ok(()));
        // The boot info is reachable at RDI through the identity map, and the TSS has IST1.
        let mut magic = [0u8; 8];
        read_virt(&mem, entry.cr3, entry.rdi, &mut magic).unwrap();
        assert_eq!(u64::from_le_bytes(magic), MAGIC);
        let ist1: u64 = mem.read_obj(GuestAddress(entry.gdt.tss_base + 36)).unwrap();
        assert_eq!(ist1, 0x1_0000);
        // Last RAM page reachable through the physical map.
        let top = 0xFFFF_8000_0000_0000 + config.ram_size - 8;
        assert_eq!(translate(&mem, entry.cr3, top), Ok(config.ram_size - 8));
    }
}

#[test]
fn big_kernel_pushes_arena_or_fails_with_advice() {
    // Kernel bss covers the default arena: the arena moves above it.
    let bytes = build(0x10_0000, &[load(0x10_0000, 0, 0x10, 0x0180_0000, 5)]);
    let (_, plan) = plan_for(
        &bytes,
        &BootConfig {
            ram_size: 64 * MIB,
            ..BootConfig::default()
        },
    );
    assert_eq!(plan.arena.base, 0x01A0_0000);
    assert_eq!(
        plan.relocations,
        vec![Relocation {
            what: "primordial arena",
            default: 0x0100_0000,
            actual: 0x01A0_0000
        }]
    );

    // Kernel fills most of RAM: no room for the arena.
    let bytes = build(0x10_0000, &[load(0x10_0000, 0, 0x10, 0x0380_0000, 5)]);
    let config = BootConfig {
        ram_size: 64 * MIB,
        ..BootConfig::default()
    };
    let kernel = KernelImage::parse(&bytes, config.ram_size).unwrap();
    let err = BootPlan::new(&kernel, &config).unwrap_err();
    assert!(
        matches!(
            err,
            PlanError::NoRoom {
                what: "primordial arena",
                needed_mib: 76,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("raise --memory to at least 76 MiB")
    );

    // The heap option does not fit in 64 MiB.
    let config = BootConfig {
        ram_size: 64 * MIB,
        map_heap: true,
        ..BootConfig::default()
    };
    let kernel = KernelImage::parse(&identity_kernel(), config.ram_size).unwrap();
    assert!(matches!(
        BootPlan::new(&kernel, &config),
        Err(PlanError::NoRoom {
            what: "heap backing",
            ..
        })
    ));
}

#[test]
fn config_errors_and_kernel_mismatch() {
    let kernel = KernelImage::parse(&identity_kernel(), DEFAULT_RAM).unwrap();
    for fb in [
        FramebufferConfig {
            width: 0,
            ..FramebufferConfig::default()
        },
        FramebufferConfig {
            stride: 4095,
            ..FramebufferConfig::default()
        },
        FramebufferConfig {
            width: 4096,
            height: 4096,
            stride: 16384,
            format: 0,
        },
        FramebufferConfig {
            format: 4,
            ..FramebufferConfig::default()
        },
    ] {
        let config = BootConfig {
            framebuffer: fb,
            ..BootConfig::default()
        };
        assert!(
            matches!(
                BootPlan::new(&kernel, &config),
                Err(PlanError::Framebuffer(_))
            ),
            "{fb:?}"
        );
    }
    let config = BootConfig {
        ram_size: 100 * MIB + 1,
        ..BootConfig::default()
    };
    assert!(matches!(
        BootPlan::new(&kernel, &config),
        Err(PlanError::Memory(MemoryError::RamSizeNotAligned { .. }))
    ));
    // A kernel parsed for more RAM than the plan's.
    let big = KernelImage::parse(
        &build(0x0500_0000, &[load(0x0500_0000, 0, 0, 0x10, 5)]),
        DEFAULT_RAM,
    )
    .unwrap();
    let small = BootConfig {
        ram_size: 64 * MIB,
        ..BootConfig::default()
    };
    assert!(matches!(
        BootPlan::new(&big, &small),
        Err(PlanError::Memory(MemoryError::OutOfRam { .. }))
    ));

    let plan = BootPlan::new(&kernel, &BootConfig::default()).unwrap();
    let other_bytes = higher_half_kernel();
    let other = KernelImage::parse(&other_bytes, DEFAULT_RAM).unwrap();
    let mem = create_guest_memory(DEFAULT_RAM).unwrap();
    assert!(matches!(
        plan.write(&mem, &other, &other_bytes),
        Err(PlanError::KernelMismatch)
    ));
}

#[test]
fn structures_the_kernel_keeps_are_never_reclaimable_types() {
    use crate::claims::RECLAIMABLE_TYPES;
    for bytes in [identity_kernel(), higher_half_kernel()] {
        for (ram_mib, map_heap) in [
            (64, false),
            (512, false),
            (1026, true),
            (2050, false),
            (3072, true),
        ] {
            let config = BootConfig {
                ram_size: ram_mib * MIB,
                map_heap,
                ..BootConfig::default()
            };
            let (_, plan) = plan_for(&bytes, &config);
            let mut kept = vec![
                (
                    "page tables",
                    plan.page_tables.base,
                    plan.page_tables.base + plan.page_tables.size(),
                ),
                ("GDT and TSS", plan.gdt.base, plan.gdt.end()),
                ("IST1 stack", plan.ist_stack.base, plan.ist_stack.end()),
                ("boot info", plan.boot_info.base, plan.boot_info.end()),
                ("initial stack", plan.stack.base, plan.stack.end()),
                ("kernel image", plan.kernel.base, plan.kernel.end()),
            ];
            if let Some(heap) = plan.heap_backing {
                kept.push(("heap backing", heap.base, heap.end()));
            }
            for (what, start, end) in kept {
                for d in plan
                    .memory_map
                    .iter()
                    .filter(|d| d.phys_start < end && start < d.phys_end())
                {
                    assert!(
                        !RECLAIMABLE_TYPES.contains(&d.memory_type),
                        "{ram_mib} MiB, heap {map_heap}: {what} {start:#x}-{end:#x} typed {}",
                        d.memory_type
                    );
                }
            }
            // The arena stays reclaimable loader data: the kernel reserves it by itself.
            let arena = plan
                .memory_map
                .iter()
                .find(|d| d.phys_start == plan.arena.base)
                .unwrap();
            assert_eq!(arena.memory_type, MEM_LOADER_DATA);
        }
    }
}
