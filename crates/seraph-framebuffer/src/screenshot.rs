//! Saving a screenshot to disk without ever leaving a partial file.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::bmp::{BmpHeader, encode_bmp};
use crate::error::{FramebufferError, Result};
use crate::geometry::Geometry;
use crate::png_image::encode_png;
use crate::target::screenshot_target;

/// The screenshot file the boot protocol names: written at the end of a run.
pub const DEFAULT_SCREENSHOT_FILE: &str = "seraph_framebuffer.bmp";

/// The file format of a screenshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageKind {
    /// 24-bit uncompressed BMP.
    Bmp,
    /// 8-bit RGB PNG.
    Png,
}

impl ImageKind {
    /// PNG if `path`'s extension is `png` in any case, otherwise BMP.
    pub fn for_path(path: &Path) -> Self {
        match path.extension() {
            Some(ext) if ext.eq_ignore_ascii_case("png") => Self::Png,
            _ => Self::Bmp,
        }
    }

    /// Encodes the framebuffer in this format.
    pub fn encode(self, pixels: &[u8], geom: &Geometry) -> Result<Vec<u8>> {
        match self {
            Self::Bmp => encode_bmp(pixels, geom),
            Self::Png => encode_png(pixels, geom),
        }
    }
}

/// Tells apart temporary files of concurrent saves in one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Encodes the framebuffer (PNG for a `.png` path, any case; BMP otherwise)
/// and writes it to `path` atomically: the bytes go to a temporary file in
/// the same directory, which is then renamed over `path` (not fsynced: a
/// screenshot need not survive a host crash, and a sync costs milliseconds
/// at the end of every run). On any
/// failure the temporary file is removed and `path` is left as it was; the
/// error names `path`.
///
/// A symlink at `path` is followed and its target replaced (the link
/// stays); a path that is or leads to anything but a regular file is
/// refused without writing ([`screenshot_target`]).
pub fn save_screenshot(path: &Path, pixels: &[u8], geom: &Geometry) -> Result<ImageKind> {
    let kind = ImageKind::for_path(path);
    let target = screenshot_target(path)?;
    let bytes = kind.encode(pixels, geom)?;
    write_atomically(&target, &bytes, bytes.len() as u64)?;
    Ok(kind)
}

/// Like [`save_screenshot`] for a framebuffer known to be all zero (black),
/// without its pixels: a BMP is its header followed by zero bytes, which
/// are not written but made by extending the file (sparse where the file
/// system can), so a run whose guest never drew pays almost nothing. The
/// file is byte-for-byte what [`save_screenshot`] writes for zero pixels.
pub fn save_black_screenshot(path: &Path, geom: &Geometry) -> Result<ImageKind> {
    let kind = ImageKind::for_path(path);
    let target = screenshot_target(path)?;
    match kind {
        ImageKind::Bmp => {
            let header = BmpHeader::new(geom)?;
            write_atomically(&target, &header.bytes, u64::from(header.file_len))?;
        }
        ImageKind::Png => {
            let len =
                usize::try_from(geom.byte_len()).map_err(|_| FramebufferError::ImageTooLarge {
                    width: geom.width(),
                    height: geom.height(),
                    format: "PNG",
                })?;
            let bytes = encode_png(&vec![0u8; len], geom)?;
            write_atomically(&target, &bytes, bytes.len() as u64)?;
        }
    }
    Ok(kind)
}

/// The temporary name used while writing `path`: hidden, in the same
/// directory (so the rename cannot cross file systems), unique per process
/// and call.
fn temp_path(path: &Path) -> Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| FramebufferError::NoFileName(path.to_owned()))?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(
        ".{}.{}.tmp",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    Ok(path.with_file_name(temp_name))
}

/// Writes `bytes`, then zeros up to `total_len`, to `path` via a temporary file.
fn write_atomically(path: &Path, bytes: &[u8], total_len: u64) -> Result<()> {
    let temp = temp_path(path)?;
    let io_error = |step: String| {
        let path = path.to_owned();
        move |source| FramebufferError::Io { path, step, source }
    };
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)
        .map_err(io_error(format!(
            "creating temporary file `{}`",
            temp.display()
        )))?;
    let result = fill_and_rename(file, &temp, path, bytes, total_len);
    if result.is_err() {
        // Best effort: the temporary file may not exist any more.
        let _ = fs::remove_file(&temp);
    }
    result.map_err(|(step, source)| FramebufferError::Io {
        path: path.to_owned(),
        step,
        source,
    })
}

fn fill_and_rename(
    mut file: File,
    temp: &Path,
    path: &Path,
    bytes: &[u8],
    total_len: u64,
) -> std::result::Result<(), (String, std::io::Error)> {
    let at = |what: &str| format!("{what} temporary file `{}`", temp.display());
    file.write_all(bytes).map_err(|e| (at("writing"), e))?;
    if total_len > bytes.len() as u64 {
        file.set_len(total_len).map_err(|e| (at("extending"), e))?;
    }
    drop(file);
    fs::rename(temp, path).map_err(|e| (at("renaming"), e))
}

#[cfg(test)]
mod black_tests {
    use super::*;

    #[test]
    fn black_screenshots_match_encoding_zero_pixels() {
        let dir = std::env::temp_dir().join(format!("seraph-fb-black-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let geom = Geometry::seraph_default();
        let zeros = vec![0u8; geom.byte_len() as usize];
        for name in ["black.bmp", "black.png"] {
            let path = dir.join(name);
            assert_eq!(
                save_black_screenshot(&path, &geom).unwrap(),
                ImageKind::for_path(&path)
            );
            let expected = ImageKind::for_path(&path).encode(&zeros, &geom).unwrap();
            assert_eq!(fs::read(&path).unwrap(), expected, "{name}");
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bmp::decode_bmp_pixel;
    use crate::geometry::PixelFormat;
    use crate::png_image::decode_png_pixel;

    /// A fresh, empty directory for one test, removed when dropped.
    struct TestDir(PathBuf);

    impl TestDir {
        fn new(test: &str) -> Self {
            let dir = std::env::temp_dir()
                .join(format!("seraph-framebuffer-{test}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        fn entries(&self) -> Vec<String> {
            let mut names: Vec<String> = fs::read_dir(&self.0)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        }
    }

    impl Drop for TestDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn two_pixels() -> (Vec<u8>, Geometry) {
        let geom = Geometry::packed(2, 1, PixelFormat::Bgra8, 8).unwrap();
        (vec![0x10, 0x20, 0x30, 0, 0x40, 0x50, 0x60, 0], geom)
    }

    #[test]
    fn kind_follows_the_extension() {
        assert_eq!(ImageKind::for_path(Path::new("a.png")), ImageKind::Png);
        assert_eq!(ImageKind::for_path(Path::new("a.PnG")), ImageKind::Png);
        assert_eq!(ImageKind::for_path(Path::new("a.bmp")), ImageKind::Bmp);
        assert_eq!(ImageKind::for_path(Path::new("png")), ImageKind::Bmp);
        assert_eq!(ImageKind::for_path(Path::new("shot")), ImageKind::Bmp);
        assert_eq!(
            ImageKind::for_path(Path::new(DEFAULT_SCREENSHOT_FILE)),
            ImageKind::Bmp
        );
    }

    #[test]
    fn saves_bmp_and_png_and_nothing_else() {
        let dir = TestDir::new("save");
        let (pixels, geom) = two_pixels();
        let bmp_path = dir.0.join("shot.bmp");
        let png_path = dir.0.join("shot.PNG");
        assert_eq!(
            save_screenshot(&bmp_path, &pixels, &geom).unwrap(),
            ImageKind::Bmp
        );
        assert_eq!(
            save_screenshot(&png_path, &pixels, &geom).unwrap(),
            ImageKind::Png
        );
        assert_eq!(dir.entries(), ["shot.PNG", "shot.bmp"]);
        let bmp = fs::read(&bmp_path).unwrap();
        assert_eq!(bmp, encode_bmp(&pixels, &geom).unwrap());
        assert_eq!(decode_bmp_pixel(&bmp, 1, 0), Some([0x60, 0x50, 0x40]));
        let png = fs::read(&png_path).unwrap();
        assert_eq!(decode_png_pixel(&png, 0, 0), Some([0x30, 0x20, 0x10]));
    }

    #[test]
    fn replaces_an_existing_file() {
        let dir = TestDir::new("replace");
        let (pixels, geom) = two_pixels();
        let path = dir.0.join("shot.bmp");
        fs::write(&path, b"old").unwrap();
        save_screenshot(&path, &pixels, &geom).unwrap();
        assert_eq!(fs::read(&path).unwrap().len(), 54 + 8);
        assert_eq!(dir.entries(), ["shot.bmp"]);
    }

    #[test]
    fn missing_directory_leaves_nothing_and_names_the_path() {
        let dir = TestDir::new("missing");
        let (pixels, geom) = two_pixels();
        let path = dir.0.join("no-such-dir").join("shot.bmp");
        let err = save_screenshot(&path, &pixels, &geom).unwrap_err();
        assert!(matches!(&err, FramebufferError::BadTarget { path: p, .. } if *p == path));
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        assert!(!path.exists());
        assert!(dir.entries().is_empty());
    }

    #[test]
    fn failed_rename_removes_the_temporary_file() {
        // The target is a non-empty directory: the temporary file is written,
        // the rename fails, and the temporary file must be cleaned up.
        let dir = TestDir::new("rename");
        let (pixels, geom) = two_pixels();
        let path = dir.0.join("shot.bmp");
        fs::create_dir(&path).unwrap();
        fs::write(path.join("keep"), b"x").unwrap();
        // save_screenshot refuses a directory up front; the rename step
        // itself must still clean up if it fails.
        let err = save_screenshot(&path, &pixels, &geom).unwrap_err();
        assert!(err.to_string().contains("is a directory"), "{err}");
        let bytes = encode_bmp(&pixels, &geom).unwrap();
        let err = write_atomically(&path, &bytes, bytes.len() as u64).unwrap_err();
        assert!(err.to_string().contains("renaming"), "{err}");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        assert_eq!(dir.entries(), ["shot.bmp"]);
        assert_eq!(fs::read(path.join("keep")).unwrap(), b"x");
    }

    #[test]
    fn encoding_errors_touch_nothing() {
        let dir = TestDir::new("encode");
        let (pixels, geom) = two_pixels();
        let path = dir.0.join("shot.png");
        let err = save_screenshot(&path, &pixels[..7], &geom).unwrap_err();
        assert!(matches!(err, FramebufferError::ShortBuffer { .. }));
        assert!(dir.entries().is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_is_written_through_and_special_files_are_refused() {
        // Issue #14 item 6: the rename replaced the link (or /dev/null).
        let dir = TestDir::new("through");
        let (pixels, geom) = two_pixels();
        let real = dir.0.join("real.bmp");
        fs::write(&real, b"old").unwrap();
        let link = dir.0.join("link.bmp");
        std::os::unix::fs::symlink("real.bmp", &link).unwrap();
        save_screenshot(&link, &pixels, &geom).unwrap();
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(
            fs::read(&real).unwrap(),
            encode_bmp(&pixels, &geom).unwrap()
        );
        save_black_screenshot(&link, &geom).unwrap();
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(dir.entries(), ["link.bmp", "real.bmp"]);
        let null = Path::new("/dev/null");
        let err = save_screenshot(null, &pixels, &geom).unwrap_err();
        assert!(err.to_string().contains("character device"), "{err}");
        let err = save_black_screenshot(null, &geom).unwrap_err();
        assert!(matches!(err, FramebufferError::BadTarget { .. }));
        assert!(!fs::metadata(null).unwrap().is_file());
    }

    #[test]
    fn path_without_a_file_name_is_an_error() {
        let (pixels, geom) = two_pixels();
        let err = save_screenshot(Path::new("/"), &pixels, &geom).unwrap_err();
        assert!(matches!(err, FramebufferError::NoFileName(_)));
    }
}
