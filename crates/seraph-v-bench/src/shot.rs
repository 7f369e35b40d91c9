//! Measurement 6: saving a 1024x768 framebuffer as BMP and as PNG.

use std::path::Path;
use std::time::Instant;

use seraph_framebuffer::{Geometry, PixelFormat};
use seraph_guests::expected::test_picture_pixel;

use crate::error::BenchError;

/// Width and height of the measured framebuffer.
pub const SIZE: (u32, u32) = (1024, 768);

/// The framebuffer the demo kernel leaves (its test picture), BGRA8.
pub fn test_picture() -> Result<(Vec<u8>, Geometry), BenchError> {
    let (w, h) = SIZE;
    let geometry = Geometry::packed(
        w,
        h,
        PixelFormat::Bgra8,
        seraph_framebuffer::FRAMEBUFFER_WINDOW,
    )
    .map_err(|e| BenchError::Screenshot(e.to_string()))?;
    let mut pixels = Vec::with_capacity((w * h * 4) as usize);
    for y in 0..h {
        for x in 0..w {
            let rgb = test_picture_pixel(x, y, w, h).unwrap_or(0);
            pixels.extend_from_slice(&rgb.to_le_bytes());
        }
    }
    Ok((pixels, geometry))
}

/// Saves one screenshot to `path` (format from the extension, as the CLI
/// does); returns (wall ns, file size).
pub fn save_once(
    path: &Path,
    pixels: &[u8],
    geometry: &Geometry,
) -> Result<(f64, u64), BenchError> {
    let started = Instant::now();
    seraph_framebuffer::save_screenshot(path, pixels, geometry)
        .map_err(|e| BenchError::Screenshot(e.to_string()))?;
    let ns = started.elapsed().as_nanos() as f64;
    let size = std::fs::metadata(path).map_err(BenchError::io(path))?.len();
    Ok((ns, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_picture_is_bgra_1024x768() {
        let (pixels, geometry) = test_picture().unwrap();
        assert_eq!(pixels.len(), 1024 * 768 * 4);
        assert_eq!(geometry.stride(), 4096);
        // Top-left is red: BGRA bytes 00 00 FF 00.
        assert_eq!(&pixels[0..4], [0x00, 0x00, 0xFF, 0x00]);
        // The yellow square at (480, 352).
        let at = (352 * 1024 + 480) * 4;
        assert_eq!(&pixels[at..at + 4], [0x00, 0xFF, 0xFF, 0x00]);
    }
}
