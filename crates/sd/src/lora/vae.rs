//! Standalone VAE files (`models/vae/*.safetensors`): LDM keys with or without the
//! `first_stage_model.` prefix, or the diffusers `AutoencoderKL` layout, replacing the
//! checkpoint's VAE. Loaded in f32 whatever the model's dtype: SDXL's VAE overflows in f16.

use std::path::Path;

use candle_core::{DType, Device};

use crate::checkpoint::{SafetensorsFile, TensorStore, Weights};
use crate::config::{VAE_PREFIX, infer_vae_only};
use crate::diffusers::{count, rename_vae};
use crate::error::{Result, SdError};
use crate::model::StableDiffusion;
use crate::vae::Vae;

/// Loads the VAE in `path` (f32 on `device`) with the latent scaling of the model family it will
/// serve (`model.vae.scaling_factor()`; VAE files do not record it).
pub fn load_standalone_vae(
    path: impl AsRef<Path>,
    scaling_factor: f64,
    device: &Device,
) -> Result<Vae> {
    let path = path.as_ref();
    let file = SafetensorsFile::open(path)?;
    let names = file.names();
    let prefixed = names.iter().any(|n| n.starts_with(VAE_PREFIX));
    let diffusers = !prefixed
        && names.iter().any(|n| n.starts_with("decoder.up_blocks.") || n.contains(".mid_block."));
    let plain = !prefixed
        && !diffusers
        && names.iter().any(|n| n.starts_with("decoder.") || n.starts_with("encoder."));
    if !prefixed && !diffusers && !plain {
        return Err(SdError::NotACheckpoint {
            path: path.to_path_buf(),
            looks_like: "a file without VAE tensors (no `encoder.*`/`decoder.*` keys), not a VAE"
                .into(),
        });
    }
    let levels = count(&names, "decoder.up_blocks.", ".resnets.0.conv1.weight");
    let mut store = TensorStore::empty();
    store.add_file(file, &|key| {
        if prefixed {
            key.starts_with(VAE_PREFIX).then(|| key.to_string())
        } else if diffusers {
            rename_vae(key, levels).map(|n| format!("{VAE_PREFIX}{n}"))
        } else {
            let vae_key = key.starts_with("encoder.")
                || key.starts_with("decoder.")
                || key.starts_with("quant_conv.")
                || key.starts_with("post_quant_conv.");
            vae_key.then(|| format!("{VAE_PREFIX}{key}"))
        }
    });
    let config = infer_vae_only(&store, scaling_factor)?;
    let weights = Weights::new(&store, DType::F32, device.clone());
    Vae::load(&config, &weights.pp(VAE_PREFIX.trim_end_matches('.')))
}

/// Puts `vae` in `model` and returns the VAE it replaces (keep it to switch back without
/// reloading the checkpoint).
pub fn replace_vae(model: &mut StableDiffusion, vae: Vae) -> Vae {
    std::mem::replace(&mut model.vae, vae)
}
