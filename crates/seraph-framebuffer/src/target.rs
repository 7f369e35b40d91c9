//! Which file a screenshot path names, checked before anything is written.
//!
//! A screenshot is written to a temporary file and renamed over its path, so
//! whatever sits at the path is *replaced*. That is right for a regular file
//! and wrong for everything else: renaming over `/dev/null` (as root), a FIFO
//! someone reads or a socket would swap a host object for an image, and
//! renaming over a symlink would replace the link instead of writing its
//! target. So: a symlink is followed and its target written (the link stays);
//! a path that is, or leads to, anything but a regular file (or nothing yet)
//! is refused.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::error::{FramebufferError, Result};

/// True if `path` ends in a path separator (`shot/`): it names a directory.
fn ends_with_separator(path: &Path) -> bool {
    path.as_os_str()
        .as_encoded_bytes()
        .last()
        .is_some_and(|&b| std::path::is_separator(char::from(b)))
}

/// The file a screenshot at `path` is written to: `path` itself, or the
/// final target if `path` is a symlink. Errors, naming `path`, if the path
/// ends in a separator or in `..`, its directory does not exist or is not a
/// directory, or it is (or its symlink leads to) a directory, a device, a
/// FIFO, a socket, a missing file (dangling link) or a symlink loop. Nothing
/// is created or changed.
pub fn screenshot_target(path: &Path) -> Result<PathBuf> {
    let bad = |reason: String| FramebufferError::BadTarget {
        path: path.to_owned(),
        reason,
    };
    if path.file_name().is_none() {
        return Err(FramebufferError::NoFileName(path.to_owned()));
    }
    if ends_with_separator(path) {
        return Err(bad(
            "ends in a path separator, so it names a directory: give a file name ending in .bmp or .png".into(),
        ));
    }
    let link = match fs::symlink_metadata(path) {
        Ok(meta) => Some(meta),
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => None,
        Err(e) => return Err(bad(format!("cannot be examined: {e}"))),
    };
    let target = match link {
        // A new file: its directory must exist.
        None => path.to_owned(),
        Some(meta) => {
            let resolved = if meta.file_type().is_symlink() {
                fs::canonicalize(path).map_err(|e| {
                    bad(format!(
                        "is a symbolic link whose target cannot be written ({e}): give a regular file"
                    ))
                })?
            } else {
                path.to_owned()
            };
            let meta =
                fs::metadata(&resolved).map_err(|e| bad(format!("cannot be examined: {e}")))?;
            if meta.is_dir() {
                return Err(bad(
                    "is a directory: give a file name ending in .bmp or .png".into(),
                ));
            }
            if !meta.is_file() {
                return Err(bad(format!(
                    "is {}, not a regular file: a screenshot replaces its file, so give a regular file (or --no-screenshot)",
                    describe(&meta)
                )));
            }
            resolved
        }
    };
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(target),
        Ok(_) => Err(bad(format!(
            "is in `{}`, which is not a directory",
            dir.display()
        ))),
        Err(e) => Err(bad(format!(
            "is in `{}`, which cannot be used: {e}",
            dir.display()
        ))),
    }
}

/// "a FIFO", "a character device", ... for an error message.
fn describe(meta: &fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    let _ = meta;
    "a special file"
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use super::*;

    struct Dir(PathBuf);
    impl Dir {
        fn new(test: &str) -> Self {
            let dir = std::env::temp_dir()
                .join(format!("seraph-fb-target-{test}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn reason(path: &Path) -> String {
        screenshot_target(path).unwrap_err().to_string()
    }

    #[test]
    fn regular_and_new_files_are_their_own_targets() {
        let d = Dir::new("plain");
        let new = d.0.join("new.bmp");
        assert_eq!(screenshot_target(&new).unwrap(), new);
        fs::write(&new, b"old").unwrap();
        assert_eq!(screenshot_target(&new).unwrap(), new);
        assert_eq!(
            screenshot_target(Path::new("shot.bmp")).unwrap(),
            Path::new("shot.bmp")
        );
    }

    #[test]
    fn symlinks_are_followed_to_their_regular_target() {
        let d = Dir::new("link");
        let real = d.0.join("real.bmp");
        fs::write(&real, b"old").unwrap();
        let link = d.0.join("link.bmp");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert_eq!(
            screenshot_target(&link).unwrap(),
            fs::canonicalize(&real).unwrap()
        );
        let dangling = d.0.join("dangling.bmp");
        std::os::unix::fs::symlink(d.0.join("nowhere"), &dangling).unwrap();
        assert!(reason(&dangling).contains("symbolic link"));
        let to_null = d.0.join("null.bmp");
        std::os::unix::fs::symlink("/dev/null", &to_null).unwrap();
        assert!(reason(&to_null).contains("character device"));
    }

    #[test]
    fn special_files_directories_and_bad_parents_are_refused() {
        let d = Dir::new("special");
        assert!(reason(Path::new("/dev/null")).contains("is a character device"));
        assert!(reason(&d.0).contains("is a directory"));
        let slash = format!("{}/missing/", d.0.display());
        assert!(reason(Path::new(&slash)).contains("ends in a path separator"));
        assert!(reason(Path::new("shot.bmp/")).contains("ends in a path separator"));
        assert!(reason(&d.0.join("missing/x.bmp")).contains("cannot be used"));
        let file = d.0.join("file");
        fs::write(&file, b"").unwrap();
        assert!(reason(&file.join("x.bmp")).contains("not a directory"));
        assert!(matches!(
            screenshot_target(Path::new("/")),
            Err(FramebufferError::NoFileName(_))
        ));
        let fifo = d.0.join("fifo.bmp");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .is_ok_and(|s| s.success());
        if made {
            assert!(reason(&fifo).contains("is a FIFO"));
        }
    }
}
