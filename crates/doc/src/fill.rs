//! Flood fill and filling/clearing the selection.

use raster::{Image, Rect, Rgba8};

use crate::brush::deposit;
use crate::command::FillSource;
use crate::document::Ctx;
use crate::error::DocError;
use crate::layer_ops::grow_layer_to_canvas;
use crate::ops::{edit_area, edit_layer_rows, selection_patch};

#[inline]
fn within(a: Rgba8, b: Rgba8, tolerance: u8) -> bool {
    a.iter().zip(b.iter()).all(|(x, y)| x.abs_diff(*y) <= tolerance)
}

/// The 4-connected region of pixels within `tolerance` of the seed: a row-major bitmap over
/// `sample` and the region's bounding box.
pub(crate) fn region(sample: &Image<Rgba8>, x: u32, y: u32, tolerance: u8) -> (Vec<bool>, Rect) {
    let (w, h) = (sample.width(), sample.height());
    let mut inside = vec![false; w as usize * h as usize];
    let Some(seed) = sample.get(x, y) else { return (inside, Rect::default()) };
    let matches = |x: u32, y: u32| sample.get(x, y).is_some_and(|p| within(p, seed, tolerance));
    let mut bounds = Rect::default();
    let mut stack = vec![(x, y)];
    while let Some((x, y)) = stack.pop() {
        let row = y as usize * w as usize;
        let done =
            |x: u32, inside: &Vec<bool>| inside.get(row + x as usize).copied().unwrap_or(true);
        if done(x, &inside) || !matches(x, y) {
            continue;
        }
        let mut x0 = x;
        while x0 > 0 && !done(x0 - 1, &inside) && matches(x0 - 1, y) {
            x0 -= 1;
        }
        let mut x1 = x;
        while x1 + 1 < w && !done(x1 + 1, &inside) && matches(x1 + 1, y) {
            x1 += 1;
        }
        if let Some(span) = inside.get_mut(row + x0 as usize..=row + x1 as usize) {
            span.fill(true);
        }
        bounds = bounds.union(&Rect::new(x0 as i32, y as i32, x1 - x0 + 1, 1));
        for ny in [y.wrapping_sub(1), y + 1] {
            if ny >= h {
                continue;
            }
            let mut prev_match = false;
            for nx in x0..=x1 {
                let m =
                    !inside.get(ny as usize * w as usize + nx as usize).copied().unwrap_or(true)
                        && matches(nx, ny);
                if m && !prev_match {
                    stack.push((nx, ny));
                }
                prev_match = m;
            }
        }
    }
    (inside, bounds)
}

pub(crate) fn flood_fill(
    ctx: &mut Ctx<'_>,
    x: i32,
    y: i32,
    color: Rgba8,
    tolerance: u8,
    source: FillSource,
) -> Result<(), DocError> {
    let canvas = ctx.canvas();
    if !canvas.contains(x, y) {
        return Err(DocError::OutsideCanvas { x, y });
    }
    let id = ctx.active_id()?;
    grow_layer_to_canvas(ctx, id)?;
    let sample = match source {
        FillSource::ActiveLayer => {
            let l = ctx.layer(id)?;
            l.pixels.read_rect(canvas.translated(-l.offset_x, -l.offset_y))
        }
        FillSource::Composite => crate::composite::render_region(ctx.state, canvas),
    };
    let (inside, bounds) = region(&sample, x as u32, y as u32, tolerance);
    drop(sample);
    if bounds.is_empty() {
        return Ok(());
    }
    let sel = selection_patch(ctx, bounds);
    let alpha_lock = ctx.layer(id)?.props.alpha_lock;
    let w = canvas.width as usize;
    edit_layer_rows(ctx, id, bounds, false, |cy, cx0, row| {
        let base = cy as usize * w + cx0 as usize;
        let sel_row = sel.as_ref().map(|s| s.row((cy - bounds.y) as u32));
        for (i, p) in row.iter_mut().enumerate() {
            if !inside.get(base + i).copied().unwrap_or(false) {
                continue;
            }
            let a = sel_row.map_or(1.0, |r| {
                f32::from(r.get(cx0 as usize + i - bounds.x as usize).copied().unwrap_or(0)) / 255.0
            });
            if a > 0.0 {
                *p = deposit(*p, color, a, false, alpha_lock);
            }
        }
    })
}

/// Paints (or erases) the active layer weighted by selection coverage.
fn paint_selection(ctx: &mut Ctx<'_>, color: Rgba8, eraser: bool) -> Result<(), DocError> {
    let id = ctx.active_id()?;
    let area = edit_area(ctx)?;
    if !eraser {
        grow_layer_to_canvas(ctx, id)?;
    }
    let sel = selection_patch(ctx, area);
    let alpha_lock = ctx.layer(id)?.props.alpha_lock;
    edit_layer_rows(ctx, id, area, eraser, |cy, cx0, row| {
        let sel_row = sel.as_ref().map(|s| s.row((cy - area.y) as u32));
        let dx = (cx0 - area.x) as usize;
        for (i, p) in row.iter_mut().enumerate() {
            let a = sel_row.map_or(1.0, |r| f32::from(r.get(dx + i).copied().unwrap_or(0)) / 255.0);
            if a > 0.0 {
                *p = deposit(*p, color, a, eraser, alpha_lock);
            }
        }
    })
}

pub(crate) fn fill_selection(ctx: &mut Ctx<'_>, color: Rgba8) -> Result<(), DocError> {
    paint_selection(ctx, color, false)
}

pub(crate) fn clear_selection(ctx: &mut Ctx<'_>) -> Result<(), DocError> {
    paint_selection(ctx, [0, 0, 0, 0], true)
}
