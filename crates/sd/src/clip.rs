//! CLIP text encoders in both layouts that checkpoints use: Hugging Face `CLIPTextModel`
//! (quick_gelu; SD1 and SDXL's CLIP-L) and open_clip (fused in_proj, exact GELU, ln_final,
//! text_projection; SDXL's bigG).

use candle_core::{Module, Tensor};
use candle_nn::LayerNorm;

use crate::checkpoint::Weights;
use crate::config::{ClipActivation, ClipLayout, TextEncoderConfig};
use crate::error::{Result, SdError};
use crate::nn::{Linear, attention, gelu_erf, layer_norm, quick_gelu};

/// The CLIP end-of-text token id.
pub const EOS_TOKEN_ID: u32 = 49407;

struct Layer {
    norm1: LayerNorm,
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
    norm2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
}

/// A CLIP text transformer with its embeddings and final LayerNorm.
pub struct TextEncoder {
    config: TextEncoderConfig,
    token_embedding: Tensor,
    position_embedding: Tensor,
    layers: Vec<Layer>,
    final_norm: LayerNorm,
    /// `[width, projection_dim]`, applied as `pooled @ text_projection` (open_clip convention).
    text_projection: Option<Tensor>,
}

impl TextEncoder {
    /// Builds the encoder from `root` (the whole checkpoint) under `config.prefix`.
    pub(crate) fn load(config: &TextEncoderConfig, root: &Weights<'_>) -> Result<Self> {
        let strip = config.prefix.strip_suffix('.').unwrap_or(&config.prefix);
        let w = if strip.is_empty() { root.clone() } else { root.pp(strip) };
        let c = config.width;
        let layers = (0..config.layers)
            .map(|i| match config.layout {
                ClipLayout::HuggingFace => {
                    let l = w.pp(format!("encoder.layers.{i}"));
                    Ok(Layer {
                        norm1: layer_norm(&l.pp("layer_norm1"), c)?,
                        q: Linear::load(&l.pp("self_attn.q_proj"), c, c, true)?,
                        k: Linear::load(&l.pp("self_attn.k_proj"), c, c, true)?,
                        v: Linear::load(&l.pp("self_attn.v_proj"), c, c, true)?,
                        out: Linear::load(&l.pp("self_attn.out_proj"), c, c, true)?,
                        norm2: layer_norm(&l.pp("layer_norm2"), c)?,
                        fc1: Linear::load(&l.pp("mlp.fc1"), c, config.mlp_width, true)?,
                        fc2: Linear::load(&l.pp("mlp.fc2"), config.mlp_width, c, true)?,
                    })
                }
                ClipLayout::OpenClip => {
                    let l = w.pp(format!("transformer.resblocks.{i}"));
                    // nn.MultiheadAttention fuses q, k, v into one [3C, C] projection.
                    let in_w = l.get("attn.in_proj_weight", &[3 * c, c])?;
                    let in_b = l.get("attn.in_proj_bias", &[3 * c])?;
                    let part = |j: usize| -> Result<Linear> {
                        Linear::from_weight(
                            in_w.narrow(0, j * c, c)?,
                            Some(in_b.narrow(0, j * c, c)?),
                        )
                    };
                    Ok(Layer {
                        norm1: layer_norm(&l.pp("ln_1"), c)?,
                        q: part(0)?,
                        k: part(1)?,
                        v: part(2)?,
                        out: Linear::load(&l.pp("attn.out_proj"), c, c, true)?,
                        norm2: layer_norm(&l.pp("ln_2"), c)?,
                        fc1: Linear::load(&l.pp("mlp.c_fc"), c, config.mlp_width, true)?,
                        fc2: Linear::load(&l.pp("mlp.c_proj"), config.mlp_width, c, true)?,
                    })
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let (token_embedding, position_embedding, final_norm, text_projection) = match config.layout
        {
            ClipLayout::HuggingFace => (
                w.get("embeddings.token_embedding.weight", &[config.vocab_size, c])?,
                w.get("embeddings.position_embedding.weight", &[config.max_positions, c])?,
                layer_norm(&w.pp("final_layer_norm"), c)?,
                match (&config.hf_projection, config.projection_dim) {
                    // transformers' Linear stores [proj, width]; we apply `pooled @ [width, proj]`.
                    (Some(name), Some(p)) => Some(root.get(name, &[p, c])?.t()?.contiguous()?),
                    _ => None,
                },
            ),
            ClipLayout::OpenClip => (
                w.get("token_embedding.weight", &[config.vocab_size, c])?,
                w.get("positional_embedding", &[config.max_positions, c])?,
                layer_norm(&w.pp("ln_final"), c)?,
                match config.projection_dim {
                    Some(p) => Some(w.get("text_projection", &[c, p])?),
                    None => None,
                },
            ),
        };
        Ok(Self {
            config: config.clone(),
            token_embedding,
            position_embedding,
            layers,
            final_norm,
            text_projection,
        })
    }

    pub fn config(&self) -> &TextEncoderConfig {
        &self.config
    }

    /// All hidden states for token ids `[B, T]` (u32): entry 0 is the embeddings, entry i the
    /// output of layer i (no final LayerNorm), so `len() == layers + 1` as in transformers.
    pub fn hidden_states(&self, ids: &Tensor) -> Result<Vec<Tensor>> {
        let (_, tokens) = ids.dims2()?;
        if tokens > self.config.max_positions {
            return Err(SdError::InvalidInput(format!(
                "{tokens} tokens, the text encoder takes at most {}",
                self.config.max_positions
            )));
        }
        self.hidden_states_from_token_embeddings(&self.token_embeddings(ids)?)
    }

    /// The final LayerNorm (`final_layer_norm` / `ln_final`).
    pub fn final_layer_norm(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.final_norm.forward(x)?)
    }

    /// SD1 conditioning: `hidden_states[-clip_skip]` then the final LayerNorm (clip skip 1 =
    /// last layer). `clip_skip` is clamped to the available layers.
    pub fn encode_with_clip_skip(&self, ids: &Tensor, clip_skip: usize) -> Result<Tensor> {
        let states = self.hidden_states(ids)?;
        let back = clip_skip.clamp(1, states.len());
        let chosen = states
            .get(states.len() - back)
            .ok_or_else(|| SdError::InvalidInput(format!("clip skip {clip_skip}")))?;
        self.final_layer_norm(chosen)
    }

    /// Pooled output: the final-LayerNormed last hidden state at the first EOS token of each row,
    /// times `text_projection` when the encoder has one. `last_hidden` is the last layer's output
    /// without final LayerNorm (`hidden_states(ids).last()`).
    pub fn pooled(&self, last_hidden: &Tensor, ids: &Tensor) -> Result<Tensor> {
        let normed = self.final_layer_norm(last_hidden)?;
        let rows = ids.to_vec2::<u32>()?;
        let picked = rows
            .iter()
            .enumerate()
            .map(|(b, row)| {
                // The first EOS, or the highest id (transformers' argmax rule) if none.
                let position = row.iter().position(|&t| t == EOS_TOKEN_ID).unwrap_or_else(|| {
                    row.iter()
                        .enumerate()
                        .max_by_key(|&(i, t)| (*t, std::cmp::Reverse(i)))
                        .map_or(0, |(i, _)| i)
                });
                Ok(normed.get(b)?.get(position)?)
            })
            .collect::<Result<Vec<_>>>()?;
        let pooled = Tensor::stack(&picked, 0)?;
        match &self.text_projection {
            Some(p) => Ok(pooled.matmul(p)?),
            None => Ok(pooled),
        }
    }

    /// Width of the hidden states.
    pub fn width(&self) -> usize {
        self.config.width
    }

    /// Number of transformer layers.
    pub fn layer_count(&self) -> usize {
        self.layers.len()
    }
}

/// LoRA patching and textual-inversion hooks.
impl TextEncoder {
    /// Every linear layer of the transformer under its Hugging Face module path
    /// (`text_model.encoder.layers.{i}.self_attn.q_proj`, `….mlp.fc1`, …) in both layouts: LoRA
    /// files name text-encoder layers that way, and the open_clip layout's fused in_proj is
    /// already split into q/k/v at load.
    pub(crate) fn patchable_layers(&mut self) -> Vec<(String, crate::nn::PatchableMut<'_>)> {
        use crate::nn::PatchableMut as P;
        let mut out = Vec::with_capacity(6 * self.layers.len());
        for (i, layer) in self.layers.iter_mut().enumerate() {
            let p = format!("text_model.encoder.layers.{i}");
            out.push((format!("{p}.self_attn.q_proj"), P::Linear(&mut layer.q)));
            out.push((format!("{p}.self_attn.k_proj"), P::Linear(&mut layer.k)));
            out.push((format!("{p}.self_attn.v_proj"), P::Linear(&mut layer.v)));
            out.push((format!("{p}.self_attn.out_proj"), P::Linear(&mut layer.out)));
            out.push((format!("{p}.mlp.fc1"), P::Linear(&mut layer.fc1)));
            out.push((format!("{p}.mlp.fc2"), P::Linear(&mut layer.fc2)));
        }
        out
    }

    /// Token embeddings `[B, T, width]` of ids `[B, T]` (u32), before position embeddings: the
    /// tensor in which textual-inversion vectors replace the rows of their placeholder tokens.
    pub fn token_embeddings(&self, ids: &Tensor) -> Result<Tensor> {
        let (batch, tokens) = ids.dims2()?;
        Ok(self.token_embedding.index_select(&ids.flatten_all()?, 0)?.reshape((
            batch,
            tokens,
            self.config.width,
        ))?)
    }

    /// [`Self::hidden_states`] from token embeddings (`[B, T, width]`, e.g. with
    /// textual-inversion vectors injected) instead of ids.
    pub fn hidden_states_from_token_embeddings(&self, embeddings: &Tensor) -> Result<Vec<Tensor>> {
        let (_, tokens, width) = embeddings.dims3()?;
        if tokens > self.config.max_positions || width != self.config.width {
            return Err(SdError::InvalidInput(format!(
                "token embeddings are [_, {tokens}, {width}]; the text encoder takes at most {} \
                 tokens of width {}",
                self.config.max_positions, self.config.width
            )));
        }
        let x = embeddings.to_dtype(self.token_embedding.dtype())?;
        let mut x = x.broadcast_add(&self.position_embedding.narrow(0, 0, tokens)?)?;
        let mut states = Vec::with_capacity(self.layers.len() + 1);
        states.push(x.clone());
        for layer in &self.layers {
            let h = layer.norm1.forward(&x)?;
            let a = attention(
                &layer.q.forward(&h)?,
                &layer.k.forward(&h)?,
                &layer.v.forward(&h)?,
                self.config.heads,
                true,
            )?;
            x = layer.out.forward_residual(&a, Some(&x))?;
            let h = layer.fc1.forward(&layer.norm2.forward(&x)?)?;
            let h = match self.config.activation {
                ClipActivation::QuickGelu => quick_gelu(&h)?,
                ClipActivation::Gelu => gelu_erf(&h)?,
            };
            x = layer.fc2.forward_residual(&h, Some(&x))?;
            states.push(x.clone());
        }
        Ok(states)
    }
}
