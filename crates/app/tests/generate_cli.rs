//! `pentimento generate` as a script would use it: flags of product.md §4, PNGs named by seed,
//! A1111 parameters inside, images equal to the reference generations.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test helpers fail loudly")]

use std::path::{Path, PathBuf};
use std::process::Command;

use raster::{DecodeLimits, Image, Rgba8, decode_image};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

fn pentimento(args: &[&str]) -> std::process::Output {
    let cache = std::env::temp_dir().join("pentimento-test-cache");
    Command::new(env!("CARGO_BIN_EXE_pentimento"))
        .args(args)
        .env("PENTIMENTO_CACHE_DIR", cache)
        .output()
        .unwrap()
}

fn png(path: &Path) -> (Image<Rgba8>, Vec<(String, String)>) {
    let d = decode_image(&std::fs::read(path).unwrap(), &DecodeLimits::default()).unwrap();
    (d.image, d.text)
}

fn max_abs_diff(a: &Image<Rgba8>, b: &Image<Rgba8>) -> u8 {
    assert_eq!((a.width(), a.height()), (b.width(), b.height()));
    a.pixels()
        .iter()
        .zip(b.pixels())
        .flat_map(|(p, q)| (0..3).map(|c| p[c].abs_diff(q[c])))
        .max()
        .unwrap()
}

#[test]
fn txt2img_batch_writes_one_png_per_seed_matching_the_reference() {
    let out = tempfile::tempdir().unwrap();
    let model = fixtures().join("models/tiny_sd1.safetensors");
    let result = pentimento(&[
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--prompt",
        "a red fox in a snowy forest, highly detailed",
        "--width",
        "64",
        "--height",
        "64",
        "--steps",
        "8",
        "--sampler",
        "euler_a",
        "--seed",
        "1234",
        "--batch",
        "2",
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    for (seed, reference) in
        [(1234, "sd1_txt2img_batch2_0.png"), (1235, "sd1_txt2img_batch2_1.png")]
    {
        let (image, text) = png(&out.path().join(format!("{seed}.png")));
        let (want, _) = png(&fixtures().join("sd/images").join(reference));
        assert!(max_abs_diff(&image, &want) <= 3, "seed {seed}");
        let params = &text.iter().find(|(k, _)| k == "parameters").unwrap().1;
        assert!(params.starts_with("a red fox in a snowy forest, highly detailed\nSteps: 8, "));
        assert!(params.contains("Sampler: Euler a, "), "{params}");
        assert!(params.contains(&format!("Seed: {seed}, Size: 64x64")), "{params}");
        // sha256 of tiny_sd1.safetensors starts d6f16c30 (hashlib, tests/reference/library_hashes.py).
        assert!(params.contains("Model hash: d6f16c30"), "{params}");
        assert!(params.contains("Model: tiny_sd1, "), "{params}");
    }
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert_eq!(stdout.lines().count(), 2, "one written path per image: {stdout}");
}

#[test]
fn img2img_with_init_and_strength_matches_the_reference() {
    let out = tempfile::tempdir().unwrap();
    let result = pentimento(&[
        "generate",
        "--model",
        fixtures().join("models/tiny_sd1.safetensors").to_str().unwrap(),
        "--prompt",
        "a red fox in a snowy forest, highly detailed",
        "--init",
        fixtures().join("sd/init_64x64.png").to_str().unwrap(),
        "--strength",
        "0.5",
        "--steps",
        "8",
        "--sampler",
        "euler",
        "--seed",
        "1234",
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    let (image, text) = png(&out.path().join("1234.png"));
    let (want, _) = png(&fixtures().join("sd/images/sd1_img2img_euler_s50_0.png"));
    assert!(max_abs_diff(&image, &want) <= 3);
    assert!(text[0].1.contains("Denoising strength: 0.5"), "{}", text[0].1);
}

#[test]
fn user_errors_exit_non_zero_with_one_line() {
    let out = tempfile::tempdir().unwrap();
    let model = fixtures().join("models/tiny_sd1.safetensors");
    let cases: &[(&[&str], &str)] = &[
        (&["--width", "63"], "multiples of 8"),
        (&["--sampler", "nope"], "unknown sampler"),
        (&["--strength", "0.5"], "--strength needs --init"),
    ];
    for (extra, expected) in cases {
        let mut args = vec![
            "generate",
            "--model",
            model.to_str().unwrap(),
            "--prompt",
            "x",
            "--out",
            out.path().to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let result = pentimento(&args);
        assert!(!result.status.success());
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert!(stderr.contains(expected), "{extra:?}: {stderr}");
    }
    let not_a_model = pentimento(&[
        "generate",
        "--model",
        "Cargo.toml",
        "--prompt",
        "x",
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert!(!not_a_model.status.success());
    assert_eq!(String::from_utf8_lossy(&not_a_model.stderr).trim().lines().count(), 1);
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0, "nothing written on error");
}

#[test]
fn info_describes_a_checkpoint() {
    let result =
        pentimento(&["info", fixtures().join("models/tiny_sdxl.safetensors").to_str().unwrap()]);
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    let json: serde_json::Value = serde_json::from_slice(&result.stdout).unwrap();
    assert_eq!(json["kind"], "checkpoint");
    assert_eq!(json["config"]["arch"], "sdxl");
    assert_eq!(json["config"]["unet"]["adm_in_channels"], 1576);
    assert_eq!(json["config"]["text_encoders"][1]["layout"], "open_clip");
}

#[test]
fn f16_compute_stays_close_to_the_f32_reference() {
    let out = tempfile::tempdir().unwrap();
    let result = pentimento(&[
        "generate",
        "--model",
        fixtures().join("models/tiny_sd1.safetensors").to_str().unwrap(),
        "--prompt",
        "a red fox in a snowy forest, highly detailed",
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
        "--dtype",
        "f16",
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    let (image, _) = png(&out.path().join("1234.png"));
    let (want, _) = png(&fixtures().join("sd/images/sd1_txt2img_euler_normal_0.png"));
    // Measured 52 dB / max 3 levels: f16 weights and activations, f32 sampling.
    assert!(max_abs_diff(&image, &want) <= 8);
}

#[test]
fn info_describes_loras_vaes_and_embeddings() {
    let info = |rel: &str| -> serde_json::Value {
        let result = pentimento(&["info", fixtures().join(rel).to_str().unwrap()]);
        assert!(result.status.success(), "{rel}: {}", String::from_utf8_lossy(&result.stderr));
        serde_json::from_slice(&result.stdout).unwrap()
    };
    let lora = info("lora/sd1_kohya.safetensors");
    // The tiny SD1 LoRA's widths (32) say nothing about its family, so only its kind is
    // asserted; the SDXL one is recognised by its lora_te1_/lora_te2_ keys.
    assert_eq!(lora["kind"], "lora");
    assert!(lora["tensor_count"].as_u64().unwrap() > 0);
    assert_eq!(info("lora/sdxl_kohya.safetensors")["arch"], "sdxl");
    assert_eq!(info("lora/vae_ldm.safetensors")["kind"], "vae");
    let embedding = info("lora/emb_sdxl.safetensors");
    assert_eq!(embedding["kind"], "embedding");
    assert_eq!(embedding["vectors"], 3);
    let checkpoint = info("models/tiny_sd1.safetensors");
    assert_eq!(checkpoint["kind"], "checkpoint");
    assert_eq!(checkpoint["config"]["arch"], "sd1");
}
