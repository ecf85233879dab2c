//! Image resizing that reproduces Pillow 13's `Image.resize` byte for byte.
//!
//! A1111 scales inpaint crops and masks with Pillow; other Lanczos implementations move pixels by
//! a few levels, which shows up in the pasted-back result. So this is Pillow's algorithm
//! (`libImaging/Resample.c`), not a textbook one: separable two passes (horizontal first, each only
//! when its axis changes size), per-output coefficients computed in `f64` and normalised to sum 1,
//! then quantised to 22-bit fixed point (`PRECISION_BITS = 32 − 8 − 2`), accumulated in `i32`
//! with a rounding half-bit and clipped to `u8` after *each* pass. RGBA is premultiplied around
//! the resize with Pillow's integer formulas (`RGBA → RGBa → RGBA`). `Nearest` is Pillow's affine
//! nearest-neighbour scale with its accumulated `f64` source coordinate.

use rayon::prelude::*;

use crate::{Gray8, Image, Rgba8};

/// Pillow's `PRECISION_BITS`: 8 bits of result, 2 bits of headroom for negative lobes.
const PRECISION_BITS: u32 = 32 - 8 - 2;
const HALF: i32 = 1 << (PRECISION_BITS - 1);

/// A resampling filter, named as Pillow names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResampleFilter {
    Nearest,
    Bilinear,
    /// Keys cubic with a = −0.5, support 2.
    Bicubic,
    /// Lanczos with support 3 (Pillow's `LANCZOS`/`ANTIALIAS`).
    Lanczos3,
}

impl ResampleFilter {
    fn support(self) -> f64 {
        match self {
            ResampleFilter::Nearest => 0.0,
            ResampleFilter::Bilinear => 1.0,
            ResampleFilter::Bicubic => 2.0,
            ResampleFilter::Lanczos3 => 3.0,
        }
    }

    fn weight(self, x: f64) -> f64 {
        match self {
            ResampleFilter::Nearest => 0.0,
            ResampleFilter::Bilinear => {
                let x = x.abs();
                if x < 1.0 { 1.0 - x } else { 0.0 }
            }
            ResampleFilter::Bicubic => {
                const A: f64 = -0.5;
                let x = x.abs();
                if x < 1.0 {
                    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * A
                } else {
                    0.0
                }
            }
            ResampleFilter::Lanczos3 => {
                if (-3.0..3.0).contains(&x) {
                    sinc(x) * sinc(x / 3.0)
                } else {
                    0.0
                }
            }
        }
    }
}

fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        1.0
    } else {
        let x = x * std::f64::consts::PI;
        x.sin() / x
    }
}

/// Why a resize was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResizeError {
    #[error(
        "cannot resize a {from_width}×{from_height} image to {to_width}×{to_height}: sizes must be non-zero"
    )]
    EmptySize { from_width: u32, from_height: u32, to_width: u32, to_height: u32 },
}

fn check_sizes(w: u32, h: u32, to_w: u32, to_h: u32) -> Result<(), ResizeError> {
    if w == 0 || h == 0 || to_w == 0 || to_h == 0 {
        return Err(ResizeError::EmptySize {
            from_width: w,
            from_height: h,
            to_width: to_w,
            to_height: to_h,
        });
    }
    Ok(())
}

/// Resizes a straight-alpha RGBA image as Pillow's `Image.resize(size, filter)` does for mode
/// `RGBA` (premultiplied around the resize, except for `Nearest`).
pub fn resize_rgba(
    img: &Image<Rgba8>,
    width: u32,
    height: u32,
    filter: ResampleFilter,
) -> Result<Image<Rgba8>, ResizeError> {
    check_sizes(img.width(), img.height(), width, height)?;
    if (img.width(), img.height()) == (width, height) {
        return Ok(img.clone());
    }
    if filter == ResampleFilter::Nearest {
        return Ok(resize_nearest(img, width, height));
    }
    let premultiplied = img.map(premultiply);
    let bytes = resample_bytes::<4>(
        premultiplied.pixels().as_flattened(),
        img.width() as usize,
        img.height() as usize,
        width as usize,
        height as usize,
        filter,
    );
    let pixels = bytes.as_chunks::<4>().0.iter().map(|&p| unpremultiply(p)).collect();
    Ok(Image::from_pixels(width, height, pixels).unwrap_or_else(|| Image::new(width, height)))
}

/// Resizes an 8-bit grey image as Pillow's `Image.resize(size, filter)` does for mode `L`.
pub fn resize_gray(
    img: &Image<Gray8>,
    width: u32,
    height: u32,
    filter: ResampleFilter,
) -> Result<Image<Gray8>, ResizeError> {
    check_sizes(img.width(), img.height(), width, height)?;
    if (img.width(), img.height()) == (width, height) {
        return Ok(img.clone());
    }
    if filter == ResampleFilter::Nearest {
        return Ok(resize_nearest(img, width, height));
    }
    let bytes = resample_bytes::<1>(
        img.pixels(),
        img.width() as usize,
        img.height() as usize,
        width as usize,
        height as usize,
        filter,
    );
    Ok(Image::from_pixels(width, height, bytes).unwrap_or_else(|| Image::new(width, height)))
}

/// The edge of an image that [`edge_strip_gray`] / [`edge_strip_rgba`] extend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Edge {
    Top,
    Bottom,
    Left,
    Right,
}

/// Pillow's resize of a zero-width box lying on one edge, as A1111's fit-and-fill
/// (`resize_image` mode 2) paints its edge strips: `img.resize((w, thickness), filter,
/// box=(0, 0, w, 0))` for the top edge and likewise for the others. With a zero-width box the
/// filter is centred on the edge itself at scale 1, so every line of the strip is the same
/// combination of the few outermost lines, in Pillow's fixed point — not a copy of the edge
/// line (bicubic, Pillow's default filter: 1.125 and −0.125 of the outer two lines; Lanczos:
/// L(0.5), L(1.5), L(2.5) normalised over the outer three).
pub fn edge_strip_gray(
    img: &Image<Gray8>,
    edge: Edge,
    thickness: u32,
    filter: ResampleFilter,
) -> Result<Image<Gray8>, ResizeError> {
    let (w, h, bytes) =
        edge_strip_bytes::<1>(img.pixels(), img.width(), img.height(), edge, thickness, filter)?;
    Ok(Image::from_pixels(w, h, bytes).unwrap_or_else(|| Image::new(w, h)))
}

/// [`edge_strip_gray`] for straight-alpha RGBA (premultiplied around the filter, as Pillow's
/// RGBA resize; opaque images are unaffected by that).
pub fn edge_strip_rgba(
    img: &Image<Rgba8>,
    edge: Edge,
    thickness: u32,
    filter: ResampleFilter,
) -> Result<Image<Rgba8>, ResizeError> {
    let premultiplied = img.map(premultiply);
    let (w, h, bytes) = edge_strip_bytes::<4>(
        premultiplied.pixels().as_flattened(),
        img.width(),
        img.height(),
        edge,
        thickness,
        filter,
    )?;
    let pixels = bytes.as_chunks::<4>().0.iter().map(|&p| unpremultiply(p)).collect();
    Ok(Image::from_pixels(w, h, pixels).unwrap_or_else(|| Image::new(w, h)))
}

/// The strip's size and interleaved bytes: one filtered line, repeated `thickness` times.
fn edge_strip_bytes<const C: usize>(
    src: &[u8],
    width: u32,
    height: u32,
    edge: Edge,
    thickness: u32,
    filter: ResampleFilter,
) -> Result<(u32, u32, Vec<u8>), ResizeError> {
    let vertical = matches!(edge, Edge::Top | Edge::Bottom);
    let (out_w, out_h) = if vertical { (width, thickness) } else { (thickness, height) };
    check_sizes(width, height, out_w, out_h)?;
    let (w, h) = (width as usize, height as usize);
    // Lines across the edge: rows for top/bottom, columns for left/right.
    let (across, line_len) = if vertical { (h, w) } else { (w, h) };
    let center = match edge {
        Edge::Top | Edge::Left => 0.0,
        Edge::Bottom | Edge::Right => across as f64,
    };
    let (first, weights) = edge_taps(across, center, filter);
    let mut line = vec![0u8; line_len * C];
    for (i, out) in line.chunks_exact_mut(C).enumerate() {
        let mut acc = [HALF; C];
        for (t, &k) in weights.iter().enumerate() {
            let (x, y) = if vertical { (i, first + t) } else { (first + t, i) };
            let at = (y * w + x) * C;
            let Some(px) = src.get(at..at + C) else { continue };
            for (a, &v) in acc.iter_mut().zip(px) {
                *a += i32::from(v) * k;
            }
        }
        for (o, a) in out.iter_mut().zip(acc) {
            *o = clip8(a);
        }
    }
    let mut bytes = Vec::with_capacity(out_w as usize * out_h as usize * C);
    if vertical {
        for _ in 0..thickness {
            bytes.extend_from_slice(&line);
        }
    } else {
        for px in line.chunks_exact(C) {
            for _ in 0..thickness {
                bytes.extend_from_slice(px);
            }
        }
    }
    Ok((out_w, out_h, bytes))
}

/// Pillow's `precompute_coeffs` for one output pixel of a zero-scale box at `center`
/// (support × 1) and `normalize_coeffs_8bpc`: the first input line and the fixed-point weights.
fn edge_taps(in_size: usize, center: f64, filter: ResampleFilter) -> (usize, Vec<i32>) {
    let support = filter.support();
    // C's (int) truncates toward zero.
    let xmin = ((center - support + 0.5) as i64).max(0) as usize;
    let xmax = ((center + support + 0.5) as i64).min(in_size as i64).max(0) as usize;
    let n = xmax.saturating_sub(xmin);
    let raw: Vec<f64> =
        (0..n).map(|x| filter.weight(((x + xmin) as f64 - center + 0.5) * 1.0)).collect();
    let total: f64 = raw.iter().sum();
    let weights = raw
        .iter()
        .map(|&k| {
            let v = if total != 0.0 { k / total } else { k };
            let scaled = v * f64::from(1u32 << PRECISION_BITS);
            if v < 0.0 { (scaled - 0.5) as i32 } else { (scaled + 0.5) as i32 }
        })
        .collect();
    (xmin, weights)
}

/// Pillow's `MULDIV255(c, a)`: `c·a/255` rounded, in integers.
#[inline]
fn muldiv255(c: u8, a: u8) -> u8 {
    let t = u32::from(c) * u32::from(a) + 128;
    (((t >> 8) + t) >> 8) as u8
}

/// Pillow's `rgbA2rgba`.
#[inline]
pub(crate) fn premultiply([r, g, b, a]: Rgba8) -> Rgba8 {
    [muldiv255(r, a), muldiv255(g, a), muldiv255(b, a), a]
}

/// Pillow's `rgba2rgbA`: truncating division, clipped; alpha 0 and 255 pass colour through.
#[inline]
pub(crate) fn unpremultiply([r, g, b, a]: Rgba8) -> Rgba8 {
    if a == 0 || a == 255 {
        return [r, g, b, a];
    }
    let div = |c: u8| (255 * u32::from(c) / u32::from(a)).min(255) as u8;
    [div(r), div(g), div(b), a]
}

/// Pillow's `ImagingScaleAffine` as `Image.resize(…, NEAREST)` calls it: the source coordinate
/// starts at half a step and accumulates the step in `f64` (the accumulation is part of the
/// result on some sizes, so it is kept rather than computed per pixel).
fn resize_nearest<P: crate::Pixel>(img: &Image<P>, width: u32, height: u32) -> Image<P> {
    let step_x = f64::from(img.width() as f32) / f64::from(width);
    let step_y = f64::from(img.height() as f32) / f64::from(height);
    let coord = |v: f64, n: u32| -> Option<u32> {
        // C's COORD: negative → −1, else truncation.
        if v < 0.0 {
            None
        } else {
            let i = v as u32;
            (i < n).then_some(i)
        }
    };
    let mut xo = step_x * 0.5;
    let xs: Vec<Option<u32>> = (0..width)
        .map(|_| {
            let x = coord(xo, img.width());
            xo += step_x;
            x
        })
        .collect();
    let mut out = Image::new(width, height);
    let mut yo = step_y * 0.5;
    for y in 0..height {
        if let Some(sy) = coord(yo, img.height()) {
            let src = img.row(sy);
            for (o, sx) in out.row_mut(y).iter_mut().zip(&xs) {
                if let Some(p) = sx.and_then(|sx| src.get(sx as usize)) {
                    *o = *p;
                }
            }
        }
        yo += step_y;
    }
    out
}

/// Per-output-pixel filter taps: the first input index and the fixed-point weights.
struct Taps {
    /// Maximum taps per output pixel (Pillow's `ksize`).
    ksize: usize,
    /// `(first input index, tap count)` per output pixel.
    bounds: Vec<(usize, usize)>,
    /// `ksize` weights per output pixel, 22-bit fixed point.
    weights: Vec<i32>,
}

impl Taps {
    fn weights_of(&self, out_index: usize) -> &[i32] {
        let start = out_index * self.ksize;
        let n = self.bounds.get(out_index).map_or(0, |b| b.1);
        self.weights.get(start..start + n).unwrap_or(&[])
    }
}

/// Pillow's `precompute_coeffs` (box = the whole input) followed by `normalize_coeffs_8bpc`.
fn precompute_taps(in_size: usize, out_size: usize, filter: ResampleFilter) -> Taps {
    // Pillow computes `in1 − in0` in `float` then widens it.
    let scale = f64::from(in_size as f32) / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filter.support() * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let mut bounds = Vec::with_capacity(out_size);
    let mut weights = vec![0i32; out_size * ksize];
    let mut k = vec![0f64; ksize];
    for (xx, out_weights) in weights.chunks_exact_mut(ksize).enumerate() {
        let center = (xx as f64 + 0.5) * scale;
        let ss = 1.0 / filterscale;
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64).max(0) as usize;
        let n = xmax.saturating_sub(xmin).min(ksize);
        let mut ww = 0.0;
        for (x, kx) in k.iter_mut().enumerate().take(n) {
            let w = filter.weight(((x + xmin) as f64 - center + 0.5) * ss);
            *kx = w;
            ww += w;
        }
        for (o, &kx) in out_weights.iter_mut().zip(&k).take(n) {
            let v = if ww != 0.0 { kx / ww } else { kx };
            let scaled = v * f64::from(1u32 << PRECISION_BITS);
            *o = if v < 0.0 { (scaled - 0.5) as i32 } else { (scaled + 0.5) as i32 };
        }
        bounds.push((xmin, n));
    }
    Taps { ksize, bounds, weights }
}

/// Pillow's `clip8`: the accumulator's integer part, clamped to `0..=255`.
#[inline]
fn clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// The two-pass resize on interleaved `C`-channel bytes.
fn resample_bytes<const C: usize>(
    src: &[u8],
    in_w: usize,
    in_h: usize,
    out_w: usize,
    out_h: usize,
    filter: ResampleFilter,
) -> Vec<u8> {
    let vert = precompute_taps(in_h, out_h, filter);
    let need_horizontal = out_w != in_w;
    let need_vertical = out_h != in_h;
    // Rows of the source that the vertical pass reads.
    let first_row = vert.bounds.first().map_or(0, |b| b.0);
    let last_row = vert.bounds.last().map_or(in_h, |b| b.0 + b.1);

    let (horizontal, row0) = if need_horizontal {
        let taps = precompute_taps(in_w, out_w, filter);
        let rows = src.get(first_row * in_w * C..last_row * in_w * C).unwrap_or(&[]);
        (horizontal_pass::<C>(rows, in_w, out_w, &taps), first_row)
    } else {
        (src.to_vec(), 0)
    };
    if !need_vertical {
        return horizontal;
    }
    vertical_pass(&horizontal, out_w * C, row0, &vert)
}

fn horizontal_pass<const C: usize>(rows: &[u8], in_w: usize, out_w: usize, taps: &Taps) -> Vec<u8> {
    let n_rows = rows.len() / (in_w * C).max(1);
    let mut out = vec![0u8; n_rows * out_w * C];
    let rows_in = rows.par_chunks_exact((in_w * C).max(1));
    out.par_chunks_exact_mut((out_w * C).max(1)).zip(rows_in).for_each(|(dst_row, src_row)| {
        for (xx, dst) in dst_row.chunks_exact_mut(C).enumerate() {
            let (xmin, n) = taps.bounds.get(xx).copied().unwrap_or((0, 0));
            let window = src_row.get(xmin * C..(xmin + n) * C).unwrap_or(&[]);
            let mut acc = [HALF; C];
            for (px, &k) in window.chunks_exact(C).zip(taps.weights_of(xx)) {
                for (a, &v) in acc.iter_mut().zip(px) {
                    *a += i32::from(v) * k;
                }
            }
            for (d, a) in dst.iter_mut().zip(acc) {
                *d = clip8(a);
            }
        }
    });
    out
}

/// Vertical pass, row-major: each output row accumulates whole input rows (the sums are the same
/// integers as Pillow's column-wise loop, in a cache-friendly order). Rows run in parallel.
fn vertical_pass(src: &[u8], row_len: usize, row0: usize, taps: &Taps) -> Vec<u8> {
    let out_h = taps.bounds.len();
    let mut out = vec![0u8; out_h * row_len];
    let rows = out.par_chunks_exact_mut(row_len.max(1)).enumerate();
    rows.for_each_init(
        || vec![0i32; row_len],
        |acc, (yy, dst_row)| {
            let (ymin, n) = taps.bounds.get(yy).copied().unwrap_or((0, 0));
            acc.fill(HALF);
            let start = ymin.saturating_sub(row0);
            for (y, &k) in (start..start + n).zip(taps.weights_of(yy)) {
                let Some(row) = src.get(y * row_len..(y + 1) * row_len) else { continue };
                for (a, &v) in acc.iter_mut().zip(row) {
                    *a += i32::from(v) * k;
                }
            }
            for (d, &a) in dst_row.iter_mut().zip(acc.iter()) {
                *d = clip8(a);
            }
        },
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_sizes_are_errors() {
        let img: Image<Gray8> = Image::new(4, 4);
        assert!(resize_gray(&img, 0, 3, ResampleFilter::Bilinear).is_err());
        assert!(resize_gray(&Image::new(0, 4), 3, 3, ResampleFilter::Bilinear).is_err());
    }

    #[test]
    fn constant_image_stays_constant() {
        let img = Image::filled(13, 7, [10u8, 200, 30, 255]);
        for f in [ResampleFilter::Bilinear, ResampleFilter::Bicubic, ResampleFilter::Lanczos3] {
            let out = resize_rgba(&img, 29, 3, f).unwrap();
            assert!(out.pixels().iter().all(|p| *p == [10, 200, 30, 255]), "{f:?}");
        }
    }

    #[test]
    fn edge_strips_use_three_lanczos_taps_of_the_edge_lines() {
        // Weights L(0.5), L(1.5), L(2.5) normalised: 1.22283, −0.27174, 0.04891.
        let img = Image::from_pixels(1, 4, vec![100u8, 0, 0, 50]).unwrap();
        let top = edge_strip_gray(&img, Edge::Top, 2, ResampleFilter::Lanczos3).unwrap();
        assert_eq!((top.width(), top.height()), (1, 2));
        assert_eq!(top.pixels(), &[122, 122]);
        // Bottom edge: 50 is the edge line, 0 and 0 the next ones.
        let bottom = edge_strip_gray(&img, Edge::Bottom, 1, ResampleFilter::Lanczos3).unwrap();
        assert_eq!(bottom.pixels(), &[61]);
        let wide = Image::from_pixels(4, 1, vec![100u8, 0, 0, 50]).unwrap();
        let left = edge_strip_gray(&wide, Edge::Left, 3, ResampleFilter::Lanczos3).unwrap();
        assert_eq!((left.width(), left.height()), (3, 1));
        assert_eq!(left.pixels(), &[122, 122, 122]);
        let right = edge_strip_gray(&wide, Edge::Right, 1, ResampleFilter::Lanczos3).unwrap();
        assert_eq!(right.pixels(), &[61]);
        // Bicubic: 1.125·100 − 0.125·0 = 112.5 → 113 (half rounds up in Pillow's fixed point).
        let cubic = edge_strip_gray(&img, Edge::Top, 1, ResampleFilter::Bicubic).unwrap();
        assert_eq!(cubic.pixels(), &[113]);
        // A one-line image: the single tap renormalised to 1 (a copy).
        let thin = Image::from_pixels(2, 1, vec![7u8, 9]).unwrap();
        let strip = edge_strip_gray(&thin, Edge::Top, 2, ResampleFilter::Lanczos3).unwrap();
        assert_eq!(strip.pixels(), &[7, 9, 7, 9]);
    }

    #[test]
    fn premultiply_round_trip_matches_pillow_formulas() {
        assert_eq!(premultiply([255, 128, 0, 128]), [128, 64, 0, 128]);
        assert_eq!(unpremultiply([128, 64, 0, 128]), [255, 127, 0, 128]);
        assert_eq!(unpremultiply([200, 0, 0, 100]), [255, 0, 0, 100]);
        assert_eq!(unpremultiply([3, 4, 5, 0]), [3, 4, 5, 0]);
    }
}
