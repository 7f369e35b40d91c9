//! The PVH start info, memory map, command line and module byte by byte;
//! malformed notes and segments.

use seraph_memory::create_guest_memory;

use crate::cpu::{CpuEntry, PROTECTED_MODE_CR0};
use crate::detect::{BootProtocol, detect};
use crate::load::load_kernel;
use crate::protocol_error::{DetectError, LoadError, PvhError};
use crate::protocol_tests::{MIB, one_line, read, request, u32_at, u64_at};
use crate::pvh::PvhImage;

/// (paddr, filesz, memsz) whose file bytes are 0xCC.
fn elf(class: u8, entry: u64, notes: &[u8], loads: &[(u64, u64, u64)]) -> Vec<u8> {
    let (ehsize, phsize) = if class == 2 { (64, 56) } else { (52, 32) };
    let phnum = 1 + loads.len();
    let notes_at = ehsize + phsize * phnum;
    let data_at = notes_at + notes.len();
    let mut out = vec![0u8; data_at];
    out[..4].copy_from_slice(b"\x7fELF");
    out[4] = class;
    out[5] = 1;
    out[6] = 1;
    out[16..18].copy_from_slice(&2u16.to_le_bytes());
    let machine: u16 = if class == 2 { 62 } else { 3 };
    out[18..20].copy_from_slice(&machine.to_le_bytes());
    let mut phdrs = vec![(
        4u32,
        4u32,
        notes_at as u64,
        0u64,
        notes.len() as u64,
        notes.len() as u64,
    )];
    let mut offset = data_at as u64;
    for &(paddr, filesz, memsz) in loads {
        phdrs.push((1, 5, offset, paddr, filesz, memsz));
        offset += filesz;
    }
    if class == 2 {
        out[24..32].copy_from_slice(&entry.to_le_bytes());
        out[32..40].copy_from_slice(&64u64.to_le_bytes());
        out[52..54].copy_from_slice(&64u16.to_le_bytes());
        out[54..56].copy_from_slice(&56u16.to_le_bytes());
        out[56..58].copy_from_slice(&(phnum as u16).to_le_bytes());
    } else {
        out[24..28].copy_from_slice(&(entry as u32).to_le_bytes());
        out[28..32].copy_from_slice(&52u32.to_le_bytes());
        out[40..42].copy_from_slice(&52u16.to_le_bytes());
        out[42..44].copy_from_slice(&32u16.to_le_bytes());
        out[44..46].copy_from_slice(&(phnum as u16).to_le_bytes());
    }
    for (i, &(p_type, flags, off, paddr, filesz, memsz)) in phdrs.iter().enumerate() {
        let at = ehsize + i * phsize;
        let ph = &mut out[at..at + phsize];
        ph[0..4].copy_from_slice(&p_type.to_le_bytes());
        if class == 2 {
            ph[4..8].copy_from_slice(&flags.to_le_bytes());
            for (field, value) in [
                (8, off),
                (16, paddr),
                (24, paddr),
                (32, filesz),
                (40, memsz),
            ] {
                ph[field..field + 8].copy_from_slice(&value.to_le_bytes());
            }
        } else {
            for (field, value) in [(4, off), (8, paddr), (12, paddr), (16, filesz), (20, memsz)] {
                ph[field..field + 4].copy_from_slice(&(value as u32).to_le_bytes());
            }
            ph[24..28].copy_from_slice(&flags.to_le_bytes());
        }
    }
    out[notes_at..data_at].copy_from_slice(notes);
    out.resize(offset as usize, 0xCC);
    out
}

/// One ELF note.
fn note(n_type: u32, name: &[u8], desc: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(name.len() as u32).to_le_bytes());
    out.extend_from_slice(&(desc.len() as u32).to_le_bytes());
    out.extend_from_slice(&n_type.to_le_bytes());
    out.extend_from_slice(name);
    out.resize(out.len().next_multiple_of(4), 0);
    out.extend_from_slice(desc);
    out.resize(out.len().next_multiple_of(4), 0);
    out
}

fn pvh_note(entry: u32) -> Vec<u8> {
    note(18, b"Xen\0", &entry.to_le_bytes())
}

#[test]
fn pvh_start_info_memory_map_cmdline_and_module_byte_by_byte() {
    let ram = 128 * MIB;
    let initrd = seraph_guests::test_initrd();
    let cmdline = seraph_guests::PVH_CHECK_CMDLINE;
    let mut loaded_code = Vec::new();
    for image in [seraph_guests::PVH_CHECK, seraph_guests::PVH_CHECK_32] {
        let mem = create_guest_memory(ram).unwrap();
        let req = request(ram, cmdline, Some(&initrd), Some(BootProtocol::Pvh));
        let loaded = load_kernel(&mem, image, &req).unwrap();
        let entry = detect(image, ram).unwrap().pvh_entry.unwrap();
        let CpuEntry::Protected32(e) = loaded.entry else {
            panic!("PVH enters in protected mode: {:?}", loaded.entry);
        };
        assert_eq!((e.eip, e.ebx, e.cr0), (entry, 0xE000, PROTECTED_MODE_CR0));
        assert_eq!((e.gdt.code_selector, e.gdt.data_selector), (0x10, 0x18));

        let si = read(&mem, 0xE000, 56);
        assert_eq!(u32_at(&si, 0), 0x336E_C578, "magic");
        assert_eq!(u32_at(&si, 4), 1, "version");
        assert_eq!(u32_at(&si, 8), 0, "flags");
        assert_eq!(u32_at(&si, 12), 1, "nr_modules");
        assert_eq!(u64_at(&si, 16), 0xF000, "modlist_paddr");
        assert_eq!(u64_at(&si, 24), 0x2_0000, "cmdline_paddr");
        assert_eq!(u64_at(&si, 32), 0, "rsdp_paddr");
        assert_eq!(u64_at(&si, 40), 0xE040, "memmap_paddr");
        assert_eq!(u32_at(&si, 48), 5, "memmap_entries");

        let map = read(&mem, 0xE040, 5 * 24);
        let entries: Vec<(u64, u64, u32, u32)> = map
            .chunks_exact(24)
            .map(|c| (u64_at(c, 0), u64_at(c, 8), u32_at(c, 16), u32_at(c, 20)))
            .collect();
        assert_eq!(
            entries,
            vec![
                (0, 0xA_0000, 1, 0),
                (0xA_0000, 0x6_0000, 2, 0),
                (0x10_0000, ram - 0x10_0000, 1, 0),
                (0xC000_0000, 0x100_0000, 2, 0),
                (0xFEE0_0000, 0x1000, 2, 0),
            ]
        );

        let module_base = ram - 0x3000; // 0x2345 bytes, page-aligned, at the top of RAM
        let modlist = read(&mem, 0xF000, 32);
        assert_eq!(
            (
                u64_at(&modlist, 0),
                u64_at(&modlist, 8),
                u64_at(&modlist, 16)
            ),
            (module_base, 0x2345, 0)
        );
        assert_eq!(read(&mem, module_base, initrd.len()), initrd);
        assert_eq!(loaded.initrd.map(|m| m.base), Some(module_base));
        let mut want = cmdline.as_bytes().to_vec();
        want.push(0);
        assert_eq!(read(&mem, 0x2_0000, want.len()), want);
        // The kernel's file bytes at p_paddr; both classes load the same code.
        loaded_code.push(read(&mem, loaded.kernel.base, 0x3000));
    }
    assert_eq!(loaded_code[0], loaded_code[1]);
    assert!(loaded_code[0].iter().any(|&b| b != 0));

    // Without a command line or module, the pointers are 0.
    let mem = create_guest_memory(ram).unwrap();
    load_kernel(
        &mem,
        seraph_guests::BENCH_PVH,
        &request(ram, "", None, None),
    )
    .unwrap();
    let si = read(&mem, 0xE000, 56);
    assert_eq!(
        (u32_at(&si, 12), u64_at(&si, 16), u64_at(&si, 24)),
        (0, 0, 0)
    );
}

#[test]
fn malformed_pvh_notes_and_segments() {
    let ram = 64 * MIB;
    let load = [(0x10_0000, 0x100, 0x2000)];
    let parse = |bytes: &[u8]| PvhImage::parse(bytes, ram);
    for class in [1u8, 2] {
        let good = elf(class, 0, &pvh_note(0x10_0010), &load);
        let image = parse(&good).unwrap();
        assert_eq!(
            (image.entry, image.phys_base, image.phys_end),
            (0x10_0010, 0x10_0000, 0x10_2000)
        );
        let cases: Vec<(Vec<u8>, PvhError)> = vec![
            (
                elf(class, 0, &pvh_note(0x10_0010)[..8], &load),
                PvhError::MalformedNote {
                    index: 0,
                    offset: 0,
                    problem: "note header runs past the end of the segment",
                },
            ),
            (
                elf(class, 0, &note(18, &[b'X'; 64], &[0; 4])[..40], &load),
                PvhError::MalformedNote {
                    index: 0,
                    offset: 0,
                    problem: "name or descriptor runs past the end of the segment",
                },
            ),
            (
                elf(class, 0, &note(18, b"Xen\0", &[1, 2]), &load),
                PvhError::BadEntryNoteSize(2),
            ),
            (
                elf(
                    class,
                    0,
                    &note(18, b"Xen\0", &0x1_0000_0000u64.to_le_bytes()),
                    &load,
                ),
                PvhError::EntryAbove4G(0x1_0000_0000),
            ),
            (
                elf(class, 0, &note(18, b"Linux\0", &[0; 4]), &load),
                PvhError::NoEntryNote,
            ),
            (
                elf(class, 0, &pvh_note(0x20_0000), &load),
                PvhError::EntryNotLoaded { entry: 0x20_0000 },
            ),
            (
                elf(class, 0, &pvh_note(0x8000), &[(0x8000, 0x10, 0x10)]),
                PvhError::SegmentNotInRam {
                    index: 1,
                    phys: 0x8000,
                    end: 0x8010,
                    ram_size: ram,
                },
            ),
            (
                elf(class, 0, &pvh_note(0x10_0000), &[(0x10_0000, 0x10, ram)]),
                PvhError::SegmentNotInRam {
                    index: 1,
                    phys: 0x10_0000,
                    end: 0x10_0000 + ram,
                    ram_size: ram,
                },
            ),
            (
                elf(
                    class,
                    0,
                    &pvh_note(0x10_0000),
                    &[(0x10_0000, 0x10, 0x2000), (0x10_1000, 0x10, 0x10)],
                ),
                PvhError::OverlappingSegments { a: 1, b: 2 },
            ),
            (
                // File bytes with p_memsz = 0: linux-loader would copy them unchecked.
                elf(
                    class,
                    0,
                    &pvh_note(0x10_0000),
                    &[(0x10_0000, 0x10, 0x2000), (0x8000, 0x10, 0)],
                ),
                PvhError::FileSizeExceedsMemSize {
                    index: 2,
                    filesz: 0x10,
                    memsz: 0,
                },
            ),
        ];
        for (bytes, want) in cases {
            let got = parse(&bytes).unwrap_err();
            assert_eq!(got, want, "class {class}");
            one_line(got);
        }
        // A note segment outside the file.
        let mut bad = good.clone();
        let ph = if class == 2 { 64 + 8 } else { 52 + 4 };
        bad[ph..ph + 4].copy_from_slice(&0xFFFF_0000u32.to_le_bytes());
        assert!(matches!(
            parse(&bad),
            Err(PvhError::NoteOutOfFile { index: 0, .. })
        ));
        // Truncated and bogus headers.
        assert_eq!(parse(&good[..20]), Err(PvhError::Truncated { len: 20 }));
        let mut bad = good.clone();
        bad[4] = 3;
        assert_eq!(parse(&bad), Err(PvhError::BadClass(3)));
    }
    // Forced PVH on a kernel without the note, through load_kernel.
    let mem = create_guest_memory(ram).unwrap();
    let err = load_kernel(
        &mem,
        seraph_guests::TEST_KERNEL_IDENTITY,
        &request(ram, "", None, Some(BootProtocol::Pvh)),
    )
    .unwrap_err();
    assert!(
        matches!(err, LoadError::Detect(DetectError::NotSupported { .. })),
        "{err}"
    );
}
