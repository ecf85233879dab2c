//! Diffusers folder layouts (`unet/`, `vae/`, `text_encoder/`, `text_encoder_2/`): every tensor is
//! renamed to its LDM single-file name, so the same inference and modules serve both layouts.
//! The UNet block mapping is derived from the folder's own structure (levels, res blocks per
//! level, which up blocks have attention), never hard-coded for SD1.5's four levels.

use std::path::{Path, PathBuf};

use crate::checkpoint::{SafetensorsFile, TensorStore};
use crate::config::{SD1_CLIP_PREFIX, UNET_PREFIX, VAE_PREFIX};
use crate::error::{Result, SdError};

/// The weights file of one component folder: `<base>.safetensors`, else `<base>.fp16.safetensors`;
/// a pickled `<base>.bin` alone is refused.
fn component_file(folder: &Path, component: &str, base: &str) -> Result<Option<PathBuf>> {
    let dir = folder.join(component);
    if !dir.is_dir() {
        return Ok(None);
    }
    for name in [format!("{base}.safetensors"), format!("{base}.fp16.safetensors")] {
        let path = dir.join(name);
        if path.is_file() {
            return Ok(Some(path));
        }
    }
    let bin = dir.join(format!("{base}.bin"));
    if bin.is_file() {
        return Err(SdError::Pickle { path: bin, what: "a diffusers .bin (pickle) file".into() });
    }
    Err(SdError::MissingTensor {
        name: format!("{}/{base}.safetensors (no weights file)", dir.display()),
    })
}

fn required(folder: &Path, component: &str, base: &str) -> Result<SafetensorsFile> {
    let path = component_file(folder, component, base)?.ok_or_else(|| SdError::NotACheckpoint {
        path: folder.to_path_buf(),
        looks_like: format!("a folder without the diffusers `{component}/` component"),
    })?;
    SafetensorsFile::open(&path)
}

/// Adds the tensors of a diffusers model folder to `store` under their LDM names.
pub(crate) fn add_folder(store: &mut TensorStore, folder: &Path) -> Result<()> {
    let unet = required(folder, "unet", "diffusion_pytorch_model")?;
    let vae = required(folder, "vae", "diffusion_pytorch_model")?;
    let text = required(folder, "text_encoder", "model")?;
    let text_2 = match component_file(folder, "text_encoder_2", "model")? {
        Some(path) => Some(SafetensorsFile::open(&path)?),
        None => None,
    };
    let unet_map = UNetMap::new(&unet.names());
    store.add_file(unet, &|k| unet_map.rename(k).map(|n| format!("{UNET_PREFIX}{n}")));
    let vae_levels = count(&vae.names(), "decoder.up_blocks.", ".resnets.0.conv1.weight");
    store.add_file(vae, &|k| rename_vae(k, vae_levels).map(|n| format!("{VAE_PREFIX}{n}")));
    match text_2 {
        Some(text_2) => {
            store.add_file(text, &|k| {
                Some(format!("conditioner.embedders.0.transformer.{}", clip_key(k)))
            });
            store.add_file(text_2, &|k| {
                Some(format!("conditioner.embedders.1.transformer.{}", clip_key(k)))
            });
        }
        None => {
            let base = SD1_CLIP_PREFIX.trim_end_matches("text_model.");
            store.add_file(text, &|k| Some(format!("{base}{}", clip_key(k))));
        }
    }
    Ok(())
}

/// transformers ≥ 5 saves `CLIPTextModel` without the `text_model.` level that older files have.
fn clip_key(key: &str) -> String {
    if key.starts_with("embeddings.")
        || key.starts_with("encoder.")
        || key.starts_with("final_layer_norm.")
    {
        format!("text_model.{key}")
    } else {
        key.to_string()
    }
}

/// Counts `prefix{i}suffix` names for i = 0, 1, … until one is missing.
pub(crate) fn count(names: &[String], prefix: &str, suffix: &str) -> usize {
    (0..).take_while(|i| names.iter().any(|n| *n == format!("{prefix}{i}{suffix}"))).count()
}

const RESNET_NAMES: [(&str, &str); 6] = [
    ("norm1", "in_layers.0"),
    ("conv1", "in_layers.2"),
    ("time_emb_proj", "emb_layers.1"),
    ("norm2", "out_layers.0"),
    ("conv2", "out_layers.3"),
    ("conv_shortcut", "skip_connection"),
];

fn rename_head(rest: &str, table: &[(&str, &str)]) -> Option<String> {
    table.iter().find_map(|(from, to)| {
        rest.strip_prefix(from).filter(|r| r.starts_with('.')).map(|r| format!("{to}{r}"))
    })
}

/// Splits `"{index}.{rest}"` into its number and the rest.
fn split_index(s: &str) -> Option<(usize, &str)> {
    let (index, rest) = s.split_once('.')?;
    Some((index.parse().ok()?, rest))
}

struct UNetMap {
    /// Res blocks per down level (diffusers `layers_per_block`).
    res_per_level: usize,
    up_has_attention: Vec<bool>,
    mid_has_attention: bool,
}

impl UNetMap {
    fn new(names: &[String]) -> Self {
        let res_per_level = count(names, "down_blocks.0.resnets.", ".conv1.weight");
        let up_levels = count(names, "up_blocks.", ".resnets.0.conv1.weight");
        let up_has_attention = (0..up_levels)
            .map(|u| names.iter().any(|n| n.starts_with(&format!("up_blocks.{u}.attentions."))))
            .collect();
        let mid_has_attention = names.iter().any(|n| n.starts_with("mid_block.attentions."));
        Self { res_per_level, up_has_attention, mid_has_attention }
    }

    fn rename(&self, key: &str) -> Option<String> {
        const TOP: [(&str, &str); 7] = [
            ("time_embedding.linear_1", "time_embed.0"),
            ("time_embedding.linear_2", "time_embed.2"),
            ("add_embedding.linear_1", "label_emb.0.0"),
            ("add_embedding.linear_2", "label_emb.0.2"),
            ("conv_in", "input_blocks.0.0"),
            ("conv_norm_out", "out.0"),
            ("conv_out", "out.2"),
        ];
        if let Some(name) = rename_head(key, &TOP) {
            return Some(name);
        }
        let per_level = self.res_per_level + 1;
        if let Some(rest) = key.strip_prefix("down_blocks.") {
            let (level, rest) = split_index(rest)?;
            if let Some(rest) = rest.strip_prefix("resnets.") {
                let (r, rest) = split_index(rest)?;
                let block = 1 + level * per_level + r;
                return Some(format!(
                    "input_blocks.{block}.0.{}",
                    rename_head(rest, &RESNET_NAMES)?
                ));
            }
            if let Some(rest) = rest.strip_prefix("attentions.") {
                let (r, rest) = split_index(rest)?;
                return Some(format!("input_blocks.{}.1.{rest}", 1 + level * per_level + r));
            }
            let rest = rest.strip_prefix("downsamplers.0.conv.")?;
            return Some(format!("input_blocks.{}.0.op.{rest}", (level + 1) * per_level));
        }
        if let Some(rest) = key.strip_prefix("mid_block.") {
            if let Some(rest) = rest.strip_prefix("resnets.") {
                let (r, rest) = split_index(rest)?;
                let index = if r == 0 {
                    0
                } else if self.mid_has_attention {
                    2
                } else {
                    1
                };
                return Some(format!("middle_block.{index}.{}", rename_head(rest, &RESNET_NAMES)?));
            }
            let rest = rest.strip_prefix("attentions.0.")?;
            return Some(format!("middle_block.1.{rest}"));
        }
        if let Some(rest) = key.strip_prefix("up_blocks.") {
            let (up, rest) = split_index(rest)?;
            if let Some(rest) = rest.strip_prefix("resnets.") {
                let (r, rest) = split_index(rest)?;
                let block = up * per_level + r;
                return Some(format!(
                    "output_blocks.{block}.0.{}",
                    rename_head(rest, &RESNET_NAMES)?
                ));
            }
            if let Some(rest) = rest.strip_prefix("attentions.") {
                let (r, rest) = split_index(rest)?;
                return Some(format!("output_blocks.{}.1.{rest}", up * per_level + r));
            }
            let rest = rest.strip_prefix("upsamplers.0.conv.")?;
            let slot = if self.up_has_attention.get(up).copied().unwrap_or(false) { 2 } else { 1 };
            return Some(format!(
                "output_blocks.{}.{slot}.conv.{rest}",
                up * per_level + self.res_per_level
            ));
        }
        None
    }
}

const VAE_RESNET_NAMES: [(&str, &str); 5] = [
    ("norm1", "norm1"),
    ("conv1", "conv1"),
    ("norm2", "norm2"),
    ("conv2", "conv2"),
    ("conv_shortcut", "nin_shortcut"),
];

const VAE_ATTENTION_NAMES: [(&str, &str); 10] = [
    ("group_norm", "norm"),
    ("to_q", "q"),
    ("to_k", "k"),
    ("to_v", "v"),
    ("to_out.0", "proj_out"),
    // Older diffusers attention names.
    ("query", "q"),
    ("key", "k"),
    ("value", "v"),
    ("proj_attn", "proj_out"),
    ("norm", "norm"),
];

pub(crate) fn rename_vae(key: &str, levels: usize) -> Option<String> {
    let (side, rest) = key.split_once('.')?;
    if side != "encoder" && side != "decoder" {
        return Some(key.to_string()); // quant_conv, post_quant_conv
    }
    let renamed = if let Some(rest) = rest.strip_prefix("conv_norm_out.") {
        format!("norm_out.{rest}")
    } else if rest.starts_with("conv_in.") || rest.starts_with("conv_out.") {
        rest.to_string()
    } else if let Some(rest) = rest.strip_prefix("mid_block.") {
        if let Some(rest) = rest.strip_prefix("resnets.") {
            let (r, rest) = split_index(rest)?;
            format!("mid.block_{}.{}", r + 1, rename_head(rest, &VAE_RESNET_NAMES)?)
        } else {
            let rest = rest.strip_prefix("attentions.0.")?;
            format!("mid.attn_1.{}", rename_head(rest, &VAE_ATTENTION_NAMES)?)
        }
    } else if let Some(rest) = rest.strip_prefix("down_blocks.") {
        let (level, rest) = split_index(rest)?;
        if let Some(rest) = rest.strip_prefix("resnets.") {
            let (b, rest) = split_index(rest)?;
            format!("down.{level}.block.{b}.{}", rename_head(rest, &VAE_RESNET_NAMES)?)
        } else {
            format!("down.{level}.downsample.conv.{}", rest.strip_prefix("downsamplers.0.conv.")?)
        }
    } else if let Some(rest) = rest.strip_prefix("up_blocks.") {
        let (up, rest) = split_index(rest)?;
        let level = levels.checked_sub(up + 1)?;
        if let Some(rest) = rest.strip_prefix("resnets.") {
            let (b, rest) = split_index(rest)?;
            format!("up.{level}.block.{b}.{}", rename_head(rest, &VAE_RESNET_NAMES)?)
        } else {
            format!("up.{level}.upsample.conv.{}", rest.strip_prefix("upsamplers.0.conv.")?)
        }
    } else {
        return None;
    };
    Some(format!("{side}.{renamed}"))
}
