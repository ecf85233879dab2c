//! Layer stack commands and canvas geometry (resize, crop).

use raster::blend::blend_row;
use raster::{Image, Rect, Rgba8, TILE_SIZE, TileCoord, TiledImage};

use crate::command::Anchor;
use crate::document::{Ctx, MAX_CANVAS_SIDE, check_size};
use crate::error::DocError;
use crate::history::DocState;
use crate::{GenerationRecord, Layer, LayerId, LayerProps};

fn insertion_index(state: &DocState, index: Option<usize>) -> Result<usize, DocError> {
    let len = state.layers.len();
    match index {
        Some(i) if i > len => Err(DocError::IndexOutOfRange { index: i, len }),
        Some(i) => Ok(i),
        None => Ok(state.active.and_then(|a| state.layer_index(a)).map_or(len, |i| i + 1)),
    }
}

fn insert_layer(ctx: &mut Ctx<'_>, layer: Layer, index: usize) {
    let id = layer.id();
    ctx.state.layers.insert(index.min(ctx.state.layers.len()), layer);
    ctx.state.active = Some(id);
    ctx.change.created_layer = Some(id);
    ctx.dirty_layer_all(id);
}

pub(crate) fn add(ctx: &mut Ctx<'_>, name: String, index: Option<usize>) -> Result<(), DocError> {
    let index = insertion_index(ctx.state, index)?;
    let id = ctx.new_layer_id();
    let name = if name.is_empty() { format!("Layer {}", id.raw()) } else { name };
    ctx.snapshot_layers();
    let layer = Layer::new(
        id,
        LayerProps { name, ..LayerProps::default() },
        TiledImage::new(ctx.state.width, ctx.state.height),
    );
    insert_layer(ctx, layer, index);
    Ok(())
}

pub(crate) fn add_from_image(
    ctx: &mut Ctx<'_>,
    image: &Image<Rgba8>,
    x: i32,
    y: i32,
    name: String,
    record: Option<GenerationRecord>,
    index: Option<usize>,
) -> Result<(), DocError> {
    if image.width() == 0 || image.height() == 0 {
        return Err(DocError::InvalidParameter {
            name: "image",
            reason: "the image is empty".into(),
        });
    }
    check_size(image.width(), image.height())?;
    let index = insertion_index(ctx.state, index)?;
    let id = ctx.new_layer_id();
    ctx.snapshot_layers();
    let mut layer =
        Layer::new(id, LayerProps { name, ..LayerProps::default() }, TiledImage::from_image(image));
    layer.offset_x = x;
    layer.offset_y = y;
    layer.record = record;
    insert_layer(ctx, layer, index);
    Ok(())
}

pub(crate) fn delete(ctx: &mut Ctx<'_>, id: LayerId) -> Result<(), DocError> {
    let index = ctx.state.layer_index(id).ok_or(DocError::NoSuchLayer(id))?;
    if ctx.state.layers.len() == 1 {
        return Err(DocError::LastLayer);
    }
    ctx.snapshot_layers();
    ctx.dirty_layer_all(id);
    ctx.state.layers.remove(index);
    if ctx.state.active == Some(id) {
        let below = index.saturating_sub(1).min(ctx.state.layers.len().saturating_sub(1));
        ctx.state.active = ctx.state.layers.get(below).map(Layer::id);
    }
    Ok(())
}

pub(crate) fn duplicate(ctx: &mut Ctx<'_>, id: LayerId) -> Result<(), DocError> {
    let index = ctx.state.layer_index(id).ok_or(DocError::NoSuchLayer(id))?;
    let mut copy = ctx.layer(id)?.clone();
    let new_id = ctx.new_layer_id();
    copy.set_id(new_id);
    copy.props.name = format!("{} copy", copy.props.name);
    ctx.snapshot_layers();
    insert_layer(ctx, copy, index + 1);
    Ok(())
}

pub(crate) fn move_to(ctx: &mut Ctx<'_>, id: LayerId, index: usize) -> Result<(), DocError> {
    let from = ctx.state.layer_index(id).ok_or(DocError::NoSuchLayer(id))?;
    let len = ctx.state.layers.len();
    if index >= len {
        return Err(DocError::IndexOutOfRange { index, len });
    }
    if from == index {
        return Ok(());
    }
    ctx.snapshot_layers();
    let layer = ctx.state.layers.remove(from);
    ctx.state.layers.insert(index, layer);
    ctx.dirty_layer_all(id);
    Ok(())
}

pub(crate) fn rename(ctx: &mut Ctx<'_>, id: LayerId, name: String) -> Result<(), DocError> {
    let mut props = ctx.layer(id)?.props.clone();
    props.name = name;
    set_props(ctx, id, props)
}

pub(crate) fn set_props(ctx: &mut Ctx<'_>, id: LayerId, props: LayerProps) -> Result<(), DocError> {
    if !(0.0..=1.0).contains(&props.opacity) {
        return Err(DocError::InvalidParameter {
            name: "opacity",
            reason: format!("{} is not in 0..=1", props.opacity),
        });
    }
    let old = ctx.layer(id)?.props.clone();
    if old == props {
        return Ok(());
    }
    ctx.snapshot_layers();
    let visual = old.visible != props.visible
        || old.opacity != props.opacity
        || old.blend_mode != props.blend_mode;
    if let Some(l) = ctx.state.layer_mut(id) {
        l.props = props;
    }
    if visual {
        ctx.dirty_layer_all(id);
    }
    Ok(())
}

pub(crate) fn offset(ctx: &mut Ctx<'_>, id: LayerId, dx: i32, dy: i32) -> Result<(), DocError> {
    ctx.layer(id)?;
    if dx == 0 && dy == 0 {
        return Ok(());
    }
    ctx.snapshot_layers();
    ctx.dirty_layer_all(id);
    if let Some(l) = ctx.state.layer_mut(id) {
        l.offset_x = l.offset_x.saturating_add(dx);
        l.offset_y = l.offset_y.saturating_add(dy);
    }
    ctx.dirty_layer_all(id);
    Ok(())
}

/// Makes a layer cover the whole canvas so painting anywhere reaches it. Growth is in whole
/// tiles on the left and top, so existing tiles are moved (shared), never copied.
pub(crate) fn grow_layer_to_canvas(ctx: &mut Ctx<'_>, id: LayerId) -> Result<(), DocError> {
    let canvas = ctx.canvas();
    let layer = ctx.layer(id)?;
    let bounds = layer.canvas_bounds();
    if bounds.intersect(&canvas) == canvas {
        return Ok(());
    }
    let tile = TILE_SIZE as i64;
    let grow_left = (i64::from(layer.offset_x).max(0) + tile - 1) / tile;
    let grow_top = (i64::from(layer.offset_y).max(0) + tile - 1) / tile;
    let new_ox = i64::from(layer.offset_x) - grow_left * tile;
    let new_oy = i64::from(layer.offset_y) - grow_top * tile;
    let new_w =
        (i64::from(layer.pixels.width()) + grow_left * tile).max(i64::from(canvas.width) - new_ox);
    let new_h =
        (i64::from(layer.pixels.height()) + grow_top * tile).max(i64::from(canvas.height) - new_oy);
    let limit = i64::from(MAX_CANVAS_SIDE) * 2;
    if new_w > limit || new_h > limit {
        return Err(DocError::TransformTooLarge {
            width: new_w as u64,
            height: new_h as u64,
            max: MAX_CANVAS_SIDE * 2,
        });
    }
    let mut grown = TiledImage::new(new_w as u32, new_h as u32);
    for c in layer.pixels.allocated_tiles() {
        let to = TileCoord { col: c.col + grow_left as u32, row: c.row + grow_top as u32 };
        grown.set_tile(to, layer.pixels.tile(c).cloned());
    }
    ctx.snapshot_layers();
    if let Some(l) = ctx.state.layer_mut(id) {
        l.pixels = grown;
        l.offset_x = new_ox as i32;
        l.offset_y = new_oy as i32;
    }
    Ok(())
}

pub(crate) fn merge_down(ctx: &mut Ctx<'_>, id: LayerId) -> Result<(), DocError> {
    let index = ctx.state.layer_index(id).ok_or(DocError::NoSuchLayer(id))?;
    let lower_index = index.checked_sub(1).ok_or(DocError::NothingBelow(id))?;
    let (Some(lower), Some(upper)) =
        (ctx.state.layers.get(lower_index), ctx.state.layers.get(index))
    else {
        return Err(DocError::NoSuchLayer(id));
    };
    // The merged layer spans both layers' content.
    let area = lower
        .allocated_canvas_bounds()
        .union(&upper.allocated_canvas_bounds())
        .union(&lower.canvas_bounds().intersect(&ctx.canvas()));
    check_size(area.width.max(1), area.height.max(1))?;
    let mut merged = lower.pixels.read_rect(area.translated(-lower.offset_x, -lower.offset_y));
    let lower_opacity = lower.props.opacity;
    if lower_opacity < 1.0 {
        for p in merged.pixels_mut() {
            p[3] = (f32::from(p[3]) * lower_opacity + 0.5) as u8;
            if p[3] == 0 {
                *p = [0, 0, 0, 0];
            }
        }
    }
    let upper_img = upper.pixels.read_rect(area.translated(-upper.offset_x, -upper.offset_y));
    for y in 0..area.height {
        blend_row(merged.row_mut(y), upper_img.row(y), upper.props.blend_mode, upper.props.opacity);
    }
    let mut pixels = TiledImage::from_image(&merged);
    pixels.compact();
    let lower_id = lower.id();
    ctx.snapshot_layers();
    ctx.dirty_layer_all(lower_id);
    ctx.dirty_layer_all(id);
    ctx.state.layers.remove(index);
    if let Some(l) = ctx.state.layer_mut(lower_id) {
        l.pixels = pixels;
        l.offset_x = area.x;
        l.offset_y = area.y;
        l.props.opacity = 1.0;
    }
    ctx.state.active = Some(lower_id);
    ctx.change.created_layer = Some(lower_id);
    Ok(())
}

pub(crate) fn flatten(ctx: &mut Ctx<'_>) -> Result<(), DocError> {
    let canvas = ctx.canvas();
    let image = crate::composite::render_region(ctx.state, canvas);
    let mut pixels = TiledImage::from_image(&image);
    pixels.compact();
    let id = ctx.new_layer_id();
    ctx.snapshot_layers();
    ctx.state.layers = vec![Layer::new(
        id,
        LayerProps { name: "Background".into(), ..LayerProps::default() },
        pixels,
    )];
    ctx.state.active = Some(id);
    ctx.change.created_layer = Some(id);
    ctx.dirty_all();
    Ok(())
}

fn shifted<P: raster::Pixel>(
    img: &TiledImage<P>,
    w: u32,
    h: u32,
    dx: i32,
    dy: i32,
) -> TiledImage<P> {
    let mut out = TiledImage::new(w, h);
    let src_rect = Rect::from_size(w, h).translated(-dx, -dy).intersect(&img.bounds());
    if !src_rect.is_empty() {
        out.write_image(&img.read_rect(src_rect), src_rect.x + dx, src_rect.y + dy);
    }
    out
}

pub(crate) fn resize_canvas(
    ctx: &mut Ctx<'_>,
    width: u32,
    height: u32,
    anchor: Anchor,
) -> Result<(), DocError> {
    check_size(width, height)?;
    let (dx, dy) = anchor.shift(
        i64::from(width) - i64::from(ctx.state.width),
        i64::from(height) - i64::from(ctx.state.height),
    );
    let (dx, dy) = (dx as i32, dy as i32);
    if width == ctx.state.width && height == ctx.state.height {
        return Ok(());
    }
    ctx.snapshot_layers();
    ctx.snapshot_mask();
    ctx.snapshot_selection();
    ctx.snapshot_canvas_size();
    for l in &mut ctx.state.layers {
        l.offset_x = l.offset_x.saturating_add(dx);
        l.offset_y = l.offset_y.saturating_add(dy);
    }
    ctx.state.mask = shifted(&ctx.state.mask, width, height, dx, dy);
    ctx.state.selection = ctx.state.selection.as_ref().map(|s| shifted(s, width, height, dx, dy));
    ctx.state.width = width;
    ctx.state.height = height;
    ctx.dirty_all();
    ctx.change.dirty_mask(Rect::from_size(width, height));
    ctx.change.dirty_selection(Rect::from_size(width, height));
    Ok(())
}

pub(crate) fn crop(ctx: &mut Ctx<'_>, rect: Rect) -> Result<(), DocError> {
    let r = rect.intersect(&ctx.canvas());
    if r.is_empty() {
        return Err(DocError::EmptyCrop(rect));
    }
    ctx.snapshot_layers();
    ctx.snapshot_mask();
    ctx.snapshot_selection();
    ctx.snapshot_canvas_size();
    for l in &mut ctx.state.layers {
        let local = r.translated(-l.offset_x, -l.offset_y).intersect(&l.pixels.bounds());
        if local == l.pixels.bounds() {
            l.offset_x -= r.x;
            l.offset_y -= r.y;
        } else if local.is_empty() {
            l.pixels = TiledImage::new(r.width, r.height);
            l.offset_x = 0;
            l.offset_y = 0;
        } else {
            let mut pixels = TiledImage::from_image(&l.pixels.read_rect(local));
            pixels.compact();
            l.pixels = pixels;
            l.offset_x = local.x + l.offset_x - r.x;
            l.offset_y = local.y + l.offset_y - r.y;
        }
    }
    ctx.state.mask = shifted(&ctx.state.mask, r.width, r.height, -r.x, -r.y);
    ctx.state.selection =
        ctx.state.selection.as_ref().map(|s| shifted(s, r.width, r.height, -r.x, -r.y));
    ctx.state.width = r.width;
    ctx.state.height = r.height;
    ctx.dirty_all();
    ctx.change.dirty_mask(Rect::from_size(r.width, r.height));
    ctx.change.dirty_selection(Rect::from_size(r.width, r.height));
    Ok(())
}
