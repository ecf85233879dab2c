//! Reading LoRA/LyCORIS `.safetensors` files into modules: each tensor key is split into the
//! module it patches and its role (`lora_down`, `hada_w1_a`, `lokr_w2`, `alpha`, …), whatever
//! spelling the trainer used (kohya, LyCORIS, PEFT/diffusers).

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};

use crate::checkpoint::{SafetensorsFile, TensorSource, TensorStore};
use crate::error::SdError;

/// What one tensor of a LoRA module is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Role {
    Down,
    Up,
    Mid,
    Alpha,
    HadaW1A,
    HadaW1B,
    HadaW2A,
    HadaW2B,
    HadaT1,
    HadaT2,
    LokrW1,
    LokrW1A,
    LokrW1B,
    LokrW2,
    LokrW2A,
    LokrW2B,
    LokrT2,
    /// A full weight difference (LyCORIS "full"/`diff`).
    Diff,
    /// A role Pentimento recognises but does not apply (named in the report).
    Unsupported(&'static str),
}

/// Key suffixes (after the module name and a dot) and their roles. PEFT's `lora_A` is the down
/// projection, `lora_B` the up projection.
const SUFFIXES: [(&str, Role); 29] = [
    ("lora_down.weight", Role::Down),
    ("lora_up.weight", Role::Up),
    ("lora_mid.weight", Role::Mid),
    ("alpha", Role::Alpha),
    ("lora_A.weight", Role::Down),
    ("lora_B.weight", Role::Up),
    ("lora.down.weight", Role::Down),
    ("lora.up.weight", Role::Up),
    ("lora_linear_layer.down.weight", Role::Down),
    ("lora_linear_layer.up.weight", Role::Up),
    ("hada_w1_a", Role::HadaW1A),
    ("hada_w1_b", Role::HadaW1B),
    ("hada_w2_a", Role::HadaW2A),
    ("hada_w2_b", Role::HadaW2B),
    ("hada_t1", Role::HadaT1),
    ("hada_t2", Role::HadaT2),
    ("lokr_w1", Role::LokrW1),
    ("lokr_w1_a", Role::LokrW1A),
    ("lokr_w1_b", Role::LokrW1B),
    ("lokr_w2", Role::LokrW2),
    ("lokr_w2_a", Role::LokrW2A),
    ("lokr_w2_b", Role::LokrW2B),
    ("lokr_t2", Role::LokrT2),
    ("diff", Role::Diff),
    ("dora_scale", Role::Unsupported("DoRA weight decomposition is not supported")),
    ("lora_magnitude_vector", Role::Unsupported("DoRA weight decomposition is not supported")),
    ("diff_b", Role::Unsupported("bias differences are not supported")),
    ("w_norm", Role::Unsupported("norm-layer networks are not supported")),
    ("b_norm", Role::Unsupported("norm-layer networks are not supported")),
];

/// Older diffusers attention-processor spellings, rewritten to module paths.
const PROCESSOR_NAMES: [(&str, &str); 8] = [
    (".processor.to_q_lora.", ".to_q.lora."),
    (".processor.to_k_lora.", ".to_k.lora."),
    (".processor.to_v_lora.", ".to_v.lora."),
    (".processor.to_out_lora.", ".to_out.0.lora."),
    (".self_attn.to_q_lora.", ".self_attn.q_proj.lora."),
    (".self_attn.to_k_lora.", ".self_attn.k_proj.lora."),
    (".self_attn.to_v_lora.", ".self_attn.v_proj.lora."),
    (".self_attn.to_out_lora.", ".self_attn.out_proj.lora."),
];

/// Splits a tensor key into (module name, role).
pub(crate) fn split_key(key: &str) -> Option<(String, Role)> {
    let mut key = key.strip_prefix("base_model.model.").unwrap_or(key).to_string();
    for (from, to) in PROCESSOR_NAMES {
        if key.contains(from) {
            key = key.replace(from, to);
        }
    }
    SUFFIXES.iter().find_map(|(suffix, role)| {
        let module = key.strip_suffix(suffix)?.strip_suffix('.')?;
        (!module.is_empty()).then(|| (module.to_string(), *role))
    })
}

/// The tensors of one module (f32, CPU), with the file keys they came from.
#[derive(Debug, Clone, Default)]
pub(crate) struct ModuleTensors {
    pub(crate) tensors: BTreeMap<Role, Tensor>,
    pub(crate) keys: Vec<String>,
}

impl ModuleTensors {
    pub(crate) fn get(&self, role: Role) -> Option<&Tensor> {
        self.tensors.get(&role)
    }
}

/// A LoRA/LyCORIS file read into memory (f32 on the CPU), grouped by module.
#[derive(Debug, Clone)]
pub struct LoraFile {
    name: String,
    pub(crate) modules: BTreeMap<String, ModuleTensors>,
    /// Keys that name no LoRA role at all (reported, never silently dropped).
    pub(crate) unknown_keys: Vec<String>,
}

impl LoraFile {
    /// Reads a `.safetensors` LoRA/LyCORIS file (pickled `.pt`/`.ckpt` files are refused unread).
    /// Its name is the file stem, as A1111's `<lora:name:…>` uses it.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, SdError> {
        let path = path.as_ref();
        let file = SafetensorsFile::open(path)?;
        let names = file.names();
        let mut store = TensorStore::empty();
        store.add_file(file, &|name| Some(name.to_string()));
        let mut tensors = Vec::with_capacity(names.len());
        let mut unknown = Vec::new();
        for name in names {
            let Some(entry) = store.entries.get(&name) else { continue };
            let shape = entry.shape.clone();
            match store.load(&name, &shape, DType::F32, &Device::Cpu) {
                Ok(tensor) => tensors.push((name, tensor)),
                Err(SdError::UnsupportedDtype { .. }) => unknown.push(name),
                Err(other) => return Err(other),
            }
        }
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("lora").to_string();
        let mut lora = Self::from_tensors(stem, tensors)?;
        lora.unknown_keys.extend(unknown);
        lora.unknown_keys.sort();
        Ok(lora)
    }

    /// Groups named tensors (any dtype and device; kept as f32 on the CPU) into modules.
    pub fn from_tensors(
        name: impl Into<String>,
        tensors: impl IntoIterator<Item = (String, Tensor)>,
    ) -> Result<Self, SdError> {
        let mut modules: BTreeMap<String, ModuleTensors> = BTreeMap::new();
        let mut unknown_keys = Vec::new();
        for (key, tensor) in tensors {
            match split_key(&key) {
                Some((module, role)) => {
                    let tensor = tensor.to_device(&Device::Cpu)?.to_dtype(DType::F32)?;
                    let entry = modules.entry(module).or_default();
                    entry.tensors.insert(role, tensor);
                    entry.keys.push(key);
                }
                None => unknown_keys.push(key),
            }
        }
        unknown_keys.sort();
        Ok(Self { name: name.into(), modules, unknown_keys })
    }

    /// The LoRA's name (file stem).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of modules (layers) the file patches.
    pub fn module_count(&self) -> usize {
        self.modules.len()
    }

    /// The model family the LoRA was trained for, judged from its key names and (for UNet-only
    /// files) the cross-attention context width; `Unknown` when nothing tells.
    pub fn family(&self) -> LoraFamily {
        let names = || self.modules.keys();
        if names().any(|m| {
            m.starts_with("lora_te1_")
                || m.starts_with("lora_te2_")
                || m.starts_with("text_encoder_2.")
                || m.contains("label_emb")
                || m.contains("add_embedding")
        }) {
            return LoraFamily::Sdxl;
        }
        if names().any(|m| m.starts_with("lora_te_")) {
            return LoraFamily::Sd1;
        }
        let context = self.modules.iter().find_map(|(name, module)| {
            let is_k = name.ends_with("attn2_to_k") || name.ends_with("attn2.to_k");
            let down = module
                .get(Role::Down)
                .or_else(|| module.get(Role::HadaW1B))
                .or_else(|| module.get(Role::LokrW2));
            is_k.then(|| down.and_then(|t| t.dims().get(1).copied())).flatten()
        });
        match context {
            Some(768) => LoraFamily::Sd1,
            Some(2048) => LoraFamily::Sdxl,
            _ => LoraFamily::Unknown,
        }
    }
}

/// The base model family a LoRA was made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LoraFamily {
    Sd1,
    Sdxl,
    Unknown,
}

impl std::fmt::Display for LoraFamily {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Sd1 => "SD 1.x",
            Self::Sdxl => "SDXL",
            Self::Unknown => "an unknown model family",
        })
    }
}
