//! The generation record of one result: what a layer made by generation remembers of its recipe
//! (the document's [`GenerationRecord`]), built from the frozen request so it can never disagree
//! with what ran.

use doc::{GenerationMode, GenerationRecord, InpaintParams, LayerId, LoraRef, ModelRef};
use raster::Rect;
use sd::prompt::{is_lora_kind, lora_from_tag, split_extra_networks};

use crate::infotext::{ModelIdentity, a1111_schedule_name};
use crate::request::GenerationRequest;

/// Where the result sits in the document: filled in by the editor, which knows the layers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Placement {
    /// The canvas region the model saw (the only-masked crop box, or the whole canvas).
    pub context_box: Option<Rect>,
    /// The canvas region whose pixels were the init image.
    pub source_box: Option<Rect>,
    /// The layers whose visible pixels were the init image.
    pub parent_layers: Vec<LayerId>,
}

/// The LoRAs a prompt applies: `<lora:name:w>` tags give names and weights, `lora_hashes` (the
/// identity of what ran, or a pasted infotext's `Lora hashes`) their hashes.
pub fn loras_of_prompt(prompt: &str, lora_hashes: &[doc::infotext::LoraHash]) -> Vec<LoraRef> {
    split_extra_networks(prompt)
        .map(|(_, tags)| {
            tags.iter()
                .filter(|t| is_lora_kind(&t.kind))
                .filter_map(|t| lora_from_tag(t).ok())
                .map(|l| LoraRef {
                    hash: lora_hashes.iter().find(|h| h.name == l.name).map(|h| h.hash.clone()),
                    name: l.name,
                    weight: l.te_weight,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The record of image `index` of `request` (seed `seed + index`).
pub fn record_for(
    request: &GenerationRequest,
    index: u32,
    model: &ModelIdentity,
    placement: &Placement,
) -> GenerationRecord {
    let mode = match (&request.inpaint, &request.init) {
        (Some(_), _) => GenerationMode::Inpaint,
        (None, Some(_)) => GenerationMode::Img2img,
        (None, None) => GenerationMode::Txt2img,
    };
    let loras = loras_of_prompt(&request.prompt, &model.lora_hashes);
    GenerationRecord {
        prompt: request.prompt.clone(),
        negative_prompt: request.negative_prompt.clone(),
        model: ModelRef { name: model.name.clone(), hash: model.hash.clone() },
        vae: model
            .vae_name
            .as_ref()
            .map(|name| ModelRef { name: name.clone(), hash: model.vae_hash.clone() }),
        loras,
        sampler: request.sampler.a1111_name().to_owned(),
        schedule: a1111_schedule_name(request.schedule).to_owned(),
        steps: request.steps,
        cfg_scale: request.cfg_scale,
        seed: request.seed.wrapping_add(u64::from(index)),
        strength: request.init.as_ref().map(|i| i.strength),
        width: request.width,
        height: request.height,
        clip_skip: (request.clip_skip > 1).then_some(request.clip_skip),
        mode,
        inpaint: request.inpaint.as_ref().map(|i| InpaintParams {
            area: i.area,
            padding_px: i.padding_px,
            mask_blur_px: i.mask_blur_px,
            masked_content: i.masked_content,
            inverted: i.invert_mask,
        }),
        context_box: placement.context_box,
        source_box: placement.source_box,
        parent_layers: placement.parent_layers.clone(),
        extra: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use doc::infotext::LoraHash;

    use super::*;

    #[test]
    fn records_what_ran() {
        let mut request = GenerationRequest::txt2img("a fox <lora:ink:0.6>", 512, 768, 41);
        request.clip_skip = 2;
        let model = ModelIdentity {
            name: "model".into(),
            hash: Some("0123456789".into()),
            lora_hashes: vec![LoraHash { name: "ink".into(), hash: "abcdef123456".into() }],
            ..Default::default()
        };
        let placement =
            Placement { parent_layers: vec![LayerId::from_raw(2)], ..Default::default() };
        let r = record_for(&request, 2, &model, &placement);
        assert_eq!(r.seed, 43);
        assert_eq!(r.mode, GenerationMode::Txt2img);
        assert_eq!(r.sampler, "Euler a");
        assert_eq!(r.schedule, "Uniform");
        assert_eq!(r.clip_skip, Some(2));
        assert_eq!((r.width, r.height), (512, 768));
        assert_eq!(r.model.hash.as_deref(), Some("0123456789"));
        assert_eq!(r.loras.len(), 1);
        assert_eq!(r.loras[0].weight, 0.6);
        assert_eq!(r.loras[0].hash.as_deref(), Some("abcdef123456"));
        assert_eq!(r.parent_layers, vec![LayerId::from_raw(2)]);
        assert_eq!(r.strength, None);
    }
}
