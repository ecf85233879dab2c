//! The LDM/SGM `UNetModel` (SD1.x and SDXL), built from an inferred [`UNetConfig`] with the
//! checkpoint's own tensor names.

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::LayerNorm;

use crate::checkpoint::Weights;
use crate::config::UNetConfig;
use crate::error::{Result, SdError};
use crate::nn::{Conv2d, GroupNorm32, Linear, attention, geglu, group_norm, layer_norm};

/// Sinusoidal embedding `[cos(t·f), sin(t·f)]`, `f_i = exp(-ln(10000)·i/half)`, as LDM's
/// `timestep_embedding` computes it in float32. `t`: `[B]` float timesteps; returns `[B, dim]`.
pub fn timestep_embedding(t: &Tensor, dim: usize) -> Result<Tensor> {
    let half = dim / 2;
    #[allow(clippy::cast_precision_loss, reason = "embedding sizes are small integers")]
    let freqs: Vec<f32> =
        (0..half).map(|i| ((-(10000f64.ln()) as f32) * i as f32 / half as f32).exp()).collect();
    let freqs = Tensor::from_vec(freqs, (1, half), t.device())?;
    let args = t.to_dtype(DType::F32)?.unsqueeze(1)?.broadcast_mul(&freqs)?;
    let emb = Tensor::cat(&[args.cos()?, args.sin()?], 1)?;
    Ok(if dim % 2 == 1 { emb.pad_with_zeros(1, 0, 1)? } else { emb })
}

/// The SDXL `y` vector: `[pooled, e(orig_h), e(orig_w), e(crop_top), e(crop_left),
/// e(target_h), e(target_w)]` with 256-wide sinusoidal embeddings. `pooled`: `[B, 1280]`.
pub fn sdxl_adm_vector(
    pooled: &Tensor,
    original_hw: (usize, usize),
    crop_top_left: (usize, usize),
    target_hw: (usize, usize),
) -> Result<Tensor> {
    let batch = pooled.dim(0)?;
    #[allow(clippy::cast_precision_loss, reason = "image sizes are far below 2^24")]
    let values =
        [original_hw.0, original_hw.1, crop_top_left.0, crop_top_left.1, target_hw.0, target_hw.1]
            .map(|v| v as f32);
    let ids = Tensor::from_vec(values.to_vec(), 6, pooled.device())?;
    let emb = timestep_embedding(&ids, 256)?.reshape((1, 6 * 256))?.repeat((batch, 1))?;
    Ok(Tensor::cat(&[&pooled.to_dtype(emb.dtype())?, &emb], 1)?.to_dtype(pooled.dtype())?)
}

struct ResBlock {
    norm1: GroupNorm32,
    conv1: Conv2d,
    emb: Linear,
    norm2: GroupNorm32,
    conv2: Conv2d,
    skip: Option<Conv2d>,
}

impl ResBlock {
    fn load(w: &Weights<'_>, inp: usize, out: usize, emb_dim: usize) -> Result<Self> {
        Ok(Self {
            norm1: group_norm(&w.pp("in_layers.0"), inp, 1e-5)?,
            conv1: Conv2d::load(&w.pp("in_layers.2"), inp, out, 3, 1, 1)?,
            emb: Linear::load(&w.pp("emb_layers.1"), emb_dim, out, true)?,
            norm2: group_norm(&w.pp("out_layers.0"), out, 1e-5)?,
            conv2: Conv2d::load(&w.pp("out_layers.3"), out, out, 3, 1, 1)?,
            skip: if inp == out {
                None
            } else {
                Some(Conv2d::load(&w.pp("skip_connection"), inp, out, 1, 1, 0)?)
            },
        })
    }

    fn forward(&self, x: &Tensor, emb_silu: &Tensor) -> Result<Tensor> {
        // The time embedding and the skip connection are added as the convolutions write.
        let e = self.emb.forward(emb_silu)?;
        let h = self.conv1.forward_add(&self.norm1.forward_silu(x)?, Some(&e), None)?;
        let skip = match &self.skip {
            Some(conv) => conv.forward(x)?,
            None => x.clone(),
        };
        self.conv2.forward_add(&self.norm2.forward_silu_owned(h)?, None, Some(&skip))
    }
}

struct CrossAttention {
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
    heads: usize,
}

impl CrossAttention {
    fn load(w: &Weights<'_>, dim: usize, context_dim: usize, heads: usize) -> Result<Self> {
        Ok(Self {
            q: Linear::load(&w.pp("to_q"), dim, dim, false)?,
            k: Linear::load(&w.pp("to_k"), context_dim, dim, false)?,
            v: Linear::load(&w.pp("to_v"), context_dim, dim, false)?,
            out: Linear::load(&w.pp("to_out.0"), dim, dim, true)?,
            heads,
        })
    }

    /// `residual + attention(x, context)`, the residual added as the output projection writes.
    fn forward(&self, x: &Tensor, context: &Tensor, residual: &Tensor) -> Result<Tensor> {
        let q = self.q.forward(x)?;
        let k = self.k.forward(context)?;
        let v = self.v.forward(context)?;
        self.out.forward_residual(&attention(&q, &k, &v, self.heads, false)?, Some(residual))
    }
}

struct TransformerBlock {
    norm1: LayerNorm,
    attn1: CrossAttention,
    norm2: LayerNorm,
    attn2: CrossAttention,
    norm3: LayerNorm,
    ff_in: Linear,
    ff_out: Linear,
}

impl TransformerBlock {
    fn load(w: &Weights<'_>, dim: usize, context_dim: usize, heads: usize) -> Result<Self> {
        let ff = 4 * dim;
        Ok(Self {
            norm1: layer_norm(&w.pp("norm1"), dim)?,
            attn1: CrossAttention::load(&w.pp("attn1"), dim, dim, heads)?,
            norm2: layer_norm(&w.pp("norm2"), dim)?,
            attn2: CrossAttention::load(&w.pp("attn2"), dim, context_dim, heads)?,
            norm3: layer_norm(&w.pp("norm3"), dim)?,
            ff_in: Linear::load(&w.pp("ff.net.0.proj"), dim, 2 * ff, true)?,
            ff_out: Linear::load(&w.pp("ff.net.2"), ff, dim, true)?,
        })
    }

    fn forward(&self, x: &Tensor, context: &Tensor) -> Result<Tensor> {
        let h = self.norm1.forward(x)?;
        let x = self.attn1.forward(&h, &h, x)?;
        let x = self.attn2.forward(&self.norm2.forward(&x)?, context, &x)?;
        // GEGLU: first half is the value, second half the gate through exact GELU.
        let h = self.ff_in.forward(&self.norm3.forward(&x)?)?;
        let h = geglu(&h)?;
        self.ff_out.forward_residual(&h, Some(&x))
    }
}

struct SpatialTransformer {
    norm: GroupNorm32,
    proj_in: Linear,
    blocks: Vec<TransformerBlock>,
    proj_out: Linear,
}

impl SpatialTransformer {
    fn load(w: &Weights<'_>, channels: usize, depth: usize, config: &UNetConfig) -> Result<Self> {
        let heads = config.head_rule.heads(channels);
        let proj = |name: &str| -> Result<Linear> {
            // SD1's 1×1 conv and SDXL's linear projection are the same matrix product.
            if config.use_linear_proj {
                Linear::load(&w.pp(name), channels, channels, true)
            } else {
                let pw = w.pp(name);
                let weight = pw.get("weight", &[channels, channels, 1, 1])?;
                Linear::from_weight(
                    weight.reshape((channels, channels))?,
                    Some(pw.get("bias", &[channels])?),
                )
            }
        };
        Ok(Self {
            norm: group_norm(&w.pp("norm"), channels, 1e-6)?,
            proj_in: proj("proj_in")?,
            blocks: (0..depth)
                .map(|d| {
                    TransformerBlock::load(
                        &w.pp(format!("transformer_blocks.{d}")),
                        channels,
                        config.context_dim,
                        heads,
                    )
                })
                .collect::<Result<Vec<_>>>()?,
            proj_out: proj("proj_out")?,
        })
    }

    fn forward(&self, x: &Tensor, context: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        let tokens = self.norm.forward(x)?.flatten_from(2)?.transpose(1, 2)?.contiguous()?;
        let mut t = self.proj_in.forward(&tokens)?;
        for block in &self.blocks {
            t = block.forward(&t, context)?;
        }
        let t = self.proj_out.forward(&t)?;
        let t = t.transpose(1, 2)?.contiguous()?.reshape((b, c, h, w))?;
        Ok((t + x)?)
    }
}

enum Layer {
    Conv(Conv2d),
    Res(ResBlock),
    Attn(SpatialTransformer),
    Down(Conv2d),
    Up(Conv2d),
}

impl Layer {
    /// `up_size` is the spatial size an upsampler must produce (the matching skip's size, so
    /// latents whose sides are not multiples of 2^levels work as in diffusers).
    fn forward(
        &self,
        x: &Tensor,
        emb_silu: &Tensor,
        context: &Tensor,
        up_size: Option<(usize, usize)>,
    ) -> Result<Tensor> {
        match self {
            Self::Conv(conv) | Self::Down(conv) => conv.forward(x),
            Self::Res(res) => res.forward(x, emb_silu),
            Self::Attn(attn) => attn.forward(x, context),
            Self::Up(conv) => {
                let (_, _, h, w) = x.dims4()?;
                let (th, tw) = up_size.unwrap_or((2 * h, 2 * w));
                if (th, tw) == (2 * h, 2 * w) {
                    conv.forward_upsampled_2x(x)
                } else {
                    conv.forward(&x.upsample_nearest2d(th, tw)?)
                }
            }
        }
    }
}

type Block = Vec<Layer>;

fn run_block(
    block: &Block,
    x: &Tensor,
    emb_silu: &Tensor,
    context: &Tensor,
    up_size: Option<(usize, usize)>,
) -> Result<Tensor> {
    let mut h = x.clone();
    for layer in block {
        h = layer.forward(&h, emb_silu, context, up_size)?;
    }
    Ok(h)
}

/// The diffusion UNet.
pub struct UNet {
    config: UNetConfig,
    time_in: Linear,
    time_out: Linear,
    label_in: Option<(Linear, Linear)>,
    input_blocks: Vec<Block>,
    middle_block: Block,
    output_blocks: Vec<Block>,
    out_norm: GroupNorm32,
    out_conv: Conv2d,
}

impl UNet {
    pub(crate) fn load(config: &UNetConfig, w: &Weights<'_>) -> Result<Self> {
        let mc = config.model_channels;
        let ted = config.time_embed_dim;
        let levels = config.channel_mult.len();
        let level_value = |v: &[usize], level: usize, what: &str| -> Result<usize> {
            v.get(level).copied().ok_or_else(|| {
                SdError::Inconsistent(format!("UNet config has no {what} for level {level}"))
            })
        };
        let mut input_blocks: Vec<Block> = vec![vec![Layer::Conv(Conv2d::load(
            &w.pp("input_blocks.0.0"),
            config.in_channels,
            mc,
            3,
            1,
            1,
        )?)]];
        let mut skip_channels = vec![mc];
        let mut ch = mc;
        for level in 0..levels {
            let out_ch = mc * level_value(&config.channel_mult, level, "channel multiplier")?;
            let depth = level_value(&config.transformer_depth, level, "transformer depth")?;
            for _ in 0..level_value(&config.num_res_blocks, level, "res block count")? {
                let bw = w.pp(format!("input_blocks.{}", input_blocks.len()));
                let mut block = vec![Layer::Res(ResBlock::load(&bw.pp(0), ch, out_ch, ted)?)];
                ch = out_ch;
                if depth > 0 {
                    block.push(Layer::Attn(SpatialTransformer::load(
                        &bw.pp(1),
                        ch,
                        depth,
                        config,
                    )?));
                }
                input_blocks.push(block);
                skip_channels.push(ch);
            }
            if level + 1 != levels {
                let bw = w.pp(format!("input_blocks.{}.0.op", input_blocks.len()));
                input_blocks.push(vec![Layer::Down(Conv2d::load(&bw, ch, ch, 3, 2, 1)?)]);
                skip_channels.push(ch);
            }
        }
        let mw = w.pp("middle_block");
        let mut middle_block = vec![Layer::Res(ResBlock::load(&mw.pp(0), ch, ch, ted)?)];
        if config.transformer_depth_middle > 0 {
            middle_block.push(Layer::Attn(SpatialTransformer::load(
                &mw.pp(1),
                ch,
                config.transformer_depth_middle,
                config,
            )?));
            middle_block.push(Layer::Res(ResBlock::load(&mw.pp(2), ch, ch, ted)?));
        } else {
            middle_block.push(Layer::Res(ResBlock::load(&mw.pp(1), ch, ch, ted)?));
        }
        let mut output_blocks: Vec<Block> = Vec::new();
        for level in (0..levels).rev() {
            let out_ch = mc * level_value(&config.channel_mult, level, "channel multiplier")?;
            let res_blocks = level_value(&config.num_res_blocks, level, "res block count")?;
            for i in 0..=res_blocks {
                let index = output_blocks.len();
                let bw = w.pp(format!("output_blocks.{index}"));
                let skip = skip_channels.pop().ok_or_else(|| {
                    SdError::Inconsistent("UNet has more output than input blocks".into())
                })?;
                let mut block =
                    vec![Layer::Res(ResBlock::load(&bw.pp(0), ch + skip, out_ch, ted)?)];
                ch = out_ch;
                let depth = level_value(&config.transformer_depth_output, index, "output depth")?;
                if depth > 0 {
                    block.push(Layer::Attn(SpatialTransformer::load(
                        &bw.pp(1),
                        ch,
                        depth,
                        config,
                    )?));
                }
                if level > 0 && i == res_blocks {
                    let uw = bw.pp(format!("{}.conv", block.len()));
                    block.push(Layer::Up(Conv2d::load(&uw, ch, ch, 3, 1, 1)?));
                }
                output_blocks.push(block);
            }
        }
        let label_in = match config.adm_in_channels {
            Some(adm) => Some((
                Linear::load(&w.pp("label_emb.0.0"), adm, ted, true)?,
                Linear::load(&w.pp("label_emb.0.2"), ted, ted, true)?,
            )),
            None => None,
        };
        Ok(Self {
            config: config.clone(),
            time_in: Linear::load(&w.pp("time_embed.0"), mc, ted, true)?,
            time_out: Linear::load(&w.pp("time_embed.2"), ted, ted, true)?,
            label_in,
            input_blocks,
            middle_block,
            output_blocks,
            out_norm: group_norm(&w.pp("out.0"), ch, 1e-5)?,
            out_conv: Conv2d::load(&w.pp("out.2"), ch, config.out_channels, 3, 1, 1)?,
        })
    }

    pub fn config(&self) -> &UNetConfig {
        &self.config
    }

    /// Predicts eps. `x`: `[B, in_channels, h, w]`,
    /// any h, w (odd sides follow diffusers' upsample-to-skip-size rule); `timesteps`: `[B]` (or `[1]`)
    /// float (non-quantized) timesteps; `context`: `[B, T, context_dim]`;
    /// `y`: `[B, adm_in_channels]` for SDXL (see [`sdxl_adm_vector`]), `None` for SD1.
    pub fn forward(
        &self,
        x: &Tensor,
        timesteps: &Tensor,
        context: &Tensor,
        y: Option<&Tensor>,
    ) -> Result<Tensor> {
        let (batch, channels, height, width) = x.dims4()?;
        if channels != self.config.in_channels {
            return Err(SdError::InvalidInput(format!(
                "UNet input has {channels} channels, the model takes {}",
                self.config.in_channels
            )));
        }
        if height == 0 || width == 0 {
            return Err(SdError::InvalidInput(format!("empty latent {height}x{width}")));
        }
        let (context_batch, _, context_dim) = context.dims3()?;
        if context_batch != batch || context_dim != self.config.context_dim {
            return Err(SdError::InvalidInput(format!(
                "context is [{context_batch}, _, {context_dim}], expected [{batch}, _, {}]",
                self.config.context_dim
            )));
        }
        let t_emb =
            timestep_embedding(timesteps, self.config.model_channels)?.to_dtype(x.dtype())?;
        let t_emb = if t_emb.dim(0)? == batch {
            t_emb
        } else {
            t_emb.broadcast_as((batch, self.config.model_channels))?.contiguous()?
        };
        let mut emb = self.time_out.forward(&self.time_in.forward(&t_emb)?.silu()?)?;
        match (&self.label_in, y) {
            (Some((l0, l2)), Some(y)) => {
                emb = (emb + l2.forward(&l0.forward(y)?.silu()?)?)?;
            }
            (Some(_), None) => {
                return Err(SdError::InvalidInput("this UNet needs the SDXL `y` vector".into()));
            }
            (None, Some(_)) => {
                return Err(SdError::InvalidInput("this UNet takes no `y` vector".into()));
            }
            (None, None) => {}
        }
        let emb_silu = emb.silu()?;
        let mut skips = Vec::with_capacity(self.input_blocks.len());
        let mut h = x.clone();
        for block in &self.input_blocks {
            h = run_block(block, &h, &emb_silu, context, None)?;
            skips.push(h.clone());
        }
        h = run_block(&self.middle_block, &h, &emb_silu, context, None)?;
        for block in &self.output_blocks {
            let skip = skips
                .pop()
                .ok_or_else(|| SdError::Inconsistent("UNet skip connections exhausted".into()))?;
            let up_size = match skips.last() {
                Some(next) => Some((next.dim(2)?, next.dim(3)?)),
                None => None,
            };
            h = run_block(block, &Tensor::cat(&[&h, &skip], 1)?, &emb_silu, context, up_size)?;
        }
        self.out_conv.forward(&self.out_norm.forward_silu(&h)?)
    }

    /// A `[B]` tensor of one timestep value, for callers that step a whole batch together.
    pub fn timesteps(value: f32, batch: usize, device: &Device) -> Result<Tensor> {
        Ok(Tensor::full(value, batch, device)?)
    }
}

/// LoRA patching: every linear and convolution layer under its LDM name relative to
/// `model.diffusion_model.` (without `.weight`), in the same structure `load` builds.
impl UNet {
    pub(crate) fn patchable_layers(&mut self) -> Vec<(String, crate::nn::PatchableMut<'_>)> {
        use crate::nn::PatchableMut as P;
        fn attn_layers<'a>(
            prefix: &str,
            attn: &'a mut SpatialTransformer,
            out: &mut Vec<(String, P<'a>)>,
        ) {
            out.push((format!("{prefix}.proj_in"), P::Linear(&mut attn.proj_in)));
            out.push((format!("{prefix}.proj_out"), P::Linear(&mut attn.proj_out)));
            for (d, block) in attn.blocks.iter_mut().enumerate() {
                let b = format!("{prefix}.transformer_blocks.{d}");
                for (name, a) in [("attn1", &mut block.attn1), ("attn2", &mut block.attn2)] {
                    out.push((format!("{b}.{name}.to_q"), P::Linear(&mut a.q)));
                    out.push((format!("{b}.{name}.to_k"), P::Linear(&mut a.k)));
                    out.push((format!("{b}.{name}.to_v"), P::Linear(&mut a.v)));
                    out.push((format!("{b}.{name}.to_out.0"), P::Linear(&mut a.out)));
                }
                out.push((format!("{b}.ff.net.0.proj"), P::Linear(&mut block.ff_in)));
                out.push((format!("{b}.ff.net.2"), P::Linear(&mut block.ff_out)));
            }
        }
        fn block_layers<'a>(prefix: &str, block: &'a mut Block, out: &mut Vec<(String, P<'a>)>) {
            for (j, layer) in block.iter_mut().enumerate() {
                let p = format!("{prefix}.{j}");
                match layer {
                    Layer::Conv(conv) => out.push((p, P::Conv(conv))),
                    Layer::Down(conv) => out.push((format!("{p}.op"), P::Conv(conv))),
                    Layer::Up(conv) => out.push((format!("{p}.conv"), P::Conv(conv))),
                    Layer::Res(res) => {
                        out.push((format!("{p}.in_layers.2"), P::Conv(&mut res.conv1)));
                        out.push((format!("{p}.emb_layers.1"), P::Linear(&mut res.emb)));
                        out.push((format!("{p}.out_layers.3"), P::Conv(&mut res.conv2)));
                        if let Some(skip) = &mut res.skip {
                            out.push((format!("{p}.skip_connection"), P::Conv(skip)));
                        }
                    }
                    Layer::Attn(attn) => attn_layers(&p, attn, out),
                }
            }
        }
        let mut out = Vec::new();
        out.push(("time_embed.0".to_string(), P::Linear(&mut self.time_in)));
        out.push(("time_embed.2".to_string(), P::Linear(&mut self.time_out)));
        if let Some((l0, l2)) = &mut self.label_in {
            out.push(("label_emb.0.0".to_string(), P::Linear(l0)));
            out.push(("label_emb.0.2".to_string(), P::Linear(l2)));
        }
        for (i, block) in self.input_blocks.iter_mut().enumerate() {
            block_layers(&format!("input_blocks.{i}"), block, &mut out);
        }
        block_layers("middle_block", &mut self.middle_block, &mut out);
        for (i, block) in self.output_blocks.iter_mut().enumerate() {
            block_layers(&format!("output_blocks.{i}"), block, &mut out);
        }
        out.push(("out.2".to_string(), P::Conv(&mut self.out_conv)));
        out
    }
}
