//! Reading the kernel file: opened without blocking (a FIFO with no writer
//! must not hang `open`), required to be a regular file or a character
//! device, its ELF header checked from the first 64 bytes before the rest
//! is read, and never more than RAM + 1 bytes read.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::path::Path;

use seraph_vmm::boot::{ElfError, KernelImage};
use seraph_vmm::{VmmError, exit_code};

use crate::Failure;

/// Bytes read before the header check: the ELF64 file header, and a
/// bzImage's setup header ("HdrS" at 0x202).
const EHDR_LEN: usize = 0x210;

/// The offset of a bzImage's "HdrS" magic.
const BZIMAGE_MAGIC_AT: usize = 0x202;

/// The kernel's bytes: the bundled demo kernel without a path.
pub fn read_kernel(path: Option<&Path>, memory: u64) -> Result<Vec<u8>, Failure> {
    let Some(path) = path else {
        return Ok(seraph_guests::DEMO_KERNEL.to_vec());
    };
    let shown = path.display();
    let unreadable = |e: std::io::Error| {
        Failure::new(
            exit_code::NO_INPUT,
            format!("cannot read kernel {shown}: {e}"),
        )
    };
    let file = open_nonblocking(path).map_err(unreadable)?;
    let meta = file.metadata().map_err(unreadable)?;
    if meta.is_dir() {
        return Err(Failure::new(
            exit_code::NO_INPUT,
            format!("kernel {shown} is a directory: give the path of an ELF file"),
        ));
    }
    if let Some(kind) = special_kind(&meta) {
        return Err(Failure::new(
            exit_code::NO_INPUT,
            format!("kernel {shown} is {kind}, not a regular file: give the path of an ELF file"),
        ));
    }
    let too_big = || {
        Failure::new(
            exit_code::BAD_KERNEL,
            format!(
                "kernel {shown} is more than the guest's {memory} bytes of RAM: raise --memory"
            ),
        )
    };
    if meta.len() > memory {
        return Err(Failure::new(
            exit_code::BAD_KERNEL,
            format!(
                "kernel {shown} is {} bytes, more than the guest's {memory} bytes of RAM: raise --memory",
                meta.len()
            ),
        ));
    }
    // Read at most one byte more than RAM: a device reports length 0
    // above, and /dev/zero must not fill the host's memory.
    let mut reader = file.take(memory.saturating_add(1));
    let mut bytes = Vec::new();
    (&mut reader)
        .take(EHDR_LEN as u64)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    check_header(&bytes, memory)?;
    reader.read_to_end(&mut bytes).map_err(unreadable)?;
    if bytes.len() as u64 > memory {
        return Err(too_big());
    }
    Ok(bytes)
}

/// Refuses, from the first bytes alone, a file whose ELF header is already
/// wrong (say 2 GiB of zeros): the error is the one the full parse gives,
/// without reading the rest. A short or valid header passes (the full
/// parse says what else is wrong).
fn check_header(head: &[u8], memory: u64) -> Result<(), Failure> {
    if head.len() < 64 {
        return Ok(());
    }
    // A bzImage (Linux boot protocol), or a 32-bit ELF (a PVH kernel): the
    // boot-protocol loader checks those.
    let bzimage = head.get(BZIMAGE_MAGIC_AT..BZIMAGE_MAGIC_AT + 4) == Some(b"HdrS");
    let elf32 = head.starts_with(b"\x7fELF") && head.get(4) == Some(&1);
    if bzimage || elf32 {
        return Ok(());
    }
    match KernelImage::parse(head, memory) {
        Err(
            e @ (ElfError::NotElf
            | ElfError::NotLittleEndian(_)
            | ElfError::WrongMachine(_)
            | ElfError::WrongType(_)
            | ElfError::BadPhentsize(_)
            | ElfError::BadPhnum(_)),
        ) => Err(Failure::from(VmmError::Kernel(e))),
        _ => Ok(()),
    }
}

/// Reads the `--initrd` file: a regular file of at most `memory` bytes.
pub fn read_initrd(path: &Path, memory: u64) -> Result<Vec<u8>, Failure> {
    let shown = path.display();
    let unreadable = |e: std::io::Error| {
        Failure::new(
            exit_code::NO_INPUT,
            format!("cannot read initrd {shown}: {e}"),
        )
    };
    let file = open_nonblocking(path).map_err(unreadable)?;
    let meta = file.metadata().map_err(unreadable)?;
    if !meta.is_file() {
        return Err(Failure::new(
            exit_code::NO_INPUT,
            format!("initrd {shown} is not a regular file"),
        ));
    }
    if meta.len() > memory {
        return Err(Failure::new(
            exit_code::CONFIG,
            format!(
                "initrd {shown} is {} bytes, more than the guest's {memory} bytes of RAM: raise --memory",
                meta.len()
            ),
        ));
    }
    let mut bytes = Vec::new();
    file.take(memory)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    Ok(bytes)
}

/// Opens `path` for reading without waiting for a FIFO's writer.
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    options.open(path)
}

/// "a FIFO", "a socket", "a block device" for a file that is neither a
/// regular file, a directory nor a character device; `None` otherwise.
pub fn special_kind(meta: &std::fs::Metadata) -> Option<&'static str> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_fifo() {
            return Some("a FIFO");
        }
        if t.is_socket() {
            return Some("a socket");
        }
        if t.is_block_device() {
            return Some("a block device");
        }
    }
    let _ = meta;
    None
}
