//! Stable Diffusion models on candle: single-file checkpoints, tokenizer, prompts, text encoders,
//! UNet, VAE.

pub mod prompt;
pub mod tokenizer;
