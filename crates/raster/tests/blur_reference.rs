//! Blurs against their references: the A1111 mask blur against the exact float64 rule computed
//! by numpy in tests/reference/pillow_reference.py (which also checks that rule against A1111's
//! real cv2.GaussianBlur calls, max |Δ| ≤ 2), and Pillow's GaussianBlur / BoxBlur byte for byte.

mod common;

use common::{diff_bytes, load_gray, load_rgba, manifest};
use pentimento_raster::{box_blur_pillow, gaussian_blur_a1111, gaussian_blur_pillow};

#[test]
fn a1111_mask_blur_matches_the_exact_rule() {
    let m = manifest();
    let cases = m["a1111_blur"].as_array().unwrap();
    assert!(cases.len() >= 18);
    let mut failures = Vec::new();
    for case in cases {
        let input = load_gray(case["input"].as_str().unwrap());
        let output = case["output"].as_str().unwrap();
        let (sx, sy) = (case["sigma_x"].as_f64().unwrap(), case["sigma_y"].as_f64().unwrap());
        let ours = gaussian_blur_a1111(&input, sx, sy).unwrap();
        let (max, count) = diff_bytes(ours.pixels(), load_gray(output).pixels());
        if max != 0 {
            failures.push(format!("{output}: max |Δ| {max}, {count} differ"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn pillow_blurs_match_byte_for_byte() {
    let m = manifest();
    let cases = m["pillow_blur"].as_array().unwrap();
    assert!(cases.len() >= 40);
    let mut failures = Vec::new();
    for case in cases {
        let input = case["input"].as_str().unwrap();
        let output = case["output"].as_str().unwrap();
        let radius = case["radius"].as_f64().unwrap() as f32;
        let gaussian = case["kind"] == "gaussian";
        let (max, count) = if input.contains("rgba") {
            let img = load_rgba(input);
            let ours = if gaussian {
                gaussian_blur_pillow(&img, radius)
            } else {
                box_blur_pillow(&img, radius)
            };
            diff_bytes(ours.unwrap().as_bytes(), load_rgba(output).as_bytes())
        } else {
            let img = load_gray(input);
            let ours = if gaussian {
                gaussian_blur_pillow(&img, radius)
            } else {
                box_blur_pillow(&img, radius)
            };
            diff_bytes(ours.unwrap().pixels(), load_gray(output).pixels())
        };
        if max != 0 {
            failures.push(format!("{output}: max |Δ| {max}, {count} differ"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
