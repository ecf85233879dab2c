//! How a generated layer was made: the recipe that lets an image chain be shown, reused and
//! re-rolled. Field names are part of the project file format (serialised as JSON in `.ora`
//! files), so they must never be renamed; new fields must be `#[serde(default)]`.

use std::collections::BTreeMap;

use raster::Rect;
use serde::{Deserialize, Serialize};

use crate::LayerId;

/// A model file by name and (A1111-style short) hash; the hash identifies it across renames.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelRef {
    pub name: String,
    pub hash: Option<String>,
}

/// A LoRA applied with a weight (`<lora:name:weight>`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LoraRef {
    pub name: String,
    pub weight: f32,
    pub hash: Option<String>,
}

/// Which of the three (really one) generation operations produced the layer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GenerationMode {
    #[default]
    Txt2img,
    Img2img,
    Inpaint,
}

/// A1111's "Inpaint area".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InpaintArea {
    #[default]
    WholePicture,
    OnlyMasked,
}

/// A1111's "Masked content".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaskedContent {
    Fill,
    #[default]
    Original,
    LatentNoise,
    LatentNothing,
}

/// Names: the CLI's (`--inpaint-area`, `--masked-content`) and A1111's infotext values; both
/// parse back.
impl InpaintArea {
    pub const ALL: [InpaintArea; 2] = [InpaintArea::WholePicture, InpaintArea::OnlyMasked];

    /// The CLI name (`--inpaint-area`).
    pub fn cli_name(self) -> &'static str {
        match self {
            InpaintArea::WholePicture => "whole",
            InpaintArea::OnlyMasked => "masked",
        }
    }

    /// A1111's infotext value.
    pub fn infotext_name(self) -> &'static str {
        match self {
            InpaintArea::WholePicture => "Whole picture",
            InpaintArea::OnlyMasked => "Only masked",
        }
    }
}

impl MaskedContent {
    pub const ALL: [MaskedContent; 4] = [
        MaskedContent::Original,
        MaskedContent::Fill,
        MaskedContent::LatentNoise,
        MaskedContent::LatentNothing,
    ];

    /// The CLI name (`--masked-content`).
    pub fn cli_name(self) -> &'static str {
        match self {
            MaskedContent::Original => "original",
            MaskedContent::Fill => "fill",
            MaskedContent::LatentNoise => "noise",
            MaskedContent::LatentNothing => "nothing",
        }
    }

    /// A1111's infotext value.
    pub fn infotext_name(self) -> &'static str {
        match self {
            MaskedContent::Original => "original",
            MaskedContent::Fill => "fill",
            MaskedContent::LatentNoise => "latent noise",
            MaskedContent::LatentNothing => "latent nothing",
        }
    }
}

macro_rules! from_str_by_names {
    ($ty:ty, $what:literal) => {
        impl std::str::FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                Self::ALL
                    .into_iter()
                    .find(|v| v.cli_name() == s || v.infotext_name().eq_ignore_ascii_case(s))
                    .ok_or_else(|| {
                        let names: Vec<_> = Self::ALL.iter().map(|v| v.cli_name()).collect();
                        format!("unknown {} '{s}' (expected one of: {})", $what, names.join(", "))
                    })
            }
        }
    };
}
from_str_by_names!(InpaintArea, "inpaint area");
from_str_by_names!(MaskedContent, "masked content");

/// Inpainting parameters, present only for [`GenerationMode::Inpaint`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InpaintParams {
    pub area: InpaintArea,
    /// "Only masked padding, pixels".
    pub padding_px: u32,
    /// Gaussian σ of the mask blur, in pixels.
    pub mask_blur_px: u32,
    pub masked_content: MaskedContent,
    /// The mask was inverted (regenerate what is *not* painted).
    pub inverted: bool,
}

/// The full recipe of one generated image.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GenerationRecord {
    pub prompt: String,
    pub negative_prompt: String,
    pub model: ModelRef,
    pub vae: Option<ModelRef>,
    pub loras: Vec<LoraRef>,
    pub sampler: String,
    pub schedule: String,
    pub steps: u32,
    pub cfg_scale: f32,
    pub seed: u64,
    /// Denoising strength; `None` for txt2img.
    pub strength: Option<f32>,
    /// Working size of the generation (not necessarily the layer's size).
    pub width: u32,
    pub height: u32,
    pub clip_skip: Option<u32>,
    pub mode: GenerationMode,
    pub inpaint: Option<InpaintParams>,
    /// The canvas region the model saw (after padding and aspect widening), canvas pixels.
    pub context_box: Option<Rect>,
    /// The canvas region whose pixels were the init image, canvas pixels.
    pub source_box: Option<Rect>,
    /// The layers this result was generated from (lineage of an image chain).
    pub parent_layers: Vec<LayerId>,
    /// Further A1111 infotext keys we do not model, verbatim (`"Hires upscale": "2"`).
    pub extra: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_field_names_are_stable() {
        let rec = GenerationRecord {
            prompt: "a cat".into(),
            mode: GenerationMode::Inpaint,
            inpaint: Some(InpaintParams {
                area: InpaintArea::OnlyMasked,
                masked_content: MaskedContent::LatentNoise,
                ..Default::default()
            }),
            parent_layers: vec![LayerId::from_raw(3)],
            loras: vec![LoraRef { name: "ink".into(), weight: 0.5, hash: Some("abc".into()) }],
            ..Default::default()
        };
        let json = serde_json::to_value(&rec).unwrap();
        assert_eq!(json["prompt"], "a cat");
        assert_eq!(json["mode"], "inpaint");
        assert_eq!(json["inpaint"]["area"], "only_masked");
        assert_eq!(json["inpaint"]["masked_content"], "latent_noise");
        assert_eq!(json["parent_layers"][0], 3);
        assert_eq!(json["loras"][0]["weight"], 0.5);
        for key in [
            "negative_prompt",
            "model",
            "vae",
            "sampler",
            "schedule",
            "steps",
            "cfg_scale",
            "seed",
            "strength",
            "width",
            "height",
            "clip_skip",
            "context_box",
            "source_box",
            "extra",
        ] {
            assert!(json.get(key).is_some(), "missing {key}");
        }
        let back: GenerationRecord = serde_json::from_value(json).unwrap();
        assert_eq!(back, rec);
    }

    #[test]
    fn missing_fields_default() {
        let rec: GenerationRecord = serde_json::from_str(r#"{"prompt":"x","seed":7}"#).unwrap();
        assert_eq!(rec.seed, 7);
        assert_eq!(rec.mode, GenerationMode::Txt2img);
    }
}
