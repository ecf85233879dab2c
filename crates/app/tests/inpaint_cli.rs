//! `pentimento generate` inpainting end to end, on the A1111 reference cases of
//! `tests/fixtures/inpaint` (the same inputs the pipeline's reference test uses): the flags reach
//! the pipeline (each result matches A1111's within the pipeline's bar), the written PNGs are the
//! pasted full canvas, every pixel outside the blurred mask is the input's byte for byte, the
//! CLI writes what a direct `pipeline::generate` call returns, and user errors are one-line
//! failures that write nothing.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test helpers fail loudly")]

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use candle_core::{DType, Device};
use doc::InpaintParams;
use doc::infotext::Infotext;
use pipeline::request::{GenerationRequest, InitImage, InpaintArea, InpaintOptions, MaskedContent};
use raster::{DecodeLimits, Image, Rect, Rgba8, decode_image, decode_mask};
use sd::{Checkpoint, StableDiffusion};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

fn inpaint_dir() -> PathBuf {
    fixtures().join("inpaint")
}

fn case(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(inpaint_dir().join("manifest.json")).unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&text).unwrap();
    manifest["cases"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap().clone()
}

/// Runs the binary in `cwd` (so no `models/` folder of the developer's is picked up).
fn pentimento(cwd: &Path, args: &[String]) -> Output {
    let cache = std::env::temp_dir().join("pentimento-test-cache");
    Command::new(env!("CARGO_BIN_EXE_pentimento"))
        .args(args)
        .current_dir(cwd)
        .env("PENTIMENTO_CACHE_DIR", cache)
        .output()
        .unwrap()
}

fn png(path: &Path) -> (Image<Rgba8>, String) {
    let decoded = decode_image(&std::fs::read(path).unwrap(), &DecodeLimits::default()).unwrap();
    let params = decoded.text.iter().find(|(k, _)| k == "parameters").map(|(_, v)| v.clone());
    (decoded.image, params.unwrap_or_default())
}

fn gray(path: &Path) -> Vec<u8> {
    png(path).0.pixels().iter().map(|p| p[0]).collect()
}

fn s(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn context_of(case: &serde_json::Value) -> Option<String> {
    let values: Vec<String> = case["context"].as_array()?.iter().map(s).collect();
    Some(values.join(","))
}

/// The `pentimento generate` flags of a manifest case.
fn generate_args(case: &serde_json::Value, out: &Path) -> Vec<String> {
    let area = match case["inpaint_area"].as_str().unwrap() {
        "only_masked" => "masked",
        _ => "whole",
    };
    let content = match case["masked_content"].as_str().unwrap() {
        "latent_noise" => "noise",
        "latent_nothing" => "nothing",
        other => other,
    };
    let mut args: Vec<String> = vec![
        "generate".into(),
        "--model".into(),
        fixtures().join(case["checkpoint"].as_str().unwrap()).display().to_string(),
        "--prompt".into(),
        s(&case["prompt"]),
        "--negative".into(),
        s(&case["negative"]),
        "--seed".into(),
        s(&case["seed"]),
        "--steps".into(),
        s(&case["steps"]),
        "--cfg".into(),
        s(&case["cfg"]),
        "--sampler".into(),
        s(&case["sampler"]),
        "--scheduler".into(),
        s(&case["schedule"]),
        "--batch".into(),
        s(&case["batch"]),
        "--width".into(),
        s(&case["width"]),
        "--height".into(),
        s(&case["height"]),
        "--init".into(),
        inpaint_dir().join(case["input_image"].as_str().unwrap()).display().to_string(),
        "--strength".into(),
        s(&case["strength"]),
        "--mask".into(),
        inpaint_dir().join(case["mask_image"].as_str().unwrap()).display().to_string(),
        "--inpaint-area".into(),
        area.into(),
        "--padding".into(),
        s(&case["padding"]),
        "--mask-blur".into(),
        s(&case["mask_blur"]),
        "--masked-content".into(),
        content.into(),
        "--out".into(),
        out.display().to_string(),
    ];
    if case["invert_mask"].as_bool().unwrap() {
        args.push("--invert-mask".into());
    }
    if let Some(context) = context_of(case) {
        args.extend(["--context".into(), context]);
    }
    args
}

/// PSNR over RGB and the largest per-channel difference.
fn compare(ours: &Image<Rgba8>, reference: &Image<Rgba8>) -> (f64, u8) {
    assert_eq!((ours.width(), ours.height()), (reference.width(), reference.height()));
    let (mut sum_sq, mut max, mut n) = (0f64, 0u8, 0f64);
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

/// The inpaint keys A1111 writes for the case, and their values read back.
fn check_inpaint_keys(case: &serde_json::Value, params: &str) {
    let area: InpaintArea =
        case["inpaint_area"].as_str().unwrap().replace('_', " ").parse().unwrap();
    let content: MaskedContent =
        case["masked_content"].as_str().unwrap().replace('_', " ").parse().unwrap();
    let (blur, padding) = (case["mask_blur"].as_u64().unwrap(), case["padding"].as_u64().unwrap());
    assert!(params.contains("Denoising strength: 0.75, "), "{params}");
    assert!(params.contains(&format!("Mask blur: {blur}, ")), "{params}");
    assert_eq!(
        params.contains(&format!("Inpaint area: Only masked, Masked area padding: {padding}, ")),
        area == InpaintArea::OnlyMasked,
        "{params}"
    );
    assert_eq!(params.contains("Masked content: "), content != MaskedContent::Original, "{params}");
    assert_eq!(
        params.contains("Conditional mask weight: 1.0, "),
        case["model"] == "sd1_inpaint",
        "{params}"
    );
    let read = Infotext::parse(params).inpaint_params().unwrap();
    // A1111 leaves the padding out for whole-picture inpaints; it reads back as its default.
    let padding = if area == InpaintArea::OnlyMasked { padding as u32 } else { 32 };
    assert_eq!(
        read,
        InpaintParams {
            area,
            padding_px: padding,
            mask_blur_px: blur as u32,
            masked_content: content,
            inverted: case["invert_mask"].as_bool().unwrap(),
        }
    );
}

/// What one CLI run wrote: the folder (kept alive) and each PNG with its image, batch order.
struct Written {
    _dir: tempfile::TempDir,
    pngs: Vec<(PathBuf, Image<Rgba8>)>,
}

/// Runs one case through the CLI and checks what it wrote.
fn run_case(name: &str) -> Written {
    let case = case(name);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let result = pentimento(dir.path(), &generate_args(&case, &out));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "{name}: {stderr}");
    let input = png(&inpaint_dir().join(case["input_image"].as_str().unwrap())).0;
    let overlay =
        gray(&inpaint_dir().join(case["intermediates"]["overlay_mask"].as_str().unwrap()));
    let seed = case["seed"].as_u64().unwrap();
    let finals = case["final"].as_array().unwrap();
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert_eq!(stdout.lines().count(), finals.len(), "{name}: one path per image: {stdout}");
    let mut pngs = Vec::new();
    for (i, reference) in finals.iter().enumerate() {
        let path = out.join(format!("{}.png", seed + i as u64));
        let (image, params) = png(&path);
        // The pasted full canvas (for these cases the canvas is the output size).
        assert_eq!(
            (image.width(), image.height()),
            (
                case["output_width"].as_u64().unwrap() as u32,
                case["output_height"].as_u64().unwrap() as u32
            ),
            "{name}"
        );
        assert_eq!((image.width(), image.height()), (input.width(), input.height()), "{name}");
        let (want, _) = png(&inpaint_dir().join(reference.as_str().unwrap()));
        let (psnr, max) = compare(&image, &want);
        assert!(psnr >= 40.0 && max <= 3, "{name} #{i}: PSNR {psnr:.2} dB, max |Δ| {max}");
        let mut kept = 0;
        for ((p, q), &m) in image.pixels().iter().zip(input.pixels()).zip(&overlay) {
            if m == 0 {
                assert_eq!(p, q, "{name} #{i}: a pixel outside the blurred mask changed");
                kept += 1;
            }
        }
        assert!(kept > 0, "{name}: the case must leave pixels untouched");
        assert!(image != input, "{name}: nothing was regenerated");
        assert!(params.contains(&format!("Seed: {}, ", seed + i as u64)), "{params}");
        check_inpaint_keys(&case, &params);
        pngs.push((path, image));
    }
    Written { _dir: dir, pngs }
}

#[test]
fn only_masked_with_a_context_box_matches_a1111_and_keeps_the_rest() {
    let written = run_case("sd1_only_context");
    // `pentimento info` on the result shows the inpaint keys and what they mean.
    let info =
        pentimento(Path::new("."), &["info".into(), written.pngs[0].0.display().to_string()]);
    assert!(info.status.success(), "{}", String::from_utf8_lossy(&info.stderr));
    let json: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    let params = &json["parameters"]["params"];
    assert_eq!(params["Inpaint area"], "Only masked", "{json}");
    assert_eq!(params["Masked area padding"], "8");
    assert_eq!(params["Mask blur"], "4");
    assert_eq!(json["inpaint"]["area"], "only_masked");
    assert_eq!(json["inpaint"]["masked_content"], "original");
    assert_eq!(json["inpaint"]["inverted"], false);
    // The context box changes the crop, so the reference differs from the same case without it:
    // matching it proves `--context` reached the pipeline.
    let with = png(&inpaint_dir().join("cases/sd1_only_context/final_0.png")).0;
    let without = png(&inpaint_dir().join("cases/sd1_only_original/final_0.png")).0;
    assert!(compare(&with, &without).1 > 3);
}

#[test]
fn alpha_masks_inverted_masks_masked_content_and_9_channel_models() {
    // An RGBA mask PNG with real alpha is read by its alpha (its colours say otherwise).
    run_case("sd1_whole_mask_rgba_alpha");
    run_case("sd1_only_invert");
    run_case("sd1_whole_latent_noise");
    run_case("sd1inp_only_euler_a_fill");
}

#[test]
fn a_batch_writes_one_pasted_canvas_per_seed() {
    assert_eq!(run_case("sd1_only_batch2").pngs.len(), 2);
}

/// The CLI writes exactly what the library returns for the same request.
#[test]
fn the_cli_writes_the_pipelines_bytes() {
    let case = case("sd1_only_context");
    let cli = run_case("sd1_only_context").pngs.remove(0).1;

    let read = |key: &str| std::fs::read(inpaint_dir().join(case[key].as_str().unwrap())).unwrap();
    let limits = DecodeLimits::default();
    let image = decode_image(&read("input_image"), &limits).unwrap().image;
    let mask = decode_mask(&read("mask_image"), &limits).unwrap();
    let mut request = GenerationRequest::txt2img(case["prompt"].as_str().unwrap(), 64, 64, 1234);
    request.steps = 8;
    request.sampler = sampling::SamplerKind::Euler;
    request.init = Some(InitImage { image, strength: 0.75 });
    request.inpaint = Some(InpaintOptions {
        mask,
        invert_mask: false,
        area: InpaintArea::OnlyMasked,
        padding_px: 8,
        mask_blur_px: 4,
        masked_content: MaskedContent::Original,
        context: Some(Rect::new(4, 50, 30, 40)),
    });
    let checkpoint = Checkpoint::open(fixtures().join("models/tiny_sd1.safetensors")).unwrap();
    let model = StableDiffusion::load(&checkpoint, &Device::Cpu, DType::F32).unwrap();
    let generated =
        pipeline::generate::generate(&model, &request, &mut |_| ControlFlow::Continue(())).unwrap();
    assert!(generated.images[0] == cli, "the CLI's PNG differs from pipeline::generate's image");
}

/// Sets `flag` to `value` (a switch when `None`), replacing an existing value; `Remove` drops it.
enum Flag<'a> {
    Set(&'a str, Option<String>),
    Remove(&'a str),
}

fn with_flags(mut args: Vec<String>, flags: &[Flag<'_>]) -> Vec<String> {
    for flag in flags {
        match flag {
            Flag::Set(name, value) => match (args.iter().position(|a| a == name), value) {
                (Some(at), Some(v)) => args[at + 1] = v.clone(),
                (Some(_), None) => {}
                (None, v) => args.extend(std::iter::once(name.to_string()).chain(v.clone())),
            },
            Flag::Remove(name) => {
                if let Some(at) = args.iter().position(|a| a == name) {
                    args.drain(at..at + 2);
                }
            }
        }
    }
    args
}

#[test]
fn mask_errors_are_one_line_and_write_nothing() {
    let base = case("sd1_only_original");
    let mask = |file: &str| Some(inpaint_dir().join("inputs").join(file).display().to_string());
    let cases: Vec<(Vec<Flag<'_>>, &str)> = vec![
        (vec![Flag::Set("--mask", mask("m96x80_empty.png"))], "the inpaint mask is empty"),
        (
            vec![Flag::Set("--mask", mask("m64_blob.png"))],
            "the mask is 64x64 but the image is 96x80",
        ),
        (
            vec![Flag::Set("--mask", mask("m96x80_full.png")), Flag::Set("--invert-mask", None)],
            "the inverted inpaint mask is empty",
        ),
        (
            vec![
                Flag::Set("--inpaint-area", Some("whole".into())),
                Flag::Set("--context", Some("1,2,3,4".into())),
            ],
            "--context needs --inpaint-area masked",
        ),
        (vec![Flag::Set("--context", Some("1,2,3".into()))], "--context wants X,Y,W,H"),
        (
            vec![Flag::Remove("--mask"), Flag::Set("--invert-mask", None)],
            "--invert-mask and --context need --mask",
        ),
    ];
    for (flags, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let result = pentimento(dir.path(), &with_flags(generate_args(&base, &out), &flags));
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert!(!result.status.success(), "{expected}: succeeded");
        assert!(stderr.contains(expected), "{expected}: {stderr}");
        // The error comes before the model is loaded ("loading …" is never printed).
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(!out.exists(), "{expected}: the output folder was created");
    }
}
