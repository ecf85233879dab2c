//! Full generations with LoRAs (weights 0.8 and −0.5, two LoRAs with separate text-encoder/UNet
//! weights, LoHa + LoKr + PEFT together, SDXL) and a standalone-VAE override, against
//! tests/reference/lora_reference.py (A1111 conditioning + k-diffusion on diffusers modules
//! patched with A1111's arithmetic), PSNR ≥ 40 dB. The LoRAs are applied to the loaded model with
//! `sd::lora::apply_loras` and restored afterwards; the pipeline itself is unchanged.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test helpers fail loudly")]

mod support;

use std::ops::ControlFlow;
use std::path::PathBuf;

use candle_core::{DType, Device};
use pentimento_pipeline::generate::{EncodedPrompts, generate_with_chunks};
use pentimento_pipeline::request::GenerationRequest;
use raster::{DecodeLimits, decode_image};
use sampling::{SamplerKind, Schedule};
use sd::embedding::EmbeddingSet;
use sd::lora::{
    LoraSpec, LoraWeights, apply_loras, layer_weights, load_standalone_vae, replace_vae, restore,
};
use sd::prompt::Chunk;
use sd::{Checkpoint, StableDiffusion};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

fn chunks(encoders: &serde_json::Value) -> Vec<Vec<Chunk>> {
    encoders.as_array().unwrap().iter().map(support::chunks_from_json).collect()
}

fn psnr(a: &[[u8; 4]], b: &[[u8; 4]]) -> f64 {
    assert_eq!(a.len(), b.len());
    let mse = a
        .iter()
        .zip(b)
        .flat_map(|(p, q)| (0..3).map(move |c| (f64::from(p[c]) - f64::from(q[c])).powi(2)))
        .sum::<f64>()
        / (3 * a.len()) as f64;
    if mse == 0.0 { f64::INFINITY } else { 10.0 * (255.0 * 255.0 / mse).log10() }
}

#[test]
fn lora_and_vae_images_match_the_reference() {
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("lora/lora.json")).unwrap())
            .unwrap();
    for job in manifest["jobs"].as_array().unwrap() {
        let name = job["name"].as_str().unwrap();
        let kind = job["model"].as_str().unwrap();
        let ckpt =
            Checkpoint::open(fixtures().join(format!("models/tiny_{kind}.safetensors"))).unwrap();
        let mut model = StableDiffusion::load(&ckpt, &Device::Cpu, DType::F32).unwrap();
        let before: Vec<_> = layer_weights(&mut model).unwrap();
        let specs: Vec<LoraSpec> = job["loras"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| LoraSpec {
                path: fixtures().join(format!("lora/{}.safetensors", l[0].as_str().unwrap())),
                weights: LoraWeights {
                    text_encoder: l[1].as_f64().unwrap() as f32,
                    unet: l[2].as_f64().unwrap() as f32,
                },
            })
            .collect();
        let applied = apply_loras(&mut model, &specs).unwrap();
        assert!(applied.report().unmatched_keys().is_empty());
        let checkpoint_vae = job["vae"].as_str().map(|vae| {
            let path = fixtures().join(format!("lora/{vae}.safetensors"));
            let vae = load_standalone_vae(&path, model.vae.scaling_factor(), &Device::Cpu).unwrap();
            replace_vae(&mut model, vae)
        });
        let mut request = GenerationRequest::txt2img(
            job["prompt"].as_str().unwrap(),
            job["width"].as_u64().unwrap() as u32,
            job["height"].as_u64().unwrap() as u32,
            job["seed"].as_u64().unwrap(),
        );
        request.negative_prompt = job["negative"].as_str().unwrap().to_string();
        request.steps = job["steps"].as_u64().unwrap() as u32;
        request.cfg_scale = job["cfg"].as_f64().unwrap() as f32;
        assert_eq!(job["sampler"], "euler");
        assert_eq!(job["schedule"], "normal");
        request.sampler = SamplerKind::Euler;
        request.schedule = Schedule::Normal;
        let (cond, uncond) = (chunks(&job["cond"]), chunks(&job["uncond"]));
        let no_embeddings = EmbeddingSet::default();
        let prompts = EncodedPrompts { cond: &cond, uncond: &uncond, embeddings: &no_embeddings };
        let generated =
            generate_with_chunks(&model, &request, &prompts, &mut |_| ControlFlow::Continue(()))
                .unwrap();
        let bytes =
            std::fs::read(fixtures().join("lora").join(job["file"].as_str().unwrap())).unwrap();
        let expected = decode_image(&bytes, &DecodeLimits::default()).unwrap().image;
        let quality = psnr(generated.images[0].pixels(), expected.pixels());
        eprintln!("{name}: PSNR {quality:.1} dB");
        assert!(quality >= 40.0, "{name}: PSNR {quality:.1} dB");
        if let Some(vae) = checkpoint_vae {
            replace_vae(&mut model, vae);
        }
        restore(&mut model, applied).unwrap();
        let after = layer_weights(&mut model).unwrap();
        for ((id, a), (_, b)) in before.iter().zip(&after) {
            let same = (a - b)
                .unwrap()
                .abs()
                .unwrap()
                .flatten_all()
                .unwrap()
                .max(0)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert_eq!(same, 0.0, "{name}: {id} not restored");
        }
    }
}
