//! `resize_rgba` / `resize_gray` against Pillow 13 `Image.resize`: byte-identical on every fixture
//! (RGBA and L; NEAREST, BILINEAR, BICUBIC, LANCZOS; up, down, one axis only, to 1×1).

mod common;

use common::{diff_bytes, load_gray, load_rgba, manifest};
use pentimento_raster::{ResampleFilter, resize_gray, resize_rgba};

#[allow(clippy::panic, reason = "test helper")]
fn filter(name: &str) -> ResampleFilter {
    match name {
        "nearest" => ResampleFilter::Nearest,
        "bilinear" => ResampleFilter::Bilinear,
        "bicubic" => ResampleFilter::Bicubic,
        "lanczos" => ResampleFilter::Lanczos3,
        other => panic!("unknown filter {other}"),
    }
}

#[test]
fn resize_matches_pillow_byte_for_byte() {
    let m = manifest();
    let cases = m["resize"].as_array().unwrap();
    assert!(cases.len() >= 60);
    let mut failures = Vec::new();
    for case in cases {
        let input = case["input"].as_str().unwrap();
        let output = case["output"].as_str().unwrap();
        let (w, h) =
            (case["width"].as_u64().unwrap() as u32, case["height"].as_u64().unwrap() as u32);
        let f = filter(case["filter"].as_str().unwrap());
        let (max, count) = if input.contains("rgba") {
            let ours = resize_rgba(&load_rgba(input), w, h, f).unwrap();
            diff_bytes(ours.as_bytes(), load_rgba(output).as_bytes())
        } else {
            let ours = resize_gray(&load_gray(input), w, h, f).unwrap();
            diff_bytes(ours.pixels(), load_gray(output).pixels())
        };
        if max != 0 {
            failures.push(format!("{output}: max |Δ| {max}, {count} bytes differ"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
