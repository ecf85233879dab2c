//! Command execution: dispatch plus the row-level editing helpers the commands share.

use raster::{Gray8, Image, Rect, Rgba8, TiledImage};

use crate::command::Command;
use crate::document::Ctx;
use crate::error::DocError;
use crate::{LayerId, adjust, fill, layer_ops, select, transform};

pub(crate) fn execute(ctx: &mut Ctx<'_>, cmd: Command) -> Result<(), DocError> {
    match cmd {
        // Dabs are routed to the stroke engine by `Document::apply`.
        Command::Dab { .. } => Ok(()),
        Command::FloodFill { x, y, color, tolerance, source } => {
            fill::flood_fill(ctx, x, y, color, tolerance, source)
        }
        Command::FillSelection { color } => fill::fill_selection(ctx, color),
        Command::ClearSelection => fill::clear_selection(ctx),
        Command::Select { shape, op, feather_px } => select::select(ctx, &shape, op, feather_px),
        Command::SelectAll => select::select_all(ctx),
        Command::SelectNone => select::select_none(ctx),
        Command::InvertSelection => select::invert(ctx),
        Command::Paste { image, x, y } => {
            layer_ops::add_from_image(ctx, &image, x, y, "Pasted layer".into(), None, None)
        }
        Command::OffsetLayer { id, dx, dy } => layer_ops::offset(ctx, id, dx, dy),
        Command::TransformLayer { id, transform } => transform::transform_layer(ctx, id, transform),
        Command::HueSaturation { hue_deg, saturation, lightness } => {
            adjust::hue_saturation(ctx, hue_deg, saturation, lightness)
        }
        Command::BrightnessContrast { brightness, contrast } => {
            adjust::brightness_contrast(ctx, brightness, contrast)
        }
        Command::ResizeCanvas { width, height, anchor } => {
            layer_ops::resize_canvas(ctx, width, height, anchor)
        }
        Command::Crop { rect } => layer_ops::crop(ctx, rect),
        Command::AddLayer { name, index } => layer_ops::add(ctx, name, index),
        Command::DeleteLayer { id } => layer_ops::delete(ctx, id),
        Command::DuplicateLayer { id } => layer_ops::duplicate(ctx, id),
        Command::MoveLayerTo { id, index } => layer_ops::move_to(ctx, id, index),
        Command::MergeDown { id } => layer_ops::merge_down(ctx, id),
        Command::Flatten => layer_ops::flatten(ctx),
        Command::RenameLayer { id, name } => layer_ops::rename(ctx, id, name),
        Command::SetLayerProps { id, props } => layer_ops::set_props(ctx, id, props),
        Command::AddLayerFromImage { image, x, y, name, record, index } => {
            layer_ops::add_from_image(ctx, &image, x, y, name, record, index)
        }
        Command::MaskClear => {
            let (w, h) = (ctx.state.width, ctx.state.height);
            replace_mask(ctx, TiledImage::new(w, h));
            Ok(())
        }
        Command::MaskFill => {
            let (w, h) = (ctx.state.width, ctx.state.height);
            replace_mask(ctx, TiledImage::from_image(&Image::filled(w, h, 255)));
            Ok(())
        }
        Command::MaskInvert => {
            let inverted = ctx.state.mask.to_image().map(|v| 255 - v);
            replace_mask(ctx, TiledImage::from_image(&inverted));
            Ok(())
        }
        Command::MaskFromSelection => {
            let mask = match &ctx.state.selection {
                Some(s) => s.clone(),
                None => {
                    TiledImage::from_image(&Image::filled(ctx.state.width, ctx.state.height, 255))
                }
            };
            replace_mask(ctx, mask);
            Ok(())
        }
        Command::MaskFromLayerAlpha { id } => {
            let layer = ctx.layer(id)?;
            let canvas = ctx.canvas();
            let local = canvas.translated(-layer.offset_x, -layer.offset_y);
            let alpha = layer.pixels.read_rect(local).map(|p| p[3]);
            replace_mask(ctx, TiledImage::from_image(&alpha));
            Ok(())
        }
        Command::MaskLoad { image } => {
            let (w, h) = (ctx.state.width, ctx.state.height);
            if image.width() != w || image.height() != h {
                return Err(DocError::SizeMismatch {
                    got_width: image.width(),
                    got_height: image.height(),
                    want_width: w,
                    want_height: h,
                });
            }
            replace_mask(ctx, TiledImage::from_image(&image));
            Ok(())
        }
    }
}

/// Swaps in a new mask as one undo item, reporting the tiles that differ.
fn replace_mask(ctx: &mut Ctx<'_>, mut mask: TiledImage<Gray8>) {
    mask.compact();
    ctx.snapshot_mask();
    let old = std::mem::replace(&mut ctx.state.mask, mask);
    let new = &ctx.state.mask;
    for coord in old.allocated_tiles().chain(new.allocated_tiles()) {
        if old.tile(coord).map(|t| t.pixels()) != new.tile(coord).map(|t| t.pixels()) {
            ctx.change.dirty_mask(coord.rect().intersect(&new.bounds()));
        }
    }
}

/// Calls `f(canvas_y, canvas_x0, row)` for every row segment of layer `id` inside `rect`
/// (canvas pixels), recording tiles for undo and marking them dirty. With `skip_blank`, blank
/// tiles are left unallocated (for edits that keep transparent pixels transparent).
pub(crate) fn edit_layer_rows(
    ctx: &mut Ctx<'_>,
    id: LayerId,
    rect: Rect,
    skip_blank: bool,
    mut f: impl FnMut(i32, i32, &mut [Rgba8]),
) -> Result<(), DocError> {
    let layer = ctx.layer(id)?;
    let (ox, oy) = (layer.offset_x, layer.offset_y);
    let local = rect.translated(-ox, -oy).intersect(&layer.pixels.bounds());
    let coords: Vec<_> = layer
        .pixels
        .tiles_in(local)
        .filter(|c| !skip_blank || layer.pixels.tile(*c).is_some())
        .collect();
    for coord in coords {
        let origin = coord.rect();
        let part = origin.intersect(&local);
        let Some(tile) = ctx.layer_tile_mut(id, coord) else { continue };
        let tx = (part.x - origin.x) as usize;
        let n = part.width as usize;
        for y in part.y..part.bottom() {
            if let Some(row) = tile.row_mut((y - origin.y) as u32).get_mut(tx..tx + n) {
                f(y + oy, part.x + ox, row);
            }
        }
        ctx.dirty_layer_local(id, part);
    }
    Ok(())
}

/// The selection coverage over `rect` (canvas), `None` without a selection.
pub(crate) fn selection_patch(ctx: &Ctx<'_>, rect: Rect) -> Option<Image<Gray8>> {
    ctx.state.selection.as_ref().map(|s| s.read_rect(rect))
}

/// The area an edit of the active layer may touch: the selection's bounds, or the canvas.
pub(crate) fn edit_area(ctx: &Ctx<'_>) -> Result<Rect, DocError> {
    let canvas = ctx.canvas();
    match &ctx.state.selection {
        None => Ok(canvas),
        Some(s) => {
            let b = s.content_bounds().intersect(&canvas);
            if b.is_empty() { Err(DocError::EmptySelection) } else { Ok(b) }
        }
    }
}

/// A `width × height` image of `value`, its full tiles sharing one allocation.
pub(crate) fn filled_tiled<P: raster::Pixel>(width: u32, height: u32, value: P) -> TiledImage<P> {
    let mut img = TiledImage::new(width, height);
    if value == P::ZERO {
        return img;
    }
    let bounds = img.bounds();
    let mut full = raster::Tile::default();
    full.pixels_mut().fill(value);
    let full = std::sync::Arc::new(full);
    let coords: Vec<_> = img.tiles_in(bounds).collect();
    for c in coords {
        let part = c.rect().intersect(&bounds);
        if part == c.rect() {
            img.set_tile(c, Some(std::sync::Arc::clone(&full)));
        } else if let Some(t) = img.tile_mut(c) {
            let local = part.translated(-c.rect().x, -c.rect().y);
            for y in local.y..local.bottom() {
                if let Some(row) =
                    t.row_mut(y as u32).get_mut(local.x as usize..local.right() as usize)
                {
                    row.fill(value);
                }
            }
        }
    }
    img
}
