//! The A1111 `parameters` text of a generated image, and reading A1111's names back.
//!
//! Key order and value spelling follow A1111's `create_infotext` so other tools (A1111 "PNG
//! Info", Civitai, ComfyUI importers) read our PNGs as their own.

use doc::infotext::{Infotext, LoraHash, TiHash};
use sampling::{SamplerKind, Schedule};

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;

use sd::embedding::EmbeddingSet;
use sd::library::{NETWORK_HASH_LEN, hash_file};
use sd::prompt::PromptChunks;

use crate::conditioning::embeddings_used;
use crate::generate::PipelineError;
use crate::request::{GenerationRequest, InpaintArea, MaskedContent};

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
    /// `TI hashes`: the embeddings the prompts used, in A1111's order ([`a1111_ti_hashes`]).
    pub ti_hashes: Vec<TiHash>,
    /// A 9-channel inpainting UNet: A1111 then writes `Conditional mask weight` (always its
    /// default 1.0 here: the masked-image conditioning is never weakened).
    pub inpainting_model: bool,
}

/// `TI hashes` for a generation's two tokenized prompts: every embedding they use, with the
/// first 12 hex digits of its file's sha256 (A1111 `textual_inversion.py`: `hashes.sha256` of
/// the whole file, no addnet hash), in A1111's order ([`a1111_ti_hashes`]). Embeddings built in
/// memory (no file) are left out, as A1111 leaves out those without a hash.
pub fn ti_hashes_for_prompts(
    prompt: &[PromptChunks],
    negative: &[PromptChunks],
    embeddings: &EmbeddingSet,
) -> Result<Vec<TiHash>, PipelineError> {
    let (prompt, negative) = (embeddings_used(prompt), embeddings_used(negative));
    let mut hashes: BTreeMap<&str, String> = BTreeMap::new();
    for name in prompt.iter().chain(&negative).flatten() {
        let Some(path) = embeddings.get(name).and_then(|e| e.path()) else { continue };
        if hashes.contains_key(name.as_str()) {
            continue;
        }
        // Embeddings are kilobytes: hashing them on every generation costs nothing.
        let file = hash_file(path, false, &AtomicBool::new(false), &mut |_, _| {})
            .map_err(|e| PipelineError::Prompt(format!("embedding {name}: {e}")))?;
        hashes.insert(name, file.sha256.chars().take(NETWORK_HASH_LEN).collect());
    }
    Ok(a1111_ti_hashes(&prompt, &negative, &|name| hashes.get(name).cloned()))
}

/// The `TI hashes` entries A1111 writes, from the embeddings each text encoder saw in the
/// prompt and in the negative prompt (per encoder, in order of first use) and a hash lookup
/// (`None`: no hash known, left out as A1111 does).
///
/// A1111 (`sd_hijack_clip.py`) adds one list per text-encoder call and puts each new list in
/// front of what is there; the calls run negative first, then prompt, each through every
/// encoder. So the prompt's embeddings come first, and SDXL, with two encoders, lists every
/// embedding twice (`neg: 1a2b…, neg: 1a2b…`, as real SDXL infotexts show).
pub fn a1111_ti_hashes(
    prompt_per_encoder: &[Vec<String>],
    negative_per_encoder: &[Vec<String>],
    hash_of: &dyn Fn(&str) -> Option<String>,
) -> Vec<TiHash> {
    let calls = negative_per_encoder.iter().chain(prompt_per_encoder);
    let mut entries: Vec<TiHash> = Vec::new();
    for names in calls {
        let mut call: Vec<TiHash> = names
            .iter()
            .filter_map(|name| Some(TiHash { name: name.clone(), hash: hash_of(name)? }))
            .collect();
        call.append(&mut entries);
        entries = call;
    }
    entries
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
    // A1111's fixed slots, then its extra parameters in the order it adds them: the mask blur
    // (`img2img.py`), then `processing.py`'s mask mode, area, padding and content, then the
    // LoRA hashes (network activation) and the TI hashes (prompt encoding).
    if let Some(init) = &request.init {
        info.set("Denoising strength", format_float(f64::from(init.strength)));
    }
    if model.inpainting_model {
        info.set("Conditional mask weight", "1.0");
    }
    if request.clip_skip > 1 {
        info.set("Clip skip", request.clip_skip);
    }
    if let Some(inpaint) = &request.inpaint {
        info.set("Mask blur", inpaint.mask_blur_px);
        if inpaint.invert_mask {
            info.set("Mask mode", "Inpaint not masked");
        }
        // A1111 writes the area and padding only for "only masked", the content unless it is
        // "original".
        if inpaint.area == InpaintArea::OnlyMasked {
            info.set("Inpaint area", inpaint.area.infotext_name());
            info.set("Masked area padding", inpaint.padding_px);
        }
        if inpaint.masked_content != MaskedContent::Original {
            info.set("Masked content", inpaint.masked_content.infotext_name());
        }
    }
    if !model.lora_hashes.is_empty() {
        info.set_lora_hashes(&model.lora_hashes);
    }
    if !model.ti_hashes.is_empty() {
        info.set_ti_hashes(&model.ti_hashes);
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

    fn inpaint_request(
        area: InpaintArea,
        content: MaskedContent,
        invert: bool,
    ) -> GenerationRequest {
        let mut req = GenerationRequest::txt2img("a fox, my_emb", 512, 512, 42);
        req.negative_prompt = "bad_emb".into();
        req.init =
            Some(crate::request::InitImage { image: raster::Image::new(8, 8), strength: 0.6 });
        req.inpaint = Some(crate::request::InpaintOptions {
            mask: raster::Image::new(8, 8),
            invert_mask: invert,
            area,
            padding_px: 48,
            mask_blur_px: 8,
            masked_content: content,
            context: None,
        });
        req
    }

    /// Hand-checked against A1111 1.10's `create_infotext` (fixed slots, then the extra
    /// parameters in insertion order: `Mask blur`, `Mask mode`, `Inpaint area`, `Masked area
    /// padding`, `Masked content`, `Lora hashes`, `TI hashes`).
    #[test]
    fn inpaint_keys_in_a1111_order_and_spelling() {
        let req = inpaint_request(InpaintArea::OnlyMasked, MaskedContent::Fill, true);
        let model = ModelIdentity {
            name: "sd15-inpainting".into(),
            hash: Some("0123456789".into()),
            lora_hashes: vec![LoraHash { name: "ink".into(), hash: "1a2b3c4d5e6f".into() }],
            ti_hashes: vec![
                TiHash { name: "my_emb".into(), hash: "aaaaaaaaaaaa".into() },
                TiHash { name: "bad_emb".into(), hash: "bbbbbbbbbbbb".into() },
            ],
            inpainting_model: true,
            ..Default::default()
        };
        let text = infotext_for(&req, 0, &model).to_text();
        assert_eq!(
            text,
            "a fox, my_emb\nNegative prompt: bad_emb\nSteps: 20, Sampler: Euler a, Schedule type: \
             Uniform, CFG scale: 7.0, Seed: 42, Size: 512x512, Model hash: 0123456789, Model: \
             sd15-inpainting, Denoising strength: 0.6, Conditional mask weight: 1.0, Mask blur: \
             8, Mask mode: Inpaint not masked, Inpaint area: Only masked, Masked area padding: \
             48, Masked content: fill, Lora hashes: \"ink: 1a2b3c4d5e6f\", TI hashes: \"my_emb: \
             aaaaaaaaaaaa, bad_emb: bbbbbbbbbbbb\", Version: Pentimento 0.1.0"
        );
        // Read back, the text gives the request's inpaint settings and the hashes again.
        let back = Infotext::parse(&text);
        assert_eq!(
            back.inpaint_params(),
            Some(doc::InpaintParams {
                area: InpaintArea::OnlyMasked,
                padding_px: 48,
                mask_blur_px: 8,
                masked_content: MaskedContent::Fill,
                inverted: true,
            })
        );
        assert_eq!(back.denoising_strength(), Some(0.6));
        assert_eq!(back.ti_hashes(), model.ti_hashes);
        assert_eq!(back.lora_hashes(), model.lora_hashes);
        assert_eq!(back.to_text(), text);
    }

    /// Whole picture with original content: A1111 writes only the mask blur.
    #[test]
    fn whole_picture_original_writes_only_the_mask_blur() {
        let req = inpaint_request(InpaintArea::WholePicture, MaskedContent::Original, false);
        let text = infotext_for(&req, 1, &ModelIdentity::default()).to_text();
        assert_eq!(
            text,
            "a fox, my_emb\nNegative prompt: bad_emb\nSteps: 20, Sampler: Euler a, Schedule type: \
             Uniform, CFG scale: 7.0, Seed: 43, Size: 512x512, Denoising strength: 0.6, Mask \
             blur: 8, Version: Pentimento 0.1.0"
        );
        let back = Infotext::parse(&text).inpaint_params().unwrap();
        assert_eq!(
            (back.area, back.masked_content, back.inverted),
            (InpaintArea::WholePicture, MaskedContent::Original, false)
        );
        assert_eq!(back.mask_blur_px, 8);
    }

    #[test]
    fn ti_hashes_follow_a1111s_call_order() {
        let hash = |name: &str| (name != "unhashed").then(|| format!("{name}-hash"));
        let names = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let entry = |name: &str| TiHash { name: name.into(), hash: format!("{name}-hash") };
        // SD1: the prompt's embeddings (first use first), then the negative's; a file without
        // a hash is left out.
        let sd1 = a1111_ti_hashes(&[names(&["a", "b"])], &[names(&["c", "unhashed"])], &hash);
        assert_eq!(sd1, vec![entry("a"), entry("b"), entry("c")]);
        // SDXL: every call (negative L, negative G, prompt L, prompt G) prepends its list.
        let sdxl = a1111_ti_hashes(
            &[names(&["pos"]), names(&["pos"])],
            &[names(&["neg"]), names(&["neg"])],
            &hash,
        );
        assert_eq!(sdxl, vec![entry("pos"), entry("pos"), entry("neg"), entry("neg")]);
        assert!(a1111_ti_hashes(&[vec![]], &[vec![]], &hash).is_empty());
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
