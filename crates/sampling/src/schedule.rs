//! The discrete eps-prediction noise table of Stable Diffusion and the sigma schedules drawn from
//! it (k-diffusion's `get_sigmas*`, ComfyUI's `sgm_uniform` and `simple`).

use crate::Error;

/// Number of training timesteps of SD1.x / SDXL.
pub const TRAIN_TIMESTEPS: usize = 1000;

/// How the sigmas of a sampling run are spaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Schedule {
    /// k-diffusion `get_sigmas(n)`: t = linspace(999, 0, n), σ(t) by log-σ interpolation, then 0.
    Normal,
    /// Karras et al. (ρ = 7) over the model's [σ_min, σ_max].
    Karras,
    /// Log-uniform over the model's [σ_min, σ_max].
    Exponential,
    /// ComfyUI: t = linspace(999, 0, n + 1) without its last point, then 0.
    SgmUniform,
    /// ComfyUI: σ_i = table[999 − int(i · 1000 / n)], then 0.
    Simple,
}

impl Schedule {
    /// Every schedule, in CLI order.
    pub const ALL: [Schedule; 5] = [
        Schedule::Normal,
        Schedule::Karras,
        Schedule::Exponential,
        Schedule::SgmUniform,
        Schedule::Simple,
    ];

    /// The CLI / A1111-parameters name.
    pub fn name(self) -> &'static str {
        match self {
            Schedule::Normal => "normal",
            Schedule::Karras => "karras",
            Schedule::Exponential => "exponential",
            Schedule::SgmUniform => "sgm_uniform",
            Schedule::Simple => "simple",
        }
    }
}

impl std::fmt::Display for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Schedule {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Schedule::ALL
            .into_iter()
            .find(|schedule| schedule.name() == text)
            .ok_or_else(|| Error::UnknownSchedule(text.to_owned()))
    }
}

/// `torch.linspace(start, end, steps)` in float64: the first half counts up from `start`, the
/// second half down from `end`, as torch's CPU kernel does.
fn linspace(start: f64, end: f64, steps: usize) -> Vec<f64> {
    if steps == 1 {
        return vec![start];
    }
    let step = (end - start) / (steps - 1) as f64;
    let halfway = steps / 2;
    (0..steps)
        .map(|i| {
            if i < halfway { start + step * i as f64 } else { end - step * (steps - i - 1) as f64 }
        })
        .collect()
}

/// The model's noise table: σ for each of the 1000 training timesteps (ascending in t).
#[derive(Clone, Debug)]
pub struct DiscreteSchedule {
    alphas_cumprod: Vec<f32>,
    sigmas: Vec<f32>,
    log_sigmas: Vec<f64>,
}

impl DiscreteSchedule {
    /// The SD1.x / SDXL table (fidelity.md): betas = linspace(√0.00085, √0.012, 1000)² in
    /// float64, alphas_cumprod = cumprod(1 − betas) stored as float32, σ = √((1 − ᾱ)/ᾱ) in float32.
    pub fn stable_diffusion() -> Self {
        let betas: Vec<f64> = linspace(0.00085_f64.sqrt(), 0.012_f64.sqrt(), TRAIN_TIMESTEPS)
            .into_iter()
            .map(|root| root * root)
            .collect();
        let mut product = 1.0_f64;
        let alphas_cumprod = betas
            .iter()
            .map(|beta| {
                product *= 1.0 - beta;
                product as f32
            })
            .collect();
        Self::from_alphas_cumprod_unchecked(alphas_cumprod)
    }

    /// A table from a model's own `alphas_cumprod` (each in (0, 1), at least two entries,
    /// decreasing), e.g. read from a checkpoint's buffers.
    pub fn from_alphas_cumprod(alphas_cumprod: Vec<f32>) -> Result<Self, Error> {
        let in_range = alphas_cumprod.iter().all(|a| a.is_finite() && *a > 0.0 && *a < 1.0);
        let decreasing = alphas_cumprod.windows(2).all(|pair| matches!(pair, [a, b] if b < a));
        if alphas_cumprod.len() < 2 || !in_range || !decreasing {
            return Err(Error::InvalidAlphasCumprod);
        }
        Ok(Self::from_alphas_cumprod_unchecked(alphas_cumprod))
    }

    fn from_alphas_cumprod_unchecked(alphas_cumprod: Vec<f32>) -> Self {
        let sigmas: Vec<f32> = alphas_cumprod.iter().map(|a| ((1.0 - a) / a).sqrt()).collect();
        let log_sigmas = sigmas.iter().map(|s| f64::from(*s).ln()).collect();
        Self { alphas_cumprod, sigmas, log_sigmas }
    }

    /// ᾱ_t for t = 0..T.
    pub fn alphas_cumprod(&self) -> &[f32] {
        &self.alphas_cumprod
    }

    /// σ_t for t = 0..T (ascending).
    pub fn sigmas(&self) -> &[f32] {
        &self.sigmas
    }

    /// The smallest σ of the table (t = 0).
    pub fn sigma_min(&self) -> f64 {
        self.sigmas.first().map_or(0.0, |s| f64::from(*s))
    }

    /// The largest σ of the table (t = T − 1).
    pub fn sigma_max(&self) -> f64 {
        self.sigmas.last().map_or(0.0, |s| f64::from(*s))
    }

    fn log_sigma(&self, index: usize) -> f64 {
        self.log_sigmas.get(index).copied().unwrap_or(f64::NAN)
    }

    /// k-diffusion's non-quantized `sigma_to_t`: linear interpolation in log σ between the two
    /// table entries around σ, clamped to the table's range. The result is a fractional
    /// timestep for the UNet's sinusoidal embedding.
    pub fn sigma_to_t(&self, sigma: f64) -> f64 {
        let log_sigma = sigma.ln();
        let last_pair = self.log_sigmas.len().saturating_sub(2);
        // Index of the last entry with log σ_i <= log σ (0 when σ is below the table).
        let low = self
            .log_sigmas
            .iter()
            .rposition(|entry| log_sigma - entry >= 0.0)
            .unwrap_or(0)
            .min(last_pair);
        let (low_log, high_log) = (self.log_sigma(low), self.log_sigma(low + 1));
        let w = ((low_log - log_sigma) / (low_log - high_log)).clamp(0.0, 1.0);
        (1.0 - w) * low as f64 + w * (low + 1) as f64
    }

    /// k-diffusion's `t_to_sigma`: σ at a fractional timestep by log-σ interpolation (t clamped to
    /// the table, as ComfyUI does).
    pub fn t_to_sigma(&self, t: f64) -> f64 {
        let max_t = self.log_sigmas.len().saturating_sub(1) as f64;
        let t = t.clamp(0.0, max_t);
        let (low, high) = (t.floor(), t.ceil());
        let w = t - low;
        ((1.0 - w) * self.log_sigma(low as usize) + w * self.log_sigma(high as usize)).exp()
    }

    /// The `steps + 1` sigmas of a run of `steps` steps, from σ_max down to a trailing 0.
    pub fn sigmas_for(&self, schedule: Schedule, steps: usize) -> Result<Vec<f64>, Error> {
        if steps == 0 {
            return Err(Error::ZeroSteps);
        }
        let max_t = (self.sigmas.len() - 1) as f64;
        let (sigma_min, sigma_max) = (self.sigma_min(), self.sigma_max());
        let mut sigmas: Vec<f64> = match schedule {
            Schedule::Normal => {
                linspace(max_t, 0.0, steps).into_iter().map(|t| self.t_to_sigma(t)).collect()
            }
            Schedule::SgmUniform => linspace(max_t, 0.0, steps + 1)
                .into_iter()
                .take(steps)
                .map(|t| self.t_to_sigma(t))
                .collect(),
            Schedule::Karras => {
                const RHO: f64 = 7.0;
                let min_inv_rho = sigma_min.powf(1.0 / RHO);
                let max_inv_rho = sigma_max.powf(1.0 / RHO);
                linspace(0.0, 1.0, steps)
                    .into_iter()
                    .map(|ramp| (max_inv_rho + ramp * (min_inv_rho - max_inv_rho)).powf(RHO))
                    .collect()
            }
            Schedule::Exponential => {
                linspace(sigma_max.ln(), sigma_min.ln(), steps).into_iter().map(f64::exp).collect()
            }
            Schedule::Simple => {
                let table_len = self.sigmas.len();
                let stride = table_len as f64 / steps as f64;
                (0..steps)
                    .map(|i| {
                        let back = (i as f64 * stride) as usize;
                        let index = table_len.saturating_sub(1 + back);
                        self.sigmas.get(index).map_or(f64::NAN, |s| f64::from(*s))
                    })
                    .collect()
            }
        };
        sigmas.push(0.0);
        Ok(sigmas)
    }
}

/// Where an img2img run starts in the full schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Img2ImgStart {
    /// Index into the full `steps + 1` sigmas: the run uses `sigmas[start_index..]` and the
    /// initial latent is `init + noise · sigmas[start_index]`.
    pub start_index: usize,
    /// Steps actually run: k = floor(strength · steps + 1e-6).
    pub steps_to_run: usize,
}

/// The img2img strength rule of fidelity.md: k = floor(strength · steps + 1e-6) steps, from index
/// steps − k of the schedule computed for the full `steps` (not A1111's t_enc + 1).
pub fn img2img_start(steps: usize, strength: f64) -> Result<Img2ImgStart, Error> {
    if !(0.0..=1.0).contains(&strength) {
        return Err(Error::InvalidStrength(strength));
    }
    let steps_to_run = ((strength * steps as f64 + 1e-6).floor() as usize).min(steps);
    Ok(Img2ImgStart { start_index: steps - steps_to_run, steps_to_run })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn img2img_rule() {
        assert_eq!(
            img2img_start(20, 0.5).unwrap(),
            Img2ImgStart { start_index: 10, steps_to_run: 10 }
        );
        // 0.3 * 10 = 2.9999999999999996 in float64: the 1e-6 makes it 3.
        assert_eq!(
            img2img_start(10, 0.3).unwrap(),
            Img2ImgStart { start_index: 7, steps_to_run: 3 }
        );
        assert_eq!(
            img2img_start(7, 1.0).unwrap(),
            Img2ImgStart { start_index: 0, steps_to_run: 7 }
        );
        assert_eq!(
            img2img_start(7, 0.0).unwrap(),
            Img2ImgStart { start_index: 7, steps_to_run: 0 }
        );
        assert_eq!(
            img2img_start(3, 0.33).unwrap(),
            Img2ImgStart { start_index: 3, steps_to_run: 0 }
        );
        assert!(img2img_start(10, 1.5).is_err());
        assert!(img2img_start(10, f64::NAN).is_err());
    }

    #[test]
    fn schedule_names_round_trip() {
        for schedule in Schedule::ALL {
            assert_eq!(schedule.to_string().parse::<Schedule>().unwrap(), schedule);
        }
        assert!("Karras".parse::<Schedule>().is_err());
    }

    #[test]
    fn table_endpoints() {
        let table = DiscreteSchedule::stable_diffusion();
        assert!((table.sigma_min() - 0.029_167_5).abs() < 1e-5);
        assert!((table.sigma_max() - 14.614_642).abs() < 1e-4);
        assert!(table.sigmas_for(Schedule::Normal, 0).is_err());
        assert!(DiscreteSchedule::from_alphas_cumprod(vec![0.5, 0.7]).is_err());
    }
}
