//! Pixel formats and the validated shape of a framebuffer.

use crate::error::{FramebufferError, Result};

/// Guest-physical address of the framebuffer (boot info `framebuffer_base`).
pub const FRAMEBUFFER_BASE: u64 = 0xC000_0000;

/// Size of the guest-physical framebuffer window, 16 MiB.
pub const FRAMEBUFFER_WINDOW: u64 = 16 * 1024 * 1024;

/// Byte order of one pixel, numbered as the boot info's `fb_format` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    /// 0: blue, green, red, unused (4 bytes). The Seraph-V default.
    Bgra8,
    /// 1: red, green, blue, unused (4 bytes).
    Rgba8,
    /// 2: blue, green, red (3 bytes).
    Bgr8,
    /// 3: red, green, blue (3 bytes).
    Rgb8,
}

impl PixelFormat {
    /// The format with boot-protocol number `value`.
    pub fn from_spec(value: u32) -> Result<Self> {
        match value {
            0 => Ok(Self::Bgra8),
            1 => Ok(Self::Rgba8),
            2 => Ok(Self::Bgr8),
            3 => Ok(Self::Rgb8),
            other => Err(FramebufferError::UnknownFormat(other)),
        }
    }

    /// The boot-protocol number of this format.
    pub fn spec_value(self) -> u32 {
        match self {
            Self::Bgra8 => 0,
            Self::Rgba8 => 1,
            Self::Bgr8 => 2,
            Self::Rgb8 => 3,
        }
    }

    /// Bytes per pixel: 4 for the 8-bit formats with a fourth byte, else 3.
    pub fn bytes_per_pixel(self) -> u32 {
        match self {
            Self::Bgra8 | Self::Rgba8 => 4,
            Self::Bgr8 | Self::Rgb8 => 3,
        }
    }

    /// The red, green and blue of one pixel's bytes; missing bytes read as 0.
    pub fn to_rgb(self, pixel: &[u8]) -> [u8; 3] {
        let byte = |i: usize| pixel.get(i).copied().unwrap_or(0);
        match self {
            Self::Bgra8 | Self::Bgr8 => [byte(2), byte(1), byte(0)],
            Self::Rgba8 | Self::Rgb8 => [byte(0), byte(1), byte(2)],
        }
    }
}

impl TryFrom<u32> for PixelFormat {
    type Error = FramebufferError;

    fn try_from(value: u32) -> Result<Self> {
        Self::from_spec(value)
    }
}

/// The validated shape of a framebuffer: every line fits its stride and
/// stride x height fits the window it was checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Geometry {
    width: u32,
    height: u32,
    stride: u32,
    format: PixelFormat,
}

impl Geometry {
    /// Checks a framebuffer shape: nonzero width and height, `stride` (bytes
    /// per line) at least `width` pixels, and `stride * height` no larger
    /// than `window` bytes.
    pub fn new(
        width: u32,
        height: u32,
        stride: u32,
        format: PixelFormat,
        window: u64,
    ) -> Result<Self> {
        if width == 0 {
            return Err(FramebufferError::ZeroDimension { what: "width" });
        }
        if height == 0 {
            return Err(FramebufferError::ZeroDimension { what: "height" });
        }
        let bytes_per_pixel = format.bytes_per_pixel();
        // u32 x u32 always fits a u64.
        let needed = u64::from(width) * u64::from(bytes_per_pixel);
        if u64::from(stride) < needed {
            return Err(FramebufferError::StrideTooSmall {
                stride,
                width,
                bytes_per_pixel,
                needed,
            });
        }
        let total = u64::from(stride) * u64::from(height);
        if total > window || usize::try_from(total).is_err() {
            return Err(FramebufferError::TooLarge {
                needed: total,
                stride,
                height,
                window,
            });
        }
        Ok(Self {
            width,
            height,
            stride,
            format,
        })
    }

    /// A tightly packed framebuffer (stride = width x bytes per pixel)
    /// checked against `window`.
    ///
    /// A size that does not fit is reported with its exact byte count
    /// ([`FramebufferError::PackedTooLarge`]), however large the dimensions.
    pub fn packed(width: u32, height: u32, format: PixelFormat, window: u64) -> Result<Self> {
        if width == 0 {
            return Err(FramebufferError::ZeroDimension { what: "width" });
        }
        if height == 0 {
            return Err(FramebufferError::ZeroDimension { what: "height" });
        }
        let bytes_per_pixel = format.bytes_per_pixel();
        // u32 x u32 x u32 always fits a u128.
        let needed = u128::from(width) * u128::from(bytes_per_pixel) * u128::from(height);
        let stride = u64::from(width) * u64::from(bytes_per_pixel);
        match u32::try_from(stride) {
            Ok(stride) if needed <= u128::from(window) => {
                Self::new(width, height, stride, format, window)
            }
            _ => Err(FramebufferError::PackedTooLarge {
                width,
                height,
                bytes_per_pixel,
                needed,
                window,
            }),
        }
    }

    /// The boot protocol's default: 1024x768, stride 4096, BGRA8.
    pub fn seraph_default() -> Self {
        Self {
            width: 1024,
            height: 768,
            stride: 4096,
            format: PixelFormat::Bgra8,
        }
    }

    /// Pixels per line.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Lines.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Bytes from the start of one line to the start of the next.
    pub fn stride(&self) -> u32 {
        self.stride
    }

    /// Byte order of a pixel.
    pub fn format(&self) -> PixelFormat {
        self.format
    }

    /// Bytes the framebuffer occupies: stride x height. This is how much to
    /// copy out of guest memory, and how long a pixel buffer must be.
    pub fn byte_len(&self) -> u64 {
        u64::from(self.stride) * u64::from(self.height)
    }

    /// Errors unless `pixels` holds at least [`Self::byte_len`] bytes.
    pub fn check_buffer(&self, pixels: &[u8]) -> Result<()> {
        let needed = self.byte_len();
        let enough = u64::try_from(pixels.len()).is_ok_and(|got| got >= needed);
        if enough {
            Ok(())
        } else {
            Err(FramebufferError::ShortBuffer {
                got: pixels.len(),
                needed,
                width: self.width,
                height: self.height,
            })
        }
    }

    /// The pixels of line `y` as red, green, blue: as many as the buffer
    /// holds, none if the line is outside the geometry.
    pub(crate) fn row_rgb<'a>(
        &self,
        pixels: &'a [u8],
        y: u32,
    ) -> impl Iterator<Item = [u8; 3]> + 'a {
        self.row_span_rgb(pixels, y, 0, self.width)
    }

    /// Pixels `x0..x1` of line `y` as red, green, blue: as many as the
    /// buffer and the geometry hold.
    pub(crate) fn row_span_rgb<'a>(
        &self,
        pixels: &'a [u8],
        y: u32,
        x0: u32,
        x1: u32,
    ) -> impl Iterator<Item = [u8; 3]> + 'a {
        let format = self.format;
        let bpp = u64::from(self.format.bytes_per_pixel());
        let x1 = x1.min(self.width);
        let x0 = x0.min(x1);
        // Offsets fit a u64: y, x < 2^32 and stride, bpp < 2^32.
        let line = u64::from(y) * u64::from(self.stride);
        let start = usize::try_from(line + u64::from(x0) * bpp).ok();
        let end = usize::try_from(line + u64::from(x1) * bpp).ok();
        let row = start
            .zip(end)
            .filter(|_| y < self.height)
            .and_then(|(start, end)| pixels.get(start..end.min(pixels.len())))
            .unwrap_or(&[]);
        row.chunks_exact(bpp as usize)
            .map(move |px| format.to_rgb(px))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_follow_the_spec_numbering() {
        let all = [
            (0, PixelFormat::Bgra8, 4),
            (1, PixelFormat::Rgba8, 4),
            (2, PixelFormat::Bgr8, 3),
            (3, PixelFormat::Rgb8, 3),
        ];
        for (value, format, bpp) in all {
            assert_eq!(PixelFormat::from_spec(value).unwrap(), format);
            assert_eq!(PixelFormat::try_from(value).unwrap(), format);
            assert_eq!(format.spec_value(), value);
            assert_eq!(format.bytes_per_pixel(), bpp);
        }
        let err = PixelFormat::from_spec(4).unwrap_err();
        assert!(
            err.to_string()
                .contains("unknown framebuffer pixel format 4")
        );
    }

    #[test]
    fn to_rgb_orders_channels() {
        let bytes = [1, 2, 3, 4];
        assert_eq!(PixelFormat::Bgra8.to_rgb(&bytes), [3, 2, 1]);
        assert_eq!(PixelFormat::Rgba8.to_rgb(&bytes), [1, 2, 3]);
        assert_eq!(PixelFormat::Bgr8.to_rgb(&bytes), [3, 2, 1]);
        assert_eq!(PixelFormat::Rgb8.to_rgb(&bytes), [1, 2, 3]);
        assert_eq!(PixelFormat::Rgb8.to_rgb(&[9]), [9, 0, 0]);
    }

    #[test]
    fn seraph_default_is_valid_and_fills_three_mib() {
        let checked =
            Geometry::new(1024, 768, 4096, PixelFormat::Bgra8, FRAMEBUFFER_WINDOW).unwrap();
        assert_eq!(checked, Geometry::seraph_default());
        assert_eq!(checked.byte_len(), 3 * 1024 * 1024);
        assert_eq!(
            (
                checked.width(),
                checked.height(),
                checked.stride(),
                checked.format()
            ),
            (1024, 768, 4096, PixelFormat::Bgra8)
        );
    }

    #[test]
    fn validation_says_what_is_wrong() {
        let msg = |r: Result<Geometry>| r.unwrap_err().to_string();
        assert_eq!(
            msg(Geometry::new(
                0,
                768,
                4096,
                PixelFormat::Bgra8,
                FRAMEBUFFER_WINDOW
            )),
            "framebuffer width is zero"
        );
        assert_eq!(
            msg(Geometry::new(
                1024,
                0,
                4096,
                PixelFormat::Bgra8,
                FRAMEBUFFER_WINDOW
            )),
            "framebuffer height is zero"
        );
        assert_eq!(
            msg(Geometry::new(
                1024,
                768,
                3072,
                PixelFormat::Bgra8,
                FRAMEBUFFER_WINDOW
            )),
            "framebuffer stride 3072 bytes is less than width 1024 x 4 bytes per pixel = 4096"
        );
        // 3072 is enough for BGR8.
        assert!(Geometry::new(1024, 768, 3072, PixelFormat::Bgr8, FRAMEBUFFER_WINDOW).is_ok());
        assert_eq!(
            msg(Geometry::new(
                2048,
                2049,
                8192,
                PixelFormat::Bgra8,
                FRAMEBUFFER_WINDOW
            )),
            "framebuffer of 16785408 bytes (stride 8192 x height 2049) does not fit the 16777216-byte window"
        );
        // Exactly the window fits.
        assert!(Geometry::new(2048, 2048, 8192, PixelFormat::Bgra8, FRAMEBUFFER_WINDOW).is_ok());
        // Extreme values neither overflow nor panic.
        assert!(Geometry::new(u32::MAX, u32::MAX, u32::MAX, PixelFormat::Bgra8, u64::MAX).is_err());
        assert!(Geometry::packed(u32::MAX, 1, PixelFormat::Bgra8, u64::MAX).is_err());
    }

    #[test]
    fn packed_sizes_are_reported_exactly_never_wrapped() {
        // Issue #14 item 14: the byte count of a huge framebuffer wrapped.
        let msg = |w, h| {
            Geometry::packed(w, h, PixelFormat::Bgra8, FRAMEBUFFER_WINDOW)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            msg(u32::MAX, u32::MAX),
            "framebuffer 4294967295x4294967295 needs 73786976260478468100 bytes \
             (4294967295 x 4 bytes per pixel x 4294967295 lines), more than the 16777216-byte window"
        );
        assert!(msg(99_999, 99_999).contains("needs 39999200004 bytes"));
        assert!(msg(2048, 2049).contains("needs 16785408 bytes"));
        assert_eq!(
            msg(0, 5),
            "framebuffer width is zero",
            "zero is said before size"
        );
        assert!(Geometry::packed(2048, 2048, PixelFormat::Bgra8, FRAMEBUFFER_WINDOW).is_ok());
    }

    #[test]
    fn check_buffer_needs_byte_len() {
        let geom = Geometry::new(2, 2, 12, PixelFormat::Bgra8, 64).unwrap();
        assert_eq!(geom.byte_len(), 24);
        assert!(geom.check_buffer(&[0; 24]).is_ok());
        assert!(matches!(
            geom.check_buffer(&[0; 23]),
            Err(FramebufferError::ShortBuffer {
                got: 23,
                needed: 24,
                width: 2,
                height: 2
            })
        ));
    }
}
