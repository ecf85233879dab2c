//! Stable Diffusion models on candle: single-file checkpoints, tokenizer, prompts, text encoders,
//! UNet, VAE.

pub mod bench;
pub mod checkpoint;
pub mod clip;
pub mod config;
mod diffusers;
pub mod embedding;
pub mod error;
pub mod library;
pub mod lora;
mod matmul;
pub mod memory;
pub mod model;
mod nn;
pub mod prompt;
pub mod tokenizer;
pub mod unet;
pub mod vae;

pub use checkpoint::Checkpoint;
pub use clip::TextEncoder;
pub use config::{
    ClipActivation, ClipLayout, ModelArch, ModelConfig, TextEncoderConfig, UNetConfig, VaeConfig,
};
pub use error::SdError;
pub use model::StableDiffusion;
pub use unet::UNet;
pub use vae::Vae;
