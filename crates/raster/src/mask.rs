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
}
