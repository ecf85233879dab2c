//! What the user asked for, frozen: everything a generation needs except the model weights.

use raster::{Gray8, Image, Rect, Rgba8};
use serde::{Deserialize, Serialize};

/// Where the model looks when inpainting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InpaintArea {
    /// The whole picture, resized to the working size.
    #[default]
    Whole,
    /// Only the masked region plus padding (and the context box), at the working size.
    Masked,
}

/// What the masked pixels start as before sampling.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaskedContent {
    #[default]
    Original,
    Fill,
    /// "latent noise" in A1111.
    Noise,
    /// "latent nothing" in A1111.
    Nothing,
}

impl InpaintArea {
    pub const ALL: [InpaintArea; 2] = [InpaintArea::Whole, InpaintArea::Masked];

    /// The CLI name (`--inpaint-area`).
    pub fn cli_name(self) -> &'static str {
        match self {
            InpaintArea::Whole => "whole",
            InpaintArea::Masked => "masked",
        }
    }

    /// A1111's infotext value.
    pub fn infotext_name(self) -> &'static str {
        match self {
            InpaintArea::Whole => "Whole picture",
            InpaintArea::Masked => "Only masked",
        }
    }
}

impl MaskedContent {
    pub const ALL: [MaskedContent; 4] = [
        MaskedContent::Original,
        MaskedContent::Fill,
        MaskedContent::Noise,
        MaskedContent::Nothing,
    ];

    /// The CLI name (`--masked-content`).
    pub fn cli_name(self) -> &'static str {
        match self {
            MaskedContent::Original => "original",
            MaskedContent::Fill => "fill",
            MaskedContent::Noise => "noise",
            MaskedContent::Nothing => "nothing",
        }
    }

    /// A1111's infotext value.
    pub fn infotext_name(self) -> &'static str {
        match self {
            MaskedContent::Original => "original",
            MaskedContent::Fill => "fill",
            MaskedContent::Noise => "latent noise",
            MaskedContent::Nothing => "latent nothing",
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

/// The number of steps img2img runs, and from which schedule index: k = floor(s·N + 1e-6)
/// steps starting at index N − k (product.md §3). Returns `(k, start_index)`.
pub fn img2img_steps(strength: f32, steps: u32) -> (u32, u32) {
    let k = (f64::from(strength.clamp(0.0, 1.0)) * f64::from(steps) + 1e-6).floor() as u32;
    let k = k.min(steps);
    (k, steps - k)
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
    fn strength_rule_floors_with_tolerance() {
        assert_eq!(img2img_steps(0.8, 20), (16, 4));
        assert_eq!(img2img_steps(0.75, 20), (15, 5));
        // 0.7 * 10 = 6.999999... in binary: the epsilon keeps it at 7.
        assert_eq!(img2img_steps(0.7, 10), (7, 3));
        assert_eq!(img2img_steps(1.0, 20), (20, 0));
        assert_eq!(img2img_steps(0.0, 20), (0, 20));
        assert_eq!(img2img_steps(0.04, 20), (0, 20));
    }

    #[test]
    fn a1111_strength_maps_to_the_same_step_count() {
        // A1111 at 0.75 × 20 runs 16 steps; we need 0.8.
        let s = strength_for_a1111_steps(0.75, 20);
        assert_eq!(img2img_steps(s, 20).0, 16);
        assert_eq!(img2img_steps(strength_for_a1111_steps(1.0, 20), 20).0, 20);
    }

    #[test]
    fn names_parse_both_ways() {
        assert_eq!("masked".parse::<InpaintArea>(), Ok(InpaintArea::Masked));
        assert_eq!("Only masked".parse::<InpaintArea>(), Ok(InpaintArea::Masked));
        assert_eq!("latent noise".parse::<MaskedContent>(), Ok(MaskedContent::Noise));
        assert!("blah".parse::<MaskedContent>().unwrap_err().contains("original, fill"));
    }
}
