//! LoRAs and standalone VAEs through `pentimento generate`, against the reference images of
//! tests/reference/lora_reference.py (A1111 LoRA arithmetic merged into diffusers modules).
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test helpers fail loudly")]

use std::path::{Path, PathBuf};
use std::process::Command;

use raster::{DecodeLimits, Image, Rgba8, decode_image};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

fn png(path: &Path) -> (Image<Rgba8>, String) {
    let d = decode_image(&std::fs::read(path).unwrap(), &DecodeLimits::default()).unwrap();
    let params = d.text.into_iter().find(|(k, _)| k == "parameters").map(|(_, v)| v);
    (d.image, params.unwrap_or_default())
}

fn psnr_and_max(a: &Image<Rgba8>, b: &Image<Rgba8>) -> (f64, u8) {
    let mut sum = 0f64;
    let mut max = 0u8;
    for (p, q) in a.pixels().iter().zip(b.pixels()) {
        for c in 0..3 {
            let d = p[c].abs_diff(q[c]);
            max = max.max(d);
            sum += f64::from(d) * f64::from(d);
        }
    }
    let mse = sum / (a.pixels().len() * 3) as f64;
    (if mse == 0.0 { f64::INFINITY } else { 10.0 * (255.0 * 255.0 / mse).log10() }, max)
}

/// Runs generate in `cwd` for the reference prompt/seed and returns the image and parameters.
fn generate(cwd: &Path, model: &str, prompt: &str, extra: &[String]) -> (Image<Rgba8>, String) {
    let out = tempfile::tempdir().unwrap();
    let mut args: Vec<String> = [
        "generate",
        "--model",
        fixtures().join(format!("models/tiny_{model}.safetensors")).to_str().unwrap(),
        "--prompt",
        prompt,
        "--width",
        "64",
        "--height",
        "64",
        "--steps",
        "8",
        "--sampler",
        "euler",
        "--seed",
        "1234",
        "--out",
        out.path().to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if model == "sdxl" {
        args.extend(["--cfg".to_string(), "5".to_string()]);
    }
    args.extend_from_slice(extra);
    let result = Command::new(env!("CARGO_BIN_EXE_pentimento"))
        .args(&args)
        .current_dir(cwd)
        .env("PENTIMENTO_CACHE_DIR", std::env::temp_dir().join("pentimento-test-cache"))
        .output()
        .unwrap();
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    png(&out.path().join("1234.png"))
}

const PROMPT: &str = "a red fox in a snowy forest, highly detailed";

fn lora_flag(name: &str, weight: f32) -> String {
    format!("--lora={}:{weight}", fixtures().join(format!("lora/{name}.safetensors")).display())
}

fn assert_matches(ours: &Image<Rgba8>, reference: &str) {
    let (want, _) = png(&fixtures().join("lora").join(reference));
    let (psnr, max) = psnr_and_max(ours, &want);
    assert!(psnr >= 40.0 && max <= 3, "{reference}: PSNR {psnr:.2} dB, max |Δ| {max}");
}

#[test]
fn lora_flags_at_positive_and_negative_weights_and_two_loras() {
    let cwd = tempfile::tempdir().unwrap();
    let (img, params) = generate(cwd.path(), "sd1", PROMPT, &[lora_flag("sd1_kohya", 0.8)]);
    assert_matches(&img, "images/sd1_lora_0.8.png");
    assert!(params.contains("Lora hashes: \"sd1_kohya: "), "{params}");
    let (img, _) = generate(cwd.path(), "sd1", PROMPT, &[lora_flag("sd1_kohya", -0.5)]);
    assert_matches(&img, "images/sd1_lora_-0.5.png");
    let (img, _) = generate(cwd.path(), "sdxl", PROMPT, &[lora_flag("sdxl_kohya", 0.8)]);
    assert_matches(&img, "images/sdxl_lora_0.8.png");
}

#[test]
fn lora_tags_in_the_prompt_resolve_from_the_models_folder() {
    let cwd = tempfile::tempdir().unwrap();
    let loras = cwd.path().join("models/loras");
    std::fs::create_dir_all(&loras).unwrap();
    for name in ["sd1_kohya", "sd1_kohya_b"] {
        std::fs::copy(
            fixtures().join(format!("lora/{name}.safetensors")),
            loras.join(format!("{name}.safetensors")),
        )
        .unwrap();
    }
    // Two LoRAs, the second with separate text-encoder and UNet weights.
    let prompt = format!("{PROMPT} <lora:sd1_kohya:0.8> <lora:sd1_kohya_b:0.5:1.2>");
    let (img, params) = generate(cwd.path(), "sd1", &prompt, &[]);
    assert_matches(&img, "images/sd1_two_loras.png");
    assert!(params.starts_with(&prompt), "the tags stay in the infotext prompt: {params}");

    let unknown = Command::new(env!("CARGO_BIN_EXE_pentimento"))
        .args([
            "generate",
            "--model",
            fixtures().join("models/tiny_sd1.safetensors").to_str().unwrap(),
            "--prompt",
            "x <lora:missing:1>",
            "--out",
            cwd.path().join("out").to_str().unwrap(),
        ])
        .current_dir(cwd.path())
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("<lora:missing>"));
}

#[test]
fn standalone_vae_overrides_the_checkpoints() {
    let cwd = tempfile::tempdir().unwrap();
    let vae = fixtures().join("lora/vae_ldm_prefixed.safetensors");
    let (img, params) = generate(cwd.path(), "sd1", PROMPT, &[format!("--vae={}", vae.display())]);
    assert_matches(&img, "images/sd1_vae_override.png");
    assert!(params.contains("VAE: vae_ldm_prefixed.safetensors"), "{params}");
}

#[test]
fn a_lora_for_the_other_architecture_is_refused() {
    let cwd = tempfile::tempdir().unwrap();
    let result = Command::new(env!("CARGO_BIN_EXE_pentimento"))
        .args([
            "generate",
            "--model",
            fixtures().join("models/tiny_sd1.safetensors").to_str().unwrap(),
            "--prompt",
            "x",
            &lora_flag("sdxl_kohya", 1.0),
            "--out",
            cwd.path().join("out").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!result.status.success());
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains("SDXL"), "{stderr}");
    // Progress lines may precede it; the error itself is one line.
    assert_eq!(stderr.lines().filter(|l| l.starts_with("error:")).count(), 1, "{stderr}");
}

#[test]
fn embeddings_in_the_models_folder_are_used_by_name() {
    let plain_dir = tempfile::tempdir().unwrap();
    let (plain, _) = generate(plain_dir.path(), "sd1", "a photo of emb_sd1", &[]);
    let cwd = tempfile::tempdir().unwrap();
    let embeddings = cwd.path().join("models/embeddings");
    std::fs::create_dir_all(&embeddings).unwrap();
    std::fs::copy(
        fixtures().join("lora/emb_sd1.safetensors"),
        embeddings.join("emb_sd1.safetensors"),
    )
    .unwrap();
    let negative = ["--negative".to_string(), "blurry, emb_sd1".to_string()];
    let (with_embedding, params) = generate(cwd.path(), "sd1", "a photo of emb_sd1", &negative);
    let (psnr, _) = psnr_and_max(&plain, &with_embedding);
    assert!(psnr < 40.0, "the embedding changed nothing (PSNR {psnr:.1} dB)");
    // A1111's `TI hashes`: 12 hex digits of the file's sha256 (879d4711f1d3…, sha256sum),
    // once for the prompt's encoding and once for the negative's.
    assert!(
        params.contains("TI hashes: \"emb_sd1: 879d4711f1d3, emb_sd1: 879d4711f1d3\", "),
        "{params}"
    );
    // SDXL encodes each prompt through two encoders, so A1111 lists the embedding twice
    // (sha256sum of emb_sdxl.safetensors: 8fc8cda444f0…); an unused one is not listed.
    std::fs::copy(
        fixtures().join("lora/emb_sdxl.safetensors"),
        embeddings.join("emb_sdxl.safetensors"),
    )
    .unwrap();
    let (_, params) = generate(cwd.path(), "sdxl", "a photo of emb_sdxl", &[]);
    assert!(
        params.contains("TI hashes: \"emb_sdxl: 8fc8cda444f0, emb_sdxl: 8fc8cda444f0\", "),
        "{params}"
    );
}
