//! Sparse copy-on-write tiled images.
//!
//! A blank tile costs nothing (`None`), so an empty 8192×8192 layer is a few kilobytes. Tiles are
//! shared through `Arc`: cloning a [`TiledImage`] or snapshotting tiles for undo is cheap, and the
//! first write to a shared tile copies it (`Arc::make_mut`).

use std::sync::Arc;

use crate::{Image, Pixel, Rect};

/// Tile edge in pixels.
pub const TILE_SIZE: u32 = 64;
const TILE_PIXELS: usize = (TILE_SIZE * TILE_SIZE) as usize;

/// A tile's column and row in its image's tile grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TileCoord {
    pub col: u32,
    pub row: u32,
}

impl TileCoord {
    /// The tile's pixel rectangle in image coordinates (not clipped to the image).
    pub fn rect(&self) -> Rect {
        Rect::new(
            (self.col * TILE_SIZE) as i32,
            (self.row * TILE_SIZE) as i32,
            TILE_SIZE,
            TILE_SIZE,
        )
    }
}

/// `TILE_SIZE × TILE_SIZE` pixels, row-major.
#[derive(Clone, PartialEq)]
pub struct Tile<P: Pixel> {
    pixels: Box<[P]>,
}

impl<P: Pixel> std::fmt::Debug for Tile<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tile")
    }
}

impl<P: Pixel> Default for Tile<P> {
    fn default() -> Self {
        Self { pixels: vec![P::ZERO; TILE_PIXELS].into_boxed_slice() }
    }
}

impl<P: Pixel> Tile<P> {
    pub fn pixels(&self) -> &[P] {
        &self.pixels
    }

    pub fn pixels_mut(&mut self) -> &mut [P] {
        &mut self.pixels
    }

    /// The pixel at tile-local `(x, y)`; `ZERO` outside the tile.
    pub fn get(&self, x: u32, y: u32) -> P {
        if x >= TILE_SIZE || y >= TILE_SIZE {
            return P::ZERO;
        }
        self.pixels.get((y * TILE_SIZE + x) as usize).copied().unwrap_or(P::ZERO)
    }

    pub fn set(&mut self, x: u32, y: u32, value: P) {
        if x < TILE_SIZE
            && y < TILE_SIZE
            && let Some(p) = self.pixels.get_mut((y * TILE_SIZE + x) as usize)
        {
            *p = value;
        }
    }

    /// Tile-local row `y`.
    pub fn row(&self, y: u32) -> &[P] {
        let s = (y * TILE_SIZE) as usize;
        self.pixels.get(s..s + TILE_SIZE as usize).unwrap_or(&[])
    }

    pub fn row_mut(&mut self, y: u32) -> &mut [P] {
        let s = (y * TILE_SIZE) as usize;
        self.pixels.get_mut(s..s + TILE_SIZE as usize).unwrap_or(&mut [])
    }

    /// True if every pixel is `ZERO`.
    pub fn is_blank(&self) -> bool {
        self.pixels.iter().all(|p| *p == P::ZERO)
    }
}

/// A `width × height` image stored as a grid of optional shared tiles.
#[derive(Clone, PartialEq)]
pub struct TiledImage<P: Pixel> {
    width: u32,
    height: u32,
    cols: u32,
    rows: u32,
    tiles: Vec<Option<Arc<Tile<P>>>>,
}

impl<P: Pixel> std::fmt::Debug for TiledImage<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let used = self.tiles.iter().filter(|t| t.is_some()).count();
        write!(f, "TiledImage({}×{}, {used} tiles)", self.width, self.height)
    }
}

impl<P: Pixel> TiledImage<P> {
    /// A blank image; costs one pointer per tile.
    pub fn new(width: u32, height: u32) -> Self {
        let cols = width.div_ceil(TILE_SIZE);
        let rows = height.div_ceil(TILE_SIZE);
        Self { width, height, cols, rows, tiles: vec![None; cols as usize * rows as usize] }
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    pub fn bounds(&self) -> Rect {
        Rect::from_size(self.width, self.height)
    }

    /// Grid size in tiles: `(columns, rows)`.
    pub fn grid_size(&self) -> (u32, u32) {
        (self.cols, self.rows)
    }

    fn slot(&self, c: TileCoord) -> Option<usize> {
        (c.col < self.cols && c.row < self.rows)
            .then(|| c.row as usize * self.cols as usize + c.col as usize)
    }

    /// The tile at `coord`, `None` if blank or outside the grid.
    pub fn tile(&self, coord: TileCoord) -> Option<&Arc<Tile<P>>> {
        self.slot(coord).and_then(|i| self.tiles.get(i)).and_then(Option::as_ref)
    }

    /// The tile at `coord` for writing, allocated if blank and unshared first if shared.
    /// `None` only outside the grid.
    pub fn tile_mut(&mut self, coord: TileCoord) -> Option<&mut Tile<P>> {
        let i = self.slot(coord)?;
        let slot = self.tiles.get_mut(i)?;
        Some(Arc::make_mut(slot.get_or_insert_with(Default::default)))
    }

    /// Replaces the tile at `coord` (undo restores snapshots with this). Outside the grid: ignored.
    pub fn set_tile(&mut self, coord: TileCoord, tile: Option<Arc<Tile<P>>>) {
        if let Some(slot) = self.slot(coord).and_then(|i| self.tiles.get_mut(i)) {
            *slot = tile;
        }
    }

    /// Coordinates of the tiles overlapping `rect` (image coordinates), clipped to the grid.
    pub fn tiles_in(&self, rect: Rect) -> impl Iterator<Item = TileCoord> + use<P> {
        let r = rect.intersect(&self.bounds());
        let (c0, r0) = ((r.x.max(0) as u32) / TILE_SIZE, (r.y.max(0) as u32) / TILE_SIZE);
        let (c1, r1) = if r.is_empty() {
            (c0, r0)
        } else {
            ((r.right() as u32).div_ceil(TILE_SIZE), (r.bottom() as u32).div_ceil(TILE_SIZE))
        };
        (r0..r1).flat_map(move |row| (c0..c1).map(move |col| TileCoord { col, row }))
    }

    /// Coordinates of the allocated tiles.
    pub fn allocated_tiles(&self) -> impl Iterator<Item = TileCoord> + '_ {
        let cols = self.cols.max(1);
        self.tiles
            .iter()
            .enumerate()
            .filter(|(_, t)| t.is_some())
            .map(move |(i, _)| TileCoord { col: i as u32 % cols, row: i as u32 / cols })
    }

    /// The pixel at `(x, y)`; `ZERO` outside the image.
    pub fn get(&self, x: i32, y: i32) -> P {
        if x < 0 || y < 0 || x as u32 >= self.width || y as u32 >= self.height {
            return P::ZERO;
        }
        let (x, y) = (x as u32, y as u32);
        self.tile(TileCoord { col: x / TILE_SIZE, row: y / TILE_SIZE })
            .map_or(P::ZERO, |t| t.get(x % TILE_SIZE, y % TILE_SIZE))
    }

    /// Writes the pixel at `(x, y)`; outside the image: ignored. Writing `ZERO` into a blank tile
    /// does not allocate it.
    pub fn set(&mut self, x: i32, y: i32, value: P) {
        if x < 0 || y < 0 || x as u32 >= self.width || y as u32 >= self.height {
            return;
        }
        let (x, y) = (x as u32, y as u32);
        let coord = TileCoord { col: x / TILE_SIZE, row: y / TILE_SIZE };
        if value == P::ZERO && self.tile(coord).is_none() {
            return;
        }
        if let Some(t) = self.tile_mut(coord) {
            t.set(x % TILE_SIZE, y % TILE_SIZE, value);
        }
    }

    /// Copies `rect` (image coordinates) into a contiguous image; outside pixels read as `ZERO`.
    pub fn read_rect(&self, rect: Rect) -> Image<P> {
        let mut out = Image::new(rect.width, rect.height);
        for coord in self.tiles_in(rect) {
            let Some(tile) = self.tile(coord) else { continue };
            let tr = coord.rect().intersect(&rect).intersect(&self.bounds());
            for y in tr.y..tr.bottom() {
                let ty = (y - coord.rect().y) as u32;
                let tx = (tr.x - coord.rect().x) as usize;
                let n = tr.width as usize;
                let ox = (tr.x - rect.x) as usize;
                if let (Some(src), Some(dst)) = (
                    tile.row(ty).get(tx..tx + n),
                    out.row_mut((y - rect.y) as u32).get_mut(ox..ox + n),
                ) {
                    dst.copy_from_slice(src);
                }
            }
        }
        out
    }

    /// Writes `src` with its top-left at `(x, y)`, clipped to the image. Tiles that would only
    /// receive `ZERO` pixels and are blank stay unallocated.
    pub fn write_image(&mut self, src: &Image<P>, x: i32, y: i32) {
        let rect = Rect::new(x, y, src.width(), src.height());
        let coords: Vec<TileCoord> = self.tiles_in(rect).collect();
        for coord in coords {
            let tr = coord.rect().intersect(&rect).intersect(&self.bounds());
            let all_zero = (tr.y..tr.bottom()).all(|yy| {
                let sx = (tr.x - x) as usize;
                src.row((yy - y) as u32)
                    .get(sx..sx + tr.width as usize)
                    .is_none_or(|r| r.iter().all(|p| *p == P::ZERO))
            });
            if all_zero && self.tile(coord).is_none() {
                continue;
            }
            let origin = coord.rect();
            let Some(tile) = self.tile_mut(coord) else { continue };
            for yy in tr.y..tr.bottom() {
                let sx = (tr.x - x) as usize;
                let n = tr.width as usize;
                let tx = (tr.x - origin.x) as usize;
                if let (Some(s), Some(d)) = (
                    src.row((yy - y) as u32).get(sx..sx + n),
                    tile.row_mut((yy - origin.y) as u32).get_mut(tx..tx + n),
                ) {
                    d.copy_from_slice(s);
                }
            }
        }
    }

    /// A tiled copy of a contiguous image.
    pub fn from_image(img: &Image<P>) -> Self {
        let mut t = Self::new(img.width(), img.height());
        t.write_image(img, 0, 0);
        t
    }

    /// The whole image, contiguous.
    pub fn to_image(&self) -> Image<P> {
        self.read_rect(self.bounds())
    }

    /// Frees tiles whose pixels are all `ZERO`.
    pub fn compact(&mut self) {
        for slot in &mut self.tiles {
            if slot.as_ref().is_some_and(|t| t.is_blank()) {
                *slot = None;
            }
        }
    }

    /// Bounding box of the allocated tiles (coarse content bounds, tile-aligned, clipped).
    pub fn allocated_bounds(&self) -> Rect {
        self.allocated_tiles()
            .fold(Rect::default(), |acc, c| acc.union(&c.rect()))
            .intersect(&self.bounds())
    }

    /// Exact bounding box of pixels that are not `ZERO`.
    pub fn content_bounds(&self) -> Rect {
        let mut acc = Rect::default();
        for coord in self.allocated_tiles() {
            let Some(tile) = self.tile(coord) else { continue };
            let o = coord.rect();
            for ty in 0..TILE_SIZE {
                for (tx, p) in tile.row(ty).iter().enumerate() {
                    if *p != P::ZERO {
                        acc = acc.union(&Rect::new(o.x + tx as i32, o.y + ty as i32, 1, 1));
                    }
                }
            }
        }
        acc.intersect(&self.bounds())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Gray8, Rgba8};

    #[test]
    fn blank_image_is_cheap_and_reads_zero() {
        let t: TiledImage<Rgba8> = TiledImage::new(8192, 8192);
        assert_eq!(t.allocated_tiles().count(), 0);
        assert_eq!(t.get(100, 100), [0, 0, 0, 0]);
    }

    #[test]
    fn write_read_round_trip_across_tiles() {
        let mut img: Image<Gray8> = Image::new(150, 70);
        for (i, p) in img.pixels_mut().iter_mut().enumerate() {
            *p = (i % 251) as u8;
        }
        let mut t = TiledImage::new(200, 100);
        t.write_image(&img, 30, 20);
        assert_eq!(t.read_rect(Rect::new(30, 20, 150, 70)), img);
        assert_eq!(t.get(29, 20), 0);
        assert_eq!(t.get(31, 20), img.get(1, 0).unwrap());
    }

    #[test]
    fn clone_shares_tiles_until_written() {
        let mut a: TiledImage<Gray8> = TiledImage::new(128, 128);
        a.set(1, 1, 5);
        let mut b = a.clone();
        b.set(1, 1, 9);
        assert_eq!(a.get(1, 1), 5);
        assert_eq!(b.get(1, 1), 9);
        assert_eq!(b.content_bounds(), Rect::new(1, 1, 1, 1));
    }
}
