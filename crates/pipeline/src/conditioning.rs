//! Prompt chunks → the UNet's conditioning, as A1111 computes it (fidelity.md, "Text
//! conditioning"): every 77-token chunk is encoded separately, its output vectors scaled by their
//! emphasis multipliers and the chunk rescaled to its unweighted mean, and the chunks
//! concatenated along the token axis.

use candle_core::{D, DType, Device, Tensor};
use sd::{SdError, StableDiffusion, TextEncoder};

/// Tokens per encoded chunk: BOS + 75 + EOS.
pub const CHUNK_TOKENS: usize = 77;

/// One chunk of one text encoder's input: ids (BOS, tokens, padding, EOS) and per-token
/// emphasis multipliers (1.0 on BOS, EOS and padding).
#[derive(Clone, Debug, PartialEq)]
pub struct TokenChunk {
    pub ids: [u32; CHUNK_TOKENS],
    pub multipliers: [f32; CHUNK_TOKENS],
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
    chunks_per_encoder: &[Vec<TokenChunk>],
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

fn chunk_ids(chunk: &TokenChunk, device: &Device) -> Result<Tensor, SdError> {
    Ok(Tensor::from_slice(&chunk.ids, (1, CHUNK_TOKENS), device)?)
}

fn encode_chunks(
    encoder: &TextEncoder,
    chunks: &[TokenChunk],
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

/// A1111's "Original" emphasis: z·multiplier per token, then the whole chunk rescaled so its
/// mean equals the mean before weighting. `z`: `[1, 77, C]`.
pub fn apply_emphasis(z: &Tensor, multipliers: &[f32; CHUNK_TOKENS]) -> Result<Tensor, SdError> {
    if multipliers.iter().all(|&m| m == 1.0) {
        return Ok(z.clone());
    }
    let z = z.to_dtype(DType::F32)?;
    let original_mean = z.mean_all()?;
    let weights = Tensor::from_slice(multipliers, (1, CHUNK_TOKENS, 1), z.device())?;
    let weighted = z.broadcast_mul(&weights)?;
    let new_mean = weighted.mean_all()?;
    let ratio = (original_mean / new_mean)?;
    Ok(weighted.broadcast_mul(&ratio)?)
}
