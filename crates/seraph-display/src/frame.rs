//! Dirty pages to changed rectangles, and the update message format.
//!
//! An update is one binary WebSocket message:
//!
//! ```text
//! u8 1 (frame update) | u16 frame width | u16 frame height | u16 rect count
//! per rect: u16 x | u16 y | u16 w | u16 h | u32 payload length | payload
//! ```
//!
//! All integers little-endian. A payload is the rectangle's pixels in row
//! order as RGB runs: a byte `n < 128` is followed by `n + 1` literal pixels
//! (3 bytes each, R G B); `n >= 128` by one pixel repeated `n - 126` times.

use crate::{Dirty, FrameSource, Geometry};

/// The size of a page in the dirty bitmap.
pub const PAGE_SIZE: usize = 4096;
/// The first byte of a frame update message.
pub const MSG_FRAME: u8 = 1;
/// The first byte of a console bytes message.
pub const MSG_CONSOLE: u8 = 2;
/// More rectangles than this in one update are merged into their bounding box.
const MAX_RECTS: usize = 64;
/// Unchanged rows up to this many between changed ones do not split a rectangle.
const ROW_GAP: u32 = 4;

/// A rectangle of pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    /// Left column.
    pub x: u32,
    /// Top row.
    pub y: u32,
    /// Width in pixels.
    pub w: u32,
    /// Height in pixels.
    pub h: u32,
}

/// For each row, the columns `[min, max]` the dirty pages touch, if any.
pub fn dirty_spans(geometry: &Geometry, pages: &[u64]) -> Vec<Option<(u32, u32)>> {
    let height = geometry.height as usize;
    let stride = geometry.stride as usize;
    let width = geometry.width;
    let mut spans = vec![None; height];
    let total = stride.saturating_mul(height);
    if stride == 0 || width == 0 {
        return spans;
    }
    let mut mark = |row: usize, x0: u32, x1: u32| {
        let (x0, x1) = (x0.min(width - 1), x1.min(width - 1));
        if x0 > x1 {
            return;
        }
        if let Some(span) = spans.get_mut(row) {
            *span = Some(match *span {
                Some((a, b)) => (a.min(x0), b.max(x1)),
                None => (x0, x1),
            });
        }
    };
    for (word_index, &word) in pages.iter().enumerate() {
        let mut bits = word;
        while bits != 0 {
            let bit = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let page = word_index * 64 + bit;
            let start = page.saturating_mul(PAGE_SIZE);
            if start >= total {
                continue;
            }
            let end = start.saturating_add(PAGE_SIZE).min(total) - 1;
            let (r0, r1) = (start / stride, end / stride);
            let col = |byte: usize| ((byte % stride) / 4).min(u32::MAX as usize) as u32;
            for row in r0..=r1 {
                let x0 = if row == r0 { col(start) } else { 0 };
                let x1 = if row == r1 { col(end) } else { u32::MAX };
                mark(row, x0, x1);
            }
        }
    }
    spans
}

/// The pump's copy of what viewers have seen.
#[derive(Debug, Default)]
pub struct Shadow {
    geometry: Option<Geometry>,
    /// Tightly packed BGRA rows (`width * 4` bytes each).
    pixels: Vec<u8>,
    row: Vec<u8>,
}

impl Shadow {
    /// The geometry the shadow holds, if filled.
    pub fn geometry(&self) -> Option<Geometry> {
        self.geometry
    }

    /// Reads the whole frame from `source`.
    pub fn refill(&mut self, source: &dyn FrameSource, geometry: Geometry) {
        let row_bytes = geometry.width as usize * 4;
        self.pixels.resize(row_bytes * geometry.height as usize, 0);
        for (y, row) in self.pixels.chunks_exact_mut(row_bytes.max(1)).enumerate() {
            source.read(y * geometry.stride as usize, row);
        }
        self.geometry = Some(geometry);
    }

    /// Compares the rows `dirty` names (all rows for `Dirty::Unknown`) with
    /// the source, updates the shadow and returns the changed rectangles.
    pub fn update(&mut self, source: &dyn FrameSource, dirty: &Dirty) -> Vec<Rect> {
        let Some(g) = self.geometry else {
            return Vec::new();
        };
        let spans = match dirty {
            Dirty::Clean => return Vec::new(),
            Dirty::Pages(pages) => dirty_spans(&g, pages),
            Dirty::Unknown => vec![Some((0, g.width.saturating_sub(1))); g.height as usize],
        };
        let row_bytes = g.width as usize * 4;
        let mut changed: Vec<Option<(u32, u32)>> = vec![None; spans.len()];
        for (y, span) in spans.iter().enumerate() {
            let Some((x0, x1)) = *span else { continue };
            let (b0, b1) = (x0 as usize * 4, (x1 as usize + 1) * 4);
            self.row.resize(b1 - b0, 0);
            source.read(y * g.stride as usize + b0, &mut self.row);
            let Some(old) = self.pixels.get_mut(y * row_bytes + b0..y * row_bytes + b1) else {
                continue;
            };
            let new = &self.row;
            let first = old
                .chunks_exact(4)
                .zip(new.chunks_exact(4))
                .position(|(a, b)| a != b);
            let Some(first) = first else { continue };
            let last = old
                .chunks_exact(4)
                .zip(new.chunks_exact(4))
                .rposition(|(a, b)| a != b)
                .unwrap_or(first);
            old.copy_from_slice(new);
            changed[y] = Some((x0 + first as u32, x0 + last as u32));
        }
        group_rows(&changed)
    }

    /// Encodes the whole shadow as one update message.
    pub fn encode_full(&self) -> Option<Vec<u8>> {
        let g = self.geometry?;
        let all = Rect {
            x: 0,
            y: 0,
            w: g.width,
            h: g.height,
        };
        Some(self.encode(&[all]))
    }

    /// Encodes `rects` of the shadow as one update message.
    pub fn encode(&self, rects: &[Rect]) -> Vec<u8> {
        let g = self.geometry.unwrap_or_default();
        let mut out = vec![MSG_FRAME];
        push_u16(&mut out, g.width);
        push_u16(&mut out, g.height);
        push_u16(&mut out, rects.len() as u32);
        let row_bytes = g.width as usize * 4;
        for r in rects {
            for v in [r.x, r.y, r.w, r.h] {
                push_u16(&mut out, v);
            }
            let len_at = out.len();
            out.extend_from_slice(&[0; 4]);
            let mut rle = Rle::new(&mut out);
            for y in r.y..r.y + r.h {
                let start = y as usize * row_bytes + r.x as usize * 4;
                let row = self
                    .pixels
                    .get(start..start + r.w as usize * 4)
                    .unwrap_or(&[]);
                for px in row.chunks_exact(4) {
                    rle.push([px[2], px[1], px[0]]);
                }
            }
            rle.finish();
            let len = (out.len() - len_at - 4) as u32;
            if let Some(slot) = out.get_mut(len_at..len_at + 4) {
                slot.copy_from_slice(&len.to_le_bytes());
            }
        }
        out
    }
}

fn push_u16(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&(v.min(u32::from(u16::MAX)) as u16).to_le_bytes());
}

/// Merges changed rows into rectangles (bands of rows with a union span).
pub fn group_rows(changed: &[Option<(u32, u32)>]) -> Vec<Rect> {
    let mut rects: Vec<Rect> = Vec::new();
    let mut current: Option<(u32, u32, u32, u32)> = None; // y0, y1, x0, x1
    for (y, row) in changed.iter().enumerate() {
        let y = y as u32;
        let Some((x0, x1)) = *row else { continue };
        current = match current {
            Some((a, b, c, d)) if y <= b + ROW_GAP + 1 => Some((a, y, c.min(x0), d.max(x1))),
            Some(done) => {
                rects.push(to_rect(done));
                Some((y, y, x0, x1))
            }
            None => Some((y, y, x0, x1)),
        };
    }
    if let Some(done) = current {
        rects.push(to_rect(done));
    }
    if rects.len() > MAX_RECTS {
        let x0 = rects.iter().map(|r| r.x).min().unwrap_or(0);
        let y0 = rects.iter().map(|r| r.y).min().unwrap_or(0);
        let x1 = rects.iter().map(|r| r.x + r.w).max().unwrap_or(0);
        let y1 = rects.iter().map(|r| r.y + r.h).max().unwrap_or(0);
        rects = vec![Rect {
            x: x0,
            y: y0,
            w: x1 - x0,
            h: y1 - y0,
        }];
    }
    rects
}

fn to_rect((y0, y1, x0, x1): (u32, u32, u32, u32)) -> Rect {
    Rect {
        x: x0,
        y: y0,
        w: x1 - x0 + 1,
        h: y1 - y0 + 1,
    }
}

/// The run-length encoder for RGB pixels.
struct Rle<'a> {
    out: &'a mut Vec<u8>,
    literals: Vec<[u8; 3]>,
    run: Option<([u8; 3], usize)>,
}

impl<'a> Rle<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        Self {
            out,
            literals: Vec::with_capacity(128),
            run: None,
        }
    }

    fn push(&mut self, px: [u8; 3]) {
        match self.run {
            Some((p, n)) if p == px && n < 129 => self.run = Some((p, n + 1)),
            Some((p, 1)) => {
                self.literal(p);
                self.run = Some((px, 1));
            }
            Some((p, n)) => {
                self.flush_run(p, n);
                self.run = Some((px, 1));
            }
            None => self.run = Some((px, 1)),
        }
    }

    fn literal(&mut self, px: [u8; 3]) {
        self.literals.push(px);
        if self.literals.len() == 128 {
            self.flush_literals();
        }
    }

    fn flush_literals(&mut self) {
        if self.literals.is_empty() {
            return;
        }
        self.out.push((self.literals.len() - 1) as u8);
        for px in self.literals.drain(..) {
            self.out.extend_from_slice(&px);
        }
    }

    fn flush_run(&mut self, px: [u8; 3], n: usize) {
        self.flush_literals();
        self.out.push((n + 126) as u8);
        self.out.extend_from_slice(&px);
    }

    fn finish(mut self) {
        match self.run.take() {
            Some((p, 1)) => {
                self.literal(p);
                self.flush_literals();
            }
            Some((p, n)) => self.flush_run(p, n),
            None => self.flush_literals(),
        }
    }
}

/// Decodes one RLE payload into RGB pixels (the page's algorithm, for tests).
pub fn decode_rle(mut data: &[u8]) -> Option<Vec<[u8; 3]>> {
    let mut out = Vec::new();
    while let Some((&op, rest)) = data.split_first() {
        if op < 128 {
            let n = usize::from(op) + 1;
            let bytes = rest.get(..n * 3)?;
            out.extend(bytes.chunks_exact(3).map(|c| [c[0], c[1], c[2]]));
            data = rest.get(n * 3..)?;
        } else {
            let px = rest.get(..3)?;
            out.extend(std::iter::repeat_n(
                [px[0], px[1], px[2]],
                usize::from(op) - 126,
            ));
            data = rest.get(3..)?;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rle_round_trips() {
        let mut px: Vec<[u8; 3]> = Vec::new();
        for i in 0..1000u32 {
            let v = if i % 300 < 200 { 7 } else { (i * 31) as u8 };
            px.push([v, 1, 2]);
        }
        px.push([9, 9, 9]);
        let mut out = Vec::new();
        let mut rle = Rle::new(&mut out);
        for p in &px {
            rle.push(*p);
        }
        rle.finish();
        assert!(out.len() < px.len() * 3);
        assert_eq!(decode_rle(&out), Some(px));
        assert_eq!(decode_rle(&[5, 1]), None);
    }

    #[test]
    fn pages_map_to_row_spans() {
        // 1920 wide: 7680-byte rows; page 1 covers bytes 4096..8191.
        let g = Geometry {
            width: 1920,
            height: 4,
            stride: 7680,
        };
        let spans = dirty_spans(&g, &[0b10]);
        assert_eq!(spans[0], Some((1024, 1919)));
        assert_eq!(spans[1], Some((0, 127)));
        assert_eq!(spans[2], None);
        // Pages past the end are ignored.
        let spans = dirty_spans(&g, &[0, u64::MAX]);
        assert!(spans.iter().all(Option::is_none));
    }

    #[test]
    fn rows_group_into_bands() {
        let mut rows = vec![None; 100];
        rows[10] = Some((5, 9));
        rows[12] = Some((3, 4));
        rows[50] = Some((0, 0));
        let rects = group_rows(&rows);
        assert_eq!(
            rects,
            [
                Rect {
                    x: 3,
                    y: 10,
                    w: 7,
                    h: 3
                },
                Rect {
                    x: 0,
                    y: 50,
                    w: 1,
                    h: 1
                }
            ]
        );
        let many: Vec<_> = (0..1000).map(|y| (y % 10 == 0).then_some((1, 2))).collect();
        assert_eq!(group_rows(&many).len(), 1);
    }
}
