//! The disk behind namespace 1: a raw image file (or, for tests and fuzzing,
//! a buffer in memory).
//!
//! `--disk PATH[,readonly][,lba=512|4096]` is parsed by [`DiskSpec::parse`]
//! and opened by [`DiskImage::open`]: the file must exist (it is never
//! created), its size must be a non-zero multiple of the LBA size, and an
//! advisory lock ([`File::try_lock`]) keeps a second process from opening it
//! for writing at the same time (read-only opens share the lock with each
//! other, never with a writer). I/O is positioned (`pread`/`pwrite`); a
//! flush is `fdatasync`.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// A `--disk` value: `PATH[,readonly][,lba=512|4096]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskSpec {
    /// The image file.
    pub path: PathBuf,
    /// Refuse writes (the namespace reports itself write protected).
    pub readonly: bool,
    /// Logical block size: 512 or 4096.
    pub lba_size: u32,
}

/// What is wrong with a `--disk` value or its image.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    /// The `--disk` value has no path.
    #[error("--disk needs an image path: --disk PATH[,readonly][,lba=512|4096]")]
    NoPath,
    /// An option after the path is not `readonly` or `lba=512|4096`.
    #[error("unknown --disk option `{0}` (expected `readonly` or `lba=512|4096`)")]
    BadOption(String),
    /// The image file does not exist.
    #[error(
        "disk image {0} does not exist (it is never created: make one, e.g. truncate -s 64M {0})"
    )]
    Missing(PathBuf),
    /// The image could not be opened or measured.
    #[error("cannot open disk image {path}: {source}")]
    Open {
        /// The image.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The image size is zero or not a multiple of the LBA size.
    #[error(
        "disk image {path} is {size} bytes: not a non-zero multiple of the {lba_size}-byte LBA size"
    )]
    BadSize {
        /// The image.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The LBA size asked for.
        lba_size: u32,
    },
    /// Another process has the image open (for writing, or we want to write).
    #[error("disk image {0} is in use by another process (only one may open it for writing)")]
    Locked(PathBuf),
}

impl DiskSpec {
    /// Parses `PATH[,readonly][,lba=512|4096]` (the path may not contain a comma).
    pub fn parse(value: &str) -> Result<Self, DiskError> {
        let mut parts = value.split(',');
        let path = parts
            .next()
            .filter(|p| !p.is_empty())
            .ok_or(DiskError::NoPath)?;
        let mut spec = Self {
            path: PathBuf::from(path),
            readonly: false,
            lba_size: 512,
        };
        for opt in parts {
            match opt {
                "readonly" | "ro" => spec.readonly = true,
                "lba=512" => spec.lba_size = 512,
                "lba=4096" => spec.lba_size = 4096,
                other => return Err(DiskError::BadOption(other.to_string())),
            }
        }
        Ok(spec)
    }
}

#[derive(Debug)]
enum Storage {
    File(File),
    Memory(Vec<u8>),
}

/// An open image: namespace 1's blocks.
#[derive(Debug)]
pub struct DiskImage {
    storage: Storage,
    path: PathBuf,
    size: u64,
    lba_size: u32,
    readonly: bool,
}

impl DiskImage {
    /// Opens and locks the image `spec` names.
    pub fn open(spec: &DiskSpec) -> Result<Self, DiskError> {
        let path = spec.path.clone();
        let open_err = |source: io::Error| DiskError::Open {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(!spec.readonly)
            .open(&spec.path)
            .map_err(|e| {
                if e.kind() == io::ErrorKind::NotFound {
                    DiskError::Missing(spec.path.clone())
                } else {
                    open_err(e)
                }
            })?;
        let locked = if spec.readonly {
            file.try_lock_shared()
        } else {
            file.try_lock()
        };
        match locked {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(DiskError::Locked(spec.path.clone())),
            Err(TryLockError::Error(e)) => return Err(open_err(e)),
        }
        let size = file.seek(SeekFrom::End(0)).map_err(open_err)?;
        if size == 0 || size % u64::from(spec.lba_size) != 0 {
            return Err(DiskError::BadSize {
                path,
                size,
                lba_size: spec.lba_size,
            });
        }
        Ok(Self {
            storage: Storage::File(file),
            path,
            size,
            lba_size: spec.lba_size,
            readonly: spec.readonly,
        })
    }

    /// A disk in memory holding `data` (tests, fuzzing). `data.len()` should
    /// be a multiple of `lba_size`; a partial last block is dropped.
    pub fn in_memory(mut data: Vec<u8>, lba_size: u32, readonly: bool) -> Self {
        let lba_size = if lba_size == 4096 { 4096 } else { 512 };
        let size = data.len() as u64 / u64::from(lba_size) * u64::from(lba_size);
        data.truncate(size as usize);
        Self {
            storage: Storage::Memory(data),
            path: PathBuf::from("<memory>"),
            size,
            lba_size,
            readonly,
        }
    }

    /// The image path (`<memory>` for an in-memory disk).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Logical block size in bytes.
    pub fn lba_size(&self) -> u32 {
        self.lba_size
    }

    /// Number of logical blocks.
    pub fn blocks(&self) -> u64 {
        self.size / u64::from(self.lba_size)
    }

    /// True if writes are refused.
    pub fn readonly(&self) -> bool {
        self.readonly
    }

    /// The bytes of an in-memory disk (`None` for a file).
    pub fn memory(&self) -> Option<&[u8]> {
        match &self.storage {
            Storage::Memory(m) => Some(m),
            Storage::File(_) => None,
        }
    }

    fn range(&self, offset: u64, len: usize) -> io::Result<std::ops::Range<usize>> {
        let end = offset
            .checked_add(len as u64)
            .filter(|&e| e <= self.size)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "beyond the image"))?;
        Ok(offset as usize..end as usize)
    }

    /// Reads `buf.len()` bytes at byte `offset`.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let r = self.range(offset, buf.len())?;
        match &self.storage {
            Storage::File(f) => f.read_exact_at(buf, offset),
            Storage::Memory(m) => {
                let src = m.get(r).ok_or(io::ErrorKind::InvalidInput)?;
                buf.copy_from_slice(src);
                Ok(())
            }
        }
    }

    /// Writes `buf` at byte `offset`.
    pub fn write_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<()> {
        if self.readonly {
            return Err(io::ErrorKind::PermissionDenied.into());
        }
        let r = self.range(offset, buf.len())?;
        match &mut self.storage {
            Storage::File(f) => f.write_all_at(buf, offset),
            Storage::Memory(m) => {
                let dst = m.get_mut(r).ok_or(io::ErrorKind::InvalidInput)?;
                dst.copy_from_slice(buf);
                Ok(())
            }
        }
    }

    /// Writes `len` zero bytes at byte `offset`.
    pub fn write_zeroes(&mut self, offset: u64, len: u64) -> io::Result<()> {
        const CHUNK: u64 = 1 << 20;
        let zeros = vec![0u8; len.min(CHUNK) as usize];
        let mut done = 0u64;
        while done < len {
            let n = (len - done).min(CHUNK) as usize;
            let chunk = zeros.get(..n).ok_or(io::ErrorKind::InvalidInput)?;
            self.write_at(offset + done, chunk)?;
            done += n as u64;
        }
        Ok(())
    }

    /// Makes every completed write durable (`fdatasync`).
    pub fn flush(&self) -> io::Result<()> {
        match &self.storage {
            Storage::File(f) if !self.readonly => f.sync_data(),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_path_and_options() {
        let s = DiskSpec::parse("disk.img").unwrap();
        assert_eq!(s.path, PathBuf::from("disk.img"));
        assert!(!s.readonly);
        assert_eq!(s.lba_size, 512);
        let s = DiskSpec::parse("/x/y.raw,readonly,lba=4096").unwrap();
        assert!(s.readonly);
        assert_eq!(s.lba_size, 4096);
        assert_eq!(DiskSpec::parse("a,lba=512").unwrap().lba_size, 512);
        assert!(matches!(DiskSpec::parse(""), Err(DiskError::NoPath)));
        assert!(matches!(
            DiskSpec::parse(",readonly"),
            Err(DiskError::NoPath)
        ));
        let e = DiskSpec::parse("a,lba=1024").unwrap_err();
        assert!(e.to_string().contains("lba=1024"), "{e}");
        assert!(matches!(
            DiskSpec::parse("a,rw"),
            Err(DiskError::BadOption(_))
        ));
    }

    #[test]
    fn memory_disks_bound_every_access() {
        let mut d = DiskImage::in_memory(vec![0; 4096 + 100], 512, false);
        assert_eq!(d.size(), 4096);
        assert_eq!(d.blocks(), 8);
        d.write_at(4000, &[7; 96]).unwrap();
        let mut b = [0u8; 96];
        d.read_at(4000, &mut b).unwrap();
        assert_eq!(b, [7; 96]);
        assert!(d.write_at(4001, &[1; 96]).is_err());
        assert!(d.read_at(u64::MAX, &mut b).is_err());
        d.write_zeroes(4000, 96).unwrap();
        d.read_at(4000, &mut b).unwrap();
        assert_eq!(b, [0; 96]);
        let mut ro = DiskImage::in_memory(vec![0; 512], 512, true);
        assert!(ro.write_at(0, &[1]).is_err());
    }
}
