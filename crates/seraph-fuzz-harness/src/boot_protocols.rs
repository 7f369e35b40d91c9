//! The `boot_protocols` target: kernel detection and the PVH and bzImage
//! header parsers on arbitrary bytes, and loading whatever they accept.

use seraph_boot::cpu::CpuEntry;
use seraph_boot::detect::{find_pvh_entry, parse_elf_headers};
use seraph_boot::linux::BzImageHeader;
use seraph_boot::pvh::PvhImage;
use seraph_boot::{BootConfig, BootProtocol, BootRequest, choose_protocol, detect, load_kernel};
use seraph_memory::layout::MIB;
use vm_memory::{Bytes, GuestAddress};

/// Guest RAM the images are checked and loaded against (the smallest allowed).
pub const RAM: u64 = 64 * MIB;

const PROTOCOLS: [Option<BootProtocol>; 4] = [
    None,
    Some(BootProtocol::Seraph),
    Some(BootProtocol::Pvh),
    Some(BootProtocol::Linux),
];

/// Detects `data` under every `--boot` choice and checks that detection
/// agrees with itself; parses it as a PVH ELF and as a bzImage; every error
/// is one line. What a parser accepts is loaded into fresh guest memory
/// with a command line and a small initrd, and the entry state and the
/// first boot structure are checked.
pub fn boot_protocols(data: &[u8]) {
    if let Ok(d) = detect(data, RAM) {
        match d.protocol {
            BootProtocol::Seraph => assert!(d.seraph.is_ok()),
            BootProtocol::Pvh => assert!(d.pvh_entry.is_some()),
            BootProtocol::Linux => assert!(d.bzimage),
        }
    }
    for force in PROTOCOLS {
        match choose_protocol(data, RAM, force) {
            Ok((protocol, _)) => assert!(force.is_none_or(|f| f == protocol)),
            Err(e) => assert!(!e.to_string().contains('\n')),
        }
    }
    if let Ok(headers) = parse_elf_headers(data) {
        let _ = find_pvh_entry(data, &headers);
    }
    match PvhImage::parse(data, RAM) {
        Ok(image) => load(
            data,
            BootProtocol::Pvh,
            |entry| matches!(entry, CpuEntry::Protected32(e) if e.eip == image.entry),
        ),
        Err(e) => assert!(!e.to_string().contains('\n')),
    }
    match BzImageHeader::parse(data, RAM) {
        Ok(header) => load(data, BootProtocol::Linux, |entry| match entry {
            CpuEntry::Long64(e) => e.rip == u64::from(header.code32_start) + 0x200,
            CpuEntry::Protected32(e) => e.eip == header.code32_start,
        }),
        Err(e) => assert!(!e.to_string().contains('\n')),
    }
}

/// Loads `data` with `protocol` forced; a load may fail (a typed error),
/// but one that succeeds has the expected entry and its boot structure.
fn load(data: &[u8], protocol: BootProtocol, entry_ok: impl Fn(&CpuEntry) -> bool) {
    let Ok(mem) = seraph_memory::create_guest_memory(RAM) else {
        return;
    };
    let request = BootRequest {
        config: BootConfig {
            ram_size: RAM,
            ..BootConfig::default()
        },
        cmdline: "console=ttyS0",
        initrd: Some(b"initrd"),
        force: Some(protocol),
    };
    let loaded = match load_kernel(&mem, data, &request) {
        Ok(loaded) => loaded,
        Err(e) => {
            assert!(!e.to_string().contains('\n'));
            return;
        }
    };
    assert_eq!(loaded.protocol, protocol);
    assert!(entry_ok(&loaded.entry), "{:?}", loaded.entry);
    let mut word = [0u8; 4];
    let at = match protocol {
        BootProtocol::Pvh => loaded.boot_params,
        _ => loaded.boot_params + 0x202,
    };
    assert!(mem.read_slice(&mut word, GuestAddress(at)).is_ok());
    let want = match protocol {
        BootProtocol::Pvh => 0x336E_C578u32,
        _ => 0x5372_6448,
    };
    assert_eq!(u32::from_le_bytes(word), want);
}
