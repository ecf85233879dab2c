//! Standalone VAE files in three layouts (LDM with and without `first_stage_model.`, diffusers)
//! against diffusers' `AutoencoderKL` with the same weights (tests/reference/lora_reference.py).
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test helpers fail loudly")]

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use pentimento_sd::lora::{load_standalone_vae, replace_vae};
use pentimento_sd::{Checkpoint, SdError, StableDiffusion};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

fn max_abs(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap()
}

#[test]
fn every_layout_decodes_like_the_reference() {
    let reference = candle_core::safetensors::load(
        fixtures().join("lora/vae_decode.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    for layout in ["vae_ldm_prefixed", "vae_ldm", "vae_diffusers"] {
        let path = fixtures().join(format!("lora/{layout}.safetensors"));
        let vae = load_standalone_vae(&path, 0.18215, &Device::Cpu).unwrap();
        let decoded = vae.decode(&reference["latent"]).unwrap();
        let err = max_abs(&decoded, &reference["decoded"]);
        assert!(err < 1e-4, "{layout}: decode max error {err}");
        let pixels = reference["decoded"].clamp(-1f32, 1f32).unwrap();
        let mean = vae.encode_mean(&pixels).unwrap();
        let err_enc = max_abs(&mean, &reference["encoded_mean"]);
        assert!(err_enc < 1e-3, "{layout}: encode max error {err_enc}");
        eprintln!("{layout}: decode {err:.2e}, encode {err_enc:.2e}");
    }
}

#[test]
fn override_replaces_and_gives_back_the_checkpoint_vae() {
    let ckpt = Checkpoint::open(fixtures().join("models/tiny_sd1.safetensors")).unwrap();
    let mut model = StableDiffusion::load(&ckpt, &Device::Cpu, DType::F32).unwrap();
    let z = Tensor::ones((1, 4, 2, 2), DType::F32, &Device::Cpu).unwrap();
    let own = model.vae.decode(&z).unwrap();
    let path = fixtures().join("lora/vae_ldm.safetensors");
    let standalone = load_standalone_vae(&path, model.vae.scaling_factor(), &Device::Cpu).unwrap();
    let original = replace_vae(&mut model, standalone);
    assert!(max_abs(&model.vae.decode(&z).unwrap(), &own) > 1e-2);
    replace_vae(&mut model, original);
    assert_eq!(max_abs(&model.vae.decode(&z).unwrap(), &own), 0.0);
}

#[test]
fn a_file_without_vae_tensors_is_refused() {
    let path = fixtures().join("lora/sd1_kohya.safetensors");
    let Err(err) = load_standalone_vae(&path, 0.18215, &Device::Cpu) else {
        unreachable!("a LoRA file loaded as a VAE")
    };
    assert!(matches!(err, SdError::NotACheckpoint { .. }), "{err}");
}
