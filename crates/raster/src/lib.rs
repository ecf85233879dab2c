//! Pixels for Pentimento: RGBA8 and 8-bit single-channel images, stored either contiguously
//! ([`Image`]) or in 64×64 copy-on-write tiles ([`TiledImage`]), addressed by canvas-space integer
//! [`Rect`]s.
//!
//! # Alpha convention
//! Pixels at rest are **straight (non-premultiplied) sRGB RGBA8**, the convention of PNG and
//! OpenRaster, so layers load and save without conversion and colour survives editing at low
//! alpha. Compositing converts to premultiplied `f32` internally (see `blend`) and converts back
//! at the edge; no other module stores premultiplied pixels.
//!
//! # Modules
//! * [`blend`]: the OpenRaster composite ops (W3C formulas), row compositing with opacity and
//!   coverage.
//! * [`resample`]: resizing byte-identical to Pillow 13 `Image.resize`.
//! * [`blur`]: A1111's mask blur (exact rule) and Pillow's GaussianBlur/BoxBlur, byte-identical.
//! * [`codec`]: PNG (ordered text chunks), JPEG, WebP with decode limits and typed errors.
//! * [`mask`]: 8-bit mask helpers and Pillow's luminance.
//!
//! Fixtures proving the reference matches come from `tests/reference/pillow_reference.py`.
//!
//! This crate knows nothing of documents, UI or machine learning.

pub mod blend;
pub mod blur;
pub mod codec;
mod image;
pub mod mask;
mod rect;
pub mod resample;
mod tiled;

pub use blend::{BlendMode, blend_row, blend_row_masked};
pub use blur::{
    BlurError, box_blur_pillow, gaussian_blur_a1111, gaussian_blur_a1111_sparse,
    gaussian_blur_pillow,
};
pub use codec::{
    CodecError, DecodeLimits, DecodedImage, ImageFormat, PngCompression, decode_image, decode_mask,
    decode_png, encode_jpeg, encode_png, encode_png_gray, encode_webp_lossless, read_png_text,
};
pub use image::{Gray8, Image, Pixel, Rgba8};
pub use rect::Rect;
pub use resample::{
    Edge, ResampleFilter, ResizeError, edge_strip_gray, edge_strip_rgba, resize_gray, resize_rgba,
};
pub use tiled::{TILE_SIZE, Tile, TileCoord, TiledImage};
