//! PNG decoding (colour types, bit depths, palette + tRNS, 16-bit) and text chunks against what
//! Pillow 13 reads from the same files; luminance against Pillow's convert("L").

mod common;

use common::{fixture_dir, load_gray, load_rgba, manifest};
use pentimento_raster::mask::luminance;
use pentimento_raster::{DecodeLimits, PngCompression, decode_image, decode_mask, encode_png};

#[test]
fn png_decoding_and_text_match_pillow() {
    let m = manifest();
    let cases = m["png"].as_array().unwrap();
    assert!(cases.len() >= 6);
    for case in cases {
        let input = case["input"].as_str().unwrap();
        let bytes = std::fs::read(fixture_dir().join(input)).unwrap();
        let decoded = decode_image(&bytes, &DecodeLimits::default()).unwrap();
        let want = load_rgba(case["decoded_rgba"].as_str().unwrap());
        assert_eq!(decoded.image, want, "{input}");
        let want_text: Vec<(String, String)> = case["text"]
            .as_array()
            .unwrap()
            .iter()
            .map(|kv| (kv[0].as_str().unwrap().to_owned(), kv[1].as_str().unwrap().to_owned()))
            .collect();
        assert_eq!(decoded.text, want_text, "{input}");
    }
}

#[test]
fn text_written_like_pillow_reads_back_identically() {
    // The fixture written by Pillow's add_text (tEXt, zTXt, iTXt) and our re-encoding of its
    // text hold the same chunk kinds for the same values, except that we never zip.
    let bytes = std::fs::read(fixture_dir().join("png/text.png")).unwrap();
    let decoded = decode_image(&bytes, &DecodeLimits::default()).unwrap();
    let ours = encode_png(&decoded.image, &decoded.text, PngCompression::Fast).unwrap();
    let back = decode_image(&ours, &DecodeLimits::default()).unwrap();
    assert_eq!(back.text, decoded.text);
    assert_eq!(back.image, decoded.image);
}

#[test]
fn luminance_matches_pillow_convert_l() {
    let m = manifest();
    for case in m["luma"].as_array().unwrap() {
        let rgba = load_rgba(case["input"].as_str().unwrap());
        let want = load_gray(case["output"].as_str().unwrap());
        assert_eq!(luminance(&rgba), want);
    }
}

#[test]
fn mask_loading_uses_alpha_only_when_real() {
    // rgb8.png has no alpha: luminance of its colours; la8.png has partial alpha: that alpha.
    let rgb = std::fs::read(fixture_dir().join("png/rgb8.png")).unwrap();
    let want = luminance(&load_rgba("png/rgb8_rgba.png"));
    assert_eq!(decode_mask(&rgb, &DecodeLimits::default()).unwrap(), want);
    let la = std::fs::read(fixture_dir().join("png/la8.png")).unwrap();
    let want = load_rgba("png/la8_rgba.png").map(|p| p[3]);
    assert_eq!(decode_mask(&la, &DecodeLimits::default()).unwrap(), want);
}
