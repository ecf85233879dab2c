//! What the user asked for, frozen: everything a generation needs except the model weights.

use raster::mask::A1111_MASK_THRESHOLD;
use raster::{Gray8, Image, Rect, Rgba8};
use sampling::{SamplerKind, Schedule};

use crate::generate::PipelineError;

/// The inpaint vocabulary is the document's (records store the same values).
pub use doc::{InpaintArea, MaskedContent};

/// The inpaint part of a request.
#[derive(Clone, Debug)]
pub struct InpaintOptions {
    /// Canvas-sized mask; white = regenerate. Already reduced to one channel (alpha or
    /// luminance) by whoever loaded it.
    pub mask: Image<Gray8>,
    pub invert_mask: bool,
    pub area: InpaintArea,
    pub padding_px: u32,
    pub mask_blur_px: u32,
    pub masked_content: MaskedContent,
    /// The user's context box (canvas pixels): the only-masked crop always contains it.
    pub context: Option<Rect>,
}

/// The starting image of img2img and inpaint.
#[derive(Clone, Debug)]
pub struct InitImage {
    pub image: Image<Rgba8>,
    /// Denoising strength in 0..=1: `floor(strength · steps + 1e-6)` steps run.
    pub strength: f32,
}

/// Everything one generation needs except the model: frozen at submit time.
#[derive(Clone, Debug)]
pub struct GenerationRequest {
    pub prompt: String,
    pub negative_prompt: String,
    /// Output size in pixels (multiples of 8).
    pub width: u32,
    pub height: u32,
    pub steps: u32,
    pub cfg_scale: f32,
    /// Image i of the batch uses `seed + i`.
    pub seed: u64,
    pub batch_size: u32,
    pub sampler: SamplerKind,
    pub schedule: Schedule,
    /// 1 = last layer; SDXL ignores it, as A1111 does.
    pub clip_skip: u32,
    pub init: Option<InitImage>,
    pub inpaint: Option<InpaintOptions>,
}

/// Largest side accepted, in pixels: beyond this a CPU generation would take hours and the
/// latents alone gigabytes.
pub const MAX_SIDE_PX: u32 = 8192;

impl GenerationRequest {
    /// A txt2img request with A1111's usual defaults (20 steps, CFG 7, Euler a, normal).
    pub fn txt2img(prompt: impl Into<String>, width: u32, height: u32, seed: u64) -> Self {
        Self {
            prompt: prompt.into(),
            negative_prompt: String::new(),
            width,
            height,
            steps: 20,
            cfg_scale: 7.0,
            seed,
            batch_size: 1,
            sampler: SamplerKind::EulerAncestral,
            schedule: Schedule::Normal,
            clip_skip: 1,
            init: None,
            inpaint: None,
        }
    }

    /// Rejects requests the pipeline cannot run, with a message saying what to change.
    pub fn validate(&self) -> Result<(), PipelineError> {
        let bad = |m: String| Err(PipelineError::InvalidRequest(m));
        if self.width == 0
            || self.height == 0
            || !self.width.is_multiple_of(8)
            || !self.height.is_multiple_of(8)
        {
            return bad(format!(
                "size {}x{} must be positive multiples of 8",
                self.width, self.height
            ));
        }
        if self.width > MAX_SIDE_PX || self.height > MAX_SIDE_PX {
            return bad(format!(
                "size {}x{} exceeds {MAX_SIDE_PX} px per side",
                self.width, self.height
            ));
        }
        if self.steps == 0 || self.steps > 1000 {
            return bad(format!("steps must be between 1 and 1000, got {}", self.steps));
        }
        if !self.cfg_scale.is_finite() {
            return bad("CFG scale must be a number".into());
        }
        if self.batch_size == 0 || self.batch_size > 64 {
            return bad(format!("batch size must be between 1 and 64, got {}", self.batch_size));
        }
        if let Some(init) = &self.init {
            if !(0.0..=1.0).contains(&init.strength) {
                return bad(format!("strength must be between 0 and 1, got {}", init.strength));
            }
            if init.image.width() == 0 || init.image.height() == 0 {
                return bad("the init image is empty".into());
            }
        }
        if let Some(inpaint) = &self.inpaint {
            let Some(init) = &self.init else {
                return bad("inpainting needs an init image (the picture to inpaint)".into());
            };
            let (mask, image) = (&inpaint.mask, &init.image);
            if (mask.width(), mask.height()) != (image.width(), image.height()) {
                return bad(format!(
                    "the mask is {}x{} but the image is {}x{}",
                    mask.width(),
                    mask.height(),
                    image.width(),
                    image.height()
                ));
            }
            // One pass over the mask, so a caller learns about an empty mask before loading a
            // model; the pipeline re-checks after the blur, which can erase a few pixels.
            let regenerates = |v: u8| (v > A1111_MASK_THRESHOLD) != inpaint.invert_mask;
            if !mask.pixels().iter().any(|&v| regenerates(v)) {
                return bad(if inpaint.invert_mask {
                    "the inverted inpaint mask is empty: the mask covers the whole image, so \
                     nothing is left to regenerate"
                        .into()
                } else {
                    "the inpaint mask is empty: paint the area to regenerate (white = regenerate)"
                        .into()
                });
            }
        }
        Ok(())
    }
}

/// A1111 runs `int(s·N) + 1` steps for img2img (capped at N); the strength that makes our rule
/// run the same number, for importing A1111 parameters: `(A1111 steps + 1) / N` mapped back.
pub fn strength_for_a1111_steps(a1111_strength: f32, steps: u32) -> f32 {
    if steps == 0 {
        return a1111_strength;
    }
    let a1111_run = ((f64::from(a1111_strength) * f64::from(steps)) as u32 + 1).min(steps);
    (f64::from(a1111_run) / f64::from(steps)) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a1111_strength_maps_to_the_same_step_count() {
        // A1111 at 0.75 × 20 runs 16 steps; we need 0.8.
        let run = |s: f32, n: u32| {
            sampling::img2img_start(n as usize, f64::from(s)).unwrap().steps_to_run
        };
        // A1111 at 0.75 × 20 runs int(15) + 1 = 16 steps.
        assert_eq!(run(strength_for_a1111_steps(0.75, 20), 20), 16);
        assert_eq!(run(strength_for_a1111_steps(1.0, 20), 20), 20);
        assert_eq!(run(strength_for_a1111_steps(0.5, 8), 8), 5);
    }

    #[test]
    fn names_parse_both_ways() {
        assert_eq!("masked".parse::<InpaintArea>(), Ok(InpaintArea::OnlyMasked));
        assert_eq!("Only masked".parse::<InpaintArea>(), Ok(InpaintArea::OnlyMasked));
        assert_eq!("latent noise".parse::<MaskedContent>(), Ok(MaskedContent::LatentNoise));
        assert_eq!("noise".parse::<MaskedContent>(), Ok(MaskedContent::LatentNoise));
        assert!("blah".parse::<MaskedContent>().unwrap_err().contains("original, fill"));
    }
}
