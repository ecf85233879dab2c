//! Which LoRA module names address which model layer. Kohya names are module paths with `.`
//! replaced by `_` (so they are matched by building every layer's name, never by parsing), in the
//! diffusers spelling (SD1 trainers) or the LDM spelling (SDXL trainers); PEFT/diffusers files use
//! dotted paths under `unet.` / `text_encoder.` / `text_encoder_2.`. The diffusers ↔ LDM block
//! mapping is derived from the UNet's structure (levels, res blocks per level, attention).

use crate::config::UNetConfig;

/// The diffusers module path of a UNet layer given by its LDM name (relative to
/// `model.diffusion_model.`), or `None` for layers diffusers has no name for.
pub(crate) struct UNetNames {
    /// (LDM block prefix, diffusers block prefix, is a res block).
    blocks: Vec<(String, String, bool)>,
}

const RESNET_NAMES: [(&str, &str); 4] = [
    ("in_layers.2", "conv1"),
    ("emb_layers.1", "time_emb_proj"),
    ("out_layers.3", "conv2"),
    ("skip_connection", "conv_shortcut"),
];

impl UNetNames {
    pub(crate) fn new(config: &UNetConfig) -> Self {
        let mut blocks = vec![
            ("time_embed.0".into(), "time_embedding.linear_1".into(), false),
            ("time_embed.2".into(), "time_embedding.linear_2".into(), false),
            ("label_emb.0.0".into(), "add_embedding.linear_1".into(), false),
            ("label_emb.0.2".into(), "add_embedding.linear_2".into(), false),
            ("input_blocks.0.0".into(), "conv_in".into(), false),
            ("out.2".into(), "conv_out".into(), false),
        ];
        let levels = config.channel_mult.len();
        let res_of = |level: usize| config.num_res_blocks.get(level).copied().unwrap_or(0);
        let mut index = 1;
        for level in 0..levels {
            let attention = config.transformer_depth.get(level).copied().unwrap_or(0) > 0;
            for j in 0..res_of(level) {
                let ldm = format!("input_blocks.{index}");
                let diffusers = format!("down_blocks.{level}");
                blocks.push((format!("{ldm}.0"), format!("{diffusers}.resnets.{j}"), true));
                if attention {
                    blocks.push((format!("{ldm}.1"), format!("{diffusers}.attentions.{j}"), false));
                }
                index += 1;
            }
            if level + 1 != levels {
                blocks.push((
                    format!("input_blocks.{index}.0.op"),
                    format!("down_blocks.{level}.downsamplers.0.conv"),
                    false,
                ));
                index += 1;
            }
        }
        blocks.push(("middle_block.0".into(), "mid_block.resnets.0".into(), true));
        if config.transformer_depth_middle > 0 {
            blocks.push(("middle_block.1".into(), "mid_block.attentions.0".into(), false));
            blocks.push(("middle_block.2".into(), "mid_block.resnets.1".into(), true));
        } else {
            blocks.push(("middle_block.1".into(), "mid_block.resnets.1".into(), true));
        }
        let mut index = 0;
        for (up, level) in (0..levels).rev().enumerate() {
            let res = res_of(level);
            for j in 0..=res {
                let ldm = format!("output_blocks.{index}");
                let diffusers = format!("up_blocks.{up}");
                blocks.push((format!("{ldm}.0"), format!("{diffusers}.resnets.{j}"), true));
                let attention =
                    config.transformer_depth_output.get(index).copied().unwrap_or(0) > 0;
                if attention {
                    blocks.push((format!("{ldm}.1"), format!("{diffusers}.attentions.{j}"), false));
                }
                if level > 0 && j == res {
                    let slot = if attention { 2 } else { 1 };
                    blocks.push((
                        format!("{ldm}.{slot}.conv"),
                        format!("{diffusers}.upsamplers.0.conv"),
                        false,
                    ));
                }
                index += 1;
            }
        }
        Self { blocks }
    }

    /// The diffusers path of the layer with LDM name `ldm` (relative to the UNet).
    pub(crate) fn diffusers_name(&self, ldm: &str) -> Option<String> {
        self.blocks.iter().find_map(|(prefix, diffusers, is_res)| {
            let rest = if ldm == prefix {
                ""
            } else {
                ldm.strip_prefix(prefix.as_str())?.strip_prefix('.')?
            };
            if rest.is_empty() {
                return (!is_res).then(|| diffusers.clone());
            }
            if *is_res {
                let (_, to) = RESNET_NAMES.iter().find(|(from, _)| *from == rest)?;
                return Some(format!("{diffusers}.{to}"));
            }
            Some(format!("{diffusers}.{rest}"))
        })
    }
}

/// Every module name a LoRA may use for the UNet layer `ldm` (diffusers path `diffusers`).
pub(crate) fn unet_aliases(ldm: &str, diffusers: Option<&str>) -> Vec<String> {
    let mut names = vec![
        format!("lora_unet_{}", ldm.replace('.', "_")),
        format!("diffusion_model.{ldm}"),
        format!("model.diffusion_model.{ldm}"),
    ];
    if let Some(d) = diffusers {
        names.push(format!("lora_unet_{}", d.replace('.', "_")));
        names.push(format!("unet.{d}"));
    }
    names
}

/// Every module name a LoRA may use for text-encoder layer `hf_path`
/// (`text_model.encoder.layers.…`) of encoder `index` out of `count`.
pub(crate) fn text_encoder_aliases(hf_path: &str, index: usize, count: usize) -> Vec<String> {
    let (kohya, dotted) = match (count, index) {
        (1, _) => ("lora_te_", "text_encoder."),
        (_, 0) => ("lora_te1_", "text_encoder."),
        _ => ("lora_te2_", "text_encoder_2."),
    };
    let short = hf_path.strip_prefix("text_model.").unwrap_or(hf_path);
    vec![
        format!("{kohya}{}", hf_path.replace('.', "_")),
        format!("{dotted}{hf_path}"),
        format!("{dotted}{short}"),
    ]
}
