//! `pentimento bench`: times the model components at full SD1.5 / SDXL sizes with random weights
//! made in memory on the fly (nothing is read from or written to disk), with peak memory.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use rayon::prelude::*;
use serde::Serialize;

use crate::checkpoint::{TensorSource, Weights};
use crate::clip::TextEncoder;
use crate::config::{TextEncoderConfig, UNetConfig, VaeConfig};
use crate::error::Result;
use crate::unet::{UNet, sdxl_adm_vector};
use crate::vae::Vae;

/// Random weights of whatever shape a module asks for: uniform with std 1/√fan_in for matrices
/// and kernels (so activations stay finite through deep stacks), ~1 for norm scales.
struct RandomWeights {
    seed: u64,
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl TensorSource for RandomWeights {
    fn load(&self, name: &str, shape: &[usize], dtype: DType, device: &Device) -> Result<Tensor> {
        let count: usize = shape.iter().product();
        let fan_in: usize = shape.iter().skip(1).product();
        let (center, half_width) = match shape.len() {
            0 | 1 if name.ends_with("weight") => (1.0f32, 0.1f32),
            0 | 1 => (0.0, 0.05),
            // Uniform on [-a, a] has std a/√3.
            #[allow(clippy::cast_precision_loss, reason = "fan-in is a small integer")]
            _ => (0.0, (3.0 / fan_in.max(1) as f32).sqrt()),
        };
        let mut hasher = DefaultHasher::new();
        (self.seed, name).hash(&mut hasher);
        let base = hasher.finish();
        let mut values = vec![0f32; count];
        values.par_chunks_mut(1 << 16).enumerate().for_each(|(chunk, out)| {
            let mut state = base ^ (chunk as u64).wrapping_mul(0xA24B_AED4_963E_E407);
            for v in out {
                #[allow(clippy::cast_precision_loss, reason = "24 random bits to a float")]
                let unit = (splitmix(&mut state) >> 40) as f32 / (1u64 << 24) as f32;
                *v = center + half_width * (2.0 * unit - 1.0);
            }
        });
        let tensor = Tensor::from_vec(values, shape, &Device::Cpu)?;
        let tensor = if dtype == DType::F32 { tensor } else { tensor.to_dtype(dtype)? };
        Ok(tensor.to_device(device)?)
    }

    fn shape_of(&self, _name: &str) -> Option<Vec<usize>> {
        None
    }
}

/// Which real model sizes to benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BenchModel {
    /// SD 1.5: UNet at 512² (64² latent), CLIP-L, VAE decode to 512².
    Sd15,
    /// SDXL base: UNet at 1024² (128² latent), CLIP-L + OpenCLIP bigG, VAE decode to 1024².
    Sdxl,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// UNet and text-encoder batch (2 = cond + uncond of one image).
    pub batch: usize,
    /// Timed runs per component after one untimed warm-up run (0 = no warm-up, one timed run).
    pub repeats: usize,
    pub text: bool,
    pub unet: bool,
    pub vae: bool,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self { batch: 2, repeats: 0, text: true, unet: true, vae: true }
    }
}

/// One timed component.
#[derive(Debug, Clone, Serialize)]
pub struct BenchEntry {
    pub model: BenchModel,
    pub component: String,
    pub input: String,
    /// Seconds to build the module with random weights (not part of the timing).
    pub build_seconds: f64,
    /// Mean seconds of one forward call.
    pub seconds: f64,
    /// Peak resident memory of the process while building and running this component (VmHWM,
    /// reset before each component where the kernel allows it).
    pub peak_rss_mib: f64,
}

/// Peak resident set size of this process in MiB, from /proc/self/status (Linux), 0 elsewhere.
pub fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

/// Resets the peak-RSS counter to the current RSS (Linux ≥ 4.0; ignored elsewhere).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn time_runs(repeats: usize, mut run: impl FnMut() -> Result<()>) -> Result<f64> {
    if repeats == 0 {
        let start = Instant::now();
        run()?;
        return Ok(start.elapsed().as_secs_f64());
    }
    run()?;
    let start = Instant::now();
    for _ in 0..repeats {
        run()?;
    }
    #[allow(clippy::cast_precision_loss, reason = "a handful of repeats")]
    Ok(start.elapsed().as_secs_f64() / repeats as f64)
}

fn random_normal(shape: &[usize], seed: u64, device: &Device) -> Result<Tensor> {
    let weights = RandomWeights { seed };
    // Reuse the uniform generator: unit-variance uniform is fine as a timing input.
    let t = weights.load("input", shape, DType::F32, device)?;
    Ok((t * (3f64).sqrt())?)
}

/// A whole model at the real SD1.5 or SDXL sizes with random weights, built in memory: for
/// timing end-to-end pipelines (its images are noise, its timings real).
pub fn random_model(model: BenchModel, device: &Device) -> Result<crate::StableDiffusion> {
    use crate::config::SDXL_CLIP_L_PREFIX;
    use crate::config::{ModelArch, ModelConfig, SD1_CLIP_PREFIX, SDXL_CLIP_G_PREFIX};
    let (arch, unet, text_encoders) = match model {
        BenchModel::Sd15 => {
            (ModelArch::Sd1, UNetConfig::sd15(), vec![TextEncoderConfig::clip_l(SD1_CLIP_PREFIX)])
        }
        BenchModel::Sdxl => (
            ModelArch::Sdxl,
            UNetConfig::sdxl(),
            vec![
                TextEncoderConfig::clip_l(SDXL_CLIP_L_PREFIX),
                TextEncoderConfig::open_clip_g(SDXL_CLIP_G_PREFIX),
            ],
        ),
    };
    let config = ModelConfig {
        arch,
        unet,
        vae: VaeConfig::real(arch.latent_scaling()),
        text_encoders,
        latent_scaling: arch.latent_scaling(),
    };
    crate::StableDiffusion::from_source(config, &RandomWeights { seed: 42 }, device, DType::F32)
}

/// Runs the benchmark for `model`, calling `report` after each component.
pub fn run_bench(
    model: BenchModel,
    options: &BenchOptions,
    device: &Device,
    report: &mut dyn FnMut(&BenchEntry),
) -> Result<Vec<BenchEntry>> {
    let source = RandomWeights { seed: 42 };
    let weights = Weights::new(&source, DType::F32, device.clone());
    let batch = options.batch.max(1);
    let (unet_config, text_configs, vae_config, size_px) = match model {
        BenchModel::Sd15 => (
            UNetConfig::sd15(),
            vec![TextEncoderConfig::clip_l("")],
            VaeConfig::real(0.18215),
            512usize,
        ),
        BenchModel::Sdxl => (
            UNetConfig::sdxl(),
            vec![TextEncoderConfig::clip_l(""), TextEncoderConfig::open_clip_g("")],
            VaeConfig::real(0.13025),
            1024,
        ),
    };
    let latent = size_px / 8;
    let mut entries = Vec::new();
    let mut push = |entry: BenchEntry, entries: &mut Vec<BenchEntry>| {
        report(&entry);
        entries.push(entry);
    };

    if options.text {
        reset_peak_rss();
        let start = Instant::now();
        let encoders = text_configs
            .iter()
            .map(|c| TextEncoder::load(c, &weights))
            .collect::<Result<Vec<_>>>()?;
        let build_seconds = start.elapsed().as_secs_f64();
        let ids: Vec<u32> = (0..batch * 77)
            .map(|i| if i % 77 == 0 { 49406 } else { 320 + (i % 77) as u32 })
            .collect();
        let ids = Tensor::from_vec(ids, (batch, 77), device)?;
        let seconds = time_runs(options.repeats, || {
            for encoder in &encoders {
                let states = encoder.hidden_states(&ids)?;
                if let Some(last) = states.last() {
                    encoder.pooled(last, &ids)?;
                }
            }
            Ok(())
        })?;
        let names: Vec<&str> = text_configs
            .iter()
            .map(|c| match c.layout {
                crate::config::ClipLayout::HuggingFace => "CLIP-L",
                crate::config::ClipLayout::OpenClip => "OpenCLIP-bigG",
            })
            .collect();
        push(
            BenchEntry {
                model,
                component: format!("text encode ({})", names.join(" + ")),
                input: format!("{batch}x77 tokens"),
                build_seconds,
                seconds,
                peak_rss_mib: peak_rss_mib(),
            },
            &mut entries,
        );
    }

    if options.unet {
        reset_peak_rss();
        let start = Instant::now();
        let unet = UNet::load(&unet_config, &weights)?;
        let build_seconds = start.elapsed().as_secs_f64();
        let x = random_normal(&[batch, 4, latent, latent], 1, device)?;
        let context = random_normal(&[batch, 77, unet_config.context_dim], 2, device)?;
        let t = Tensor::full(537.25f32, batch, device)?;
        let y = match unet_config.adm_in_channels {
            Some(adm) => {
                let pooled = random_normal(&[batch, adm - 6 * 256], 3, device)?;
                Some(sdxl_adm_vector(&pooled, (size_px, size_px), (0, 0), (size_px, size_px))?)
            }
            None => None,
        };
        let seconds = time_runs(options.repeats, || {
            unet.forward(&x, &t, &context, y.as_ref())?;
            Ok(())
        })?;
        push(
            BenchEntry {
                model,
                component: "UNet step".into(),
                input: format!("{batch}x4x{latent}x{latent} latent ({size_px}² image), 77 tokens"),
                build_seconds,
                seconds,
                peak_rss_mib: peak_rss_mib(),
            },
            &mut entries,
        );
    }

    if options.vae {
        reset_peak_rss();
        let start = Instant::now();
        let vae = Vae::load(&vae_config, &weights)?;
        let build_seconds = start.elapsed().as_secs_f64();
        let z = random_normal(&[1, 4, latent, latent], 4, device)?;
        let seconds = time_runs(options.repeats, || {
            vae.decode(&z)?;
            Ok(())
        })?;
        push(
            BenchEntry {
                model,
                component: "VAE decode".into(),
                input: format!("1x4x{latent}x{latent} latent -> {size_px}² image"),
                build_seconds,
                seconds,
                peak_rss_mib: peak_rss_mib(),
            },
            &mut entries,
        );
    }
    Ok(entries)
}

/// Times one attention call of `tokens` queries/keys × `channels` in `heads` heads (batch 2, as
/// with classifier-free guidance) with the in-place CPU attention Pentimento uses and with the
/// same blocked algorithm in candle tensor operations (heads copied apart); returns (in-place
/// seconds, tensor seconds, max |difference|).
pub fn bench_attention(tokens: usize, channels: usize, heads: usize) -> Result<(f64, f64, f32)> {
    let device = Device::Cpu;
    let q = (random_normal(&[2, tokens, channels], 5, &device)? * 0.5)?;
    let k = (random_normal(&[2, tokens, channels], 6, &device)? * 0.5)?;
    let v = random_normal(&[2, tokens, channels], 7, &device)?;
    let start = Instant::now();
    let ours = crate::nn::attention(&q, &k, &v, heads, false)?;
    let ours_seconds = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let tensors = crate::nn::attention_tensors(&q, &k, &v, heads, false)?;
    let tensor_seconds = start.elapsed().as_secs_f64();
    let diff = (ours - tensors)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
    Ok((ours_seconds, tensor_seconds, diff))
}

/// Times one 3×3 convolution (`channels` → `channels`, `[batch, channels, size, size]`) with
/// Pentimento's shifted-view path, its im2col path and candle's conv2d; returns (shifted s,
/// im2col s, candle s, max |shifted − candle|).
pub fn bench_conv(batch: usize, channels: usize, size: usize) -> Result<(f64, f64, f64, f32)> {
    let device = Device::Cpu;
    let source = RandomWeights { seed: 9 };
    let weights = Weights::new(&source, DType::F32, device.clone());
    let conv = crate::nn::Conv2d::load(&weights.pp("conv"), channels, channels, 3, 1, 1)?;
    let x = random_normal(&[batch, channels, size, size], 8, &device)?;
    let start = Instant::now();
    let shifted = conv.forward_shifted(&x)?;
    let shifted_seconds = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let im2col = conv.forward_im2col(&x)?;
    let im2col_seconds = start.elapsed().as_secs_f64();
    drop(im2col);
    let start = Instant::now();
    let theirs = conv.forward_candle(&x)?;
    let candle_seconds = start.elapsed().as_secs_f64();
    let diff = (shifted - theirs)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
    Ok((shifted_seconds, im2col_seconds, candle_seconds, diff))
}
