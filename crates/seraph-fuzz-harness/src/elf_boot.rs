//! The `elf_boot` target: a kernel file from the guest's author, all the way
//! to guest memory.

use std::sync::{Mutex, OnceLock};

use seraph_boot::boot_info::BootInfo;
use seraph_boot::{BootConfig, BootPlan, FramebufferConfig, KernelImage, validate};
use seraph_memory::layout::MIB;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// Guest RAM for the boot plan that is written out (the smallest allowed).
pub const RAM: u64 = 64 * MIB;
/// Guest RAM for the plan made with the heap pre-mapped (planned, not written).
pub const RAM_WITH_HEAP: u64 = 128 * MIB;

/// One guest memory shared by all runs (creating and zeroing 64 MiB per
/// input would make fuzzing slow); `BootPlan::write_over_used` rewrites everything
/// the checks below read.
fn guest_memory() -> Option<&'static Mutex<GuestMemoryMmap>> {
    static MEM: OnceLock<Option<Mutex<GuestMemoryMmap>>> = OnceLock::new();
    MEM.get_or_init(|| seraph_memory::create_guest_memory(RAM).ok().map(Mutex::new))
        .as_ref()
}

/// Parses `data` as a kernel ELF; if it is accepted, plans the boot (with
/// and without the pre-mapped heap), checks that the memory map is valid,
/// writes the plan into guest memory and checks the result: the entry state
/// matches the image, the boot info reads back exactly, and every segment's
/// file bytes are in place (nothing the plan wrote afterwards overlapped
/// them) with its bss zeroed.
pub fn elf_boot(data: &[u8]) {
    if let Ok(image) = KernelImage::parse(data, RAM_WITH_HEAP) {
        check_image(&image, RAM_WITH_HEAP);
        let config = BootConfig {
            ram_size: RAM_WITH_HEAP,
            framebuffer: FramebufferConfig::default(),
            map_heap: true,
        };
        if let Ok(plan) = BootPlan::new(&image, &config) {
            assert_eq!(validate(&plan.memory_map, RAM_WITH_HEAP), Ok(()));
        }
    }
    let Ok(image) = KernelImage::parse(data, RAM) else {
        return;
    };
    check_image(&image, RAM);
    let config = BootConfig {
        ram_size: RAM,
        framebuffer: FramebufferConfig::default(),
        map_heap: false,
    };
    let Ok(plan) = BootPlan::new(&image, &config) else {
        return;
    };
    assert_eq!(validate(&plan.memory_map, RAM), Ok(()));
    let Some(mem) = guest_memory() else {
        return;
    };
    let mem = mem.lock().unwrap_or_else(|p| p.into_inner());
    let entry = match plan.write_over_used(&mem, &image, data) {
        Ok(entry) => entry,
        Err(e) => panic!("a plan that was made must be writable: {e}"),
    };
    assert_eq!(entry.rip, image.entry);
    assert_eq!(entry.cr3, plan.page_tables.pml4());
    assert!(entry.rsp > plan.stack.base && entry.rsp <= plan.stack.end());
    let mut info = [0u8; BootInfo::SIZE];
    assert!(mem.read_slice(&mut info, GuestAddress(entry.rdi)).is_ok());
    assert_eq!(info, plan.boot_info().to_bytes(), "boot info reads back");
    for seg in image.segments() {
        let (Ok(off), Ok(len)) = (
            usize::try_from(seg.file_offset),
            usize::try_from(seg.file_size),
        ) else {
            panic!("an accepted segment's file range fits in memory");
        };
        let Some(file) = data.get(off..off + len) else {
            panic!("an accepted segment lies inside the file");
        };
        let mut loaded = vec![0u8; len];
        assert!(mem.read_slice(&mut loaded, GuestAddress(seg.phys)).is_ok());
        assert!(
            loaded == file,
            "segment {} was overwritten by a boot structure",
            seg.index
        );
        let bss = (seg.mem_size - seg.file_size).min(4096);
        let mut zeros = vec![0xAAu8; usize::try_from(bss).unwrap_or(0)];
        let bss_at = GuestAddress(seg.phys + seg.file_size);
        assert!(mem.read_slice(&mut zeros, bss_at).is_ok());
        assert!(zeros.iter().all(|&b| b == 0), "bss of {} zeroed", seg.index);
    }
}

/// What an accepted image promises: segments inside RAM and the file, no
/// overlaps, and an entry inside an executable segment.
fn check_image(image: &KernelImage, ram: u64) {
    let segments = image.segments();
    assert!(!segments.is_empty());
    for seg in segments {
        assert!(seg.file_size <= seg.mem_size);
        assert!(seg.mem_size > 0);
        assert!(seg.phys.checked_add(seg.mem_size).is_some_and(|e| e <= ram));
    }
    for pair in segments.windows(2) {
        if let [a, b] = pair {
            assert!(a.phys_range().end <= b.phys, "segments sorted, disjoint");
        }
    }
    assert!(segments.iter().any(|s| {
        s.flags & seraph_boot::elf::PF_X != 0 && s.virt_range().contains(&image.entry)
    }));
    assert!(
        image
            .phys_base
            .checked_add(image.size)
            .is_some_and(|e| e <= ram)
    );
}
