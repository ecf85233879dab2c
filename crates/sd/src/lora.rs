//! LoRA, LyCORIS (LoHa, LoKr) and PEFT-style low-rank adapters applied to a loaded model by
//! patching its weights in place, and restored bit-exactly by putting the original tensors back
//! (changing LoRAs never reloads the checkpoint). The arithmetic is A1111's Lora extension's
//! (see `math`); which layer a module patches is derived from the model's own structure.
//!
//! ```no_run
//! # fn demo(model: &mut pentimento_sd::StableDiffusion) -> Result<(), pentimento_sd::lora::LoraError> {
//! use pentimento_sd::lora::{LoraSpec, apply_loras, restore};
//! let applied = apply_loras(model, &[LoraSpec::new("models/loras/ink.safetensors", 0.8)])?;
//! for key in applied.report().unmatched_keys() {
//!     eprintln!("LoRA key matches no layer: {key}");
//! }
//! // … generate …
//! restore(model, applied)?;
//! # Ok(()) }
//! ```

mod bench;
mod file;
mod math;
mod names;
mod vae;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use candle_core::{DType, Tensor};
use rayon::prelude::*;

pub use bench::{LoraBench, bench_apply_restore_sd15};
pub use file::{LoraFamily, LoraFile};
pub use vae::{load_standalone_vae, replace_vae};

use crate::config::ModelArch;
use crate::error::SdError;
use crate::model::StableDiffusion;
use crate::nn::{Conv2d, Linear, PatchableMut};
use math::DeltaError;
use names::{UNetNames, text_encoder_aliases, unet_aliases};

/// Errors of LoRA loading and patching.
#[derive(Debug, thiserror::Error)]
pub enum LoraError {
    #[error(transparent)]
    Sd(#[from] SdError),
    #[error("LoRA `{lora}` is for {lora_family} but the loaded model is {model}: {detail}")]
    WrongArchitecture { lora: String, lora_family: LoraFamily, model: String, detail: String },
    #[error("LoRA `{lora}` does not fit the loaded model ({model}): {detail}")]
    DoesNotFit { lora: String, model: String, detail: String },
    #[error("cannot restore the model's weights: {0}")]
    Restore(String),
    #[error("tensor computation failed: {0}")]
    Candle(#[from] candle_core::Error),
}

/// The strengths of one LoRA: A1111's `<lora:name:te:unet>` (`<lora:name:w>` sets both).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoraWeights {
    pub text_encoder: f32,
    pub unet: f32,
}

impl LoraWeights {
    /// The same weight for text encoder(s) and UNet.
    pub fn both(weight: f32) -> Self {
        Self { text_encoder: weight, unet: weight }
    }
}

/// A LoRA file and its strengths.
#[derive(Debug, Clone, PartialEq)]
pub struct LoraSpec {
    pub path: PathBuf,
    pub weights: LoraWeights,
}

impl LoraSpec {
    pub fn new(path: impl Into<PathBuf>, weight: f32) -> Self {
        Self { path: path.into(), weights: LoraWeights::both(weight) }
    }
}

/// What applying one LoRA did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct LoraReport {
    pub name: String,
    pub family: Option<LoraFamily>,
    /// Modules applied (one per patched layer).
    pub patched_modules: usize,
    /// Keys whose module names no layer of the model (never silently dropped).
    pub unmatched_keys: Vec<String>,
    /// Keys of modules that name a layer but cannot be applied, with the reason (DoRA, norm
    /// networks, incomplete modules, keys of no known LoRA role).
    pub unsupported_keys: Vec<(String, String)>,
}

/// What applying a set of LoRAs did, per LoRA in the order given.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct PatchReport {
    pub loras: Vec<LoraReport>,
    /// Distinct layers whose weights were replaced.
    pub patched_layers: usize,
}

impl PatchReport {
    /// Every unmatched key of every LoRA, as `lora: key`.
    pub fn unmatched_keys(&self) -> Vec<String> {
        self.loras
            .iter()
            .flat_map(|l| l.unmatched_keys.iter().map(move |k| format!("{}: {k}", l.name)))
            .collect()
    }
}

/// A layer's original state, kept whole so restoring puts back the very same tensors.
enum Saved {
    Linear(Linear),
    Conv(Conv2d),
}

impl Saved {
    /// The original weight matrix (see [`Target::matrix`]).
    fn matrix(&self) -> &Tensor {
        match self {
            Saved::Linear(l) => l.weight_t(),
            Saved::Conv(c) => c.weight_2d(),
        }
    }
}

/// Patched model state: the originals of every patched layer and the report. Pass it to
/// [`restore`] to undo the patch; patches nest (restore the latest first).
pub struct AppliedLoras {
    report: PatchReport,
    originals: Vec<(String, Saved)>,
}

impl AppliedLoras {
    pub fn report(&self) -> &PatchReport {
        &self.report
    }

    /// Whether any weight was changed.
    pub fn is_empty(&self) -> bool {
        self.originals.is_empty()
    }
}

impl std::fmt::Debug for AppliedLoras {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppliedLoras")
            .field("report", &self.report)
            .field("patched_layers", &self.originals.len())
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Component {
    Unet,
    TextEncoder,
}

/// One patchable layer of the model.
struct Target<'a> {
    /// Stable id (`unet:<ldm name>`, `te<i>:<hf path>`) used to restore.
    id: String,
    component: Component,
    layer: PatchableMut<'a>,
}

impl Target<'_> {
    /// The weight's full shape: `[out, in]` for linear layers (including SD1's 1×1 `proj_in`),
    /// `[out, in, k, k]` for convolutions.
    fn dims(&self) -> Vec<usize> {
        match &self.layer {
            PatchableMut::Linear(l) => l.weight_t().dims().iter().rev().copied().collect(),
            PatchableMut::Conv(c) => c.weight_dims().to_vec(),
        }
    }

    fn save(&self) -> Saved {
        match &self.layer {
            PatchableMut::Linear(l) => Saved::Linear((**l).clone()),
            PatchableMut::Conv(c) => Saved::Conv((**c).clone()),
        }
    }

    /// The weight as its stored matrix: `[in, out]` for linear layers, `[out, in·k·k]` for
    /// convolutions (the layout the differences come in).
    fn matrix(&self) -> &Tensor {
        match &self.layer {
            PatchableMut::Linear(l) => l.weight_t(),
            PatchableMut::Conv(c) => c.weight_2d(),
        }
    }

    fn replace_matrix(&mut self, new: Tensor) -> candle_core::Result<()> {
        match &mut self.layer {
            PatchableMut::Linear(l) => l.replace_weight_t(new),
            PatchableMut::Conv(c) => {
                c.replace_weight_2d(new).map_err(|e| candle_core::Error::Msg(e.to_string()))?;
            }
        }
        Ok(())
    }

    /// Sets the weight to `original + Σ terms` (computed in f32) and returns the original's
    /// saved state. `previous` is the original when the layer is already patched: its patched
    /// f32 CPU buffer is then rewritten in place. The result must be returned with the saved
    /// state even on error, so the layer can always be restored.
    fn add_terms(
        &mut self,
        terms: &[Term],
        previous: Option<Saved>,
    ) -> (Saved, candle_core::Result<()>) {
        let saved = match previous {
            Some(original) => original,
            None => self.save(),
        };
        let original = saved.matrix().clone();
        let in_place = original.dtype() == DType::F32 && original.device().is_cpu();
        let result = if in_place {
            self.add_in_place(&original, terms)
        } else {
            self.add_whole(&original, terms)
        };
        (saved, result)
    }

    /// CPU f32: block by block into the patched buffer (the current one when the layer is
    /// already patched, else a new one).
    fn add_in_place(&mut self, original: &Tensor, terms: &[Term]) -> candle_core::Result<()> {
        let (rows, cols) = original.dims2()?;
        let current = self.matrix();
        let reuse = current.id() != original.id()
            && current.dims() == original.dims()
            && current.dtype() == DType::F32
            && current.is_contiguous();
        let dst = if reuse {
            current.clone()
        } else {
            Tensor::zeros((rows, cols), DType::F32, original.device())?
        };
        let original = original.contiguous()?;
        let block_rows = (BLOCK_BYTES / (4 * cols.max(1))).clamp(8, rows.max(8));
        let mut row0 = 0;
        while row0 < rows {
            let n = block_rows.min(rows - row0);
            let mut block: Option<Tensor> = None;
            for term in terms {
                let part = term.rows(row0, n)?;
                block = Some(match block {
                    Some(sum) => (sum + part)?,
                    None => part,
                });
            }
            if let Some(block) = block {
                dst.inplace_op3(&original, &block.contiguous()?, &AddRows { row0, cols })?;
            }
            row0 += n;
        }
        if !reuse {
            self.replace_matrix(dst)?;
        }
        Ok(())
    }

    /// Other dtypes and devices: the whole difference, added in f32, in the weight's dtype.
    fn add_whole(&mut self, original: &Tensor, terms: &[Term]) -> candle_core::Result<()> {
        let (rows, _) = original.dims2()?;
        let mut total: Option<Tensor> = None;
        for term in terms {
            let d = term.rows(0, rows)?;
            total = Some(match total {
                Some(t) => (t + d)?,
                None => d,
            });
        }
        let Some(total) = total else { return Ok(()) };
        let dtype = original.dtype();
        let new = (original.to_dtype(DType::F32)? + total)?.to_dtype(dtype)?;
        self.replace_matrix(new)
    }

    fn put_back(&mut self, saved: Saved) -> Result<(), Saved> {
        match (&mut self.layer, saved) {
            (PatchableMut::Linear(l), Saved::Linear(s)) => **l = s,
            (PatchableMut::Conv(c), Saved::Conv(s)) => **c = s,
            (_, other) => return Err(other),
        }
        Ok(())
    }
}

fn collect_targets(model: &mut StableDiffusion) -> Vec<Target<'_>> {
    let mut targets = Vec::new();
    for (i, encoder) in model.text_encoders.iter_mut().enumerate() {
        for (name, layer) in encoder.patchable_layers() {
            targets.push(Target {
                id: format!("te{i}:{name}"),
                component: Component::TextEncoder,
                layer,
            });
        }
    }
    for (name, layer) in model.unet.patchable_layers() {
        targets.push(Target { id: format!("unet:{name}"), component: Component::Unet, layer });
    }
    targets
}

/// Module name → target index, for every spelling a LoRA may use.
fn alias_index(
    unet_names: &UNetNames,
    encoders: usize,
    targets: &[Target<'_>],
) -> HashMap<String, usize> {
    let mut index = HashMap::with_capacity(targets.len() * 5);
    for (t, target) in targets.iter().enumerate() {
        let aliases = match target.id.split_once(':') {
            Some(("unet", ldm)) => unet_aliases(ldm, unet_names.diffusers_name(ldm).as_deref()),
            Some((te, hf)) => {
                let i = te.strip_prefix("te").and_then(|i| i.parse().ok()).unwrap_or(0);
                text_encoder_aliases(hf, i, encoders)
            }
            None => Vec::new(),
        };
        for alias in aliases {
            index.entry(alias).or_insert(t);
        }
    }
    index
}

fn arch_name(arch: ModelArch) -> String {
    match arch {
        ModelArch::Sd1 => "SD 1.x",
        ModelArch::Sd1Inpaint => "SD 1.x inpainting",
        ModelArch::Sdxl => "SDXL",
        ModelArch::SdxlInpaint => "SDXL inpainting",
    }
    .to_string()
}

/// Opens the LoRA files and applies them (see [`apply_lora_files`]).
pub fn apply_loras(
    model: &mut StableDiffusion,
    specs: &[LoraSpec],
) -> Result<AppliedLoras, LoraError> {
    repatch_loras(model, specs, None)
}

/// Opens the LoRA files and replaces the patch `previous` by them (see
/// [`repatch_lora_files`]). On any error, a file that cannot be opened included, the model is
/// left with its own weights.
pub fn repatch_loras(
    model: &mut StableDiffusion,
    specs: &[LoraSpec],
    previous: Option<AppliedLoras>,
) -> Result<AppliedLoras, LoraError> {
    let files =
        match specs.iter().map(|s| LoraFile::open(&s.path)).collect::<Result<Vec<_>, SdError>>() {
            Ok(files) => files,
            Err(e) => {
                if let Some(previous) = previous {
                    restore(model, previous)?;
                }
                return Err(e.into());
            }
        };
    let pairs: Vec<(&LoraFile, LoraWeights)> =
        files.iter().zip(specs).map(|(f, s)| (f, s.weights)).collect();
    repatch_lora_files(model, &pairs, previous)
}

/// Patches `model` with every LoRA at its weights (negative allowed): each layer's weight becomes
/// `W + Σ weight·ΔW` (A1111 arithmetic, computed in f32). Nothing is changed when an error is
/// returned: a LoRA for another model family, or whose modules have other shapes than the layers
/// they name, or that matches no layer at all, is refused with [`LoraError::WrongArchitecture`]
/// / [`LoraError::DoesNotFit`].
pub fn apply_lora_files(
    model: &mut StableDiffusion,
    loras: &[(&LoraFile, LoraWeights)],
) -> Result<AppliedLoras, LoraError> {
    repatch_lora_files(model, loras, None)
}

/// Which modules patch which layer (target index → LoRA index, module name, tensors, weight).
type PatchPlan<'a> = BTreeMap<usize, Vec<(usize, &'a str, &'a file::ModuleTensors, f32)>>;

/// [`apply_lora_files`] replacing the patch `previous` (the latest patch of `model`) instead
/// of stacking on it: the result is `W + Σ weight·ΔW` of `loras` alone, bit for bit as if
/// `previous` had been restored first, but a layer both patch sets touch is rewritten in its
/// patched buffer in place (no allocation: dragging a LoRA's weight costs only arithmetic), and
/// layers only `previous` touched get their originals back. On error the model is left with its
/// own weights (the previous patch is gone too). Tensors cloned from a patched layer share its
/// buffer and see the rewrite; the originals are never written.
pub fn repatch_lora_files(
    model: &mut StableDiffusion,
    loras: &[(&LoraFile, LoraWeights)],
    previous: Option<AppliedLoras>,
) -> Result<AppliedLoras, LoraError> {
    let arch = model.arch();
    let device = model.device.clone();
    let model_name = arch_name(arch);
    let refuse = |model: &mut StableDiffusion, previous: Option<AppliedLoras>, e: LoraError| {
        if let Some(previous) = previous {
            restore(model, previous)?;
        }
        Err(e)
    };
    for (lora, _) in loras {
        let family = lora.family();
        let expected = if arch.is_sdxl() { LoraFamily::Sdxl } else { LoraFamily::Sd1 };
        if family != LoraFamily::Unknown && family != expected {
            let e = LoraError::WrongArchitecture {
                lora: lora.name().to_string(),
                lora_family: family,
                model: model_name,
                detail: "its layer names belong to the other family".into(),
            };
            return refuse(model, previous, e);
        }
    }
    let unet_names = UNetNames::new(model.unet.config());
    let encoders = model.text_encoders.len();
    let mut targets = collect_targets(model);
    let index = alias_index(&unet_names, encoders, &targets);
    let (plan, mut report) = match plan_patch(loras, &targets, &index, &model_name) {
        Ok(planned) => planned,
        Err(e) => {
            drop(targets);
            return refuse(model, previous, e);
        }
    };
    // Phase 2: per layer (in parallel), the summed difference of every LoRA, added once; each
    // layer of the previous patch gets its original back with it.
    let mut previous_originals: HashMap<String, Saved> =
        previous.map(|p| p.originals.into_iter().collect()).unwrap_or_default();
    let work: Vec<_> = targets
        .iter_mut()
        .enumerate()
        .filter_map(|(t, target)| {
            let original = previous_originals.remove(&target.id);
            let modules = plan.get(&t);
            (modules.is_some() || original.is_some()).then_some((target, modules, original))
        })
        .collect();
    let outcomes: Vec<Outcome> = work
        .into_par_iter()
        .map(|(target, modules, original)| {
            patch_target(target, modules.map_or(&[][..], Vec::as_slice), &device, original)
        })
        .collect();
    drop(targets);
    let mut originals = Vec::with_capacity(outcomes.len());
    // Originals of layers this model no longer has: kept, so `restore` reports them.
    originals.extend(previous_originals);
    let mut failure = None;
    for outcome in outcomes {
        for l in outcome.patched {
            if let Some(entry) = report.loras.get_mut(l) {
                entry.patched_modules += 1;
            }
        }
        for (l, keys) in outcome.unusable {
            if let Some(entry) = report.loras.get_mut(l) {
                entry.unsupported_keys.extend(keys);
            }
        }
        originals.extend(outcome.saved);
        if failure.is_none() {
            failure = outcome.error.map(|error| match error {
                PatchFailure::Shape { lora: l, detail } => {
                    let lora = loras.get(l).map(|(f, _)| *f);
                    let name = lora.map_or("", LoraFile::name).to_string();
                    let model = model_name.clone();
                    match lora.map_or(LoraFamily::Unknown, LoraFile::family) {
                        LoraFamily::Unknown => LoraError::DoesNotFit { lora: name, model, detail },
                        lora_family => {
                            LoraError::WrongArchitecture { lora: name, lora_family, model, detail }
                        }
                    }
                }
                PatchFailure::Candle(e) => LoraError::Candle(e),
            });
        }
    }
    for entry in &mut report.loras {
        entry.unsupported_keys.sort();
    }
    report.patched_layers = originals.len();
    let applied = AppliedLoras { report, originals };
    if let Some(error) = failure {
        restore(model, applied)?;
        return Err(error);
    }
    Ok(applied)
}

/// Phase 1 of a patch, no arithmetic: which modules patch which layer, and the report's
/// unmatched and unknown keys. A LoRA none of whose modules names a layer is refused.
fn plan_patch<'a>(
    loras: &[(&'a LoraFile, LoraWeights)],
    targets: &[Target<'_>],
    index: &HashMap<String, usize>,
    model_name: &str,
) -> Result<(PatchPlan<'a>, PatchReport), LoraError> {
    let mut plan: PatchPlan<'a> = BTreeMap::new();
    let mut report = PatchReport::default();
    for (l, (lora, weights)) in loras.iter().enumerate() {
        let mut entry = LoraReport {
            name: lora.name().to_string(),
            family: Some(lora.family()),
            unsupported_keys: lora
                .unknown_keys
                .iter()
                .map(|k| (k.clone(), "not a LoRA, LoHa, LoKr or full-diff tensor".to_string()))
                .collect(),
            ..LoraReport::default()
        };
        let mut matched = 0usize;
        for (module_name, module) in &lora.modules {
            let Some(target) = index.get(module_name).and_then(|&t| Some((t, targets.get(t)?)))
            else {
                entry.unmatched_keys.extend(module.keys.iter().cloned());
                continue;
            };
            matched += 1;
            let weight = match target.1.component {
                Component::Unet => weights.unet,
                Component::TextEncoder => weights.text_encoder,
            };
            plan.entry(target.0).or_default().push((l, module_name.as_str(), module, weight));
        }
        if matched == 0 && !lora.modules.is_empty() {
            return Err(LoraError::DoesNotFit {
                lora: lora.name().to_string(),
                model: model_name.to_owned(),
                detail: format!(
                    "none of its {} modules names a layer of this model (e.g. `{}`)",
                    lora.modules.len(),
                    lora.modules.keys().next().map_or("", String::as_str)
                ),
            });
        }
        report.loras.push(entry);
    }
    Ok((plan, report))
}

enum PatchFailure {
    Shape { lora: usize, detail: String },
    Candle(candle_core::Error),
}

/// What patching one layer did.
#[derive(Default)]
struct Outcome {
    saved: Option<(String, Saved)>,
    /// LoRA index of each applied module.
    patched: Vec<usize>,
    unusable: Vec<(usize, Vec<(String, String)>)>,
    error: Option<PatchFailure>,
}

/// One module's share of a layer's difference.
enum Term {
    /// Plain LoRA: `a·b` (see [`math::module_factors`]), multiplied a row block at a time.
    Factors(Tensor, Tensor),
    /// Every other kind: the whole difference.
    Full(Tensor),
}

impl Term {
    fn rows(&self, row0: usize, rows: usize) -> candle_core::Result<Tensor> {
        match self {
            Term::Factors(a, b) => a.narrow(0, row0, rows)?.matmul(b),
            Term::Full(d) => d.narrow(0, row0, rows),
        }
    }
}

/// Row blocks of about this many bytes: big enough for an efficient matrix product, small
/// enough that the allocator recycles them (no page faults) and they stay in cache for the add.
const BLOCK_BYTES: usize = 2 << 20;

/// Sums the differences of `modules` (LoRA index, module name, tensors, user weight) and adds
/// them to `target`'s weight, keeping the original. With `previous` (this layer's original,
/// saved by the patch being replaced), the layer's current, patched weight buffer is
/// overwritten in place with `original + ΔW`: changing a LoRA's weight allocates nothing.
fn patch_target(
    target: &mut Target<'_>,
    modules: &[(usize, &str, &file::ModuleTensors, f32)],
    device: &candle_core::Device,
    previous: Option<Saved>,
) -> Outcome {
    let mut outcome = Outcome::default();
    let dims = target.dims();
    let transposed = matches!(target.layer, PatchableMut::Linear(_));
    let mut terms = Vec::new();
    for &(l, module_name, module, weight) in modules {
        let factor = f64::from(weight);
        let term = match math::module_factors(module, &dims, device, factor, transposed) {
            Some(factors) => factors.map(|(a, b)| Term::Factors(a, b)),
            None => math::module_delta(module, &dims, device, factor, transposed).map(Term::Full),
        };
        match term {
            Ok(term) => {
                outcome.patched.push(l);
                terms.push(term);
            }
            Err(DeltaError::Unusable(reason)) => outcome
                .unusable
                .push((l, module.keys.iter().map(|k| (k.clone(), reason.clone())).collect())),
            Err(DeltaError::Shape(reason)) => {
                let detail = format!("module `{module_name}`: {reason}");
                outcome.error = Some(PatchFailure::Shape { lora: l, detail });
                if let Some(original) = previous {
                    // Keep the layer restorable: its original goes back with the others.
                    outcome.saved = Some((target.id.clone(), original));
                }
                return outcome;
            }
        }
    }
    let result = if terms.is_empty() {
        // Nothing applies any more: the layer gets its own weight back.
        match previous {
            Some(original) => match target.put_back(original) {
                Ok(()) => Ok(()),
                Err(original) => {
                    outcome.saved = Some((target.id.clone(), original));
                    Err(candle_core::Error::Msg("a layer changed kind".into()))
                }
            },
            None => Ok(()),
        }
    } else {
        let (saved, result) = target.add_terms(&terms, previous);
        outcome.saved = Some((target.id.clone(), saved));
        result
    };
    if let Err(e) = result {
        outcome.error = Some(PatchFailure::Candle(e));
    }
    outcome
}

/// `dst[rows] = original[rows] + block` for contiguous f32 CPU tensors: `dst` and `original`
/// share a `[rows, cols]` shape, `block` is rows `row0..` of it.
struct AddRows {
    row0: usize,
    cols: usize,
}

impl candle_core::InplaceOp3 for AddRows {
    fn name(&self) -> &'static str {
        "lora-add-rows"
    }

    fn cpu_fwd(
        &self,
        dst: &mut candle_core::CpuStorage,
        dst_layout: &candle_core::Layout,
        original: &candle_core::CpuStorage,
        original_layout: &candle_core::Layout,
        block: &candle_core::CpuStorage,
        block_layout: &candle_core::Layout,
    ) -> candle_core::Result<()> {
        use candle_core::CpuStorage::F32;
        let (F32(dst), F32(original), F32(block)) = (dst, original, block) else {
            return Err(candle_core::Error::Msg("lora-add-rows takes f32 tensors".into()));
        };
        let start = self.row0 * self.cols;
        let offsets = dst_layout
            .contiguous_offsets()
            .zip(original_layout.contiguous_offsets())
            .zip(block_layout.contiguous_offsets());
        let slices = offsets.and_then(|(((d0, _), (o0, _)), (b0, b1))| {
            let n = b1 - b0;
            Some((
                dst.get_mut(d0 + start..d0 + start + n)?,
                original.get(o0 + start..o0 + start + n)?,
                block.get(b0..b1)?,
            ))
        });
        let Some((dst, original, block)) = slices else {
            return Err(candle_core::Error::Msg(
                "lora-add-rows takes contiguous tensors of fitting sizes".into(),
            ));
        };
        dst.iter_mut().zip(original).zip(block).for_each(|((d, o), b)| *d = *o + *b);
        Ok(())
    }
}

/// Puts back the original weights saved by [`apply_lora_files`]: bit-exact, nothing reloaded.
pub fn restore(model: &mut StableDiffusion, applied: AppliedLoras) -> Result<(), LoraError> {
    let mut targets: HashMap<String, Target<'_>> =
        collect_targets(model).into_iter().map(|t| (t.id.clone(), t)).collect();
    let mut missing = Vec::new();
    for (id, saved) in applied.originals {
        match targets.get_mut(&id) {
            Some(target) => {
                if target.put_back(saved).is_err() {
                    missing.push(id);
                }
            }
            None => missing.push(id),
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(LoraError::Restore(format!(
            "{} layers do not exist in this model (a different model than the one patched?), \
             e.g. `{}`",
            missing.len(),
            missing.first().map_or("", String::as_str)
        )))
    }
}

/// A1111's `<lora:name:te[:unet]>` (and `<lyco:…>`) tags: returns the prompt without them and
/// each tag's name and weights (unet defaults to te, te to 1; `te=`/`unet=` named forms
/// accepted). The parsing is the prompt parser's ([`crate::prompt::split_extra_networks`]).
pub fn extract_lora_tags(prompt: &str) -> Result<(String, Vec<(String, LoraWeights)>), LoraError> {
    let invalid =
        |e: crate::prompt::PromptError| LoraError::Sd(SdError::InvalidInput(e.to_string()));
    let (text, tags) = crate::prompt::split_extra_networks(prompt).map_err(invalid)?;
    let loras = tags
        .iter()
        .filter(|tag| crate::prompt::is_lora_kind(&tag.kind))
        .map(|tag| {
            let lora = crate::prompt::lora_from_tag(tag).map_err(invalid)?;
            Ok((lora.name, LoraWeights { text_encoder: lora.te_weight, unet: lora.unet_weight }))
        })
        .collect::<Result<Vec<_>, LoraError>>()?;
    Ok((text, loras))
}

/// Every patchable layer's current weight by its id (`unet:<LDM name>`, `te<i>:<HF path>`), as
/// `[out, in]` or `[out, in, k, k]`: for inspection (`pentimento info`, tests).
pub fn layer_weights(model: &mut StableDiffusion) -> Result<Vec<(String, Tensor)>, LoraError> {
    collect_targets(model)
        .into_iter()
        .map(|t| {
            let weight = match &t.layer {
                PatchableMut::Linear(l) => l.weight_t().t()?,
                PatchableMut::Conv(c) => c.weight_2d().reshape(c.weight_dims())?,
            };
            Ok((t.id, weight))
        })
        .collect()
}
