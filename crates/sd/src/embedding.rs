//! Textual-inversion embeddings (`models/embeddings/*.safetensors`): SD1.x files with one tensor
//! (`emb_params`, `string_to_param.*` or a single token name) and SDXL files with `clip_l` and
//! `clip_g`. The prompt code claims the embedding's name as a word, reserves
//! [`Embedding::vector_count`] token positions for it in the 75-token chunk, and
//! [`inject_embeddings`] writes the vectors into the token embeddings at those positions (A1111's
//! `EmbeddingsWithFixes`). Pickled `.pt`/`.bin` embeddings are refused unread.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use crate::checkpoint::{SafetensorsFile, TensorSource, TensorStore};
use crate::clip::TextEncoder;
use crate::config::ModelConfig;
use crate::error::{Result, SdError};

/// One embedding: its vectors for each text encoder, in the model's encoder order.
#[derive(Debug, Clone)]
pub struct Embedding {
    name: String,
    /// `[vector_count, width]` f32 on the CPU, one per text encoder (SD1: 1, SDXL: CLIP-L, bigG).
    vectors: Vec<Tensor>,
    vector_count: usize,
    /// The file it was read from (its sha256 is A1111's `TI hashes` entry).
    path: Option<PathBuf>,
}

impl Embedding {
    /// Reads a `.safetensors` embedding; its name is the file stem (the word used in prompts).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = SafetensorsFile::open(path)?;
        let names = file.names();
        let mut store = TensorStore::empty();
        store.add_file(file, &|name| Some(name.to_string()));
        let mut tensors = Vec::new();
        for name in names {
            let Some(shape) = store.entries.get(&name).map(|e| e.shape.clone()) else { continue };
            match store.load(&name, &shape, DType::F32, &Device::Cpu) {
                Ok(t) => tensors.push((name, t)),
                // Integer bookkeeping tensors (`step`, …) are not vectors.
                Err(SdError::UnsupportedDtype { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("embedding");
        let mut embedding = Self::from_tensors(stem, tensors).map_err(|detail| {
            SdError::NotACheckpoint { path: path.to_path_buf(), looks_like: detail }
        })?;
        embedding.path = Some(path.to_path_buf());
        Ok(embedding)
    }

    /// Builds an embedding from a file's tensors as A1111 reads them: `clip_l` + `clip_g`
    /// (SDXL), else exactly one tensor (`[n, width]` or `[width]`). The error says what the
    /// tensors look like instead.
    pub fn from_tensors(
        name: impl Into<String>,
        tensors: Vec<(String, Tensor)>,
    ) -> std::result::Result<Self, String> {
        let name = name.into();
        let as_matrix = |t: &Tensor| -> std::result::Result<Tensor, String> {
            let t = t.to_device(&Device::Cpu).and_then(|t| t.to_dtype(DType::F32));
            let t = t.map_err(|e| e.to_string())?;
            match t.dims() {
                [width] => t.reshape((1, *width)).map_err(|e| e.to_string()),
                [_, _] => Ok(t),
                other => Err(format!("an embedding tensor of shape {other:?}")),
            }
        };
        let map: BTreeMap<String, Tensor> = tensors.into_iter().collect();
        let vectors = match (map.get("clip_l"), map.get("clip_g")) {
            (Some(l), Some(g)) => vec![as_matrix(l)?, as_matrix(g)?],
            _ => {
                let floats: Vec<&Tensor> = map.values().collect();
                match floats.as_slice() {
                    [one] => vec![as_matrix(one)?],
                    [] => return Err("a file with no embedding tensor".into()),
                    many => {
                        return Err(format!(
                            "a file with {} tensors ({:?}), not a single-term embedding",
                            many.len(),
                            map.keys().take(4).collect::<Vec<_>>()
                        ));
                    }
                }
            }
        };
        let counts: Vec<usize> =
            vectors.iter().map(|v| v.dims().first().copied().unwrap_or(0)).collect();
        let vector_count = counts.first().copied().unwrap_or(0);
        if vector_count == 0 || counts.iter().any(|&c| c != vector_count) {
            return Err(format!("an embedding with vector counts {counts:?} per encoder"));
        }
        Ok(Self { name, vectors, vector_count, path: None })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file of an embedding read with [`Embedding::open`] (`None` when built in memory).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Token positions the embedding takes in a chunk.
    pub fn vector_count(&self) -> usize {
        self.vector_count
    }

    /// Vector width per text encoder (SD1: `[768]`, SDXL: `[768, 1280]`).
    pub fn widths(&self) -> Vec<usize> {
        self.vectors.iter().map(|v| v.dims().get(1).copied().unwrap_or(0)).collect()
    }

    /// The `[vector_count, width]` vectors for text encoder `index`.
    pub fn vectors(&self, index: usize) -> Option<&Tensor> {
        self.vectors.get(index)
    }

    /// Whether the embedding has vectors of the right width for every text encoder of `config`.
    pub fn fits(&self, config: &ModelConfig) -> bool {
        let widths: Vec<usize> = config.text_encoders.iter().map(|t| t.width).collect();
        widths == self.widths()
    }
}

/// Where one embedding goes: batch row and first token position in the encoder's input.
#[derive(Debug, Clone, Copy)]
pub struct EmbeddingPlacement<'a> {
    pub row: usize,
    pub position: usize,
    pub embedding: &'a Embedding,
}

/// Writes each placement's vectors for encoder `encoder_index` over `token_embeddings`
/// (`[B, T, width]`, from [`TextEncoder::token_embeddings`]) starting at its position. As A1111,
/// vectors that would reach the last position (the chunk's end token) are cut off.
pub fn inject_embeddings(
    token_embeddings: &Tensor,
    encoder_index: usize,
    placements: &[EmbeddingPlacement<'_>],
) -> Result<Tensor> {
    let (batch, tokens, width) = token_embeddings.dims3()?;
    let mut x = token_embeddings.clone();
    for p in placements {
        let name = p.embedding.name();
        let vectors = p.embedding.vectors(encoder_index).ok_or_else(|| {
            SdError::InvalidInput(format!(
                "embedding `{name}` has no vectors for text encoder {encoder_index}"
            ))
        })?;
        let (count, vector_width) = vectors.dims2()?;
        if vector_width != width || p.row >= batch {
            return Err(SdError::InvalidInput(format!(
                "embedding `{name}` has width {vector_width} for an encoder of width {width} \
                 (row {} of {batch})",
                p.row
            )));
        }
        let fit = count.min(tokens.saturating_sub(p.position + 1));
        if fit == 0 {
            continue;
        }
        let values = vectors.narrow(0, 0, fit)?.to_dtype(x.dtype())?.to_device(x.device())?;
        x = x.slice_assign(
            &[p.row..p.row + 1, p.position..p.position + fit, 0..width],
            &values.unsqueeze(0)?,
        )?;
    }
    Ok(x)
}

/// [`TextEncoder::hidden_states`] of `ids` (`[B, T]` u32) with embeddings injected.
pub fn hidden_states_with_embeddings(
    encoder: &TextEncoder,
    encoder_index: usize,
    ids: &Tensor,
    placements: &[EmbeddingPlacement<'_>],
) -> Result<Vec<Tensor>> {
    let x = inject_embeddings(&encoder.token_embeddings(ids)?, encoder_index, placements)?;
    encoder.hidden_states_from_token_embeddings(&x)
}

/// Embeddings by name, loaded from a folder.
#[derive(Debug, Clone, Default)]
pub struct EmbeddingSet {
    by_name: BTreeMap<String, Embedding>,
}

impl EmbeddingSet {
    /// Loads every `.safetensors` file in `dir` (not recursive); files that fail are returned
    /// with their error, the rest are usable.
    pub fn load_folder(dir: impl AsRef<Path>) -> Result<(Self, Vec<(PathBuf, SdError)>)> {
        let dir = dir.as_ref();
        let io = |source| SdError::Io { path: dir.to_path_buf(), source };
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| e.eq_ignore_ascii_case("safetensors"))
            })
            .collect();
        paths.sort();
        let mut set = Self::default();
        let mut failures = Vec::new();
        for path in paths {
            match Embedding::open(&path) {
                Ok(e) => set.insert(e),
                Err(e) => failures.push((path, e)),
            }
        }
        Ok((set, failures))
    }

    pub fn insert(&mut self, embedding: Embedding) {
        self.by_name.insert(embedding.name.clone(), embedding);
    }

    pub fn get(&self, name: &str) -> Option<&Embedding> {
        self.by_name.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}
