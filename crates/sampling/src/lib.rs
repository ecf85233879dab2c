//! Noise and sampling for Stable Diffusion, matching the reference implementations bit for bit
//! (noise) or to float rounding (schedules, samplers):
//! * [`TorchRng`]: PyTorch's CPU generator, `manual_seed` + `randn` in float32, bit-exact;
//! * [`DiscreteSchedule`] and [`Schedule`]: the eps-prediction noise table and the sigma schedules
//!   (k-diffusion / ComfyUI definitions); [`img2img_start`] for the strength rule;
//! * [`sample`] with a [`SamplerKind`]: k-diffusion's samplers (and ComfyUI's ddim / lcm) on candle
//!   tensors, over any [`Denoiser`] and [`NoiseSource`].

mod error;
mod rng;
mod sampler;
mod schedule;

pub use error::Error;
pub use rng::TorchRng;
pub use sampler::{Denoiser, NoiseSource, SamplerKind, StepProgress, TorchNoise, sample};
pub use schedule::{DiscreteSchedule, Img2ImgStart, Schedule, TRAIN_TIMESTEPS, img2img_start};
