//! The round brush: dabs spaced along a stroke, deposited through a per-stroke coverage buffer
//! so that `flow` builds up within a stroke while `opacity` caps it (as in Krita).

use std::collections::HashMap;
use std::sync::Arc;

use raster::{Gray8, Image, Rect, Rgba8, TILE_SIZE, Tile, TileCoord};

use crate::change::Change;
use crate::document::Ctx;
use crate::error::DocError;
use crate::{Document, LayerId};

const TILE_PIXELS: usize = (TILE_SIZE * TILE_SIZE) as usize;
/// Stroke coverage is kept in 16-bit fixed point so low-flow build-up does not stall.
const COVER_ONE: f32 = 65535.0;

/// Round brush settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Brush {
    /// Diameter in canvas pixels.
    pub size_px: f32,
    /// 1 = hard edge (antialiased), 0 = linear fall-off from the centre.
    pub hardness: f32,
    /// Highest alpha one stroke can deposit, 0..=1.
    pub opacity: f32,
    /// Alpha each dab adds, 0..=1 (dabs build up towards `opacity`).
    pub flow: f32,
    /// Distance between dabs as a fraction of the diameter (0.1 = 10 %).
    pub spacing: f32,
    /// Paint colour (straight alpha; its alpha scales the deposit). Ignored on the mask.
    pub color: Rgba8,
    /// Remove instead of deposit.
    pub eraser: bool,
    /// Pen pressure scales the diameter.
    pub pressure_size: bool,
    /// Pen pressure scales the flow.
    pub pressure_flow: bool,
}

impl Default for Brush {
    fn default() -> Self {
        Self {
            size_px: 16.0,
            hardness: 0.8,
            opacity: 1.0,
            flow: 1.0,
            spacing: 0.1,
            color: [0, 0, 0, 255],
            eraser: false,
            pressure_size: true,
            pressure_flow: false,
        }
    }
}

impl Brush {
    fn validate(&self) -> Result<(), DocError> {
        let check = |name: &'static str, v: f32, lo: f32, hi: f32| {
            if v.is_finite() && v >= lo && v <= hi {
                Ok(())
            } else {
                Err(DocError::InvalidParameter {
                    name,
                    reason: format!("{v} is not in {lo}..={hi}"),
                })
            }
        };
        check("size_px", self.size_px, 0.0, 4096.0)?;
        check("hardness", self.hardness, 0.0, 1.0)?;
        check("opacity", self.opacity, 0.0, 1.0)?;
        check("flow", self.flow, 0.0, 1.0)?;
        check("spacing", self.spacing, 0.01, 10.0)
    }
}

/// A pointer sample in canvas pixels; `pressure` 0..=1 (1 for a mouse).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StrokePoint {
    pub x: f32,
    pub y: f32,
    pub pressure: f32,
}

impl StrokePoint {
    pub const fn new(x: f32, y: f32) -> Self {
        Self { x, y, pressure: 1.0 }
    }
}

/// What a stroke paints on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaintTarget {
    ActiveLayer,
    Layer(LayerId),
    /// The inpaint mask (never the layers).
    Mask,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Resolved {
    Layer(LayerId),
    Mask,
}

/// A stroke in progress.
#[derive(Debug)]
pub(crate) struct StrokeState {
    target: Resolved,
    brush: Brush,
    last: StrokePoint,
    /// Distance travelled since the last dab.
    travelled_px: f32,
    /// Accumulated stroke coverage per target tile.
    coverage: HashMap<TileCoord, Box<[u16]>>,
    /// Target tiles as they were when the stroke first touched them.
    before_rgba: HashMap<TileCoord, Option<Arc<Tile<Rgba8>>>>,
    before_gray: HashMap<TileCoord, Option<Arc<Tile<Gray8>>>>,
    /// The stroke opened the transaction and commits it at the end.
    owns_txn: bool,
}

impl StrokeState {
    fn new(target: Resolved, brush: Brush, first: StrokePoint, owns_txn: bool) -> Self {
        Self {
            target,
            brush,
            last: first,
            travelled_px: 0.0,
            coverage: HashMap::new(),
            before_rgba: HashMap::new(),
            before_gray: HashMap::new(),
            owns_txn,
        }
    }
}

/// The dab's coverage (0..=1) at distance `d` from its centre.
#[inline]
fn dab_coverage(d: f32, radius: f32, hardness: f32) -> f32 {
    let edge = (radius + 0.5 - d).clamp(0.0, 1.0);
    if hardness >= 1.0 {
        return edge;
    }
    let inner = radius * hardness;
    let soft = ((radius - d) / (radius - inner).max(1e-3)).clamp(0.0, 1.0);
    edge.min(soft)
}

#[inline]
fn to_u8(v: f32) -> u8 {
    (v + 0.5).clamp(0.0, 255.0) as u8
}

/// Paints `color` with effective alpha `a` (0..=1) onto a straight-alpha pixel.
#[inline]
pub(crate) fn deposit(
    before: Rgba8,
    color: Rgba8,
    a: f32,
    eraser: bool,
    alpha_lock: bool,
) -> Rgba8 {
    let [br, bg, bb, ba] = before;
    if eraser {
        if alpha_lock {
            return before;
        }
        let out_a = f32::from(ba) * (1.0 - a);
        let out_a = to_u8(out_a);
        return if out_a == 0 { [0, 0, 0, 0] } else { [br, bg, bb, out_a] };
    }
    let [cr, cg, cb, ca] = color;
    if alpha_lock {
        if ba == 0 {
            return before;
        }
        let a = a * f32::from(ca) / 255.0;
        let mix = |b: u8, c: u8| to_u8(f32::from(b) + (f32::from(c) - f32::from(b)) * a);
        return [mix(br, cr), mix(bg, cg), mix(bb, cb), ba];
    }
    let sa = a * f32::from(ca) / 255.0;
    let da = f32::from(ba) / 255.0 * (1.0 - sa);
    let out_a = sa + da;
    if out_a <= 0.0 {
        return [0, 0, 0, 0];
    }
    let mix = |b: u8, c: u8| to_u8((f32::from(c) * sa + f32::from(b) * da) / out_a);
    let a8 = to_u8(out_a * 255.0);
    if a8 == 0 {
        return [0, 0, 0, 0];
    }
    [mix(br, cr), mix(bg, cg), mix(bb, cb), a8]
}

/// The selection coverage over `rect` (canvas), or `None` when there is no selection.
fn selection_patch(ctx: &Ctx<'_>, rect: Rect) -> Option<Image<Gray8>> {
    ctx.state.selection.as_ref().map(|s| s.read_rect(rect))
}

/// Deposits one dab. Returns the canvas rect it touched.
fn dab(ctx: &mut Ctx<'_>, stroke: &mut StrokeState, at: StrokePoint) {
    let brush = &stroke.brush;
    let pressure = at.pressure.clamp(0.0, 1.0);
    let size = if brush.pressure_size { brush.size_px * pressure } else { brush.size_px };
    let flow = if brush.pressure_flow { brush.flow * pressure } else { brush.flow };
    let radius = size / 2.0;
    if radius <= 0.0 || flow <= 0.0 {
        return;
    }
    let reach = radius + 1.0;
    let canvas = ctx.canvas();
    let mut area = Rect::from_bounds(
        (at.x - reach).floor() as i32,
        (at.y - reach).floor() as i32,
        (at.x + reach).ceil() as i32 + 1,
        (at.y + reach).ceil() as i32 + 1,
    )
    .intersect(&canvas);
    let (ox, oy, alpha_lock) = match stroke.target {
        Resolved::Layer(id) => match ctx.state.layer(id) {
            Some(l) => (l.offset_x, l.offset_y, l.props.alpha_lock),
            None => return,
        },
        Resolved::Mask => (0, 0, false),
    };
    if let Resolved::Layer(id) = stroke.target
        && let Some(l) = ctx.state.layer(id)
    {
        area = area.intersect(&l.canvas_bounds());
    }
    if area.is_empty() {
        return;
    }
    let selection = selection_patch(ctx, area);
    let local = area.translated(-ox, -oy);
    let (hardness, opacity, color, eraser) =
        (brush.hardness, brush.opacity, brush.color, brush.eraser);
    let cx = at.x - ox as f32;
    let cy = at.y - oy as f32;
    let coords: Vec<TileCoord> = match stroke.target {
        Resolved::Layer(id) => match ctx.state.layer(id) {
            Some(l) => l.pixels.tiles_in(local).collect(),
            None => return,
        },
        Resolved::Mask => ctx.state.mask.tiles_in(local).collect(),
    };
    for coord in coords {
        let origin = coord.rect();
        let part = origin.intersect(&local);
        if part.is_empty() {
            continue;
        }
        let cover = stroke
            .coverage
            .entry(coord)
            .or_insert_with(|| vec![0u16; TILE_PIXELS].into_boxed_slice());
        // Pixel kernel: shared by both targets through a closure on (before index, alpha).
        let mut touched = false;
        match stroke.target {
            Resolved::Layer(id) => {
                let Some(layer) = ctx.state.layer(id) else { continue };
                let before = stroke
                    .before_rgba
                    .entry(coord)
                    .or_insert_with(|| layer.pixels.tile(coord).cloned())
                    .clone();
                let Some(tile) = ctx.layer_tile_mut(id, coord) else { continue };
                for y in part.y..part.bottom() {
                    let ty = (y - origin.y) as usize;
                    let fy = y as f32 + 0.5 - cy;
                    let sel_row = selection.as_ref().map(|s| s.row((y + oy - area.y) as u32));
                    for x in part.x..part.right() {
                        let tx = (x - origin.x) as usize;
                        let fx = x as f32 + 0.5 - cx;
                        let c = dab_coverage((fx * fx + fy * fy).sqrt(), radius, hardness) * flow;
                        if c <= 0.0 {
                            continue;
                        }
                        let i = ty * TILE_SIZE as usize + tx;
                        let Some(s) = cover.get_mut(i) else { continue };
                        let prev = f32::from(*s) / COVER_ONE;
                        let next = prev + c * (1.0 - prev);
                        *s = (next * COVER_ONE + 0.5) as u16;
                        let sel = match sel_row {
                            Some(r) => {
                                f32::from(r.get((x + ox - area.x) as usize).copied().unwrap_or(0))
                                    / 255.0
                            }
                            None => 1.0,
                        };
                        let a = f32::from(*s) / COVER_ONE * opacity * sel;
                        let b = before.as_ref().map_or([0, 0, 0, 0], |t| {
                            t.pixels().get(i).copied().unwrap_or([0, 0, 0, 0])
                        });
                        if let Some(p) = tile.pixels_mut().get_mut(i) {
                            *p = deposit(b, color, a, eraser, alpha_lock);
                            touched = true;
                        }
                    }
                }
                if touched {
                    ctx.dirty_layer_local(id, part);
                }
            }
            Resolved::Mask => {
                let before = stroke
                    .before_gray
                    .entry(coord)
                    .or_insert_with(|| ctx.state.mask.tile(coord).cloned())
                    .clone();
                let Some(tile) = ctx.mask_tile_mut(coord) else { continue };
                for y in part.y..part.bottom() {
                    let ty = (y - origin.y) as usize;
                    let fy = y as f32 + 0.5 - cy;
                    let sel_row = selection.as_ref().map(|s| s.row((y - area.y) as u32));
                    for x in part.x..part.right() {
                        let tx = (x - origin.x) as usize;
                        let fx = x as f32 + 0.5 - cx;
                        let c = dab_coverage((fx * fx + fy * fy).sqrt(), radius, hardness) * flow;
                        if c <= 0.0 {
                            continue;
                        }
                        let i = ty * TILE_SIZE as usize + tx;
                        let Some(s) = cover.get_mut(i) else { continue };
                        let prev = f32::from(*s) / COVER_ONE;
                        let next = prev + c * (1.0 - prev);
                        *s = (next * COVER_ONE + 0.5) as u16;
                        let sel = match sel_row {
                            Some(r) => {
                                f32::from(r.get((x - area.x) as usize).copied().unwrap_or(0))
                                    / 255.0
                            }
                            None => 1.0,
                        };
                        let a = f32::from(*s) / COVER_ONE * opacity * sel;
                        let b = f32::from(
                            before.as_ref().map_or(0, |t| t.pixels().get(i).copied().unwrap_or(0)),
                        );
                        let v = if eraser { b * (1.0 - a) } else { b + (255.0 - b) * a };
                        if let Some(p) = tile.pixels_mut().get_mut(i) {
                            *p = to_u8(v);
                            touched = true;
                        }
                    }
                }
                if touched {
                    ctx.change.dirty_mask(part);
                }
            }
        }
    }
}

/// Places dabs from `stroke.last` to `to`, every `spacing × size` pixels.
fn stroke_segment(ctx: &mut Ctx<'_>, stroke: &mut StrokeState, to: StrokePoint) {
    let from = stroke.last;
    let (dx, dy) = (to.x - from.x, to.y - from.y);
    let len = (dx * dx + dy * dy).sqrt();
    if !len.is_finite() || len <= 0.0 {
        return;
    }
    let step = (stroke.brush.size_px * stroke.brush.spacing).max(0.5);
    let mut next = step - stroke.travelled_px;
    while next <= len {
        let t = next / len;
        let p = StrokePoint {
            x: from.x + dx * t,
            y: from.y + dy * t,
            pressure: from.pressure + (to.pressure - from.pressure) * t,
        };
        dab(ctx, stroke, p);
        next += step;
    }
    stroke.travelled_px = len - (next - step);
    stroke.last = to;
}

impl Document {
    fn resolve_target(&self, target: PaintTarget) -> Result<Resolved, DocError> {
        match target {
            PaintTarget::Mask => Ok(Resolved::Mask),
            PaintTarget::Layer(id) => {
                self.state.layer(id).map(|_| Resolved::Layer(id)).ok_or(DocError::NoSuchLayer(id))
            }
            PaintTarget::ActiveLayer => {
                self.state.active.map(Resolved::Layer).ok_or(DocError::NoActiveLayer)
            }
        }
    }

    /// Starts a stroke with a dab at `first`. Opens a transaction labelled "Brush stroke",
    /// "Eraser stroke", "Mask stroke" or "Mask erase" unless one is already open, in which case
    /// the stroke joins it. The returned change covers the first dab.
    pub fn begin_stroke(
        &mut self,
        target: PaintTarget,
        brush: Brush,
        first: StrokePoint,
    ) -> Result<Change, DocError> {
        if self.stroke.is_some() {
            return Err(DocError::TransactionOpen("stroke".into()));
        }
        brush.validate()?;
        let resolved = self.resolve_target(target)?;
        let label = match (resolved, brush.eraser) {
            (Resolved::Layer(_), false) => "Brush stroke",
            (Resolved::Layer(_), true) => "Eraser stroke",
            (Resolved::Mask, false) => "Mask stroke",
            (Resolved::Mask, true) => "Mask erase",
        };
        let owns_txn = self.txn.is_none();
        if owns_txn {
            self.txn = Some(crate::history::Transaction::new(label));
        }
        let mut stroke = StrokeState::new(resolved, brush, first, owns_txn);
        let result = self.transact(label, |ctx| {
            if let Resolved::Layer(id) = resolved {
                crate::layer_ops::grow_layer_to_canvas(ctx, id)?;
            }
            dab(ctx, &mut stroke, first);
            Ok(())
        });
        match result {
            Ok((_, change)) => {
                if let Resolved::Layer(id) = resolved {
                    self.cache.set_stroke_layer(self.state.layer_index(id));
                }
                self.stroke = Some(stroke);
                Ok(change)
            }
            Err(e) => {
                if owns_txn {
                    let _ = self.cancel();
                }
                Err(e)
            }
        }
    }

    /// Extends the stroke to `to`, placing dabs along the way.
    pub fn stroke_to(&mut self, to: StrokePoint) -> Result<Change, DocError> {
        let mut stroke = self.stroke.take().ok_or(DocError::NoStroke)?;
        let result = self.transact("Brush stroke", |ctx| {
            stroke_segment(ctx, &mut stroke, to);
            Ok(())
        });
        self.stroke = Some(stroke);
        result.map(|(_, c)| c)
    }

    /// Ends the stroke; commits its transaction if the stroke opened it.
    pub fn end_stroke(&mut self) -> Result<Change, DocError> {
        let stroke = self.stroke.take().ok_or(DocError::NoStroke)?;
        self.cache.set_stroke_layer(None);
        if stroke.owns_txn {
            self.commit()
        } else {
            Ok(Change { revision: self.revision, ..Change::default() })
        }
    }

    pub fn stroke_in_progress(&self) -> bool {
        self.stroke.is_some()
    }

    /// Paints a whole stroke through `points` as one step (used by tools replaying input and by
    /// tests). A single point gives a single dab.
    pub fn paint_stroke(
        &mut self,
        target: PaintTarget,
        brush: Brush,
        points: &[StrokePoint],
    ) -> Result<Change, DocError> {
        let Some((first, rest)) = points.split_first() else {
            return Err(DocError::InvalidParameter { name: "points", reason: "no points".into() });
        };
        let mut change = self.begin_stroke(target, brush, *first)?;
        for p in rest {
            match self.stroke_to(*p) {
                Ok(c) => change.merge(c),
                Err(e) => {
                    let _ = self.end_stroke();
                    return Err(e);
                }
            }
        }
        change.merge(self.end_stroke()?);
        Ok(change)
    }
}
