//! Reading and writing PNG (with text chunks), JPEG and WebP.
//!
//! Every decoder is bounded by [`DecodeLimits`] *before* it allocates, so a hostile file (a PNG
//! that claims 100000×100000 pixels, a zTXt bomb) is a typed error rather than an out-of-memory
//! abort. PNG text chunks are read in file order, since A1111's `parameters` and other programs'
//! metadata live there; they are written as Pillow's `PngInfo.add_text` writes them.

use std::io::{Cursor, Read};

use crate::{Gray8, Image, Rgba8};

/// Upper bounds applied while decoding untrusted files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Most pixels (width × height) an image may have.
    pub max_pixels: u64,
    /// Most bytes a decoder may allocate (decoded pixels included).
    pub max_bytes: u64,
    /// Most bytes of (decompressed) text all text chunks together may hold.
    pub max_text_bytes: usize,
}

impl Default for DecodeLimits {
    /// 16384 × 16384 pixels (the largest canvas the editor allows), 2 GiB, 16 MiB of text.
    fn default() -> Self {
        Self { max_pixels: 16384 * 16384, max_bytes: 2 << 30, max_text_bytes: 16 << 20 }
    }
}

/// The file formats this module reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ImageFormat {
    Png,
    Jpeg,
    WebP,
}

impl ImageFormat {
    pub const fn name(self) -> &'static str {
        match self {
            ImageFormat::Png => "PNG",
            ImageFormat::Jpeg => "JPEG",
            ImageFormat::WebP => "WebP",
        }
    }
}

/// Why an image could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("not a PNG, JPEG or WebP image")]
    UnknownFormat,
    #[error("not a PNG file (wrong signature)")]
    NotPng,
    #[error("the {} data is truncated", .0.name())]
    Truncated(ImageFormat),
    #[error("the {} data is corrupt: {detail}", format.name())]
    Corrupt { format: ImageFormat, detail: String },
    #[error("the image is {width}×{height} pixels, more than the limit of {max_pixels}")]
    TooLarge { width: u32, height: u32, max_pixels: u64 },
    #[error("decoding the {} image needs more than the memory limit of {max_bytes} bytes", format.name())]
    MemoryLimit { format: ImageFormat, max_bytes: u64 },
    #[error("the {} image uses a feature that is not supported: {detail}", format.name())]
    Unsupported { format: ImageFormat, detail: String },
    #[error("the image has no pixels ({width}×{height})")]
    Empty { width: u32, height: u32 },
    #[error("PNG text chunks hold more than the limit of {max_bytes} bytes")]
    TextTooLarge { max_bytes: usize },
    #[error("PNG text key {key:?} must be 1 to 79 Latin-1 characters without NUL")]
    InvalidTextKey { key: String },
    #[error("JPEG quality {0} is outside 1..=100")]
    InvalidQuality(u8),
    #[error("could not encode the {} image: {detail}", format.name())]
    Encode { format: ImageFormat, detail: String },
}

/// A decoded image with the PNG text chunks it carried (empty for JPEG and WebP).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedImage {
    pub image: Image<Rgba8>,
    pub format: ImageFormat,
    /// `(key, value)` of every tEXt, zTXt and iTXt chunk, in file order (duplicates kept).
    pub text: Vec<(String, String)>,
}

/// zlib effort for PNG writing: `Fast` for saves the user waits on, `Best` for small exports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PngCompression {
    Fast,
    #[default]
    Balanced,
    Best,
}

const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];

/// Recognises PNG, JPEG and WebP by their leading bytes.
pub fn detect_format(bytes: &[u8]) -> Option<ImageFormat> {
    if bytes.starts_with(&PNG_SIGNATURE) {
        Some(ImageFormat::Png)
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        Some(ImageFormat::Jpeg)
    } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        Some(ImageFormat::WebP)
    } else {
        None
    }
}

/// Decodes a PNG, JPEG or WebP file to straight-alpha RGBA8.
pub fn decode_image(bytes: &[u8], limits: &DecodeLimits) -> Result<DecodedImage, CodecError> {
    match detect_format(bytes) {
        Some(ImageFormat::Png) => decode_png(bytes, limits),
        Some(format) => decode_with_image_crate(bytes, format, limits),
        None => Err(CodecError::UnknownFormat),
    }
}

fn check_size(width: u32, height: u32, limits: &DecodeLimits) -> Result<(), CodecError> {
    if width == 0 || height == 0 {
        return Err(CodecError::Empty { width, height });
    }
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(CodecError::TooLarge { width, height, max_pixels: limits.max_pixels });
    }
    Ok(())
}

/// Decodes any PNG (every colour type and bit depth, palette and tRNS transparency) to RGBA8.
/// 16-bit samples keep their high byte, as Pillow does.
pub fn decode_png(bytes: &[u8], limits: &DecodeLimits) -> Result<DecodedImage, CodecError> {
    if !bytes.starts_with(&PNG_SIGNATURE) {
        return Err(CodecError::NotPng);
    }
    let png_limits = png::Limits { bytes: usize::try_from(limits.max_bytes).unwrap_or(usize::MAX) };
    let mut decoder = png::Decoder::new_with_limits(Cursor::new(bytes), png_limits);
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    // Text is parsed from the chunk stream below, to keep file order across chunk types.
    decoder.set_ignore_text_chunk(true);
    decoder.set_ignore_iccp_chunk(true);
    let header = decoder.read_header_info().map_err(|e| png_error(e, limits))?;
    check_size(header.width, header.height, limits)?;
    let mut reader = decoder.read_info().map_err(|e| png_error(e, limits))?;
    let size = reader
        .output_buffer_size()
        .ok_or(CodecError::MemoryLimit { format: ImageFormat::Png, max_bytes: limits.max_bytes })?;
    if size as u64 > limits.max_bytes {
        return Err(CodecError::MemoryLimit {
            format: ImageFormat::Png,
            max_bytes: limits.max_bytes,
        });
    }
    let mut buf = vec![0u8; size];
    let frame = reader.next_frame(&mut buf).map_err(|e| png_error(e, limits))?;
    buf.truncate(frame.buffer_size());
    let (width, height) = (frame.width, frame.height);
    let pixels: Vec<Rgba8> = match frame.color_type {
        png::ColorType::Rgba => buf.as_chunks::<4>().0.to_vec(),
        png::ColorType::Rgb => {
            buf.as_chunks::<3>().0.iter().map(|&[r, g, b]| [r, g, b, 255]).collect()
        }
        png::ColorType::GrayscaleAlpha => {
            buf.as_chunks::<2>().0.iter().map(|&[v, a]| [v, v, v, a]).collect()
        }
        png::ColorType::Grayscale => buf.iter().map(|&v| [v, v, v, 255]).collect(),
        png::ColorType::Indexed => {
            return Err(CodecError::Unsupported {
                format: ImageFormat::Png,
                detail: "palette image was not expanded".into(),
            });
        }
    };
    let image =
        Image::from_pixels(width, height, pixels).ok_or(CodecError::Truncated(ImageFormat::Png))?;
    let text = read_png_text(bytes, limits)?;
    Ok(DecodedImage { image, format: ImageFormat::Png, text })
}

fn png_error(e: png::DecodingError, limits: &DecodeLimits) -> CodecError {
    match e {
        png::DecodingError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            CodecError::Truncated(ImageFormat::Png)
        }
        png::DecodingError::LimitsExceeded => {
            CodecError::MemoryLimit { format: ImageFormat::Png, max_bytes: limits.max_bytes }
        }
        other => {
            let detail = other.to_string();
            // The png crate reports a stream that ends early in several ways.
            if detail.contains("EOF") || detail.contains("end of") || detail.contains("truncated") {
                CodecError::Truncated(ImageFormat::Png)
            } else {
                CodecError::Corrupt { format: ImageFormat::Png, detail }
            }
        }
    }
}

/// The tEXt, zTXt and iTXt chunks of a PNG as `(key, value)` in file order, without decoding
/// pixels (cheap: for `info` on large files). Malformed text chunks are skipped, as a broken
/// comment should not make the image unreadable; compressed text is bounded by
/// `limits.max_text_bytes`.
pub fn read_png_text(
    bytes: &[u8],
    limits: &DecodeLimits,
) -> Result<Vec<(String, String)>, CodecError> {
    let mut rest = bytes.strip_prefix(&PNG_SIGNATURE).ok_or(CodecError::NotPng)?;
    let mut out = Vec::new();
    let mut budget = limits.max_text_bytes;
    while let Some((len, tail)) = rest.split_first_chunk::<4>() {
        let len = u32::from_be_bytes(*len) as usize;
        let Some((kind, tail)) = tail.split_first_chunk::<4>() else { break };
        let Some(data) = tail.get(..len) else { break };
        rest = tail.get(len + 4..).unwrap_or(&[]);
        let entry = match kind {
            b"tEXt" => parse_text(data),
            b"zTXt" => parse_ztxt(data, &mut budget, limits)?,
            b"iTXt" => parse_itxt(data, &mut budget, limits)?,
            b"IEND" => break,
            _ => continue,
        };
        if let Some((key, value)) = entry {
            budget = budget
                .checked_sub(key.len() + value.len())
                .ok_or(CodecError::TextTooLarge { max_bytes: limits.max_text_bytes })?;
            out.push((key, value));
        }
    }
    Ok(out)
}

fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

fn split_keyword(data: &[u8]) -> Option<(String, &[u8])> {
    let nul = data.iter().position(|&b| b == 0)?;
    let key = data.get(..nul)?;
    if key.is_empty() || key.len() > 79 {
        return None;
    }
    Some((latin1(key), data.get(nul + 1..)?))
}

fn parse_text(data: &[u8]) -> Option<(String, String)> {
    let (key, value) = split_keyword(data)?;
    Some((key, latin1(value)))
}

/// Inflates at most `budget` bytes; more is a [`CodecError::TextTooLarge`], bad data `None`.
fn inflate(
    data: &[u8],
    budget: usize,
    limits: &DecodeLimits,
) -> Result<Option<Vec<u8>>, CodecError> {
    let mut out = Vec::new();
    let mut decoder = flate2::read::ZlibDecoder::new(data).take(budget as u64 + 1);
    if decoder.read_to_end(&mut out).is_err() {
        return Ok(None);
    }
    if out.len() > budget {
        return Err(CodecError::TextTooLarge { max_bytes: limits.max_text_bytes });
    }
    Ok(Some(out))
}

fn parse_ztxt(
    data: &[u8],
    budget: &mut usize,
    limits: &DecodeLimits,
) -> Result<Option<(String, String)>, CodecError> {
    let Some((key, rest)) = split_keyword(data) else { return Ok(None) };
    let Some((&0, compressed)) = rest.split_first() else { return Ok(None) };
    Ok(inflate(compressed, *budget, limits)?.map(|text| (key, latin1(&text))))
}

fn parse_itxt(
    data: &[u8],
    budget: &mut usize,
    limits: &DecodeLimits,
) -> Result<Option<(String, String)>, CodecError> {
    let Some((key, rest)) = split_keyword(data) else { return Ok(None) };
    let Some((&[flag, method], rest)) = rest.split_first_chunk::<2>() else { return Ok(None) };
    // Language tag and translated keyword, each NUL-terminated.
    let mut parts = rest.splitn(3, |&b| b == 0);
    let (Some(_lang), Some(_translated), Some(text)) = (parts.next(), parts.next(), parts.next())
    else {
        return Ok(None);
    };
    let raw = match (flag, method) {
        (0, _) => text.to_vec(),
        (1, 0) => match inflate(text, *budget, limits)? {
            Some(t) => t,
            None => return Ok(None),
        },
        _ => return Ok(None),
    };
    Ok(String::from_utf8(raw).ok().map(|value| (key, value)))
}

fn decode_with_image_crate(
    bytes: &[u8],
    format: ImageFormat,
    limits: &DecodeLimits,
) -> Result<DecodedImage, CodecError> {
    let image_format = match format {
        ImageFormat::Png => image::ImageFormat::Png,
        ImageFormat::Jpeg => image::ImageFormat::Jpeg,
        ImageFormat::WebP => image::ImageFormat::WebP,
    };
    let map = |e: image::ImageError| image_error(e, format, limits);
    let (width, height) = image::ImageReader::with_format(Cursor::new(bytes), image_format)
        .into_dimensions()
        .map_err(map)?;
    check_size(width, height, limits)?;
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), image_format);
    let mut image_limits = image::Limits::default();
    image_limits.max_alloc = Some(limits.max_bytes);
    reader.limits(image_limits);
    let rgba = reader.decode().map_err(map)?.into_rgba8();
    let (w, h) = rgba.dimensions();
    let image = Image::from_rgba_bytes(w, h, rgba.as_raw()).ok_or(CodecError::Truncated(format))?;
    Ok(DecodedImage { image, format, text: Vec::new() })
}

fn image_error(e: image::ImageError, format: ImageFormat, limits: &DecodeLimits) -> CodecError {
    match e {
        image::ImageError::Limits(_) => {
            CodecError::MemoryLimit { format, max_bytes: limits.max_bytes }
        }
        image::ImageError::Unsupported(u) => {
            CodecError::Unsupported { format, detail: u.to_string() }
        }
        image::ImageError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            CodecError::Truncated(format)
        }
        other => {
            let detail = other.to_string();
            if detail.contains("EOF") || detail.contains("end of") || detail.contains("truncated") {
                CodecError::Truncated(format)
            } else {
                CodecError::Corrupt { format, detail }
            }
        }
    }
}

/// Encodes straight-alpha RGBA8 as an 8-bit RGBA PNG with text chunks before the image data.
///
/// Text is written as Pillow's `PngInfo.add_text(key, value)` writes it: `tEXt` when the value is
/// Latin-1, otherwise an uncompressed `iTXt` (UTF-8, empty language and translated keyword).
pub fn encode_png(
    img: &Image<Rgba8>,
    text: &[(String, String)],
    compression: PngCompression,
) -> Result<Vec<u8>, CodecError> {
    encode_png_bytes(
        img.width(),
        img.height(),
        png::ColorType::Rgba,
        img.as_bytes(),
        text,
        compression,
    )
}

/// Encodes an 8-bit grey image (masks, selections) as a greyscale PNG; text as [`encode_png`].
pub fn encode_png_gray(
    img: &Image<Gray8>,
    text: &[(String, String)],
    compression: PngCompression,
) -> Result<Vec<u8>, CodecError> {
    encode_png_bytes(
        img.width(),
        img.height(),
        png::ColorType::Grayscale,
        img.pixels(),
        text,
        compression,
    )
}

fn encode_png_bytes(
    width: u32,
    height: u32,
    color: png::ColorType,
    data: &[u8],
    text: &[(String, String)],
    compression: PngCompression,
) -> Result<Vec<u8>, CodecError> {
    if width == 0 || height == 0 {
        return Err(CodecError::Empty { width, height });
    }
    let chunks = text.iter().map(|(k, v)| text_chunk(k, v)).collect::<Result<Vec<_>, _>>()?;
    let encode_err = |e: png::EncodingError| CodecError::Encode {
        format: ImageFormat::Png,
        detail: e.to_string(),
    };
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(color);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(match compression {
        PngCompression::Fast => png::Compression::Fast,
        PngCompression::Balanced => png::Compression::Balanced,
        PngCompression::Best => png::Compression::High,
    });
    let mut writer = encoder.write_header().map_err(encode_err)?;
    for (kind, payload) in &chunks {
        writer.write_chunk(png::chunk::ChunkType(*kind), payload).map_err(encode_err)?;
    }
    writer.write_image_data(data).map_err(encode_err)?;
    writer.finish().map_err(encode_err)?;
    Ok(out)
}

/// Pillow's `PngInfo.add_text` chunk for one `(key, value)`.
fn text_chunk(key: &str, value: &str) -> Result<([u8; 4], Vec<u8>), CodecError> {
    let key_bytes = to_latin1(key)
        .filter(|k| !k.is_empty() && k.len() <= 79 && !k.contains(&0))
        .ok_or_else(|| CodecError::InvalidTextKey { key: key.to_owned() })?;
    let mut payload = key_bytes;
    payload.push(0);
    match to_latin1(value) {
        Some(latin) => {
            payload.extend_from_slice(&latin);
            Ok((*b"tEXt", payload))
        }
        None => {
            // compression flag 0, method 0, empty language tag, empty translated keyword
            payload.extend_from_slice(&[0, 0, 0, 0]);
            payload.extend_from_slice(value.as_bytes());
            Ok((*b"iTXt", payload))
        }
    }
}

fn to_latin1(s: &str) -> Option<Vec<u8>> {
    s.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect()
}

/// Encodes as baseline JPEG at `quality` (1..=100). JPEG has no alpha: the colour channels are
/// written as they are, like Pillow's `convert("RGB")` (flatten first for another background).
pub fn encode_jpeg(img: &Image<Rgba8>, quality: u8) -> Result<Vec<u8>, CodecError> {
    if !(1..=100).contains(&quality) {
        return Err(CodecError::InvalidQuality(quality));
    }
    if img.width() == 0 || img.height() == 0 {
        return Err(CodecError::Empty { width: img.width(), height: img.height() });
    }
    let rgb: Vec<u8> = img.pixels().iter().flat_map(|&[r, g, b, _]| [r, g, b]).collect();
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode(&rgb, img.width(), img.height(), image::ExtendedColorType::Rgb8)
        .map_err(|e| CodecError::Encode { format: ImageFormat::Jpeg, detail: e.to_string() })?;
    Ok(out)
}

/// Encodes as lossless WebP with alpha.
pub fn encode_webp_lossless(img: &Image<Rgba8>) -> Result<Vec<u8>, CodecError> {
    if img.width() == 0 || img.height() == 0 {
        return Err(CodecError::Empty { width: img.width(), height: img.height() });
    }
    let mut out = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut out)
        .encode(img.as_bytes(), img.width(), img.height(), image::ExtendedColorType::Rgba8)
        .map_err(|e| CodecError::Encode { format: ImageFormat::WebP, detail: e.to_string() })?;
    Ok(out)
}

/// Loads an inpaint mask from a PNG, JPEG or WebP file as `product.md` defines it: the alpha
/// channel if the image has real alpha (some pixel not 255), else the luminance as Pillow's
/// `convert("L")` computes it. White (255) means "regenerate".
pub fn decode_mask(bytes: &[u8], limits: &DecodeLimits) -> Result<Image<Gray8>, CodecError> {
    let decoded = decode_image(bytes, limits)?;
    Ok(crate::mask::mask_from_rgba(&decoded.image))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Image<Rgba8> {
        let mut img = Image::new(7, 5);
        for (i, p) in img.pixels_mut().iter_mut().enumerate() {
            *p = [
                (i * 37) as u8,
                (i * 11) as u8,
                (255 - i * 5) as u8,
                if i % 3 == 0 { 255 } else { (i * 9) as u8 },
            ];
        }
        img
    }

    #[test]
    fn png_round_trip_with_text_in_order() {
        let img = sample();
        let text = vec![
            ("parameters".to_owned(), "a cat\nSteps: 20, Seed: 1".to_owned()),
            ("Title".to_owned(), "Café ☕".to_owned()),
            ("Author".to_owned(), "Zoë".to_owned()),
        ];
        let bytes = encode_png(&img, &text, PngCompression::Fast).unwrap();
        let back = decode_image(&bytes, &DecodeLimits::default()).unwrap();
        assert_eq!(back.image, img);
        assert_eq!(back.format, ImageFormat::Png);
        assert_eq!(back.text, text);
        // tEXt for Latin-1, iTXt otherwise (Pillow's add_text).
        let find = |kind: &[u8]| bytes.windows(4).filter(|w| *w == kind).count();
        assert_eq!(find(b"tEXt"), 2);
        assert_eq!(find(b"iTXt"), 1);
    }

    #[test]
    fn gray_png_round_trip() {
        let img = Image::from_pixels(3, 2, vec![0u8, 50, 100, 150, 200, 255]).unwrap();
        let bytes = encode_png_gray(&img, &[], PngCompression::Best).unwrap();
        let back = decode_png(&bytes, &DecodeLimits::default()).unwrap();
        assert_eq!(back.image.pixels()[4], [200, 200, 200, 255]);
        assert_eq!(decode_mask(&bytes, &DecodeLimits::default()).unwrap(), img);
    }

    #[test]
    fn bad_keys_and_quality_are_errors() {
        let img = sample();
        for key in ["", "ключ", &"k".repeat(80)] {
            let r = encode_png(&img, &[(key.to_owned(), "v".to_owned())], PngCompression::Fast);
            assert!(matches!(r, Err(CodecError::InvalidTextKey { .. })), "{key}");
        }
        assert!(matches!(encode_jpeg(&img, 0), Err(CodecError::InvalidQuality(0))));
        assert!(matches!(
            encode_png(&Image::new(0, 3), &[], PngCompression::Fast),
            Err(CodecError::Empty { .. })
        ));
    }

    #[test]
    fn hostile_inputs_give_typed_errors() {
        let limits = DecodeLimits::default();
        assert!(matches!(decode_image(b"hello", &limits), Err(CodecError::UnknownFormat)));
        assert!(matches!(decode_png(b"\xff\xd8\xff", &limits), Err(CodecError::NotPng)));
        let bytes = encode_png(&sample(), &[], PngCompression::Fast).unwrap();
        for cut in [10, 30, bytes.len() - 20] {
            let r = decode_png(&bytes[..cut], &limits);
            assert!(
                matches!(r, Err(CodecError::Truncated(_) | CodecError::Corrupt { .. })),
                "{cut}: {r:?}"
            );
        }
        // A header claiming 100000×100000 pixels is refused before any allocation.
        let mut huge = bytes.clone();
        huge[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        huge[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let crc = crc_of(&huge[12..29]);
        huge[29..33].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(
            decode_png(&huge, &limits),
            Err(CodecError::TooLarge { width: 100_000, .. })
        ));
        let tight = DecodeLimits { max_pixels: 10, ..limits };
        assert!(matches!(decode_png(&bytes, &tight), Err(CodecError::TooLarge { .. })));
    }

    fn crc_of(data: &[u8]) -> u32 {
        // CRC-32 (IEEE), bitwise; only for building the test file.
        let mut crc = 0xffff_ffffu32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }

    #[test]
    fn ztxt_bomb_is_refused() {
        use std::io::Write;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(&vec![b'a'; 1 << 20]).unwrap();
        let mut data = b"Comment\0\0".to_vec();
        data.extend(z.finish().unwrap());
        let mut png = PNG_SIGNATURE.to_vec();
        png.extend((data.len() as u32).to_be_bytes());
        png.extend(b"zTXt");
        png.extend(&data);
        png.extend([0; 4]);
        let limits = DecodeLimits { max_text_bytes: 1000, ..DecodeLimits::default() };
        assert!(matches!(read_png_text(&png, &limits), Err(CodecError::TextTooLarge { .. })));
        let text = read_png_text(&png, &DecodeLimits::default()).unwrap();
        assert_eq!(text[0].1.len(), 1 << 20);
    }

    #[test]
    fn jpeg_and_webp_round_trip() {
        let img = sample();
        let webp = encode_webp_lossless(&img).unwrap();
        let back = decode_image(&webp, &DecodeLimits::default()).unwrap();
        assert_eq!(back.format, ImageFormat::WebP);
        assert_eq!(back.image, img);
        let opaque = Image::filled(16, 16, [200, 100, 50, 255]);
        let jpeg = encode_jpeg(&opaque, 95).unwrap();
        let back = decode_image(&jpeg, &DecodeLimits::default()).unwrap();
        assert_eq!(back.format, ImageFormat::Jpeg);
        for (a, b) in back.image.pixels().iter().zip(opaque.pixels()) {
            assert!(a.iter().zip(b).all(|(x, y)| x.abs_diff(*y) <= 3), "{a:?} vs {b:?}");
        }
        assert!(decode_image(&jpeg[..jpeg.len() / 2], &DecodeLimits::default()).is_err());
    }
}
