//! Errors of this crate.

/// Everything that can go wrong while scheduling or sampling.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller's progress callback asked to stop; nothing was finished.
    #[error("sampling cancelled")]
    Cancelled,
    #[error(
        "unknown sampler `{0}` (expected one of euler, euler_a, heun, dpm_2, dpmpp_2m, dpmpp_2m_sde, dpmpp_sde, lms, ddim, lcm)"
    )]
    UnknownSampler(String),
    #[error(
        "unknown schedule `{0}` (expected one of normal, karras, exponential, sgm_uniform, simple)"
    )]
    UnknownSchedule(String),
    #[error("the number of sampling steps must be at least 1")]
    ZeroSteps,
    #[error("img2img strength must be between 0 and 1, got {0}")]
    InvalidStrength(f64),
    #[error("alphas_cumprod must have at least two entries, decreasing, each in (0, 1)")]
    InvalidAlphasCumprod,
    /// The sigmas handed to a sampler are not a usable schedule.
    #[error("invalid sigmas: {0}")]
    InvalidSigmas(&'static str),
    /// The noise source produced a tensor that does not match the latent.
    #[error("noise of shape {noise:?} does not match the latent of shape {latent:?}")]
    NoiseShape { noise: Vec<usize>, latent: Vec<usize> },
    /// The denoiser (the UNet behind classifier-free guidance) failed.
    #[error("denoiser failed: {0}")]
    Denoiser(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}
