//! The LDM `AutoencoderKL`: encoder to the posterior mean, decoder back to pixels.

use candle_core::Tensor;

use crate::checkpoint::Weights;
use crate::config::VaeConfig;
use crate::error::{Result, SdError};
use crate::nn::{Conv2d, GroupNorm32, Linear, attention, group_norm};

/// GroupNorm epsilon everywhere in the VAE (LDM).
const VAE_EPS: f64 = 1e-6;

struct ResnetBlock {
    norm1: GroupNorm32,
    conv1: Conv2d,
    norm2: GroupNorm32,
    conv2: Conv2d,
    shortcut: Option<Conv2d>,
}

impl ResnetBlock {
    fn load(w: &Weights<'_>, inp: usize, out: usize) -> Result<Self> {
        Ok(Self {
            norm1: group_norm(&w.pp("norm1"), inp, VAE_EPS)?,
            conv1: Conv2d::load(&w.pp("conv1"), inp, out, 3, 1, 1)?,
            norm2: group_norm(&w.pp("norm2"), out, VAE_EPS)?,
            conv2: Conv2d::load(&w.pp("conv2"), out, out, 3, 1, 1)?,
            shortcut: if inp == out {
                None
            } else {
                Some(Conv2d::load(&w.pp("nin_shortcut"), inp, out, 1, 1, 0)?)
            },
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.conv1.forward(&self.norm1.forward_silu(x)?)?;
        let skip = match &self.shortcut {
            Some(conv) => conv.forward(x)?,
            None => x.clone(),
        };
        // The skip connection is added as the second convolution writes its result.
        self.conv2.forward_add(&self.norm2.forward_silu_owned(h)?, None, Some(&skip))
    }
}

/// Single-head self-attention over all pixels.
struct AttnBlock {
    norm: GroupNorm32,
    q: Linear,
    k: Linear,
    v: Linear,
    proj: Linear,
}

impl AttnBlock {
    fn load(w: &Weights<'_>, c: usize) -> Result<Self> {
        Ok(Self {
            norm: group_norm(&w.pp("norm"), c, VAE_EPS)?,
            q: Linear::load_matrix_or_1x1(&w.pp("q"), c, c)?,
            k: Linear::load_matrix_or_1x1(&w.pp("k"), c, c)?,
            v: Linear::load_matrix_or_1x1(&w.pp("v"), c, c)?,
            proj: Linear::load_matrix_or_1x1(&w.pp("proj_out"), c, c)?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        let t = self.norm.forward(x)?.flatten_from(2)?.transpose(1, 2)?.contiguous()?;
        let a =
            attention(&self.q.forward(&t)?, &self.k.forward(&t)?, &self.v.forward(&t)?, 1, false)?;
        let out = self.proj.forward(&a)?.transpose(1, 2)?.contiguous()?.reshape((b, c, h, w))?;
        Ok((x + out)?)
    }
}

struct Mid {
    block_1: ResnetBlock,
    attn_1: AttnBlock,
    block_2: ResnetBlock,
}

impl Mid {
    fn load(w: &Weights<'_>, c: usize) -> Result<Self> {
        Ok(Self {
            block_1: ResnetBlock::load(&w.pp("block_1"), c, c)?,
            attn_1: AttnBlock::load(&w.pp("attn_1"), c)?,
            block_2: ResnetBlock::load(&w.pp("block_2"), c, c)?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.block_2.forward(&self.attn_1.forward(&self.block_1.forward(x)?)?)
    }
}

struct Level {
    blocks: Vec<ResnetBlock>,
    /// Downsampler (encoder) or upsampler (decoder) convolution.
    resample: Option<Conv2d>,
}

/// The VAE: encoder, `quant_conv`, `post_quant_conv`, decoder.
pub struct Vae {
    config: VaeConfig,
    enc_conv_in: Conv2d,
    enc_levels: Vec<Level>,
    enc_mid: Mid,
    enc_norm: GroupNorm32,
    enc_conv_out: Conv2d,
    quant_conv: Conv2d,
    post_quant_conv: Conv2d,
    dec_conv_in: Conv2d,
    dec_mid: Mid,
    /// Decoder levels in execution order (deepest first).
    dec_levels: Vec<Level>,
    dec_norm: GroupNorm32,
    dec_conv_out: Conv2d,
}

impl Vae {
    pub(crate) fn load(config: &VaeConfig, w: &Weights<'_>) -> Result<Self> {
        let ch = config.base_channels;
        let z = config.z_channels;
        let mults = &config.channel_mult;
        let levels = mults.len();
        let e = w.pp("encoder");
        let mut block_in = ch;
        let mut enc_levels = Vec::with_capacity(levels);
        for (level, mult) in mults.iter().enumerate() {
            let lw = e.pp(format!("down.{level}"));
            let block_out = ch * mult;
            let mut blocks = Vec::with_capacity(config.num_res_blocks);
            for i in 0..config.num_res_blocks {
                blocks.push(ResnetBlock::load(&lw.pp(format!("block.{i}")), block_in, block_out)?);
                block_in = block_out;
            }
            let resample = if level + 1 == levels {
                None
            } else {
                Some(Conv2d::load(&lw.pp("downsample.conv"), block_in, block_in, 3, 2, 0)?)
            };
            enc_levels.push(Level { blocks, resample });
        }
        let enc_mid = Mid::load(&e.pp("mid"), block_in)?;
        let enc_norm = group_norm(&e.pp("norm_out"), block_in, VAE_EPS)?;
        let enc_conv_out = Conv2d::load(&e.pp("conv_out"), block_in, 2 * z, 3, 1, 1)?;

        let d = w.pp("decoder");
        let top = ch
            * mults
                .last()
                .copied()
                .ok_or_else(|| SdError::Inconsistent("VAE has no levels".into()))?;
        let mut block_in = top;
        let dec_conv_in = Conv2d::load(&d.pp("conv_in"), z, block_in, 3, 1, 1)?;
        let dec_mid = Mid::load(&d.pp("mid"), block_in)?;
        let mut dec_levels = Vec::with_capacity(levels);
        for (level, mult) in mults.iter().enumerate().rev() {
            let lw = d.pp(format!("up.{level}"));
            let block_out = ch * mult;
            let mut blocks = Vec::with_capacity(config.num_res_blocks + 1);
            for i in 0..=config.num_res_blocks {
                blocks.push(ResnetBlock::load(&lw.pp(format!("block.{i}")), block_in, block_out)?);
                block_in = block_out;
            }
            let resample = if level == 0 {
                None
            } else {
                Some(Conv2d::load(&lw.pp("upsample.conv"), block_in, block_in, 3, 1, 1)?)
            };
            dec_levels.push(Level { blocks, resample });
        }
        Ok(Self {
            config: config.clone(),
            enc_conv_in: Conv2d::load(&e.pp("conv_in"), config.in_channels, ch, 3, 1, 1)?,
            enc_levels,
            enc_mid,
            enc_norm,
            enc_conv_out,
            quant_conv: Conv2d::load(&w.pp("quant_conv"), 2 * z, 2 * z, 1, 1, 0)?,
            post_quant_conv: Conv2d::load(&w.pp("post_quant_conv"), z, z, 1, 1, 0)?,
            dec_conv_in,
            dec_mid,
            dec_levels,
            dec_norm: group_norm(&d.pp("norm_out"), block_in, VAE_EPS)?,
            dec_conv_out: Conv2d::load(&d.pp("conv_out"), block_in, config.out_channels, 3, 1, 1)?,
        })
    }

    pub fn config(&self) -> &VaeConfig {
        &self.config
    }

    /// Latent scaling factor (0.18215 SD1.x, 0.13025 SDXL): latents for the UNet are
    /// `encode_mean(x) * scaling_factor`, and `decode` takes `latents / scaling_factor`.
    pub fn scaling_factor(&self) -> f64 {
        self.config.scaling_factor
    }

    /// Posterior mean (unscaled) of images `[B, 3, H, W]` in [-1, 1]; H and W multiples of 8.
    pub fn encode_mean(&self, images: &Tensor) -> Result<Tensor> {
        let (_, channels, height, width) = images.dims4()?;
        let factor = 1usize << self.enc_levels.len().saturating_sub(1);
        if channels != self.config.in_channels || height % factor != 0 || width % factor != 0 {
            return Err(SdError::InvalidInput(format!(
                "VAE input is {channels}x{height}x{width}; expected {} channels and sides that are \
                 multiples of {factor}",
                self.config.in_channels
            )));
        }
        let mut h = self.enc_conv_in.forward(images)?;
        for level in &self.enc_levels {
            for block in &level.blocks {
                h = block.forward(&h)?;
            }
            if let Some(conv) = &level.resample {
                // LDM pads right and bottom by one, then convolves with stride 2 and no padding.
                h = conv.forward(&h.pad_with_zeros(3, 0, 1)?.pad_with_zeros(2, 0, 1)?)?;
            }
        }
        let h = self.enc_mid.forward(&h)?;
        let h = self.enc_conv_out.forward(&self.enc_norm.forward_silu(&h)?)?;
        let moments = self.quant_conv.forward(&h)?;
        Ok(moments.narrow(1, 0, self.config.z_channels)?)
    }

    /// Pixels in about [-1, 1], `[B, 3, 8h, 8w]`, from unscaled latents `[B, z, h, w]`.
    pub fn decode(&self, latents: &Tensor) -> Result<Tensor> {
        let (_, channels, _, _) = latents.dims4()?;
        if channels != self.config.z_channels {
            return Err(SdError::InvalidInput(format!(
                "latents have {channels} channels, the VAE takes {}",
                self.config.z_channels
            )));
        }
        let z = self.post_quant_conv.forward(latents)?;
        let mut h = self.dec_mid.forward(&self.dec_conv_in.forward(&z)?)?;
        for level in &self.dec_levels {
            for block in &level.blocks {
                h = block.forward(&h)?;
            }
            if let Some(conv) = &level.resample {
                h = conv.forward_upsampled_2x(&h)?;
            }
        }
        self.dec_conv_out.forward(&self.dec_norm.forward_silu_owned(h)?)
    }
}
