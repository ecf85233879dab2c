//! Compositing the visible layers, with a per-tile cache invalidated by dirty rects.

use std::collections::HashMap;

use raster::blend::blend_row;
use raster::{Image, Rect, Rgba8, TILE_SIZE, TileCoord, TiledImage};
use rayon::prelude::*;

use crate::history::DocState;
use crate::{Document, Layer};

/// Renders the composite of `rect` (canvas pixels) into a new straight-alpha image over
/// transparent. Pixels outside the canvas are transparent.
pub(crate) fn render_region(state: &DocState, rect: Rect) -> Image<Rgba8> {
    let mut out = Image::new(rect.width, rect.height);
    blend_layers(state, &state.layers, rect, &mut out);
    out
}

/// Blends `layers` (bottom to top) over `out`, which holds the composite of `rect` so far.
fn blend_layers(state: &DocState, layers: &[Layer], rect: Rect, out: &mut Image<Rgba8>) {
    let canvas = Rect::from_size(state.width, state.height);
    let area = rect.intersect(&canvas);
    if area.is_empty() {
        return;
    }
    for layer in layers.iter().filter(|l| l.props.visible && l.props.opacity > 0.0) {
        let (ox, oy) = (layer.offset_x, layer.offset_y);
        let lr = layer.canvas_bounds().intersect(&area);
        if lr.is_empty() {
            continue;
        }
        let mode = layer.props.blend_mode;
        let opacity = layer.props.opacity;
        // Walk the layer's tiles that overlap the region; blank tiles change nothing.
        for coord in layer.pixels.tiles_in(lr.translated(-ox, -oy)) {
            let Some(tile) = layer.pixels.tile(coord) else { continue };
            let tile_canvas = coord.rect().translated(ox, oy).intersect(&lr);
            if tile_canvas.is_empty() {
                continue;
            }
            let tx = (tile_canvas.x - ox - coord.rect().x) as usize;
            let n = tile_canvas.width as usize;
            let dx = (tile_canvas.x - rect.x) as usize;
            for y in tile_canvas.y..tile_canvas.bottom() {
                let ty = (y - oy - coord.rect().y) as u32;
                let src = tile.row(ty).get(tx..tx + n);
                let dst = out.row_mut((y - rect.y) as u32).get_mut(dx..dx + n);
                if let (Some(src), Some(dst)) = (src, dst) {
                    blend_row(dst, src, mode, opacity);
                }
            }
        }
    }
}

/// While a stroke paints layer `layer_index`, nothing below it changes (commands are refused
/// during a stroke), so the composite of the layers below is computed once per canvas tile and
/// reused by every dab. The result is byte-identical to a full render: compositing runs bottom
/// to top with the same rounding either way.
#[derive(Debug)]
struct BelowCache {
    layer_index: usize,
    /// Per canvas tile: the composite of the layers below over the tile's canvas rect.
    tiles: HashMap<TileCoord, Image<Rgba8>>,
}

/// The cached composite: one tile grid over the canvas and, per tile, the part still to be
/// recomputed (empty when the tile is valid).
#[derive(Debug)]
pub(crate) struct CompositeCache {
    image: TiledImage<Rgba8>,
    invalid: Vec<Rect>,
    cols: u32,
    below: Option<BelowCache>,
}

impl CompositeCache {
    pub fn new(width: u32, height: u32) -> Self {
        let image = TiledImage::new(width, height);
        let (cols, rows) = image.grid_size();
        let bounds = image.bounds();
        let invalid = (0..rows)
            .flat_map(|row| {
                (0..cols).map(move |col| TileCoord { col, row }.rect().intersect(&bounds))
            })
            .collect();
        Self { image, invalid, cols, below: None }
    }

    fn slot(&self, c: TileCoord) -> usize {
        c.row as usize * self.cols as usize + c.col as usize
    }

    pub fn invalidate(&mut self, rect: Rect) {
        let coords: Vec<TileCoord> = self.image.tiles_in(rect).collect();
        for c in coords {
            let slot = self.slot(c);
            let part = c.rect().intersect(&rect);
            if let Some(inv) = self.invalid.get_mut(slot) {
                *inv = inv.union(&part);
            }
        }
    }

    /// Recomputes the invalid parts of the tiles overlapping `rect`, in parallel.
    pub fn ensure(&mut self, state: &DocState, rect: Rect) {
        let jobs: Vec<(TileCoord, Rect)> = self
            .image
            .tiles_in(rect)
            .filter_map(|c| {
                let inv = self.invalid.get(self.slot(c)).copied().unwrap_or_default();
                (!inv.is_empty()).then_some((c, inv))
            })
            .collect();
        if jobs.is_empty() {
            return;
        }
        let rendered: Vec<(TileCoord, Rect, Image<Rgba8>)> = match &mut self.below {
            Some(below) if below.layer_index < state.layers.len() => {
                let k = below.layer_index;
                let canvas = self.image.bounds();
                let missing: Vec<TileCoord> =
                    jobs.iter().map(|(c, _)| *c).filter(|c| !below.tiles.contains_key(c)).collect();
                let fresh: Vec<(TileCoord, Image<Rgba8>)> = missing
                    .into_par_iter()
                    .map(|c| {
                        let r = c.rect().intersect(&canvas);
                        let mut img = Image::new(r.width, r.height);
                        blend_layers(state, state.layers.get(..k).unwrap_or(&[]), r, &mut img);
                        (c, img)
                    })
                    .collect();
                below.tiles.extend(fresh);
                let tiles = &below.tiles;
                let above = state.layers.get(k..).unwrap_or(&[]);
                jobs.into_par_iter()
                    .map(|(c, r)| {
                        let origin = c.rect();
                        let mut out = match tiles.get(&c) {
                            Some(base) => base.crop(r.translated(-origin.x, -origin.y)),
                            None => Image::new(r.width, r.height),
                        };
                        blend_layers(state, above, r, &mut out);
                        (c, r, out)
                    })
                    .collect()
            }
            _ if jobs.len() == 1 => {
                jobs.into_iter().map(|(c, r)| (c, r, render_region(state, r))).collect()
            }
            _ => jobs.into_par_iter().map(|(c, r)| (c, r, render_region(state, r))).collect(),
        };
        for (coord, r, img) in rendered {
            let slot = self.slot(coord);
            let origin = coord.rect();
            if let Some(tile) = self.image.tile_mut(coord) {
                let tx = (r.x - origin.x) as usize;
                let n = r.width as usize;
                for y in 0..r.height {
                    let ty = (r.y - origin.y) as u32 + y;
                    if let Some(dst) = tile.row_mut(ty).get_mut(tx..tx + n) {
                        dst.copy_from_slice(img.row(y));
                    }
                }
            }
            if let Some(inv) = self.invalid.get_mut(slot) {
                *inv = Rect::default();
            }
        }
    }

    pub fn image(&self) -> &TiledImage<Rgba8> {
        &self.image
    }

    /// Starts (`Some(index)`) or ends (`None`) reuse of the composite below the painted layer.
    pub fn set_stroke_layer(&mut self, layer_index: Option<usize>) {
        self.below =
            layer_index.map(|layer_index| BelowCache { layer_index, tiles: HashMap::new() });
    }
}

impl Document {
    /// The composite of `rect` (canvas pixels) from the tile cache, recomputing only tiles
    /// invalidated since they were last composited. Straight alpha over transparent.
    pub fn composite_region(&mut self, rect: Rect) -> Image<Rgba8> {
        self.cache.ensure(&self.state, rect);
        self.cache.image().read_rect(rect)
    }

    /// Brings the cache up to date over `rect` and returns the cached composite, so a UI can
    /// upload individual tiles ([`TiledImage::tile`]) without copying.
    pub fn composite_tiles(&mut self, rect: Rect) -> &TiledImage<Rgba8> {
        self.cache.ensure(&self.state, rect);
        self.cache.image()
    }

    /// Renders the composite of `rect` without the cache (for saving, export and flatten from a
    /// shared reference). Same pixels as [`Document::composite_region`].
    pub fn render_region(&self, rect: Rect) -> Image<Rgba8> {
        render_region(&self.state, rect)
    }

    /// The whole canvas composite, rendered tile by tile in parallel.
    pub fn render_composite(&self) -> Image<Rgba8> {
        let bounds = self.bounds();
        let mut out = Image::new(bounds.width, bounds.height);
        let rows: Vec<(u32, Image<Rgba8>)> = (0..bounds.height.div_ceil(TILE_SIZE))
            .into_par_iter()
            .map(|row| {
                let y = row * TILE_SIZE;
                let band = Rect::new(0, y as i32, bounds.width, TILE_SIZE.min(bounds.height - y));
                (y, render_region(&self.state, band))
            })
            .collect();
        for (y, band) in rows {
            out.paste(&band, 0, y as i32);
        }
        out
    }
}
