//! The A1111 `parameters` text of a generated image, and reading A1111's names back.
//!
//! Key order and value spelling follow A1111's `create_infotext` so other tools (A1111 "PNG
//! Info", Civitai, ComfyUI importers) read our PNGs as their own.

use doc::infotext::{Infotext, LoraHash};
use sampling::{SamplerKind, Schedule};

use crate::request::GenerationRequest;

/// What the infotext says about the model; hashes are A1111 short hashes (10 hex of sha256).
#[derive(Clone, Debug, Default)]
pub struct ModelIdentity {
    /// File stem, as A1111's `Model:` field.
    pub name: String,
    pub hash: Option<String>,
    pub vae_name: Option<String>,
    pub vae_hash: Option<String>,
    /// `Lora hashes`: each applied LoRA's name and A1111 short hash.
    pub lora_hashes: Vec<LoraHash>,
}

/// The label A1111 writes for a schedule in `Schedule type:`.
pub fn a1111_schedule_name(schedule: Schedule) -> &'static str {
    match schedule {
        // A1111's "Uniform" is k-diffusion's get_sigmas, which is our `normal`.
        Schedule::Normal => "Uniform",
        Schedule::Karras => "Karras",
        Schedule::Exponential => "Exponential",
        Schedule::SgmUniform => "SGM Uniform",
        Schedule::Simple => "Simple",
    }
}

/// Reads A1111's sampler and schedule labels, including the old combined spellings
/// ("DPM++ 2M Karras"). `None` for samplers we do not implement.
pub fn sampler_from_a1111(
    sampler: &str,
    schedule: Option<&str>,
) -> Option<(SamplerKind, Schedule)> {
    let mut name = sampler.trim();
    let mut implied = None;
    for (suffix, s) in [(" Karras", Schedule::Karras), (" Exponential", Schedule::Exponential)] {
        if let Some(stripped) = name.strip_suffix(suffix) {
            name = stripped;
            implied = Some(s);
        }
    }
    let kind = SamplerKind::ALL.into_iter().find(|k| k.a1111_name().eq_ignore_ascii_case(name))?;
    let schedule = match schedule.map(str::trim) {
        Some("Karras") => Schedule::Karras,
        Some("Exponential") => Schedule::Exponential,
        Some("SGM Uniform") => Schedule::SgmUniform,
        Some("Simple") => Schedule::Simple,
        _ => implied.unwrap_or(Schedule::Normal),
    };
    Some((kind, schedule))
}

/// The infotext of image `index` of `request` (its seed is `seed + index`).
pub fn infotext_for(request: &GenerationRequest, index: u32, model: &ModelIdentity) -> Infotext {
    let mut info = Infotext {
        prompt: request.prompt.clone(),
        negative_prompt: request.negative_prompt.clone(),
        params: Vec::new(),
    };
    info.set("Steps", request.steps);
    info.set("Sampler", request.sampler.a1111_name());
    info.set("Schedule type", a1111_schedule_name(request.schedule));
    info.set("CFG scale", format_float(f64::from(request.cfg_scale)));
    info.set("Seed", request.seed.wrapping_add(u64::from(index)));
    info.set_size(request.width, request.height);
    if let Some(hash) = &model.hash {
        info.set("Model hash", hash);
    }
    if !model.name.is_empty() {
        info.set("Model", &model.name);
    }
    if let Some(hash) = &model.vae_hash {
        info.set("VAE hash", hash);
    }
    if let Some(vae) = &model.vae_name {
        info.set("VAE", vae);
    }
    if let Some(init) = &request.init {
        info.set("Denoising strength", format_float(f64::from(init.strength)));
    }
    if request.clip_skip > 1 {
        info.set("Clip skip", request.clip_skip);
    }
    if let Some(inpaint) = &request.inpaint {
        info.set("Mask blur", inpaint.mask_blur_px);
        info.set("Inpaint area", inpaint.area.infotext_name());
        info.set("Masked area padding", inpaint.padding_px);
        info.set("Masked content", inpaint.masked_content.infotext_name());
        if inpaint.invert_mask {
            info.set("Mask mode", "Inpaint not masked");
        }
    }
    if !model.lora_hashes.is_empty() {
        info.set_lora_hashes(&model.lora_hashes);
    }
    info.set("Version", concat!("Pentimento ", env!("CARGO_PKG_VERSION")));
    info
}

/// Numbers as A1111 prints Python floats: `7` stays `7` only for integers written as ints; CFG
/// and strength are floats in A1111, printed as `7.0`, `0.75`.
fn format_float(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.1}")
    } else {
        let short = format!("{value}");
        // f32 → f64 widening shows noise (0.75 is exact, 0.7 is 0.699999988…): print the
        // shortest text that reads back to the same f32.
        let as_f32 = value as f32;
        let f32_text = format!("{as_f32}");
        if f32_text.len() < short.len() { f32_text } else { short }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a1111_order_and_spelling() {
        let mut req = GenerationRequest::txt2img("a fox, (snow:1.2)", 512, 768, 42);
        req.negative_prompt = "blurry".into();
        req.sampler = SamplerKind::DpmPp2M;
        req.schedule = Schedule::Karras;
        req.clip_skip = 2;
        let model = ModelIdentity {
            name: "ponyDiffusionV6XL".into(),
            hash: Some("67ab2fd8ec".into()),
            ..Default::default()
        };
        let text = infotext_for(&req, 1, &model).to_text();
        assert_eq!(
            text,
            "a fox, (snow:1.2)\nNegative prompt: blurry\nSteps: 20, Sampler: DPM++ 2M, Schedule \
             type: Karras, CFG scale: 7.0, Seed: 43, Size: 512x768, Model hash: 67ab2fd8ec, \
             Model: ponyDiffusionV6XL, Clip skip: 2, Version: Pentimento 0.1.0"
        );
        let back = Infotext::parse(&text);
        assert_eq!(back.seed(), Some(43));
        assert_eq!(back.size(), Some((512, 768)));
    }

    #[test]
    fn reads_old_and_new_sampler_spellings() {
        assert_eq!(
            sampler_from_a1111("DPM++ 2M Karras", None),
            Some((SamplerKind::DpmPp2M, Schedule::Karras))
        );
        assert_eq!(
            sampler_from_a1111("DPM++ 2M", Some("Karras")),
            Some((SamplerKind::DpmPp2M, Schedule::Karras))
        );
        assert_eq!(
            sampler_from_a1111("Euler a", Some("Automatic")),
            Some((SamplerKind::EulerAncestral, Schedule::Normal))
        );
        assert_eq!(sampler_from_a1111("UniPC", None), None);
    }

    #[test]
    fn floats_print_like_python() {
        assert_eq!(format_float(7.0), "7.0");
        assert_eq!(format_float(f64::from(0.7f32)), "0.7");
        assert_eq!(format_float(0.75), "0.75");
    }
}
