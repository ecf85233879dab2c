//! LoRA / LyCORIS / PEFT patching against tests/reference/lora_reference.py (A1111 arithmetic,
//! diffusers' own kohya name conversion), bit-exact restore, unmatched-key reports and
//! wrong-architecture refusal.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test helpers fail loudly")]

use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use pentimento_sd::lora::{
    LoraError, LoraFamily, LoraFile, LoraSpec, LoraWeights, apply_lora_files, apply_loras,
    extract_lora_tags, layer_weights, restore,
};
use pentimento_sd::{Checkpoint, StableDiffusion};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

fn lora_path(name: &str) -> PathBuf {
    fixtures().join(format!("lora/{name}.safetensors"))
}

fn model(kind: &str) -> StableDiffusion {
    let ckpt =
        Checkpoint::open(fixtures().join(format!("models/tiny_{kind}.safetensors"))).unwrap();
    StableDiffusion::load(&ckpt, &Device::Cpu, DType::F32).unwrap()
}

fn weights(model: &mut StableDiffusion) -> HashMap<String, Tensor> {
    layer_weights(model).unwrap().into_iter().collect()
}

fn bits(t: &Tensor) -> Vec<u32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap().iter().map(|v| v.to_bits()).collect()
}

/// max |a − b| / max |b|.
fn relative_error(a: &Tensor, b: &Tensor) -> f32 {
    let b = b.reshape(a.dims()).unwrap();
    let diff: f32 = (a - &b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar()
        .unwrap();
    let scale: f32 = b.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap();
    diff / scale.max(1e-12)
}

fn check_case(case: &str, kind: &str, loras: &[(&str, f32, f32)]) {
    let mut model = model(kind);
    let before = weights(&mut model);
    let specs: Vec<LoraSpec> = loras
        .iter()
        .map(|(name, te, unet)| LoraSpec {
            path: lora_path(name),
            weights: LoraWeights { text_encoder: *te, unet: *unet },
        })
        .collect();
    let applied = apply_loras(&mut model, &specs).unwrap();
    for report in &applied.report().loras {
        assert!(report.unmatched_keys.is_empty(), "{case}: {:?}", report.unmatched_keys);
        assert!(report.unsupported_keys.is_empty(), "{case}: {:?}", report.unsupported_keys);
    }
    let expected = candle_core::safetensors::load(
        fixtures().join(format!("lora/expected_{case}.safetensors")),
        &Device::Cpu,
    )
    .unwrap();
    assert_eq!(applied.report().patched_layers, expected.len(), "{case}: patched layer count");
    let after = weights(&mut model);
    let mut worst = 0f32;
    for (id, want) in &expected {
        let got = &after[id];
        let err = relative_error(got, want);
        assert!(err <= 1e-5, "{case}: {id} relative error {err}");
        worst = worst.max(err);
        assert_ne!(bits(got), bits(&before[id]), "{case}: {id} unchanged");
    }
    // Layers the reference did not touch are untouched.
    for (id, w) in &after {
        if !expected.contains_key(id) {
            assert_eq!(bits(w), bits(&before[id]), "{case}: {id} changed");
        }
    }
    restore(&mut model, applied).unwrap();
    let restored = weights(&mut model);
    for (id, w) in &before {
        assert_eq!(bits(&restored[id]), bits(w), "{case}: {id} not restored bit-exactly");
    }
    eprintln!("{case}: {} layers, worst relative error {worst:.2e}", expected.len());
}

#[test]
fn kohya_sd1_matches_reference_and_restores() {
    check_case("sd1_kohya", "sd1", &[("sd1_kohya", 0.8, 0.8)]);
}

#[test]
fn kohya_sd1_negative_weight() {
    check_case("sd1_kohya_neg", "sd1", &[("sd1_kohya", -0.5, -0.5)]);
}

#[test]
fn two_loras_with_separate_te_and_unet_weights() {
    // The second file uses the LDM spelling on SD1 and Tucker (lora_mid) convolutions.
    check_case("sd1_two", "sd1", &[("sd1_kohya", 0.8, 0.8), ("sd1_kohya_b", 0.5, 1.2)]);
}

#[test]
fn loha_matches_reference() {
    check_case("sd1_loha", "sd1", &[("sd1_loha", 0.8, 0.8)]);
}

#[test]
fn lokr_matches_reference() {
    check_case("sd1_lokr", "sd1", &[("sd1_lokr", 0.8, 0.8)]);
}

#[test]
fn peft_keys_match_reference() {
    check_case("sd1_peft", "sd1", &[("sd1_peft", 0.8, 0.8)]);
}

#[test]
fn sdxl_kohya_both_text_encoders_and_ldm_names() {
    check_case("sdxl_kohya", "sdxl", &[("sdxl_kohya", 0.8, 0.8)]);
}

#[test]
fn unmatched_and_unsupported_keys_are_reported() {
    let mut model = model("sd1");
    let applied =
        apply_loras(&mut model, &[LoraSpec::new(lora_path("sd1_kohya_extra"), 1.0)]).unwrap();
    let report = &applied.report().loras[0];
    let unmatched = "lora_unet_down_blocks_7_attentions_0_proj_in";
    assert_eq!(
        report.unmatched_keys,
        vec![format!("{unmatched}.lora_down.weight"), format!("{unmatched}.lora_up.weight")]
    );
    assert_eq!(applied.report().unmatched_keys().len(), 2);
    // The DoRA module is not applied, and says why for each of its keys.
    let dora: Vec<_> =
        report.unsupported_keys.iter().filter(|(_, why)| why.contains("DoRA")).collect();
    assert_eq!(dora.len(), 4, "{:?}", report.unsupported_keys);
    assert_eq!(report.patched_modules, 30);
    restore(&mut model, applied).unwrap();
}

#[test]
fn wrong_architecture_is_refused_and_nothing_changes() {
    let mut sd1 = model("sd1");
    let before = weights(&mut sd1);
    let err = apply_loras(&mut sd1, &[LoraSpec::new(lora_path("sdxl_kohya"), 1.0)]).unwrap_err();
    assert!(
        matches!(err, LoraError::WrongArchitecture { lora_family: LoraFamily::Sdxl, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("SDXL"), "{err}");
    let after = weights(&mut sd1);
    for (id, w) in &before {
        assert_eq!(bits(&after[id]), bits(w), "{id} changed by a refused LoRA");
    }
    let mut sdxl = model("sdxl");
    let err = apply_loras(&mut sdxl, &[LoraSpec::new(lora_path("sd1_kohya"), 1.0)]).unwrap_err();
    assert!(
        matches!(err, LoraError::WrongArchitecture { lora_family: LoraFamily::Sd1, .. }),
        "{err}"
    );
}

#[test]
fn misshaped_or_foreign_modules_are_refused() {
    let mut sd1 = model("sd1");
    let before = weights(&mut sd1);
    // Right names, other shapes (UNet-only, so the family is unknown): refused after a valid
    // module was already applied, which must be rolled back.
    let t = |shape: &[usize]| Tensor::ones(shape, DType::F32, &Device::Cpu).unwrap();
    let a = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q";
    let b = "lora_unet_up_blocks_2_attentions_1_transformer_blocks_0_attn2_to_k";
    let lora = LoraFile::from_tensors(
        "misshaped",
        vec![
            (format!("{a}.lora_down.weight"), t(&[2, 32])),
            (format!("{a}.lora_up.weight"), t(&[32, 2])),
            (format!("{b}.lora_down.weight"), t(&[2, 768])),
            (format!("{b}.lora_up.weight"), t(&[32, 2])),
        ],
    )
    .unwrap();
    let err = apply_lora_files(&mut sd1, &[(&lora, LoraWeights::both(1.0))]).unwrap_err();
    assert!(
        matches!(err, LoraError::WrongArchitecture { .. } | LoraError::DoesNotFit { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("attn2"), "{err}");
    let after = weights(&mut sd1);
    for (id, w) in &before {
        assert_eq!(bits(&after[id]), bits(w), "{id} changed by a refused LoRA");
    }
    // Names of nothing in this model at all.
    let foreign = LoraFile::from_tensors(
        "foreign",
        vec![
            ("lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight".into(), t(&[2, 8])),
            ("lora_unet_double_blocks_0_img_attn_qkv.lora_up.weight".into(), t(&[8, 2])),
        ],
    )
    .unwrap();
    let err = apply_lora_files(&mut sd1, &[(&foreign, LoraWeights::both(1.0))]).unwrap_err();
    assert!(matches!(err, LoraError::DoesNotFit { .. }), "{err}");
}

#[test]
fn nested_patches_restore_in_reverse_order() {
    let mut sd1 = model("sd1");
    let before = weights(&mut sd1);
    let first = apply_loras(&mut sd1, &[LoraSpec::new(lora_path("sd1_kohya"), 0.8)]).unwrap();
    let second = apply_loras(&mut sd1, &[LoraSpec::new(lora_path("sd1_kohya_b"), -1.0)]).unwrap();
    restore(&mut sd1, second).unwrap();
    restore(&mut sd1, first).unwrap();
    let after = weights(&mut sd1);
    for (id, w) in &before {
        assert_eq!(bits(&after[id]), bits(w), "{id}");
    }
}

#[test]
fn family_detection_and_pickles() {
    assert_eq!(LoraFile::open(lora_path("sd1_kohya")).unwrap().family(), LoraFamily::Sd1);
    assert_eq!(LoraFile::open(lora_path("sdxl_kohya")).unwrap().family(), LoraFamily::Sdxl);
    assert_eq!(LoraFile::open(lora_path("sd1_loha")).unwrap().family(), LoraFamily::Sd1);
    let dir = tempfile::tempdir().unwrap();
    let pt = dir.path().join("evil.pt");
    std::fs::write(&pt, [0x80, 2, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap();
    let err = LoraFile::open(&pt).unwrap_err();
    assert!(err.to_string().contains("pickle"), "{err}");
}

#[test]
fn a1111_lora_tags() {
    let (prompt, tags) = extract_lora_tags(
        "a fox <lora:ink:0.8>, snow <lora:paper:0.5:1.2> <lora:plain> <lora:x:unet=0.3>",
    )
    .unwrap();
    assert_eq!(prompt, "a fox , snow   ");
    assert_eq!(tags[0], ("ink".to_string(), LoraWeights::both(0.8)));
    assert_eq!(tags[1], ("paper".to_string(), LoraWeights { text_encoder: 0.5, unet: 1.2 }));
    assert_eq!(tags[2], ("plain".to_string(), LoraWeights::both(1.0)));
    assert_eq!(tags[3], ("x".to_string(), LoraWeights { text_encoder: 1.0, unet: 0.3 }));
    assert!(extract_lora_tags("<lora:a:heavy>").is_err());
}

/// Replacing a patch (another weight, another set of LoRAs, a LoRA dropped) gives bit for bit
/// the weights of a fresh patch on the unpatched model and still restores the originals exactly
/// (the in-place rewrite's speed is `lora_bench`'s `reweight_seconds`).
#[test]
fn repatching_equals_a_fresh_patch_and_restores_exactly() {
    use pentimento_sd::lora::repatch_loras;
    let spec = |name: &str, w: f32| LoraSpec::new(lora_path(name), w);
    let fresh = |specs: &[LoraSpec]| {
        let mut m = model("sd1");
        let _applied = apply_loras(&mut m, specs).unwrap();
        weights(&mut m)
    };
    let mut sd1 = model("sd1");
    let before = weights(&mut sd1);
    let mut applied = apply_loras(&mut sd1, &[spec("sd1_kohya", 0.8)]).unwrap();
    for specs in [
        vec![spec("sd1_kohya", -0.5)],
        vec![spec("sd1_kohya", 0.3), spec("sd1_kohya_b", 0.7)],
        vec![spec("sd1_kohya_b", 1.0)],
        vec![spec("sd1_loha", 0.6)],
    ] {
        applied = repatch_loras(&mut sd1, &specs, Some(applied)).unwrap();
        let got = weights(&mut sd1);
        let want = fresh(&specs);
        for (id, w) in &want {
            assert_eq!(bits(&got[id]), bits(w), "{specs:?}: {id}");
        }
    }
    restore(&mut sd1, applied).unwrap();
    let after = weights(&mut sd1);
    for (id, w) in &before {
        assert_eq!(bits(&after[id]), bits(w), "{id} not restored bit-exactly");
    }

    // A replacement that fails (a file that is not there, a LoRA for the other family) leaves
    // the model with its own weights, never half patched.
    for bad in [spec("no_such_lora", 0.5), spec("sdxl_kohya", 0.5)] {
        let applied = apply_loras(&mut sd1, &[spec("sd1_kohya", 0.8)]).unwrap();
        assert!(repatch_loras(&mut sd1, &[bad], Some(applied)).is_err());
        let after = weights(&mut sd1);
        for (id, w) in &before {
            assert_eq!(bits(&after[id]), bits(w), "{id} changed by a refused repatch");
        }
    }
}
