//! Architecture inference from tensor names and shapes only (no config files), plus the rules that
//! shapes do not tell (product.md §3): head sizes, activations, epsilons, latent scaling.

use std::path::Path;

use serde::Serialize;

use crate::checkpoint::TensorStore;
use crate::error::{Result, SdError};

/// The model families Pentimento runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelArch {
    /// SD 1.x, 4-channel UNet input.
    Sd1,
    /// SD 1.x inpainting, 9-channel UNet input (latent, mask, masked-image latent).
    Sd1Inpaint,
    /// SDXL base and its finetunes.
    Sdxl,
    /// SDXL inpainting, 9-channel UNet input.
    SdxlInpaint,
}

impl ModelArch {
    pub fn is_sdxl(self) -> bool {
        matches!(self, Self::Sdxl | Self::SdxlInpaint)
    }

    pub fn is_inpaint(self) -> bool {
        matches!(self, Self::Sd1Inpaint | Self::SdxlInpaint)
    }

    /// VAE latent scaling factor of the family (0.18215 SD1.x, 0.13025 SDXL).
    pub fn latent_scaling(self) -> f64 {
        if self.is_sdxl() { 0.13025 } else { 0.18215 }
    }

    /// Native generation size in pixels (512 SD1.x, 1024 SDXL).
    pub fn native_size_px(self) -> usize {
        if self.is_sdxl() { 1024 } else { 512 }
    }
}

/// How the number of attention heads follows from the attention width.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HeadRule {
    /// A fixed number of heads (SD1 UNets: 8).
    FixedHeads(usize),
    /// 64-channel heads, or 8-channel heads when the width is below 256 (tiny test models).
    HeadDim64Or8,
}

impl HeadRule {
    /// Heads for an attention of `width` channels.
    pub fn heads(self, width: usize) -> usize {
        match self {
            Self::FixedHeads(heads) => heads,
            Self::HeadDim64Or8 => {
                let head_dim = if width < 256 { 8 } else { 64 };
                (width / head_dim).max(1)
            }
        }
    }
}

/// UNet sizes, LDM `UNetModel` / SGM naming.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UNetConfig {
    pub in_channels: usize,
    pub out_channels: usize,
    pub model_channels: usize,
    pub time_embed_dim: usize,
    pub channel_mult: Vec<usize>,
    /// Res blocks per level on the input side (the output side has one more).
    pub num_res_blocks: Vec<usize>,
    /// Transformer depth of each input block per level (0 = no attention at that level).
    pub transformer_depth: Vec<usize>,
    /// Transformer depth in the middle block (0 = no middle attention).
    pub transformer_depth_middle: usize,
    /// Transformer depth of each output block, in order (levels reversed).
    pub transformer_depth_output: Vec<usize>,
    pub context_dim: usize,
    /// Width of the SDXL `y` vector (pooled text + size/crop embeddings), absent for SD1.
    pub adm_in_channels: Option<usize>,
    /// SDXL's linear proj_in/proj_out instead of SD1's 1×1 convolutions.
    pub use_linear_proj: bool,
    pub head_rule: HeadRule,
    /// Heads at each level's attention width (derived from `head_rule`, for display).
    pub heads_per_level: Vec<usize>,
}

impl UNetConfig {
    fn with_heads(mut self) -> Self {
        self.heads_per_level = self
            .channel_mult
            .iter()
            .map(|m| self.head_rule.heads(m * self.model_channels))
            .collect();
        self
    }

    /// The real SD 1.5 UNet sizes (for the bench; checkpoints always use inferred sizes).
    pub fn sd15() -> Self {
        Self {
            in_channels: 4,
            out_channels: 4,
            model_channels: 320,
            time_embed_dim: 1280,
            channel_mult: vec![1, 2, 4, 4],
            num_res_blocks: vec![2; 4],
            transformer_depth: vec![1, 1, 1, 0],
            transformer_depth_middle: 1,
            transformer_depth_output: vec![0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1],
            context_dim: 768,
            adm_in_channels: None,
            use_linear_proj: false,
            head_rule: HeadRule::FixedHeads(8),
            heads_per_level: Vec::new(),
        }
        .with_heads()
    }

    /// The real SDXL base UNet sizes (for the bench).
    pub fn sdxl() -> Self {
        Self {
            in_channels: 4,
            out_channels: 4,
            model_channels: 320,
            time_embed_dim: 1280,
            channel_mult: vec![1, 2, 4],
            num_res_blocks: vec![2; 3],
            transformer_depth: vec![0, 2, 10],
            transformer_depth_middle: 10,
            transformer_depth_output: vec![10, 10, 10, 2, 2, 2, 0, 0, 0],
            context_dim: 2048,
            adm_in_channels: Some(2816),
            use_linear_proj: true,
            head_rule: HeadRule::HeadDim64Or8,
            heads_per_level: Vec::new(),
        }
        .with_heads()
    }
}

/// VAE (AutoencoderKL) sizes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VaeConfig {
    pub in_channels: usize,
    pub out_channels: usize,
    pub z_channels: usize,
    pub base_channels: usize,
    pub channel_mult: Vec<usize>,
    pub num_res_blocks: usize,
    pub scaling_factor: f64,
}

impl VaeConfig {
    /// The real SD/SDXL VAE sizes (for the bench).
    pub fn real(scaling_factor: f64) -> Self {
        Self {
            in_channels: 3,
            out_channels: 3,
            z_channels: 4,
            base_channels: 128,
            channel_mult: vec![1, 2, 4, 4],
            num_res_blocks: 2,
            scaling_factor,
        }
    }
}

/// Which CLIP implementation's layout and activation a text encoder has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClipLayout {
    /// Hugging Face `CLIPTextModel` names, quick_gelu (SD1 and SDXL CLIP-L).
    HuggingFace,
    /// open_clip names, fused in_proj, exact GELU, text_projection (SDXL OpenCLIP-bigG).
    OpenClip,
}

/// The MLP activation of a text encoder (fixed by the model family, not by shapes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClipActivation {
    /// `x·sigmoid(1.702x)`: OpenAI CLIP-L.
    QuickGelu,
    /// Exact (erf) GELU: OpenCLIP bigG.
    Gelu,
}

/// Text encoder sizes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TextEncoderConfig {
    pub layout: ClipLayout,
    pub activation: ClipActivation,
    #[serde(skip)]
    pub(crate) prefix: String,
    /// Full name of a Hugging Face `text_projection.weight` (`[proj, width]`, diffusers SDXL
    /// `text_encoder_2`); open_clip's `text_projection` (`[width, proj]`) lives under `prefix`.
    #[serde(skip)]
    pub(crate) hf_projection: Option<String>,
    pub vocab_size: usize,
    pub max_positions: usize,
    pub width: usize,
    pub layers: usize,
    pub heads: usize,
    pub mlp_width: usize,
    /// Output width of `text_projection` (OpenCLIP layout), if the file has one.
    pub projection_dim: Option<usize>,
}

impl TextEncoderConfig {
    /// CLIP ViT-L/14 text model (SD1.5, SDXL encoder 1), for the bench.
    pub fn clip_l(prefix: &str) -> Self {
        Self {
            layout: ClipLayout::HuggingFace,
            activation: ClipActivation::QuickGelu,
            prefix: prefix.to_string(),
            hf_projection: None,
            vocab_size: 49408,
            max_positions: 77,
            width: 768,
            layers: 12,
            heads: 12,
            mlp_width: 3072,
            projection_dim: None,
        }
    }

    /// OpenCLIP ViT-bigG/14 text model (SDXL encoder 2), for the bench.
    pub fn open_clip_g(prefix: &str) -> Self {
        Self {
            layout: ClipLayout::OpenClip,
            activation: ClipActivation::Gelu,
            prefix: prefix.to_string(),
            hf_projection: None,
            vocab_size: 49408,
            max_positions: 77,
            width: 1280,
            layers: 32,
            heads: 20,
            mlp_width: 5120,
            projection_dim: Some(1280),
        }
    }
}

/// Everything Pentimento knows about a checkpoint's architecture (`pentimento info` prints it).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelConfig {
    pub arch: ModelArch,
    pub unet: UNetConfig,
    pub vae: VaeConfig,
    pub text_encoders: Vec<TextEncoderConfig>,
    pub latent_scaling: f64,
}

pub(crate) const UNET_PREFIX: &str = "model.diffusion_model.";
pub(crate) const VAE_PREFIX: &str = "first_stage_model.";
pub(crate) const SD1_CLIP_PREFIX: &str = "cond_stage_model.transformer.text_model.";
pub(crate) const SDXL_CLIP_L_PREFIX: &str = "conditioner.embedders.0.transformer.text_model.";
pub(crate) const SDXL_CLIP_G_PREFIX: &str = "conditioner.embedders.1.model.";
/// Where a diffusers folder's `text_encoder_2` (HF layout) is placed.
pub(crate) const SDXL_CLIP_G_HF_PREFIX: &str = "conditioner.embedders.1.transformer.text_model.";
pub(crate) const SDXL_CLIP_G_HF_PROJECTION: &str =
    "conditioner.embedders.1.transformer.text_projection.weight";

/// Shape lookups with named errors.
struct Shapes<'a> {
    store: &'a TensorStore,
}

impl Shapes<'_> {
    fn has(&self, name: &str) -> bool {
        self.store.entries.contains_key(name)
    }

    fn any_prefix(&self, prefix: &str) -> bool {
        self.store.entries.keys().any(|k| k.starts_with(prefix))
    }

    fn shape(&self, name: &str) -> Result<&[usize]> {
        self.store
            .entries
            .get(name)
            .map(|e| e.shape.as_slice())
            .ok_or_else(|| SdError::MissingTensor { name: name.to_string() })
    }

    /// Dimension `axis` of `name`, which must have `rank` dimensions.
    fn dim(&self, name: &str, rank: usize, axis: usize) -> Result<usize> {
        let shape = self.shape(name)?;
        if shape.len() != rank {
            return Err(SdError::Inconsistent(format!(
                "tensor `{name}` has shape {shape:?}, expected {rank} dimensions"
            )));
        }
        shape.get(axis).copied().ok_or_else(|| SdError::MissingTensor { name: name.to_string() })
    }

    /// Counts `prefix{i}{suffix}` for i = 0, 1, … until one is missing.
    fn count(&self, prefix: &str, suffix: &str) -> usize {
        (0..).take_while(|i| self.has(&format!("{prefix}{i}{suffix}"))).count()
    }
}

/// Says what a file without a UNet looks like, for the "not a checkpoint" message.
fn describe_non_checkpoint(shapes: &Shapes<'_>) -> String {
    let keys = &shapes.store.entries;
    let count = keys.len();
    let any = |pat: &str| keys.keys().any(|k| k.contains(pat));
    if count == 0 {
        return "an empty safetensors file".into();
    }
    if any("lora_down")
        || any("lora_up")
        || any("lora_A")
        || any("lora_B")
        || any(".hada_")
        || any(".lokr_")
    {
        return format!("a LoRA/LyCORIS file ({count} tensors); put it in models/loras/");
    }
    if any("emb_params")
        || any("string_to_param")
        || keys.contains_key("clip_l")
        || keys.contains_key("clip_g")
    {
        return format!(
            "a textual-inversion embedding ({count} tensors); put it in models/embeddings/"
        );
    }
    if (shapes.any_prefix("encoder.") && shapes.any_prefix("decoder."))
        || shapes.any_prefix("first_stage_model.")
    {
        return format!("a standalone VAE ({count} tensors); put it in models/vae/");
    }
    if shapes.any_prefix("conv_in.") && shapes.any_prefix("down_blocks.") {
        return format!(
            "a diffusers UNet file ({count} tensors); open the diffusers model folder instead"
        );
    }
    if any("text_model.") || shapes.any_prefix("transformer.resblocks.") {
        return format!("a text encoder only ({count} tensors)");
    }
    let mut sample: Vec<&String> = keys.keys().collect();
    sample.sort();
    sample.truncate(3);
    format!("an unknown model ({count} tensors, e.g. {sample:?})")
}

fn unsupported(path: &Path, arch: &str, detail: &str) -> SdError {
    SdError::Unsupported { path: path.to_path_buf(), arch: arch.into(), detail: detail.into() }
}

/// Infers the architecture of the checkpoint at `path` from its tensor names and shapes.
pub(crate) fn infer(path: &Path, store: &TensorStore) -> Result<ModelConfig> {
    let shapes = Shapes { store };
    if shapes.any_prefix("model.diffusion_model.joint_blocks.")
        || shapes.any_prefix("joint_blocks.")
    {
        return Err(unsupported(path, "SD3", "MMDiT checkpoints are not supported"));
    }
    if shapes.any_prefix("model.diffusion_model.double_blocks.")
        || shapes.any_prefix("double_blocks.")
    {
        return Err(unsupported(path, "Flux", "Flux checkpoints are not supported"));
    }
    if !shapes.has("model.diffusion_model.input_blocks.0.0.weight") {
        return Err(SdError::NotACheckpoint {
            path: path.to_path_buf(),
            looks_like: describe_non_checkpoint(&shapes),
        });
    }
    if shapes.has("v_pred") || shapes.any_prefix("edm_vpred.") {
        return Err(unsupported(
            path,
            "v-prediction",
            "this checkpoint predicts v (it has a `v_pred` marker); only eps-prediction is supported",
        ));
    }
    if shapes.any_prefix("cond_stage_model.model.") {
        return Err(unsupported(
            path,
            "SD2.x",
            "its text encoder is OpenCLIP ViT-H (`cond_stage_model.model.*`); SD 2.x is not supported",
        ));
    }
    let has_clip_l = shapes.any_prefix(SDXL_CLIP_L_PREFIX);
    let has_clip_g_hf = shapes.any_prefix(SDXL_CLIP_G_HF_PREFIX);
    let has_clip_g = shapes.any_prefix(SDXL_CLIP_G_PREFIX) || has_clip_g_hf;
    if shapes.any_prefix("conditioner.embedders.0.model.") && !has_clip_g {
        return Err(unsupported(
            path,
            "SDXL refiner",
            "its only text encoder is OpenCLIP bigG (adm 2560); the SDXL refiner is not supported",
        ));
    }
    let unet = infer_unet(&shapes)?;
    let (arch, text_encoders) = if has_clip_l && has_clip_g {
        if unet.adm_in_channels.is_none() {
            return Err(SdError::Inconsistent(
                "SDXL text encoders but the UNet has no `label_emb` (adm) input".into(),
            ));
        }
        let arch = if unet.in_channels == 9 { ModelArch::SdxlInpaint } else { ModelArch::Sdxl };
        let clip_g = if has_clip_g_hf {
            infer_hf_clip(
                &shapes,
                SDXL_CLIP_G_HF_PREFIX,
                ClipActivation::Gelu,
                Some(SDXL_CLIP_G_HF_PROJECTION),
            )?
        } else {
            infer_open_clip(&shapes, SDXL_CLIP_G_PREFIX)?
        };
        let encoders = vec![
            infer_hf_clip(&shapes, SDXL_CLIP_L_PREFIX, ClipActivation::QuickGelu, None)?,
            clip_g,
        ];
        (arch, encoders)
    } else if shapes.any_prefix(SD1_CLIP_PREFIX) {
        if let Some(adm) = unet.adm_in_channels {
            return Err(SdError::Inconsistent(format!(
                "SD1 text encoder but the UNet has a {adm}-wide `label_emb` input"
            )));
        }
        let arch = if unet.in_channels == 9 { ModelArch::Sd1Inpaint } else { ModelArch::Sd1 };
        (arch, vec![infer_hf_clip(&shapes, SD1_CLIP_PREFIX, ClipActivation::QuickGelu, None)?])
    } else if unet.adm_in_channels == Some(2560) {
        return Err(unsupported(path, "SDXL refiner", "adm width 2560 is the SDXL refiner"));
    } else {
        return Err(SdError::MissingTensor {
            name: format!("{SD1_CLIP_PREFIX}* or {SDXL_CLIP_L_PREFIX}* (no text encoder)"),
        });
    };
    if !unet.in_channels.eq(&4) && !unet.in_channels.eq(&9) {
        return Err(SdError::Inconsistent(format!(
            "UNet input has {} channels; only 4 (txt2img) and 9 (inpainting) are supported",
            unet.in_channels
        )));
    }
    let first_width = text_encoders.iter().map(|t| t.width).sum::<usize>();
    if first_width != unet.context_dim {
        return Err(SdError::Inconsistent(format!(
            "text encoder width {first_width} does not match the UNet context dim {}",
            unet.context_dim
        )));
    }
    let vae = infer_vae(&shapes, arch.latent_scaling())?;
    Ok(ModelConfig { arch, unet, vae, text_encoders, latent_scaling: arch.latent_scaling() })
}

fn infer_unet(shapes: &Shapes<'_>) -> Result<UNetConfig> {
    let p = UNET_PREFIX;
    let conv_in = format!("{p}input_blocks.0.0.weight");
    let model_channels = shapes.dim(&conv_in, 4, 0)?;
    let in_channels = shapes.dim(&conv_in, 4, 1)?;
    let out_channels = shapes.dim(&format!("{p}out.2.weight"), 4, 0)?;
    let time_embed_dim = shapes.dim(&format!("{p}time_embed.0.weight"), 2, 0)?;
    let adm_in_channels = if shapes.has(&format!("{p}label_emb.0.0.weight")) {
        Some(shapes.dim(&format!("{p}label_emb.0.0.weight"), 2, 1)?)
    } else {
        None
    };
    // Input block i is either a res block (in_layers) or a downsampler (op); count them.
    let block_count = (1..)
        .take_while(|i| {
            shapes.any_prefix(&format!("{p}input_blocks.{i}.0.in_layers."))
                || shapes.has(&format!("{p}input_blocks.{i}.0.op.weight"))
        })
        .count();
    let mut channel_mult = Vec::new();
    let mut num_res_blocks = Vec::new();
    let mut transformer_depth = Vec::new();
    let mut level_res = 0usize;
    let mut level_depth: Option<usize> = None;
    let mut level_width = model_channels;
    let mut context_dim = None;
    let mut use_linear_proj = None;
    let depth_of =
        |block: &str| shapes.count(&format!("{block}transformer_blocks."), ".attn1.to_q.weight");
    for i in 1..=block_count {
        let block = format!("{p}input_blocks.{i}.");
        if shapes.has(&format!("{block}0.op.weight")) {
            channel_mult.push(level_width / model_channels.max(1));
            num_res_blocks.push(level_res);
            transformer_depth.push(level_depth.unwrap_or(0));
            level_res = 0;
            level_depth = None;
            continue;
        }
        level_res += 1;
        level_width = shapes.dim(&format!("{block}0.out_layers.3.weight"), 4, 0)?;
        let depth = if shapes.has(&format!("{block}1.proj_in.weight")) {
            let proj = shapes.shape(&format!("{block}1.proj_in.weight"))?;
            use_linear_proj.get_or_insert(proj.len() == 2);
            let k = format!("{block}1.transformer_blocks.0.attn2.to_k.weight");
            context_dim.get_or_insert(shapes.dim(&k, 2, 1)?);
            depth_of(&format!("{block}1."))
        } else {
            0
        };
        match level_depth {
            Some(d) if d != depth => {
                return Err(SdError::Inconsistent(format!(
                    "input blocks of one level have different transformer depths ({d} and {depth})"
                )));
            }
            _ => level_depth = Some(depth),
        }
    }
    channel_mult.push(level_width / model_channels.max(1));
    num_res_blocks.push(level_res);
    transformer_depth.push(level_depth.unwrap_or(0));
    if level_res == 0 {
        return Err(SdError::MissingTensor {
            name: format!("{p}input_blocks.1.0.in_layers.2.weight"),
        });
    }
    let mid = format!("{p}middle_block.1.");
    let transformer_depth_middle =
        if shapes.has(&format!("{mid}proj_in.weight")) { depth_of(&mid) } else { 0 };
    let output_count: usize = num_res_blocks.iter().map(|n| n + 1).sum();
    let transformer_depth_output = (0..output_count)
        .map(|i| {
            let block = format!("{p}output_blocks.{i}.1.");
            if shapes.has(&format!("{block}proj_in.weight")) { depth_of(&block) } else { 0 }
        })
        .collect();
    let use_linear_proj = use_linear_proj.unwrap_or(adm_in_channels.is_some());
    let context_dim = match context_dim {
        Some(c) => c,
        None => shapes.dim(&format!("{mid}transformer_blocks.0.attn2.to_k.weight"), 2, 1)?,
    };
    // SD1 UNets (conv proj_in) use 8 heads; SDXL (linear proj_in) 64-channel heads.
    let head_rule = if use_linear_proj { HeadRule::HeadDim64Or8 } else { HeadRule::FixedHeads(8) };
    Ok(UNetConfig {
        in_channels,
        out_channels,
        model_channels,
        time_embed_dim,
        channel_mult,
        num_res_blocks,
        transformer_depth,
        transformer_depth_middle,
        transformer_depth_output,
        context_dim,
        adm_in_channels,
        use_linear_proj,
        head_rule,
        heads_per_level: Vec::new(),
    }
    .with_heads())
}

fn infer_vae(shapes: &Shapes<'_>, scaling_factor: f64) -> Result<VaeConfig> {
    let p = format!("{VAE_PREFIX}encoder.");
    let conv_in = format!("{p}conv_in.weight");
    let base_channels = shapes.dim(&conv_in, 4, 0)?;
    let in_channels = shapes.dim(&conv_in, 4, 1)?;
    let levels = shapes.count(&format!("{p}down."), ".block.0.conv1.weight");
    if levels == 0 {
        return Err(SdError::MissingTensor { name: format!("{p}down.0.block.0.conv1.weight") });
    }
    let num_res_blocks = shapes.count(&format!("{p}down.0.block."), ".conv1.weight");
    let channel_mult = (0..levels)
        .map(|l| {
            let name = format!("{p}down.{l}.block.0.conv2.weight");
            shapes.dim(&name, 4, 0).map(|c| c / base_channels.max(1))
        })
        .collect::<Result<Vec<_>>>()?;
    let z_channels = shapes.dim(&format!("{VAE_PREFIX}post_quant_conv.weight"), 4, 0)?;
    let out_channels = shapes.dim(&format!("{VAE_PREFIX}decoder.conv_out.weight"), 4, 0)?;
    Ok(VaeConfig {
        in_channels,
        out_channels,
        z_channels,
        base_channels,
        channel_mult,
        num_res_blocks,
        scaling_factor,
    })
}

fn infer_hf_clip(
    shapes: &Shapes<'_>,
    prefix: &str,
    activation: ClipActivation,
    hf_projection: Option<&str>,
) -> Result<TextEncoderConfig> {
    let tokens = format!("{prefix}embeddings.token_embedding.weight");
    let vocab_size = shapes.dim(&tokens, 2, 0)?;
    let width = shapes.dim(&tokens, 2, 1)?;
    let max_positions =
        shapes.dim(&format!("{prefix}embeddings.position_embedding.weight"), 2, 0)?;
    let layers = shapes.count(&format!("{prefix}encoder.layers."), ".self_attn.q_proj.weight");
    let mlp_width = shapes.dim(&format!("{prefix}encoder.layers.0.mlp.fc1.weight"), 2, 0)?;
    let projection_dim = match hf_projection {
        Some(name) => Some(shapes.dim(name, 2, 0)?),
        None => None,
    };
    Ok(TextEncoderConfig {
        layout: ClipLayout::HuggingFace,
        activation,
        prefix: prefix.to_string(),
        hf_projection: hf_projection.map(str::to_string),
        vocab_size,
        max_positions,
        width,
        layers,
        heads: HeadRule::HeadDim64Or8.heads(width),
        mlp_width,
        projection_dim,
    })
}

fn infer_open_clip(shapes: &Shapes<'_>, prefix: &str) -> Result<TextEncoderConfig> {
    let tokens = format!("{prefix}token_embedding.weight");
    let vocab_size = shapes.dim(&tokens, 2, 0)?;
    let width = shapes.dim(&tokens, 2, 1)?;
    let max_positions = shapes.dim(&format!("{prefix}positional_embedding"), 2, 0)?;
    let layers = shapes.count(&format!("{prefix}transformer.resblocks."), ".attn.in_proj_weight");
    let mlp_width =
        shapes.dim(&format!("{prefix}transformer.resblocks.0.mlp.c_fc.weight"), 2, 0)?;
    let projection_dim = Some(shapes.dim(&format!("{prefix}text_projection"), 2, 1)?);
    Ok(TextEncoderConfig {
        layout: ClipLayout::OpenClip,
        activation: ClipActivation::Gelu,
        prefix: prefix.to_string(),
        hf_projection: None,
        vocab_size,
        max_positions,
        width,
        layers,
        heads: HeadRule::HeadDim64Or8.heads(width),
        mlp_width,
        projection_dim,
    })
}

/// VAE sizes of a store holding a VAE under `first_stage_model.` (standalone VAE files).
pub(crate) fn infer_vae_only(store: &TensorStore, scaling_factor: f64) -> Result<VaeConfig> {
    infer_vae(&Shapes { store }, scaling_factor)
}
