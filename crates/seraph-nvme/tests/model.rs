//! Driving the controller like a guest driver: bring-up, Identify, a queue
//! pair, I/O across PRP-list boundaries, features, logs and statuses.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ADMIN_BUF, DATA, Driver, LISTS, cmd};
use seraph_nvme::Status;

#[test]
fn registers_read_as_one_8_byte_access_or_two_halves() {
    let mut d = Driver::memory_disk(64, 512, false);
    let cap = d.read64(0);
    assert_eq!(cap, u64::from(d.read32(0)) | u64::from(d.read32(4)) << 32);
    assert!(cap & 0xFFFF >= 255, "MQES >= 255");
    assert_eq!(cap & 0xFFFF, 0xFFFF, "65536-entry queues");
    assert_eq!((cap >> 32) & 0xF, 0, "DSTRD 0");
    assert_ne!(cap & (1 << 37), 0, "NVM command set");
    assert!((1..=2).contains(&((cap >> 24) & 0xFF)), "TO is small");
    assert_eq!(d.read32(0x08), 0x0001_0400, "VS 1.4");
    // ASQ written as two halves, low then high; ACQ as one 8-byte write.
    d.write32(0x28, 0x1234_5000);
    d.write32(0x2C, 0x0000_0001);
    assert_eq!(d.read64(0x28), 0x1_1234_5000);
    d.write64(0x30, 0x2_0000_3000);
    assert_eq!(d.read32(0x30), 0x3000);
    assert_eq!(d.read32(0x34), 2);
    // The low 12 bits are reserved.
    d.write64(0x28, 0xABC);
    assert_eq!(d.read64(0x28), 0);
    // Byte and word reads of a 32-bit register.
    let mut b = [0u8; 2];
    d.write32(0x24, 0x001F_001F);
    d.nvme_bar_read(0x26, &mut b);
    assert_eq!(u16::from_le_bytes(b), 0x1F);
}

trait ByteRead {
    fn nvme_bar_read(&mut self, offset: u64, data: &mut [u8]);
}

impl ByteRead for Driver {
    fn nvme_bar_read(&mut self, offset: u64, data: &mut [u8]) {
        use seraph_pci::PciDevice;
        self.nvme.bar_read(0, offset, data);
    }
}

#[test]
fn enable_shutdown_and_reset_handshakes_complete_at_once() {
    let mut d = Driver::memory_disk(64, 512, false);
    assert_eq!(d.read32(0x1C), 0);
    d.enable();
    let cc = d.read32(0x14);
    // Normal shutdown: SHST complete right away.
    d.write32(0x14, cc | 1 << 14);
    assert_eq!(d.read32(0x1C) & 0xC, 0x8, "SHST = complete");
    // Disable: RDY clears, shutdown status stays until SHN is cleared.
    d.write32(0x14, 0);
    assert_eq!(d.read32(0x1C) & 1, 0);
    // Re-enable works and queues start over.
    d.enable();
    assert_eq!(d.read32(0x1C), 1);
    let c = d.admin(cmd(0x06));
    assert_eq!(c.status, Status::INVALID_NAMESPACE, "identify ns 0");
    // A bad configuration (I/O command set 7) does not become ready.
    d.write32(0x14, 0);
    d.write32(0x14, 1 | 7 << 4);
    assert_eq!(d.read32(0x1C) & 3, 2, "CFS, not RDY");
    d.write32(0x14, 0);
    assert_eq!(d.read32(0x1C), 0, "reset clears CFS");
}

fn identify(d: &mut Driver, cns: u32, nsid: u32) -> (Status, Vec<u8>) {
    let mut c = cmd(0x06);
    c.nsid = nsid;
    c.prp1 = ADMIN_BUF;
    c.cdw[0] = cns;
    d.dma.write(ADMIN_BUF, &[0xEE; 4096]).unwrap();
    let done = d.admin(c);
    let mut buf = vec![0u8; 4096];
    d.dma.read(ADMIN_BUF, &mut buf).unwrap();
    (done.status, buf)
}

#[test]
fn identify_controller_namespace_and_active_list() {
    let mut d = Driver::memory_disk(2048, 512, false);
    d.enable();
    let (s, ctrl) = identify(&mut d, 1, 0);
    assert_eq!(s, Status::SUCCESS);
    assert_eq!(u16::from_le_bytes([ctrl[0], ctrl[1]]), 0x5356);
    assert!(ctrl[24..64].starts_with(b"Seraph-V Atlas NVMe disk"));
    assert_eq!(ctrl[512], 0x66);
    assert_eq!(ctrl[513], 0x44);
    assert_eq!(u32::from_le_bytes(ctrl[516..520].try_into().unwrap()), 1);
    assert_eq!(ctrl[525] & 1, 1, "volatile write cache present");
    assert_eq!(ctrl[77], 7, "MDTS");
    let (s, ns) = identify(&mut d, 0, 1);
    assert_eq!(s, Status::SUCCESS);
    assert_eq!(u64::from_le_bytes(ns[0..8].try_into().unwrap()), 2048);
    assert_eq!(ns[130], 9, "LBADS 2^9");
    assert_eq!(ns[99], 0, "not write protected");
    let (s, list) = identify(&mut d, 2, 0);
    assert_eq!(s, Status::SUCCESS);
    assert_eq!(&list[0..8], &[1, 0, 0, 0, 0, 0, 0, 0]);
    let (_, list) = identify(&mut d, 2, 1);
    assert!(list.iter().all(|b| *b == 0), "nothing after ns 1");
    assert_eq!(identify(&mut d, 0, 2).0, Status::INVALID_NAMESPACE);
    assert_eq!(identify(&mut d, 0x10, 0).0, Status::INVALID_FIELD);
    let mut ro = Driver::memory_disk(16, 4096, true);
    ro.enable();
    let (_, ns) = identify(&mut ro, 0, 1);
    assert_eq!(ns[99] & 1, 1, "write protected");
    assert_eq!(ns[130], 12, "4 KiB LBAs");
}

/// 20 pages (80 KiB, 160 blocks) through PRP1 with an offset and a chained
/// PRP list: the first list page has room for 3 entries (2 data + chain).
fn chained_write(d: &mut Driver, slba: u64, pattern: u8) -> seraph_nvme::Completion {
    let pages: Vec<u64> = (0..21).map(|i| DATA + 0x2000 * i).collect();
    // PRP1 starts 0x200 into its page: 20 pages of data need 21 pages.
    let len = 20 * 4096usize;
    let data: Vec<u8> = (0..len).map(|i| (i / 512) as u8 ^ pattern).collect();
    let mut at = 0usize;
    for (i, p) in pages.iter().enumerate() {
        let start = if i == 0 { p + 0x200 } else { *p };
        let n = (4096 - (start % 4096) as usize).min(len - at);
        d.dma.write(start, &data[at..at + n]).unwrap();
        at += n;
    }
    let first_list = LISTS + 0x1000 - 24;
    d.dma.write_u64(first_list, pages[1]).unwrap();
    d.dma.write_u64(first_list + 8, pages[2]).unwrap();
    d.dma.write_u64(first_list + 16, LISTS + 0x4000).unwrap();
    for (i, p) in pages[3..].iter().enumerate() {
        d.dma.write_u64(LISTS + 0x4000 + 8 * i as u64, *p).unwrap();
    }
    d.io(1, Driver::rw(0x01, slba, 160, pages[0] + 0x200, first_list))
}

#[test]
fn writes_across_prp_list_pages_read_back_after_flush() {
    let mut d = Driver::memory_disk(4096, 512, false);
    d.enable();
    d.create_pair(1, 256, 1);
    assert_eq!(chained_write(&mut d, 100, 0x5A).status, Status::SUCCESS);
    let flush = {
        let mut c = cmd(0x00);
        c.nsid = 1;
        c
    };
    assert_eq!(d.io(1, flush).status, Status::SUCCESS);
    // The bytes are on the disk where they belong.
    let disk = d.nvme.disk().memory().unwrap();
    assert_eq!(disk[100 * 512], 0x5A);
    assert_eq!(disk[101 * 512], 1 ^ 0x5A);
    assert_eq!(disk[259 * 512 + 511], 159 ^ 0x5A);
    assert_eq!(disk[260 * 512], 0);
    // Read back into one contiguous buffer through a plain PRP list.
    let dst = 0x80_0000u64;
    for i in 0..19u64 {
        d.dma
            .write_u64(LISTS + 0x8000 + 8 * i, dst + 0x1000 * (i + 1))
            .unwrap();
    }
    let r = d.io(1, Driver::rw(0x02, 100, 160, dst, LISTS + 0x8000));
    assert_eq!(r.status, Status::SUCCESS);
    let mut back = vec![0u8; 20 * 4096];
    d.dma.read(dst, &mut back).unwrap();
    assert!(
        back.chunks(512)
            .enumerate()
            .all(|(i, b)| b.iter().all(|x| *x == (i as u8) ^ 0x5A))
    );
}

#[test]
fn io_statuses_for_every_error() {
    let mut d = Driver::memory_disk(2048, 512, false);
    d.enable();
    d.create_pair(1, 64, 1);
    let ok = d.io(1, Driver::rw(0x02, 2047, 1, DATA, 0));
    assert_eq!(ok.status, Status::SUCCESS);
    let cases = [
        (Driver::rw(0x02, 2047, 2, DATA, 0), Status::LBA_OUT_OF_RANGE),
        (
            Driver::rw(0x01, u64::MAX, 1, DATA, 0),
            Status::LBA_OUT_OF_RANGE,
        ),
        (Driver::rw(0x7F, 0, 1, DATA, 0), Status::INVALID_OPCODE),
        (Driver::rw(0x05, 0, 1, DATA, 0), Status::INVALID_OPCODE),
        (
            Driver::rw(0x02, 0, 1, DATA + 2, 0),
            Status::INVALID_PRP_OFFSET,
        ),
        (
            Driver::rw(0x02, 0, 16, DATA, DATA + 0x10),
            Status::INVALID_PRP_OFFSET,
        ),
        (
            Driver::rw(0x02, 0, 1, 0x1_0000_0000, 0),
            Status::DATA_TRANSFER_ERROR,
        ),
        (
            Driver::rw(0x01, 0, 16, DATA, 0xFFFF_F000),
            Status::DATA_TRANSFER_ERROR,
        ),
        (
            Driver::rw(0x02, 0, 1025, DATA, LISTS),
            Status::INVALID_FIELD,
        ),
    ];
    for (c, want) in cases {
        assert_eq!(d.io(1, c).status, want, "{c:?}");
    }
    let mut other_ns = Driver::rw(0x02, 0, 1, DATA, 0);
    other_ns.nsid = 2;
    assert_eq!(d.io(1, other_ns).status, Status::INVALID_NAMESPACE);
    let mut sgl = Driver::rw(0x02, 0, 1, DATA, 0);
    sgl.psdt = 1;
    assert_eq!(d.io(1, sgl).status, Status::INVALID_FIELD);
    // Admin: unknown opcode, SGL.
    assert_eq!(d.admin(cmd(0x80)).status, Status::INVALID_OPCODE);
    // Errors the guest cannot fix by retrying carry Do Not Retry.
    let c = d.io(1, Driver::rw(0x02, 4096, 1, DATA, 0));
    let raw = c.to_bytes();
    assert_eq!(raw[15] >> 7, 1, "DNR set for LBA out of range");
}

#[test]
fn readonly_namespaces_refuse_writes_but_read_and_flush() {
    let mut data = vec![0u8; 64 * 512];
    data[..18].copy_from_slice(b"ATLAS-HOST-PATTERN");
    let mut d = Driver::new(seraph_nvme::DiskImage::in_memory(data, 512, true));
    d.enable();
    d.create_pair(1, 16, 0);
    assert_eq!(
        d.io(1, Driver::rw(0x01, 0, 1, DATA, 0)).status,
        Status::WRITE_PROTECTED
    );
    assert_eq!(
        d.io(1, Driver::rw(0x08, 0, 1, 0, 0)).status,
        Status::WRITE_PROTECTED
    );
    assert_eq!(
        d.io(1, Driver::rw(0x02, 0, 1, DATA, 0)).status,
        Status::SUCCESS
    );
    let mut b = [0u8; 18];
    d.dma.read(DATA, &mut b).unwrap();
    assert_eq!(&b, b"ATLAS-HOST-PATTERN");
    let mut f = cmd(0x00);
    f.nsid = 0xFFFF_FFFF;
    assert_eq!(d.io(1, f).status, Status::SUCCESS);
    assert_eq!(d.nvme.disk().memory().unwrap()[0], b'A');
}

#[test]
fn write_zeroes_and_dataset_management() {
    let mut d = Driver::new(seraph_nvme::DiskImage::in_memory(
        vec![0xFF; 64 * 512],
        512,
        false,
    ));
    d.enable();
    d.create_pair(1, 16, 0);
    assert_eq!(
        d.io(1, Driver::rw(0x08, 4, 8, 0, 0)).status,
        Status::SUCCESS
    );
    let disk = d.nvme.disk().memory().unwrap();
    assert!(disk[4 * 512..12 * 512].iter().all(|b| *b == 0));
    assert_eq!(disk[12 * 512], 0xFF);
    assert_eq!(disk[4 * 512 - 1], 0xFF);
    assert_eq!(
        d.io(1, Driver::rw(0x08, 60, 8, 0, 0)).status,
        Status::LBA_OUT_OF_RANGE
    );
    // Two DSM ranges: deallocate is accepted, a range past the end is not.
    let range = |slba: u64, len: u32| {
        let mut r = [0u8; 16];
        r[4..8].copy_from_slice(&len.to_le_bytes());
        r[8..16].copy_from_slice(&slba.to_le_bytes());
        r
    };
    d.dma.write(DATA, &range(0, 8)).unwrap();
    d.dma.write(DATA + 16, &range(32, 32)).unwrap();
    let mut dsm = cmd(0x09);
    dsm.nsid = 1;
    dsm.prp1 = DATA;
    dsm.cdw[0] = 1;
    dsm.cdw[1] = 4;
    assert_eq!(d.io(1, dsm).status, Status::SUCCESS);
    d.dma.write(DATA + 16, &range(32, 33)).unwrap();
    assert_eq!(d.io(1, dsm).status, Status::LBA_OUT_OF_RANGE);
}

#[test]
fn features_logs_abort_and_async_events() {
    let mut d = Driver::memory_disk(64, 512, false);
    d.enable();
    let feat = |op: u8, fid: u32, v: u32| {
        let mut c = cmd(op);
        c.cdw[0] = fid;
        c.cdw[1] = v;
        c
    };
    let nq = d.admin_ok(feat(0x09, 0x07, 3 | 3 << 16));
    assert_eq!(nq, 62 | 62 << 16, "63 I/O queues of each kind");
    assert_eq!(
        d.admin(feat(0x09, 0x07, 0xFFFF)).status,
        Status::INVALID_FIELD
    );
    assert_eq!(d.admin_ok(feat(0x0A, 0x06, 0)), 1, "write cache on");
    d.admin_ok(feat(0x09, 0x06, 0));
    assert_eq!(d.admin_ok(feat(0x0A, 0x06, 0)), 0);
    assert_eq!(d.admin_ok(feat(0x0A, 0x106, 0)), 1, "default: on");
    d.admin_ok(feat(0x09, 0x08, 0x0A05));
    assert_eq!(d.admin_ok(feat(0x0A, 0x08, 0)), 0x0A05);
    assert_eq!(d.admin(feat(0x09, 0x80, 0)).status, Status::INVALID_FIELD);
    assert_eq!(
        d.admin(feat(0x09, 0x8000_0006, 1)).status,
        Status::FEATURE_NOT_SAVEABLE
    );
    // SMART log counts commands.
    d.create_pair(1, 16, 0);
    d.io(1, Driver::rw(0x01, 0, 8, DATA, 0));
    let mut log = cmd(0x02);
    log.prp1 = ADMIN_BUF;
    log.cdw[0] = 0x02 | 127 << 16;
    d.admin_ok(log);
    let mut smart = [0u8; 512];
    d.dma.read(ADMIN_BUF, &mut smart).unwrap();
    assert_eq!(smart[80], 1, "host write commands");
    assert_eq!(smart[48], 1, "data units written (thousands, rounded up)");
    log.cdw[0] = 0x42 | 127 << 16;
    assert_eq!(d.admin(log).status, Status::INVALID_LOG_PAGE);
    // Abort finds nothing in flight.
    assert_eq!(d.admin_ok(cmd(0x08)) & 1, 1);
    // Asynchronous event requests are held: no completion, up to 4.
    for _ in 0..4 {
        d.queue(0, cmd(0x0C));
    }
    d.ring(0);
    assert!(d.peek(0).is_none());
    let over = d.admin(cmd(0x0C));
    assert_eq!(over.status, Status::AER_LIMIT_EXCEEDED);
}
