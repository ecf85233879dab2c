//! Prompt chunks → the UNet's conditioning, as A1111 computes it (fidelity.md, "Text
//! conditioning"): every 77-token chunk is encoded separately, its output vectors scaled by their
//! emphasis multipliers and the chunk rescaled to its unweighted mean, and the chunks
//! concatenated along the token axis.

use candle_core::{D, DType, Device, Tensor};
use sd::embedding::{EmbeddingPlacement, EmbeddingSet, hidden_states_with_embeddings};
use sd::prompt::{
    CHUNK_LEN, Chunk, EmbeddingLookup, EmbeddingMatch, NoEmbeddings, PromptChunks, PromptOptions,
    tokenize_prompt,
};
use sd::tokenizer::ClipTokenizer;
use sd::{SdError, StableDiffusion, TextEncoder};

use crate::generate::PipelineError;

/// The tokenizers of a model's text encoders, in encoder order (SD1: CLIP-L; SDXL: CLIP-L then
/// OpenCLIP-G, which pads with 0 and cleans text as open_clip does).
pub struct PromptTokenizers {
    tokenizers: Vec<ClipTokenizer>,
}

impl PromptTokenizers {
    pub fn for_model(model: &StableDiffusion) -> Result<Self, PipelineError> {
        let make = |r: Result<ClipTokenizer, sd::tokenizer::TokenizerError>| {
            r.map_err(|e| PipelineError::Prompt(e.to_string()))
        };
        let tokenizers = if model.text_encoders.len() == 2 {
            vec![make(ClipTokenizer::clip_l())?, make(ClipTokenizer::open_clip())?]
        } else {
            vec![make(ClipTokenizer::clip_l())?]
        };
        Ok(Self { tokenizers })
    }

    /// The prompt split into chunks for every encoder (A1111 syntax, BREAK, comma backtrack),
    /// with the names of `embeddings` claimed as textual-inversion slots.
    pub fn tokenize(
        &self,
        prompt: &str,
        embeddings: &EmbeddingSet,
    ) -> Result<Vec<PromptChunks>, PipelineError> {
        self.tokenizers
            .iter()
            .map(|t| {
                let result = if embeddings.is_empty() {
                    tokenize_prompt(prompt, t, &PromptOptions::default(), &NoEmbeddings)
                } else {
                    let matcher = EmbeddingMatcher::new(embeddings, t);
                    tokenize_prompt(prompt, t, &PromptOptions::default(), &matcher)
                };
                result.map_err(|e| PipelineError::Prompt(e.to_string()))
            })
            .collect()
    }
}

/// The chunk lists of [`PromptTokenizers::tokenize`], as [`encode_prompt`] takes them.
pub fn chunk_lists(prompt: &[PromptChunks]) -> Vec<Vec<Chunk>> {
    prompt.iter().map(|p| p.chunks.clone()).collect()
}

/// The textual-inversion embeddings a tokenized prompt uses, per text encoder, each name once
/// in order of first use (A1111's `used_embeddings`, what `TI hashes` lists).
pub fn embeddings_used(prompt: &[PromptChunks]) -> Vec<Vec<String>> {
    prompt
        .iter()
        .map(|encoder| {
            let mut names: Vec<String> = Vec::new();
            for slot in encoder.chunks.iter().flat_map(|c| &c.embeddings) {
                if !names.contains(&slot.name) {
                    names.push(slot.name.clone());
                }
            }
            names
        })
        .collect()
}

/// What the UNet is conditioned on for one prompt.
#[derive(Clone, Debug)]
pub struct Conditioning {
    /// `[1, 77·chunks, context_dim]`.
    pub context: Tensor,
    /// SDXL only: `[1, projection_dim]` pooled text embedding (from the first chunk).
    pub pooled: Option<Tensor>,
}

/// The per-encoder chunk lists of one prompt: one list for SD1, two (CLIP-L, OpenCLIP-G) for
/// SDXL, each tokenized with that encoder's padding rule. Chunks with textual-inversion slots get
/// their embedding's vectors from `embeddings` in place of the token lookup.
pub fn encode_prompt(
    model: &StableDiffusion,
    chunks_per_encoder: &[Vec<Chunk>],
    clip_skip: usize,
    embeddings: &EmbeddingSet,
) -> Result<Conditioning, SdError> {
    let device = &model.device;
    match (model.text_encoders.as_slice(), chunks_per_encoder) {
        ([clip], [chunks]) => {
            // SD1: hidden_states[-clip_skip], then the final LayerNorm.
            let context = encode_chunks(clip, 0, chunks, embeddings, device, |enc, states| {
                let back = clip_skip.clamp(1, states.len());
                let chosen = states
                    .get(states.len() - back)
                    .ok_or_else(|| SdError::InvalidInput(format!("clip skip {clip_skip}")))?;
                enc.final_layer_norm(chosen)
            })?;
            Ok(Conditioning { context, pooled: None })
        }
        ([clip_l, clip_g], [chunks_l, chunks_g]) => {
            // SDXL: penultimate states of both encoders without final LayerNorm; clip skip is
            // ignored, as in A1111.
            let penultimate = |_: &TextEncoder, states: Vec<Tensor>| -> Result<Tensor, SdError> {
                let index = states.len().checked_sub(2).ok_or_else(|| {
                    SdError::InvalidInput("text encoder has no penultimate layer".into())
                })?;
                states
                    .get(index)
                    .cloned()
                    .ok_or_else(|| SdError::InvalidInput("missing hidden state".into()))
            };
            if chunks_l.len() != chunks_g.len() {
                return Err(SdError::InvalidInput(format!(
                    "the two SDXL tokenizers split the prompt into {} and {} chunks",
                    chunks_l.len(),
                    chunks_g.len()
                )));
            }
            let context_l = encode_chunks(clip_l, 0, chunks_l, embeddings, device, penultimate)?;
            let context_g = encode_chunks(clip_g, 1, chunks_g, embeddings, device, penultimate)?;
            let context = Tensor::cat(&[&context_l, &context_g], D::Minus1)?;
            let first = chunks_g
                .first()
                .ok_or_else(|| SdError::InvalidInput("a prompt has at least one chunk".into()))?;
            let states = chunk_states(clip_g, 1, first, embeddings, device)?;
            let last = states
                .last()
                .ok_or_else(|| SdError::InvalidInput("text encoder has no layers".into()))?;
            let pooled = clip_g.pooled(last, &chunk_ids(first, device)?)?;
            Ok(Conditioning { context, pooled: Some(pooled) })
        }
        (encoders, chunks) => Err(SdError::InvalidInput(format!(
            "{} text encoder(s) but chunks for {}",
            encoders.len(),
            chunks.len()
        ))),
    }
}

fn chunk_ids(chunk: &Chunk, device: &Device) -> Result<Tensor, SdError> {
    Ok(Tensor::from_slice(&chunk.tokens, (1, CHUNK_LEN), device)?)
}

/// All hidden states of one chunk, with its embedding slots filled.
fn chunk_states(
    encoder: &TextEncoder,
    encoder_index: usize,
    chunk: &Chunk,
    embeddings: &EmbeddingSet,
    device: &Device,
) -> Result<Vec<Tensor>, SdError> {
    let ids = chunk_ids(chunk, device)?;
    if chunk.embeddings.is_empty() {
        return encoder.hidden_states(&ids);
    }
    let placements = chunk
        .embeddings
        .iter()
        .map(|slot| {
            let embedding = embeddings.get(&slot.name).ok_or_else(|| {
                SdError::InvalidInput(format!("embedding `{}` is not loaded", slot.name))
            })?;
            Ok(EmbeddingPlacement { row: 0, position: slot.offset, embedding })
        })
        .collect::<Result<Vec<_>, SdError>>()?;
    hidden_states_with_embeddings(encoder, encoder_index, &ids, &placements)
}

fn encode_chunks(
    encoder: &TextEncoder,
    encoder_index: usize,
    chunks: &[Chunk],
    embeddings: &EmbeddingSet,
    device: &Device,
    select: impl Fn(&TextEncoder, Vec<Tensor>) -> Result<Tensor, SdError>,
) -> Result<Tensor, SdError> {
    let encoded = chunks
        .iter()
        .map(|chunk| {
            let states = chunk_states(encoder, encoder_index, chunk, embeddings, device)?;
            let z = select(encoder, states)?;
            apply_emphasis(&z, &chunk.multipliers)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Tensor::cat(&encoded, 1)?)
}

/// Finds textual-inversion embedding names in a tokenized prompt fragment, as A1111's
/// `find_embedding_at_position`: names are tokenized with the encoder's own tokenizer and the
/// longest name starting at a position wins.
struct EmbeddingMatcher {
    /// (name ids, name, vector count), longest ids first.
    names: Vec<(Vec<u32>, String, usize)>,
}

impl EmbeddingMatcher {
    fn new(set: &EmbeddingSet, tokenizer: &ClipTokenizer) -> Self {
        let mut names: Vec<(Vec<u32>, String, usize)> = set
            .names()
            .filter_map(|name| {
                let embedding = set.get(name)?;
                let ids = tokenizer.encode(name);
                (!ids.is_empty()).then(|| (ids, name.to_owned(), embedding.vector_count()))
            })
            .collect();
        names.sort_by_key(|n| std::cmp::Reverse(n.0.len()));
        Self { names }
    }
}

impl EmbeddingLookup for EmbeddingMatcher {
    fn find_at(&self, fragment_tokens: &[u32], position: usize) -> Option<EmbeddingMatch> {
        let rest = fragment_tokens.get(position..)?;
        self.names.iter().find(|(ids, _, _)| rest.starts_with(ids)).map(|(ids, name, vectors)| {
            EmbeddingMatch {
                name: name.clone(),
                name_token_count: ids.len(),
                vector_count: *vectors,
            }
        })
    }
}

/// A1111's "Original" emphasis on one chunk's output `[1, 77, C]` (see
/// [`sd::prompt::apply_emphasis`]).
fn apply_emphasis(z: &Tensor, multipliers: &[f32; CHUNK_LEN]) -> Result<Tensor, SdError> {
    if multipliers.iter().all(|&m| m == 1.0) {
        return Ok(z.clone());
    }
    let (batch, tokens, channels) = z.dims3()?;
    let mut values = z.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    sd::prompt::apply_emphasis(&mut values, multipliers, channels)
        .map_err(|e| SdError::InvalidInput(e.to_string()))?;
    Ok(Tensor::from_vec(values, (batch, tokens, channels), z.device())?.to_dtype(z.dtype())?)
}
