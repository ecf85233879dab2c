//! The two blurs inpainting needs, each exactly as its reference computes it.
//!
//! * [`gaussian_blur_a1111`]: A1111's inpaint mask blur (two `cv2.GaussianBlur` calls), in the
//!   exact-arithmetic form `fidelity.md` fixes as the rule: σ = blur px, kernel width
//!   `2·int(2.5σ + 0.5) + 1`, weights `exp(−d²/2σ²)` normalised, reflect-101 borders, the
//!   horizontal pass rounded (half up) to `u8`, then the vertical pass rounded.
//! * [`gaussian_blur_pillow`] / [`box_blur_pillow`]: Pillow's `ImageFilter.GaussianBlur` and
//!   `BoxBlur` (`libImaging/BoxBlur.c`): extended box filters in 8.24 fixed point with edge
//!   pixels repeated, three passes per axis for the Gaussian. A1111's masked-content "fill" is a
//!   cascade of these; a true Gaussian would not reproduce it.

use rayon::prelude::*;

use crate::{Gray8, Image, Pixel, Rgba8};

/// Why a blur was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BlurError {
    #[error("blur radius {0} is not a finite number")]
    NotFinite(f64),
    #[error("blur radius {0} px is negative")]
    Negative(f64),
    #[error("blur radius {radius_px} px is too large (at most {max_px} px)")]
    TooLarge { radius_px: f64, max_px: f64 },
}

/// The largest blur σ / radius accepted, in pixels: far beyond any useful mask blur, small enough
/// that kernels stay a few hundred kilobytes.
pub const MAX_BLUR_PX: f64 = 4096.0;

fn check_radius(r: f64) -> Result<(), BlurError> {
    if !r.is_finite() {
        return Err(BlurError::NotFinite(r));
    }
    if r > MAX_BLUR_PX {
        return Err(BlurError::TooLarge { radius_px: r, max_px: MAX_BLUR_PX });
    }
    Ok(())
}

/// Pixels whose channels are bytes, so blurs can run on the interleaved channel data.
pub trait ChannelBytes: Pixel {
    fn bytes(pixels: &[Self]) -> &[u8];
    fn bytes_mut(pixels: &mut [Self]) -> &mut [u8];
}

impl ChannelBytes for Rgba8 {
    fn bytes(pixels: &[Self]) -> &[u8] {
        pixels.as_flattened()
    }
    fn bytes_mut(pixels: &mut [Self]) -> &mut [u8] {
        pixels.as_flattened_mut()
    }
}

impl ChannelBytes for Gray8 {
    fn bytes(pixels: &[Self]) -> &[u8] {
        pixels
    }
    fn bytes_mut(pixels: &mut [Self]) -> &mut [u8] {
        pixels
    }
}

// ------------------------------------------------------------------------------------------------
// A1111 mask blur

/// A1111's inpaint mask blur with σ `sigma_x_px` horizontally and `sigma_y_px` vertically; an
/// axis whose σ is ≤ 0 is not blurred (A1111 skips that `cv2.GaussianBlur` call).
///
/// Within 2 levels of A1111's actual OpenCV output (OpenCV's 8-bit fixed point differs slightly
/// from the exact rule; see `fidelity.md`).
pub fn gaussian_blur_a1111(
    img: &Image<Gray8>,
    sigma_x_px: f64,
    sigma_y_px: f64,
) -> Result<Image<Gray8>, BlurError> {
    check_radius(sigma_x_px)?;
    check_radius(sigma_y_px)?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut pixels = img.pixels().to_vec();
    if sigma_x_px > 0.0 && w > 0 {
        let kernel = a1111_kernel(sigma_x_px);
        let radius = kernel.len() / 2;
        let rows = pixels.par_chunks_exact_mut(w);
        rows.for_each_init(
            || Vec::with_capacity(w + kernel.len()),
            |padded, row| {
                padded.clear();
                padded.extend((0..w + 2 * radius).map(|i| {
                    let src = reflect101(i as i64 - radius as i64, w);
                    row.get(src).map_or(0.0, |&v| f64::from(v))
                }));
                for (x, out) in row.iter_mut().enumerate() {
                    let window = padded.get(x..x + kernel.len()).unwrap_or(&[]);
                    let mut acc = 0.0;
                    for (&k, &v) in kernel.iter().zip(window) {
                        acc += k * v;
                    }
                    *out = round_half_up(acc);
                }
            },
        );
    }
    if sigma_y_px > 0.0 && h > 0 {
        let kernel = a1111_kernel(sigma_y_px);
        let radius = kernel.len() / 2;
        let src = pixels.clone();
        let rows = pixels.par_chunks_exact_mut(w.max(1)).enumerate();
        rows.for_each_init(
            || vec![0.0f64; w],
            |acc, (y, out_row)| {
                acc.fill(0.0);
                for (k, &wk) in kernel.iter().enumerate() {
                    let sy = reflect101(y as i64 + k as i64 - radius as i64, h);
                    let Some(row) = src.get(sy * w..(sy + 1) * w) else { continue };
                    for (a, &v) in acc.iter_mut().zip(row) {
                        *a += wk * f64::from(v);
                    }
                }
                for (o, &a) in out_row.iter_mut().zip(acc.iter()) {
                    *o = round_half_up(a);
                }
            },
        );
    }
    Ok(Image::from_pixels(img.width(), img.height(), pixels).unwrap_or_else(|| img.clone()))
}

/// [`gaussian_blur_a1111`] of a mask that is mostly zero, byte for byte, at the cost of its
/// non-zero part: only the bounding box of the non-zero pixels grown by twice the kernel radius
/// (clamped to the image) is blurred. Outside that box the full blur is 0 (every tap lies
/// farther than a radius from the box, even reflected at an edge); inside it every tap a pixel
/// within one radius of the box reads lies in the grown box or is reflected at the same image
/// edge, and pixels farther out read only zeros in both. A 64² mask on a 3072² canvas costs a
/// 144² blur instead of a 3072² one.
pub fn gaussian_blur_a1111_sparse(
    img: &Image<Gray8>,
    sigma_x_px: f64,
    sigma_y_px: f64,
) -> Result<Image<Gray8>, BlurError> {
    check_radius(sigma_x_px)?;
    check_radius(sigma_y_px)?;
    let Some(nonzero) = crate::mask::bounding_box(img) else {
        return Ok(img.clone());
    };
    // `a1111_kernel`'s radius; an axis with σ ≤ 0 is not blurred.
    let grow = |sigma: f64| if sigma > 0.0 { 2 * (2.5 * sigma + 0.5) as i32 } else { 0 };
    let (gx, gy) = (grow(sigma_x_px), grow(sigma_y_px));
    let bounds = img.bounds();
    let region = crate::Rect::from_bounds(
        nonzero.x - gx,
        nonzero.y - gy,
        nonzero.right() + gx,
        nonzero.bottom() + gy,
    )
    .intersect(&bounds);
    if region == bounds {
        return gaussian_blur_a1111(img, sigma_x_px, sigma_y_px);
    }
    let blurred = gaussian_blur_a1111(&img.crop(region), sigma_x_px, sigma_y_px)?;
    let mut out = Image::new(img.width(), img.height());
    out.paste(&blurred, region.x, region.y);
    Ok(out)
}

/// Normalised weights `exp(−d²/2σ²)` for `d = −r..=r`, `r = int(2.5σ + 0.5)`, summed in order.
fn a1111_kernel(sigma: f64) -> Vec<f64> {
    let radius = (2.5 * sigma + 0.5) as i64;
    let weights: Vec<f64> =
        (-radius..=radius).map(|d| (-((d * d) as f64) / (2.0 * sigma * sigma)).exp()).collect();
    let mut total = 0.0;
    for w in &weights {
        total += w;
    }
    weights.into_iter().map(|w| w / total).collect()
}

/// OpenCV's `BORDER_REFLECT_101` index (`dcb|abcd|cba`), for any offset.
fn reflect101(i: i64, n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    let period = 2 * (n as i64 - 1);
    let i = i.abs() % period;
    (if i >= n as i64 { period - i } else { i }) as usize
}

#[inline]
fn round_half_up(v: f64) -> u8 {
    (v + 0.5).floor().clamp(0.0, 255.0) as u8
}

// ------------------------------------------------------------------------------------------------
// Pillow box / Gaussian blur

/// Pillow's `ImageFilter.GaussianBlur(radius)` (`image.filter(...)`) on RGBA (all four channels
/// blurred independently, as Pillow does for RGBA, RGBa and RGB) or L images.
pub fn gaussian_blur_pillow<P: ChannelBytes>(
    img: &Image<P>,
    radius_px: f32,
) -> Result<Image<P>, BlurError> {
    check_pillow_radius(radius_px)?;
    if radius_px == 0.0 {
        return Ok(img.clone());
    }
    let r = pillow_gaussian_box_radius(radius_px, 3);
    Ok(box_blur_passes(img, r, r, 3))
}

/// Pillow's `ImageFilter.BoxBlur(radius)`: one pass of an extended box filter per axis.
pub fn box_blur_pillow<P: ChannelBytes>(
    img: &Image<P>,
    radius_px: f32,
) -> Result<Image<P>, BlurError> {
    check_pillow_radius(radius_px)?;
    if radius_px == 0.0 {
        return Ok(img.clone());
    }
    Ok(box_blur_passes(img, radius_px, radius_px, 1))
}

fn check_pillow_radius(r: f32) -> Result<(), BlurError> {
    check_radius(f64::from(r))?;
    if r < 0.0 {
        return Err(BlurError::Negative(f64::from(r)));
    }
    Ok(())
}

/// Pillow's `_gaussian_blur_radius`: the extended box radius whose `passes`-fold repetition has
/// the Gaussian's variance (Gwosdek et al. 2011), with Pillow's float/double mix kept.
fn pillow_gaussian_box_radius(radius: f32, passes: i32) -> f32 {
    let sigma2 = radius * radius / passes as f32;
    let big_l = (12.0 * f64::from(sigma2) + 1.0).sqrt() as f32;
    let l = ((f64::from(big_l) - 1.0) / 2.0).floor() as f32;
    let mut a = (2.0 * l + 1.0) * (l * (l + 1.0) - 3.0 * sigma2);
    a /= 6.0 * (sigma2 - (l + 1.0) * (l + 1.0));
    l + a
}

/// Pillow's `ImagingBoxBlur`: `passes` horizontal passes, then `passes` vertical ones (done as
/// Pillow does, on the transposed image).
fn box_blur_passes<P: ChannelBytes>(img: &Image<P>, rx: f32, ry: f32, passes: usize) -> Image<P> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut pixels = img.pixels().to_vec();
    if w == 0 || h == 0 {
        return img.clone();
    }
    if rx != 0.0 {
        for _ in 0..passes {
            blur_rows::<P>(&mut pixels, w, rx);
        }
    }
    if ry != 0.0 {
        let mut t = transpose(&pixels, w, h);
        for _ in 0..passes {
            blur_rows::<P>(&mut t, h, ry);
        }
        pixels = transpose(&t, h, w);
    }
    Image::from_pixels(img.width(), img.height(), pixels).unwrap_or_else(|| img.clone())
}

fn transpose<P: Pixel>(src: &[P], w: usize, h: usize) -> Vec<P> {
    let mut out = vec![P::ZERO; src.len()];
    const B: usize = 32;
    for y0 in (0..h).step_by(B) {
        for x0 in (0..w).step_by(B) {
            for y in y0..(y0 + B).min(h) {
                for x in x0..(x0 + B).min(w) {
                    if let (Some(o), Some(s)) = (out.get_mut(x * h + y), src.get(y * w + x)) {
                        *o = *s;
                    }
                }
            }
        }
    }
    out
}

/// One `ImagingHorizontalBoxBlur` over every row of `pixels` (rows of `w` pixels), in place.
fn blur_rows<P: ChannelBytes>(pixels: &mut [P], w: usize, float_radius: f32) {
    let radius = float_radius as usize;
    // C: (UINT32)(1 << 24) / (floatRadius * 2 + 1) is a float division, truncated.
    let ww = (16_777_216.0f32 / (float_radius * 2.0 + 1.0)) as u32;
    let fw = (16_777_216u32.wrapping_sub(((radius * 2 + 1) as u32).wrapping_mul(ww))) / 2;
    let channels = P::CHANNELS;
    pixels.par_chunks_exact_mut(w.max(1)).for_each_init(
        || vec![0u8; w * channels],
        |line_in, row| {
            let bytes = P::bytes_mut(row);
            line_in.copy_from_slice(bytes);
            match channels {
                4 => line_box_blur::<4>(bytes, line_in, radius, ww, fw),
                _ => line_box_blur::<1>(bytes, line_in, radius, ww, fw),
            }
        },
    );
}

/// Pillow's `ImagingLineBoxBlur8/32` for `C` interleaved channels: a running sum over the
/// `2·radius + 1` window plus the fractional weight `fw` on the two pixels just outside it, edges
/// repeated, `u32` arithmetic with wrap-around as in C.
#[allow(clippy::indexing_slicing, reason = "fixed [_; C] arrays indexed by c in 0..C")]
fn line_box_blur<const C: usize>(out: &mut [u8], line: &[u8], radius: usize, ww: u32, fw: u32) {
    let n = line.len() / C;
    if n == 0 {
        return;
    }
    let lastx = n - 1;
    let edge_a = (radius + 1).min(n);
    let edge_b = n.saturating_sub(radius + 1);
    let px = |i: usize| -> [u32; C] {
        let mut v = [0u32; C];
        if let Some(p) = line.get(i * C..i * C + C) {
            for (d, s) in v.iter_mut().zip(p) {
                *d = u32::from(*s);
            }
        }
        v
    };
    let mut acc = [0u32; C];
    let first = px(0);
    let last = px(lastx);
    for c in 0..C {
        acc[c] = first[c].wrapping_mul(radius as u32 + 1);
    }
    for x in 0..edge_a.saturating_sub(1) {
        let p = px(x);
        for c in 0..C {
            acc[c] = acc[c].wrapping_add(p[c]);
        }
    }
    let rem = (radius as u32 + 1).wrapping_sub(edge_a as u32);
    for c in 0..C {
        acc[c] = acc[c].wrapping_add(last[c].wrapping_mul(rem));
    }
    let mut step = |x: usize, subtract: usize, add: usize, left: usize, right: usize| {
        let (s, a, l, r) = (px(subtract), px(add), px(left), px(right));
        let mut result = [0u8; C];
        for c in 0..C {
            acc[c] = acc[c].wrapping_add(a[c].wrapping_sub(s[c]));
            let bulk =
                acc[c].wrapping_mul(ww).wrapping_add(l[c].wrapping_add(r[c]).wrapping_mul(fw));
            result[c] = (bulk.wrapping_add(1 << 23) >> 24) as u8;
        }
        if let Some(o) = out.get_mut(x * C..x * C + C) {
            o.copy_from_slice(&result);
        }
    };
    if edge_a <= edge_b {
        for x in 0..edge_a {
            step(x, 0, x + radius, 0, x + radius + 1);
        }
        for x in edge_a..edge_b {
            step(x, x - radius - 1, x + radius, x - radius - 1, x + radius + 1);
        }
        for x in edge_b..=lastx {
            step(x, x - radius - 1, lastx, x - radius - 1, lastx);
        }
    } else {
        for x in 0..edge_b {
            step(x, 0, x + radius, 0, x + radius + 1);
        }
        for x in edge_b..edge_a {
            step(x, 0, lastx, 0, lastx);
        }
        for x in edge_a..=lastx {
            step(x, x - radius - 1, lastx, x - radius - 1, lastx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a1111_kernel_width_follows_the_rule() {
        assert_eq!(a1111_kernel(4.0).len(), 21);
        assert_eq!(a1111_kernel(1.0).len(), 7);
        assert_eq!(a1111_kernel(0.1).len(), 1);
        let k = a1111_kernel(2.5);
        assert!((k.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }

    /// The sparse blur is the full blur, byte for byte: masks in the middle, touching each
    /// edge and corner, one pixel, full, empty, on images smaller than the kernel, with
    /// different σ per axis.
    #[test]
    fn sparse_mask_blur_is_the_full_blur() {
        let mut state = 12345u64;
        let mut next = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as u32
        };
        let sizes = [(1, 1), (3, 50), (7, 5), (40, 30), (97, 61), (200, 120)];
        let sigmas = [(0.0, 0.0), (4.0, 4.0), (1.0, 6.0), (0.0, 3.0), (2.5, 0.0), (16.0, 16.0)];
        let mut cases = 0;
        for &(w, h) in &sizes {
            for &(sx, sy) in &sigmas {
                for shape in 0..8 {
                    let mut mask: Image<Gray8> = Image::new(w, h);
                    let (bw, bh) = (1 + next() % (w / 4 + 1), 1 + next() % (h / 4 + 1));
                    let (x0, y0) = match shape {
                        0 => (0, 0),
                        1 => (w - bw, 0),
                        2 => (0, h - bh),
                        3 => (w - bw, h - bh),
                        4 => (next() % (w - bw + 1), next() % (h - bh + 1)),
                        5 => (w / 2, h / 2),
                        _ => (next() % (w - bw + 1), next() % (h - bh + 1)),
                    };
                    for y in y0..(y0 + bh).min(h) {
                        for x in x0..(x0 + bw).min(w) {
                            mask.set(x, y, if shape == 6 { (next() % 256) as u8 } else { 255 });
                        }
                    }
                    if shape == 7 {
                        mask = Image::filled(w, h, 255);
                    }
                    let full = gaussian_blur_a1111(&mask, sx, sy).unwrap();
                    let sparse = gaussian_blur_a1111_sparse(&mask, sx, sy).unwrap();
                    assert!(full == sparse, "{w}x{h} σ ({sx}, {sy}) shape {shape}");
                    cases += 1;
                }
            }
        }
        assert_eq!(cases, 6 * 6 * 8);
        let empty: Image<Gray8> = Image::new(30, 20);
        assert_eq!(gaussian_blur_a1111_sparse(&empty, 4.0, 4.0).unwrap(), empty);
    }

    #[test]
    fn reflect101_wraps_repeatedly() {
        let idx: Vec<usize> = (-6..10).map(|i| reflect101(i, 4)).collect();
        assert_eq!(idx, [0, 1, 2, 3, 2, 1, 0, 1, 2, 3, 2, 1, 0, 1, 2, 3]);
        assert_eq!(reflect101(-3, 1), 0);
    }

    #[test]
    fn blurs_keep_constant_images_and_reject_bad_radii() {
        let img = Image::filled(9, 5, 77u8);
        assert_eq!(gaussian_blur_a1111(&img, 3.0, 1.5).unwrap(), img);
        assert_eq!(gaussian_blur_pillow(&img, 5.0).unwrap(), img);
        assert_eq!(box_blur_pillow(&img, 2.5).unwrap(), img);
        assert!(gaussian_blur_a1111(&img, f64::NAN, 1.0).is_err());
        assert!(gaussian_blur_pillow(&img, 1e9).is_err());
        assert!(matches!(box_blur_pillow(&img, -1.0), Err(BlurError::Negative(_))));
        let empty: Image<Gray8> = Image::new(0, 0);
        assert_eq!(gaussian_blur_a1111(&empty, 4.0, 4.0).unwrap(), empty);
        assert_eq!(gaussian_blur_pillow(&empty, 4.0).unwrap(), empty);
    }
}
