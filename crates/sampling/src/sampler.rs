//! k-diffusion's samplers (and ComfyUI's `ddim` and `lcm`) on candle tensors.
//!
//! Every sampler follows its reference function line by line (`k_diffusion/sampling.py`:
//! `sample_euler`, `sample_euler_ancestral`, `sample_heun`, `sample_dpm_2`, `sample_lms`,
//! `sample_dpmpp_2m`, `sample_dpmpp_2m_sde`, `sample_dpmpp_sde`; ComfyUI `comfy/samplers.py`
//! "ddim" = the Euler sampler, `comfy/k_diffusion/sampling.py` `sample_lcm`), with the parameters
//! fidelity.md fixes (eta 1, s_noise 1, s_churn 0, midpoint solver, r = 1/2, LMS order 4).
//! Tensor work stays on the latent's device; only scalar sigma arithmetic runs on the host, in
//! float64.

use std::ops::ControlFlow;

use candle_core::{Device, Tensor};

use crate::{Error, TorchRng};

/// The model as the samplers see it: an x0 (denoised) prediction for a noisy latent at a noise
/// level. The pipeline implements it over the UNet: c_in scaling, σ → t, eps → x0 and
/// classifier-free guidance on the denoised values.
pub trait Denoiser {
    /// The denoised latent (same shape as `x`) for `x` at noise level `sigma` (> 0).
    fn denoise(&mut self, x: &Tensor, sigma: f64) -> Result<Tensor, Error>;
}

impl<F> Denoiser for F
where
    F: FnMut(&Tensor, f64) -> Result<Tensor, Error>,
{
    fn denoise(&mut self, x: &Tensor, sigma: f64) -> Result<Tensor, Error> {
        self(x, sigma)
    }
}

/// Where ancestral and SDE samplers get their extra noise: one standard-normal tensor of the
/// latent's shape per call, in the order the reference sampler calls its noise sampler.
pub trait NoiseSource {
    /// The next noise tensor (the shape of the latent being sampled).
    fn next_noise(&mut self) -> Result<Tensor, Error>;
}

impl<F> NoiseSource for F
where
    F: FnMut() -> Result<Tensor, Error>,
{
    fn next_noise(&mut self) -> Result<Tensor, Error> {
        self()
    }
}

/// Noise for a batch as A1111 draws it: image `i` has its own torch generator (seeded with
/// `seed + i`), each draw is one `randn` of the per-image latent shape from each generator,
/// concatenated along the batch axis. The first draw is the initial noise; later draws feed the
/// sampler.
#[derive(Debug, Clone)]
pub struct TorchNoise {
    generators: Vec<TorchRng>,
    image_shape: Vec<usize>,
    device: Device,
}

impl TorchNoise {
    /// One generator per image; `image_shape` is one image's latent shape, e.g. `[1, 4, h, w]`.
    pub fn new(generators: Vec<TorchRng>, image_shape: &[usize], device: &Device) -> Self {
        Self { generators, image_shape: image_shape.to_vec(), device: device.clone() }
    }

    /// Generators seeded `first_seed`, `first_seed + 1`, … (wrapping) for `batch` images.
    pub fn from_seeds(
        first_seed: u64,
        batch: usize,
        image_shape: &[usize],
        device: &Device,
    ) -> Self {
        let generators =
            (0..batch as u64).map(|i| TorchRng::new(first_seed.wrapping_add(i))).collect();
        Self::new(generators, image_shape, device)
    }

    /// The per-image generators (e.g. to continue drawing after sampling).
    pub fn generators(&self) -> &[TorchRng] {
        &self.generators
    }
}

impl NoiseSource for TorchNoise {
    fn next_noise(&mut self) -> Result<Tensor, Error> {
        let parts = self
            .generators
            .iter_mut()
            .map(|rng| rng.randn(&self.image_shape, &self.device))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Tensor::cat(&parts, 0)?)
    }
}

/// The samplers, by their CLI names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SamplerKind {
    /// `euler`: k-diffusion `sample_euler` (s_churn 0).
    Euler,
    /// `euler_a`: `sample_euler_ancestral`, eta 1, s_noise 1; one noise draw per step while the
    /// next σ > 0.
    EulerAncestral,
    /// `heun`: `sample_heun` (s_churn 0); two model calls per step except the last.
    Heun,
    /// `dpm_2`: `sample_dpm_2` (s_churn 0); two model calls per step except the last.
    Dpm2,
    /// `dpmpp_2m`: `sample_dpmpp_2m`.
    DpmPp2M,
    /// `dpmpp_2m_sde`: `sample_dpmpp_2m_sde`, eta 1, s_noise 1, midpoint; one draw per step while
    /// the next σ > 0.
    DpmPp2MSde,
    /// `dpmpp_sde`: `sample_dpmpp_sde`, eta 1, s_noise 1, r = 1/2; two model calls and two draws
    /// per step, one model call and no draw on the last.
    DpmPpSde,
    /// `lms`: `sample_lms`, order 4.
    Lms,
    /// `ddim`: ComfyUI's ddim, which is the Euler update.
    Ddim,
    /// `lcm`: ComfyUI's `sample_lcm`: x = denoised, then + σ_next·noise while σ_next > 0.
    Lcm,
}

impl SamplerKind {
    /// Every sampler, in CLI order.
    pub const ALL: [SamplerKind; 10] = [
        SamplerKind::Euler,
        SamplerKind::EulerAncestral,
        SamplerKind::Heun,
        SamplerKind::Dpm2,
        SamplerKind::DpmPp2M,
        SamplerKind::DpmPp2MSde,
        SamplerKind::DpmPpSde,
        SamplerKind::Lms,
        SamplerKind::Ddim,
        SamplerKind::Lcm,
    ];

    /// The CLI name (`euler_a`, `dpmpp_2m`, …).
    pub fn name(self) -> &'static str {
        match self {
            SamplerKind::Euler => "euler",
            SamplerKind::EulerAncestral => "euler_a",
            SamplerKind::Heun => "heun",
            SamplerKind::Dpm2 => "dpm_2",
            SamplerKind::DpmPp2M => "dpmpp_2m",
            SamplerKind::DpmPp2MSde => "dpmpp_2m_sde",
            SamplerKind::DpmPpSde => "dpmpp_sde",
            SamplerKind::Lms => "lms",
            SamplerKind::Ddim => "ddim",
            SamplerKind::Lcm => "lcm",
        }
    }

    /// The name A1111 writes in a PNG's `Sampler:` field.
    pub fn a1111_name(self) -> &'static str {
        match self {
            SamplerKind::Euler => "Euler",
            SamplerKind::EulerAncestral => "Euler a",
            SamplerKind::Heun => "Heun",
            SamplerKind::Dpm2 => "DPM2",
            SamplerKind::DpmPp2M => "DPM++ 2M",
            SamplerKind::DpmPp2MSde => "DPM++ 2M SDE",
            SamplerKind::DpmPpSde => "DPM++ SDE",
            SamplerKind::Lms => "LMS",
            SamplerKind::Ddim => "DDIM",
            SamplerKind::Lcm => "LCM",
        }
    }
}

impl std::fmt::Display for SamplerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for SamplerKind {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        SamplerKind::ALL
            .into_iter()
            .find(|kind| kind.name() == text)
            .ok_or_else(|| Error::UnknownSampler(text.to_owned()))
    }
}

/// What the progress callback sees after each completed step.
#[derive(Debug, Clone, Copy)]
pub struct StepProgress<'a> {
    /// Index of the step just completed, from 0.
    pub step: usize,
    /// Number of steps of the run (`sigmas.len() - 1`).
    pub total: usize,
    /// σ at the start of the step.
    pub sigma: f64,
    /// σ at the end of the step.
    pub sigma_next: f64,
    /// The step's (first) denoised prediction: what a preview shows.
    pub denoised: &'a Tensor,
    /// The latent after the step.
    pub latent: &'a Tensor,
}

/// Per-run state of the multistep samplers.
#[derive(Default)]
struct History {
    /// DPM++ 2M / 2M SDE: the previous step's denoised prediction.
    old_denoised: Option<Tensor>,
    /// DPM++ 2M SDE: the previous step's h.
    h_last: Option<f64>,
    /// LMS: the last (up to 4) derivatives, oldest first.
    derivatives: Vec<Tensor>,
}

/// `a·x + b·y` on tensors with host scalars.
fn combine(a: f64, x: &Tensor, b: f64, y: &Tensor) -> candle_core::Result<Tensor> {
    x.affine(a, 0.0)?.add(&y.affine(b, 0.0)?)
}

/// `x + a·y`.
fn add_scaled(x: &Tensor, a: f64, y: &Tensor) -> candle_core::Result<Tensor> {
    x.add(&y.affine(a, 0.0)?)
}

/// k-diffusion `to_d`: the Karras ODE derivative (x − denoised) / σ.
fn to_d(x: &Tensor, denoised: &Tensor, sigma: f64) -> candle_core::Result<Tensor> {
    x.sub(denoised)?.affine(1.0 / sigma, 0.0)
}

/// k-diffusion `get_ancestral_step` with eta 1: (σ_down, σ_up).
fn ancestral_step(sigma_from: f64, sigma_to: f64) -> (f64, f64) {
    let sigma_up = sigma_to.min(
        (sigma_to * sigma_to * (sigma_from * sigma_from - sigma_to * sigma_to)
            / (sigma_from * sigma_from))
            .sqrt(),
    );
    let sigma_down = (sigma_to * sigma_to - sigma_up * sigma_up).sqrt();
    (sigma_down, sigma_up)
}

/// k-diffusion `linear_multistep_coeff`: ∫ over [t_i, t_{i+1}] of the j-th Lagrange basis
/// polynomial through t_i, t_{i−1}, …, t_{i−order+1}. The reference integrates with
/// `scipy.integrate.quad`; the integrand is a polynomial of degree order − 1 ≤ 3, which 4-point
/// Gauss–Legendre integrates exactly.
fn lms_coefficient(order: usize, t: &[f64], i: usize, j: usize) -> f64 {
    const NODES: [f64; 4] = [
        -0.861_136_311_594_052_6,
        -0.339_981_043_584_856_3,
        0.339_981_043_584_856_3,
        0.861_136_311_594_052_6,
    ];
    const WEIGHTS: [f64; 4] = [
        0.347_854_845_137_453_8,
        0.652_145_154_862_546_1,
        0.652_145_154_862_546_1,
        0.347_854_845_137_453_8,
    ];
    let at = |index: Option<usize>| index.and_then(|k| t.get(k)).copied().unwrap_or(f64::NAN);
    let basis = |tau: f64| -> f64 {
        (0..order)
            .filter(|k| *k != j)
            .map(|k| {
                let t_k = at(i.checked_sub(k));
                (tau - t_k) / (at(i.checked_sub(j)) - t_k)
            })
            .product()
    };
    let (start, end) = (at(Some(i)), at(Some(i + 1)));
    let (half, middle) = ((end - start) / 2.0, (end + start) / 2.0);
    half * NODES
        .iter()
        .zip(WEIGHTS)
        .map(|(node, weight)| weight * basis(half * node + middle))
        .sum::<f64>()
}

fn validate_sigmas(sigmas: &[f64]) -> Result<(), Error> {
    let Some((last, leading)) = sigmas.split_last() else {
        return Err(Error::InvalidSigmas("no sigmas"));
    };
    if !sigmas.iter().all(|s| s.is_finite()) {
        return Err(Error::InvalidSigmas("not all finite"));
    }
    if *last < 0.0 || leading.iter().any(|s| *s <= 0.0) {
        return Err(Error::InvalidSigmas(
            "all but the last must be positive, the last non-negative",
        ));
    }
    if sigmas.windows(2).any(|pair| matches!(pair, [a, b] if b > a)) {
        return Err(Error::InvalidSigmas("must not increase"));
    }
    Ok(())
}

/// The next noise draw, checked against the latent's shape and moved to its device and dtype
/// (torch's noise is float32 on the CPU; the latent may live elsewhere).
fn checked_noise(noise: &mut dyn NoiseSource, like: &Tensor) -> Result<Tensor, Error> {
    let drawn = noise.next_noise()?;
    if drawn.dims() != like.dims() {
        return Err(Error::NoiseShape {
            noise: drawn.dims().to_vec(),
            latent: like.dims().to_vec(),
        });
    }
    Ok(drawn.to_device(like.device())?.to_dtype(like.dtype())?)
}

/// Runs `kind` from latent `x` over `sigmas` (`steps + 1` values, from the start σ down to the
/// final one, usually 0). `x` must already carry its noise (txt2img: noise · σ₀; img2img: init +
/// noise · σ_start). `noise` supplies the extra noise of ancestral / SDE samplers (the next draws
/// after the initial noise). `progress` is called after every step; returning
/// `ControlFlow::Break(())` stops the run with [`Error::Cancelled`] before the next step.
///
/// A single sigma means zero steps: `x` is returned unchanged.
pub fn sample(
    kind: SamplerKind,
    denoiser: &mut dyn Denoiser,
    x: &Tensor,
    sigmas: &[f64],
    noise: &mut dyn NoiseSource,
    progress: &mut dyn FnMut(StepProgress<'_>) -> ControlFlow<()>,
) -> Result<Tensor, Error> {
    validate_sigmas(sigmas)?;
    let total = sigmas.len() - 1;
    let mut x = x.clone();
    let mut history = History::default();
    for (step, pair) in sigmas.windows(2).enumerate() {
        let &[sigma, sigma_next] = pair else { continue };
        let sigma_previous = step.checked_sub(1).and_then(|i| sigmas.get(i)).copied();
        let (next_x, denoised) = match kind {
            SamplerKind::Euler | SamplerKind::Ddim => {
                let denoised = denoiser.denoise(&x, sigma)?;
                let d = to_d(&x, &denoised, sigma)?;
                (add_scaled(&x, sigma_next - sigma, &d)?, denoised)
            }
            SamplerKind::EulerAncestral => {
                let denoised = denoiser.denoise(&x, sigma)?;
                let (sigma_down, sigma_up) = ancestral_step(sigma, sigma_next);
                let d = to_d(&x, &denoised, sigma)?;
                let mut next = add_scaled(&x, sigma_down - sigma, &d)?;
                if sigma_next > 0.0 {
                    next = add_scaled(&next, sigma_up, &checked_noise(noise, &x)?)?;
                }
                (next, denoised)
            }
            SamplerKind::Heun => {
                let denoised = denoiser.denoise(&x, sigma)?;
                let d = to_d(&x, &denoised, sigma)?;
                let dt = sigma_next - sigma;
                let next = if sigma_next == 0.0 {
                    add_scaled(&x, dt, &d)?
                } else {
                    let x_2 = add_scaled(&x, dt, &d)?;
                    let denoised_2 = denoiser.denoise(&x_2, sigma_next)?;
                    let d_2 = to_d(&x_2, &denoised_2, sigma_next)?;
                    let d_prime = combine(0.5, &d, 0.5, &d_2)?;
                    add_scaled(&x, dt, &d_prime)?
                };
                (next, denoised)
            }
            SamplerKind::Dpm2 => {
                let denoised = denoiser.denoise(&x, sigma)?;
                let d = to_d(&x, &denoised, sigma)?;
                let next = if sigma_next == 0.0 {
                    add_scaled(&x, sigma_next - sigma, &d)?
                } else {
                    let (log_sigma, log_next) = (sigma.ln(), sigma_next.ln());
                    let sigma_mid = (log_sigma + 0.5 * (log_next - log_sigma)).exp();
                    let x_2 = add_scaled(&x, sigma_mid - sigma, &d)?;
                    let denoised_2 = denoiser.denoise(&x_2, sigma_mid)?;
                    let d_2 = to_d(&x_2, &denoised_2, sigma_mid)?;
                    add_scaled(&x, sigma_next - sigma, &d_2)?
                };
                (next, denoised)
            }
            SamplerKind::Lms => {
                const ORDER: usize = 4;
                let denoised = denoiser.denoise(&x, sigma)?;
                history.derivatives.push(to_d(&x, &denoised, sigma)?);
                if history.derivatives.len() > ORDER {
                    history.derivatives.remove(0);
                }
                let order = (step + 1).min(ORDER);
                let mut next = x.clone();
                // coefficient j pairs with the j-th most recent derivative.
                for (j, d) in history.derivatives.iter().rev().enumerate().take(order) {
                    next = add_scaled(&next, lms_coefficient(order, sigmas, step, j), d)?;
                }
                (next, denoised)
            }
            SamplerKind::DpmPp2M => {
                let denoised = denoiser.denoise(&x, sigma)?;
                // t = −ln σ; h = t_next − t; σ(t_next)/σ(t) = σ_next/σ.
                let h = sigma.ln() - sigma_next.ln();
                let ratio = sigma_next / sigma;
                let scale = -(-h).exp_m1();
                let next = match (&history.old_denoised, sigma_previous) {
                    (Some(old), Some(previous)) if sigma_next != 0.0 => {
                        let h_last = previous.ln() - sigma.ln();
                        let r = h_last / h;
                        let denoised_d =
                            combine(1.0 + 1.0 / (2.0 * r), &denoised, -1.0 / (2.0 * r), old)?;
                        combine(ratio, &x, scale, &denoised_d)?
                    }
                    _ => combine(ratio, &x, scale, &denoised)?,
                };
                history.old_denoised = Some(denoised.clone());
                (next, denoised)
            }
            SamplerKind::DpmPp2MSde => {
                let denoised = denoiser.denoise(&x, sigma)?;
                let next = if sigma_next == 0.0 {
                    denoised.clone()
                } else {
                    let h = sigma.ln() - sigma_next.ln();
                    let eta_h = h; // eta = 1
                    let scale = -(-h - eta_h).exp_m1();
                    let mut next =
                        combine(sigma_next / sigma * (-eta_h).exp(), &x, scale, &denoised)?;
                    if let (Some(old), Some(h_last)) = (&history.old_denoised, history.h_last) {
                        let r = h_last / h;
                        let difference = denoised.sub(old)?;
                        next = add_scaled(&next, 0.5 * scale * (1.0 / r), &difference)?;
                    }
                    let noise_scale = sigma_next * (-(-2.0 * eta_h).exp_m1()).sqrt();
                    let drawn = checked_noise(noise, &x)?;
                    history.h_last = Some(h);
                    add_scaled(&next, noise_scale, &drawn)?
                };
                history.old_denoised = Some(denoised.clone());
                (next, denoised)
            }
            SamplerKind::DpmPpSde => {
                let denoised = denoiser.denoise(&x, sigma)?;
                let next = if sigma_next == 0.0 {
                    let d = to_d(&x, &denoised, sigma)?;
                    add_scaled(&x, sigma_next - sigma, &d)?
                } else {
                    const R: f64 = 0.5;
                    let sigma_fn = |t: f64| (-t).exp();
                    let t_fn = |s: f64| -s.ln();
                    let (t, t_next) = (t_fn(sigma), t_fn(sigma_next));
                    let h = t_next - t;
                    let s = t + h * R;
                    let fac = 1.0 / (2.0 * R);
                    // Step 1
                    let (sd, su) = ancestral_step(sigma_fn(t), sigma_fn(s));
                    let s_ = t_fn(sd);
                    let x_2 =
                        combine(sigma_fn(s_) / sigma_fn(t), &x, -(t - s_).exp_m1(), &denoised)?;
                    let x_2 = add_scaled(&x_2, su, &checked_noise(noise, &x)?)?;
                    let denoised_2 = denoiser.denoise(&x_2, sigma_fn(s))?;
                    // Step 2
                    let (sd, su) = ancestral_step(sigma_fn(t), sigma_fn(t_next));
                    let t_next_ = t_fn(sd);
                    let denoised_d = combine(1.0 - fac, &denoised, fac, &denoised_2)?;
                    let next = combine(
                        sigma_fn(t_next_) / sigma_fn(t),
                        &x,
                        -(t - t_next_).exp_m1(),
                        &denoised_d,
                    )?;
                    add_scaled(&next, su, &checked_noise(noise, &x)?)?
                };
                (next, denoised)
            }
            SamplerKind::Lcm => {
                let denoised = denoiser.denoise(&x, sigma)?;
                let next = if sigma_next > 0.0 {
                    add_scaled(&denoised, sigma_next, &checked_noise(noise, &x)?)?
                } else {
                    denoised.clone()
                };
                (next, denoised)
            }
        };
        x = next_x;
        let report =
            StepProgress { step, total, sigma, sigma_next, denoised: &denoised, latent: &x };
        if progress(report).is_break() {
            return Err(Error::Cancelled);
        }
    }
    Ok(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampler_names_round_trip() {
        for kind in SamplerKind::ALL {
            assert_eq!(kind.to_string().parse::<SamplerKind>().unwrap(), kind);
        }
        assert!(matches!("k_euler".parse::<SamplerKind>(), Err(Error::UnknownSampler(_))));
    }

    #[test]
    fn lms_coefficients_integrate_the_lagrange_basis() {
        let t = [10.0, 6.0, 3.5, 2.0, 1.0, 0.0];
        // Order 1: the integral of 1 over [t_0, t_1].
        assert!((lms_coefficient(1, &t, 0, 0) - (6.0 - 10.0)).abs() < 1e-12);
        // The basis sums to 1, so the coefficients sum to t_{i+1} − t_i.
        let sum: f64 = (0..4).map(|j| lms_coefficient(4, &t, 4, j)).sum();
        assert!((sum - (0.0 - 1.0)).abs() < 1e-12);
    }

    #[test]
    fn half_precision_latents_take_float32_noise() {
        let device = Device::Cpu;
        let x = TorchRng::new(3).randn(&[1, 4, 4, 4], &device).unwrap();
        let x = x.to_dtype(candle_core::DType::F16).unwrap();
        let mut denoiser =
            |x: &Tensor, _sigma: f64| -> Result<Tensor, Error> { Ok(x.affine(0.5, 0.0)?) };
        let mut noise = TorchNoise::from_seeds(4, 1, &[1, 4, 4, 4], &device);
        for kind in SamplerKind::ALL {
            let out =
                sample(kind, &mut denoiser, &x, &[2.0, 1.0, 0.5, 0.0], &mut noise, &mut |_| {
                    ControlFlow::Continue(())
                })
                .unwrap();
            assert_eq!(out.dtype(), candle_core::DType::F16, "{kind}");
            assert_eq!(out.dims(), x.dims());
        }
    }

    #[test]
    fn noise_of_the_wrong_shape_is_a_typed_error() {
        let x = Tensor::zeros((1, 4, 2, 2), candle_core::DType::F32, &Device::Cpu).unwrap();
        let mut denoiser = |x: &Tensor, _sigma: f64| -> Result<Tensor, Error> { Ok(x.clone()) };
        let mut noise = TorchNoise::from_seeds(0, 2, &[1, 4, 2, 2], &Device::Cpu);
        let result = sample(
            SamplerKind::EulerAncestral,
            &mut denoiser,
            &x,
            &[1.0, 0.5, 0.0],
            &mut noise,
            &mut |_| ControlFlow::Continue(()),
        );
        assert!(matches!(result, Err(Error::NoiseShape { .. })));
    }

    #[test]
    fn invalid_sigmas_are_typed_errors() {
        let x = Tensor::zeros((1, 4, 2, 2), candle_core::DType::F32, &Device::Cpu).unwrap();
        let mut denoiser = |x: &Tensor, _sigma: f64| -> Result<Tensor, Error> { Ok(x.clone()) };
        let mut noise = || -> Result<Tensor, Error> { Ok(x.clone()) };
        for sigmas in [&[][..], &[1.0, 2.0, 0.0], &[1.0, 0.0, 0.0], &[f64::NAN, 0.0], &[1.0, -1.0]]
        {
            let result =
                sample(SamplerKind::Euler, &mut denoiser, &x, sigmas, &mut noise, &mut |_| {
                    ControlFlow::Continue(())
                });
            assert!(matches!(result, Err(Error::InvalidSigmas(_))), "{sigmas:?}");
        }
    }
}
