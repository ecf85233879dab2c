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
//! This crate knows nothing of documents, UI or machine learning.

pub mod blend;
mod image;
mod rect;
mod tiled;

pub use blend::{BlendMode, blend_row, blend_row_masked};
pub use image::{Gray8, Image, Pixel, Rgba8};
pub use rect::Rect;
pub use tiled::{TILE_SIZE, Tile, TileCoord, TiledImage};
