//! Identify data structures and log pages (4 KiB pages built on demand).

use crate::backend::DiskImage;

/// Size of an Identify data structure.
pub const IDENTIFY_SIZE: usize = 4096;

/// What Identify Controller reports about this controller.
#[derive(Debug, Clone, Copy)]
pub struct ControllerInfo {
    /// PCI vendor id.
    pub vendor: u16,
    /// Maximum data transfer size, log2 in units of 4 KiB.
    pub mdts: u8,
    /// Number of namespaces (1).
    pub namespaces: u32,
    /// Asynchronous Event Request Limit (0-based).
    pub aerl: u8,
    /// I/O queue pairs supported (queue ids 1..=n).
    pub io_queues: u16,
}

/// Serial number, model and firmware revision (ASCII, space padded).
pub const SERIAL: &str = "SERAPHV-ATLAS-0001";
/// Model number.
pub const MODEL: &str = "Seraph-V Atlas NVMe disk";
/// Firmware revision.
pub const FIRMWARE: &str = "1.0";

fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(dst) = buf.get_mut(at..at + bytes.len()) {
        dst.copy_from_slice(bytes);
    }
}

fn put_str(buf: &mut [u8], at: usize, len: usize, s: &str) {
    let mut field = vec![b' '; len];
    for (d, c) in field.iter_mut().zip(s.bytes()) {
        *d = c;
    }
    put(buf, at, &field);
}

/// Identify Controller (CNS 01h).
pub fn controller(info: &ControllerInfo) -> Vec<u8> {
    let mut b = vec![0u8; IDENTIFY_SIZE];
    put(&mut b, 0, &info.vendor.to_le_bytes()); // VID
    put(&mut b, 2, &info.vendor.to_le_bytes()); // SSVID
    put_str(&mut b, 4, 20, SERIAL);
    put_str(&mut b, 24, 40, MODEL);
    put_str(&mut b, 64, 8, FIRMWARE);
    b[72] = 6; // RAB: 64 commands
    b[77] = info.mdts;
    put(&mut b, 78, &0u16.to_le_bytes()); // CNTLID
    put(&mut b, 80, &0x0001_0400u32.to_le_bytes()); // VER 1.4
    b[111] = 1; // CNTRLTYPE: I/O controller
    // OACS 0: no optional admin commands. ACL: 4 aborts (0-based 3).
    b[258] = 3;
    b[259] = info.aerl;
    b[260] = 0x02; // FRMW: one slot, slot 1 read-only
    b[261] = 0x00; // LPA
    b[262] = 0; // ELPE: 1 error log entry (0-based)
    b[263] = 0; // NPSS: one power state
    put(&mut b, 266, &343u16.to_le_bytes()); // WCTEMP (K)
    put(&mut b, 268, &373u16.to_le_bytes()); // CCTEMP (K)
    b[512] = 0x66; // SQES: 64 bytes
    b[513] = 0x44; // CQES: 16 bytes
    put(&mut b, 514, &0u16.to_le_bytes()); // MAXCMD
    put(&mut b, 516, &info.namespaces.to_le_bytes()); // NN
    put(&mut b, 520, &0x000Cu16.to_le_bytes()); // ONCS: DSM, Write Zeroes
    // VWC: a volatile write cache (the host page cache) is present, and
    // Flush with NSID FFFFFFFFh is supported (bits 2:1 = 11b).
    b[525] = 0x07;
    put_str(&mut b, 768, 256, "nqn.2026-11.dev.seraph-v:atlas");
    if let Some(last) = b.get_mut(768 + 255) {
        *last = 0;
    }
    // Power state 0: 25.00 W max (in 0.01 W units).
    put(&mut b, 2048, &2500u16.to_le_bytes());
    b
}

/// Identify Namespace (CNS 00h) for namespace 1.
pub fn namespace(disk: &DiskImage) -> Vec<u8> {
    let mut b = vec![0u8; IDENTIFY_SIZE];
    let blocks = disk.blocks();
    put(&mut b, 0, &blocks.to_le_bytes()); // NSZE
    put(&mut b, 8, &blocks.to_le_bytes()); // NCAP
    put(&mut b, 16, &blocks.to_le_bytes()); // NUSE
    b[25] = 0; // NLBAF: one format
    b[26] = 0; // FLBAS: format 0, no metadata
    // NSATTR bit 0: write protected.
    b[99] = u8::from(disk.readonly());
    let lbads: u32 = disk.lba_size().trailing_zeros();
    // LBAF0: MS 0, LBADS, RP 0 (best).
    put(&mut b, 128, &(lbads << 16).to_le_bytes());
    b
}

/// Active Namespace ID list (CNS 02h): ids greater than `after`.
pub fn active_namespaces(after: u32) -> Vec<u8> {
    let mut b = vec![0u8; IDENTIFY_SIZE];
    if after < 1 {
        put(&mut b, 0, &1u32.to_le_bytes());
    }
    b
}

/// Namespace Identification Descriptor list (CNS 03h): a UUID descriptor.
pub fn namespace_descriptors() -> Vec<u8> {
    let mut b = vec![0u8; IDENTIFY_SIZE];
    b[0] = 3; // NIDT: UUID
    b[1] = 16; // NIDL
    put(&mut b, 4, b"seraph-v-atlas-1");
    b
}

/// Counters the SMART log reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// 512-byte units read.
    pub units_read: u64,
    /// 512-byte units written.
    pub units_written: u64,
    /// Read commands completed.
    pub read_commands: u64,
    /// Write commands completed.
    pub write_commands: u64,
}

/// Log page identifiers served.
pub mod log {
    /// Error Information.
    pub const ERROR: u8 = 0x01;
    /// SMART / Health Information.
    pub const SMART: u8 = 0x02;
    /// Firmware Slot Information.
    pub const FIRMWARE_SLOT: u8 = 0x03;
}

/// The bytes of log page `lid` (512 bytes; 64 for the error log), or None
/// for an unknown page.
pub fn log_page(lid: u8, counters: &Counters) -> Option<Vec<u8>> {
    match lid {
        log::ERROR => Some(vec![0u8; 64]),
        log::SMART => {
            let mut b = vec![0u8; 512];
            put(&mut b, 1, &313u16.to_le_bytes()); // composite temperature 40 C
            b[3] = 100; // available spare
            b[4] = 10; // spare threshold
            // Data units are thousands of 512-byte units, rounded up.
            let units = |n: u64| u128::from(n.div_ceil(1000)).to_le_bytes();
            put(&mut b, 32, &units(counters.units_read));
            put(&mut b, 48, &units(counters.units_written));
            put(
                &mut b,
                64,
                &u128::from(counters.read_commands).to_le_bytes(),
            );
            put(
                &mut b,
                80,
                &u128::from(counters.write_commands).to_le_bytes(),
            );
            Some(b)
        }
        log::FIRMWARE_SLOT => {
            let mut b = vec![0u8; 512];
            b[0] = 1; // active slot 1
            put_str(&mut b, 8, 8, FIRMWARE);
            Some(b)
        }
        _ => None,
    }
}
