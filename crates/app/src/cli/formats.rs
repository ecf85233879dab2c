//! Recognising and decoding the files the subcommands accept.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, bail};
use raster::{Image, Rgba8};

/// What a file is, from its first bytes (the extension only breaks ties).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    OpenRaster,
    Png,
    Jpeg,
    WebP,
    /// `.safetensors` checkpoints, LoRAs, VAEs, embeddings.
    Safetensors,
    /// Pickled PyTorch files: never loaded.
    Pickle,
}

impl FileKind {
    pub fn name(self) -> &'static str {
        match self {
            FileKind::OpenRaster => "openraster",
            FileKind::Png => "png",
            FileKind::Jpeg => "jpeg",
            FileKind::WebP => "webp",
            FileKind::Safetensors => "safetensors",
            FileKind::Pickle => "pickle",
        }
    }
}

pub fn detect(path: &Path) -> anyhow::Result<FileKind> {
    let mut head = [0u8; 64];
    let mut file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let n = file.read(&mut head).with_context(|| format!("cannot read {}", path.display()))?;
    let head = head.get(..n).unwrap_or_default();
    let extension =
        path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).unwrap_or_default();
    let kind = if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        FileKind::Png
    } else if head.starts_with(&[0xff, 0xd8, 0xff]) {
        FileKind::Jpeg
    } else if head.starts_with(b"RIFF") && head.get(8..12) == Some(b"WEBP") {
        FileKind::WebP
    } else if head.starts_with(b"PK\x03\x04") {
        FileKind::OpenRaster
    } else if extension == "safetensors" {
        FileKind::Safetensors
    } else if matches!(extension.as_str(), "ckpt" | "pt" | "pth" | "bin") {
        FileKind::Pickle
    } else {
        bail!("{}: not an .ora, PNG, JPEG, WebP or .safetensors file", path.display());
    };
    Ok(kind)
}

/// Decodes a PNG, JPEG or WebP to straight RGBA8.
pub fn decode_image(path: &Path) -> anyhow::Result<Image<Rgba8>> {
    let reader = image::ImageReader::open(path)
        .and_then(|r| r.with_guessed_format())
        .with_context(|| format!("cannot open {}", path.display()))?;
    let decoded = reader.decode().with_context(|| format!("cannot decode {}", path.display()))?;
    let rgba = decoded.into_rgba8();
    let (width, height) = rgba.dimensions();
    Image::from_rgba_bytes(width, height, rgba.as_raw())
        .with_context(|| format!("{}: decoder returned a short buffer", path.display()))
}

/// Writes straight RGBA8 as a PNG, atomically.
pub fn save_png(path: &Path, pixels: &Image<Rgba8>) -> anyhow::Result<()> {
    ora::write_atomically(path, |file| {
        let mut encoder =
            png::Encoder::new(std::io::BufWriter::new(file), pixels.width(), pixels.height());
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        let to_ora = |e: png::EncodingError| ora::OraError::PngEncode {
            name: path.display().to_string(),
            message: e.to_string(),
        };
        let mut writer = encoder.write_header().map_err(to_ora)?;
        writer.write_image_data(pixels.as_bytes()).map_err(to_ora)?;
        writer.finish().map_err(to_ora)?;
        Ok(())
    })
    .with_context(|| format!("cannot write {}", path.display()))
}
