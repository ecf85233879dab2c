//! The canvas as a grid of GPU texture tiles.
//!
//! egui textures are limited to 8192 px a side and a whole-canvas upload per stroke would stall,
//! so the composite is uploaded as `TEXTURE_TILE_PX` tiles, only for the visible part, and only
//! tiles touched by a dirty rectangle are uploaded again. Zoomed out, tiles are built at a coarser
//! level of detail (each texel the mean of `2^lod × 2^lod` pixels) so an 8192² document seen whole
//! costs about one screen of texture.

use std::collections::HashMap;

use egui::{
    Color32, ColorImage, Context, Painter, Rect, TextureHandle, TextureOptions, pos2, vec2,
};
use raster::{Image, Rgba8};

use crate::view::CanvasView;

/// Texture tile edge in texels.
pub const TEXTURE_TILE_PX: u32 = 256;
/// Coarsest level of detail (1 texel = 32×32 canvas pixels).
pub const MAX_LOD: u32 = 5;
/// At most this many tiles are uploaded per frame; the rest follow on the next frames, so
/// opening a huge document never freezes the window.
pub const MAX_UPLOADS_PER_FRAME: usize = 48;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct TileKey {
    lod: u32,
    col: u32,
    row: u32,
}

/// Magnified pixels stay crisp squares; minification is smoothed by the level of detail.
const TILE_OPTIONS: TextureOptions = TextureOptions {
    magnification: egui::TextureFilter::Nearest,
    minification: egui::TextureFilter::Linear,
    wrap_mode: egui::TextureWrapMode::ClampToEdge,
    mipmap_mode: None,
};

/// Uploaded tiles of one canvas.
pub struct CanvasTextures {
    width: u32,
    height: u32,
    tiles: HashMap<TileKey, TextureHandle>,
    /// Canvas rectangles changed since the last `update`.
    dirty: Vec<raster::Rect>,
    lod: u32,
    /// Tiles uploaded by the last `update` (for tests and the frame-time readout).
    pub last_uploads: usize,
    checker: Option<TextureHandle>,
}

impl std::fmt::Debug for CanvasTextures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CanvasTextures({}×{}, {} tiles, lod {})",
            self.width,
            self.height,
            self.tiles.len(),
            self.lod
        )
    }
}

/// The level of detail for `zoom`: the largest `lod` with `zoom · 2^lod ≤ 1`.
pub fn lod_for_zoom(zoom: f32) -> u32 {
    if zoom >= 1.0 || zoom <= 0.0 || !zoom.is_finite() {
        return 0;
    }
    ((1.0 / zoom).log2().floor().max(0.0) as u32).min(MAX_LOD)
}

impl CanvasTextures {
    pub fn new(width: u32, height: u32) -> Self {
        Self {
            width,
            height,
            tiles: HashMap::new(),
            dirty: Vec::new(),
            lod: 0,
            last_uploads: 0,
            checker: None,
        }
    }

    /// Drops every tile (a new document, or the canvas was resized or cropped).
    pub fn reset(&mut self, width: u32, height: u32) {
        self.width = width;
        self.height = height;
        self.tiles.clear();
        self.dirty.clear();
    }

    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// Number of tiles currently on the GPU.
    pub fn tile_count(&self) -> usize {
        self.tiles.len()
    }

    /// Marks canvas pixels as changed; their tiles are uploaded again by the next `update`.
    pub fn mark_dirty(&mut self, rect: raster::Rect) {
        if !rect.is_empty() {
            self.dirty.push(rect);
        }
    }

    pub fn mark_all_dirty(&mut self) {
        self.dirty.push(raster::Rect::from_size(self.width, self.height));
    }

    /// True while visible tiles are still missing (uploads spread over frames).
    pub fn has_pending(&self, view: &CanvasView) -> bool {
        self.visible_keys(view).any(|k| !self.tiles.contains_key(&k))
    }

    fn tile_canvas_rect(&self, key: TileKey) -> raster::Rect {
        let span = TEXTURE_TILE_PX << key.lod;
        raster::Rect::new((key.col * span) as i32, (key.row * span) as i32, span, span)
            .intersect(&raster::Rect::from_size(self.width, self.height))
    }

    fn visible_keys(&self, view: &CanvasView) -> impl Iterator<Item = TileKey> + use<> {
        let lod = lod_for_zoom(view.zoom);
        let span = (TEXTURE_TILE_PX << lod) as f32;
        let vis = view.visible_canvas_rect();
        let cols = self.width.div_ceil(TEXTURE_TILE_PX << lod);
        let rows = self.height.div_ceil(TEXTURE_TILE_PX << lod);
        let c0 = (vis.min.x / span).floor().max(0.0) as u32;
        let r0 = (vis.min.y / span).floor().max(0.0) as u32;
        let c1 = ((vis.max.x / span).ceil().max(0.0) as u32).min(cols);
        let r1 = ((vis.max.y / span).ceil().max(0.0) as u32).min(rows);
        (r0..r1).flat_map(move |row| (c0..c1).map(move |col| TileKey { lod, col, row }))
    }

    /// Uploads missing and dirty visible tiles; `render(rect)` returns the composite of a canvas
    /// rectangle at full resolution (straight-alpha RGBA8). Returns the number of tiles uploaded.
    pub fn update(
        &mut self,
        ctx: &Context,
        view: &CanvasView,
        mut render: impl FnMut(raster::Rect) -> Image<Rgba8>,
    ) -> usize {
        let lod = lod_for_zoom(view.zoom);
        if lod != self.lod {
            self.lod = lod;
            self.tiles.retain(|k, _| k.lod == lod);
        }
        self.last_uploads = 0;
        if !self.dirty.is_empty() {
            let dirty = std::mem::take(&mut self.dirty);
            // Per stale tile, the part that changed, aligned to the tile's texel grid.
            let mut stale = Vec::new();
            for key in self.tiles.keys() {
                let tile = self.tile_canvas_rect(*key);
                let changed = dirty
                    .iter()
                    .fold(raster::Rect::default(), |acc, d| acc.union(&d.intersect(&tile)));
                if !changed.is_empty() {
                    stale.push((*key, align_to_texels(changed, tile, key.lod)));
                }
            }
            for (key, part) in stale {
                let tile = self.tile_canvas_rect(key);
                let image = downsample(&render(part), key.lod);
                if let Some(tex) = self.tiles.get_mut(&key) {
                    let pos = [
                        ((part.x - tile.x) >> key.lod) as usize,
                        ((part.y - tile.y) >> key.lod) as usize,
                    ];
                    let full = pos == [0, 0]
                        && image.width() == tile.width.div_ceil(1 << key.lod)
                        && image.height() == tile.height.div_ceil(1 << key.lod);
                    if full {
                        tex.set(to_color_image(&image), TILE_OPTIONS);
                    } else {
                        tex.set_partial(pos, to_color_image(&image), TILE_OPTIONS);
                    }
                    self.last_uploads += 1;
                }
            }
        }
        let missing: Vec<TileKey> = self
            .visible_keys(view)
            .filter(|k| !self.tiles.contains_key(k))
            .take(MAX_UPLOADS_PER_FRAME)
            .collect();
        for key in missing {
            let rect = self.tile_canvas_rect(key);
            if rect.is_empty() {
                continue;
            }
            let image = downsample(&render(rect), key.lod);
            let name = format!("canvas-{}-{}-{}", key.lod, key.col, key.row);
            self.tiles.insert(key, ctx.load_texture(name, to_color_image(&image), TILE_OPTIONS));
            self.last_uploads += 1;
        }
        self.last_uploads
    }

    /// Draws the checkerboard and the visible tiles.
    pub fn paint(&mut self, ctx: &Context, painter: &Painter, view: &CanvasView) {
        let canvas_screen = view.screen_rect_from_canvas(Rect::from_min_size(
            pos2(0.0, 0.0),
            vec2(self.width as f32, self.height as f32),
        ));
        let checker = self.checker.get_or_insert_with(|| {
            let light = Color32::from_gray(204);
            let dark = Color32::from_gray(153);
            ctx.load_texture(
                "canvas-checker",
                ColorImage::new([2, 2], vec![light, dark, dark, light]),
                TextureOptions::NEAREST_REPEAT,
            )
        });
        // 8-point checks, fixed to the canvas so they scroll with it.
        const CHECK_POINTS: f32 = 8.0;
        let uv = Rect::from_min_size(pos2(0.0, 0.0), canvas_screen.size() / (2.0 * CHECK_POINTS));
        painter.image(checker.id(), canvas_screen, uv, Color32::WHITE);
        self.paint_tiles_only(painter, view);
    }

    /// Draws the visible tiles without the checkerboard (overlays such as the mask tint).
    pub fn paint_tiles_only(&self, painter: &Painter, view: &CanvasView) {
        let uv_full = Rect::from_min_max(pos2(0.0, 0.0), pos2(1.0, 1.0));
        for key in self.visible_keys(view) {
            if let Some(tex) = self.tiles.get(&key) {
                let r = self.tile_canvas_rect(key);
                let screen = view.screen_rect_from_canvas(Rect::from_min_size(
                    pos2(r.x as f32, r.y as f32),
                    vec2(r.width as f32, r.height as f32),
                ));
                painter.image(tex.id(), screen, uv_full, Color32::WHITE);
            }
        }
    }
}

/// Grows `r` (inside `tile`) to whole texels of level `lod`, clipped to the tile.
fn align_to_texels(r: raster::Rect, tile: raster::Rect, lod: u32) -> raster::Rect {
    let f = 1i32 << lod;
    let x0 = tile.x + (r.x - tile.x).div_euclid(f) * f;
    let y0 = tile.y + (r.y - tile.y).div_euclid(f) * f;
    let x1 = tile.x + (r.right() - tile.x + f - 1).div_euclid(f) * f;
    let y1 = tile.y + (r.bottom() - tile.y + f - 1).div_euclid(f) * f;
    raster::Rect::from_bounds(x0, y0, x1, y1).intersect(&tile)
}

fn to_color_image(image: &Image<Rgba8>) -> ColorImage {
    ColorImage::from_rgba_unmultiplied(
        [image.width() as usize, image.height() as usize],
        image.as_bytes(),
    )
}

/// Box-filters `image` by `2^lod` in each direction (premultiplied, so transparent pixels do not
/// darken edges).
pub fn downsample(image: &Image<Rgba8>, lod: u32) -> Image<Rgba8> {
    if lod == 0 {
        return image.clone();
    }
    let f = 1u32 << lod;
    let (w, h) = (image.width().div_ceil(f), image.height().div_ceil(f));
    let mut out = Image::new(w, h);
    let mut acc = vec![[0u32; 5]; w as usize];
    for oy in 0..h {
        acc.iter_mut().for_each(|a| *a = [0; 5]);
        for y in (oy * f)..((oy + 1) * f).min(image.height()) {
            for (x, p) in image.row(y).iter().enumerate() {
                if let Some(a) = acc.get_mut(x / f as usize) {
                    let al = u32::from(p[3]);
                    a[0] += u32::from(p[0]) * al;
                    a[1] += u32::from(p[1]) * al;
                    a[2] += u32::from(p[2]) * al;
                    a[3] += al;
                    a[4] += 1;
                }
            }
        }
        for (dst, a) in out.row_mut(oy).iter_mut().zip(&acc) {
            if a[3] > 0 && a[4] > 0 {
                *dst = [
                    ((a[0] + a[3] / 2) / a[3]) as u8,
                    ((a[1] + a[3] / 2) / a[3]) as u8,
                    ((a[2] + a[3] / 2) / a[3]) as u8,
                    ((a[3] + a[4] / 2) / a[4]) as u8,
                ];
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lod_levels() {
        assert_eq!(lod_for_zoom(1.0), 0);
        assert_eq!(lod_for_zoom(4.0), 0);
        assert_eq!(lod_for_zoom(0.6), 0);
        assert_eq!(lod_for_zoom(0.5), 1);
        assert_eq!(lod_for_zoom(0.3), 1);
        assert_eq!(lod_for_zoom(0.25), 2);
        assert_eq!(lod_for_zoom(1e-6), MAX_LOD);
    }

    #[test]
    fn texel_alignment() {
        let tile = raster::Rect::new(1024, 0, 1024, 1000);
        assert_eq!(
            align_to_texels(raster::Rect::new(1030, 5, 3, 3), tile, 2),
            raster::Rect::new(1028, 4, 8, 4)
        );
        assert_eq!(
            align_to_texels(raster::Rect::new(1030, 997, 3, 3), tile, 3),
            raster::Rect::new(1024, 992, 16, 8)
        );
        assert_eq!(
            align_to_texels(raster::Rect::new(1030, 5, 3, 3), tile, 0),
            raster::Rect::new(1030, 5, 3, 3)
        );
    }

    #[test]
    fn downsample_averages_premultiplied() {
        let mut img: Image<Rgba8> = Image::new(3, 2);
        img.set(0, 0, [200, 0, 0, 255]);
        img.set(1, 0, [0, 0, 0, 0]);
        img.set(0, 1, [100, 0, 0, 255]);
        img.set(2, 0, [0, 90, 0, 255]);
        let d = downsample(&img, 1);
        assert_eq!((d.width(), d.height()), (2, 1));
        // (200+100)/2 colour, alpha 2 of 4 opaque.
        assert_eq!(d.get(0, 0), Some([150, 0, 0, 128]));
        assert_eq!(d.get(1, 0), Some([0, 90, 0, 128]));
    }

    fn blank(rect: raster::Rect) -> Image<Rgba8> {
        Image::new(rect.width, rect.height)
    }

    #[test]
    fn uploads_visible_then_only_dirty_tiles() {
        let ctx = Context::default();
        let mut t = CanvasTextures::new(1000, 600);
        let view = CanvasView {
            viewport: Rect::from_min_size(pos2(0.0, 0.0), vec2(2000.0, 2000.0)),
            zoom: 1.0,
            pan: vec2(0.0, 0.0),
        };
        let mut calls = Vec::new();
        let n = t.update(&ctx, &view, |r| {
            calls.push(r);
            blank(r)
        });
        assert_eq!(n, 4 * 3);
        assert!(calls.contains(&raster::Rect::new(768, 512, 232, 88)), "edge tiles are clipped");
        assert_eq!(t.update(&ctx, &view, blank), 0);
        t.mark_dirty(raster::Rect::new(250, 10, 10, 10));
        calls.clear();
        assert_eq!(
            t.update(&ctx, &view, |r| {
                calls.push(r);
                blank(r)
            }),
            2
        );
        calls.sort_by_key(|r| (r.y, r.x));
        // Only the changed part of each tile is rendered again.
        assert_eq!(
            calls,
            vec![raster::Rect::new(250, 10, 6, 10), raster::Rect::new(256, 10, 4, 10)]
        );
    }

    #[test]
    fn only_visible_tiles_and_lod_when_zoomed_out() {
        let ctx = Context::default();
        let mut t = CanvasTextures::new(8192, 8192);
        let mut view = CanvasView {
            viewport: Rect::from_min_size(pos2(0.0, 0.0), vec2(500.0, 500.0)),
            zoom: 1.0,
            pan: vec2(0.0, 0.0),
        };
        assert_eq!(t.update(&ctx, &view, blank), 4);
        view.fit(vec2(8192.0, 8192.0));
        let lod = lod_for_zoom(view.zoom);
        assert!(lod >= 4, "{lod}");
        let mut sizes = Vec::new();
        t.update(&ctx, &view, |r| {
            sizes.push(r.width);
            blank(r)
        });
        assert!(t.tile_count() <= 4, "{}", t.tile_count());
        assert!(sizes.iter().all(|w| *w == TEXTURE_TILE_PX << lod));
    }
}
