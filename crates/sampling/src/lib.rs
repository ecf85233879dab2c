//! Noise and sampling for Stable Diffusion, matching the reference implementations bit for bit
//! (noise) or to float rounding (schedules, samplers):
//! * [`TorchRng`]: PyTorch's CPU generator, `manual_seed` + `randn` in float32, bit-exact;
//! * [`DiscreteSchedule`] and [`Schedule`]: the eps-prediction noise table and the sigma schedules
//!   (k-diffusion / ComfyUI definitions); [`img2img_start`] for the strength rule;
//! * [`sample`] with a [`SamplerKind`]: k-diffusion's samplers (and ComfyUI's ddim / lcm) on candle
//!   tensors, over any [`Denoiser`] and [`NoiseSource`].
//!
//! A txt2img run as the pipeline drives it (the closure stands in for UNet + CFG):
//! ```
//! use std::ops::ControlFlow;
//! use candle_core::{Device, Tensor};
//! use pentimento_sampling::{
//!     DiscreteSchedule, Error, NoiseSource, SamplerKind, Schedule, TorchNoise, sample,
//! };
//!
//! # fn main() -> Result<(), Error> {
//! let device = Device::Cpu;
//! let table = DiscreteSchedule::stable_diffusion();
//! let sigmas = table.sigmas_for(Schedule::Karras, 20)?;
//! // Two images, seeds 42 and 43, latent [1, 4, 64, 64] each.
//! let mut noise = TorchNoise::from_seeds(42, 2, &[1, 4, 64, 64], &device);
//! let x = noise.next_noise()?.affine(sigmas[0], 0.0)?; // the first draw is the initial noise
//! let mut denoiser = |x: &Tensor, sigma: f64| -> Result<Tensor, Error> {
//!     let _t = table.sigma_to_t(sigma); // the UNet's timestep
//!     Ok(x.affine(1.0 / (sigma * sigma + 1.0), 0.0)?) // the x0 prediction after CFG
//! };
//! let latent = sample(SamplerKind::EulerAncestral, &mut denoiser, &x, &sigmas, &mut noise, &mut |p| {
//!     // p.step / p.total, p.denoised for a preview; Break(()) cancels.
//!     ControlFlow::Continue(())
//! })?;
//! assert_eq!(latent.dims(), &[2, 4, 64, 64]);
//! # Ok(())
//! # }
//! ```

mod error;
mod rng;
mod sampler;
mod schedule;

pub use error::Error;
pub use rng::TorchRng;
pub use sampler::{Denoiser, NoiseSource, SamplerKind, StepProgress, TorchNoise, sample};
pub use schedule::{DiscreteSchedule, Img2ImgStart, Schedule, TRAIN_TIMESTEPS, img2img_start};
