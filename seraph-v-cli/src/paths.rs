//! Output paths, checked before the guest runs (exit code 73 on failure):
//! the screenshot must be writable and a regular file or new; the serial
//! log a regular file, a new file or a character device; and no output may
//! name the kernel or the other output.

use std::path::{Path, PathBuf};

use seraph_vmm::exit_code;

use crate::Failure;
use crate::kernel::special_kind;

/// Checks that the screenshot can be written: what the path names (a
/// symlink is followed) is a regular file or does not exist yet, and its
/// directory takes a new file. Returns the file that will be written.
pub fn check_screenshot(path: &Path) -> Result<PathBuf, Failure> {
    let cant = |e: &dyn std::fmt::Display| {
        Failure::new(
            exit_code::CANT_CREATE,
            format!(
                "cannot write the screenshot: {e} (choose another --screenshot or use --no-screenshot)"
            ),
        )
    };
    let target = seraph_vmm::framebuffer::screenshot_target(path).map_err(|e| cant(&e))?;
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let probe = dir.join(format!(".seraph-v-probe-{}", std::process::id()));
    std::fs::File::create(&probe).map_err(|e| {
        Failure::new(
            exit_code::CANT_CREATE,
            format!("cannot write the screenshot {}: {e} (choose another --screenshot or use --no-screenshot)", path.display()),
        )
    })?;
    let _ = std::fs::remove_file(&probe);
    Ok(target)
}

/// Checks the serial log path: a regular file, a new file or a character
/// device (/dev/null, /dev/tty). A FIFO is refused (opening it for writing
/// would wait forever for a reader), as are sockets, block devices and
/// directories.
pub fn check_serial(path: &Path) -> Result<(), Failure> {
    let Ok(meta) = std::fs::metadata(path) else {
        // New (or unreachable: the VMM's open says why, with 73).
        return Ok(());
    };
    let kind = if meta.is_dir() {
        Some("a directory")
    } else {
        special_kind(&meta)
    };
    match kind {
        Some(kind) => Err(Failure::new(
            exit_code::CANT_CREATE,
            format!(
                "cannot write the serial log {}: it is {kind}; give a regular file or a character device such as /dev/null",
                path.display()
            ),
        )),
        None => Ok(()),
    }
}

/// What a path names, to tell whether two paths are one file.
#[derive(Debug, PartialEq, Eq)]
enum Identity {
    /// An existing file: its device and inode.
    #[cfg(unix)]
    Inode(u64, u64),
    /// An existing file (non-Unix) or a new one: its absolute, resolved path.
    Path(PathBuf),
}

/// The identity of `path`, or `None` if it can be neither found nor resolved.
fn identity(path: &Path) -> Option<Identity> {
    match std::fs::metadata(path) {
        #[cfg(unix)]
        Ok(meta) => {
            use std::os::unix::fs::MetadataExt;
            Some(Identity::Inode(meta.dev(), meta.ino()))
        }
        #[cfg(not(unix))]
        Ok(_) => std::fs::canonicalize(path).ok().map(Identity::Path),
        Err(_) => {
            let name = path.file_name()?;
            let dir = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            let dir = std::fs::canonicalize(dir).ok()?;
            Some(Identity::Path(dir.join(name)))
        }
    }
}

/// Refuses outputs that would overwrite the kernel or each other:
/// `--serial file:KERNEL` would truncate the kernel, a screenshot over the
/// serial log would replace it. Paths are compared by what they name
/// (device and inode, or the resolved path of a new file), so `./k.elf`,
/// `k.elf` and a symlink to it are one file.
pub fn check_no_clobber(
    kernel: Option<&Path>,
    serial: Option<&Path>,
    screenshot: Option<&Path>,
    capture: Option<&Path>,
) -> Result<(), Failure> {
    fn named<'a>(
        flag: &'static str,
        p: Option<&'a Path>,
    ) -> Option<(&'static str, &'a Path, Option<Identity>)> {
        p.map(|p| (flag, p, identity(p)))
    }
    let kernel = named("the kernel", kernel);
    let outputs = [
        named("--serial", serial),
        named("--screenshot", screenshot),
        named("--net-capture", capture),
    ];
    let outputs: Vec<_> = outputs.into_iter().flatten().collect();
    for (i, (flag, path, id)) in outputs.iter().enumerate() {
        let Some(id) = id else { continue };
        let earlier = outputs[..i].iter().chain(kernel.iter());
        for (other, other_path, other_id) in earlier {
            if other_id.as_ref() == Some(id) {
                return Err(Failure::new(
                    exit_code::CANT_CREATE,
                    format!(
                        "{flag} {} names the same file as {other} {}: it would be overwritten; give another path",
                        path.display(),
                        other_path.display()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Output files the run is about to create (those not there yet), removed
/// again when dropped before [`NewOutputs::keep`]: a run that fails while
/// the machine is being built (a disk already locked, a port in use) leaves
/// no empty serial log or header-only capture behind.
pub struct NewOutputs(Vec<PathBuf>);

impl NewOutputs {
    /// Notes which of `paths` do not exist yet.
    pub fn of<'a>(paths: impl IntoIterator<Item = &'a Path>) -> Self {
        Self(
            paths
                .into_iter()
                .filter(|p| std::fs::symlink_metadata(p).is_err())
                .map(Path::to_path_buf)
                .collect(),
        )
    }

    /// The machine is up: the files are the run's outputs from now on.
    pub fn keep(mut self) {
        self.0.clear();
    }
}

impl Drop for NewOutputs {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}
