//! Operations on 8-bit coverage images: inpaint masks and selections (255 = fully selected /
//! regenerate, 0 = untouched).

use crate::{Gray8, Image, Rect, Rgba8};

/// A1111's mask binarisation level: values above it become 255.
pub const A1111_MASK_THRESHOLD: u8 = 128;

/// Why two masks could not be combined.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("mask sizes differ: {a_width}×{a_height} and {b_width}×{b_height}")]
pub struct MaskSizeMismatch {
    pub a_width: u32,
    pub a_height: u32,
    pub b_width: u32,
    pub b_height: u32,
}

/// `255 − v` for every pixel.
pub fn invert(mask: &Image<Gray8>) -> Image<Gray8> {
    mask.map(|v| 255 - v)
}

/// 255 where the value is above `level`, else 0 (A1111 uses [`A1111_MASK_THRESHOLD`]).
pub fn threshold(mask: &Image<Gray8>, level: u8) -> Image<Gray8> {
    mask.map(|v| if v > level { 255 } else { 0 })
}

/// The smallest rectangle holding every non-zero pixel; `None` for an empty mask.
pub fn bounding_box(mask: &Image<Gray8>) -> Option<Rect> {
    let w = mask.width() as usize;
    let mut rows =
        mask.pixels().chunks_exact(w.max(1)).enumerate().filter(|(_, r)| r.iter().any(|&v| v != 0));
    let (top, first) = rows.next()?;
    let (mut x0, mut x1) = row_extent(first)?;
    let mut bottom = top;
    for (y, row) in rows {
        if let Some((a, b)) = row_extent(row) {
            x0 = x0.min(a);
            x1 = x1.max(b);
            bottom = y;
        }
    }
    Some(Rect::from_bounds(x0 as i32, top as i32, x1 as i32 + 1, bottom as i32 + 1))
}

fn row_extent(row: &[Gray8]) -> Option<(usize, usize)> {
    Some((row.iter().position(|&v| v != 0)?, row.iter().rposition(|&v| v != 0)?))
}

fn zip_with(
    a: &Image<Gray8>,
    b: &Image<Gray8>,
    f: impl Fn(u8, u8) -> u8,
) -> Result<Image<Gray8>, MaskSizeMismatch> {
    if (a.width(), a.height()) != (b.width(), b.height()) {
        return Err(MaskSizeMismatch {
            a_width: a.width(),
            a_height: a.height(),
            b_width: b.width(),
            b_height: b.height(),
        });
    }
    let pixels = a.pixels().iter().zip(b.pixels()).map(|(&x, &y)| f(x, y)).collect();
    Ok(Image::from_pixels(a.width(), a.height(), pixels).unwrap_or_else(|| a.clone()))
}

/// Per-pixel maximum (union of coverages).
pub fn combine_max(a: &Image<Gray8>, b: &Image<Gray8>) -> Result<Image<Gray8>, MaskSizeMismatch> {
    zip_with(a, b, u8::max)
}

/// Per-pixel minimum (intersection of coverages).
pub fn combine_min(a: &Image<Gray8>, b: &Image<Gray8>) -> Result<Image<Gray8>, MaskSizeMismatch> {
    zip_with(a, b, u8::min)
}

/// Pillow's `convert("L")` (ITU-R 601-2 luma, integer): `(R·19595 + G·38470 + B·7471 + 0x8000) >> 16`.
/// Alpha is ignored, as Pillow ignores it.
pub fn luminance(img: &Image<Rgba8>) -> Image<Gray8> {
    img.map(|[r, g, b, _]| {
        ((u32::from(r) * 19595 + u32::from(g) * 38470 + u32::from(b) * 7471 + 0x8000) >> 16) as u8
    })
}

/// The alpha channel.
pub fn alpha(img: &Image<Rgba8>) -> Image<Gray8> {
    img.map(|p| p[3])
}

/// A mask from an image: its alpha if some pixel is not opaque ("real alpha"), else its luminance.
pub fn mask_from_rgba(img: &Image<Rgba8>) -> Image<Gray8> {
    if img.pixels().iter().any(|p| p[3] != 255) { alpha(img) } else { luminance(img) }
}

/// One straight piece of a coverage outline, in pixel-corner coordinates (pixel `(x, y)` spans
/// `x..x+1` × `y..y+1`): from `start` to `end`, horizontal or vertical.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutlineSegment {
    pub start: [i32; 2],
    pub end: [i32; 2],
}

/// The boundary between pixels above `level` and the rest, as maximal horizontal and vertical
/// runs, for drawing a selection's marching ants along its real shape. `origin` is the canvas
/// position of `mask`'s pixel (0, 0); pixels outside `mask` count as unselected.
pub fn outline_segments(mask: &Image<Gray8>, origin: [i32; 2], level: u8) -> Vec<OutlineSegment> {
    let (w, h) = (mask.width() as i32, mask.height() as i32);
    let inside = |x: i32, y: i32| {
        x >= 0
            && y >= 0
            && x < w
            && y < h
            && mask.pixels().get((y * w + x) as usize).is_some_and(|&v| v > level)
    };
    let [ox, oy] = origin;
    let mut out = Vec::new();
    // Horizontal edges lie between rows y-1 and y; runs of columns where the two differ.
    for y in 0..=h {
        let mut run: Option<i32> = None;
        for x in 0..=w {
            let edge = x < w && inside(x, y - 1) != inside(x, y);
            match (edge, run) {
                (true, None) => run = Some(x),
                (false, Some(x0)) => {
                    out.push(OutlineSegment { start: [ox + x0, oy + y], end: [ox + x, oy + y] });
                    run = None;
                }
                _ => {}
            }
        }
    }
    // Vertical edges lie between columns x-1 and x.
    for x in 0..=w {
        let mut run: Option<i32> = None;
        for y in 0..=h {
            let edge = y < h && inside(x - 1, y) != inside(x, y);
            match (edge, run) {
                (true, None) => run = Some(y),
                (false, Some(y0)) => {
                    out.push(OutlineSegment { start: [ox + x, oy + y0], end: [ox + x, oy + y] });
                    run = None;
                }
                _ => {}
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(w: u32, h: u32, v: &[u8]) -> Image<Gray8> {
        Image::from_pixels(w, h, v.to_vec()).unwrap()
    }

    #[test]
    fn invert_and_threshold() {
        let m = mask(4, 1, &[0, 128, 129, 255]);
        assert_eq!(invert(&m).pixels(), &[255, 127, 126, 0]);
        assert_eq!(threshold(&m, A1111_MASK_THRESHOLD).pixels(), &[0, 0, 255, 255]);
    }

    #[test]
    fn bounding_box_of_non_zero() {
        assert_eq!(bounding_box(&Image::new(5, 5)), None);
        let mut m: Image<Gray8> = Image::new(6, 5);
        m.set(4, 1, 1);
        m.set(1, 3, 200);
        assert_eq!(bounding_box(&m), Some(Rect::new(1, 1, 4, 3)));
        m.set(0, 4, 9);
        assert_eq!(bounding_box(&m), Some(Rect::new(0, 1, 5, 4)));
    }

    #[test]
    fn combine() {
        let a = mask(3, 1, &[0, 100, 255]);
        let b = mask(3, 1, &[50, 50, 50]);
        assert_eq!(combine_max(&a, &b).unwrap().pixels(), &[50, 100, 255]);
        assert_eq!(combine_min(&a, &b).unwrap().pixels(), &[0, 50, 50]);
        assert!(combine_max(&a, &mask(1, 3, &[0, 0, 0])).is_err());
    }

    #[test]
    fn mask_from_alpha_or_luminance() {
        let opaque =
            Image::from_pixels(2, 1, vec![[255, 255, 255, 255], [255, 0, 0, 255]]).unwrap();
        // 255·19595 + 32768 >> 16 = 76
        assert_eq!(mask_from_rgba(&opaque).pixels(), &[255, 76]);
        let with_alpha =
            Image::from_pixels(2, 1, vec![[255, 255, 255, 10], [0, 0, 0, 255]]).unwrap();
        assert_eq!(mask_from_rgba(&with_alpha).pixels(), &[10, 255]);
    }

    #[test]
    fn outline_of_a_rectangle_is_its_four_sides() {
        let mut m = Image::<Gray8>::new(6, 5);
        for y in 1..4 {
            for x in 2..5 {
                m.set(x, y, 255);
            }
        }
        let segs = outline_segments(&m, [10, 20], A1111_MASK_THRESHOLD);
        let expected = [
            OutlineSegment { start: [12, 21], end: [15, 21] },
            OutlineSegment { start: [12, 24], end: [15, 24] },
            OutlineSegment { start: [12, 21], end: [12, 24] },
            OutlineSegment { start: [15, 21], end: [15, 24] },
        ];
        assert_eq!(segs, expected);
    }

    #[test]
    fn outline_follows_holes_diagonals_and_the_image_border() {
        // A full 3×3 block with its centre removed: outer square plus the hole's square.
        let mut m = Image::<Gray8>::filled(3, 3, 255);
        m.set(1, 1, 0);
        let length = |segs: Vec<OutlineSegment>| -> i32 {
            segs.iter().map(|s| (s.end[0] - s.start[0]).abs() + (s.end[1] - s.start[1]).abs()).sum()
        };
        assert_eq!(length(outline_segments(&m, [0, 0], 128)), 12 + 4);
        // Two pixels touching at a corner: each keeps its own four edges.
        let mut d = Image::<Gray8>::new(2, 2);
        d.set(0, 0, 255);
        d.set(1, 1, 255);
        assert_eq!(length(outline_segments(&d, [0, 0], 128)), 8);
        // Partial coverage at or below the level is outside.
        assert!(outline_segments(&Image::filled(4, 4, 128), [0, 0], 128).is_empty());
    }
}
