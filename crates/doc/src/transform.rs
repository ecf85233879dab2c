//! Affine layer transforms (scale, rotate, flip), sampled once with bilinear interpolation on
//! premultiplied colour so transparent edges do not darken.

use raster::{Image, Rect, Rgba8, TiledImage};
use rayon::prelude::*;

use crate::LayerId;
use crate::command::Affine;
use crate::document::{Ctx, MAX_CANVAS_SIDE};
use crate::error::DocError;

/// Bilinear sample of `src` at continuous pixel coordinates (pixel centres at +0.5).
#[inline]
fn sample(src: &Image<Rgba8>, x: f64, y: f64) -> Rgba8 {
    let fx = x - 0.5;
    let fy = y - 0.5;
    let x0 = fx.floor();
    let y0 = fy.floor();
    let (tx, ty) = ((fx - x0) as f32, (fy - y0) as f32);
    let (x0, y0) = (x0 as i64, y0 as i64);
    let mut acc = [0.0f32; 4];
    for (dy, wy) in [(0i64, 1.0 - ty), (1, ty)] {
        if wy <= 0.0 {
            continue;
        }
        for (dx, wx) in [(0i64, 1.0 - tx), (1, tx)] {
            let w = wx * wy;
            if w <= 0.0 {
                continue;
            }
            let (sx, sy) = (x0 + dx, y0 + dy);
            if sx < 0 || sy < 0 || sx > u32::MAX as i64 || sy > u32::MAX as i64 {
                continue;
            }
            let Some([r, g, b, a]) = src.get(sx as u32, sy as u32) else { continue };
            let wa = w * f32::from(a);
            acc[0] += wa * f32::from(r);
            acc[1] += wa * f32::from(g);
            acc[2] += wa * f32::from(b);
            acc[3] += wa;
        }
    }
    let [r, g, b, a] = acc;
    let alpha = (a + 0.5) as u8;
    if alpha == 0 {
        return [0, 0, 0, 0];
    }
    let c = |v: f32| (v / a + 0.5).clamp(0.0, 255.0) as u8;
    [c(r), c(g), c(b), alpha]
}

pub(crate) fn transform_layer(ctx: &mut Ctx<'_>, id: LayerId, m: Affine) -> Result<(), DocError> {
    let inv = m.inverse().ok_or(DocError::DegenerateTransform)?;
    if [m.a, m.b, m.c, m.d, m.e, m.f].iter().any(|v| !v.is_finite()) {
        return Err(DocError::DegenerateTransform);
    }
    let layer = ctx.layer(id)?;
    let content = layer.pixels.allocated_bounds();
    if content.is_empty() {
        return Ok(());
    }
    let (ox, oy) = (layer.offset_x, layer.offset_y);
    let src = layer.pixels.read_rect(content);
    // Source content in canvas coordinates, its corners mapped to find the output box.
    let cb = content.translated(ox, oy);
    let corners = [
        m.apply(f64::from(cb.x), f64::from(cb.y)),
        m.apply(f64::from(cb.right()), f64::from(cb.y)),
        m.apply(f64::from(cb.x), f64::from(cb.bottom())),
        m.apply(f64::from(cb.right()), f64::from(cb.bottom())),
    ];
    let min_x = corners.iter().map(|c| c.0).fold(f64::MAX, f64::min).floor();
    let min_y = corners.iter().map(|c| c.1).fold(f64::MAX, f64::min).floor();
    let max_x = corners.iter().map(|c| c.0).fold(f64::MIN, f64::max).ceil();
    let max_y = corners.iter().map(|c| c.1).fold(f64::MIN, f64::max).ceil();
    let (w, h) = (max_x - min_x, max_y - min_y);
    let limit = f64::from(MAX_CANVAS_SIDE) * 2.0;
    if !(w >= 1.0 && h >= 1.0 && w <= limit && h <= limit)
        || min_x.abs() > f64::from(i32::MAX / 2)
        || min_y.abs() > f64::from(i32::MAX / 2)
    {
        return Err(DocError::TransformTooLarge {
            width: w.max(0.0) as u64,
            height: h.max(0.0) as u64,
            max: MAX_CANVAS_SIDE * 2,
        });
    }
    let out_rect = Rect::new(min_x as i32, min_y as i32, w as u32, h as u32);
    let mut out = Image::new(out_rect.width, out_rect.height);
    let (src_x, src_y) = (f64::from(cb.x), f64::from(cb.y));
    let row_len = out_rect.width as usize;
    out.pixels_mut().par_chunks_mut(row_len.max(1)).enumerate().for_each(|(row, pixels)| {
        let cy = f64::from(out_rect.y) + row as f64 + 0.5;
        for (col, p) in pixels.iter_mut().enumerate() {
            let cx = f64::from(out_rect.x) + col as f64 + 0.5;
            let (sx, sy) = inv.apply(cx, cy);
            *p = sample(&src, sx - src_x, sy - src_y);
        }
    });
    let mut pixels = TiledImage::from_image(&out);
    pixels.compact();
    ctx.snapshot_layers();
    ctx.dirty_layer_all(id);
    if let Some(l) = ctx.state.layer_mut(id) {
        l.pixels = pixels;
        l.offset_x = out_rect.x;
        l.offset_y = out_rect.y;
    }
    ctx.dirty_layer_all(id);
    Ok(())
}
