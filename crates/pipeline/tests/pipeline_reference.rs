//! Whole generations against the reference (tests/reference/make_references.py: diffusers
//! modules driven by k-diffusion as A1111 drives them): every sampler and schedule, txt2img and
//! img2img, batch 2, negative prompt, long prompt, emphasis, clip skip, BREAK, SDXL, the
//! 9-channel model. Our PNG must reach PSNR ≥ 40 dB with max |Δ| ≤ 3/255.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test helpers fail loudly")]

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::PathBuf;

use candle_core::{DType, Device};
use pentimento_pipeline::generate::generate;
use pentimento_pipeline::request::{GenerationRequest, InitImage};
use raster::{DecodeLimits, Image, Rgba8, decode_image};
use sd::{Checkpoint, StableDiffusion};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

fn load_png(path: &PathBuf) -> Image<Rgba8> {
    decode_image(&std::fs::read(path).unwrap(), &DecodeLimits::default()).unwrap().image
}

/// PSNR over RGB and the largest per-channel difference.
pub fn compare(ours: &Image<Rgba8>, reference: &Image<Rgba8>) -> (f64, u8) {
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

fn request_from_job(job: &serde_json::Value) -> GenerationRequest {
    let s = |k: &str| job[k].as_str().unwrap().to_owned();
    let u = |k: &str| job[k].as_u64().unwrap();
    let mut req =
        GenerationRequest::txt2img(s("prompt"), u("width") as u32, u("height") as u32, u("seed"));
    req.negative_prompt = s("negative");
    req.steps = u("steps") as u32;
    req.cfg_scale = job["cfg"].as_f64().unwrap() as f32;
    req.batch_size = u("batch") as u32;
    req.sampler = s("sampler").parse().unwrap();
    req.schedule = s("schedule").parse().unwrap();
    req.clip_skip = u("clip_skip") as u32;
    if job["mode"] == "img2img" {
        req.init = Some(InitImage {
            image: load_png(&fixtures().join("sd").join(s("init_image"))),
            strength: job["strength"].as_f64().unwrap() as f32,
        });
    }
    req
}

#[test]
fn every_reference_job_matches() {
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("sd/pipeline.json")).unwrap(),
    )
    .unwrap();
    let mut models: HashMap<String, StableDiffusion> = HashMap::new();
    let mut report = Vec::new();
    let mut failures = Vec::new();
    for job in manifest["jobs"].as_array().unwrap() {
        let model_name = job["model"].as_str().unwrap();
        let model = models.entry(model_name.to_owned()).or_insert_with(|| {
            let ckpt =
                Checkpoint::open(fixtures().join(format!("models/tiny_{model_name}.safetensors")))
                    .unwrap();
            StableDiffusion::load(&ckpt, &Device::Cpu, DType::F32).unwrap()
        });
        let request = request_from_job(job);
        let mut steps_seen = 0;
        let out = generate(model, &request, &mut |r| {
            steps_seen = r.step;
            ControlFlow::Continue(())
        })
        .unwrap_or_else(|e| panic!("{}: {e}", job["name"]));
        let files = job["files"].as_array().unwrap();
        assert_eq!(out.images.len(), files.len(), "{}", job["name"]);
        for (i, (ours, file)) in out.images.iter().zip(files).enumerate() {
            let reference = load_png(&fixtures().join("sd").join(file.as_str().unwrap()));
            let (psnr, max) = compare(ours, &reference);
            report.push(format!(
                "{:45} #{i}: PSNR {psnr:6.2} dB, max |Δ| {max}",
                job["name"].as_str().unwrap()
            ));
            if psnr < 40.0 || max > 3 {
                failures.push(report.last().cloned().unwrap());
            }
        }
        assert!(steps_seen > 0, "{}: no progress reported", job["name"]);
    }
    println!("{}", report.join("\n"));
    assert!(failures.is_empty(), "below the parity bar:\n{}", failures.join("\n"));
}
