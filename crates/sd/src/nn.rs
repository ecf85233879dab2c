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
    /// the copies are contiguous), then one GEMM with the kernel in its stored layout; its result
    /// is written into the NCHW output with the bias added on the way.
    ///
    /// Tiles are sized so the patch matrix stays near [`TILE_ELEMENTS`] (16 MiB) but holds at
    /// least [`MIN_TILE_PIXELS`] pixels when a row allows: small enough that the allocator hands
    /// the same memory back tile after tile (no page faults, warm caches), large enough that the
    /// kernel matrix is reused across many columns of the GEMM.
    pub(crate) fn forward_im2col(&self, x: &Tensor) -> Result<Tensor> {
        const TILE_ELEMENTS: usize = 4 * 1024 * 1024;
        const MIN_TILE_PIXELS: usize = 256;
        let (batch, c_in, height, width) = x.dims4()?;
        let (k, stride, pad) = (self.kernel, self.stride, self.padding);
        let c_out = self.weight_2d.dim(0)?;
        let patch_rows = c_in * k * k;
        if self.weight_2d.dim(1)? != patch_rows || height + 2 * pad < k || width + 2 * pad < k {
            return Ok(self.inner.forward(x)?);
        }
        let out_h = (height + 2 * pad - k) / stride + 1;
        let out_w = (width + 2 * pad - k) / stride + 1;
        let x = x.contiguous()?;
        let (storage, layout) = x.storage_and_layout();
        let Some(input) = cpu_f32(&storage, layout) else {
            return Ok(self.inner.forward(&x)?);
        };
        let bias = match self.inner.bias() {
            Some(b) => b.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?,
            None => vec![0f32; c_out],
        };
        let plane = height * width;
        let tile_pixels = (TILE_ELEMENTS / patch_rows.max(1)).max(MIN_TILE_PIXELS);
        let rows_per_tile = (tile_pixels / out_w.max(1)).clamp(1, out_h);
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
                let result = self.weight_2d.matmul(&col)?;
                let (result_storage, result_layout) = result.storage_and_layout();
                let Some(values) = cpu_f32(&result_storage, result_layout) else {
                    return Ok(self.inner.forward(&x)?);
                };
                for ((co, values), b) in values.chunks_exact(pixels).enumerate().zip(&bias) {
                    let start = co * out_h * out_w + row0 * out_w;
                    if let Some(dst) = out_image.get_mut(start..start + pixels) {
                        dst.iter_mut().zip(values).for_each(|(d, v)| *d = v + b);
                    }
                }
                row0 += rows;
            }
        }
        Ok(Tensor::from_vec(output, (batch, c_out, out_h, out_w), x.device())?)
    }

    /// candle's own convolution (for comparison in the bench).
    pub(crate) fn forward_candle(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.inner.forward(x)?)
    }
}

/// The values of a contiguous f32 CPU tensor, read in place (no copy); `None` for other
/// devices, dtypes or layouts, where callers fall back to candle's ops.
fn cpu_f32<'a>(
    storage: &'a candle_core::Storage,
    layout: &candle_core::Layout,
) -> Option<&'a [f32]> {
    match storage {
        candle_core::Storage::Cpu(candle_core::CpuStorage::F32(v)) => {
            let (start, end) = layout.contiguous_offsets()?;
            v.get(start..end)
        }
        _ => None,
    }
}

/// GroupNorm with 32 groups and the given epsilon.
pub(crate) fn group_norm(w: &Weights<'_>, channels: usize, eps: f64) -> Result<GroupNorm32> {
    let weight = w.get("weight", &[channels])?;
    let bias = w.get("bias", &[channels])?;
    let affine = (
        weight.to_dtype(DType::F32)?.to_vec1::<f32>()?,
        bias.to_dtype(DType::F32)?.to_vec1::<f32>()?,
    );
    Ok(GroupNorm32 { inner: GroupNorm::new(weight, bias, channels, GROUPS, eps)?, affine, eps })
}

const GROUPS: usize = 32;

/// GroupNorm (32 groups), with a CPU f32 path that normalises, applies the affine and
/// optionally SiLU in one pass into one new tensor: candle's version makes four full-size
/// intermediates, and at VAE resolutions (134 MB each at 512²·128 channels) their page faults
/// cost as much as the arithmetic.
pub(crate) struct GroupNorm32 {
    inner: GroupNorm,
    /// γ and β as f32, for the fused path.
    affine: (Vec<f32>, Vec<f32>),
    eps: f64,
}

impl GroupNorm32 {
    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self.fused(x, false)? {
            Some(y) => Ok(y),
            None => Ok(self.inner.forward(x)?),
        }
    }

    /// `silu(group_norm(x))`, the pre-activation of every residual block.
    pub(crate) fn forward_silu(&self, x: &Tensor) -> Result<Tensor> {
        match self.fused(x, true)? {
            Some(y) => Ok(y),
            None => Ok(self.inner.forward(x)?.silu()?),
        }
    }

    /// The one-pass CPU f32 path over NCHW input (each group's channels are one contiguous
    /// run); `None` when it does not apply.
    fn fused(&self, x: &Tensor, silu: bool) -> Result<Option<Tensor>> {
        let (gamma, beta) = &self.affine;
        let dims = x.dims();
        let (Some(&batch), Some(&channels)) = (dims.first(), dims.get(1)) else {
            return Ok(None);
        };
        if !x.device().is_cpu()
            || x.dtype() != DType::F32
            || channels != gamma.len()
            || channels % GROUPS != 0
            || batch == 0
        {
            return Ok(None);
        }
        let x = x.contiguous()?;
        let (storage, layout) = x.storage_and_layout();
        let Some(input) = cpu_f32(&storage, layout) else { return Ok(None) };
        let per_channel = input.len() / (batch * channels);
        let per_group = per_channel * (channels / GROUPS);
        if per_group == 0 || input.len() != batch * channels * per_channel {
            return Ok(None);
        }
        let mut output = vec![0f32; input.len()];
        let eps = self.eps;
        output.par_chunks_mut(per_group).zip(input.par_chunks(per_group)).enumerate().for_each(
            |(bg, (out, inp))| {
                #[allow(clippy::cast_precision_loss, reason = "group sizes are far below 2^52")]
                let n = inp.len() as f64;
                let mean = inp.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
                let var = inp.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n;
                #[allow(clippy::cast_possible_truncation, reason = "back to the tensor's f32")]
                let (mean, rstd) = (mean as f32, (1.0 / (var + eps).sqrt()) as f32);
                let first_channel = (bg % GROUPS) * (channels / GROUPS);
                for (c, (o, i)) in
                    out.chunks_mut(per_channel).zip(inp.chunks(per_channel)).enumerate()
                {
                    let g = gamma.get(first_channel + c).copied().unwrap_or(1.0) * rstd;
                    let b = beta.get(first_channel + c).copied().unwrap_or(0.0);
                    if silu {
                        for (o, &i) in o.iter_mut().zip(i) {
                            let y = (i - mean) * g + b;
                            *o = y / (1.0 + exp_f32(-y));
                        }
                    } else {
                        for (o, &i) in o.iter_mut().zip(i) {
                            *o = (i - mean) * g + b;
                        }
                    }
                }
            },
        );
        Ok(Some(Tensor::from_vec(output, dims, x.device())?))
    }
}

/// LayerNorm with eps 1e-5 (every LayerNorm in these models).
pub(crate) fn layer_norm(w: &Weights<'_>, channels: usize) -> Result<LayerNorm> {
    let weight = w.get("weight", &[channels])?;
    let bias = w.get("bias", &[channels])?;
    Ok(LayerNorm::new(weight, bias, 1e-5))
}

/// Elements of one block of attention scores (16 MiB of f32): bounds memory at any image size,
/// and stays under the allocator's mmap threshold so blocks reuse the same memory (no faults).
const SCORE_BLOCK_ELEMENTS: usize = 4 * 1024 * 1024;

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
        let probs = softmax_last_dim(scores)?;
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

/// Softmax over the last dimension. A contiguous f32 CPU tensor (a block of fresh attention
/// scores, owned here) is turned into probabilities in place, with an exp the compiler can
/// vectorise; anything else goes through candle.
fn softmax_last_dim(scores: Tensor) -> Result<Tensor> {
    let cols = scores.dims().last().copied().unwrap_or(0);
    if scores.device().is_cpu()
        && scores.dtype() == DType::F32
        && scores.is_contiguous()
        && cols > 0
    {
        scores.inplace_op1(&SoftmaxRows { cols })?;
        return Ok(scores);
    }
    Ok(candle_nn::ops::softmax_last_dim(&scores)?)
}

/// In-place softmax of contiguous f32 rows of `cols` values.
struct SoftmaxRows {
    cols: usize,
}

impl candle_core::InplaceOp1 for SoftmaxRows {
    fn name(&self) -> &'static str {
        "softmax-rows-in-place"
    }

    fn cpu_fwd(
        &self,
        storage: &mut candle_core::CpuStorage,
        layout: &candle_core::Layout,
    ) -> candle_core::Result<()> {
        let candle_core::CpuStorage::F32(data) = storage else {
            return Err(candle_core::Error::Msg("softmax-rows-in-place takes f32".into()));
        };
        let rows = layout
            .contiguous_offsets()
            .and_then(|(a, b)| data.get_mut(a..b))
            .filter(|d| d.len() % self.cols == 0);
        let Some(rows) = rows else {
            return Err(candle_core::Error::Msg(
                "softmax-rows-in-place takes whole contiguous rows".into(),
            ));
        };
        rows.par_chunks_mut(self.cols).for_each(softmax_row);
        Ok(())
    }
}

/// Lanes of the partial max/sum, so the reductions vectorise (float reductions are not
/// reassociated by the compiler on its own).
const LANES: usize = 16;

fn softmax_row(row: &mut [f32]) {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (m, v) in lanes.iter_mut().zip(chunk) {
            *m = m.max(*v);
        }
    }
    let max = chunks.remainder().iter().chain(&lanes).fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    for v in row.iter_mut() {
        *v = exp_f32(*v - max);
    }
    let mut sums = [0f32; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (s, v) in sums.iter_mut().zip(chunk) {
            *s += *v;
        }
    }
    let sum = chunks.remainder().iter().sum::<f32>() + sums.iter().sum::<f32>();
    for v in row.iter_mut() {
        *v /= sum;
    }
}

/// `e^x` in f32 without a libm call, so loops over it vectorise: Cephes' `expf` (range reduction
/// by ln 2 in two parts, degree-5 polynomial, about 1 ulp), 0 below the smallest normal result
/// (masked scores of −∞ included).
#[inline(always)]
fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    /// 1.5·2²³: adding and subtracting it rounds to the nearest integer in plain arithmetic.
    const ROUND: f32 = 12_582_912.0;
    const MIN_X: f32 = -87.336_55;
    const MAX_X: f32 = 88.376_26;
    let clamped = x.clamp(MIN_X, MAX_X);
    let n = (clamped * LOG2E + ROUND) - ROUND;
    let r = clamped - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    #[allow(clippy::cast_possible_truncation, reason = "n is a whole number in -126..=127")]
    let exponent = (n as i32 + 127) as u32;
    let y = e * f32::from_bits(exponent << 23);
    if x < MIN_X { 0.0 } else { y }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test")]
    use super::*;

    #[test]
    fn exp_f32_is_within_a_few_ulp_of_libm() {
        let mut worst = 0f32;
        let mut x = -87.0f32;
        while x < 88.0 {
            let (got, want) = (exp_f32(x), x.exp());
            worst = worst.max((got - want).abs() / want);
            x += 0.0137;
        }
        assert!(worst < 3e-7, "relative error {worst}");
        assert_eq!(exp_f32(0.0), 1.0);
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_f32(-200.0), 0.0);
    }

    #[test]
    fn fused_group_norm_matches_candle() {
        let dev = Device::Cpu;
        let channels = 64;
        let weight = Tensor::randn(1f32, 0.3, channels, &dev).unwrap();
        let bias = Tensor::randn(0f32, 0.3, channels, &dev).unwrap();
        let gn = GroupNorm32 {
            inner: GroupNorm::new(weight.clone(), bias.clone(), channels, GROUPS, 1e-6).unwrap(),
            affine: (weight.to_vec1().unwrap(), bias.to_vec1().unwrap()),
            eps: 1e-6,
        };
        let x = (Tensor::randn(0f32, 2.0, (2, channels, 7, 9), &dev).unwrap() + 0.5).unwrap();
        let max_diff = |a: &Tensor, b: &Tensor| -> f32 {
            (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar().unwrap()
        };
        let want = gn.inner.forward(&x).unwrap();
        assert!(max_diff(&gn.forward(&x).unwrap(), &want) < 2e-5);
        let want_silu = want.silu().unwrap();
        assert!(max_diff(&gn.forward_silu(&x).unwrap(), &want_silu) < 2e-5);
    }

    #[test]
    fn in_place_softmax_matches_candle() {
        let scores = Tensor::randn(0f32, 4.0, (3, 5, 37), &Device::Cpu).unwrap();
        let want = candle_nn::ops::softmax_last_dim(&scores).unwrap();
        let got = softmax_last_dim(scores.copy().unwrap()).unwrap();
        let diff: f32 =
            (got - &want).unwrap().abs().unwrap().max_all().unwrap().to_scalar().unwrap();
        assert!(diff < 1e-6, "{diff}");
        // A masked key (−∞) gets exactly zero probability.
        let masked = Tensor::new(&[[0f32, f32::NEG_INFINITY, 1.0]], &Device::Cpu).unwrap();
        let p = softmax_last_dim(masked).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(p[0][1], 0.0);
        assert!((p[0][0] + p[0][2] - 1.0).abs() < 1e-6);
    }
}
