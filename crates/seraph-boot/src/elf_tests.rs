//! Tests of the ELF64 kernel loader.

use super::test_elf::*;
use super::*;
use seraph_memory::create_guest_memory;

const MIB: u64 = 0x10_0000;
const RAM: u64 = 512 * MIB;
const HH: u64 = 0xFFFF_8000_0000_0000;

#[test]
fn identity_kernel_parses_and_loads_with_bss_zeroed() {
    let bytes = identity_kernel();
    let k = KernelImage::parse(&bytes, RAM).unwrap();
    assert_eq!(k.entry, 0x10_0010);
    assert_eq!(k.phys_base, 0x10_0000);
    assert_eq!(k.virt_base, 0x10_0000);
    assert_eq!(k.size, 0x5000);
    assert_eq!(
        k.phys_ranges(),
        vec![0x10_0000..0x10_1234, 0x10_2000..0x10_5000]
    );
    assert_eq!(k.segments()[1].flags, PF_R | PF_W);

    let mem = create_guest_memory(64 * MIB).unwrap();
    mem.write_slice(&[0xEE; 0x3000], GuestAddress(0x10_2000))
        .unwrap();
    k.load_zeroing_bss(&mem, &bytes).unwrap();
    let mut buf = vec![0u8; 0x3000];
    mem.read_slice(&mut buf, GuestAddress(0x10_2000)).unwrap();
    assert!(buf[..0x100].iter().all(|&b| b == 0x22));
    assert!(
        buf[0x100..].iter().all(|&b| b == 0),
        "bss zeroed over old contents"
    );
    let mut text = [0u8; 4];
    mem.read_slice(&mut text, GuestAddress(0x10_1230)).unwrap();
    assert_eq!(text, [0x11; 4]);
}

#[test]
fn higher_half_kernel_goes_to_vaddr_minus_phys_map_base() {
    let bytes = higher_half_kernel();
    let k = KernelImage::parse(&bytes, RAM).unwrap();
    assert_eq!(k.entry, HH + 0x40);
    assert_eq!(k.phys_base, 0);
    assert_eq!(k.virt_base, HH);
    assert_eq!(k.size, 0x23_3000);
    assert_eq!(k.segments()[1].phys, 0x2000);
    assert_eq!(k.segments()[1].virt, HH + 0x2000);

    let mem = create_guest_memory(64 * MIB).unwrap();
    k.load(&mem, &bytes).unwrap();
    assert_eq!(mem.read_obj::<u8>(GuestAddress(0)).unwrap(), 0x11);
    assert_eq!(mem.read_obj::<u8>(GuestAddress(0x27FF)).unwrap(), 0x22);
    assert_eq!(mem.read_obj::<u8>(GuestAddress(0x2800)).unwrap(), 0);
    // Nothing at p_paddr.
    assert_eq!(mem.read_obj::<u8>(GuestAddress(0x10_0000)).unwrap(), 0);
}

#[test]
fn filesz_zero_segment_is_zeroed() {
    let bytes = build(
        0x10_0000,
        &[
            load(0x10_0000, 0, 0x10, 0x10, 5),
            load(0x20_0000, 0, 0, 0x2000, 6),
        ],
    );
    let k = KernelImage::parse(&bytes, RAM).unwrap();
    let mem = create_guest_memory(64 * MIB).unwrap();
    mem.write_slice(&[0xAB; 0x2000], GuestAddress(0x20_0000))
        .unwrap();
    k.load_zeroing_bss(&mem, &bytes).unwrap();
    let mut buf = vec![1u8; 0x2000];
    mem.read_slice(&mut buf, GuestAddress(0x20_0000)).unwrap();
    assert!(buf.iter().all(|&b| b == 0));
}

fn err(bytes: &[u8]) -> ElfError {
    KernelImage::parse(bytes, RAM).unwrap_err()
}

#[test]
fn header_defects() {
    assert_eq!(err(&[]), ElfError::Truncated { len: 0 });
    let good = identity_kernel();
    assert_eq!(err(&good[..63]), ElfError::Truncated { len: 63 });
    let mut b = good.clone();
    b[1] = b'X';
    assert_eq!(err(&b), ElfError::NotElf);
    let mut b = good.clone();
    b[4] = 1;
    assert_eq!(err(&b), ElfError::Not64Bit(1));
    let mut b = good.clone();
    b[5] = 2;
    assert_eq!(err(&b), ElfError::NotLittleEndian(2));
    let mut b = good.clone();
    b[18] = 3;
    assert_eq!(err(&b), ElfError::WrongMachine(3));
    let mut b = good.clone();
    b[16] = 3;
    assert_eq!(err(&b), ElfError::WrongType(3));
    assert!(err(&b).to_string().contains("ET_DYN"));
    let mut b = good.clone();
    b[54] = 32;
    assert_eq!(err(&b), ElfError::BadPhentsize(32));
    let mut b = good.clone();
    b[56..58].copy_from_slice(&0u16.to_le_bytes());
    assert_eq!(err(&b), ElfError::BadPhnum(0));
    let mut b = good.clone();
    b[56..58].copy_from_slice(&0xFFFFu16.to_le_bytes());
    assert_eq!(err(&b), ElfError::BadPhnum(0xFFFF));
    let mut b = good.clone();
    b[56..58].copy_from_slice(&0x1000u16.to_le_bytes());
    assert!(matches!(
        err(&b),
        ElfError::PhdrsOutOfFile { count: 0x1000, .. }
    ));
    let mut b = good;
    b[32..40].copy_from_slice(&(u64::MAX - 8).to_le_bytes());
    assert!(matches!(err(&b), ElfError::PhdrsOutOfFile { .. }));
}

#[test]
fn segment_defects() {
    let x = PF_R | PF_X;
    let one = |ph: Ph| err(&build(ph.vaddr, &[ph]));
    assert_eq!(
        one(load(0x10_0000, 0, 0x20, 0x10, x)),
        ElfError::FileSizeExceedsMemSize {
            index: 0,
            filesz: 0x20,
            memsz: 0x10
        }
    );
    let mut past = load(0x10_0000, 0, 0x10, 0x10, x);
    past.offset = 0x1000;
    assert!(matches!(
        one(past),
        ElfError::SegmentOutOfFile {
            index: 0,
            offset: 0x1000,
            ..
        }
    ));
    let mut wrap = load(0x10_0000, 0, 0x10, 0x10, x);
    wrap.offset = u64::MAX - 4;
    assert!(matches!(one(wrap), ElfError::SegmentOutOfFile { .. }));
    assert!(matches!(
        err(&build(HH, &[load(u64::MAX - 0xF, 0, 0, 0x100, x)])),
        ElfError::AddressOverflow { index: 0, .. }
    ));
    assert_eq!(
        one(load(0x1_0000_0000, 0, 0, 0x10, x)),
        ElfError::UnmappedAddress {
            index: 0,
            vaddr: 0x1_0000_0000
        }
    );
    assert_eq!(
        one(load(0xFFFF_FFFF_8000_0000, 0, 0, 0x10, x)),
        ElfError::SegmentNotInRam {
            index: 0,
            phys: 0x7FFF_8000_0000,
            end: 0x7FFF_8000_0010,
            ram_size: RAM
        }
    );
    assert_eq!(
        one(load(0xC000_0000, 0, 0, 0x10, x)),
        ElfError::SegmentInMmio {
            index: 0,
            phys: 0xC000_0000,
            end: 0xC000_0010
        }
    );
    assert_eq!(
        one(load(HH + 0xFEE0_0000, 0, 0, 0x10, x)),
        ElfError::SegmentInMmio {
            index: 0,
            phys: 0xFEE0_0000,
            end: 0xFEE0_0010
        }
    );
    assert_eq!(
        one(load(RAM - 0x10, 0, 0, 0x20, x)),
        ElfError::SegmentNotInRam {
            index: 0,
            phys: RAM - 0x10,
            end: RAM + 0x10,
            ram_size: RAM
        }
    );
    // Same physical bytes reached through the identity map and the physical map.
    assert_eq!(
        err(&build(
            0x10_0000,
            &[
                load(0x10_0000, 0, 0, 0x1000, x),
                load(HH + 0x10_0800, 0, 0, 0x10, x)
            ]
        )),
        ElfError::OverlappingSegments { a: 0, b: 1 }
    );
    // No PT_LOAD: a PT_NOTE only, and a PT_LOAD with p_memsz = 0.
    let mut note = load(0x10_0000, 0, 0, 0x10, x);
    note.p_type = 4;
    assert_eq!(one(note), ElfError::NoLoadSegments);
    assert_eq!(one(load(0x10_0000, 0, 0, 0, x)), ElfError::NoLoadSegments);
    // Entry outside any segment, and inside a non-executable one.
    assert_eq!(
        err(&build(0x20_0000, &[load(0x10_0000, 0, 0, 0x10, x)])),
        ElfError::BadEntry { entry: 0x20_0000 }
    );
    assert_eq!(
        err(&build(
            0x10_0000,
            &[load(0x10_0000, 0, 0, 0x10, PF_R | PF_W)]
        )),
        ElfError::BadEntry { entry: 0x10_0000 }
    );
}

#[test]
fn load_refuses_other_bytes() {
    let bytes = identity_kernel();
    let k = KernelImage::parse(&bytes, RAM).unwrap();
    let mem = create_guest_memory(64 * MIB).unwrap();
    assert_eq!(
        k.load(&mem, &bytes[..100]),
        Err(ElfError::BytesMismatch { index: 0 })
    );
}

#[test]
fn garbage_never_panics() {
    let good = higher_half_kernel();
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    for _ in 0..3000 {
        let mut b = good.clone();
        for _ in 0..4 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let at = (x % b.len() as u64) as usize;
            b[at] = (x >> 32) as u8;
        }
        let _ = KernelImage::parse(&b, RAM);
        let _ = KernelImage::parse(&b[..(x % b.len() as u64) as usize], RAM);
    }
}
