//! The raw image backend on real files: opening rules, the lock, and data
//! written through the controller landing in the file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use common::{DATA, Driver, cmd};
use seraph_nvme::{DiskError, DiskImage, DiskSpec, Status};

/// A fresh file of `size` bytes in the temp directory, removed on drop.
struct TempImage(PathBuf);

impl TempImage {
    fn new(size: u64) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "seraph-nvme-test-{}-{}.img",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let f = std::fs::File::create(&p).unwrap();
        f.set_len(size).unwrap();
        Self(p)
    }

    fn spec(&self, opts: &str) -> DiskSpec {
        DiskSpec::parse(&format!("{}{opts}", self.0.display())).unwrap()
    }
}

impl Drop for TempImage {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn missing_images_are_errors_and_never_created() {
    let p = std::env::temp_dir().join(format!("seraph-nvme-missing-{}.img", std::process::id()));
    let e = DiskImage::open(&DiskSpec::parse(p.to_str().unwrap()).unwrap()).unwrap_err();
    assert!(matches!(e, DiskError::Missing(_)), "{e}");
    assert!(e.to_string().contains("does not exist"));
    assert!(!p.exists());
}

#[test]
fn sizes_must_be_non_zero_multiples_of_the_lba_size() {
    let odd = TempImage::new(4096 + 512);
    let e = DiskImage::open(&odd.spec(",lba=4096")).unwrap_err();
    assert!(
        matches!(
            e,
            DiskError::BadSize {
                size: 4608,
                lba_size: 4096,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("4608"));
    let d = DiskImage::open(&odd.spec("")).unwrap();
    assert_eq!(d.blocks(), 9);
    drop(d);
    let empty = TempImage::new(0);
    assert!(matches!(
        DiskImage::open(&empty.spec("")),
        Err(DiskError::BadSize { .. })
    ));
}

#[test]
fn only_one_writer_at_a_time() {
    let img = TempImage::new(1 << 20);
    let first = DiskImage::open(&img.spec("")).unwrap();
    let e = DiskImage::open(&img.spec("")).unwrap_err();
    assert!(matches!(e, DiskError::Locked(_)), "{e}");
    assert!(e.to_string().contains("in use by another process"));
    assert!(matches!(
        DiskImage::open(&img.spec(",readonly")),
        Err(DiskError::Locked(_))
    ));
    drop(first);
    // Readers share; a writer waits for them.
    let r1 = DiskImage::open(&img.spec(",readonly")).unwrap();
    let r2 = DiskImage::open(&img.spec(",readonly")).unwrap();
    assert!(r1.readonly() && r2.readonly());
    assert!(matches!(
        DiskImage::open(&img.spec("")),
        Err(DiskError::Locked(_))
    ));
    drop((r1, r2));
    assert!(DiskImage::open(&img.spec("")).is_ok());
}

#[test]
fn flushed_writes_are_in_the_file_and_fua_and_write_through_work() {
    let img = TempImage::new(1 << 20);
    {
        let mut d = Driver::new(DiskImage::open(&img.spec(",lba=4096")).unwrap());
        d.enable();
        d.create_pair(1, 16, 0);
        d.dma.write(DATA, b"ATLAS-FLUSHED").unwrap();
        assert_eq!(
            d.io(1, Driver::rw(0x01, 3, 1, DATA, 0)).status,
            Status::SUCCESS
        );
        let mut flush = cmd(0x00);
        flush.nsid = 1;
        assert_eq!(d.io(1, flush).status, Status::SUCCESS);
        // FUA write, then a write with the cache turned off.
        let mut fua = Driver::rw(0x01, 4, 1, DATA, 0);
        fua.cdw[2] |= 1 << 30;
        assert_eq!(d.io(1, fua).status, Status::SUCCESS);
        let mut wc = cmd(0x09);
        wc.cdw[0] = 0x06;
        d.admin_ok(wc);
        assert_eq!(
            d.io(1, Driver::rw(0x01, 255, 1, DATA, 0)).status,
            Status::SUCCESS
        );
        assert_eq!(
            d.io(1, Driver::rw(0x01, 256, 1, DATA, 0)).status,
            Status::LBA_OUT_OF_RANGE
        );
    }
    let bytes = std::fs::read(&img.0).unwrap();
    assert_eq!(bytes.len(), 1 << 20, "the image never grows");
    for lba in [3usize, 4, 255] {
        assert_eq!(&bytes[lba * 4096..lba * 4096 + 13], b"ATLAS-FLUSHED");
    }
    // Read-only: the file is untouched by a refused write.
    let mut d = Driver::new(DiskImage::open(&img.spec(",readonly,lba=4096")).unwrap());
    d.enable();
    d.create_pair(1, 16, 0);
    d.dma.write(DATA, &[0u8; 4096]).unwrap();
    assert_eq!(
        d.io(1, Driver::rw(0x01, 3, 1, DATA, 0)).status,
        Status::WRITE_PROTECTED
    );
    assert_eq!(
        d.io(1, Driver::rw(0x02, 3, 1, DATA, 0)).status,
        Status::SUCCESS
    );
    let mut back = [0u8; 13];
    d.dma.read(DATA, &mut back).unwrap();
    assert_eq!(&back, b"ATLAS-FLUSHED");
}
