//! PNG decoding with the size checked before any pixel buffer exists, and fast encoding.

use std::io::Cursor;

use raster::{Gray8, Image, Rgba8};

use crate::{Limits, OraError};

/// Memory the PNG decoder may use besides the output (text chunks, ICC profiles, row buffers).
const DECODER_METADATA_BYTES: usize = 64 << 20;

/// A decoded 8-bit PNG: width, height, channel count (1–4) and the bytes.
struct Decoded {
    width: u32,
    height: u32,
    channels: usize,
    bytes: Vec<u8>,
}

fn png_error(name: &str, error: impl std::fmt::Display) -> OraError {
    OraError::Png { name: name.to_owned(), message: error.to_string() }
}

/// Checks a declared size against the limits; `what` names the image in the error.
pub(crate) fn check_size(
    what: &str,
    width: u64,
    height: u64,
    limits: &Limits,
) -> Result<(), OraError> {
    let side = u64::from(limits.max_side_px);
    if width > side || height > side {
        return Err(OraError::ImageTooLarge {
            what: what.to_owned(),
            width,
            height,
            limit: format!("{side} px per side"),
        });
    }
    if width.saturating_mul(height) > limits.max_image_px {
        return Err(OraError::ImageTooLarge {
            what: what.to_owned(),
            width,
            height,
            limit: format!("{} px per image", limits.max_image_px),
        });
    }
    Ok(())
}

/// The width and height a PNG declares, read from its header without decoding pixels.
pub(crate) fn dimensions(name: &str, bytes: &[u8]) -> Result<(u32, u32), OraError> {
    let mut decoder = png::Decoder::new_with_limits(
        Cursor::new(bytes),
        png::Limits { bytes: DECODER_METADATA_BYTES },
    );
    let header = decoder.read_header_info().map_err(|e| png_error(name, e))?;
    Ok((header.width, header.height))
}

fn decode(name: &str, bytes: &[u8], limits: &Limits) -> Result<Decoded, OraError> {
    let mut decoder = png::Decoder::new_with_limits(
        Cursor::new(bytes),
        png::Limits { bytes: DECODER_METADATA_BYTES },
    );
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let header = decoder.read_header_info().map_err(|e| png_error(name, e))?;
    check_size(name, u64::from(header.width), u64::from(header.height), limits)?;
    let mut reader = decoder.read_info().map_err(|e| png_error(name, e))?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| png_error(name, "image too large for this machine"))?;
    let mut buffer = vec![0; size];
    let frame = reader.next_frame(&mut buffer).map_err(|e| png_error(name, e))?;
    buffer.truncate(frame.buffer_size());
    let channels = frame.color_type.samples();
    if frame.bit_depth != png::BitDepth::Eight {
        return Err(png_error(name, "unexpected bit depth after normalisation"));
    }
    Ok(Decoded { width: frame.width, height: frame.height, channels, bytes: buffer })
}

/// Decodes any PNG (grey, grey+alpha, RGB, RGBA, palette; 1–16 bits) to straight RGBA8.
pub(crate) fn decode_rgba(
    name: &str,
    bytes: &[u8],
    limits: &Limits,
) -> Result<Image<Rgba8>, OraError> {
    let d = decode(name, bytes, limits)?;
    let pixels: Vec<Rgba8> = match d.channels {
        1 => d.bytes.iter().map(|&g| [g, g, g, 255]).collect(),
        2 => d.bytes.as_chunks::<2>().0.iter().map(|&[g, a]| [g, g, g, a]).collect(),
        3 => d.bytes.as_chunks::<3>().0.iter().map(|&[r, g, b]| [r, g, b, 255]).collect(),
        4 => d.bytes.as_chunks::<4>().0.to_vec(),
        n => return Err(png_error(name, format!("unsupported channel count {n}"))),
    };
    Image::from_pixels(d.width, d.height, pixels)
        .ok_or_else(|| png_error(name, "pixel data shorter than the image"))
}

/// Decodes a PNG to 8-bit grey: grey images as they are; colour images by their alpha if they
/// have one, else by their red channel (a mask saved by another tool as black/white RGB).
pub(crate) fn decode_gray(
    name: &str,
    bytes: &[u8],
    limits: &Limits,
) -> Result<Image<Gray8>, OraError> {
    let d = decode(name, bytes, limits)?;
    let pixels: Vec<Gray8> = match d.channels {
        1 => d.bytes,
        2 => d.bytes.as_chunks::<2>().0.iter().map(|&[g, _]| g).collect(),
        3 => d.bytes.as_chunks::<3>().0.iter().map(|&[r, _, _]| r).collect(),
        4 => d.bytes.as_chunks::<4>().0.iter().map(|&[_, _, _, a]| a).collect(),
        n => return Err(png_error(name, format!("unsupported channel count {n}"))),
    };
    Image::from_pixels(d.width, d.height, pixels)
        .ok_or_else(|| png_error(name, "pixel data shorter than the image"))
}

fn encode(
    name: &str,
    width: u32,
    height: u32,
    color: png::ColorType,
    data: &[u8],
) -> Result<Vec<u8>, OraError> {
    let err = |e: png::EncodingError| OraError::PngEncode {
        name: name.to_owned(),
        message: e.to_string(),
    };
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(color);
    encoder.set_depth(png::BitDepth::Eight);
    // fdeflate: several times faster than zlib's default at a slightly larger file.
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder.write_header().map_err(err)?;
    writer.write_image_data(data).map_err(err)?;
    writer.finish().map_err(err)?;
    Ok(out)
}

/// Encodes straight RGBA8 as an 8-bit RGBA PNG. A 0×0 image (an empty layer) is written as one
/// transparent pixel, since PNG cannot be empty.
pub(crate) fn encode_rgba(name: &str, image: &Image<Rgba8>) -> Result<Vec<u8>, OraError> {
    if image.width() == 0 || image.height() == 0 {
        return encode(name, 1, 1, png::ColorType::Rgba, &[0; 4]);
    }
    encode(name, image.width(), image.height(), png::ColorType::Rgba, image.as_bytes())
}

/// Encodes 8-bit grey as a grey PNG.
pub(crate) fn encode_gray(name: &str, image: &Image<Gray8>) -> Result<Vec<u8>, OraError> {
    if image.width() == 0 || image.height() == 0 {
        return encode(name, 1, 1, png::ColorType::Grayscale, &[0]);
    }
    encode(name, image.width(), image.height(), png::ColorType::Grayscale, image.pixels())
}
