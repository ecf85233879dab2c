//! A safe, bounds-checked front for the `gemm` crate's strided f32 matrix product (the one
//! candle itself uses), for kernels that must multiply views of existing buffers without first
//! copying them into contiguous tensors: attention heads read in place out of `[B, N, H·d]`
//! activations, convolution taps read at an offset inside a padded image.

use crate::error::{Result, SdError};

/// A read-only strided view of f32 values: element `(r, c)` is `data[r·row_stride +
/// c·col_stride]`. Constructed only when every element is inside `data`.
#[derive(Clone, Copy)]
pub(crate) struct Mat<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> Mat<'a> {
    pub(crate) fn new(
        data: &'a [f32],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Result<Self> {
        check_bounds(data.len(), rows, cols, row_stride, col_stride)?;
        Ok(Self { data, rows, cols, row_stride, col_stride })
    }

    /// The transpose, as a view of the same values.
    pub(crate) fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }
}

/// A writable strided view whose elements are all distinct and inside `data` (so the product
/// may write them from several threads).
pub(crate) struct MatMut<'a> {
    data: &'a mut [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> MatMut<'a> {
    pub(crate) fn new(
        data: &'a mut [f32],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Result<Self> {
        check_bounds(data.len(), rows, cols, row_stride, col_stride)?;
        // Distinct elements: one stride must step over a whole run of the other.
        let distinct = rows <= 1 && (cols <= 1 || col_stride >= 1)
            || cols <= 1 && row_stride >= 1
            || col_stride >= 1 && row_stride >= cols * col_stride
            || row_stride >= 1 && col_stride >= rows * row_stride;
        if !distinct {
            return Err(internal("a matrix product's output overlaps itself"));
        }
        Ok(Self { data, rows, cols, row_stride, col_stride })
    }

    /// A row-major `rows × cols` view of the start of `data`.
    pub(crate) fn row_major(data: &'a mut [f32], rows: usize, cols: usize) -> Result<Self> {
        Self::new(data, rows, cols, cols, 1)
    }
}

fn check_bounds(
    len: usize,
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
) -> Result<()> {
    if rows == 0 || cols == 0 {
        return Ok(());
    }
    let last = (rows - 1)
        .checked_mul(row_stride)
        .zip((cols - 1).checked_mul(col_stride))
        .and_then(|(a, b)| a.checked_add(b));
    match last {
        Some(last) if last < len && isize::try_from(row_stride.max(col_stride)).is_ok() => Ok(()),
        _ => Err(internal("a matrix view reaches past its buffer")),
    }
}

fn internal(what: &str) -> SdError {
    SdError::Candle(candle_core::Error::Msg(what.to_owned()))
}

/// Whether the product may split its work over the rayon pool, or must stay on the calling
/// thread (because the caller already runs one product per thread).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Threads {
    Pool,
    One,
}

/// `dst = (accumulate ? dst : 0) + scale · lhs · rhs`.
pub(crate) fn matmul(
    dst: MatMut<'_>,
    lhs: Mat<'_>,
    rhs: Mat<'_>,
    scale: f32,
    accumulate: bool,
    threads: Threads,
) -> Result<()> {
    let (m, n, k) = (dst.rows, dst.cols, lhs.cols);
    if lhs.rows != m || rhs.rows != k || rhs.cols != n {
        return Err(internal("matrix product of mismatched shapes"));
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                for c in 0..n {
                    if let Some(v) = dst.data.get_mut(r * dst.row_stride + c * dst.col_stride) {
                        *v = 0.0;
                    }
                }
            }
        }
        return Ok(());
    }
    let parallelism = match threads {
        Threads::Pool if rayon::current_num_threads() > 1 => {
            gemm::Parallelism::Rayon(rayon::current_num_threads())
        }
        _ => gemm::Parallelism::None,
    };
    let stride = |s: usize| isize::try_from(s).unwrap_or(isize::MAX);
    #[allow(
        unsafe_code,
        reason = "gemm takes raw pointers and strides; `Mat`/`MatMut` were checked to address \
                  only elements inside their slices, the output's elements are distinct, and \
                  the output is borrowed mutably while the inputs are borrowed shared, so \
                  nothing else reads or writes them meanwhile"
    )]
    // SAFETY: see the reason above; shapes were checked to agree (m×k · k×n → m×n).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.data.as_mut_ptr(),
            stride(dst.col_stride),
            stride(dst.row_stride),
            accumulate,
            lhs.data.as_ptr(),
            stride(lhs.col_stride),
            stride(lhs.row_stride),
            rhs.data.as_ptr(),
            stride(rhs.col_stride),
            stride(rhs.row_stride),
            1.0,
            scale,
            false,
            false,
            false,
            parallelism,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut out = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        out
    }

    #[test]
    fn strided_products_match_the_naive_product() {
        let (m, k, n) = (7, 5, 9);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
        let expected = naive(&a, &b, m, k, n);
        // b read transposed out of its transpose; the result written column-major, scaled,
        // then accumulated a second time.
        let b_t: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
        let mut out = vec![0.0; m * n];
        for (accumulate, threads) in [(false, Threads::Pool), (true, Threads::One)] {
            matmul(
                MatMut::new(&mut out, m, n, 1, m).expect("view"),
                Mat::new(&a, m, k, k, 1).expect("view"),
                Mat::new(&b_t, n, k, k, 1).expect("view").t(),
                0.5,
                accumulate,
                threads,
            )
            .expect("product");
        }
        for i in 0..m {
            for j in 0..n {
                assert!((out[j * m + i] - expected[i * n + j]).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn views_past_the_buffer_or_overlapping_outputs_are_refused() {
        let data = vec![0.0f32; 12];
        assert!(Mat::new(&data, 3, 4, 4, 1).is_ok());
        assert!(Mat::new(&data, 3, 5, 4, 1).is_err());
        let mut out = vec![0.0f32; 12];
        assert!(MatMut::new(&mut out, 3, 4, 2, 1).is_err());
        assert!(MatMut::new(&mut out, 3, 4, 1, 3).is_ok());
        let mut out = vec![0.0f32; 6];
        let lhs = Mat::new(&data, 2, 3, 3, 1).expect("view");
        let rhs = Mat::new(&data, 2, 3, 3, 1).expect("view");
        let dst = MatMut::row_major(&mut out, 2, 3).expect("view");
        assert!(matmul(dst, lhs, rhs, 1.0, false, Threads::One).is_err());
    }
}
