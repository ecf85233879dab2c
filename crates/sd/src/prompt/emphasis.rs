//! A1111's "Original" emphasis, applied to a text encoder's output for one chunk.

/// The output and the multipliers disagree in size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmphasisError {
    #[error("encoder output has {values} values, expected {tokens} tokens x {channels} channels")]
    ShapeMismatch { values: usize, tokens: usize, channels: usize },
}

/// `z = z * mult[token]`, then `z *= mean(z_before) / mean(z_after)` over the whole chunk.
///
/// `z` is one chunk's encoder output, row-major `(tokens, channels)` (77 x C), `multipliers`
/// has one value per token. Means are accumulated in f64 (torch sums f32 pairwise; the two
/// agree to about 1e-7 relative). When the weighted mean is 0 or not finite (every multiplier
/// 0), the rescale is skipped instead of filling the chunk with NaN as torch would.
pub fn apply_emphasis(
    z: &mut [f32],
    multipliers: &[f32],
    channels: usize,
) -> Result<(), EmphasisError> {
    let mismatch =
        || EmphasisError::ShapeMismatch { values: z.len(), tokens: multipliers.len(), channels };
    if channels == 0 || multipliers.len().checked_mul(channels) != Some(z.len()) {
        return Err(mismatch());
    }
    let mean =
        |values: &[f32]| values.iter().map(|&v| f64::from(v)).sum::<f64>() / values.len() as f64;
    let original_mean = mean(z) as f32;
    for (row, &multiplier) in z.chunks_exact_mut(channels).zip(multipliers) {
        for value in row {
            *value *= multiplier;
        }
    }
    let new_mean = mean(z) as f32;
    let scale = original_mean / new_mean;
    if new_mean != 0.0 && scale.is_finite() {
        for value in z.iter_mut() {
            *value *= scale;
        }
    }
    Ok(())
}
