//! The crate's one error type.

use std::io;
use std::path::PathBuf;

/// Result with [`FramebufferError`].
pub type Result<T, E = FramebufferError> = std::result::Result<T, E>;

/// Everything that can go wrong turning framebuffer bytes into an image.
#[derive(Debug, thiserror::Error)]
pub enum FramebufferError {
    /// The pixel format number is not one the boot protocol defines.
    #[error("unknown framebuffer pixel format {0} (expected 0 BGRA8, 1 RGBA8, 2 BGR8 or 3 RGB8)")]
    UnknownFormat(u32),
    /// Width or height is zero.
    #[error("framebuffer {what} is zero")]
    ZeroDimension {
        /// `"width"` or `"height"`.
        what: &'static str,
    },
    /// A line is shorter than `width` pixels.
    #[error(
        "framebuffer stride {stride} bytes is less than width {width} x {bytes_per_pixel} bytes per pixel = {needed}"
    )]
    StrideTooSmall {
        /// Bytes per line given.
        stride: u32,
        /// Pixels per line.
        width: u32,
        /// Bytes per pixel of the format.
        bytes_per_pixel: u32,
        /// The smallest stride that holds a line.
        needed: u64,
    },
    /// stride x height does not fit the framebuffer window.
    #[error(
        "framebuffer of {needed} bytes (stride {stride} x height {height}) does not fit the {window}-byte window"
    )]
    TooLarge {
        /// stride x height.
        needed: u64,
        /// Bytes per line.
        stride: u32,
        /// Lines.
        height: u32,
        /// Size of the window the framebuffer must fit.
        window: u64,
    },
    /// A packed framebuffer (width x bytes per pixel x height, computed
    /// without wrapping) does not fit the window.
    #[error(
        "framebuffer {width}x{height} needs {needed} bytes ({width} x {bytes_per_pixel} bytes per pixel x {height} lines), more than the {window}-byte window"
    )]
    PackedTooLarge {
        /// Pixels per line.
        width: u32,
        /// Lines.
        height: u32,
        /// Bytes per pixel of the format.
        bytes_per_pixel: u32,
        /// width x bytes per pixel x height, exact.
        needed: u128,
        /// Size of the window the framebuffer must fit.
        window: u64,
    },
    /// The pixel buffer is shorter than the geometry needs.
    #[error("pixel buffer holds {got} bytes but a {width}x{height} framebuffer needs {needed}")]
    ShortBuffer {
        /// Bytes given.
        got: usize,
        /// Bytes needed ([`crate::Geometry::byte_len`]).
        needed: u64,
        /// Pixels per line.
        width: u32,
        /// Lines.
        height: u32,
    },
    /// The image is too large for the file format (a BMP's sizes are 32-bit).
    #[error("a {width}x{height} image is too large for a {format} file")]
    ImageTooLarge {
        /// Pixels per line.
        width: u32,
        /// Lines.
        height: u32,
        /// `"BMP"` or `"PNG"`.
        format: &'static str,
    },
    /// The png crate refused to encode.
    #[error("PNG encoding failed: {0}")]
    Png(#[from] png::EncodingError),
    /// A screenshot path has no file name (it ends in `..` or is a root).
    #[error("screenshot path `{0}` has no file name")]
    NoFileName(PathBuf),
    /// A screenshot path names something a screenshot must not replace (a
    /// directory, a device, a FIFO, a dangling symlink) or lies in a
    /// directory that does not exist.
    #[error("screenshot path `{path}` {reason}")]
    BadTarget {
        /// The path as given.
        path: PathBuf,
        /// What is wrong with it and what to do.
        reason: String,
    },
    /// Writing a screenshot failed; nothing was left at `path`.
    #[error("cannot save screenshot `{path}` ({step}): {source}")]
    Io {
        /// The screenshot's path (the final name, not the temporary file).
        path: PathBuf,
        /// What was being done.
        step: String,
        /// The operating system's error.
        source: io::Error,
    },
}
