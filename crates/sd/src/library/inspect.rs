//! Cheap per-file inspection: the 8-byte length and JSON header of a safetensors file (never the
//! tensor data), and what its tensor names and shapes say the file is.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::config::ModelArch;

use super::LibraryError;

/// Headers above this are not plausible for any model file (the largest real ones are a few MiB).
const MAX_HEADER_BYTES: u64 = 100 * 1024 * 1024;

/// The parts of a safetensors header the library needs.
#[derive(Debug, Clone, Default)]
pub(crate) struct Header {
    /// Tensor names with their shapes, in header order.
    pub(crate) tensors: Vec<(String, Vec<usize>)>,
    /// `__metadata__` string values (kohya's `ss_*`, `sshs_model_hash`, `modelspec.*`).
    pub(crate) metadata: BTreeMap<String, String>,
}

impl Header {
    fn any(&self, pred: impl Fn(&str) -> bool) -> bool {
        self.tensors.iter().any(|(name, _)| pred(name))
    }

    fn all(&self, pred: impl Fn(&str) -> bool) -> bool {
        !self.tensors.is_empty() && self.tensors.iter().all(|(name, _)| pred(name))
    }

    fn shape(&self, name: &str) -> Option<&[usize]> {
        self.tensors.iter().find(|(n, _)| n == name).map(|(_, s)| s.as_slice())
    }
}

/// Names a pickle by its magic bytes (a `.safetensors` name does not make a file safe).
pub(crate) fn pickle_magic(head: &[u8]) -> Option<&'static str> {
    match head {
        [b'P', b'K', 3, 4, ..] => Some("a PyTorch zip archive"),
        [0x80, protocol, ..] if (2..=5).contains(protocol) => Some("a pickle stream"),
        _ => None,
    }
}

/// Reads the header of the safetensors file at `path` of `file_len` bytes.
pub(crate) fn read_header(path: &Path, file_len: u64) -> Result<Header, LibraryError> {
    let io = |source| LibraryError::Io { path: path.to_path_buf(), source };
    let bad = |detail: String| LibraryError::BadHeader { path: path.to_path_buf(), detail };
    let mut file = File::open(path).map_err(io)?;
    if file_len < 8 {
        return Err(bad(format!("{file_len} bytes, shorter than the 8-byte header length")));
    }
    let mut head = [0u8; 9];
    let head_len = usize::try_from(file_len.min(9)).unwrap_or(9);
    let head = head.get_mut(..head_len).unwrap_or_default();
    file.read_exact(head).map_err(io)?;
    // A safetensors header length can begin with the bytes of a pickle's magic (a 640-byte header
    // is `80 02 00 …`), so the JSON's opening brace decides first.
    let json_follows = head.get(8) == Some(&b'{');
    if !json_follows && let Some(what) = pickle_magic(head) {
        return Err(LibraryError::Pickle { path: path.to_path_buf(), what: what.to_string() });
    }
    let mut length = [0u8; 8];
    length.copy_from_slice(head.get(..8).unwrap_or(&[0; 8]));
    let header_len = u64::from_le_bytes(length);
    if header_len > MAX_HEADER_BYTES {
        return Err(bad(format!(
            "declared header length {header_len} bytes is implausible (not a safetensors file?)"
        )));
    }
    if 8 + header_len > file_len {
        return Err(bad(format!(
            "the header declares {header_len} bytes but the file has only {file_len} bytes \
             (truncated download?)"
        )));
    }
    let mut text = head.get(8..).unwrap_or_default().to_vec();
    file.take(header_len.saturating_sub(1)).read_to_end(&mut text).map_err(io)?;
    let json: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&text)
        .map_err(|e| bad(format!("header is not a JSON object: {e}")))?;
    let mut header = Header::default();
    for (name, value) in json {
        if name == "__metadata__" {
            if let Some(map) = value.as_object() {
                for (key, value) in map {
                    if let Some(text) = value.as_str() {
                        header.metadata.insert(key.clone(), text.to_string());
                    }
                }
            }
            continue;
        }
        let shape = value
            .get("shape")
            .and_then(|s| s.as_array())
            .and_then(|dims| {
                dims.iter()
                    .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
                    .collect::<Option<Vec<usize>>>()
            })
            .ok_or_else(|| bad(format!("tensor `{name}` has no valid shape")))?;
        header.tensors.push((name, shape));
    }
    Ok(header)
}

/// The SD family a LoRA or embedding was trained for, read from its shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    Sd1,
    Sd2,
    Sdxl,
}

impl Family {
    /// From a text-conditioning width: the cross-attention context or CLIP hidden size.
    fn from_context_width(width: usize) -> Option<Self> {
        match width {
            768 => Some(Self::Sd1),
            1024 => Some(Self::Sd2),
            2048 => Some(Self::Sdxl),
            _ => None,
        }
    }

    pub(crate) fn arch(self) -> Option<ModelArch> {
        match self {
            Self::Sd1 => Some(ModelArch::Sd1),
            Self::Sdxl => Some(ModelArch::Sdxl),
            Self::Sd2 => None,
        }
    }
}

/// What a header says the file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Content {
    /// An LDM single-file checkpoint (`model.diffusion_model.*`); `Checkpoint::open` says which.
    Checkpoint,
    Lora {
        family: Option<Family>,
    },
    Vae,
    Embedding {
        family: Option<Family>,
        vectors: usize,
    },
    Upscaler,
    Unknown,
}

impl Content {
    pub(crate) fn describe(&self) -> &'static str {
        match self {
            Self::Checkpoint => "a checkpoint",
            Self::Lora { .. } => "a LoRA",
            Self::Vae => "a VAE",
            Self::Embedding { .. } => "a textual-inversion embedding",
            Self::Upscaler => "an upscaler",
            Self::Unknown => "an unknown model",
        }
    }
}

/// Classifies a header by its key names (and a few shapes).
pub(crate) fn classify(header: &Header) -> Content {
    if header.any(|n| n.starts_with("model.diffusion_model.")) {
        return Content::Checkpoint;
    }
    if is_lora(header) {
        return Content::Lora { family: lora_family(header) };
    }
    if let Some(content) = embedding(header) {
        return content;
    }
    let vae_part = |n: &str| {
        ["encoder.", "decoder.", "quant_conv.", "post_quant_conv."].iter().any(|p| n.starts_with(p))
    };
    if (header.all(vae_part) && header.any(|n| n.starts_with("decoder.")))
        || header.all(|n| n.starts_with("first_stage_model."))
    {
        return Content::Vae;
    }
    // ESRGAN-family upscalers: the RRDBNet key set (`conv_first`/`conv_last`, SwinIR, Real-ESRGAN)
    // or the old sequential ESRGAN layout (`model.0.weight` … `model.1.sub.*`).
    if (header.any(|n| n == "conv_first.weight") && header.any(|n| n == "conv_last.weight"))
        || (header.any(|n| n == "model.0.weight") && header.any(|n| n.starts_with("model.1.sub.")))
    {
        return Content::Upscaler;
    }
    Content::Unknown
}

/// Kohya (`lora_unet_*`, `lora_te*_*`, `.lora_down`), LyCORIS (`hada_*`, `lokr_*`) and
/// diffusers/PEFT (`lora_A`/`lora_B`, `.lora.down`) key styles.
fn is_lora(header: &Header) -> bool {
    header.any(|n| {
        n.starts_with("lora_unet_")
            || n.starts_with("lora_te_")
            || n.starts_with("lora_te1_")
            || n.starts_with("lora_te2_")
            || n.contains(".lora_down.")
            || n.contains(".lora_up.")
            || n.contains(".lora_A.")
            || n.contains(".lora_B.")
            || n.contains(".lora.down.")
            || n.contains(".lora.up.")
            || n.contains(".hada_w1_")
            || n.contains(".lokr_w1")
    })
}

/// The input width of a low-rank factor that reads the layer's input: kohya `lora_down`
/// `[rank, in]`, PEFT `lora_A` `[rank, in]`, diffusers `lora.down` `[rank, in]`, LoHa `hada_w1_b`
/// `[rank, in]`.
fn input_width(name: &str, shape: &[usize]) -> Option<usize> {
    let reads_input = [".lora_down.weight", ".lora_A.weight", ".lora.down.weight", ".hada_w1_b"]
        .iter()
        .any(|suffix| name.ends_with(suffix));
    match shape {
        [_, width] if reads_input => Some(*width),
        _ => None,
    }
}

/// SDXL when a second text encoder is patched; otherwise the cross-attention context width of the
/// UNet's `attn2` key/value projections (768 SD1, 1024 SD2, 2048 SDXL), then the first text
/// encoder's width, then kohya/modelspec metadata.
fn lora_family(header: &Header) -> Option<Family> {
    if header.any(|n| n.starts_with("lora_te1_") || n.starts_with("lora_te2_")) {
        return Some(Family::Sdxl);
    }
    let is_cross_kv = |n: &str| {
        n.contains("attn2") && (n.contains("to_k") || n.contains("to_v")) && !n.contains("lora_te")
    };
    let context = header
        .tensors
        .iter()
        .filter(|(n, _)| is_cross_kv(n))
        .find_map(|(n, s)| input_width(n, s).and_then(Family::from_context_width));
    if context.is_some() {
        return context;
    }
    let text_width = header
        .tensors
        .iter()
        .filter(|(n, _)| {
            (n.starts_with("lora_te_") || n.starts_with("text_encoder.")) && n.contains("q_proj")
        })
        .find_map(|(n, s)| input_width(n, s))
        .and_then(|width| match width {
            768 => Some(Family::Sd1),
            1024 => Some(Family::Sd2),
            _ => None,
        });
    if text_width.is_some() {
        return text_width;
    }
    let meta = |key: &str| header.metadata.get(key).map(String::as_str);
    if let Some(version) = meta("ss_base_model_version") {
        if version.starts_with("sdxl") {
            return Some(Family::Sdxl);
        }
        if version.starts_with("sd_v1") {
            return Some(Family::Sd1);
        }
        if version.starts_with("sd_v2") {
            return Some(Family::Sd2);
        }
    }
    if meta("ss_v2") == Some("True") {
        return Some(Family::Sd2);
    }
    match meta("modelspec.architecture") {
        Some(a) if a.starts_with("stable-diffusion-xl") => Some(Family::Sdxl),
        Some(a) if a.starts_with("stable-diffusion-v1") => Some(Family::Sd1),
        Some(a) if a.starts_with("stable-diffusion-v2") => Some(Family::Sd2),
        _ => None,
    }
}

/// Textual-inversion embeddings: SDXL `clip_l` + `clip_g`; SD1/SD2 `emb_params`,
/// `string_to_param.*`, or a single `[vectors, width]` tensor (diffusers concepts).
fn embedding(header: &Header) -> Option<Content> {
    let vectors_of = |shape: &[usize]| match shape {
        [vectors, _] => *vectors,
        _ => 1,
    };
    if let (Some(l), Some(_)) = (header.shape("clip_l"), header.shape("clip_g")) {
        return Some(Content::Embedding { family: Some(Family::Sdxl), vectors: vectors_of(l) });
    }
    let single = match header.tensors.as_slice() {
        [(name, shape)] if matches!(shape.len(), 1 | 2) => Some((name, shape)),
        _ => None,
    };
    let named =
        header.tensors.iter().find(|(n, _)| n == "emb_params" || n.starts_with("string_to_param"));
    let (_, shape) = named.map(|(n, s)| (n, s)).or(single)?;
    let width = shape.last().copied().unwrap_or(0);
    let family = match width {
        768 => Some(Family::Sd1),
        1024 => Some(Family::Sd2),
        _ => None,
    };
    if named.is_none() && family.is_none() {
        return None;
    }
    Some(Content::Embedding { family, vectors: vectors_of(shape) })
}
