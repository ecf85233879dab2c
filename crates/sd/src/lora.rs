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

    /// Adds `delta` (f32; `[in, out]` for linear layers, their stored layout, `[out, in·k·k]`
    /// for convolutions) to the weight in the weight's own dtype.
    fn add(&mut self, delta: &Tensor) -> candle_core::Result<()> {
        let plus = |w: &Tensor, d: &Tensor| -> candle_core::Result<Tensor> {
            let dtype = w.dtype();
            if dtype == DType::F32 && w.device().is_cpu() && d.dtype() == DType::F32 {
                // `d` is this layer's freshly computed difference, owned here: add the weight
                // into it instead of allocating (and faulting in) another full-size buffer.
                let d = d.contiguous()?;
                d.inplace_op2(w, &AddInto)?;
                Ok(d)
            } else if dtype == DType::F32 {
                w + d
            } else {
                (w.to_dtype(DType::F32)? + d)?.to_dtype(dtype)
            }
        };
        match &mut self.layer {
            PatchableMut::Linear(l) => {
                let new = plus(l.weight_t(), delta)?;
                l.replace_weight_t(new);
            }
            PatchableMut::Conv(c) => {
                let new = plus(c.weight_2d(), delta)?;
                c.replace_weight_2d(new).map_err(|e| candle_core::Error::Msg(e.to_string()))?;
            }
        }
        Ok(())
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

/// `dst += src` for contiguous f32 CPU tensors of equal size, in parallel.
struct AddInto;

impl candle_core::InplaceOp2 for AddInto {
    fn name(&self) -> &'static str {
        "lora-add-into"
    }

    fn cpu_fwd(
        &self,
        dst: &mut candle_core::CpuStorage,
        dst_layout: &candle_core::Layout,
        src: &candle_core::CpuStorage,
        src_layout: &candle_core::Layout,
    ) -> candle_core::Result<()> {
        use candle_core::CpuStorage::F32;
        const CHUNK: usize = 1 << 16;
        let (F32(dst), F32(src)) = (dst, src) else {
            return Err(candle_core::Error::Msg("lora-add-into takes f32 tensors".into()));
        };
        let slices = dst_layout
            .contiguous_offsets()
            .zip(src_layout.contiguous_offsets())
            .and_then(|((d0, d1), (s0, s1))| Some((dst.get_mut(d0..d1)?, src.get(s0..s1)?)));
        let Some((dst, src)) = slices.filter(|(d, s)| d.len() == s.len()) else {
            return Err(candle_core::Error::Msg(
                "lora-add-into takes contiguous tensors of equal size".into(),
            ));
        };
        dst.par_chunks_mut(CHUNK).zip(src.par_chunks(CHUNK)).for_each(|(d, s)| {
            d.iter_mut().zip(s).for_each(|(d, s)| *d += *s);
        });
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
    let files =
        specs.iter().map(|s| LoraFile::open(&s.path)).collect::<Result<Vec<_>, SdError>>()?;
    let pairs: Vec<(&LoraFile, LoraWeights)> =
        files.iter().zip(specs).map(|(f, s)| (f, s.weights)).collect();
    apply_lora_files(model, &pairs)
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
    let arch = model.arch();
    let device = model.device.clone();
    let model_name = arch_name(arch);
    for (lora, _) in loras {
        let family = lora.family();
        let expected = if arch.is_sdxl() { LoraFamily::Sdxl } else { LoraFamily::Sd1 };
        if family != LoraFamily::Unknown && family != expected {
            return Err(LoraError::WrongArchitecture {
                lora: lora.name().to_string(),
                lora_family: family,
                model: model_name,
                detail: "its layer names belong to the other family".into(),
            });
        }
    }
    let unet_names = UNetNames::new(model.unet.config());
    let encoders = model.text_encoders.len();
    let mut targets = collect_targets(model);
    let index = alias_index(&unet_names, encoders, &targets);
    // Phase 1, no arithmetic: which modules patch which layer.
    let mut plan: BTreeMap<usize, Vec<(usize, &str, &file::ModuleTensors, f32)>> = BTreeMap::new();
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
                model: model_name,
                detail: format!(
                    "none of its {} modules names a layer of this model (e.g. `{}`)",
                    lora.modules.len(),
                    lora.modules.keys().next().map_or("", String::as_str)
                ),
            });
        }
        report.loras.push(entry);
    }
    // Phase 2: per layer (in parallel), the summed difference of every LoRA, added once.
    let outcomes: Vec<Outcome> = targets
        .par_iter_mut()
        .enumerate()
        .filter_map(|(t, target)| {
            plan.get(&t).map(|modules| patch_target(target, modules, &device))
        })
        .collect();
    drop(targets);
    let mut originals = Vec::with_capacity(outcomes.len());
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

/// Sums the differences of `modules` (LoRA index, module name, tensors, user weight) and adds
/// them to `target`'s weight, keeping the original.
fn patch_target(
    target: &mut Target<'_>,
    modules: &[(usize, &str, &file::ModuleTensors, f32)],
    device: &candle_core::Device,
) -> Outcome {
    let mut outcome = Outcome::default();
    let dims = target.dims();
    let transposed = matches!(target.layer, PatchableMut::Linear(_));
    let mut total: Option<Tensor> = None;
    for &(l, module_name, module, weight) in modules {
        match math::module_delta(module, &dims, device, f64::from(weight), transposed) {
            Ok(delta) => {
                outcome.patched.push(l);
                let sum = match total.take() {
                    Some(sum) => sum + delta,
                    None => Ok(delta),
                };
                match sum {
                    Ok(sum) => total = Some(sum),
                    Err(e) => {
                        outcome.error = Some(PatchFailure::Candle(e));
                        return outcome;
                    }
                }
            }
            Err(DeltaError::Unusable(reason)) => outcome
                .unusable
                .push((l, module.keys.iter().map(|k| (k.clone(), reason.clone())).collect())),
            Err(DeltaError::Shape(reason)) => {
                let detail = format!("module `{module_name}`: {reason}");
                outcome.error = Some(PatchFailure::Shape { lora: l, detail });
                return outcome;
            }
        }
    }
    if let Some(total) = total {
        let saved = target.save();
        match target.add(&total) {
            Ok(()) => outcome.saved = Some((target.id.clone(), saved)),
            Err(e) => outcome.error = Some(PatchFailure::Candle(e)),
        }
    }
    outcome
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
