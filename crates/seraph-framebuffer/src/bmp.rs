//! 24-bit uncompressed BMP: writer, and a one-pixel reader for checks.

use crate::error::{FramebufferError, Result};
use crate::geometry::{Geometry, PixelFormat};

/// BITMAPFILEHEADER (14 bytes) + BITMAPINFOHEADER (40 bytes): where the
/// pixel array starts.
pub const BMP_HEADER_LEN: usize = 54;

/// Resolution written to the header: 2835 pixels per metre (72 DPI).
pub const BMP_PIXELS_PER_METRE: i32 = 2835;

const FILE_HEADER_LEN: u32 = 14;
const INFO_HEADER_LEN: u32 = 40;

/// Bytes in one 24-bit BMP line of `width` pixels, padded to 4 bytes.
fn padded_row_len(width: u64) -> Option<u64> {
    width.checked_mul(3)?.checked_add(3).map(|n| n & !3)
}

/// The headers of a 24-bit BMP for a geometry, and its sizes.
pub(crate) struct BmpHeader {
    /// BITMAPFILEHEADER + BITMAPINFOHEADER, [`BMP_HEADER_LEN`] bytes.
    pub(crate) bytes: Vec<u8>,
    /// Bytes per stored line, padded to a multiple of 4.
    pub(crate) row_len: usize,
    /// Size of the whole file.
    pub(crate) file_len: u32,
}

impl BmpHeader {
    /// The headers for `geom`; errors if the image does not fit a BMP's 32-bit sizes.
    pub(crate) fn new(geom: &Geometry) -> Result<Self> {
        let too_large = || FramebufferError::ImageTooLarge {
            width: geom.width(),
            height: geom.height(),
            format: "BMP",
        };
        let width = i32::try_from(geom.width()).map_err(|_| too_large())?;
        let height = i32::try_from(geom.height()).map_err(|_| too_large())?;
        let row_len = padded_row_len(u64::from(geom.width())).ok_or_else(too_large)?;
        let image_len = row_len
            .checked_mul(u64::from(geom.height()))
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(too_large)?;
        let file_len = image_len
            .checked_add(FILE_HEADER_LEN + INFO_HEADER_LEN)
            .ok_or_else(too_large)?;
        let row_len = usize::try_from(row_len).map_err(|_| too_large())?;

        let mut out = Vec::with_capacity(BMP_HEADER_LEN);
        // BITMAPFILEHEADER
        out.extend_from_slice(b"BM");
        out.extend_from_slice(&file_len.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes()); // reserved
        out.extend_from_slice(&0u16.to_le_bytes()); // reserved
        out.extend_from_slice(&(FILE_HEADER_LEN + INFO_HEADER_LEN).to_le_bytes());
        // BITMAPINFOHEADER
        out.extend_from_slice(&INFO_HEADER_LEN.to_le_bytes());
        out.extend_from_slice(&width.to_le_bytes());
        out.extend_from_slice(&height.to_le_bytes()); // positive: bottom-up
        out.extend_from_slice(&1u16.to_le_bytes()); // planes
        out.extend_from_slice(&24u16.to_le_bytes()); // bits per pixel
        out.extend_from_slice(&0u32.to_le_bytes()); // BI_RGB, no compression
        out.extend_from_slice(&image_len.to_le_bytes());
        out.extend_from_slice(&BMP_PIXELS_PER_METRE.to_le_bytes());
        out.extend_from_slice(&BMP_PIXELS_PER_METRE.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes()); // colours used
        out.extend_from_slice(&0u32.to_le_bytes()); // important colours
        Ok(Self {
            bytes: out,
            row_len,
            file_len,
        })
    }
}

/// Encodes the framebuffer as a 24-bit BMP: 54-byte header, lines bottom-up,
/// each line blue-green-red padded with zeros to a multiple of 4 bytes.
///
/// Errors if `pixels` is shorter than [`Geometry::byte_len`] or the image
/// does not fit the BMP's 32-bit sizes.
pub fn encode_bmp(pixels: &[u8], geom: &Geometry) -> Result<Vec<u8>> {
    geom.check_buffer(pixels)?;
    let header = BmpHeader::new(geom)?;
    let row_len = header.row_len;
    let mut out = Vec::with_capacity(header.file_len as usize);
    out.extend_from_slice(&header.bytes);
    for y in (0..geom.height()).rev() {
        let line_start = out.len();
        match geom.format() {
            // The guest's native format: copy B, G, R straight out of each
            // 4-byte pixel (the common case, and the hot loop of a screenshot).
            PixelFormat::Bgra8 => {
                let start = y as usize * geom.stride() as usize;
                let len = geom.width() as usize * 4;
                if let Some(line) = pixels.get(start..start + len) {
                    for px in line.chunks_exact(4) {
                        out.extend_from_slice(&px[..3]);
                    }
                }
            }
            _ => {
                for [r, g, b] in geom.row_rgb(pixels, y) {
                    out.extend_from_slice(&[b, g, r]);
                }
            }
        }
        // Pads the line (and would fill a line the buffer lacked: never
        // happens after check_buffer, but keeps the file well formed).
        out.resize(line_start + row_len, 0);
    }
    Ok(out)
}

fn le_u16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn le_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn le_i32(bytes: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// The red, green and blue of pixel (`x`, `y`) (`y` = 0 is the top line) of
/// an uncompressed 24- or 32-bit BMP, bottom-up or top-down; `None` if the
/// file is not one, is truncated, or the pixel is outside the image.
pub fn decode_bmp_pixel(bmp: &[u8], x: u32, y: u32) -> Option<[u8; 3]> {
    if bmp.get(0..2)? != b"BM" {
        return None;
    }
    let data_offset = u64::from(le_u32(bmp, 10)?);
    let width = le_i32(bmp, 18)?;
    let height = le_i32(bmp, 22)?;
    let bits = le_u16(bmp, 28)?;
    let compression = le_u32(bmp, 30)?;
    if compression != 0 || width <= 0 || height == 0 {
        return None;
    }
    let bytes_per_pixel: u64 = match bits {
        24 => 3,
        32 => 4,
        _ => return None,
    };
    let width = u64::from(width.unsigned_abs());
    let rows = u64::from(height.unsigned_abs());
    let (x, y) = (u64::from(x), u64::from(y));
    if x >= width || y >= rows {
        return None;
    }
    let row_len = width.checked_mul(bytes_per_pixel)?.checked_add(3)? & !3;
    let stored_row = if height > 0 { rows - 1 - y } else { y };
    let at = stored_row
        .checked_mul(row_len)?
        .checked_add(x.checked_mul(bytes_per_pixel)?)?
        .checked_add(data_offset)?;
    let at = usize::try_from(at).ok()?;
    let px = bmp.get(at..at.checked_add(3)?)?;
    Some([px[2], px[1], px[0]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::PixelFormat;

    fn rgb_geometry(width: u32, height: u32) -> Geometry {
        Geometry::packed(width, height, PixelFormat::Rgb8, u64::MAX).unwrap()
    }

    #[test]
    fn header_fields_are_exact() {
        let geom = Geometry::seraph_default();
        let pixels = vec![0u8; geom.byte_len() as usize];
        let bmp = encode_bmp(&pixels, &geom).unwrap();
        // 1024 x 3 = 3072 bytes a line, already a multiple of 4.
        let file_len = 54 + 3072 * 768;
        assert_eq!(bmp.len(), file_len);
        assert_eq!(&bmp[0..2], b"BM");
        assert_eq!(le_u32(&bmp, 2), Some(file_len as u32));
        assert_eq!(le_u32(&bmp, 6), Some(0));
        assert_eq!(le_u32(&bmp, 10), Some(54));
        assert_eq!(le_u32(&bmp, 14), Some(40));
        assert_eq!(le_i32(&bmp, 18), Some(1024));
        assert_eq!(le_i32(&bmp, 22), Some(768));
        assert_eq!(le_u16(&bmp, 26), Some(1));
        assert_eq!(le_u16(&bmp, 28), Some(24));
        assert_eq!(le_u32(&bmp, 30), Some(0));
        assert_eq!(le_u32(&bmp, 34), Some(3072 * 768));
        assert_eq!(le_i32(&bmp, 38), Some(2835));
        assert_eq!(le_i32(&bmp, 42), Some(2835));
        assert_eq!(le_u32(&bmp, 46), Some(0));
        assert_eq!(le_u32(&bmp, 50), Some(0));
    }

    #[test]
    fn three_by_two_image_exact_bytes() {
        // Top line: red, green, blue. Bottom line: white, black, grey.
        #[rustfmt::skip]
        let pixels = [
            255, 0, 0,   0, 255, 0,   0, 0, 255,
            255, 255, 255,   0, 0, 0,   0x80, 0x40, 0x20,
        ];
        let bmp = encode_bmp(&pixels, &rgb_geometry(3, 2)).unwrap();
        // Lines are 9 bytes, padded to 12; two lines = 24; file = 78.
        let mut expected = vec![
            b'B', b'M', 78, 0, 0, 0, 0, 0, 0, 0, 54, 0, 0, 0, // file header
            40, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 24, 0, // info: size, w, h, planes, bpp
            0, 0, 0, 0, 24, 0, 0, 0, // BI_RGB, image size
            0x13, 0x0B, 0, 0, 0x13, 0x0B, 0, 0, // 2835 px/m twice
            0, 0, 0, 0, 0, 0, 0, 0, // colours
        ];
        #[rustfmt::skip]
        expected.extend_from_slice(&[
            // bottom line first, BGR, then 3 padding bytes
            255, 255, 255,   0, 0, 0,   0x20, 0x40, 0x80,   0, 0, 0,
            // top line
            0, 0, 255,   0, 255, 0,   255, 0, 0,   0, 0, 0,
        ]);
        assert_eq!(bmp, expected);
        assert_eq!(decode_bmp_pixel(&bmp, 0, 0), Some([255, 0, 0]));
        assert_eq!(decode_bmp_pixel(&bmp, 2, 1), Some([0x80, 0x40, 0x20]));
        assert_eq!(decode_bmp_pixel(&bmp, 3, 0), None);
        assert_eq!(decode_bmp_pixel(&bmp, 0, 2), None);
    }

    #[test]
    fn bgra_and_rgba_channel_order() {
        let bgra = Geometry::packed(1, 1, PixelFormat::Bgra8, 16).unwrap();
        let rgba = Geometry::packed(1, 1, PixelFormat::Rgba8, 16).unwrap();
        let bytes = [0x11, 0x22, 0x33, 0xFF];
        let from_bgra = encode_bmp(&bytes, &bgra).unwrap();
        let from_rgba = encode_bmp(&bytes, &rgba).unwrap();
        // BMP stores B, G, R.
        assert_eq!(&from_bgra[54..57], &[0x11, 0x22, 0x33]);
        assert_eq!(&from_rgba[54..57], &[0x33, 0x22, 0x11]);
        assert_eq!(decode_bmp_pixel(&from_bgra, 0, 0), Some([0x33, 0x22, 0x11]));
        assert_eq!(decode_bmp_pixel(&from_rgba, 0, 0), Some([0x11, 0x22, 0x33]));
    }

    #[test]
    fn stride_padding_in_the_source_is_skipped() {
        // 2x2 BGR8 with a 8-byte stride: 2 junk bytes after each line.
        let geom = Geometry::new(2, 2, 8, PixelFormat::Bgr8, 16).unwrap();
        #[rustfmt::skip]
        let pixels = [
            1, 2, 3, 4, 5, 6, 0xEE, 0xEE,
            7, 8, 9, 10, 11, 12, 0xEE, 0xEE,
        ];
        let bmp = encode_bmp(&pixels, &geom).unwrap();
        // BGR8 source bytes are already in BMP order.
        assert_eq!(
            &bmp[54..],
            &[7, 8, 9, 10, 11, 12, 0, 0, 1, 2, 3, 4, 5, 6, 0, 0]
        );
    }

    #[test]
    fn short_buffer_is_an_error() {
        let geom = rgb_geometry(3, 2);
        let err = encode_bmp(&[0; 17], &geom).unwrap_err();
        assert!(matches!(
            err,
            FramebufferError::ShortBuffer {
                got: 17,
                needed: 18,
                ..
            }
        ));
        assert_eq!(
            err.to_string(),
            "pixel buffer holds 17 bytes but a 3x2 framebuffer needs 18"
        );
    }

    #[test]
    fn decoder_rejects_garbage_and_reads_top_down() {
        assert_eq!(decode_bmp_pixel(b"", 0, 0), None);
        assert_eq!(decode_bmp_pixel(b"BM", 0, 0), None);
        let mut bmp = encode_bmp(&[1, 2, 3, 4, 5, 6], &rgb_geometry(1, 2)).unwrap();
        // Truncated pixel data.
        assert_eq!(decode_bmp_pixel(&bmp[..bmp.len() - 8], 0, 0), None);
        // Flip to top-down (negative height): line 0 is now stored first.
        bmp[22..26].copy_from_slice(&(-2i32).to_le_bytes());
        assert_eq!(decode_bmp_pixel(&bmp, 0, 0), Some([4, 5, 6]));
        // A huge data offset must not overflow or panic.
        bmp[10..14].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode_bmp_pixel(&bmp, 0, 0), None);
    }
}
