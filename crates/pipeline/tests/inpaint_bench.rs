//! Benchmark (ignored; prints figures, asserts nothing about time): "only masked" inpainting of
//! a small region of a 3072×3072 canvas against the same region of a 512×512 canvas. The model
//! sees the same working-size crop either way, so the generation costs the same; only the crop
//! (mask blur, crop box, fit-and-fill: `InpaintPlan::new`) and the paste-back scale with the
//! canvas.
//!
//! ```sh
//! cargo test --release -p pentimento-pipeline --test inpaint_bench -- --ignored --nocapture
//! # a full-size SD1.5 with random weights built in memory (minutes per run on a CPU):
//! PENTIMENTO_BENCH_SD15=1 cargo test --release -p pentimento-pipeline --test inpaint_bench \
//!     -- --ignored --nocapture
//! ```
//! `PENTIMENTO_BENCH_WORKING` sets the working size (default 128 for the tiny model, 512 for
//! SD1.5), `PENTIMENTO_BENCH_STEPS` the steps (default 8 for the tiny model, 2 for SD1.5;
//! strength 0.75 runs floor(0.75·steps) of them).
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::print_stdout,
    reason = "a benchmark that prints"
)]

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::Instant;

use candle_core::{DType, Device};
use pentimento_pipeline::generate::generate;
use pentimento_pipeline::inpaint::InpaintPlan;
use pentimento_pipeline::request::{
    GenerationRequest, InitImage, InpaintArea, InpaintOptions, MaskedContent,
};
use raster::{Gray8, Image, Rgba8};
use sd::{Checkpoint, StableDiffusion};

const MASK_SIDE_PX: u32 = 64;

/// A deterministic opaque image with detail everywhere (so nothing compresses to a constant).
fn canvas(side: u32) -> Image<Rgba8> {
    let mut img = Image::new(side, side);
    for y in 0..side {
        for x in 0..side {
            let v = (x.wrapping_mul(7) ^ y.wrapping_mul(13)).wrapping_mul(2_654_435_761);
            img.set(x, y, [(v >> 24) as u8, (v >> 16) as u8, ((x + y) & 255) as u8, 255]);
        }
    }
    img
}

/// A `MASK_SIDE_PX` square in the middle of the canvas.
fn centred_mask(side: u32) -> Image<Gray8> {
    let mut mask = Image::new(side, side);
    let start = side / 2 - MASK_SIDE_PX / 2;
    for y in start..start + MASK_SIDE_PX {
        for x in start..start + MASK_SIDE_PX {
            mask.set(x, y, 255);
        }
    }
    mask
}

fn request(side: u32, working: u32, steps: u32) -> GenerationRequest {
    let mut request =
        GenerationRequest::txt2img("a red fox in a snowy forest", working, working, 7);
    request.steps = steps;
    request.sampler = sampling::SamplerKind::Euler;
    request.init = Some(InitImage { image: canvas(side), strength: 0.75 });
    request.inpaint = Some(InpaintOptions {
        mask: centred_mask(side),
        invert_mask: false,
        area: InpaintArea::OnlyMasked,
        padding_px: 32,
        mask_blur_px: 4,
        masked_content: MaskedContent::Original,
        context: None,
    });
    request
}

/// Median seconds of `repeats` runs.
fn median_seconds(repeats: usize, mut run: impl FnMut()) -> f64 {
    let mut times: Vec<f64> = (0..repeats.max(1))
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn env_u32(name: &str, default: u32) -> u32 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// How one model is timed: working size, steps, and repeats of the whole generation (the crop
/// and the paste always take the median of 5).
#[derive(Clone, Copy)]
struct Setup {
    working: u32,
    steps: u32,
    repeats: usize,
    /// One untimed generation first (allocator and thread-pool warm-up).
    warm_up: bool,
}

fn bench(label: &str, model: &StableDiffusion, setup: &Setup) {
    let Setup { working, steps, repeats, warm_up } = *setup;
    println!(
        "{label}: only-masked inpaint of a {MASK_SIDE_PX}² mask, working size {working}², \
         {steps} steps at strength 0.75, median of {repeats}"
    );
    let mut generation = Vec::new();
    for side in [512u32, 3072] {
        let request = request(side, working, steps);
        let (init, options) = (request.init.as_ref().unwrap(), request.inpaint.as_ref().unwrap());
        let crop_s =
            median_seconds(5, || drop(InpaintPlan::new(&init.image, options, working, working)));
        let plan = InpaintPlan::new(&init.image, options, working, working).unwrap();
        // The step that used to dominate the crop: the mask blur over the whole canvas, against
        // the blur of the mask's neighbourhood that the plan now does (same bytes).
        let binary = raster::mask::threshold(&options.mask, 128);
        let full_blur_s =
            median_seconds(5, || drop(raster::gaussian_blur_a1111(&binary, 4.0, 4.0)));
        let sparse_blur_s =
            median_seconds(5, || drop(raster::gaussian_blur_a1111_sparse(&binary, 4.0, 4.0)));
        // Paste a working-size image of the right size (what generate pastes).
        let generated = plan.working_image.clone();
        let paste_s = median_seconds(5, || drop(plan.paste_back(&generated).unwrap()));
        let run = || {
            generate(model, &request, &mut |_| ControlFlow::Continue(())).unwrap();
        };
        if warm_up {
            run();
        }
        let total_s = median_seconds(repeats, run);
        let model_s = total_s - crop_s - paste_s;
        generation.push(model_s);
        println!(
            "  canvas {side:4}²: total {total_s:8.3} s = crop {crop_s:7.3} s + paste {paste_s:7.3} \
             s + generation {model_s:8.3} s   (crop box {:?})",
            plan.crop_box.unwrap()
        );
        println!(
            "                 mask blur: whole canvas {full_blur_s:7.3} s, around the mask \
             {sparse_blur_s:7.3} s"
        );
    }
    println!(
        "  generation 3072² / 512²: {:.3}; crop + paste is the only part that grows",
        generation[1] / generation[0]
    );
}

#[test]
#[ignore = "benchmark: prints timings; run with --ignored --nocapture (release build)"]
fn only_masked_inpaint_costs_the_same_on_a_big_canvas_except_crop_and_paste() {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
    let checkpoint = Checkpoint::open(fixtures.join("models/tiny_sd1.safetensors")).unwrap();
    let tiny = StableDiffusion::load(&checkpoint, &Device::Cpu, DType::F32).unwrap();
    let setup = Setup {
        working: env_u32("PENTIMENTO_BENCH_WORKING", 128),
        steps: env_u32("PENTIMENTO_BENCH_STEPS", 8),
        repeats: 5,
        warm_up: true,
    };
    bench("tiny SD1 test model", &tiny, &setup);
    drop(tiny);
    if std::env::var_os("PENTIMENTO_BENCH_SD15").is_some() {
        let start = Instant::now();
        let sd15 = sd::bench::random_model(sd::bench::BenchModel::Sd15, &Device::Cpu).unwrap();
        println!("(random SD1.5 built in {:.1} s)", start.elapsed().as_secs_f64());
        // Minutes per generation on a CPU: one timed run each, no warm-up.
        let setup = Setup {
            working: env_u32("PENTIMENTO_BENCH_WORKING", 512),
            steps: env_u32("PENTIMENTO_BENCH_STEPS", 2),
            repeats: 1,
            warm_up: false,
        };
        bench("SD1.5 (random weights)", &sd15, &setup);
    }
}
