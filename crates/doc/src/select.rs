//! Selections: antialiased shape coverage combined with the current selection.

use raster::{Gray8, Image, Rect, Rgba8, TiledImage};

use crate::Document;
use crate::change::Change;
use crate::command::{SelectOp, SelectShape};
use crate::document::Ctx;
use crate::error::DocError;
use crate::ops::filled_tiled;

/// Vertical sub-samples per pixel row when rasterising shapes.
const SUBROWS: usize = 4;

/// Region copied from the document, with its canvas position, for the system clipboard.
#[derive(Clone, Debug, PartialEq)]
pub struct Clipboard {
    pub image: Image<Rgba8>,
    pub x: i32,
    pub y: i32,
}

fn ellipse_polygon(r: Rect) -> Vec<(f32, f32)> {
    let (rx, ry) = (r.width as f32 / 2.0, r.height as f32 / 2.0);
    let (cx, cy) = (r.x as f32 + rx, r.y as f32 + ry);
    let n = ((std::f32::consts::TAU * rx.max(ry)) / 2.0).ceil().clamp(32.0, 4096.0) as usize;
    (0..n)
        .map(|i| {
            let t = i as f32 / n as f32 * std::f32::consts::TAU;
            (cx + rx * t.cos(), cy + ry * t.sin())
        })
        .collect()
}

/// Antialiased even-odd coverage of a polygon over `area` (canvas pixels).
pub(crate) fn rasterize_polygon(points: &[(f32, f32)], area: Rect) -> Image<Gray8> {
    let mut out = Image::new(area.width, area.height);
    if points.len() < 3 || area.is_empty() {
        return out;
    }
    let w = area.width as usize;
    let mut acc = vec![0.0f32; w];
    let mut xs: Vec<f32> = Vec::new();
    let weight = 1.0 / SUBROWS as f32;
    for row in 0..area.height {
        acc.fill(0.0);
        for s in 0..SUBROWS {
            let yy = (area.y + row as i32) as f32 + (s as f32 + 0.5) * weight;
            xs.clear();
            let mut prev = points.last().copied().unwrap_or((0.0, 0.0));
            for &p in points {
                let (x0, y0) = prev;
                let (x1, y1) = p;
                if (y0 <= yy && yy < y1) || (y1 <= yy && yy < y0) {
                    xs.push(x0 + (yy - y0) / (y1 - y0) * (x1 - x0) - area.x as f32);
                }
                prev = p;
            }
            xs.sort_by(f32::total_cmp);
            for pair in xs.chunks_exact(2) {
                let (xa, xb) = match pair {
                    [a, b] => (a.clamp(0.0, w as f32), b.clamp(0.0, w as f32)),
                    _ => continue,
                };
                if xb <= xa {
                    continue;
                }
                let (ia, ib) = (xa.floor() as usize, xb.floor() as usize);
                if ia == ib {
                    if let Some(a) = acc.get_mut(ia) {
                        *a += (xb - xa) * weight;
                    }
                    continue;
                }
                if let Some(a) = acc.get_mut(ia) {
                    *a += (ia as f32 + 1.0 - xa) * weight;
                }
                for a in acc.iter_mut().take(ib).skip(ia + 1) {
                    *a += weight;
                }
                if let Some(a) = acc.get_mut(ib) {
                    *a += (xb - ib as f32) * weight;
                }
            }
        }
        for (o, a) in out.row_mut(row).iter_mut().zip(&acc) {
            *o = (a.clamp(0.0, 1.0) * 255.0 + 0.5) as u8;
        }
    }
    out
}

fn shape_points(shape: &SelectShape) -> Vec<(f32, f32)> {
    match shape {
        SelectShape::Rect(r) => {
            let (x0, y0, x1, y1) = (r.x as f32, r.y as f32, r.right() as f32, r.bottom() as f32);
            vec![(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
        }
        SelectShape::Ellipse(r) => ellipse_polygon(*r),
        SelectShape::Polygon(p) => p.clone(),
    }
}

fn bounds_of(points: &[(f32, f32)]) -> Rect {
    let finite = points.iter().filter(|(x, y)| x.is_finite() && y.is_finite());
    let (mut x0, mut y0, mut x1, mut y1) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
    for &(x, y) in finite {
        x0 = x0.min(x);
        y0 = y0.min(y);
        x1 = x1.max(x);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        return Rect::default();
    }
    let c = |v: f32| v.clamp(i32::MIN as f32 / 2.0, i32::MAX as f32 / 2.0);
    Rect::from_bounds(
        c(x0).floor() as i32,
        c(y0).floor() as i32,
        c(x1).ceil() as i32,
        c(y1).ceil() as i32,
    )
}

/// Combines `shape` (coverage over `area`) into `base` (None = nothing selected) with `op`.
fn combine(
    base: Option<&TiledImage<Gray8>>,
    shape: &Image<Gray8>,
    area: Rect,
    op: SelectOp,
    w: u32,
    h: u32,
) -> TiledImage<Gray8> {
    let mut out = match (op, base) {
        (SelectOp::Replace | SelectOp::Intersect, _) | (_, None) => TiledImage::new(w, h),
        (_, Some(b)) => b.clone(),
    };
    let old = base.map(|b| b.read_rect(area));
    let mut patch = Image::new(area.width, area.height);
    for y in 0..area.height {
        let old_row = old.as_ref().map(|o| o.row(y));
        for (x, (p, s)) in patch.row_mut(y).iter_mut().zip(shape.row(y)).enumerate() {
            let a = old_row.and_then(|r| r.get(x).copied()).unwrap_or(0);
            let (a32, s32) = (u32::from(a), u32::from(*s));
            *p = match op {
                SelectOp::Replace => *s,
                SelectOp::Add => a.max(*s),
                SelectOp::Subtract => ((a32 * (255 - s32) + 127) / 255) as u8,
                SelectOp::Intersect => ((a32 * s32 + 127) / 255) as u8,
            };
        }
    }
    out.write_image(&patch, area.x, area.y);
    out.compact();
    out
}

/// Softens a coverage image: Gaussian blur with σ = `feather_px` (the same kernel rule as
/// A1111's mask blur, so a feathered selection used as a mask behaves alike).
fn feather(img: &Image<Gray8>, feather_px: f32) -> Result<Image<Gray8>, DocError> {
    if feather_px <= 0.0 {
        return Ok(img.clone());
    }
    let sigma = f64::from(feather_px);
    raster::blur::gaussian_blur_a1111(img, sigma, sigma)
        .map_err(|e| DocError::InvalidParameter { name: "feather_px", reason: e.to_string() })
}

fn replace_selection(ctx: &mut Ctx<'_>, new: Option<TiledImage<Gray8>>, dirty: Rect) {
    ctx.snapshot_selection();
    let canvas = ctx.canvas();
    let old_bounds = ctx.state.selection.as_ref().map(|s| s.allocated_bounds());
    ctx.state.selection = new;
    match old_bounds {
        Some(b) => ctx.change.dirty_selection(b.union(&dirty).intersect(&canvas)),
        None => ctx.change.dirty_selection(canvas),
    }
}

pub(crate) fn select(
    ctx: &mut Ctx<'_>,
    shape: &SelectShape,
    op: SelectOp,
    feather_px: f32,
) -> Result<(), DocError> {
    if !feather_px.is_finite() || !(0.0..=1000.0).contains(&feather_px) {
        return Err(DocError::InvalidParameter {
            name: "feather_px",
            reason: format!("{feather_px} is not in 0..=1000"),
        });
    }
    let canvas = ctx.canvas();
    let points = shape_points(shape);
    let margin = (feather_px * 3.0).ceil() as i32 + 1;
    let area = bounds_of(&points).inflated(margin).intersect(&canvas);
    let coverage = feather(&rasterize_polygon(&points, area), feather_px)?;
    let new =
        combine(ctx.state.selection.as_ref(), &coverage, area, op, canvas.width, canvas.height);
    let dirty = if matches!(op, SelectOp::Intersect) { canvas } else { area };
    replace_selection(ctx, Some(new), dirty);
    Ok(())
}

pub(crate) fn select_all(ctx: &mut Ctx<'_>) -> Result<(), DocError> {
    let canvas = ctx.canvas();
    replace_selection(ctx, Some(filled_tiled(canvas.width, canvas.height, 255)), canvas);
    Ok(())
}

pub(crate) fn select_none(ctx: &mut Ctx<'_>) -> Result<(), DocError> {
    if ctx.state.selection.is_some() {
        let canvas = ctx.canvas();
        replace_selection(ctx, None, canvas);
    }
    Ok(())
}

pub(crate) fn invert(ctx: &mut Ctx<'_>) -> Result<(), DocError> {
    let canvas = ctx.canvas();
    let new = match &ctx.state.selection {
        None => TiledImage::new(canvas.width, canvas.height),
        Some(s) => {
            let mut t = TiledImage::from_image(&s.to_image().map(|v| 255 - v));
            t.compact();
            t
        }
    };
    replace_selection(ctx, Some(new), canvas);
    Ok(())
}

impl Document {
    /// Copies the selected part of the active layer (`merged`: of the visible composite), alpha
    /// weighted by selection coverage; the whole canvas without a selection.
    pub fn copy(&self, merged: bool) -> Result<Clipboard, DocError> {
        let ctx_area = match &self.state.selection {
            None => self.bounds(),
            Some(s) => {
                let b = s.content_bounds().intersect(&self.bounds());
                if b.is_empty() {
                    return Err(DocError::EmptySelection);
                }
                b
            }
        };
        let mut image = if merged {
            self.render_region(ctx_area)
        } else {
            let layer = self.active_layer().ok_or(DocError::NoActiveLayer)?;
            layer.pixels.read_rect(ctx_area.translated(-layer.offset_x, -layer.offset_y))
        };
        if let Some(sel) = self.state.selection.as_ref().map(|s| s.read_rect(ctx_area)) {
            for (p, s) in image.pixels_mut().iter_mut().zip(sel.pixels()) {
                p[3] = ((u32::from(p[3]) * u32::from(*s) + 127) / 255) as u8;
                if p[3] == 0 {
                    *p = [0, 0, 0, 0];
                }
            }
        }
        Ok(Clipboard { image, x: ctx_area.x, y: ctx_area.y })
    }

    /// Copies the selection of the active layer and clears it, as one undo step ("Cut").
    pub fn cut(&mut self) -> Result<(Clipboard, Change), DocError> {
        let clip = self.copy(false)?;
        let (_, change) = self.transact("Cut", crate::fill::clear_selection)?;
        Ok((clip, change))
    }
}
