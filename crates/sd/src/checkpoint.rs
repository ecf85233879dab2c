//! Reading `.safetensors` checkpoints: memory-mapped, header validated by hand so every problem is
//! named, per-tensor dtypes honoured, pickles refused before a byte of them is interpreted.

use std::collections::HashMap;
use std::fmt::Display;
use std::fs::File;
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use memmap2::Mmap;
use rayon::prelude::*;

use crate::config::{self, ModelConfig};
use crate::error::{Result, SdError};

/// Storage dtype of one tensor as the safetensors header names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StoredDtype {
    F64,
    F32,
    F16,
    BF16,
    /// Any non-float dtype (ints, bools, fp8): readable as a header entry, never loaded as a weight.
    Other(&'static str, usize),
}

impl StoredDtype {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "F64" => Self::F64,
            "F32" => Self::F32,
            "F16" => Self::F16,
            "BF16" => Self::BF16,
            "I64" => Self::Other("I64", 8),
            "U64" => Self::Other("U64", 8),
            "I32" => Self::Other("I32", 4),
            "U32" => Self::Other("U32", 4),
            "I16" => Self::Other("I16", 2),
            "U16" => Self::Other("U16", 2),
            "I8" => Self::Other("I8", 1),
            "U8" => Self::Other("U8", 1),
            "BOOL" => Self::Other("BOOL", 1),
            "F8_E4M3" => Self::Other("F8_E4M3", 1),
            "F8_E5M2" => Self::Other("F8_E5M2", 1),
            _ => return None,
        })
    }

    fn size_bytes(self) -> usize {
        match self {
            Self::F64 => 8,
            Self::F32 => 4,
            Self::F16 | Self::BF16 => 2,
            Self::Other(_, size) => size,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::F64 => "F64",
            Self::F32 => "F32",
            Self::F16 => "F16",
            Self::BF16 => "BF16",
            Self::Other(name, _) => name,
        }
    }
}

/// One tensor's header entry; offsets are absolute byte positions in its file's mapping.
#[derive(Debug, Clone)]
pub(crate) struct TensorEntry {
    file_index: usize,
    pub(crate) dtype: StoredDtype,
    pub(crate) shape: Vec<usize>,
    start: usize,
    end: usize,
}

/// A memory-mapped safetensors file with its validated header.
pub(crate) struct SafetensorsFile {
    path: PathBuf,
    mmap: Mmap,
    /// Tensor name → (dtype, shape, absolute byte range).
    entries: Vec<(String, StoredDtype, Vec<usize>, usize, usize)>,
}

const MAX_HEADER_BYTES: u64 = 100 * 1024 * 1024;

/// Refuses pickled PyTorch files by extension and by magic bytes, without parsing them.
fn refuse_pickle(path: &Path, head: &[u8]) -> Result<()> {
    let extension =
        path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).unwrap_or_default();
    let pickled = match extension.as_str() {
        "ckpt" | "pt" | "pth" | "pkl" | "pickle" => Some(format!(".{extension} file")),
        _ => None,
    };
    let magic = match head {
        [b'P', b'K', 3, 4, ..] => Some("a PyTorch zip archive".to_string()),
        // A safetensors header length of 0x0280..0x0580 (mod 65536) also starts with these
        // bytes; its JSON header then starts at byte 8, which a pickle stream never has there.
        [0x80, protocol, ..] if (2..=5).contains(protocol) && head.get(8) != Some(&b'{') => {
            Some(format!("a pickle stream, protocol {protocol}"))
        }
        _ => None,
    };
    match pickled.or(magic) {
        Some(what) => Err(SdError::Pickle { path: path.to_path_buf(), what }),
        None => Ok(()),
    }
}

impl SafetensorsFile {
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let io = |source| SdError::Io { path: path.to_path_buf(), source };
        let mut file = File::open(path).map_err(io)?;
        // The 8-byte header length plus the first byte of the JSON header.
        let mut start = [0u8; 9];
        let file_len = file.metadata().map_err(io)?.len();
        let start_len = usize::try_from(file_len.min(9)).unwrap_or(9);
        let start_slice = start.get_mut(..start_len).unwrap_or_default();
        file.read_exact(start_slice).map_err(io)?;
        refuse_pickle(path, start_slice)?;
        file.seek(std::io::SeekFrom::Start(start_len.min(8) as u64)).map_err(io)?;
        let mut head = [0u8; 8];
        head.copy_from_slice(start.get(..8).unwrap_or(&[0; 8]));
        let truncated = |detail: String| SdError::Truncated { path: path.to_path_buf(), detail };
        let bad = |detail: String| SdError::BadHeader { path: path.to_path_buf(), detail };
        if file_len < 8 {
            return Err(truncated(format!(
                "{file_len} bytes, shorter than the 8-byte safetensors header length"
            )));
        }
        let header_len = u64::from_le_bytes(head);
        if header_len > MAX_HEADER_BYTES {
            return Err(bad(format!(
                "declared header length {header_len} bytes is implausible (not a safetensors file?)"
            )));
        }
        if 8 + header_len > file_len {
            return Err(truncated(format!(
                "the header declares {header_len} bytes but the file has only {file_len} bytes"
            )));
        }
        #[allow(
            unsafe_code,
            reason = "memory-mapping the checkpoint is the one unsafe operation: \
                  the file must not be modified while open, as with every mmap-based loader"
        )]
        // SAFETY: the mapping is read-only; we require that checkpoint files are not truncated or
        // rewritten by another process while Pentimento has them open.
        let mmap = unsafe { Mmap::map(&file) }.map_err(io)?;
        let header_end =
            usize::try_from(8 + header_len).map_err(|_| bad("header too large".into()))?;
        let header_bytes = mmap.get(8..header_end).ok_or_else(|| truncated("header".into()))?;
        let header_text = std::str::from_utf8(header_bytes)
            .map_err(|e| bad(format!("header is not UTF-8: {e}")))?;
        let header: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(header_text.trim_end())
                .map_err(|e| bad(format!("header is not a JSON object: {e}")))?;
        let data_len = mmap.len() - header_end;
        let mut entries = Vec::with_capacity(header.len());
        let mut data_end_declared = 0usize;
        for (name, value) in &header {
            if name == "__metadata__" {
                continue;
            }
            let entry_bad = |what: &str| bad(format!("tensor `{name}`: {what}"));
            let dtype_name =
                value.get("dtype").and_then(|d| d.as_str()).ok_or_else(|| entry_bad("no dtype"))?;
            let dtype = StoredDtype::parse(dtype_name)
                .ok_or_else(|| entry_bad(&format!("unknown dtype {dtype_name}")))?;
            let shape = value
                .get("shape")
                .and_then(|s| s.as_array())
                .ok_or_else(|| entry_bad("no shape"))?
                .iter()
                .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
                .collect::<Option<Vec<usize>>>()
                .ok_or_else(|| entry_bad("shape is not a list of sizes"))?;
            let offsets = value
                .get("data_offsets")
                .and_then(|s| s.as_array())
                .and_then(|o| match o.as_slice() {
                    [a, b] => Some((a.as_u64()?, b.as_u64()?)),
                    _ => None,
                })
                .ok_or_else(|| entry_bad("data_offsets is not [begin, end]"))?;
            let (begin, end) = (
                usize::try_from(offsets.0).map_err(|_| entry_bad("offset overflow"))?,
                usize::try_from(offsets.1).map_err(|_| entry_bad("offset overflow"))?,
            );
            let bytes = shape
                .iter()
                .try_fold(dtype.size_bytes(), |acc, &d| acc.checked_mul(d))
                .ok_or_else(|| entry_bad("size overflows"))?;
            if end < begin || end - begin != bytes {
                return Err(entry_bad(&format!(
                    "data_offsets [{begin}, {end}] do not hold {bytes} bytes of {} {shape:?}",
                    dtype.name()
                )));
            }
            data_end_declared = data_end_declared.max(end);
            entries.push((name.clone(), dtype, shape, header_end + begin, header_end + end));
        }
        if data_end_declared > data_len {
            return Err(truncated(format!(
                "the header declares {data_end_declared} bytes of tensor data but only {data_len} \
                 bytes follow it"
            )));
        }
        Ok(Self { path: path.to_path_buf(), mmap, entries })
    }
}

impl SafetensorsFile {
    /// Names of the tensors in header order.
    pub(crate) fn names(&self) -> Vec<String> {
        self.entries.iter().map(|e| e.0.clone()).collect()
    }
}

/// Converts little-endian stored bytes to f32 in parallel (the cost of loading an fp16 checkpoint).
fn decode_to_f32(bytes: &[u8], dtype: StoredDtype) -> Option<Vec<f32>> {
    const CHUNK: usize = 1 << 16;
    let size = dtype.size_bytes();
    let count = bytes.len() / size;
    let mut out = vec![0f32; count];
    out.par_chunks_mut(CHUNK).zip(bytes.par_chunks(CHUNK * size)).for_each(|(dst, src)| {
        let pairs = dst.iter_mut().zip(src.chunks_exact(size));
        match dtype {
            StoredDtype::F32 => pairs.for_each(|(d, s)| {
                *d = f32::from_le_bytes(s.try_into().unwrap_or_default());
            }),
            StoredDtype::F16 => pairs.for_each(|(d, s)| {
                *d = half::f16::from_le_bytes(s.try_into().unwrap_or_default()).to_f32();
            }),
            StoredDtype::BF16 => pairs.for_each(|(d, s)| {
                *d = half::bf16::from_le_bytes(s.try_into().unwrap_or_default()).to_f32();
            }),
            StoredDtype::F64 => pairs.for_each(|(d, s)| {
                #[allow(
                    clippy::cast_possible_truncation,
                    reason = "f64 weights are computed in f32"
                )]
                let value = f64::from_le_bytes(s.try_into().unwrap_or_default()) as f32;
                *d = value;
            }),
            StoredDtype::Other(..) => {}
        }
    });
    matches!(dtype, StoredDtype::F32 | StoredDtype::F16 | StoredDtype::BF16 | StoredDtype::F64)
        .then_some(out)
}

/// Where a module's weights come from: a checkpoint (by name) or a random initialiser (bench).
pub(crate) trait TensorSource: Send + Sync {
    /// Loads `name` as `dtype` on `device`, checking it has exactly `shape`.
    fn load(&self, name: &str, shape: &[usize], dtype: DType, device: &Device) -> Result<Tensor>;
    /// Shape of `name` if the source has it (random sources have every tensor asked for).
    fn shape_of(&self, name: &str) -> Option<Vec<usize>>;
}

/// A prefixed view of a [`TensorSource`], the way modules ask for their weights.
#[derive(Clone)]
pub(crate) struct Weights<'a> {
    source: &'a dyn TensorSource,
    prefix: String,
    pub(crate) dtype: DType,
    pub(crate) device: Device,
}

impl<'a> Weights<'a> {
    pub(crate) fn new(source: &'a dyn TensorSource, dtype: DType, device: Device) -> Self {
        Self { source, prefix: String::new(), dtype, device }
    }

    /// The same source under `prefix.name.`.
    pub(crate) fn pp(&self, name: impl Display) -> Self {
        Self { prefix: format!("{}{name}.", self.prefix), ..self.clone() }
    }

    pub(crate) fn full_name(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    pub(crate) fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        self.source.load(&self.full_name(name), shape, self.dtype, &self.device)
    }

    /// Loads a 1×1 convolution or linear weight stored either as `[out, in]` or `[out, in, 1, 1]`
    /// (LDM VAE attention has both forms in the wild) as `[out, in]`.
    pub(crate) fn get_matrix_or_1x1(&self, name: &str, out: usize, inp: usize) -> Result<Tensor> {
        match self.shape_of(name) {
            Some(shape) if shape.len() == 4 => {
                Ok(self.get(name, &[out, inp, 1, 1])?.reshape((out, inp))?)
            }
            _ => self.get(name, &[out, inp]),
        }
    }

    pub(crate) fn shape_of(&self, name: &str) -> Option<Vec<usize>> {
        self.source.shape_of(&self.full_name(name))
    }
}

/// The tensors of one checkpoint, possibly spread over several files (diffusers folders), under
/// their LDM names.
pub(crate) struct TensorStore {
    files: Vec<SafetensorsFile>,
    pub(crate) entries: HashMap<String, TensorEntry>,
}

impl TensorStore {
    /// Adds every tensor of `file`, renamed by `rename` (returning `None` drops the tensor).
    pub(crate) fn add_file(
        &mut self,
        file: SafetensorsFile,
        rename: &dyn Fn(&str) -> Option<String>,
    ) {
        let file_index = self.files.len();
        for (name, dtype, shape, start, end) in &file.entries {
            if let Some(new_name) = rename(name) {
                let entry = TensorEntry {
                    file_index,
                    dtype: *dtype,
                    shape: shape.clone(),
                    start: *start,
                    end: *end,
                };
                self.entries.insert(new_name, entry);
            }
        }
        self.files.push(file);
    }

    pub(crate) fn empty() -> Self {
        Self { files: Vec::new(), entries: HashMap::new() }
    }
}

impl TensorSource for TensorStore {
    fn load(&self, name: &str, shape: &[usize], dtype: DType, device: &Device) -> Result<Tensor> {
        let entry = self
            .entries
            .get(name)
            .ok_or_else(|| SdError::MissingTensor { name: name.to_string() })?;
        if entry.shape != shape {
            return Err(SdError::MisshapedTensor {
                name: name.to_string(),
                expected: shape.to_vec(),
                found: entry.shape.clone(),
            });
        }
        let file = self.files.get(entry.file_index).ok_or_else(|| {
            SdError::Inconsistent(format!("tensor `{name}` refers to a file that is not open"))
        })?;
        let bytes = file.mmap.get(entry.start..entry.end).ok_or_else(|| SdError::Truncated {
            path: file.path.clone(),
            detail: format!("tensor `{name}` lies past the end of the file"),
        })?;
        let values =
            decode_to_f32(bytes, entry.dtype).ok_or_else(|| SdError::UnsupportedDtype {
                name: name.to_string(),
                dtype: entry.dtype.name().to_string(),
            })?;
        let tensor = Tensor::from_vec(values, shape, &Device::Cpu)?;
        let tensor = if dtype == DType::F32 { tensor } else { tensor.to_dtype(dtype)? };
        Ok(tensor.to_device(device)?)
    }

    fn shape_of(&self, name: &str) -> Option<Vec<usize>> {
        self.entries.get(name).map(|e| e.shape.clone())
    }
}

/// An opened checkpoint: validated header and inferred architecture; no weights loaded yet.
pub struct Checkpoint {
    path: PathBuf,
    pub(crate) store: TensorStore,
    config: ModelConfig,
}

impl Checkpoint {
    /// Opens a single-file `.safetensors` checkpoint (LDM layout) or a diffusers model folder,
    /// validates it and infers the architecture from tensor names and shapes.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let mut store = TensorStore::empty();
        if path.is_dir() {
            crate::diffusers::add_folder(&mut store, path)?;
        } else {
            let file = SafetensorsFile::open(path)?;
            store.add_file(file, &|name| Some(name.to_string()));
        }
        let config = config::infer(path, &store)?;
        Ok(Self { path: path.to_path_buf(), store, config })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// Number of tensors in the file(s).
    pub fn tensor_count(&self) -> usize {
        self.store.entries.len()
    }
}
