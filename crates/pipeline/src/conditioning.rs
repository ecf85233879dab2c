//! Prompt chunks → the UNet's conditioning, as A1111 computes it (fidelity.md, "Text
//! conditioning"): every 77-token chunk is encoded separately, its output vectors scaled by their
//! emphasis multipliers and the chunk rescaled to its unweighted mean, and the chunks
//! concatenated along the token axis.

use candle_core::{D, DType, Device, Tensor};
use sd::prompt::{CHUNK_LEN, Chunk, NoEmbeddings, PromptChunks, PromptOptions, tokenize_prompt};
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

    /// The prompt split into chunks for every encoder (A1111 syntax, BREAK, comma backtrack).
    pub fn tokenize(&self, prompt: &str) -> Result<Vec<PromptChunks>, PipelineError> {
        self.tokenizers
            .iter()
            .map(|t| {
                tokenize_prompt(prompt, t, &PromptOptions::default(), &NoEmbeddings)
                    .map_err(|e| PipelineError::Prompt(e.to_string()))
            })
            .collect()
    }
}

/// The chunk lists of [`PromptTokenizers::tokenize`], as [`encode_prompt`] takes them.
pub fn chunk_lists(prompt: &[PromptChunks]) -> Vec<Vec<Chunk>> {
    prompt.iter().map(|p| p.chunks.clone()).collect()
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
/// SDXL, each tokenized with that encoder's padding rule.
pub fn encode_prompt(
    model: &StableDiffusion,
    chunks_per_encoder: &[Vec<Chunk>],
    clip_skip: usize,
) -> Result<Conditioning, SdError> {
    let device = &model.device;
    match (model.text_encoders.as_slice(), chunks_per_encoder) {
        ([clip], [chunks]) => {
            let context = encode_chunks(clip, chunks, device, |enc, ids| {
                enc.encode_with_clip_skip(ids, clip_skip)
            })?;
            Ok(Conditioning { context, pooled: None })
        }
        ([clip_l, clip_g], [chunks_l, chunks_g]) => {
            // SDXL: penultimate states of both encoders without final LayerNorm; clip skip is
            // ignored, as in A1111.
            let penultimate = |enc: &TextEncoder, ids: &Tensor| -> Result<Tensor, SdError> {
                let states = enc.hidden_states(ids)?;
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
            let context_l = encode_chunks(clip_l, chunks_l, device, penultimate)?;
            let context_g = encode_chunks(clip_g, chunks_g, device, penultimate)?;
            let context = Tensor::cat(&[&context_l, &context_g], D::Minus1)?;
            let first = chunks_g
                .first()
                .ok_or_else(|| SdError::InvalidInput("a prompt has at least one chunk".into()))?;
            let ids = chunk_ids(first, device)?;
            let states = clip_g.hidden_states(&ids)?;
            let last = states
                .last()
                .ok_or_else(|| SdError::InvalidInput("text encoder has no layers".into()))?;
            let pooled = clip_g.pooled(last, &ids)?;
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

fn encode_chunks(
    encoder: &TextEncoder,
    chunks: &[Chunk],
    device: &Device,
    encode: impl Fn(&TextEncoder, &Tensor) -> Result<Tensor, SdError>,
) -> Result<Tensor, SdError> {
    let encoded = chunks
        .iter()
        .map(|chunk| {
            let z = encode(encoder, &chunk_ids(chunk, device)?)?;
            apply_emphasis(&z, &chunk.multipliers)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Tensor::cat(&encoded, 1)?)
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
