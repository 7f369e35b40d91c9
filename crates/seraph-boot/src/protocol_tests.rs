//! Boot-protocol tests: detection, forcing and request errors here; the
//! PVH start info ([`pvh_tests`](super::pvh_tests)) and the Linux zero page
//! ([`linux_tests`](super::linux_tests)) checked byte by byte in guest
//! memory, with the real test guests and synthetic images.

use seraph_memory::create_guest_memory;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::detect::{BootProtocol, choose_protocol, detect};
use crate::load::{BootRequest, load_kernel};
use crate::plan::BootConfig;
use crate::protocol_error::{DetectError, LoadError};

pub(crate) const MIB: u64 = 1 << 20;

pub(crate) fn request<'a>(
    ram: u64,
    cmdline: &'a str,
    initrd: Option<&'a [u8]>,
    force: Option<BootProtocol>,
) -> BootRequest<'a> {
    BootRequest {
        config: BootConfig {
            ram_size: ram,
            ..BootConfig::default()
        },
        cmdline,
        initrd,
        force,
    }
}

pub(crate) fn read(mem: &GuestMemoryMmap, addr: u64, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    mem.read_slice(&mut buf, GuestAddress(addr)).unwrap();
    buf
}

pub(crate) fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

pub(crate) fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

/// A synthetic ELF: class 1 or 2, one PT_NOTE holding `notes`, and PT_LOADs
pub(crate) fn one_line<E: std::fmt::Display>(e: E) -> String {
    let text = e.to_string();
    assert!(!text.contains('\n') && !text.is_empty(), "{text:?}");
    text
}

#[test]
fn detection_of_the_real_guests() {
    let ram = 512 * MIB;
    let d = detect(seraph_guests::PVH_CHECK, ram).unwrap();
    assert_eq!(d.protocol, BootProtocol::Seraph, "64-bit ELF entry wins");
    let pvh = d.pvh_entry.unwrap();
    assert!(
        (0x10_0000..0x10_2000).contains(&pvh) && pvh != 0x10_0000,
        "{pvh:#x}"
    );
    assert_eq!(d.seraph, Ok(()));

    let d = detect(seraph_guests::PVH_CHECK_32, ram).unwrap();
    assert_eq!(d.protocol, BootProtocol::Pvh);
    assert_eq!(d.pvh_entry, Some(pvh), "same code, same note");
    assert_eq!(d.seraph, Err(crate::ElfError::Not64Bit(1)));

    let d = detect(seraph_guests::BENCH_PVH, ram).unwrap();
    assert_eq!(
        d.protocol,
        BootProtocol::Pvh,
        "ELF entry == PVH entry: 32-bit code"
    );
    assert_eq!(d.pvh_entry, Some(0x10_0000));

    let d = detect(seraph_guests::LINUX_CHECK_BZIMAGE, ram).unwrap();
    assert_eq!(
        (d.protocol, d.bzimage, d.pvh_entry),
        (BootProtocol::Linux, true, None)
    );

    let d = detect(seraph_guests::TEST_KERNEL_IDENTITY, ram).unwrap();
    assert_eq!((d.protocol, d.pvh_entry), (BootProtocol::Seraph, None));

    for junk in [&b""[..], b"MZ\x90\0", &[0u8; 4096]] {
        assert_eq!(
            detect(junk, ram),
            Err(DetectError::Unknown { len: junk.len() })
        );
    }
    // An ELF the Seraph loader refuses, without a note: the Seraph error, as today.
    assert!(matches!(
        detect(b"\x7fELF\x02", ram),
        Err(DetectError::Elf(crate::ElfError::Truncated { len: 5 }))
    ));
}

#[test]
fn forcing_a_protocol_the_image_lacks_says_why() {
    let ram = 512 * MIB;
    let msg = |bytes: &[u8], p| {
        choose_protocol(bytes, ram, Some(p))
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        msg(seraph_guests::TEST_KERNEL_IDENTITY, BootProtocol::Pvh),
        "cannot boot this image with --boot pvh: the ELF has no XEN_ELFNOTE_PHYS32_ENTRY note"
    );
    assert!(
        msg(seraph_guests::PVH_CHECK, BootProtocol::Linux)
            .starts_with("cannot boot this image with --boot linux: the image is not a bzImage")
    );
    assert!(msg(seraph_guests::PVH_CHECK_32, BootProtocol::Seraph).contains("not a 64-bit ELF"));
    assert!(msg(seraph_guests::LINUX_CHECK_BZIMAGE, BootProtocol::Seraph).contains("bad magic"));
    assert!(msg(seraph_guests::LINUX_CHECK_BZIMAGE, BootProtocol::Pvh).contains("no PVH entry"));
    assert!(msg(b"hello", BootProtocol::Linux).contains("neither an ELF file nor a bzImage"));
    // Forcing what the image has is fine.
    let (p, _) = choose_protocol(seraph_guests::PVH_CHECK, ram, Some(BootProtocol::Pvh)).unwrap();
    assert_eq!(p, BootProtocol::Pvh);
    for p in [BootProtocol::Seraph, BootProtocol::Pvh, BootProtocol::Linux] {
        assert_eq!(BootProtocol::from_name(p.name()), Some(p));
    }
    assert_eq!(BootProtocol::from_name("multiboot"), None);
}

#[test]
fn request_errors() {
    let ram = 64 * MIB;
    let mem = create_guest_memory(ram).unwrap();
    let kernel = seraph_guests::TEST_KERNEL_IDENTITY;
    let err = load_kernel(&mem, kernel, &request(ram, "quiet", None, None)).unwrap_err();
    assert_eq!(
        one_line(err),
        "the Seraph boot protocol has no command line: use --boot pvh or --boot linux"
    );
    let err = load_kernel(&mem, kernel, &request(ram, "", Some(&[1]), None)).unwrap_err();
    assert!(matches!(err, LoadError::SeraphHasNo("initrd")));

    let image = seraph_guests::LINUX_CHECK_BZIMAGE;
    let long = "x".repeat(2048); // the header allows 2047
    let err = load_kernel(&mem, image, &request(ram, &long, None, None)).unwrap_err();
    assert!(
        matches!(
            err,
            LoadError::Cmdline {
                len: 2048,
                max: 2047
            }
        ),
        "{err}"
    );
    let huge = vec![0u8; 63 * MIB as usize];
    let err = load_kernel(&mem, image, &request(ram, "", Some(&huge), None)).unwrap_err();
    assert!(matches!(err, LoadError::InitrdDoesNotFit { .. }), "{err}");
    one_line(err);
}

#[test]
fn detection_reads_as_one_line() {
    let ram = 512 * MIB;
    let line = |bytes: &[u8]| detect(bytes, ram).unwrap().to_string();
    let pvh = detect(seraph_guests::PVH_CHECK, ram)
        .unwrap()
        .pvh_entry
        .unwrap();
    assert_eq!(
        line(seraph_guests::PVH_CHECK),
        format!("ELF64, Seraph entry, PVH entry {pvh:#x}: boots as seraph")
    );
    assert_eq!(
        line(seraph_guests::PVH_CHECK_32),
        format!("ELF32, PVH entry {pvh:#x}: boots as pvh")
    );
    assert_eq!(
        line(seraph_guests::LINUX_CHECK_BZIMAGE),
        "bzImage: boots as linux"
    );
    assert_eq!(
        line(seraph_guests::TEST_KERNEL_IDENTITY),
        "ELF64, Seraph entry: boots as seraph"
    );
}
