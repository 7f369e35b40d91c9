//! Terminal previews of the framebuffer: plain ASCII and ANSI true colour.

use std::fmt::Write as _;

use crate::geometry::Geometry;

/// Characters from dark to bright used by [`ascii_preview`].
pub const ASCII_RAMP: &[u8] = b" .:-=+*#%@";

/// Upper half block: foreground colours the top half, background the bottom.
const UPPER_HALF_BLOCK: char = '\u{2580}';

/// Boundaries of cell `index` of `cells` across `len` pixels; never empty
/// when `cells <= len`.
fn span(index: u32, cells: u32, len: u32) -> (u32, u32) {
    let at = |i: u32| (u64::from(i) * u64::from(len) / u64::from(cells.max(1))) as u32;
    let start = at(index);
    let end = at(index.saturating_add(1))
        .max(start.saturating_add(1))
        .min(len);
    (start, end)
}

/// Mean red, green and blue of the pixels in columns `x0..x1`, lines
/// `y0..y1`; pixels missing from a short buffer count as black.
fn cell_average(
    pixels: &[u8],
    geom: &Geometry,
    (x0, x1): (u32, u32),
    (y0, y1): (u32, u32),
) -> [u8; 3] {
    let mut sum = [0u64; 3];
    let count = u64::from(x1.saturating_sub(x0)) * u64::from(y1.saturating_sub(y0));
    for y in y0..y1 {
        let cells = geom.row_span_rgb(pixels, y, x0, x1);
        for px in cells {
            for (s, c) in sum.iter_mut().zip(px) {
                *s += u64::from(c);
            }
        }
    }
    if count == 0 {
        return [0; 3];
    }
    // Rounded mean; each mean is at most 255.
    sum.map(|s| ((s + count / 2) / count) as u8)
}

/// Rec. 601 luma of a colour, 0..=255.
fn luma([r, g, b]: [u8; 3]) -> u32 {
    (77 * u32::from(r) + 150 * u32::from(g) + 29 * u32::from(b) + 128) >> 8
}

/// The most lines a preview has: a framebuffer much taller than wide (say
/// 1x4194304) is squeezed vertically instead of printing millions of lines.
pub const PREVIEW_MAX_LINES: u32 = 64;

/// Number of character columns and lines for a preview `columns` wide.
/// Terminal characters are about twice as tall as wide, so a line stands for
/// twice as many pixel lines as a column stands for pixel columns. A
/// preview that would be taller than [`PREVIEW_MAX_LINES`] gets fewer
/// columns (keeping the aspect ratio), and at most that many lines.
fn preview_size(geom: &Geometry, columns: usize) -> (u32, u32) {
    let lines_for = |cols: u32| {
        // lines = height / (width / cols) / 2, rounded, at least 1.
        let h = u64::from(geom.height()) * u64::from(cols);
        let w2 = u64::from(geom.width()) * 2;
        ((h + w2 / 2) / w2).max(1)
    };
    let mut cols = u32::try_from(columns).unwrap_or(u32::MAX).min(geom.width());
    let max = u64::from(PREVIEW_MAX_LINES);
    let lines = lines_for(cols);
    if lines > max {
        // cols * max / lines < cols, so this fits a u32.
        cols = (u64::from(cols) * max / lines).clamp(1, u64::from(cols)) as u32;
    }
    let lines = lines_for(cols).min(max) as u32;
    (cols, lines)
}

/// A text picture of the framebuffer `columns` characters wide (at most one
/// per pixel), one line per two cells' height so the aspect ratio survives
/// terminal fonts. Each character is the [`ASCII_RAMP`] step for the mean
/// brightness of the pixels it covers; every line ends with `\n`.
///
/// `columns` = 0 gives an empty string. Pixels beyond a short buffer read as
/// black; this never panics.
pub fn ascii_preview(pixels: &[u8], geom: &Geometry, columns: usize) -> String {
    let (cols, lines) = preview_size(geom, columns);
    if cols == 0 {
        return String::new();
    }
    let steps = ASCII_RAMP.len() as u32 - 1;
    let mut out = String::with_capacity((cols as usize + 1) * lines as usize);
    for line in 0..lines {
        let ys = span(line, lines, geom.height());
        for col in 0..cols {
            let xs = span(col, cols, geom.width());
            let level = (luma(cell_average(pixels, geom, xs, ys)) * steps + 127) / 255;
            out.push(char::from(ASCII_RAMP[level.min(steps) as usize]));
        }
        out.push('\n');
    }
    out
}

/// Like [`ascii_preview`] in 24-bit ANSI colour: each character is an upper
/// half block whose foreground is the top cell's mean colour and whose
/// background is the bottom cell's, so one character line shows two cell
/// lines. Every line ends with a colour reset (`ESC[0m`) and `\n`.
pub fn ansi_preview(pixels: &[u8], geom: &Geometry, columns: usize) -> String {
    let (cols, lines) = preview_size(geom, columns);
    if cols == 0 {
        return String::new();
    }
    let halves = lines.saturating_mul(2);
    let mut out = String::new();
    for line in 0..lines {
        let top = span(line.saturating_mul(2), halves, geom.height());
        let bottom = span(
            line.saturating_mul(2).saturating_add(1),
            halves,
            geom.height(),
        );
        for col in 0..cols {
            let xs = span(col, cols, geom.width());
            let [tr, tg, tb] = cell_average(pixels, geom, xs, top);
            let [br, bg, bb] = cell_average(pixels, geom, xs, bottom);
            // Writing to a String cannot fail.
            let _ = write!(
                out,
                "\x1b[38;2;{tr};{tg};{tb}m\x1b[48;2;{br};{bg};{bb}m{UPPER_HALF_BLOCK}"
            );
        }
        out.push_str("\x1b[0m\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::PixelFormat;

    /// A BGRA image, left half white and right half black.
    fn half_white(width: u32, height: u32) -> (Vec<u8>, Geometry) {
        let geom = Geometry::packed(width, height, PixelFormat::Bgra8, u64::MAX).unwrap();
        let mut pixels = vec![0u8; geom.byte_len() as usize];
        for y in 0..height {
            for x in 0..width / 2 {
                let at = ((y * width + x) * 4) as usize;
                pixels[at..at + 4].copy_from_slice(&[255, 255, 255, 0]);
            }
        }
        (pixels, geom)
    }

    #[test]
    fn ascii_half_white_half_black() {
        let (pixels, geom) = half_white(16, 8);
        // 8 columns of 2 pixels; 8 lines x 8/16 / 2 = 2 lines.
        assert_eq!(ascii_preview(&pixels, &geom, 8), "@@@@    \n@@@@    \n");
    }

    #[test]
    fn ascii_seraph_default_size_and_content() {
        let geom = Geometry::seraph_default();
        let mut pixels = vec![0u8; geom.byte_len() as usize];
        // Left half white.
        for y in 0..768usize {
            for x in 0..512usize {
                let at = y * 4096 + x * 4;
                pixels[at..at + 3].copy_from_slice(&[255, 255, 255]);
            }
        }
        let text = ascii_preview(&pixels, &geom, 80);
        let lines: Vec<&str> = text.lines().collect();
        // 768 * 80 / 1024 / 2 = 30 lines.
        assert_eq!(lines.len(), 30);
        for line in lines {
            assert_eq!(line, format!("{}{}", "@".repeat(40), " ".repeat(40)));
        }
    }

    #[test]
    fn ascii_cells_average_their_pixels() {
        // 2x2 RGB: one white pixel and three black: mean 64 -> luma 64 -> step 2 ':'.
        let geom = Geometry::packed(2, 2, PixelFormat::Rgb8, 64).unwrap();
        let pixels = [255, 255, 255, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        // One column; 2 * 1 / 2 / 2 rounds to 1 line (at least 1).
        assert_eq!(ascii_preview(&pixels, &geom, 1), ":\n");
    }

    #[test]
    fn ascii_edge_cases_do_not_panic() {
        let (pixels, geom) = half_white(4, 2);
        assert_eq!(ascii_preview(&pixels, &geom, 0), "");
        // More columns than pixels: clamped to the width.
        assert_eq!(ascii_preview(&pixels, &geom, 1000), "@@  \n");
        // A short buffer reads as black.
        // Cell 0 is one white pixel and one missing (black) one: mean 128 is '+'.
        assert_eq!(ascii_preview(&pixels[..4], &geom, 4), "+   \n");
        assert_eq!(ascii_preview(&[], &geom, 4), "    \n");
    }

    #[test]
    fn very_tall_framebuffers_get_a_bounded_preview() {
        // Issue #14 item 15: 1x4194304 printed 2 million lines.
        let geom = Geometry::packed(1, 4_194_304, PixelFormat::Bgra8, u64::MAX).unwrap();
        let text = ascii_preview(&[], &geom, 80);
        assert_eq!(text.lines().count(), PREVIEW_MAX_LINES as usize);
        assert_eq!(text, " \n".repeat(PREVIEW_MAX_LINES as usize));
        let ansi = ansi_preview(&[], &geom, 80);
        assert_eq!(ansi.lines().count(), PREVIEW_MAX_LINES as usize);
        // Tall but not extreme: fewer columns, the aspect ratio kept.
        let (pixels, geom) = half_white(64, 4096);
        let text = ascii_preview(&pixels, &geom, 80);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), PREVIEW_MAX_LINES as usize);
        // 64 lines x 2 / 4096 x 64 pixels = 2 columns: white, black.
        assert!(lines.iter().all(|l| *l == "@ "), "{text}");
        // The usual shapes are unchanged (30 lines for 1024x768 at 80).
        let (w, h) = preview_size(&Geometry::seraph_default(), 80);
        assert_eq!((w, h), (80, 30));
    }

    #[test]
    fn ansi_half_blocks_carry_top_and_bottom_colours() {
        // 2x2 RGB: top line red, bottom line blue; 2 columns -> 1 line.
        let geom = Geometry::packed(2, 2, PixelFormat::Rgb8, 64).unwrap();
        let pixels = [255, 0, 0, 255, 0, 0, 0, 0, 255, 0, 0, 255];
        let cell = "\x1b[38;2;255;0;0m\x1b[48;2;0;0;255m\u{2580}";
        assert_eq!(
            ansi_preview(&pixels, &geom, 2),
            format!("{cell}{cell}\x1b[0m\n")
        );
        assert_eq!(ansi_preview(&pixels, &geom, 0), "");
    }
}
