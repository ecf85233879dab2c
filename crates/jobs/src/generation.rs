//! The generation runner: the worker-side half of the queue for Stable Diffusion jobs. It owns
//! the model cache — a checkpoint loads once and is reused by every later job naming the same
//! file (and VAE); naming another file frees the old model before loading the new one. LoRAs are
//! patched into the cached weights and stay applied while the following jobs name the same files
//! and weights (a batch after batch with one LoRA patches once); a job naming other LoRAs, or
//! none, first restores the checkpoint's own weights exactly. Changing LoRAs never reloads the
//! checkpoint.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use candle_core::{DType, Device};
use pipeline::conditioning::{PromptTokenizers, chunk_lists};
use pipeline::generate::{EncodedPrompts, PipelineError, ResultLayer, generate_with_chunks};
use pipeline::infotext::{ModelIdentity, infotext_for, ti_hashes_for_prompts};
use pipeline::record::{Placement, record_for};
use pipeline::request::GenerationRequest;
use raster::{Image, Rgba8};
use sd::embedding::EmbeddingSet;
use sd::library::{HashCache, Library, MODEL_HASH_LEN, NETWORK_HASH_LEN, cached_file_hashes};
use sd::lora::{AppliedLoras, LoraSpec, load_standalone_vae, repatch_loras, replace_vae};
use sd::{Checkpoint, StableDiffusion};

use crate::{JobContext, JobError, Runner};

/// Where embeddings are read from when the job names no folder and
/// [`GenerationRunner::with_embeddings_dir`] says nothing else (relative to the working
/// directory, as `pentimento generate` reads it).
pub const EMBEDDINGS_DIR: &str = "models/embeddings";

/// The embeddings of `dir`; a missing folder means none, a bad file is skipped with a warning
/// (the others stay usable).
fn load_embeddings(dir: Option<&PathBuf>) -> EmbeddingSet {
    let Some(dir) = dir.filter(|d| d.is_dir()) else { return EmbeddingSet::default() };
    match EmbeddingSet::load_folder(dir) {
        Ok((set, failures)) => {
            for (path, error) in failures {
                log::warn!("embedding {} skipped: {error}", path.display());
            }
            set
        }
        Err(error) => {
            log::warn!("embeddings in {} not read: {error}", dir.display());
            EmbeddingSet::default()
        }
    }
}

/// One job: which files, and the frozen request.
#[derive(Clone, Debug)]
pub struct GenerationJob {
    pub model_path: PathBuf,
    /// A standalone VAE replacing the checkpoint's.
    pub vae_path: Option<PathBuf>,
    /// LoRAs to patch in for this job, each with the name the infotext gives it.
    pub loras: Vec<(String, LoraSpec)>,
    /// Textual-inversion embeddings usable by file name in the prompts (`None`: the runner's
    /// folder).
    pub embeddings_dir: Option<PathBuf>,
    pub request: GenerationRequest,
    /// Where the results go in the document (copied into each record).
    pub placement: Placement,
    /// Scale whole-image results (txt2img, img2img, whole-picture inpaint) to this size
    /// (the canvas), with Lanczos as A1111 resizes; done here so the UI thread never resizes.
    pub scale_whole_results_to: Option<[u32; 2]>,
}

impl GenerationJob {
    /// A job for `request` on the checkpoint at `model_path` with nothing else.
    pub fn new(model_path: impl Into<PathBuf>, request: GenerationRequest) -> Self {
        Self {
            model_path: model_path.into(),
            vae_path: None,
            loras: Vec::new(),
            embeddings_dir: None,
            request,
            placement: Placement::default(),
            scale_whole_results_to: None,
        }
    }
}

/// One generated image with everything needed to apply or save it.
#[derive(Clone, Debug)]
pub struct Candidate {
    /// The full output image (pasted back over the init image for inpainting).
    pub image: Image<Rgba8>,
    /// The same result as a placed layer (for inpainting: the box with alpha = overlay mask).
    pub layer: ResultLayer,
    pub seed: u64,
    /// A1111 `parameters` text.
    pub infotext: String,
    pub record: doc::GenerationRecord,
}

/// The models the worker keeps between jobs.
pub struct GenerationRunner {
    device: Device,
    cached: Option<CachedModel>,
    hashes: HashCache,
    /// How many times a checkpoint was loaded (tests and diagnostics).
    loads: u32,
    /// How many times LoRAs were patched into a model (tests and diagnostics).
    lora_patches: u32,
    /// Embeddings folder for jobs that name none (read at every job, so files added meanwhile
    /// count; they are kilobytes).
    embeddings_dir: Option<PathBuf>,
}

#[derive(PartialEq)]
struct ModelKey {
    path: PathBuf,
    modified: Option<SystemTime>,
    vae: Option<(PathBuf, Option<SystemTime>)>,
}

struct CachedModel {
    key: ModelKey,
    model: StableDiffusion,
    /// The LoRAs patched into `model` now, with what restores its own weights.
    loras: Option<(LoraKey, AppliedLoras)>,
}

/// The LoRA files (with their modification times, so a rewritten file is patched again) and
/// weights a model is patched with.
#[derive(PartialEq)]
struct LoraKey(Vec<(LoraSpec, Option<SystemTime>)>);

impl LoraKey {
    fn of(specs: &[LoraSpec]) -> Self {
        Self(specs.iter().map(|s| (s.clone(), modified(&s.path))).collect())
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn failed(e: impl std::fmt::Display) -> JobError {
    JobError::Failed(e.to_string())
}

fn file_stem(path: &Path) -> String {
    path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

impl GenerationRunner {
    /// A runner whose hash cache lives only in memory.
    pub fn new(device: Device) -> Self {
        Self::with_hash_cache(device, HashCache::in_memory())
    }

    /// A runner sharing the on-disk hash cache, so a multi-GB checkpoint is hashed once ever.
    pub fn with_hash_cache(device: Device, hashes: HashCache) -> Self {
        Self {
            device,
            cached: None,
            hashes,
            loads: 0,
            lora_patches: 0,
            embeddings_dir: Some(PathBuf::from(EMBEDDINGS_DIR)),
        }
    }

    /// Reads embeddings from `dir` for jobs that name no folder (`None`: no embeddings).
    pub fn with_embeddings_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.embeddings_dir = dir;
        self
    }

    /// Number of checkpoint loads so far.
    pub fn loads(&self) -> u32 {
        self.loads
    }

    /// Number of times LoRAs were patched into the cached model so far.
    pub fn lora_patches(&self) -> u32 {
        self.lora_patches
    }

    /// The job's model carrying exactly the job's LoRAs: loaded or taken from the cache, then
    /// left as it is when it already carries them, else re-patched (an empty list restores the
    /// checkpoint's own weights; layers both patches touch are rewritten in place). A model
    /// that cannot be restored is dropped (the next job reloads it) rather than used with stray
    /// weights.
    fn prepared_model(&mut self, job: &GenerationJob) -> Result<&StableDiffusion, JobError> {
        self.model_for(job)?;
        let specs: Vec<LoraSpec> = job.loras.iter().map(|(_, s)| s.clone()).collect();
        let key = LoraKey::of(&specs);
        let Some(cached) = self.cached.as_mut() else {
            return Err(JobError::Failed("internal error: no model loaded".into()));
        };
        let wanted = (!specs.is_empty()).then_some(&key);
        if cached.loras.as_ref().map(|(k, _)| k) != wanted {
            let previous = cached.loras.take().map(|(_, applied)| applied);
            match repatch_loras(&mut cached.model, &specs, previous) {
                Ok(applied) => {
                    for key in applied.report().unmatched_keys() {
                        log::warn!("LoRA key matches no layer of this model: {key}");
                    }
                    if !specs.is_empty() {
                        cached.loras = Some((key, applied));
                        self.lora_patches += 1;
                    }
                }
                Err(e @ sd::lora::LoraError::Restore(_)) => {
                    self.cached = None;
                    return Err(JobError::Failed(format!(
                        "could not restore the model after its LoRAs: {e}"
                    )));
                }
                // The model is left with its own weights (see `repatch_lora_files`).
                Err(e) => return Err(failed(e)),
            }
        }
        self.cached
            .as_ref()
            .map(|c| &c.model)
            .ok_or_else(|| JobError::Failed("internal error: no model loaded".into()))
    }

    fn model_for(&mut self, job: &GenerationJob) -> Result<&mut StableDiffusion, JobError> {
        let key = ModelKey {
            path: job.model_path.clone(),
            modified: modified(&job.model_path),
            vae: job.vae_path.as_ref().map(|p| (p.clone(), modified(p))),
        };
        if self.cached.as_ref().is_none_or(|c| c.key != key) {
            // Free the old model first: two SDXL models at once would not fit in most machines.
            self.cached = None;
            let checkpoint = Checkpoint::open(&job.model_path).map_err(failed)?;
            let mut model =
                StableDiffusion::load(&checkpoint, &self.device, DType::F32).map_err(failed)?;
            if let Some(vae_path) = &job.vae_path {
                let vae = load_standalone_vae(vae_path, model.vae.scaling_factor(), &self.device)
                    .map_err(|e| {
                    JobError::Failed(format!("VAE {}: {e}", vae_path.display()))
                })?;
                replace_vae(&mut model, vae);
            }
            self.loads += 1;
            self.cached = Some(CachedModel { key, model, loras: None });
        }
        self.cached
            .as_mut()
            .map(|c| &mut c.model)
            .ok_or_else(|| JobError::Failed("internal error: no model loaded".into()))
    }

    /// `Model hash`, `VAE hash` and `Lora hashes` as A1111 writes them (hashed once per file
    /// version thanks to the cache).
    fn identity(&mut self, job: &GenerationJob) -> Result<ModelIdentity, JobError> {
        let mut short = |path: &Path, len: usize| -> Result<String, JobError> {
            let h = cached_file_hashes(path, &mut self.hashes, false).map_err(failed)?;
            Ok(h.sha256.chars().take(len).collect())
        };
        let hash = if job.model_path.is_file() {
            Some(short(&job.model_path, MODEL_HASH_LEN)?)
        } else {
            None
        };
        let vae_hash = job.vae_path.as_deref().map(|p| short(p, MODEL_HASH_LEN)).transpose()?;
        let mut lora_hashes = Vec::new();
        for (name, spec) in &job.loras {
            let entry = Library::inspect_file(&spec.path);
            let hash = match entry.metadata_hash {
                Some(h) => h.chars().take(NETWORK_HASH_LEN).collect(),
                None => {
                    let h =
                        cached_file_hashes(&spec.path, &mut self.hashes, true).map_err(failed)?;
                    h.addnet_sha256.unwrap_or(h.sha256).chars().take(NETWORK_HASH_LEN).collect()
                }
            };
            lora_hashes.push(doc::infotext::LoraHash { name: name.clone(), hash });
        }
        Ok(ModelIdentity {
            name: file_stem(&job.model_path),
            hash,
            vae_name: job
                .vae_path
                .as_deref()
                .and_then(Path::file_name)
                .map(|n| n.to_string_lossy().into_owned()),
            vae_hash,
            lora_hashes,
            ..Default::default()
        })
    }
}

impl Runner for GenerationRunner {
    type Request = GenerationJob;
    type Progress = Image<Rgba8>;
    type Output = Vec<Candidate>;

    fn run(
        &mut self,
        job: GenerationJob,
        ctx: &JobContext<'_, Image<Rgba8>>,
    ) -> Result<Vec<Candidate>, JobError> {
        ctx.check_cancelled()?;
        job.request.validate().map_err(failed)?;
        let identity = self.identity(&job)?;
        let embeddings =
            load_embeddings(job.embeddings_dir.as_ref().or(self.embeddings_dir.as_ref()));
        ctx.check_cancelled()?;
        let model = self.prepared_model(&job)?;
        let pipeline_failed = |e: PipelineError| match e {
            PipelineError::Cancelled => JobError::Cancelled,
            other => failed(other),
        };
        let run = |model: &StableDiffusion| -> Result<_, JobError> {
            let tokenizers = PromptTokenizers::for_model(model).map_err(pipeline_failed)?;
            let prompt =
                tokenizers.tokenize(&job.request.prompt, &embeddings).map_err(pipeline_failed)?;
            let negative = tokenizers
                .tokenize(&job.request.negative_prompt, &embeddings)
                .map_err(pipeline_failed)?;
            let (cond, uncond) = (chunk_lists(&prompt), chunk_lists(&negative));
            let prompts = EncodedPrompts { cond: &cond, uncond: &uncond, embeddings: &embeddings };
            let generated = generate_with_chunks(model, &job.request, &prompts, &mut |report| {
                ctx.step(report.step, report.total, report.preview(0));
                if ctx.is_cancelled() { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
            })
            .map_err(pipeline_failed)?;
            let ti_hashes =
                ti_hashes_for_prompts(&prompt, &negative, &embeddings).map_err(pipeline_failed)?;
            Ok((generated, ti_hashes, model.unet.config().in_channels == 9))
        };
        // The LoRAs stay patched for the next job; it restores them if it names others.
        let (generated, ti_hashes, inpainting_model) = run(model)?;
        // What the infotext adds from the run itself: the embeddings used and the UNet kind.
        let identity = ModelIdentity { ti_hashes, inpainting_model, ..identity };
        let mut out = Vec::with_capacity(generated.images.len());
        for (i, ((image, seed), layer)) in
            generated.images.into_iter().zip(generated.seeds).zip(generated.layers).enumerate()
        {
            let index = u32::try_from(i).unwrap_or(u32::MAX);
            let only_masked = job
                .request
                .inpaint
                .as_ref()
                .is_some_and(|o| o.area == pipeline::request::InpaintArea::OnlyMasked);
            let mut layer = layer;
            if let Some([w, h]) = job.scale_whole_results_to
                && !only_masked
                && [layer.image.width(), layer.image.height()] != [w, h]
            {
                let image = raster::resample::resize_rgba(
                    &layer.image,
                    w,
                    h,
                    raster::resample::ResampleFilter::Lanczos3,
                )
                .map_err(|e| failed(format!("cannot scale the result to the canvas: {e}")))?;
                layer = ResultLayer::whole(image);
            }
            let mut placement = job.placement.clone();
            if job.request.inpaint.is_some() {
                placement.context_box = Some(layer.rect);
            }
            out.push(Candidate {
                image,
                layer,
                seed,
                infotext: infotext_for(&job.request, index, &identity).to_text(),
                record: record_for(&job.request, index, &identity, &placement),
            });
        }
        Ok(out)
    }
}
