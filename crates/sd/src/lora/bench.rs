//! Timing LoRA apply + restore at full SD1.5 size: a full-size SD1.5 model with random weights
//! built in memory, a kohya LoRA of the usual layer set (every UNet transformer linear, proj_in/
//! proj_out, every CLIP attention/MLP linear; optionally LoCon convolutions) written to a
//! temporary f16 `.safetensors` file, then opened, applied and restored.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use rayon::prelude::*;

use super::names::UNetNames;
use super::{
    LoraError, LoraFile, LoraWeights, apply_lora_files, collect_targets, repatch_lora_files,
    restore,
};
use crate::checkpoint::TensorSource;
use crate::config::{
    ModelArch, ModelConfig, SD1_CLIP_PREFIX, TextEncoderConfig, UNetConfig, VaeConfig,
};
use crate::error::Result;
use crate::model::StableDiffusion;
use crate::nn::PatchableMut;

/// Uniform random weights with std ≈ 1/√fan_in (deterministic per name).
struct Random;

impl TensorSource for Random {
    fn load(&self, name: &str, shape: &[usize], dtype: DType, device: &Device) -> Result<Tensor> {
        let count: usize = shape.iter().product();
        let fan_in: usize = shape.iter().skip(1).product::<usize>().max(1);
        #[allow(clippy::cast_precision_loss, reason = "fan-in is a small integer")]
        let half_width = (3.0 / fan_in as f32).sqrt();
        let mut hasher = DefaultHasher::new();
        name.hash(&mut hasher);
        let seed = hasher.finish();
        let mut values = vec![0f32; count];
        values.par_chunks_mut(1 << 16).enumerate().for_each(|(chunk, out)| {
            let mut state = seed ^ (chunk as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            for v in out {
                state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                #[allow(clippy::cast_precision_loss, reason = "24 random bits to a float")]
                let unit = (state >> 40) as f32 / (1u64 << 24) as f32;
                *v = half_width * (2.0 * unit - 1.0);
            }
        });
        Ok(Tensor::from_vec(values, shape, &Device::Cpu)?.to_dtype(dtype)?.to_device(device)?)
    }

    fn shape_of(&self, _name: &str) -> Option<Vec<usize>> {
        None
    }
}

/// Measured figures of one apply + restore.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LoraBench {
    pub rank: usize,
    pub with_conv: bool,
    pub lora_modules: usize,
    pub lora_parameters: usize,
    /// Parameters of the patched layers (what apply rewrites).
    pub patched_parameters: usize,
    pub build_model_seconds: f64,
    /// Reading the f16 file into f32 modules.
    pub open_seconds: f64,
    /// Computing every ΔW and replacing the weights.
    pub patch_seconds: f64,
    /// `open_seconds + patch_seconds`.
    pub apply_seconds: f64,
    /// Changing the weight of the applied LoRA (0.8 → 0.5): rewritten in place.
    pub reweight_seconds: f64,
    pub restore_seconds: f64,
    pub patched_layers: usize,
    /// Whether every restored weight is the original tensor, bit for bit.
    pub restored_bit_exact: bool,
}

/// Builds a random full-size SD1.5 model on `device` and times applying and restoring a kohya
/// LoRA of `rank` (with LoCon 3×3 convolutions when `with_conv`).
pub fn bench_apply_restore_sd15(
    rank: usize,
    with_conv: bool,
    device: &Device,
) -> std::result::Result<LoraBench, LoraError> {
    let arch = ModelArch::Sd1;
    let config = ModelConfig {
        arch,
        unet: UNetConfig::sd15(),
        vae: VaeConfig::real(arch.latent_scaling()),
        text_encoders: vec![TextEncoderConfig::clip_l(SD1_CLIP_PREFIX)],
        latent_scaling: arch.latent_scaling(),
    };
    let start = Instant::now();
    let mut model = StableDiffusion::from_source(config, &Random, device, DType::F32)?;
    let build_model_seconds = start.elapsed().as_secs_f64();

    let unet_names = UNetNames::new(model.unet.config());
    let mut tensors = Vec::new();
    let mut patched_parameters = 0usize;
    let mut before = Vec::new();
    for target in collect_targets(&mut model) {
        let (component, name) = target.id.split_once(':').unwrap_or_default();
        let kohya = if component == "unet" {
            let attention = name.contains(".transformer_blocks.")
                || name.ends_with("proj_in")
                || name.ends_with("proj_out");
            let conv = matches!(target.layer, PatchableMut::Conv(_));
            if !(attention || (with_conv && conv)) {
                continue;
            }
            match unet_names.diffusers_name(name) {
                Some(d) => format!("lora_unet_{}", d.replace('.', "_")),
                None => continue,
            }
        } else {
            format!("lora_te_{}", name.replace('.', "_"))
        };
        let dims = target.dims();
        let (out, inp) = (dims.first().copied().unwrap_or(0), dims.get(1).copied().unwrap_or(0));
        let kernel: Vec<usize> = dims.iter().skip(2).copied().collect();
        let mut down_shape = vec![rank, inp];
        down_shape.extend(&kernel);
        let mut up_shape = vec![out, rank];
        up_shape.extend(kernel.iter().map(|_| 1));
        let load = |suffix: &str, shape: &[usize]| {
            Random.load(&format!("{kohya}.{suffix}"), shape, DType::F16, &Device::Cpu)
        };
        tensors.push((format!("{kohya}.lora_down.weight"), load("down", &down_shape)?));
        tensors.push((format!("{kohya}.lora_up.weight"), load("up", &up_shape)?));
        #[allow(clippy::cast_precision_loss, reason = "ranks are small integers")]
        let alpha = Tensor::new(&[rank as f32 / 2.0], &Device::Cpu)?.to_dtype(DType::F16)?;
        tensors.push((format!("{kohya}.alpha"), alpha));
        patched_parameters += dims.iter().product::<usize>();
        before.push((target.id.clone(), weight_of(&target.layer)));
    }
    let lora_modules = tensors.len() / 3;
    let lora_parameters = tensors.iter().map(|(_, t)| t.elem_count()).sum();
    let dir = std::env::temp_dir().join(format!("pentimento-lora-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .map_err(|source| crate::SdError::Io { path: dir.clone(), source })?;
    let path = dir.join("bench_sd15.safetensors");
    candle_core::safetensors::save(&tensors.into_iter().collect(), &path)?;

    let start = Instant::now();
    let file = LoraFile::open(&path);
    let open_seconds = start.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&dir);
    let file = file?;
    let start = Instant::now();
    let applied = apply_lora_files(&mut model, &[(&file, LoraWeights::both(0.8))])?;
    let patch_seconds = start.elapsed().as_secs_f64();
    let apply_seconds = open_seconds + patch_seconds;
    let patched_layers = applied.report().patched_layers;
    let start = Instant::now();
    let applied =
        repatch_lora_files(&mut model, &[(&file, LoraWeights::both(0.5))], Some(applied))?;
    let reweight_seconds = start.elapsed().as_secs_f64();
    let start = Instant::now();
    restore(&mut model, applied)?;
    let restore_seconds = start.elapsed().as_secs_f64();

    let after: std::collections::HashMap<String, Tensor> = collect_targets(&mut model)
        .into_iter()
        .map(|t| (t.id.clone(), weight_of(&t.layer)))
        .collect();
    // The very same tensors (same storage) are back: bit-exact by construction.
    let restored_bit_exact = before
        .iter()
        .all(|(id, original)| after.get(id).is_some_and(|now| now.id() == original.id()));
    Ok(LoraBench {
        rank,
        with_conv,
        lora_modules,
        lora_parameters,
        patched_parameters,
        build_model_seconds,
        open_seconds,
        patch_seconds,
        apply_seconds,
        reweight_seconds,
        restore_seconds,
        patched_layers,
        restored_bit_exact,
    })
}

fn weight_of(layer: &PatchableMut<'_>) -> Tensor {
    match layer {
        PatchableMut::Linear(l) => l.weight_t().clone(),
        PatchableMut::Conv(c) => c.weight_2d().clone(),
    }
}
