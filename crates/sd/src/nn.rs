//! Small building blocks shared by the text encoders, UNet and VAE, and the memory-bounded
//! attention (query blocks, softmax per block) that never materialises N×N for large N.

use candle_core::{D, DType, Device, Module, Tensor};
use candle_nn::{Conv2dConfig, GroupNorm, LayerNorm};
use rayon::prelude::*;

use crate::checkpoint::Weights;
use crate::error::Result;

/// `x @ W^T + b` over the last dimension, as one 2-D GEMM whatever the leading dimensions.
#[derive(Clone)]
pub(crate) struct Linear {
    weight_t: Tensor,
    bias: Option<Tensor>,
    out_features: usize,
}

impl Linear {
    pub(crate) fn load(w: &Weights<'_>, inp: usize, out: usize, bias: bool) -> Result<Self> {
        let weight = w.get("weight", &[out, inp])?;
        Self::from_weight(weight, if bias { Some(w.get("bias", &[out])?) } else { None })
    }

    /// A linear layer whose `[out, in]` weight is stored as a 1×1 convolution or as a matrix.
    pub(crate) fn load_matrix_or_1x1(w: &Weights<'_>, inp: usize, out: usize) -> Result<Self> {
        let weight = w.get_matrix_or_1x1("weight", out, inp)?;
        Self::from_weight(weight, Some(w.get("bias", &[out])?))
    }

    pub(crate) fn from_weight(weight: Tensor, bias: Option<Tensor>) -> Result<Self> {
        let out_features = weight.dim(0)?;
        // Stored transposed and contiguous once, so every call is a plain row-major GEMM.
        let weight_t = weight.t()?.contiguous()?;
        Ok(Self { weight_t, bias, out_features })
    }

    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let inp = x.dim(D::Minus1)?;
        let rows = x.elem_count() / inp.max(1);
        let y = x.reshape((rows, inp))?.matmul(&self.weight_t)?;
        let y = match &self.bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        };
        let mut out_dims = dims;
        if let Some(last) = out_dims.last_mut() {
            *last = self.out_features;
        }
        Ok(y.reshape(out_dims)?)
    }
}

/// 2-D convolution with bias.
#[derive(Clone)]
pub(crate) struct Conv2d {
    inner: candle_nn::Conv2d,
    /// The kernel as a `[c_out, c_in·k·k]` matrix for the im2col path.
    weight_2d: Tensor,
    kernel: usize,
    stride: usize,
    padding: usize,
}

impl Conv2d {
    pub(crate) fn load(
        w: &Weights<'_>,
        inp: usize,
        out: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
    ) -> Result<Self> {
        let weight = w.get("weight", &[out, inp, kernel, kernel])?;
        let bias = w.get("bias", &[out])?;
        let config = Conv2dConfig { padding, stride, ..Conv2dConfig::default() };
        let weight_2d = weight.reshape((out, inp * kernel * kernel))?;
        Ok(Self {
            inner: candle_nn::Conv2d::new(weight, Some(bias), config),
            weight_2d,
            kernel,
            stride,
            padding,
        })
    }

    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if x.device().is_cpu() && x.dtype() == DType::F32 && self.kernel > 1 {
            return self.forward_im2col(x);
        }
        Ok(self.inner.forward(x)?)
    }

    /// The im2col convolution: per image and per tile of output rows, the patch matrix
    /// `[c_in·k·k, pixels]` is built row by row (each row a shifted copy of one input plane, so
    /// the copies are contiguous), then one GEMM with the kernel in its stored layout writes the
    /// NCHW output directly. Tiles bound the patch matrix to ~64 MiB at any image size.
    pub(crate) fn forward_im2col(&self, x: &Tensor) -> Result<Tensor> {
        const TILE_ELEMENTS: usize = 16 * 1024 * 1024;
        let (batch, c_in, height, width) = x.dims4()?;
        let (k, stride, pad) = (self.kernel, self.stride, self.padding);
        let c_out = self.weight_2d.dim(0)?;
        let patch_rows = c_in * k * k;
        if self.weight_2d.dim(1)? != patch_rows || height + 2 * pad < k || width + 2 * pad < k {
            return Ok(self.inner.forward(x)?);
        }
        let out_h = (height + 2 * pad - k) / stride + 1;
        let out_w = (width + 2 * pad - k) / stride + 1;
        let input = x.flatten_all()?.to_vec1::<f32>()?;
        let plane = height * width;
        let rows_per_tile = (TILE_ELEMENTS / (patch_rows * out_w).max(1)).clamp(1, out_h);
        let mut output = vec![0f32; batch * c_out * out_h * out_w];
        for (image, out_image) in
            input.chunks_exact(c_in * plane).zip(output.chunks_exact_mut(c_out * out_h * out_w))
        {
            let mut row0 = 0;
            while row0 < out_h {
                let rows = rows_per_tile.min(out_h - row0);
                let pixels = rows * out_w;
                let mut col = vec![0f32; patch_rows * pixels];
                col.par_chunks_mut(pixels).enumerate().for_each(|(r, dst)| {
                    let (c, kh, kw) = (r / (k * k), (r / k) % k, r % k);
                    let src = image.get(c * plane..(c + 1) * plane).unwrap_or_default();
                    for (oy_local, dst_row) in dst.chunks_exact_mut(out_w).enumerate() {
                        let iy = ((row0 + oy_local) * stride + kh).checked_sub(pad);
                        let Some(src_row) = iy
                            .filter(|&iy| iy < height)
                            .and_then(|iy| src.get(iy * width..(iy + 1) * width))
                        else {
                            continue;
                        };
                        if stride == 1 {
                            // Output columns whose input column ox + kw - pad is inside the row.
                            let lo = pad.saturating_sub(kw).min(out_w);
                            let hi = (width + pad).saturating_sub(kw).clamp(lo, out_w);
                            let src_lo = (lo + kw).saturating_sub(pad);
                            if let (Some(d), Some(s)) =
                                (dst_row.get_mut(lo..hi), src_row.get(src_lo..src_lo + (hi - lo)))
                            {
                                d.copy_from_slice(s);
                            }
                            continue;
                        }
                        for (ox, d) in dst_row.iter_mut().enumerate() {
                            if let Some(v) =
                                (ox * stride + kw).checked_sub(pad).and_then(|ix| src_row.get(ix))
                            {
                                *d = *v;
                            }
                        }
                    }
                });
                let col = Tensor::from_vec(col, (patch_rows, pixels), &Device::Cpu)?;
                let result = self.weight_2d.matmul(&col)?.flatten_all()?.to_vec1::<f32>()?;
                for (co, values) in result.chunks_exact(pixels).enumerate() {
                    let start = co * out_h * out_w + row0 * out_w;
                    if let Some(dst) = out_image.get_mut(start..start + pixels) {
                        dst.copy_from_slice(values);
                    }
                }
                row0 += rows;
            }
        }
        let out = Tensor::from_vec(output, (batch, c_out, out_h, out_w), x.device())?;
        match self.inner.bias() {
            Some(b) => Ok(out.broadcast_add(&b.reshape((1, c_out, 1, 1))?)?),
            None => Ok(out),
        }
    }

    /// candle's own convolution (for comparison in the bench).
    pub(crate) fn forward_candle(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.inner.forward(x)?)
    }
}

/// GroupNorm with 32 groups and the given epsilon.
pub(crate) fn group_norm(w: &Weights<'_>, channels: usize, eps: f64) -> Result<GroupNorm> {
    let weight = w.get("weight", &[channels])?;
    let bias = w.get("bias", &[channels])?;
    Ok(GroupNorm::new(weight, bias, channels, 32, eps)?)
}

/// LayerNorm with eps 1e-5 (every LayerNorm in these models).
pub(crate) fn layer_norm(w: &Weights<'_>, channels: usize) -> Result<LayerNorm> {
    let weight = w.get("weight", &[channels])?;
    let bias = w.get("bias", &[channels])?;
    Ok(LayerNorm::new(weight, bias, 1e-5))
}

/// Elements of one block of attention scores (128 MiB of f32): bounds memory at any image size.
const SCORE_BLOCK_ELEMENTS: usize = 32 * 1024 * 1024;

/// Multi-head scaled dot-product attention. `q`: `[B, N, H·d]`, `k`, `v`: `[B, M, H·d]`;
/// returns `[B, N, H·d]`. With `causal`, query i sees keys 0..=i (CLIP text).
///
/// Queries are processed in blocks of rows so that at most [`SCORE_BLOCK_ELEMENTS`] scores exist
/// at once; the softmax of each row is exact (every row sees all its keys).
pub(crate) fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    heads: usize,
    causal: bool,
) -> Result<Tensor> {
    let (batch, n_q, width) = q.dims3()?;
    let n_k = k.dim(1)?;
    let head_dim = width / heads.max(1);
    let split = |t: &Tensor, n: usize| -> Result<Tensor> {
        Ok(t.reshape((batch, n, heads, head_dim))?.transpose(1, 2)?.contiguous()?.reshape((
            batch * heads,
            n,
            head_dim,
        ))?)
    };
    #[allow(clippy::cast_precision_loss, reason = "head sizes are small integers")]
    let scale = 1.0 / (head_dim as f64).sqrt();
    let q = (split(q, n_q)? * scale)?;
    let k_t = split(k, n_k)?.transpose(1, 2)?.contiguous()?;
    let v = split(v, n_k)?;
    let mask = if causal { Some(causal_mask(n_q, n_k, q.dtype(), q.device())?) } else { None };
    let rows_per_block = (SCORE_BLOCK_ELEMENTS / (batch * heads * n_k).max(1)).clamp(1, n_q.max(1));
    let mut outputs = Vec::with_capacity(n_q.div_ceil(rows_per_block));
    let mut start = 0;
    while start < n_q {
        let rows = rows_per_block.min(n_q - start);
        let q_block = if rows == n_q { q.clone() } else { q.narrow(1, start, rows)? };
        let mut scores = q_block.matmul(&k_t)?;
        if let Some(mask) = &mask {
            scores = scores.broadcast_add(&mask.narrow(0, start, rows)?)?;
        }
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        outputs.push(probs.matmul(&v)?);
        start += rows;
    }
    let out = if outputs.len() == 1 { outputs.swap_remove(0) } else { Tensor::cat(&outputs, 1)? };
    Ok(out
        .reshape((batch, heads, n_q, head_dim))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((batch, n_q, width))?)
}

fn causal_mask(n_q: usize, n_k: usize, dtype: DType, device: &Device) -> Result<Tensor> {
    let values: Vec<f32> = (0..n_q)
        .flat_map(|i| (0..n_k).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 }))
        .collect();
    Ok(Tensor::from_vec(values, (n_q, n_k), device)?.to_dtype(dtype)?)
}

/// `x · sigmoid(1.702 x)`, the activation of OpenAI's CLIP (Hugging Face layout).
pub(crate) fn quick_gelu(x: &Tensor) -> Result<Tensor> {
    Ok((x * candle_nn::ops::sigmoid(&(x * 1.702)?)?)?)
}

/// A layer whose weight LoRA patching replaces (and later puts back) without reloading anything.
pub(crate) enum PatchableMut<'a> {
    Linear(&'a mut Linear),
    Conv(&'a mut Conv2d),
}

impl Linear {
    /// The stored `[in, out]` transpose of the weight.
    pub(crate) fn weight_t(&self) -> &Tensor {
        &self.weight_t
    }

    /// Replaces the weight by its `[in, out]` transpose (same shape as [`Self::weight_t`]).
    pub(crate) fn replace_weight_t(&mut self, weight_t: Tensor) {
        self.weight_t = weight_t;
    }
}

impl Conv2d {
    /// The kernel as `[c_out, c_in·k·k]`.
    pub(crate) fn weight_2d(&self) -> &Tensor {
        &self.weight_2d
    }

    /// The kernel's full shape `[c_out, c_in, k, k]`.
    pub(crate) fn weight_dims(&self) -> &[usize] {
        self.inner.weight().dims()
    }

    /// Replaces the kernel by `weight_2d` (`[c_out, c_in·k·k]`), keeping bias and geometry.
    pub(crate) fn replace_weight_2d(&mut self, weight_2d: Tensor) -> Result<()> {
        let weight = weight_2d.reshape(self.inner.weight().dims())?;
        self.inner =
            candle_nn::Conv2d::new(weight, self.inner.bias().cloned(), *self.inner.config());
        self.weight_2d = weight_2d;
        Ok(())
    }
}
