//! The flattened image of a stack, with the W3C blend formulas of `raster::blend`.

use raster::{BlendMode, Image, Rect, Rgba8, blend_row};

use crate::OraStack;

/// The blend mode for an OpenRaster `composite-op`; names we do not know composite as
/// `svg:src-over`, as the OpenRaster spec asks of readers.
pub fn blend_mode(composite_op: &str) -> BlendMode {
    BlendMode::from_ora_name(composite_op).unwrap_or_default()
}

/// Composites the visible layers, bottom to top, over a transparent canvas of the stack's size.
pub fn composite(stack: &OraStack) -> Image<Rgba8> {
    let mut canvas = Image::new(stack.width, stack.height);
    let canvas_rect = canvas.bounds();
    for layer in stack.layers.iter().filter(|l| l.visible && l.opacity > 0.0) {
        let layer_rect = Rect::new(layer.x, layer.y, layer.pixels.width(), layer.pixels.height());
        let overlap = layer_rect.intersect(&canvas_rect);
        if overlap.is_empty() {
            continue;
        }
        let mode = blend_mode(&layer.composite_op);
        let src_x = (overlap.x - layer.x) as usize;
        let dst_x = overlap.x as usize;
        let n = overlap.width as usize;
        for y in overlap.y..overlap.bottom() {
            let src_row = layer.pixels.row((y - layer.y) as u32);
            let dst_row = canvas.row_mut(y as u32);
            if let (Some(src), Some(dst)) =
                (src_row.get(src_x..src_x + n), dst_row.get_mut(dst_x..dst_x + n))
            {
                blend_row(dst, src, mode, layer.opacity);
            }
        }
    }
    canvas
}
