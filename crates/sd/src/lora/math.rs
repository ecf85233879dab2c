//! The weight difference of one module, as A1111's Lora extension computes it
//! (`network_lora.py`, `network_hada.py`, `network_lokr.py`, `network_full.py`, `lyco_helpers.py`):
//! ΔW = multiplier · scale · updown, scale = alpha / dim when both exist, else 1.

use candle_core::{Device, Tensor};

use super::file::{ModuleTensors, Role};

/// Why a module's tensors cannot make a weight difference (a message for the report/error).
pub(crate) type Reason = String;

fn tensor_err(e: candle_core::Error) -> Reason {
    format!("tensor computation failed: {e}")
}

/// `t` as a matrix `[t.dim(0), rest]` (A1111's `reshape(size(0), -1)`).
fn matrix(t: &Tensor) -> Result<Tensor, Reason> {
    let rows = t.dims().first().copied().ok_or("a scalar where a matrix was expected")?;
    let cols = t.elem_count() / rows.max(1);
    t.reshape((rows, cols)).map_err(tensor_err)
}

/// `einsum('n m k l, i n, m j -> i j k l', mid, up, down)` (`rebuild_cp_decomposition`);
/// `up`: `[out, n]`, `down`: `[m, in]`, `mid`: `[n, m, kh, kw]` → `[out, in, kh, kw]`.
fn cp_decomposition(mid: &Tensor, up: &Tensor, down: &Tensor) -> Result<Tensor, Reason> {
    let (n, m, kh, kw) = mid.dims4().map_err(tensor_err)?;
    let (out, n_up) = up.dims2().map_err(tensor_err)?;
    let (m_down, inp) = down.dims2().map_err(tensor_err)?;
    if n_up != n || m_down != m {
        return Err(format!(
            "Tucker factors do not fit: up [{out}, {n_up}], mid [{n}, {m}, {kh}, {kw}], \
             down [{m_down}, {inp}]"
        ));
    }
    let run = || -> candle_core::Result<Tensor> {
        // [out, n] @ [n, m·k] → [out, m, k] → [out, k, m] @ [m, in] → [out, k, in] → [out, in, k].
        let t = up.matmul(&mid.reshape((n, m * kh * kw))?)?;
        let t = t.reshape((out, m, kh * kw))?.transpose(1, 2)?.contiguous()?;
        let t = t.reshape((out * kh * kw, m))?.matmul(down)?;
        t.reshape((out, kh * kw, inp))?.transpose(1, 2)?.contiguous()?.reshape((out, inp, kh, kw))
    };
    run().map_err(tensor_err)
}

fn required(module: &ModuleTensors, role: Role, what: &str) -> Result<Tensor, Reason> {
    module.get(role).cloned().ok_or_else(|| format!("incomplete module: no {what}"))
}

fn alpha(module: &ModuleTensors) -> Result<Option<f64>, Reason> {
    match module.get(Role::Alpha) {
        Some(a) => {
            let v = a.flatten_all().and_then(|a| a.to_vec1::<f32>()).map_err(tensor_err)?;
            match v.as_slice() {
                [value] => Ok(Some(f64::from(*value))),
                _ => Err(format!("alpha has {} values, expected one", v.len())),
            }
        }
        None => Ok(None),
    }
}

fn scale(alpha: Option<f64>, dim: Option<usize>) -> f64 {
    match (alpha, dim) {
        #[allow(clippy::cast_precision_loss, reason = "ranks are small integers")]
        (Some(alpha), Some(dim)) if dim > 0 => alpha / dim as f64,
        _ => 1.0,
    }
}

/// Kronecker product of `w1` `[o1, i1]` and `w2` `[o2, i2, …]` as A1111's `make_kron`:
/// `[o1·o2, i1·i2, …]`, returned as the matrix `[o1·o2, i1·i2·spatial]`.
fn kron(w1: &Tensor, w2: &Tensor) -> Result<Tensor, Reason> {
    let (o1, i1) = w1.dims2().map_err(tensor_err)?;
    let dims = w2.dims();
    let (o2, i2) = match dims {
        [o2, i2, ..] => (*o2, *i2),
        _ => return Err(format!("lokr_w2 has shape {dims:?}, expected 2 or 4 dimensions")),
    };
    let spatial = w2.elem_count() / (o2 * i2).max(1);
    let run = || -> candle_core::Result<Tensor> {
        let a = w1.reshape((o1, 1, i1, 1, 1))?;
        let b = w2.reshape((1, o2, 1, i2, spatial))?;
        a.broadcast_mul(&b)?.reshape((o1 * o2, i1 * i2 * spatial))
    };
    run().map_err(tensor_err)
}

/// The scaled weight difference of `module` as the matrix `[out, in·kh·kw]` (f32 on `device`),
/// before the user's multiplier. `target_dims` is the patched weight's full shape.
///
/// `factor` (the user's weight) is folded into the smallest factor of plain LoRA modules, and
/// with `transposed` the difference comes as `[in·kh·kw, out]` (a linear layer's stored
/// layout), computed directly as `downᵀ·upᵀ` for plain LoRA: no extra pass over the full matrix.
pub(crate) fn module_delta(
    module: &ModuleTensors,
    target_dims: &[usize],
    device: &Device,
    factor: f64,
    transposed: bool,
) -> Result<Tensor, DeltaError> {
    let unusable = |e: candle_core::Error| DeltaError::Unusable(tensor_err(e));
    if let Some(factors) = module_factors(module, target_dims, device, factor, transposed) {
        let (a, b) = factors?;
        return a.matmul(&b).map_err(unusable);
    }
    let (out, rest) = matrix_dims(target_dims);
    let (updown, scale) = updown_and_scale(module, device).map_err(DeltaError::Unusable)?;
    let delta = updown.affine(scale * factor, 0.0).map_err(unusable)?;
    if delta.dims() != [out, rest] {
        return Err(shape_error(delta.dims(), target_dims));
    }
    if transposed {
        return delta.t().and_then(|d| d.contiguous()).map_err(unusable);
    }
    Ok(delta)
}

/// `[out, in·kh·kw]` of a weight shape.
fn matrix_dims(target_dims: &[usize]) -> (usize, usize) {
    (target_dims.first().copied().unwrap_or(0), target_dims.iter().skip(1).product::<usize>())
}

fn shape_error(made: &[usize], target_dims: &[usize]) -> DeltaError {
    DeltaError::Shape(format!(
        "the module makes a [{}] difference; the model's layer has shape {target_dims:?}",
        made.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    ))
}

/// A plain (non-Tucker) LoRA module as two contiguous factors `(a, b)` whose product is its
/// scaled difference: `a = factor·scale·up`, `b = down` (`[out, r]`, `[r, in·kh·kw]`), or with
/// `transposed` `a = downᵀ`, `b = (factor·scale·up)ᵀ` (`[in·kh·kw, r]`, `[r, out]`). `None` for
/// every other module kind. Callers multiply them row block by row block, so the full-size
/// difference never has to exist on its own.
pub(crate) fn module_factors(
    module: &ModuleTensors,
    target_dims: &[usize],
    device: &Device,
    factor: f64,
    transposed: bool,
) -> Option<Result<(Tensor, Tensor), DeltaError>> {
    let (up, down) = (module.get(Role::Up)?, module.get(Role::Down)?);
    if module.get(Role::Mid).is_some()
        || module.tensors.keys().any(|r| matches!(r, Role::Unsupported(_)))
    {
        return None;
    }
    let run = || -> Result<(Tensor, Tensor), DeltaError> {
        let unusable = |e: candle_core::Error| DeltaError::Unusable(tensor_err(e));
        let dim = down.dims().first().copied();
        let s = scale(alpha(module).map_err(DeltaError::Unusable)?, dim) * factor;
        let up = matrix(&up.to_device(device).map_err(unusable)?).map_err(DeltaError::Unusable)?;
        let down =
            matrix(&down.to_device(device).map_err(unusable)?).map_err(DeltaError::Unusable)?;
        let up = up.affine(s, 0.0).map_err(unusable)?;
        let (out, rank_up) = up.dims2().map_err(unusable)?;
        let (rank_down, rest) = down.dims2().map_err(unusable)?;
        if rank_up != rank_down {
            return Err(DeltaError::Unusable(format!(
                "lora_up {:?} and lora_down {:?} have different ranks",
                up.dims(),
                down.dims()
            )));
        }
        if (out, rest) != matrix_dims(target_dims) {
            return Err(shape_error(&[out, rest], target_dims));
        }
        if transposed {
            let a = down.t().and_then(|d| d.contiguous()).map_err(unusable)?;
            let b = up.t().and_then(|u| u.contiguous()).map_err(unusable)?;
            Ok((a, b))
        } else {
            Ok((up, down))
        }
    };
    Some(run())
}

/// Why a module gives no weight difference.
pub(crate) enum DeltaError {
    /// Incomplete, unsupported or malformed module: reported, the rest still applies.
    Unusable(Reason),
    /// Well-formed but for a layer of another shape: the LoRA is for another model.
    Shape(Reason),
}

fn updown_and_scale(module: &ModuleTensors, device: &Device) -> Result<(Tensor, f64), Reason> {
    if let Some(reason) = module.tensors.keys().find_map(|r| match r {
        Role::Unsupported(reason) => Some(*reason),
        _ => None,
    }) {
        return Err(reason.to_string());
    }
    let on = |t: Tensor| t.to_device(device).map_err(tensor_err);
    let has = |role| module.get(role).is_some();
    let alpha = alpha(module)?;
    let (updown, scale) = if has(Role::Down) || has(Role::Up) {
        let up = on(required(module, Role::Up, "lora_up (lora_B)")?)?;
        let down = on(required(module, Role::Down, "lora_down (lora_A)")?)?;
        let dim = down.dims().first().copied();
        let updown = match module.get(Role::Mid) {
            Some(mid) => {
                let mid = on(mid.clone())?;
                let t = cp_decomposition(&mid, &matrix(&up)?, &matrix(&down)?)?;
                matrix(&t)?
            }
            None => matrix(&up)?.matmul(&matrix(&down)?).map_err(tensor_err)?,
        };
        (updown, scale(alpha, dim))
    } else if has(Role::HadaW1A) || has(Role::HadaW2A) {
        let w1a = on(required(module, Role::HadaW1A, "hada_w1_a")?)?;
        let w1b = on(required(module, Role::HadaW1B, "hada_w1_b")?)?;
        let w2a = on(required(module, Role::HadaW2A, "hada_w2_a")?)?;
        let w2b = on(required(module, Role::HadaW2B, "hada_w2_b")?)?;
        let dim = w1b.dims().first().copied();
        let half = |wa: &Tensor, wb: &Tensor, t: Option<&Tensor>| -> Result<Tensor, Reason> {
            match t {
                // make_weight_cp(t, wa, wb) with wa [r, out], wb [r, in].
                Some(t) => {
                    let t = on(t.clone())?;
                    let up = wa.t().and_then(|u| u.contiguous()).map_err(tensor_err)?;
                    matrix(&cp_decomposition(&t, &up, &matrix(wb)?)?)
                }
                None => matrix(wa)?.matmul(&matrix(wb)?).map_err(tensor_err),
            }
        };
        let one = half(&w1a, &w1b, module.get(Role::HadaT1))?;
        let two = half(&w2a, &w2b, module.get(Role::HadaT2))?;
        if one.dims() != two.dims() {
            return Err(format!(
                "LoHa halves differ in shape: {:?} and {:?}",
                one.dims(),
                two.dims()
            ));
        }
        ((one * two).map_err(tensor_err)?, scale(alpha, dim))
    } else if has(Role::LokrW1) || has(Role::LokrW1A) || has(Role::LokrW2) || has(Role::LokrW2A) {
        let mut dim = None;
        let w1 = match module.get(Role::LokrW1) {
            Some(w1) => on(w1.clone())?,
            None => {
                let a = on(required(module, Role::LokrW1A, "lokr_w1 or lokr_w1_a")?)?;
                let b = on(required(module, Role::LokrW1B, "lokr_w1_b")?)?;
                dim = b.dims().first().copied();
                matrix(&a)?.matmul(&matrix(&b)?).map_err(tensor_err)?
            }
        };
        let w2 = match module.get(Role::LokrW2) {
            Some(w2) => on(w2.clone())?,
            None => {
                let a = on(required(module, Role::LokrW2A, "lokr_w2 or lokr_w2_a")?)?;
                let b = on(required(module, Role::LokrW2B, "lokr_w2_b")?)?;
                dim = b.dims().first().copied();
                match module.get(Role::LokrT2) {
                    Some(t) => {
                        let up = a.t().and_then(|u| u.contiguous()).map_err(tensor_err)?;
                        cp_decomposition(&on(t.clone())?, &up, &matrix(&b)?)?
                    }
                    None => {
                        let w2 = matrix(&a)?.matmul(&matrix(&b)?).map_err(tensor_err)?;
                        // A factorised conv w2 keeps its kernel in lokr_w2_b [r, in, kh, kw].
                        match b.dims() {
                            [_, i2, kh, kw] => {
                                let o2 = a.dims().first().copied().unwrap_or(0);
                                w2.reshape((o2, *i2, *kh, *kw)).map_err(tensor_err)?
                            }
                            _ => w2,
                        }
                    }
                }
            }
        };
        (kron(&w1, &w2)?, scale(alpha, dim))
    } else if let Some(diff) = module.get(Role::Diff) {
        (matrix(&on(diff.clone())?)?, 1.0)
    } else {
        let roles: Vec<String> = module.keys.clone();
        return Err(format!("no LoRA, LoHa, LoKr or full-diff tensors among {roles:?}"));
    };
    Ok((updown, scale))
}
