//! Contiguous images: the exchange format for codecs, resampling, blur and models.

use crate::Rect;

/// One straight-alpha sRGB pixel: `[r, g, b, a]`.
pub type Rgba8 = [u8; 4];
/// One 8-bit coverage or grey value (masks, selections).
pub type Gray8 = u8;

/// A pixel type that images and tiles can hold.
pub trait Pixel: Copy + PartialEq + Send + Sync + std::fmt::Debug + 'static {
    /// The value of pixels never written: transparent black, or 0 coverage.
    const ZERO: Self;
    /// Bytes per pixel.
    const CHANNELS: usize;
}

impl Pixel for Rgba8 {
    const ZERO: Self = [0, 0, 0, 0];
    const CHANNELS: usize = 4;
}

impl Pixel for Gray8 {
    const ZERO: Self = 0;
    const CHANNELS: usize = 1;
}

/// A row-major image of `width × height` pixels.
#[derive(Clone, PartialEq, Eq)]
pub struct Image<P: Pixel> {
    width: u32,
    height: u32,
    pixels: Vec<P>,
}

impl<P: Pixel> std::fmt::Debug for Image<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Image<{}ch>({}×{})", P::CHANNELS, self.width, self.height)
    }
}

impl<P: Pixel> Image<P> {
    /// An image filled with [`Pixel::ZERO`].
    pub fn new(width: u32, height: u32) -> Self {
        Self::filled(width, height, P::ZERO)
    }

    pub fn filled(width: u32, height: u32, value: P) -> Self {
        Self { width, height, pixels: vec![value; width as usize * height as usize] }
    }

    /// Wraps a pixel vector; `None` if its length is not `width × height`.
    pub fn from_pixels(width: u32, height: u32, pixels: Vec<P>) -> Option<Self> {
        (pixels.len() == width as usize * height as usize).then_some(Self { width, height, pixels })
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    /// `Rect::from_size(width, height)`.
    pub fn bounds(&self) -> Rect {
        Rect::from_size(self.width, self.height)
    }

    pub fn pixels(&self) -> &[P] {
        &self.pixels
    }

    pub fn pixels_mut(&mut self) -> &mut [P] {
        &mut self.pixels
    }

    pub fn into_pixels(self) -> Vec<P> {
        self.pixels
    }

    fn index(&self, x: u32, y: u32) -> Option<usize> {
        (x < self.width && y < self.height).then(|| y as usize * self.width as usize + x as usize)
    }

    /// The pixel at `(x, y)`, or `None` outside the image.
    pub fn get(&self, x: u32, y: u32) -> Option<P> {
        self.index(x, y).and_then(|i| self.pixels.get(i).copied())
    }

    /// Writes the pixel at `(x, y)`; writes outside the image are ignored.
    pub fn set(&mut self, x: u32, y: u32, value: P) {
        if let Some(p) = self.index(x, y).and_then(|i| self.pixels.get_mut(i)) {
            *p = value;
        }
    }

    /// Row `y` as a slice (empty outside the image).
    pub fn row(&self, y: u32) -> &[P] {
        let w = self.width as usize;
        let start = y as usize * w;
        self.pixels.get(start..start + w).unwrap_or(&[])
    }

    pub fn row_mut(&mut self, y: u32) -> &mut [P] {
        let w = self.width as usize;
        let start = y as usize * w;
        self.pixels.get_mut(start..start + w).unwrap_or(&mut [])
    }

    /// Copies the part of `self` inside `rect` (image coordinates); outside pixels read as zero.
    pub fn crop(&self, rect: Rect) -> Image<P> {
        let mut out = Image::new(rect.width, rect.height);
        let inside = rect.intersect(&self.bounds());
        for y in inside.y..inside.bottom() {
            let src_start = y as usize * self.width as usize + inside.x as usize;
            let dst_start =
                (y - rect.y) as usize * rect.width as usize + (inside.x - rect.x) as usize;
            let n = inside.width as usize;
            if let (Some(src), Some(dst)) = (
                self.pixels.get(src_start..src_start + n),
                out.pixels.get_mut(dst_start..dst_start + n),
            ) {
                dst.copy_from_slice(src);
            }
        }
        out
    }

    /// Writes `src` with its top-left corner at `(x, y)`, clipped to this image.
    pub fn paste(&mut self, src: &Image<P>, x: i32, y: i32) {
        let target = Rect::new(x, y, src.width, src.height).intersect(&self.bounds());
        for ty in target.y..target.bottom() {
            let sy = (ty - y) as u32;
            let sx = (target.x - x) as usize;
            let n = target.width as usize;
            let dst_start = ty as usize * self.width as usize + target.x as usize;
            if let (Some(s), Some(d)) =
                (src.row(sy).get(sx..sx + n), self.pixels.get_mut(dst_start..dst_start + n))
            {
                d.copy_from_slice(s);
            }
        }
    }

    /// Applies `f` to every pixel.
    pub fn map<Q: Pixel>(&self, f: impl Fn(P) -> Q) -> Image<Q> {
        Image {
            width: self.width,
            height: self.height,
            pixels: self.pixels.iter().map(|&p| f(p)).collect(),
        }
    }
}

impl Image<Rgba8> {
    /// The pixels as `r, g, b, a` bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.pixels.as_flattened()
    }

    /// Wraps `r, g, b, a` bytes; `None` if the length is not `4 × width × height`.
    pub fn from_rgba_bytes(width: u32, height: u32, bytes: &[u8]) -> Option<Self> {
        let (chunks, rest) = bytes.as_chunks::<4>();
        if !rest.is_empty() {
            return None;
        }
        Self::from_pixels(width, height, chunks.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_and_paste_clip_at_edges() {
        let mut img: Image<Gray8> = Image::new(4, 4);
        img.set(0, 0, 9);
        img.set(3, 3, 7);
        let c = img.crop(Rect::new(-1, -1, 3, 3));
        assert_eq!(c.get(1, 1), Some(9));
        assert_eq!(c.get(0, 0), Some(0));
        let mut dst: Image<Gray8> = Image::new(4, 4);
        dst.paste(&c, 2, 2);
        assert_eq!(dst.get(3, 3), Some(9));
        assert_eq!(img.get(4, 0), None);
    }
}
