//! The Linux zero page byte by byte, the 32-bit entry, malformed bzImage
//! headers.

use seraph_memory::{create_guest_memory, translate};

use crate::cpu::{CpuEntry, LONG_MODE_CR0, PROTECTED_MODE_CR0};
use crate::detect::BootProtocol;
use crate::linux::{BzImageHeader, SETUP_HEADER_OFFSET, SETUP_HEADER_SIZE};
use crate::load::load_kernel;
use crate::protocol_error::{DetectError, LinuxError, LoadError};
use crate::protocol_tests::{MIB, one_line, read, request, u32_at, u64_at};

#[test]
fn linux_zero_page_byte_by_byte() {
    let ram = 512 * MIB;
    let image = seraph_guests::LINUX_CHECK_BZIMAGE;
    let initrd = seraph_guests::test_initrd();
    let cmdline = seraph_guests::LINUX_CHECK_CMDLINE;
    let mem = create_guest_memory(ram).unwrap();
    let loaded = load_kernel(&mem, image, &request(ram, cmdline, Some(&initrd), None)).unwrap();
    let CpuEntry::Long64(e) = loaded.entry else {
        panic!(
            "XLF_KERNEL_64 kernels enter in long mode: {:?}",
            loaded.entry
        );
    };
    assert_eq!(
        (e.rip, e.rsi, e.rdi, e.rsp),
        (0x10_0200, 0xE000, 0, 0xA_0000)
    );
    assert_eq!((e.cr0, e.cr3), (LONG_MODE_CR0, 0x1000));
    assert_eq!(
        (e.gdt.code_selector, e.gdt.data_selector, e.gdt.tss_selector),
        (0x10, 0x18, 0x20)
    );
    // The identity map reaches the kernel, the zero page and the stack.
    for addr in [0x10_0200, 0xE000, 0x9_FFF8, ram - 8] {
        assert_eq!(translate(&mem, e.cr3, addr), Ok(addr));
    }

    let zp = read(&mem, 0xE000, 4096);
    let hdr = SETUP_HEADER_OFFSET..SETUP_HEADER_OFFSET + SETUP_HEADER_SIZE;
    let initrd_base = 0x1FFF_D000u32; // top of RAM, page-aligned
    let mut want = image[hdr.clone()].to_vec();
    let mut put = |off: usize, bytes: &[u8]| {
        want[off - SETUP_HEADER_OFFSET..off - SETUP_HEADER_OFFSET + bytes.len()]
            .copy_from_slice(bytes)
    };
    put(0x210, &[0xFF]); // type_of_loader
    put(0x218, &initrd_base.to_le_bytes()); // ramdisk_image
    put(0x21C, &0x2345u32.to_le_bytes()); // ramdisk_size
    put(0x228, &0x2_0000u32.to_le_bytes()); // cmd_line_ptr
    // cmdline_size (0x238) is the kernel's limit: left as the image has it.
    assert_eq!(zp[hdr], want[..], "the setup header, copied and filled in");
    assert_eq!(zp[0x1E8], 5, "e820_entries");
    let e820: Vec<(u64, u64, u32)> = zp[0x2D0..0x2D0 + 5 * 20]
        .chunks_exact(20)
        .map(|c| (u64_at(c, 0), u64_at(c, 8), u32_at(c, 16)))
        .collect();
    assert_eq!(
        e820,
        vec![
            (0, 0xA_0000, 1),
            (0xA_0000, 0x6_0000, 2),
            (0x10_0000, ram - 0x10_0000, 1),
            (0xC000_0000, 0x100_0000, 2),
            (0xFEE0_0000, 0x1000, 2),
        ]
    );
    assert!(zp[..0x1E8].iter().all(|&b| b == 0), "nothing else written");
    // The protected-mode kernel at 1 MiB, the initrd, the command line.
    let payload = &image[0x400..];
    assert_eq!(read(&mem, 0x10_0000, payload.len()), payload);
    assert_eq!(read(&mem, u64::from(initrd_base), initrd.len()), initrd);
    let mut line = cmdline.as_bytes().to_vec();
    line.push(0);
    assert_eq!(read(&mem, 0x2_0000, line.len()), line);
}

#[test]
fn linux_32bit_entry_without_xlf_kernel_64() {
    let mut image = seraph_guests::LINUX_CHECK_BZIMAGE.to_vec();
    image[0x236] = 0; // xloadflags
    let mem = create_guest_memory(64 * MIB).unwrap();
    let loaded = load_kernel(&mem, &image, &request(64 * MIB, "", None, None)).unwrap();
    let CpuEntry::Protected32(e) = loaded.entry else {
        panic!("{:?}", loaded.entry);
    };
    assert_eq!(
        (e.eip, e.esi, e.ebx, e.cr0),
        (0x10_0000, 0xE000, 0, PROTECTED_MODE_CR0)
    );
    assert_eq!(
        read(&mem, 0xD010, 8),
        0x00CF_9B00_0000_FFFFu64.to_le_bytes()
    );
}

#[test]
fn a_kernel_asking_for_2_mib_is_loaded_and_entered_there() {
    let mut image = seraph_guests::LINUX_CHECK_BZIMAGE.to_vec();
    image[0x214..0x218].copy_from_slice(&0x20_0000u32.to_le_bytes()); // code32_start
    let setup = (usize::from(image[0x1F1]) + 1) * 512;
    let mem = create_guest_memory(64 * MIB).unwrap();
    let loaded = load_kernel(&mem, &image, &request(64 * MIB, "", None, None)).unwrap();
    let CpuEntry::Long64(e) = loaded.entry else {
        panic!("{:?}", loaded.entry);
    };
    assert_eq!(e.rip, 0x20_0200);
    assert_eq!(loaded.kernel.base, 0x20_0000);
    assert_eq!(read(&mem, 0x20_0000, 64), image[setup..setup + 64]);
    // The zero page tells the kernel where it is.
    assert_eq!(u32_at(&read(&mem, 0xE000 + 0x214, 4), 0), 0x20_0000);
}

#[test]
fn malformed_bzimage_headers() {
    let ram = 64 * MIB;
    let good = seraph_guests::LINUX_CHECK_BZIMAGE;
    let header = BzImageHeader::parse(good, ram).unwrap();
    assert_eq!(
        (header.version, header.setup_sects, header.setup_size),
        (0x020F, 1, 0x400)
    );
    assert_eq!(header.payload_size, good.len() as u64 - 0x400);
    assert!(header.has_64bit_entry());
    let patched = |off: usize, bytes: &[u8]| {
        let mut image = good.to_vec();
        image[off..off + bytes.len()].copy_from_slice(bytes);
        image
    };
    let cases: Vec<(Vec<u8>, LinuxError)> = vec![
        (patched(0x202, b"HdrZ"), LinuxError::BadMagic(0x5A72_6448)),
        (
            patched(0x1FE, &[0x55, 0x55]),
            LinuxError::BadBootFlag(0x5555),
        ),
        (
            patched(0x206, &[0x04, 0x02]),
            LinuxError::VersionTooOld { major: 2, minor: 4 },
        ),
        (
            patched(0x1F1, &[200]),
            LinuxError::SetupPastEnd {
                setup_sects: 200,
                setup_size: 201 * 512,
                len: good.len(),
            },
        ),
        (patched(0x211, &[0]), LinuxError::NotLoadedHigh),
        (
            patched(0x214, &0x1000u32.to_le_bytes()),
            LinuxError::LoadBelow1M(0x1000),
        ),
        (
            patched(0x260, &0x7000_0000u32.to_le_bytes()),
            LinuxError::KernelDoesNotFit {
                load: 0x10_0000,
                size: 0x7000_0000,
                ram_size: ram,
            },
        ),
        (
            good[..0x400].to_vec(),
            LinuxError::NoPayload { setup_size: 0x400 },
        ),
        (
            good[..0x250].to_vec(),
            LinuxError::Truncated {
                len: 0x250,
                need: 0x1F1 + SETUP_HEADER_SIZE,
            },
        ),
        (
            good[..0x100].to_vec(),
            LinuxError::Truncated {
                len: 0x100,
                need: 0x1F1 + SETUP_HEADER_SIZE,
            },
        ),
    ];
    for (bytes, want) in cases {
        let got = BzImageHeader::parse(&bytes, ram).unwrap_err();
        assert_eq!(got, want);
        let text = one_line(&got);
        // The same error through load_kernel (forced: a broken magic is no longer detected).
        let mem = create_guest_memory(ram).unwrap();
        let err = load_kernel(
            &mem,
            &bytes,
            &request(ram, "", None, Some(BootProtocol::Linux)),
        );
        match err {
            Err(LoadError::Linux(e)) => assert_eq!(e, want),
            Err(LoadError::Detect(DetectError::NotSupported { .. })) => {
                assert!(
                    matches!(want, LinuxError::BadMagic(_) | LinuxError::Truncated { .. }),
                    "{text}"
                )
            }
            other => panic!("{text}: {other:?}"),
        }
    }
    assert_eq!(
        BzImageHeader::parse(&patched(0x206, &[0x04, 0x02]), ram)
            .unwrap_err()
            .to_string(),
        "bzImage boot protocol version 2.04 is too old: 2.06 or newer is required"
    );
}

#[test]
fn setup_header_size_is_protocol_2_15() {
    // 0x1F1 to 0x26C: through kernel_info_offset.
    assert_eq!(SETUP_HEADER_OFFSET + SETUP_HEADER_SIZE, 620);
    let err = BzImageHeader::parse(&seraph_guests::LINUX_CHECK_BZIMAGE[..0x100], 64 * MIB);
    assert_eq!(
        err.unwrap_err().to_string(),
        "bzImage is truncated: 256 bytes, the setup header needs 620"
    );
}
