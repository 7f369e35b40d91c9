//! PNG screenshots through the `png` crate (8-bit RGB, no alpha).

use std::io::Cursor;

use crate::error::{FramebufferError, Result};
use crate::geometry::Geometry;

/// Encodes the framebuffer as an 8-bit RGB PNG.
///
/// Errors if `pixels` is shorter than [`Geometry::byte_len`].
pub fn encode_png(pixels: &[u8], geom: &Geometry) -> Result<Vec<u8>> {
    geom.check_buffer(pixels)?;
    let rgb_len = u64::from(geom.width()) * u64::from(geom.height()) * 3;
    let rgb_len = usize::try_from(rgb_len).map_err(|_| FramebufferError::ImageTooLarge {
        width: geom.width(),
        height: geom.height(),
        format: "PNG",
    })?;
    let mut rgb = Vec::with_capacity(rgb_len);
    for y in 0..geom.height() {
        for px in geom.row_rgb(pixels, y) {
            rgb.extend_from_slice(&px);
        }
    }

    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, geom.width(), geom.height());
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&rgb)?;
    writer.finish()?;
    Ok(out)
}

/// The red, green and blue of pixel (`x`, `y`) (`y` = 0 is the top line) of a
/// PNG; `None` if it does not decode or the pixel is outside the image.
/// Decodes the whole image (within the png crate's default 64 MiB limit):
/// meant for tests and tools, not hot paths.
pub fn decode_png_pixel(data: &[u8], x: u32, y: u32) -> Option<[u8; 3]> {
    let mut decoder = png::Decoder::new(Cursor::new(data));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().ok()?;
    let mut buf = vec![0; reader.output_buffer_size()?];
    let info = reader.next_frame(&mut buf).ok()?;
    if x >= info.width || y >= info.height {
        return None;
    }
    let channels = match info.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Indexed => return None,
    };
    let at = (y as usize)
        .checked_mul(info.line_size)?
        .checked_add((x as usize).checked_mul(channels)?)?;
    let px = buf.get(at..at.checked_add(channels)?)?;
    Some(if channels >= 3 {
        [px[0], px[1], px[2]]
    } else {
        [px[0], px[0], px[0]]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::PixelFormat;

    #[test]
    fn png_round_trip_keeps_every_pixel() {
        // 5x3 BGRA with a padded stride, every pixel distinct.
        let geom = Geometry::new(5, 3, 24, PixelFormat::Bgra8, 1024).unwrap();
        let mut pixels = vec![0xAAu8; geom.byte_len() as usize];
        for y in 0..3u8 {
            for x in 0..5u8 {
                let at = usize::from(y) * 24 + usize::from(x) * 4;
                pixels[at..at + 4].copy_from_slice(&[x * 10, y * 20, x + y, 0]);
            }
        }
        let png = encode_png(&pixels, &geom).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        for y in 0..3u8 {
            for x in 0..5u8 {
                assert_eq!(
                    decode_png_pixel(&png, u32::from(x), u32::from(y)),
                    Some([x + y, y * 20, x * 10]),
                    "pixel ({x}, {y})"
                );
            }
        }
        assert_eq!(decode_png_pixel(&png, 5, 0), None);
        assert_eq!(decode_png_pixel(&png, 0, 3), None);
    }

    #[test]
    fn png_header_says_rgb8_and_size() {
        let geom = Geometry::packed(7, 2, PixelFormat::Rgb8, 1024).unwrap();
        let png = encode_png(&[0; 42], &geom).unwrap();
        // IHDR follows the signature: length, "IHDR", width, height, depth 8, colour type 2.
        assert_eq!(&png[12..16], b"IHDR");
        assert_eq!(&png[16..20], &7u32.to_be_bytes());
        assert_eq!(&png[20..24], &2u32.to_be_bytes());
        assert_eq!(png[24], 8);
        assert_eq!(png[25], 2);
    }

    #[test]
    fn png_short_buffer_is_an_error() {
        let geom = Geometry::packed(7, 2, PixelFormat::Rgb8, 1024).unwrap();
        assert!(matches!(
            encode_png(&[0; 41], &geom),
            Err(FramebufferError::ShortBuffer {
                got: 41,
                needed: 42,
                ..
            })
        ));
    }

    #[test]
    fn png_decoder_rejects_garbage() {
        assert_eq!(decode_png_pixel(b"", 0, 0), None);
        assert_eq!(decode_png_pixel(b"\x89PNG\r\n\x1a\nxxxx", 0, 0), None);
    }
}
