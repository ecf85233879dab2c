//! Conditioning against A1111's, computed by tests/reference (prompts.json gives each case's
//! chunk ids and multipliers per encoder; prompts_<model>.safetensors the expected tensors).
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test helpers fail loudly")]

mod support;

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use pentimento_pipeline::conditioning::encode_prompt;
use sd::embedding::EmbeddingSet;
use sd::prompt::Chunk;
use sd::{Checkpoint, StableDiffusion};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap()
}

#[test]
fn contexts_match_a1111_for_every_prompt_case() {
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("sd/prompts.json")).unwrap())
            .unwrap();
    for model_name in ["sd1", "sdxl"] {
        let ckpt =
            Checkpoint::open(fixtures().join(format!("models/tiny_{model_name}.safetensors")))
                .unwrap();
        let model = StableDiffusion::load(&ckpt, &Device::Cpu, DType::F32).unwrap();
        let expected = candle_core::safetensors::load(
            fixtures().join(format!("sd/prompts_{model_name}.safetensors")),
            &Device::Cpu,
        )
        .unwrap();
        let mut checked = 0;
        for case in manifest["cases"].as_array().unwrap() {
            if case["model"] != model_name {
                continue;
            }
            let name = case["name"].as_str().unwrap();
            let per_encoder: Vec<Vec<Chunk>> = case["encoders"]
                .as_array()
                .unwrap()
                .iter()
                .map(support::chunks_from_json)
                .collect();
            let cond = encode_prompt(&model, &per_encoder, 1, &EmbeddingSet::default()).unwrap();
            let want = &expected[&format!("{name}.context")];
            let diff = max_abs_diff(&cond.context, want);
            assert!(diff <= 1e-4, "{model_name}/{name}: context max |Δ| = {diff}");
            if model_name == "sd1" {
                let skip2 =
                    encode_prompt(&model, &per_encoder, 2, &EmbeddingSet::default()).unwrap();
                let want = &expected[&format!("{name}.clip_skip_2.context")];
                let diff = max_abs_diff(&skip2.context, want);
                assert!(diff <= 1e-4, "{name}: clip skip 2 max |Δ| = {diff}");
            } else {
                let want = &expected[&format!("{name}.pooled")];
                let diff = max_abs_diff(cond.pooled.as_ref().unwrap(), want);
                assert!(diff <= 1e-4, "{name}: pooled max |Δ| = {diff}");
            }
            checked += 1;
        }
        assert!(checked >= 15, "{model_name}: only {checked} cases");
    }
}
