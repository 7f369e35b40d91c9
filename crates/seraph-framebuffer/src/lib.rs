//! Screenshots of the Seraph-V guest framebuffer.
//!
//! The guest framebuffer is ordinary guest RAM at [`FRAMEBUFFER_BASE`]: the
//! guest writes pixels without exits, and at the end of a run (or whenever a
//! screenshot is wanted) the VMM copies [`Geometry::byte_len`] bytes out of
//! guest memory and hands them to this crate, which turns them into a 24-bit
//! BMP ([`encode_bmp`]), a PNG ([`encode_png`]), a file on disk written
//! atomically ([`save_screenshot`]), or a terminal preview
//! ([`ascii_preview`], [`ansi_preview`]). Small readers ([`decode_bmp_pixel`],
//! [`decode_png_pixel`]) let tests and tools check a saved screenshot.
//!
//! Nothing here touches guest memory or panics on what a guest wrote: every
//! function takes a byte slice and a validated [`Geometry`], and a slice that
//! is too short is an error, not an out-of-bounds index.

#![forbid(unsafe_code)]

mod bmp;
mod error;
mod geometry;
mod png_image;
mod preview;
mod screenshot;
mod target;

pub use bmp::{BMP_HEADER_LEN, BMP_PIXELS_PER_METRE, decode_bmp_pixel, encode_bmp};
pub use error::{FramebufferError, Result};
pub use geometry::{FRAMEBUFFER_BASE, FRAMEBUFFER_WINDOW, Geometry, PixelFormat};
pub use png_image::{decode_png_pixel, encode_png};
pub use preview::{ASCII_RAMP, PREVIEW_MAX_LINES, ansi_preview, ascii_preview};
pub use screenshot::{DEFAULT_SCREENSHOT_FILE, ImageKind, save_black_screenshot, save_screenshot};
pub use target::screenshot_target;
