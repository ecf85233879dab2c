//! txt2img and img2img: noise, sampling with classifier-free guidance, VAE decode.
//!
//! The arithmetic follows fidelity.md: image i of a batch draws all its noise from a torch-exact
//! generator seeded with `seed + i`; the UNet sees `x·c_in` at the non-quantized timestep of σ;
//! CFG combines the denoised predictions; img2img starts from the VAE posterior mean at
//! `σ[N − k]` with `k = floor(strength·N + 1e-6)`.

use std::ops::ControlFlow;

use candle_core::{DType, Device, Tensor};
use raster::resample::{ResampleFilter, resize_rgba};
use raster::{Image, Rect, Rgba8};
use sampling::{Denoiser, DiscreteSchedule, TorchNoise, sample};
use sd::{SdError, StableDiffusion};

use crate::conditioning::{Conditioning, PromptTokenizers, chunk_lists, encode_prompt};
use crate::convert::{LatentSpace, images_to_tensor, latent_preview, tensor_to_images};
use crate::inpaint::InpaintPlan;
use crate::request::{GenerationRequest, MaskedContent};
use sd::embedding::EmbeddingSet;
use sd::prompt::Chunk;

/// Latent pixels (both CFG halves counted) one UNet call may process; bigger batches are split
/// into groups that run one after the other. Results do not depend on the grouping: every image
/// draws its noise from its own generator.
const MAX_LATENT_PIXELS_PER_CALL: usize = 2 * 4 * 64 * 64;

/// Why a generation produced nothing.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("cancelled")]
    Cancelled,
    #[error("{0}")]
    InvalidRequest(String),
    #[error(transparent)]
    Model(#[from] SdError),
    #[error(transparent)]
    Sampling(sampling::Error),
    #[error("{0}")]
    Prompt(String),
}

impl From<sampling::Error> for PipelineError {
    fn from(e: sampling::Error) -> Self {
        match e {
            sampling::Error::Cancelled => PipelineError::Cancelled,
            other => PipelineError::Sampling(other),
        }
    }
}

impl From<candle_core::Error> for PipelineError {
    fn from(e: candle_core::Error) -> Self {
        PipelineError::Model(SdError::Candle(e))
    }
}

/// One step done, for progress bars and live previews.
pub struct StepReport<'a> {
    /// Steps done so far over the whole request (all groups of the batch), from 1.
    pub step: u32,
    pub total: u32,
    /// Index in the batch of the first image of the group being sampled.
    pub first_image: usize,
    denoised: &'a Tensor,
    space: LatentSpace,
}

impl StepReport<'_> {
    /// A cheap colour preview of the current x0 prediction of image `first_image + offset`,
    /// at latent resolution.
    pub fn preview(&self, offset: usize) -> Option<Image<Rgba8>> {
        let latent = self.denoised.get(offset).ok()?;
        let (_, h, w) = latent.dims3().ok()?;
        let values = latent.narrow(0, 0, 4).ok()?.flatten_all().ok()?.to_vec1::<f32>().ok()?;
        Some(latent_preview(&values, h, w, self.space))
    }
}

/// One result as the editor applies it: a layer's pixels and where they sit on the canvas.
/// For inpainting it is the generated crop with alpha = the overlay mask, placed at the crop
/// box, so compositing it over the source gives exactly the pasted image; for txt2img and
/// img2img it is the whole image, opaque, at the origin.
#[derive(Clone, Debug)]
pub struct ResultLayer {
    pub image: Image<Rgba8>,
    /// Canvas pixels covered; `image` has this rectangle's size.
    pub rect: Rect,
}

impl ResultLayer {
    /// An opaque full image at the canvas origin.
    pub fn whole(image: Image<Rgba8>) -> Self {
        let rect = Rect::new(0, 0, image.width(), image.height());
        Self { image, rect }
    }
}

/// The generated images of a request, in batch order (image i used seed + i).
#[derive(Debug)]
pub struct Generated {
    /// Final images as A1111 writes them (for inpainting: pasted back into the full input).
    pub images: Vec<Image<Rgba8>>,
    pub seeds: Vec<u64>,
    /// The same results as layers, one per image.
    pub layers: Vec<ResultLayer>,
}

/// Prompt and negative prompt already split into chunks per text encoder.
pub struct EncodedPrompts<'a> {
    pub cond: &'a [Vec<Chunk>],
    pub uncond: &'a [Vec<Chunk>],
    /// Textual-inversion embeddings the chunks' slots name.
    pub embeddings: &'a EmbeddingSet,
}

/// Runs a request end to end: tokenizes prompt and negative prompt (A1111 syntax), then
/// [`generate_with_chunks`].
pub fn generate(
    model: &StableDiffusion,
    request: &GenerationRequest,
    progress: &mut dyn FnMut(&StepReport<'_>) -> ControlFlow<()>,
) -> Result<Generated, PipelineError> {
    generate_with_embeddings(model, request, &EmbeddingSet::default(), progress)
}

/// [`generate`] with textual-inversion embeddings usable by name in both prompts.
pub fn generate_with_embeddings(
    model: &StableDiffusion,
    request: &GenerationRequest,
    embeddings: &EmbeddingSet,
    progress: &mut dyn FnMut(&StepReport<'_>) -> ControlFlow<()>,
) -> Result<Generated, PipelineError> {
    let tokenizers = PromptTokenizers::for_model(model)?;
    let cond = chunk_lists(&tokenizers.tokenize(&request.prompt, embeddings)?);
    let uncond = chunk_lists(&tokenizers.tokenize(&request.negative_prompt, embeddings)?);
    let prompts = EncodedPrompts { cond: &cond, uncond: &uncond, embeddings };
    generate_with_chunks(model, request, &prompts, progress)
}

/// Runs txt2img, img2img or inpainting for the whole batch.
pub fn generate_with_chunks(
    model: &StableDiffusion,
    request: &GenerationRequest,
    prompts: &EncodedPrompts<'_>,
    progress: &mut dyn FnMut(&StepReport<'_>) -> ControlFlow<()>,
) -> Result<Generated, PipelineError> {
    request.validate()?;
    // Pixel work first: a bad mask is reported before any model time is spent.
    let plan = match (&request.inpaint, &request.init) {
        (Some(options), Some(init)) => {
            Some(InpaintPlan::new(&init.image, options, request.width, request.height)?)
        }
        (Some(_), None) => {
            return Err(PipelineError::InvalidRequest(
                "inpainting needs an init image (the picture to inpaint)".into(),
            ));
        }
        (None, _) => None,
    };
    let clip_skip = request.clip_skip.max(1) as usize;
    let cond = encode_prompt(model, prompts.cond, clip_skip, prompts.embeddings)?;
    let uncond = encode_prompt(model, prompts.uncond, clip_skip, prompts.embeddings)?;
    let schedule = DiscreteSchedule::stable_diffusion();
    let full_sigmas = schedule.sigmas_for(request.schedule, request.steps as usize)?;
    let (latent_h, latent_w) = (request.height as usize / 8, request.width as usize / 8);
    let nine_channels = model.unet.config().in_channels == 9;
    let mut latent_inpaint = None;
    let (sigmas, init_latent, image_conditioning) = match &request.init {
        Some(init) => {
            let start = sampling::img2img_start(request.steps as usize, f64::from(init.strength))?;
            let sigmas = full_sigmas.get(start.start_index..).unwrap_or(&[]).to_vec();
            let mut conditioning = None;
            let encoder_input = match &plan {
                Some(plan) => {
                    let mask = Tensor::from_vec(
                        plan.latent_mask()?,
                        (1, 1, latent_h, latent_w),
                        &model.device,
                    )?;
                    latent_inpaint = Some((mask, plan.masked_content));
                    if nine_channels {
                        conditioning = Some(inpaint_conditioning(model, plan)?);
                    }
                    plan.encoder_image.clone()
                }
                None if (init.image.width(), init.image.height())
                    == (request.width, request.height) =>
                {
                    init.image.clone()
                }
                None => resize_rgba(
                    &init.image,
                    request.width,
                    request.height,
                    ResampleFilter::Lanczos3,
                )
                .map_err(|e| PipelineError::InvalidRequest(e.to_string()))?,
            };
            let pixels = images_to_tensor(&[&encoder_input], &model.device)?;
            let z0 = encode_latents(model, &pixels)?;
            (sigmas, Some(z0), conditioning)
        }
        None => (full_sigmas, None, None),
    };
    let image_conditioning = match image_conditioning {
        Some(c) => Some(c),
        None if nine_channels => {
            Some(blank_inpaint_conditioning(model, request.width, request.height)?)
        }
        None => None,
    };
    let steps_to_run = sigmas.len().saturating_sub(1);
    let batch = request.batch_size.max(1) as usize;
    let group = (MAX_LATENT_PIXELS_PER_CALL / (2 * latent_h * latent_w).max(1)).clamp(1, batch);
    let groups = batch.div_ceil(group);
    let total = u32::try_from(steps_to_run * groups).unwrap_or(u32::MAX);
    let space = if model.arch().is_sdxl() { LatentSpace::Sdxl } else { LatentSpace::Sd1 };

    let mut images = Vec::with_capacity(batch);
    let mut done_steps = 0u32;
    for first in (0..batch).step_by(group) {
        let count = group.min(batch - first);
        let first_seed = request.seed.wrapping_add(first as u64);
        let mut noise =
            TorchNoise::from_seeds(first_seed, count, &[1, 4, latent_h, latent_w], &model.device);
        let initial = sampling::NoiseSource::next_noise(&mut noise)?;
        let sigma_start = sigmas.first().copied().unwrap_or(0.0);
        // z0: the clean start latent of each image; for inpainting after masked content
        // (latent noise: the image's own initial noise inside the mask; latent nothing: 0).
        let z0 = match (&init_latent, &latent_inpaint) {
            (Some(e), Some((mask, content))) => {
                let e = e.repeat((count, 1, 1, 1))?;
                let keep = mask.affine(-1.0, 1.0)?;
                Some(match content {
                    MaskedContent::LatentNoise => {
                        (e.broadcast_mul(&keep)? + initial.broadcast_mul(mask)?)?
                    }
                    MaskedContent::LatentNothing => e.broadcast_mul(&keep)?,
                    MaskedContent::Original | MaskedContent::Fill => e,
                })
            }
            (Some(e), None) => Some(e.repeat((count, 1, 1, 1))?),
            (None, _) => None,
        };
        let x = match &z0 {
            Some(z0) => (z0 + (&initial * sigma_start)?)?,
            None => (&initial * sigma_start)?,
        };
        let mut denoiser = CfgDenoiser::new(
            model,
            &schedule,
            &cond,
            &uncond,
            request,
            count,
            image_conditioning.as_ref(),
        )?;
        if let (Some((mask, _)), Some(z0)) = (&latent_inpaint, &z0) {
            denoiser.blend = Some((mask.clone(), z0.clone()));
        }
        let mut on_step = |p: sampling::StepProgress<'_>| {
            done_steps += 1;
            progress(&StepReport {
                step: done_steps,
                total,
                first_image: first,
                denoised: p.denoised,
                space,
            })
        };
        let mut latents =
            sample(request.sampler, &mut denoiser, &x, &sigmas, &mut noise, &mut on_step)?;
        if let (Some((mask, _)), Some(z0)) = (&latent_inpaint, &z0) {
            let keep = mask.affine(-1.0, 1.0)?;
            latents = (latents.broadcast_mul(mask)? + z0.broadcast_mul(&keep)?)?;
        }
        let decoded = decode_latents(model, &latents)?;
        images.extend(tensor_to_images(&decoded)?);
    }
    let seeds = (0..batch as u64).map(|i| request.seed.wrapping_add(i)).collect();
    let (images, layers) = match &plan {
        Some(plan) => {
            let mut finals = Vec::with_capacity(images.len());
            let mut layers = Vec::with_capacity(images.len());
            for generated in &images {
                let (image, layer) = plan.paste_back(generated)?;
                finals.push(image);
                layers.push(layer);
            }
            (finals, layers)
        }
        None => {
            let layers = images.iter().cloned().map(ResultLayer::whole).collect();
            (images, layers)
        }
    };
    Ok(Generated { images, seeds, layers })
}

/// The 9-channel UNet's extra input for an inpaint: the rounded full-size mask sampled at
/// pixel (8i, 8j) of each latent cell, and the latent of the image with masked pixels grey
/// (A1111 `inpainting_image_conditioning`).
fn inpaint_conditioning(
    model: &StableDiffusion,
    plan: &InpaintPlan,
) -> Result<Tensor, PipelineError> {
    let image = &plan.encoder_image;
    let (w, h) = (image.width() as usize, image.height() as usize);
    let pixel_mask = plan.pixel_mask();
    let mut data = Vec::with_capacity(3 * w * h);
    for c in 0..3 {
        data.extend(image.pixels().iter().zip(&pixel_mask).map(|(p, &masked)| {
            let v = f32::from(p.get(c).copied().unwrap_or(0)) / 255.0 * 2.0 - 1.0;
            if masked { 0.0 } else { v }
        }));
    }
    let pixels = Tensor::from_vec(data, (1, 3, h, w), &model.device)?;
    let masked_latent = encode_latents(model, &pixels)?;
    let cells: Vec<f32> =
        (0..h / 8)
            .flat_map(|i| (0..w / 8).map(move |j| (i, j)))
            .map(|(i, j)| {
                if pixel_mask.get(8 * i * w + 8 * j).copied().unwrap_or(false) { 1.0 } else { 0.0 }
            })
            .collect();
    let mask = Tensor::from_vec(cells, (1, 1, h / 8, w / 8), &model.device)?;
    Ok(Tensor::cat(&[&mask, &masked_latent], 1)?)
}

/// Pixels `[B, 3, H, W]` in [-1, 1] (f32) → scaled latents (f32): the VAE posterior mean times
/// the model's scaling factor, computed in the model's dtype.
pub(crate) fn encode_latents(
    model: &StableDiffusion,
    pixels: &Tensor,
) -> Result<Tensor, PipelineError> {
    let mean = model.vae.encode_mean(&pixels.to_dtype(model.dtype)?)?;
    Ok((mean.to_dtype(DType::F32)? * model.vae.scaling_factor())?)
}

/// Scaled latents (f32) → pixels in about [-1, 1] (f32).
pub(crate) fn decode_latents(
    model: &StableDiffusion,
    latents: &Tensor,
) -> Result<Tensor, PipelineError> {
    let unscaled = (latents / model.vae.scaling_factor())?.to_dtype(model.dtype)?;
    Ok(model.vae.decode(&unscaled)?.to_dtype(DType::F32)?)
}

/// The 9-channel input of an inpainting UNet when nothing is masked (txt2img, img2img): a mask
/// of ones and the latent of a grey image, as A1111's `txt2img_image_conditioning`.
fn blank_inpaint_conditioning(
    model: &StableDiffusion,
    width: u32,
    height: u32,
) -> Result<Tensor, PipelineError> {
    let grey = Tensor::zeros((1, 3, height as usize, width as usize), DType::F32, &model.device)?;
    let masked = encode_latents(model, &grey)?;
    let (_, _, h, w) = masked.dims4()?;
    let mask = Tensor::ones((1, 1, h, w), DType::F32, &model.device)?;
    Ok(Tensor::cat(&[&mask, &masked], 1)?)
}

/// k-diffusion's CompVis denoiser with classifier-free guidance, as A1111's CFGDenoiser.
pub(crate) struct CfgDenoiser<'a> {
    model: &'a StableDiffusion,
    schedule: &'a DiscreteSchedule,
    cfg_scale: f64,
    count: usize,
    cond_context: Tensor,
    uncond_context: Tensor,
    cond_y: Option<Tensor>,
    uncond_y: Option<Tensor>,
    /// `[count, 5, h, w]` extra input channels of 9-channel UNets.
    image_conditioning: Option<Tensor>,
    /// Inpaint blend: the denoised prediction becomes `z0·(1−m) + m·d` (mask `[1,1,h,w]`).
    pub(crate) blend: Option<(Tensor, Tensor)>,
}

impl<'a> CfgDenoiser<'a> {
    pub(crate) fn new(
        model: &'a StableDiffusion,
        schedule: &'a DiscreteSchedule,
        cond: &Conditioning,
        uncond: &Conditioning,
        request: &GenerationRequest,
        count: usize,
        image_conditioning: Option<&Tensor>,
    ) -> Result<Self, PipelineError> {
        let adm = |c: &Conditioning| -> Result<Option<Tensor>, PipelineError> {
            match &c.pooled {
                Some(pooled) => {
                    let size = (request.height as usize, request.width as usize);
                    let y = sd::unet::sdxl_adm_vector(pooled, size, (0, 0), size)?;
                    Ok(Some(y.repeat((count, 1))?))
                }
                None => Ok(None),
            }
        };
        Ok(Self {
            model,
            schedule,
            cfg_scale: f64::from(request.cfg_scale),
            count,
            cond_context: cond.context.repeat((count, 1, 1))?,
            uncond_context: uncond.context.repeat((count, 1, 1))?,
            cond_y: adm(cond)?,
            uncond_y: adm(uncond)?,
            image_conditioning: match image_conditioning {
                Some(c) if c.dim(0)? == count => Some(c.clone()),
                Some(c) => Some(c.repeat((count, 1, 1, 1))?),
                None => None,
            },
            blend: None,
        })
    }

    fn eps(
        &self,
        x_in: &Tensor,
        t: &Tensor,
        context: &Tensor,
        y: Option<&Tensor>,
    ) -> Result<Tensor, PipelineError> {
        // The model may compute in f16/bf16; sampling stays in f32.
        let dtype = self.model.dtype;
        let y = y.map(|y| y.to_dtype(dtype)).transpose()?;
        let eps = self.model.unet.forward(
            &x_in.to_dtype(dtype)?,
            t,
            &context.to_dtype(dtype)?,
            y.as_ref(),
        )?;
        Ok(eps.to_dtype(DType::F32)?)
    }

    fn denoise_inner(&self, x: &Tensor, sigma: f64) -> Result<Tensor, PipelineError> {
        let c_in = 1.0 / (sigma * sigma + 1.0).sqrt();
        let t_value = self.schedule.sigma_to_t(sigma) as f32;
        let mut x_in = (x * c_in)?;
        if let Some(extra) = &self.image_conditioning {
            x_in = Tensor::cat(&[&x_in, extra], 1)?;
        }
        let same_length = self.cond_context.dim(1)? == self.uncond_context.dim(1)?;
        let (eps_cond, eps_uncond) = if same_length {
            // One UNet call for both halves, as A1111 batches them.
            let both = Tensor::cat(&[&x_in, &x_in], 0)?;
            let context = Tensor::cat(&[&self.cond_context, &self.uncond_context], 0)?;
            let y = match (&self.cond_y, &self.uncond_y) {
                (Some(a), Some(b)) => Some(Tensor::cat(&[a, b], 0)?),
                _ => None,
            };
            let t = Tensor::full(t_value, 2 * self.count, x.device())?;
            let eps = self.eps(&both, &t, &context, y.as_ref())?;
            (eps.narrow(0, 0, self.count)?, eps.narrow(0, self.count, self.count)?)
        } else {
            let t = Tensor::full(t_value, self.count, x.device())?;
            (
                self.eps(&x_in, &t, &self.cond_context, self.cond_y.as_ref())?,
                self.eps(&x_in, &t, &self.uncond_context, self.uncond_y.as_ref())?,
            )
        };
        let denoised_cond = (x - (eps_cond * sigma)?)?;
        let denoised_uncond = (x - (eps_uncond * sigma)?)?;
        let guided = (&denoised_uncond + ((denoised_cond - &denoised_uncond)? * self.cfg_scale)?)?;
        match &self.blend {
            Some((mask, z0)) => {
                let keep = mask.affine(-1.0, 1.0)?;
                Ok((z0.broadcast_mul(&keep)? + guided.broadcast_mul(mask)?)?)
            }
            None => Ok(guided),
        }
    }
}

impl Denoiser for CfgDenoiser<'_> {
    fn denoise(&mut self, x: &Tensor, sigma: f64) -> Result<Tensor, sampling::Error> {
        self.denoise_inner(x, sigma).map_err(|e| match e {
            PipelineError::Cancelled => sampling::Error::Cancelled,
            other => sampling::Error::Denoiser(Box::new(other)),
        })
    }
}

/// Device helper for callers: `cpu`, `cuda`, `cuda:N`, `metal` → a candle device, with a clear
/// error when the build lacks the backend.
pub fn device_from_name(name: &str) -> Result<Device, PipelineError> {
    let (kind, ordinal) = match name.split_once(':') {
        Some((k, n)) => (
            k,
            n.parse::<usize>().map_err(|_| {
                PipelineError::InvalidRequest(format!("bad device index in '{name}'"))
            })?,
        ),
        None => (name, 0),
    };
    match kind {
        "cpu" => Ok(Device::Cpu),
        "cuda" => Device::new_cuda(ordinal).map_err(|e| {
            PipelineError::InvalidRequest(format!(
                "CUDA device {ordinal} is not available ({e}); build with `--features cuda` on a \
                 machine with an NVIDIA GPU, or use --device cpu"
            ))
        }),
        "metal" => Device::new_metal(ordinal).map_err(|e| {
            PipelineError::InvalidRequest(format!(
                "Metal device {ordinal} is not available ({e}); build with `--features metal` on \
                 macOS, or use --device cpu"
            ))
        }),
        other => Err(PipelineError::InvalidRequest(format!(
            "unknown device '{other}' (expected cpu, cuda or metal)"
        ))),
    }
}
