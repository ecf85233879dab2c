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
    /// The bias as f32 values, for the CPU path (read once here, not on every call).
    bias_f32: Option<Vec<f32>>,
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
        let bias_f32 = match &bias {
            Some(b) => Some(b.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?),
            None => None,
        };
        Ok(Self { weight_t, bias, bias_f32, out_features })
    }

    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_residual(x, None)
    }

    /// `forward(x) + residual` (`residual` has the output's shape); on CPU f32 the product is
    /// accumulated onto the residual, so a transformer block's skip additions cost no pass.
    pub(crate) fn forward_residual(&self, x: &Tensor, residual: Option<&Tensor>) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let inp = x.dim(D::Minus1)?;
        let rows = x.elem_count() / inp.max(1);
        if let Some(y) = self.forward_cpu_f32(x, rows, inp, residual)? {
            let mut out_dims = dims;
            if let Some(last) = out_dims.last_mut() {
                *last = self.out_features;
            }
            return Ok(y.reshape(out_dims)?);
        }
        let y = x.reshape((rows, inp))?.matmul(&self.weight_t)?;
        let y = match &self.bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        };
        let mut out_dims = dims;
        if let Some(last) = out_dims.last_mut() {
            *last = self.out_features;
        }
        let y = y.reshape(out_dims)?;
        Ok(match residual {
            Some(r) => (y + r)?,
            None => y,
        })
    }
}

impl Linear {
    /// The CPU f32 product written once: the output starts as the bias rows and the product is
    /// accumulated onto them, instead of a product followed by a broadcast add into a second
    /// full-size tensor.
    fn forward_cpu_f32(
        &self,
        x: &Tensor,
        rows: usize,
        inp: usize,
        residual: Option<&Tensor>,
    ) -> Result<Option<Tensor>> {
        use crate::matmul::{Mat, MatMut, Threads, matmul};
        if !x.device().is_cpu()
            || x.dtype() != DType::F32
            || self.weight_t.dtype() != DType::F32
            || residual.is_some_and(|r| {
                r.dtype() != DType::F32 || r.elem_count() != rows * self.out_features
            })
        {
            return Ok(None);
        }
        let residual = residual.map(Tensor::contiguous).transpose()?;
        let residual_storage = residual.as_ref().map(Tensor::storage_and_layout);
        let residual_values = match &residual_storage {
            Some((storage, layout)) => match cpu_f32(storage, layout) {
                Some(values) => Some(values),
                None => return Ok(None),
            },
            None => None,
        };
        let x = x.contiguous()?;
        let (x_storage, x_layout) = x.storage_and_layout();
        let (w_storage, w_layout) = self.weight_t.storage_and_layout();
        let (Some(input), Some(weight)) =
            (cpu_f32(&x_storage, x_layout), cpu_f32(&w_storage, w_layout))
        else {
            return Ok(None);
        };
        let out = self.out_features;
        let mut output = vec![0f32; rows * out];
        let bias = self.bias_f32.as_deref();
        if bias.is_some_and(|b| b.len() != out) {
            return Ok(None);
        }
        let accumulate = match (bias, residual_values) {
            (Some(bias), Some(residual)) => {
                output.par_chunks_mut(out).zip(residual.par_chunks(out)).for_each(|(row, r)| {
                    row.iter_mut().zip(bias).zip(r).for_each(|((o, b), r)| *o = b + r);
                });
                true
            }
            (Some(bias), None) => {
                output.par_chunks_mut(out).for_each(|row| row.copy_from_slice(bias));
                true
            }
            (None, Some(residual)) => {
                output.par_chunks_mut(out).zip(residual.par_chunks(out)).for_each(|(row, r)| {
                    row.copy_from_slice(r);
                });
                true
            }
            (None, None) => false,
        };
        matmul(
            MatMut::row_major(&mut output, rows, out)?,
            Mat::new(input, rows, inp, inp, 1)?,
            Mat::new(weight, inp, out, out, 1)?,
            1.0,
            accumulate,
            Threads::Pool,
        )?;
        Ok(Some(Tensor::from_vec(output, (rows, out), &Device::Cpu)?))
    }
}

/// 2-D convolution with bias.
#[derive(Clone)]
pub(crate) struct Conv2d {
    inner: candle_nn::Conv2d,
    /// The kernel as a `[c_out, c_in·k·k]` matrix for the im2col path.
    weight_2d: Tensor,
    /// The bias as f32 values (zeros without one), for the CPU paths.
    bias_f32: Vec<f32>,
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
        let bias_f32 = bias.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        Ok(Self {
            inner: candle_nn::Conv2d::new(weight, Some(bias), config),
            weight_2d,
            bias_f32,
            kernel,
            stride,
            padding,
        })
    }

    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_add(x, None, None)
    }

    /// `conv(x) + channel_add + residual`, with the additions made while the convolution's
    /// result is written (CPU f32, stride 1), so a residual block makes no separate full-size
    /// passes for its time embedding and its skip connection. `channel_add`: `[B, c_out]`;
    /// `residual`: the output's shape.
    pub(crate) fn forward_add(
        &self,
        x: &Tensor,
        channel_add: Option<&Tensor>,
        residual: Option<&Tensor>,
    ) -> Result<Tensor> {
        if x.device().is_cpu() && x.dtype() == DType::F32 && self.stride == 1 {
            let channel_add = match channel_add {
                Some(t) => Some(t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?),
                None => None,
            };
            let residual = residual.map(Tensor::contiguous).transpose()?;
            let residual_storage = residual.as_ref().map(Tensor::storage_and_layout);
            let residual_values = match &residual_storage {
                Some((storage, layout)) => match cpu_f32(storage, layout) {
                    Some(values) => Some(values),
                    None => {
                        return self.forward_then_add(
                            x,
                            channel_add_tensor(channel_add.as_deref(), x)?,
                            residual.as_ref(),
                        );
                    }
                },
                None => None,
            };
            let extras = Additions { channel: channel_add.as_deref(), residual: residual_values };
            let (_, c_in, height, width) = x.dims4()?;
            if self.kernel == 1 && self.padding == 0 {
                return self.forward_pointwise(x, &extras);
            }
            if self.shifted_is_faster(c_in, height, width)? {
                return self.forward_shifted_with(x, &extras, 1);
            }
        }
        let channel_add = match channel_add {
            Some(t) => Some(t.unsqueeze(2)?.unsqueeze(3)?),
            None => None,
        };
        self.forward_then_add(x, channel_add, residual)
    }

    fn forward_then_add(
        &self,
        x: &Tensor,
        channel_add: Option<Tensor>,
        residual: Option<&Tensor>,
    ) -> Result<Tensor> {
        let mut y = if x.device().is_cpu() && x.dtype() == DType::F32 && self.kernel > 1 {
            self.forward_im2col(x)?
        } else {
            self.inner.forward(x)?
        };
        if let Some(add) = channel_add {
            y = y.broadcast_add(&add.to_dtype(y.dtype())?)?;
        }
        if let Some(residual) = residual {
            y = (y + residual)?;
        }
        Ok(y)
    }

    /// A 1×1 convolution as one matrix product per image read straight from the NCHW input,
    /// the output starting as bias (plus additions) and the product accumulated onto it.
    fn forward_pointwise(&self, x: &Tensor, extras: &Additions<'_>) -> Result<Tensor> {
        use crate::matmul::{Mat, MatMut, Threads, matmul};
        let (batch, c_in, height, width) = x.dims4()?;
        let c_out = self.weight_2d.dim(0)?;
        let plane = height * width;
        let x = x.contiguous()?;
        let weight = self.weight_2d.contiguous()?;
        let (storage, layout) = x.storage_and_layout();
        let (w_storage, w_layout) = weight.storage_and_layout();
        let (Some(input), Some(kernel)) =
            (cpu_f32(&storage, layout), cpu_f32(&w_storage, w_layout))
        else {
            return self.forward_then_add(&x, None, None);
        };
        if self.weight_2d.dim(1)? != c_in || !extras.fits(batch, c_out, plane) {
            return Err(crate::SdError::Candle(candle_core::Error::Msg(
                "1×1 convolution of mismatched shapes".into(),
            )));
        }
        let bias = &self.bias_f32;
        let mut output = vec![0f32; batch * c_out * plane];
        output.par_chunks_mut(plane).enumerate().for_each(|(i, out_plane)| {
            let (image, co) = (i / c_out.max(1), i % c_out.max(1));
            let add = bias.get(co).copied().unwrap_or(0.0) + extras.channel_value(image, co, c_out);
            match extras.residual.and_then(|r| r.get(i * plane..(i + 1) * plane)) {
                Some(r) => out_plane.iter_mut().zip(r).for_each(|(o, r)| *o = add + r),
                None => out_plane.fill(add),
            }
        });
        for (image, out_image) in
            input.chunks_exact(c_in * plane).zip(output.chunks_exact_mut(c_out * plane))
        {
            matmul(
                MatMut::row_major(out_image, c_out, plane)?,
                Mat::new(kernel, c_out, c_in, c_in, 1)?,
                Mat::new(image, c_in, plane, plane, 1)?,
                1.0,
                true,
                Threads::Pool,
            )?;
        }
        Ok(Tensor::from_vec(output, (batch, c_out, height, width), &Device::Cpu)?)
    }

    /// A stride-1 convolution as k² accumulated matrix products over shifted views of one
    /// zero-padded strip of input rows, with no patch matrix at all.
    ///
    /// With the strip stored at the padded width `Wp`, the input under kernel tap `(ky, kx)`
    /// for every output pixel of the tile is the strip read from offset `ky·Wp + kx` on: a plain
    /// `[c_in, rows·Wp]` view. The products therefore run over `rows·Wp` "virtual" output
    /// columns, of which the last `k − 1` per row straddle two rows and are dropped when the
    /// tile is copied (with the bias) into the NCHW output. Each strip is copied from the input
    /// once, where im2col writes and re-reads k² copies of it.
    ///
    /// Strips hold about [`STRIP_ELEMENTS`] values (in a core's cache while the k² products
    /// read them) and at least one output row.
    pub(crate) fn forward_shifted(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_shifted_with(x, &Additions::default(), 1)
    }

    /// Whether [`Self::forward_shifted`] can convolve a `c_in × height × width` input.
    fn shifted_fits(&self, c_in: usize, height: usize, width: usize) -> Result<bool> {
        let (k, pad) = (self.kernel, self.padding);
        Ok(self.stride == 1
            && k > 1
            && self.weight_2d.dim(1)? == c_in * k * k
            && height + 2 * pad >= k
            && width + 2 * pad >= k)
    }

    /// Whether the shifted path is the faster one here: from 48 pixels wide on (`bench conv`:
    /// 10–40 % faster at 64²–512²; even at 32², and up to 2× slower at 16², where im2col's one
    /// deep product beats k² shallow ones).
    fn shifted_is_faster(&self, c_in: usize, height: usize, width: usize) -> Result<bool> {
        const MIN_WIDTH: usize = 48;
        Ok(width >= MIN_WIDTH && self.shifted_fits(c_in, height, width)?)
    }

    /// The convolution of `x` upsampled 2× by nearest neighbour (the VAE decoder's and the
    /// UNet's upsamplers), without making the 4× larger upsampled tensor: the strips are filled
    /// from the small input directly.
    pub(crate) fn forward_upsampled_2x(&self, x: &Tensor) -> Result<Tensor> {
        let (_, c_in, h, w) = x.dims4()?;
        if x.device().is_cpu()
            && x.dtype() == DType::F32
            && self.shifted_is_faster(c_in, 2 * h, 2 * w)?
        {
            return self.forward_shifted_with(x, &Additions::default(), 2);
        }
        self.forward(&x.upsample_nearest2d(2 * h, 2 * w)?)
    }

    /// `upsample`: 1, or 2 to convolve the nearest-neighbour 2× upsampling of `x`.
    fn forward_shifted_with(
        &self,
        x: &Tensor,
        extras: &Additions<'_>,
        upsample: usize,
    ) -> Result<Tensor> {
        use crate::matmul::{Mat, MatMut, Threads, matmul};
        const STRIP_ELEMENTS: usize = 512 * 1024;
        let (batch, c_in, src_h, src_w) = x.dims4()?;
        let (height, width) = (src_h * upsample, src_w * upsample);
        let (k, pad) = (self.kernel, self.padding);
        let c_out = self.weight_2d.dim(0)?;
        if !self.shifted_fits(c_in, height, width)? || !(upsample == 1 || upsample == 2) {
            return Err(crate::SdError::Candle(candle_core::Error::Msg(
                "shifted convolution of mismatched shapes".into(),
            )));
        }
        let (padded_w, out_h, out_w) =
            (width + 2 * pad, height + 2 * pad + 1 - k, width + 2 * pad + 1 - k);
        let x = x.contiguous()?;
        let (storage, layout) = x.storage_and_layout();
        let weight = self.weight_2d.contiguous()?;
        let (w_storage, w_layout) = weight.storage_and_layout();
        let (Some(input), Some(kernel)) =
            (cpu_f32(&storage, layout), cpu_f32(&w_storage, w_layout))
        else {
            return Err(crate::SdError::Candle(candle_core::Error::Msg(
                "convolution input is not contiguous f32".into(),
            )));
        };
        if !extras.fits(batch, c_out, out_h * out_w) {
            return Err(crate::SdError::Candle(candle_core::Error::Msg(
                "convolution additions of mismatched shapes".into(),
            )));
        }
        // The kernel regrouped tap-major (`[k², c_out, c_in]`), so each tap's product reads a
        // contiguous matrix: gathering it with a stride of k² on every product costs more than
        // the product itself on small images. Once per call; small beside the products here.
        let taps = k * k;
        let mut kernel_taps = vec![0f32; kernel.len()];
        kernel_taps.par_chunks_mut(c_out * c_in).enumerate().for_each(|(tap, dst)| {
            for (d, src) in dst.iter_mut().zip(kernel.iter().skip(tap).step_by(taps)) {
                *d = *src;
            }
        });
        let bias = &self.bias_f32;
        let plane = src_h * src_w;
        let rows_per_tile =
            (STRIP_ELEMENTS / (c_in * padded_w).max(1)).saturating_sub(k - 1).clamp(1, out_h);
        let out_plane_len = out_h * out_w;
        let mut output = vec![0f32; batch * c_out * out_plane_len];
        // One task per image and block of output channels, each with its own strip and tile
        // and single-threaded products: no synchronisation inside the convolution (the
        // products are large enough on their own), and each task's output planes are one
        // contiguous run.
        let threads = rayon::current_num_threads().max(1);
        let blocks_per_image = threads.div_ceil(batch.max(1)).clamp(1, (c_out / 16).max(1));
        let block_channels = c_out.div_ceil(blocks_per_image);
        let mut tasks = Vec::new();
        for (image_index, out_image) in output.chunks_mut(c_out * out_plane_len).enumerate() {
            for (block, out_block) in
                out_image.chunks_mut(block_channels * out_plane_len).enumerate()
            {
                tasks.push((image_index, block * block_channels, out_block));
            }
        }
        tasks.into_par_iter().try_for_each_init(
            || (Vec::new(), Vec::new()),
            |(strip, tile): &mut (Vec<f32>, Vec<f32>), (image_index, co0, out_block)| {
                let image = input.get(image_index * c_in * plane..(image_index + 1) * c_in * plane);
                let image = image.unwrap_or_default();
                let channels = out_block.len() / out_plane_len.max(1);
                let mut row0 = 0;
                while row0 < out_h {
                    let rows = rows_per_tile.min(out_h - row0);
                    // Input rows row0 − pad .. row0 − pad + rows + k − 1, zero outside the
                    // image, plus k − 1 values so the last tap's view of the last channel
                    // stays inside.
                    let strip_plane = (rows + k - 1) * padded_w;
                    strip.clear();
                    strip.resize(c_in * strip_plane + k - 1, 0.0);
                    for (c, dst) in strip.chunks_mut(strip_plane).take(c_in).enumerate() {
                        let src = image.get(c * plane..(c + 1) * plane).unwrap_or_default();
                        fill_strip_rows(
                            dst,
                            src,
                            row0,
                            pad,
                            (src_w, height, width, padded_w),
                            upsample,
                        );
                    }
                    let columns = rows * padded_w;
                    tile.resize(channels * columns, 0.0);
                    for tap in 0..k * k {
                        let (ky, kx) = (tap / k, tap % k);
                        let shifted = strip.get(ky * padded_w + kx..).unwrap_or_default();
                        let taps_block = kernel_taps.get((tap * c_out + co0) * c_in..);
                        matmul(
                            MatMut::row_major(tile, channels, columns)?,
                            Mat::new(taps_block.unwrap_or_default(), channels, c_in, c_in, 1)?,
                            Mat::new(shifted, c_in, columns, strip_plane, 1)?,
                            1.0,
                            tap > 0,
                            Threads::One,
                        )?;
                    }
                    for (c, (out_plane, values)) in
                        out_block.chunks_mut(out_plane_len).zip(tile.chunks(columns)).enumerate()
                    {
                        let co = co0 + c;
                        let add = bias.get(co).copied().unwrap_or(0.0)
                            + extras.channel_value(image_index, co, c_out);
                        let span = row0 * out_w..(row0 + rows) * out_w;
                        let plane_start = (image_index * c_out + co) * out_plane_len;
                        let residual = extras
                            .residual
                            .and_then(|r| r.get(plane_start + span.start..plane_start + span.end));
                        let dst = out_plane.get_mut(span).unwrap_or_default();
                        vectorised(TileRowsOut { dst, values, residual, add, out_w, padded_w });
                    }
                    row0 += rows;
                }
                Ok::<(), crate::SdError>(())
            },
        )?;
        Ok(Tensor::from_vec(output, (batch, c_out, out_h, out_w), x.device())?)
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
        let bias = &self.bias_f32;
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
                for ((co, values), b) in values.chunks_exact(pixels).enumerate().zip(bias) {
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

/// Fills one channel of a convolution strip: strip row r is input row `row0 + r − pad` (of the
/// 2×-upsampled input when `upsample` is 2), placed `pad` values in, zero outside the image.
/// `dims`: (source width, height, width, padded width).
fn fill_strip_rows(
    dst: &mut [f32],
    src: &[f32],
    row0: usize,
    pad: usize,
    (src_w, height, width, padded_w): (usize, usize, usize, usize),
    upsample: usize,
) {
    for (r, dst_row) in dst.chunks_exact_mut(padded_w).enumerate() {
        let Some(iy) = (row0 + r).checked_sub(pad).filter(|&iy| iy < height) else {
            continue;
        };
        let sy = iy / upsample.max(1);
        let (Some(d), Some(s)) =
            (dst_row.get_mut(pad..pad + width), src.get(sy * src_w..(sy + 1) * src_w))
        else {
            continue;
        };
        if upsample == 1 {
            d.copy_from_slice(s);
        } else {
            for (pair, &v) in d.chunks_exact_mut(2).zip(s) {
                pair.fill(v);
            }
        }
    }
}

/// Copies one output channel's rows out of a shifted-convolution tile (rows of `padded_w`
/// values, the last ones straddling two rows and dropped), adding `add` and the residual.
struct TileRowsOut<'a> {
    dst: &'a mut [f32],
    values: &'a [f32],
    residual: Option<&'a [f32]>,
    add: f32,
    out_w: usize,
    padded_w: usize,
}

impl pulp::WithSimd for TileRowsOut<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let Self { dst, values, residual, add, out_w, padded_w } = self;
        let rows = dst.chunks_exact_mut(out_w.max(1)).zip(values.chunks(padded_w.max(1)));
        match residual {
            Some(residual) => {
                for ((d, v), r) in rows.zip(residual.chunks_exact(out_w.max(1))) {
                    for ((d, v), r) in d.iter_mut().zip(v).zip(r) {
                        *d = v + add + r;
                    }
                }
            }
            None => {
                for (d, v) in rows {
                    d.iter_mut().zip(v).for_each(|(d, v)| *d = v + add);
                }
            }
        }
    }
}

/// What [`Conv2d::forward_add`] adds to a CPU f32 convolution's result as it writes it.
#[derive(Default)]
struct Additions<'a> {
    /// `[B, c_out]`, one value per image and output channel.
    channel: Option<&'a [f32]>,
    /// `[B, c_out, H, W]`, the output's shape.
    residual: Option<&'a [f32]>,
}

impl Additions<'_> {
    fn fits(&self, batch: usize, c_out: usize, plane: usize) -> bool {
        self.channel.is_none_or(|c| c.len() == batch * c_out)
            && self.residual.is_none_or(|r| r.len() == batch * c_out * plane)
    }

    fn channel_value(&self, image: usize, co: usize, c_out: usize) -> f32 {
        self.channel.and_then(|c| c.get(image * c_out + co)).copied().unwrap_or(0.0)
    }
}

/// `[B, c_out]` values as a `[B, c_out, 1, 1]` tensor for the broadcasting fallback.
fn channel_add_tensor(values: Option<&[f32]>, x: &Tensor) -> Result<Option<Tensor>> {
    let Some(values) = values else { return Ok(None) };
    let batch = x.dim(0)?;
    let c_out = values.len() / batch.max(1);
    Ok(Some(Tensor::from_vec(values.to_vec(), (batch, c_out, 1, 1), x.device())?))
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

/// Runs a kernel compiled for the widest vector unit this CPU has (AVX-512 or AVX2+FMA on
/// x86-64, detected at run time by pulp, the dispatcher gemm uses). The crate is built for
/// baseline x86-64, where these loops would get 4-wide SSE. Each kernel is a struct whose
/// `with_simd` and helpers are `#[inline(always)]`, so their loops are compiled inside the
/// dispatched, feature-enabled function (a closure body would stay a baseline function).
#[inline(always)]
fn vectorised<K: pulp::WithSimd>(kernel: K) -> K::Output {
    pulp::Arch::new().dispatch(kernel)
}

/// One group of a GroupNorm: statistics in f64, then the affine and optionally SiLU; read from
/// `inp`, or from `out` itself (in place) when `inp` is `None`.
struct GroupNormGroup<'a> {
    out: &'a mut [f32],
    inp: Option<&'a [f32]>,
    /// γ and β of the group's channels.
    gamma: &'a [f32],
    beta: &'a [f32],
    per_channel: usize,
    eps: f64,
    silu: bool,
}

impl pulp::WithSimd for GroupNormGroup<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let Self { out, inp, gamma, beta, per_channel, eps, silu } = self;
        let (mean, rstd) = {
            let source = inp.unwrap_or(out);
            #[allow(clippy::cast_precision_loss, reason = "group sizes are far below 2^52")]
            let n = source.len() as f64;
            let mean = sum_f64(source, |v| v) / n;
            let var = sum_f64(source, |v| (v - mean) * (v - mean)) / n;
            #[allow(clippy::cast_possible_truncation, reason = "back to the tensor's f32")]
            (mean as f32, (1.0 / (var + eps).sqrt()) as f32)
        };
        let per_channel = per_channel.max(1);
        for (c, o) in out.chunks_mut(per_channel).enumerate() {
            let g = gamma.get(c).copied().unwrap_or(1.0) * rstd;
            let b = beta.get(c).copied().unwrap_or(0.0);
            let normalise = |v: f32| {
                let y = (v - mean) * g + b;
                if silu { y / (1.0 + exp_f32(-y)) } else { y }
            };
            match inp.and_then(|i| i.get(c * per_channel..c * per_channel + o.len())) {
                Some(i) => o.iter_mut().zip(i).for_each(|(o, &v)| *o = normalise(v)),
                None => o.iter_mut().for_each(|o| *o = normalise(*o)),
            }
        }
    }
}

/// Softmax of each `cols`-long row of `scores`; with `causal_row0`, row r (query
/// `causal_row0 + r`) first has its keys after the query masked out.
struct SoftmaxBlock<'a> {
    scores: &'a mut [f32],
    cols: usize,
    causal_row0: Option<usize>,
}

impl pulp::WithSimd for SoftmaxBlock<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        for (r, row) in self.scores.chunks_exact_mut(self.cols.max(1)).enumerate() {
            if let Some(row0) = self.causal_row0 {
                row.iter_mut().skip(row0 + r + 1).for_each(|s| *s = f32::NEG_INFINITY);
            }
            softmax_row(row);
        }
    }
}

/// `out[i] = f(inp[i])` (`f` an `#[inline(always)]` function).
struct MapValues<'a, F> {
    out: &'a mut [f32],
    inp: &'a [f32],
    f: F,
}

impl<F: Fn(f32) -> f32> pulp::WithSimd for MapValues<'_, F> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let f = self.f;
        self.out.iter_mut().zip(self.inp).for_each(|(o, &v)| *o = f(v));
    }
}

/// GEGLU over rows: each input row is `[value, gate]`, each output row `value · gelu(gate)`.
struct GegluRows<'a> {
    out: &'a mut [f32],
    inp: &'a [f32],
    half: usize,
}

impl pulp::WithSimd for GegluRows<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let half = self.half.max(1);
        for (out, row) in self.out.chunks_exact_mut(half).zip(self.inp.chunks_exact(2 * half)) {
            let (value, gate) = row.split_at(half);
            for ((o, &x), &g) in out.iter_mut().zip(value).zip(gate) {
                *o = x * gelu_erf_f32(g);
            }
        }
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

    /// [`Self::forward_silu`] written over `x`'s own values on CPU f32 (no new activation:
    /// at VAE sizes each fresh one is 134–268 MB of page faults). `x` must be a tensor nobody
    /// else holds, such as the output a convolution just returned.
    pub(crate) fn forward_silu_owned(&self, x: Tensor) -> Result<Tensor> {
        let Some((per_channel, per_group)) = self.fused_sizes(&x)? else {
            return self.forward_silu(&x);
        };
        if !x.is_contiguous() {
            return self.forward_silu(&x);
        }
        x.inplace_op1(&GroupNormInPlace { norm: self, per_channel, per_group })?;
        Ok(x)
    }

    /// (values per channel, values per group) when the fused CPU f32 path applies to `x`.
    fn fused_sizes(&self, x: &Tensor) -> Result<Option<(usize, usize)>> {
        let (gamma, _) = &self.affine;
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
        let per_channel = x.elem_count() / (batch * channels);
        let per_group = per_channel * (channels / GROUPS);
        if per_group == 0 || x.elem_count() != batch * channels * per_channel {
            return Ok(None);
        }
        Ok(Some((per_channel, per_group)))
    }

    /// Runs every group of the fused GroupNorm (+SiLU) over `values`, from `input` or in place.
    fn run_groups(
        &self,
        out: &mut [f32],
        input: Option<&[f32]>,
        per_channel: usize,
        per_group: usize,
        silu: bool,
    ) {
        let (gamma, beta) = &self.affine;
        let channels = gamma.len();
        let eps = self.eps;
        let groups = out.par_chunks_mut(per_group).enumerate();
        groups.for_each(|(bg, out)| {
            let first_channel = (bg % GROUPS) * (channels / GROUPS);
            let group_channels = first_channel..first_channel + channels / GROUPS;
            let inp = input.and_then(|i| i.get(bg * per_group..(bg + 1) * per_group));
            vectorised(GroupNormGroup {
                out,
                inp,
                gamma: gamma.get(group_channels.clone()).unwrap_or_default(),
                beta: beta.get(group_channels).unwrap_or_default(),
                per_channel,
                eps,
                silu,
            });
        });
    }

    /// The one-pass CPU f32 path over NCHW input (each group's channels are one contiguous
    /// run); `None` when it does not apply.
    fn fused(&self, x: &Tensor, silu: bool) -> Result<Option<Tensor>> {
        let Some((per_channel, per_group)) = self.fused_sizes(x)? else {
            return Ok(None);
        };
        let x = x.contiguous()?;
        let (storage, layout) = x.storage_and_layout();
        let Some(input) = cpu_f32(&storage, layout) else { return Ok(None) };
        let mut output = vec![0f32; input.len()];
        self.run_groups(&mut output, Some(input), per_channel, per_group, silu);
        Ok(Some(Tensor::from_vec(output, x.dims(), x.device())?))
    }
}

/// The in-place GroupNorm + SiLU of [`GroupNorm32::forward_silu_owned`].
struct GroupNormInPlace<'a> {
    norm: &'a GroupNorm32,
    per_channel: usize,
    per_group: usize,
}

impl candle_core::InplaceOp1 for GroupNormInPlace<'_> {
    fn name(&self) -> &'static str {
        "group-norm-silu-in-place"
    }

    fn cpu_fwd(
        &self,
        storage: &mut candle_core::CpuStorage,
        layout: &candle_core::Layout,
    ) -> candle_core::Result<()> {
        let values = contiguous_f32_mut(storage, layout, self.name())?;
        self.norm.run_groups(values, None, self.per_channel, self.per_group, true);
        Ok(())
    }
}

/// `Σ f(v)` over f32 values in f64, in independent lanes so the reduction vectorises (the
/// compiler does not reorder a single float sum by itself).
#[inline(always)]
fn sum_f64(values: &[f32], f: impl Fn(f64) -> f64) -> f64 {
    const F64_LANES: usize = 8;
    let mut lanes = [0f64; F64_LANES];
    let mut chunks = values.chunks_exact(F64_LANES);
    for chunk in &mut chunks {
        for (l, &v) in lanes.iter_mut().zip(chunk) {
            *l += f(f64::from(v));
        }
    }
    chunks.remainder().iter().map(|&v| f(f64::from(v))).sum::<f64>() + lanes.iter().sum::<f64>()
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
    let (batch, _, width) = q.dims3()?;
    let head_dim = width / heads.max(1);
    if q.device().is_cpu()
        && [q, k, v].iter().all(|t| t.dtype() == DType::F32)
        && head_dim * heads == width
        && k.dims() == v.dims()
        && k.dim(0)? == batch
        && k.dim(2)? == width
    {
        return attention_cpu_f32(q, k, v, heads, causal);
    }
    attention_tensors(q, k, v, heads, causal)
}

/// [`attention`] in candle tensor operations, for every device and dtype: heads copied apart,
/// query blocks bounded by [`SCORE_BLOCK_ELEMENTS`].
pub(crate) fn attention_tensors(
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

/// Query rows per block of the CPU attention: a block's scores (`rows × keys`) stay near
/// [`CPU_SCORE_BLOCK_ELEMENTS`] (1 MiB, in a core's L2 cache while the softmax and the second
/// product read them back), with at least [`CPU_MIN_BLOCK_ROWS`] rows for the products' sake.
const CPU_SCORE_BLOCK_ELEMENTS: usize = 256 * 1024;
const CPU_MIN_BLOCK_ROWS: usize = 32;

/// [`attention`] on CPU f32 without a single copy of q, k or v: each head is a strided view of
/// the `[B, N, H·d]` activations, fed straight to the matrix products (the scale folded into
/// the first), the scores of one block of query rows live in a per-thread buffer, and each
/// head's output is written into its columns of the `[B, N, H·d]` result. One block of rows
/// (all heads) per task, so the threads never share a buffer or an output row.
fn attention_cpu_f32(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    heads: usize,
    causal: bool,
) -> Result<Tensor> {
    use crate::matmul::{Mat, MatMut, Threads, matmul};
    let (batch, n_q, width) = q.dims3()?;
    let n_k = k.dim(1)?;
    let head_dim = width / heads.max(1);
    let (q, k, v) = (q.contiguous()?, k.contiguous()?, v.contiguous()?);
    let (q_storage, q_layout) = q.storage_and_layout();
    let (k_storage, k_layout) = k.storage_and_layout();
    let (v_storage, v_layout) = v.storage_and_layout();
    let (Some(q_all), Some(k_all), Some(v_all)) = (
        cpu_f32(&q_storage, q_layout),
        cpu_f32(&k_storage, k_layout),
        cpu_f32(&v_storage, v_layout),
    ) else {
        return Err(crate::SdError::Candle(candle_core::Error::Msg(
            "attention inputs are not contiguous f32".into(),
        )));
    };
    #[allow(clippy::cast_precision_loss, reason = "head sizes are small integers")]
    let scale = 1.0 / (head_dim as f32).sqrt();
    let rows_per_block = (CPU_SCORE_BLOCK_ELEMENTS / n_k.max(1)).max(CPU_MIN_BLOCK_ROWS).min(n_q);
    let mut output = vec![0f32; batch * n_q * width];
    if n_q == 0 || n_k == 0 || width == 0 {
        return Ok(Tensor::from_vec(output, (batch, n_q, width), &Device::Cpu)?);
    }
    // (image, first query row, output rows of the block).
    let mut blocks = Vec::new();
    for (image, image_out) in output.chunks_mut(n_q * width).enumerate() {
        for (b, block_out) in image_out.chunks_mut(rows_per_block * width).enumerate() {
            blocks.push((image, b * rows_per_block, block_out));
        }
    }
    // With fewer blocks than threads, let each product use the pool instead.
    let threads =
        if blocks.len() >= rayon::current_num_threads() { Threads::One } else { Threads::Pool };
    blocks.into_par_iter().try_for_each_init(Vec::new, |scores: &mut Vec<f32>, block| {
        let (image, row0, block_out) = block;
        let rows = block_out.len() / width;
        scores.resize(rows * n_k, 0.0);
        let q_image = q_all.get(image * n_q * width..).unwrap_or_default();
        let k_image = k_all.get(image * n_k * width..).unwrap_or_default();
        let v_image = v_all.get(image * n_k * width..).unwrap_or_default();
        for head in 0..heads {
            let column = head * head_dim;
            let q_head = q_image.get(row0 * width + column..).unwrap_or_default();
            let k_head = k_image.get(column..).unwrap_or_default();
            let v_head = v_image.get(column..).unwrap_or_default();
            matmul(
                MatMut::row_major(scores, rows, n_k)?,
                Mat::new(q_head, rows, head_dim, width, 1)?,
                Mat::new(k_head, n_k, head_dim, width, 1)?.t(),
                scale,
                false,
                threads,
            )?;
            vectorised(SoftmaxBlock {
                scores: scores.as_mut_slice(),
                cols: n_k,
                causal_row0: causal.then_some(row0),
            });
            let out_head = block_out.get_mut(column..).unwrap_or_default();
            matmul(
                MatMut::new(out_head, rows, head_dim, width, 1)?,
                Mat::new(scores, rows, n_k, n_k, 1)?,
                Mat::new(v_head, n_k, head_dim, width, 1)?,
                1.0,
                false,
                threads,
            )?;
        }
        Ok::<(), crate::SdError>(())
    })?;
    Ok(Tensor::from_vec(output, (batch, n_q, width), &Device::Cpu)?)
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

/// The values an in-place CPU operation named `op` rewrites: a contiguous f32 layout.
fn contiguous_f32_mut<'a>(
    storage: &'a mut candle_core::CpuStorage,
    layout: &candle_core::Layout,
    op: &str,
) -> candle_core::Result<&'a mut [f32]> {
    let candle_core::CpuStorage::F32(data) = storage else {
        return Err(candle_core::Error::Msg(format!("{op} takes f32 values")));
    };
    layout
        .contiguous_offsets()
        .and_then(|(a, b)| data.get_mut(a..b))
        .ok_or_else(|| candle_core::Error::Msg(format!("{op} takes contiguous values")))
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
        let rows = contiguous_f32_mut(storage, layout, self.name())?;
        if rows.len() % self.cols != 0 {
            return Err(candle_core::Error::Msg(format!("{} takes whole rows", self.name())));
        }
        let block_rows = (16 * 1024 / self.cols).max(1);
        rows.par_chunks_mut(self.cols * block_rows).for_each(|scores| {
            vectorised(SoftmaxBlock { scores, cols: self.cols, causal_row0: None });
        });
        Ok(())
    }
}

/// Lanes of the partial max/sum, so the reductions vectorise (float reductions are not
/// reassociated by the compiler on its own).
const LANES: usize = 16;

#[inline(always)]
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
    let shifted = clamped * LOG2E + ROUND;
    let n = shifted - ROUND;
    let r = clamped - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    // n as an integer, read from the low mantissa bits of `shifted` (no float-to-int
    // conversion, whose saturating form does not vectorise), then 2ⁿ built as a float.
    let n_bits = shifted.to_bits().wrapping_sub(ROUND.to_bits());
    let y = e * f32::from_bits(n_bits.wrapping_add(127) << 23);
    if x < MIN_X { 0.0 } else { y }
}

fn causal_mask(n_q: usize, n_k: usize, dtype: DType, device: &Device) -> Result<Tensor> {
    let values: Vec<f32> = (0..n_q)
        .flat_map(|i| (0..n_k).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 }))
        .collect();
    Ok(Tensor::from_vec(values, (n_q, n_k), device)?.to_dtype(dtype)?)
}

/// GEGLU over the last dimension: the first half of `h` times the exact GELU of its second
/// half. On CPU f32 one pass writes the result (half the width) straight from `h`, with an erf
/// the compiler vectorises; candle's path makes two strided copies and calls libm's scalar
/// erf for every element.
pub(crate) fn geglu(h: &Tensor) -> Result<Tensor> {
    let width = h.dims().last().copied().unwrap_or(0);
    let half = width / 2;
    if h.device().is_cpu() && h.dtype() == DType::F32 && half > 0 && width % 2 == 0 {
        let h = h.contiguous()?;
        let (storage, layout) = h.storage_and_layout();
        if let Some(values) = cpu_f32(&storage, layout) {
            let mut output = vec![0f32; values.len() / 2];
            let block_rows = (16 * 1024 / width).max(1);
            output
                .par_chunks_mut(half * block_rows)
                .zip(values.par_chunks(width * block_rows))
                .for_each(|(out, inp)| vectorised(GegluRows { out, inp, half }));
            let mut dims = h.dims().to_vec();
            if let Some(last) = dims.last_mut() {
                *last = half;
            }
            return Ok(Tensor::from_vec(output, dims, &Device::Cpu)?);
        }
    }
    let axis = h.rank().saturating_sub(1);
    Ok((h.narrow(axis, 0, half)? * h.narrow(axis, half, half)?.gelu_erf()?)?)
}

/// `x · Φ(x)`, the exact (erf) GELU.
#[inline(always)]
fn gelu_erf_f32(x: f32) -> f32 {
    0.5 * x * (1.0 + erf_f32(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// `erf(x)` in f32 as a branch-free rational function (odd degree-13 over even degree-8
/// polynomial on [−4, 4], where erf reaches ±1 in f32), so loops over it vectorise; within
/// about 1e-7 of libm's `erff`.
#[inline(always)]
fn erf_f32(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = -2.726_142_3e-10_f32;
    p = p * x2 + 2.770_681_4e-8;
    p = p * x2 - 2.101_024e-6;
    p = p * x2 - 5.692_506_4e-5;
    p = p * x2 - 7.349_906_3e-4;
    p = p * x2 - 2.954_600_1e-3;
    p = p * x2 - 1.609_603_3e-2;
    let mut q = -1.456_607_2e-5_f32;
    q = q * x2 - 2.133_740_6e-4;
    q = q * x2 - 1.682_827e-3;
    q = q * x2 - 7.373_329e-3;
    q = q * x2 - 1.426_473_9e-2;
    x * p / q
}

/// `x · sigmoid(1.702 x)`, the activation of OpenAI's CLIP (Hugging Face layout).
pub(crate) fn quick_gelu(x: &Tensor) -> Result<Tensor> {
    if let Some(y) = map_cpu_f32(x, quick_gelu_f32)? {
        return Ok(y);
    }
    Ok((x * candle_nn::ops::sigmoid(&(x * 1.702)?)?)?)
}

#[inline(always)]
fn quick_gelu_f32(x: f32) -> f32 {
    x / (1.0 + exp_f32(-1.702 * x))
}

/// The exact (erf) GELU, the activation of OpenCLIP's text encoder.
pub(crate) fn gelu_erf(x: &Tensor) -> Result<Tensor> {
    if let Some(y) = map_cpu_f32(x, gelu_erf_f32)? {
        return Ok(y);
    }
    Ok(x.gelu_erf()?)
}

/// `f` applied to every value of a CPU f32 tensor in one parallel pass into a new tensor;
/// `None` for other devices and dtypes.
fn map_cpu_f32(x: &Tensor, f: impl Fn(f32) -> f32 + Sync) -> Result<Option<Tensor>> {
    if !x.device().is_cpu() || x.dtype() != DType::F32 {
        return Ok(None);
    }
    let x = x.contiguous()?;
    let (storage, layout) = x.storage_and_layout();
    let Some(values) = cpu_f32(&storage, layout) else {
        return Ok(None);
    };
    let mut output = vec![0f32; values.len()];
    const CHUNK: usize = 16 * 1024;
    output.par_chunks_mut(CHUNK).zip(values.par_chunks(CHUNK)).for_each(|(out, inp)| {
        vectorised(MapValues { out, inp, f: &f });
    });
    Ok(Some(Tensor::from_vec(output, x.dims(), &Device::Cpu)?))
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
        let owned = gn.forward_silu_owned(x.copy().unwrap()).unwrap();
        assert!(max_diff(&owned, &want_silu) < 2e-5);
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

    #[test]
    fn in_place_cpu_attention_matches_the_tensor_version() {
        let dev = Device::Cpu;
        // Self-attention with several blocks of rows (incl. a partial one), cross-attention
        // with few keys, one head of 512, and causal text attention.
        for (batch, n_q, n_k, width, heads, causal) in [
            (2, 700, 700, 64, 4, false),
            (2, 300, 77, 80, 2, false),
            (1, 130, 130, 512, 1, false),
            (2, 77, 77, 96, 3, true),
        ] {
            let q = Tensor::randn(0f32, 1.0, (batch, n_q, width), &dev).unwrap();
            let k = Tensor::randn(0f32, 1.0, (batch, n_k, width), &dev).unwrap();
            let v = Tensor::randn(0f32, 1.0, (batch, n_k, width), &dev).unwrap();
            let want = attention_tensors(&q, &k, &v, heads, causal).unwrap();
            let got = attention(&q, &k, &v, heads, causal).unwrap();
            let diff: f32 =
                (got - &want).unwrap().abs().unwrap().max_all().unwrap().to_scalar().unwrap();
            assert!(diff < 1e-5, "{batch}×{n_q}×{n_k}×{width}/{heads} causal {causal}: {diff}");
        }
    }

    #[test]
    fn vectorisable_gelu_and_geglu_match_candle() {
        let xs: Vec<f32> = (0..12_000).map(|i| -9.0 + i as f32 * 0.0015).collect();
        let want = Tensor::new(xs.as_slice(), &Device::Cpu).unwrap().gelu_erf().unwrap();
        for (x, want) in xs.iter().zip(want.to_vec1::<f32>().unwrap()) {
            let got = gelu_erf_f32(*x);
            assert!((got - want).abs() <= 4e-7 * x.abs().max(1.0), "gelu({x}) {got} vs {want}");
        }
        let h = Tensor::randn(0f32, 3.0, (2, 5, 2 * 37), &Device::Cpu).unwrap();
        let want = (h.narrow(2, 0, 37).unwrap() * h.narrow(2, 37, 37).unwrap().gelu_erf().unwrap())
            .unwrap();
        let got = geglu(&h).unwrap();
        let diff: f32 =
            (got - &want).unwrap().abs().unwrap().max_all().unwrap().to_scalar().unwrap();
        assert!(diff < 1e-5, "{diff}");
    }

    #[test]
    fn shifted_and_im2col_convolutions_match_candle() {
        let dev = Device::Cpu;
        // Odd sizes, one-row and one-column images, padding 0 and 1, kernels 3 and 2, and a
        // strip much smaller than the image (many tiles).
        for (batch, c_in, c_out, h, w, k, pad) in [
            (2, 5, 7, 9, 11, 3, 1),
            (1, 3, 4, 1, 6, 3, 1),
            (1, 3, 4, 6, 1, 3, 1),
            (1, 4, 3, 8, 7, 3, 0),
            (1, 6, 5, 5, 5, 2, 0),
            (1, 64, 8, 90, 97, 3, 1),
            (2, 6, 9, 5, 7, 1, 0),
        ] {
            let weight = Tensor::randn(0f32, 0.2, (c_out, c_in, k, k), &dev).unwrap();
            let bias = Tensor::randn(0f32, 0.2, c_out, &dev).unwrap();
            let inner = candle_nn::Conv2d::new(
                weight.clone(),
                Some(bias),
                Conv2dConfig { padding: pad, stride: 1, ..Conv2dConfig::default() },
            );
            let conv = Conv2d {
                bias_f32: inner.bias().unwrap().to_vec1().unwrap(),
                inner,
                weight_2d: weight.reshape((c_out, c_in * k * k)).unwrap(),
                kernel: k,
                stride: 1,
                padding: pad,
            };
            let x = Tensor::randn(0f32, 1.0, (batch, c_in, h, w), &dev).unwrap();
            let want = conv.forward_candle(&x).unwrap();
            let (_, _, h2, w2) = (batch, c_in, 2 * h, 2 * w);
            let up = x.upsample_nearest2d(h2, w2).unwrap();
            let want_up = conv.forward_candle(&up).unwrap();
            let got_up = conv.forward_upsampled_2x(&x).unwrap();
            let diff: f32 =
                (got_up - &want_up).unwrap().abs().unwrap().max_all().unwrap().to_scalar().unwrap();
            assert!(diff < 1e-4, "upsampled {batch}×{c_in}→{c_out}×{h}×{w} k{k} p{pad}: {diff}");
            let skip = Tensor::randn(0f32, 1.0, want.dims(), &dev).unwrap();
            let per_channel = Tensor::randn(0f32, 1.0, (batch, c_out), &dev).unwrap();
            let want_sum = want
                .broadcast_add(&per_channel.unsqueeze(2).unwrap().unsqueeze(3).unwrap())
                .unwrap()
                .add(&skip)
                .unwrap();
            let got_sum = conv.forward_add(&x, Some(&per_channel), Some(&skip)).unwrap();
            let diff: f32 = (got_sum - &want_sum)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar()
                .unwrap();
            assert!(
                diff < 1e-4,
                "with additions {batch}×{c_in}→{c_out}×{h}×{w} k{k} p{pad}: {diff}"
            );
            let mut paths = vec![conv.forward_im2col(&x).unwrap()];
            if k > 1 {
                paths.push(conv.forward_shifted(&x).unwrap());
            }
            for got in paths {
                assert_eq!(got.dims(), want.dims());
                let diff: f32 =
                    (got - &want).unwrap().abs().unwrap().max_all().unwrap().to_scalar().unwrap();
                assert!(diff < 1e-4, "{batch}×{c_in}→{c_out}×{h}×{w} k{k} p{pad}: {diff}");
            }
        }
    }
}
