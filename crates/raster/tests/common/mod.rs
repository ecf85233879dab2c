//! Fixture access shared by the integration tests (fixtures come from
//! tests/reference/pillow_reference.py; see that script for what each holds).
#![allow(dead_code, reason = "each test binary uses a different subset")]
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers: a failure is a failed test"
)]

use std::path::PathBuf;

use pentimento_raster::{Gray8, Image, Rgba8};

pub fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/raster")
}

pub fn manifest() -> serde_json::Value {
    let text = std::fs::read_to_string(fixture_dir().join("manifest.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Decodes a fixture PNG (8-bit RGBA or grey, as the script writes them) with the `png` crate
/// directly, so these tests do not depend on our own codec.
fn decode(rel: &str) -> (u32, u32, png::ColorType, Vec<u8>) {
    let file = std::fs::File::open(fixture_dir().join(rel)).unwrap();
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    (info.width, info.height, info.color_type, buf)
}

pub fn load_rgba(rel: &str) -> Image<Rgba8> {
    let (w, h, ct, buf) = decode(rel);
    assert_eq!(ct, png::ColorType::Rgba, "{rel}");
    Image::from_rgba_bytes(w, h, &buf).unwrap()
}

pub fn load_gray(rel: &str) -> Image<Gray8> {
    let (w, h, ct, buf) = decode(rel);
    assert_eq!(ct, png::ColorType::Grayscale, "{rel}");
    Image::from_pixels(w, h, buf).unwrap()
}

/// Largest per-channel difference, and how many channels differ.
pub fn diff_bytes(a: &[u8], b: &[u8]) -> (u8, usize) {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).fold((0, 0), |(m, n), (x, y)| {
        let d = x.abs_diff(*y);
        (m.max(d), n + usize::from(d != 0))
    })
}
