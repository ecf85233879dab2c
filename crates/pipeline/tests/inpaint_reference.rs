//! Inpainting against the reference (tests/reference/inpaint_reference.py: A1111's img2img
//! inpaint on the tiny checkpoints, Pillow for every image operation): every manifest case —
//! whole / only masked × each masked content × 4- and 9-channel models, SDXL, borders, full
//! masks, inversion, alpha vs luminance masks, context boxes, batches. The pixel stages
//! (binary, blurred and working masks, working and filled images, overlay mask) must be
//! byte-identical; the final images must reach PSNR ≥ 40 dB with max |Δ| ≤ 3/255, and the
//! result layer composited over the input must equal our final image byte for byte.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test helpers fail loudly")]

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use pentimento_pipeline::generate::{PipelineError, ResultLayer, generate};
use pentimento_pipeline::inpaint::InpaintPlan;
use pentimento_pipeline::request::{GenerationRequest, InitImage, InpaintOptions};
use raster::blend::{BlendMode, blend_row};
use raster::{DecodeLimits, Gray8, Image, Rect, Rgba8, decode_image, decode_mask};
use sd::{Checkpoint, StableDiffusion};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

fn inpaint_dir() -> PathBuf {
    fixtures().join("inpaint")
}

fn load_png(path: &Path) -> Image<Rgba8> {
    decode_image(&std::fs::read(path).unwrap(), &DecodeLimits::default()).unwrap().image
}

fn load_gray(path: &Path) -> Image<Gray8> {
    load_png(path).map(|p| p[0])
}

/// PSNR over RGB and the largest per-channel difference.
fn compare(ours: &Image<Rgba8>, reference: &Image<Rgba8>) -> (f64, u8) {
    assert_eq!((ours.width(), ours.height()), (reference.width(), reference.height()));
    let mut sum_sq = 0f64;
    let mut max = 0u8;
    let mut n = 0f64;
    for (a, b) in ours.pixels().iter().zip(reference.pixels()) {
        for c in 0..3 {
            let d = a[c].abs_diff(b[c]);
            max = max.max(d);
            sum_sq += f64::from(d) * f64::from(d);
            n += 1.0;
        }
    }
    let mse = sum_sq / n;
    let psnr = if mse == 0.0 { f64::INFINITY } else { 10.0 * (255.0f64 * 255.0 / mse).log10() };
    (psnr, max)
}

fn context_of(case: &serde_json::Value) -> Option<Rect> {
    let c = case["context"].as_array()?;
    let v: Vec<i64> = c.iter().map(|x| x.as_i64().unwrap()).collect();
    Some(Rect::new(v[0] as i32, v[1] as i32, v[2] as u32, v[3] as u32))
}

fn options_of(case: &serde_json::Value) -> InpaintOptions {
    let mask = decode_mask(
        &std::fs::read(inpaint_dir().join(case["mask_image"].as_str().unwrap())).unwrap(),
        &DecodeLimits::default(),
    )
    .unwrap();
    InpaintOptions {
        mask,
        invert_mask: case["invert_mask"].as_bool().unwrap_or(false),
        area: case["inpaint_area"].as_str().unwrap().replace('_', " ").parse().unwrap(),
        padding_px: case["padding"].as_u64().unwrap_or(32) as u32,
        mask_blur_px: case["mask_blur"].as_u64().unwrap() as u32,
        masked_content: case["masked_content"]
            .as_str()
            .unwrap_or("original")
            .replace('_', " ")
            .parse()
            .unwrap(),
        context: context_of(case),
    }
}

fn request_of(case: &serde_json::Value) -> GenerationRequest {
    let s = |k: &str| case[k].as_str().unwrap().to_owned();
    let u = |k: &str| case[k].as_u64().unwrap();
    let mut req =
        GenerationRequest::txt2img(s("prompt"), u("width") as u32, u("height") as u32, u("seed"));
    req.negative_prompt = s("negative");
    req.steps = u("steps") as u32;
    req.cfg_scale = case["cfg"].as_f64().unwrap() as f32;
    req.batch_size = u("batch") as u32;
    req.sampler = s("sampler").parse().unwrap();
    req.schedule = s("schedule").parse().unwrap();
    req.clip_skip = u("clip_skip") as u32;
    req.init = Some(InitImage {
        image: load_png(&inpaint_dir().join(s("input_image"))),
        strength: case["strength"].as_f64().unwrap() as f32,
    });
    req.inpaint = Some(options_of(case));
    req
}

/// The layer as the editor applies it: normal blend over the base image at its rect.
fn composite_layer(base: &Image<Rgba8>, layer: &ResultLayer) -> Image<Rgba8> {
    let mut out = base.clone();
    for y in 0..layer.rect.height {
        let cy = (layer.rect.y as u32) + y;
        let x0 = layer.rect.x as usize;
        let row = out.row_mut(cy);
        blend_row(
            &mut row[x0..x0 + layer.rect.width as usize],
            layer.image.row(y),
            BlendMode::Normal,
            1.0,
        );
    }
    out
}

fn first_difference<P: raster::Pixel + PartialEq + std::fmt::Debug>(
    a: &Image<P>,
    b: &Image<P>,
) -> Option<String> {
    if (a.width(), a.height()) != (b.width(), b.height()) {
        return Some(format!("size {}x{} vs {}x{}", a.width(), a.height(), b.width(), b.height()));
    }
    let count = a.pixels().iter().zip(b.pixels()).filter(|(x, y)| x != y).count();
    let (i, (x, y)) = a.pixels().iter().zip(b.pixels()).enumerate().find(|(_, (x, y))| x != y)?;
    let w = a.width() as usize;
    Some(format!("{count} pixels differ, first at ({}, {}): {x:?} vs {y:?}", i % w, i / w))
}

/// The model-free stages, byte for byte.
fn check_pixel_stages(case: &serde_json::Value, plan: &InpaintPlan) -> Vec<String> {
    let inter = &case["intermediates"];
    let dir = inpaint_dir();
    let mut problems = Vec::new();
    let mut gray = |key: &str, ours: &Image<Gray8>| {
        if let Some(file) = inter[key].as_str()
            && let Some(d) = first_difference(ours, &load_gray(&dir.join(file)))
        {
            problems.push(format!("{key}: {d}"));
        }
    };
    gray("binary_mask", &plan.binary_mask);
    gray("blurred_mask", &plan.blurred_mask);
    gray("working_mask", &plan.working_mask);
    gray("overlay_mask", &plan.overlay_mask);
    let mut rgb = |key: &str, ours: &Image<Rgba8>| {
        if let Some(file) = inter[key].as_str()
            && let Some(d) = first_difference(ours, &load_png(&dir.join(file)))
        {
            problems.push(format!("{key}: {d}"));
        }
    };
    rgb("working_image", &plan.working_image);
    rgb("filled_image", &plan.encoder_image);
    rgb("resized_input", &plan.paste_base);
    if let Some(g) = inter["geometry"].as_object() {
        let crop = plan.crop_box.unwrap();
        let ours = [crop.x, crop.y, crop.right(), crop.bottom()];
        let theirs: Vec<i32> = g["crop_region"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap() as i32)
            .collect();
        if ours.as_slice() != theirs.as_slice() {
            problems.push(format!("crop box {ours:?} vs {theirs:?}"));
        }
    }
    let latent: Vec<f32> = inter["latent_mask"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32))
        .collect();
    if plan.latent_mask().unwrap() != latent {
        problems.push("latent mask differs".into());
    }
    problems
}

#[test]
fn every_inpaint_case_matches_the_reference() {
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(inpaint_dir().join("manifest.json")).unwrap(),
    )
    .unwrap();
    let mut models: HashMap<String, StableDiffusion> = HashMap::new();
    let mut report = Vec::new();
    let mut failures = Vec::new();
    for case in manifest["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let request = request_of(case);
        let init = &request.init.as_ref().unwrap().image;
        let plan = InpaintPlan::new(
            init,
            request.inpaint.as_ref().unwrap(),
            request.width,
            request.height,
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        for p in check_pixel_stages(case, &plan) {
            failures.push(format!("{name}: {p}"));
        }

        let checkpoint = case["checkpoint"].as_str().unwrap();
        let model = models.entry(checkpoint.to_owned()).or_insert_with(|| {
            let ckpt = Checkpoint::open(fixtures().join(checkpoint)).unwrap();
            StableDiffusion::load(&ckpt, &Device::Cpu, DType::F32).unwrap()
        });
        let out = generate(model, &request, &mut |_| ControlFlow::Continue(()))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let files = case["final"].as_array().unwrap();
        assert_eq!(out.images.len(), files.len(), "{name}");
        for (i, (ours, file)) in out.images.iter().zip(files).enumerate() {
            let reference = load_png(&inpaint_dir().join(file.as_str().unwrap()));
            let (psnr, max) = compare(ours, &reference);
            report.push(format!("{name:34} #{i}: PSNR {psnr:6.2} dB, max |Δ| {max}"));
            if psnr < 40.0 || max > 3 {
                failures.push(report.last().cloned().unwrap());
            }
            // Paste-back: unmasked pixels are the input, byte for byte.
            let unchanged = ours
                .pixels()
                .iter()
                .zip(plan.paste_base.pixels())
                .zip(plan.overlay_mask.pixels())
                .filter(|((a, b), m)| **m == 0 && a != b)
                .count();
            if unchanged != 0 {
                failures.push(format!("{name} #{i}: {unchanged} unmasked pixels changed"));
            }
            // The layer reproduces the pasted image.
            let composite = composite_layer(&plan.paste_base, &out.layers[i]);
            if let Some(d) = first_difference(&composite, ours) {
                failures.push(format!("{name} #{i}: layer composite: {d}"));
            }
        }
    }
    println!("{}", report.join("\n"));
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
}

#[test]
fn empty_masks_are_clear_errors() {
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(inpaint_dir().join("manifest.json")).unwrap(),
    )
    .unwrap();
    for case in manifest["error_cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let image = load_png(&inpaint_dir().join(case["input_image"].as_str().unwrap()));
        let err = InpaintPlan::new(&image, &options_of(case), 64, 64).unwrap_err();
        assert!(
            matches!(&err, PipelineError::InvalidRequest(m) if m.contains("mask is empty")),
            "{name}: {err}"
        );
    }
}
