//! A whole checkpoint loaded for inference: text encoder(s), UNet and VAE.

use candle_core::{DType, Device};

use crate::checkpoint::{Checkpoint, Weights};
use crate::clip::TextEncoder;
use crate::config::{ModelArch, ModelConfig, UNET_PREFIX, VAE_PREFIX};
use crate::error::Result;
use crate::unet::UNet;
use crate::vae::Vae;

/// The loaded model. SD1.x has one text encoder (CLIP-L, HF layout); SDXL has two, in order
/// CLIP-L (HF layout) and OpenCLIP bigG (with `text_projection`).
pub struct StableDiffusion {
    config: ModelConfig,
    pub text_encoders: Vec<TextEncoder>,
    pub unet: UNet,
    pub vae: Vae,
    pub device: Device,
    pub dtype: DType,
}

impl StableDiffusion {
    /// Loads every weight of `checkpoint` as `dtype` on `device` (f32 on CPU is the default
    /// everyone should use; stored f16/bf16 is upcast).
    pub fn load(checkpoint: &Checkpoint, device: &Device, dtype: DType) -> Result<Self> {
        let config = checkpoint.config().clone();
        let root = Weights::new(&checkpoint.store, dtype, device.clone());
        let strip = |prefix: &str| prefix.strip_suffix('.').unwrap_or(prefix).to_string();
        let text_encoders = config
            .text_encoders
            .iter()
            .map(|te| TextEncoder::load(te, &root))
            .collect::<Result<Vec<_>>>()?;
        let unet = UNet::load(&config.unet, &root.pp(strip(UNET_PREFIX)))?;
        let vae = Vae::load(&config.vae, &root.pp(strip(VAE_PREFIX)))?;
        Ok(Self { config, text_encoders, unet, vae, device: device.clone(), dtype })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    pub fn arch(&self) -> ModelArch {
        self.config.arch
    }
}

impl StableDiffusion {
    /// Builds the model from any tensor source (the LoRA bench's random full-size weights).
    pub(crate) fn from_source(
        config: ModelConfig,
        source: &dyn crate::checkpoint::TensorSource,
        device: &Device,
        dtype: DType,
    ) -> Result<Self> {
        let root = Weights::new(source, dtype, device.clone());
        let strip = |prefix: &str| prefix.strip_suffix('.').unwrap_or(prefix).to_string();
        let text_encoders = config
            .text_encoders
            .iter()
            .map(|te| TextEncoder::load(te, &root))
            .collect::<Result<Vec<_>>>()?;
        let unet = UNet::load(&config.unet, &root.pp(strip(UNET_PREFIX)))?;
        let vae = Vae::load(&config.vae, &root.pp(strip(VAE_PREFIX)))?;
        Ok(Self { config, text_encoders, unet, vae, device: device.clone(), dtype })
    }
}
