//! The generation runner: the worker-side half of the queue for Stable Diffusion jobs. It owns
//! the model cache — a checkpoint loads once and is reused by every later job naming the same
//! file; naming another file frees the old model before loading the new one.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use candle_core::{DType, Device};
use pipeline::conditioning::{PromptTokenizers, chunk_lists};
use pipeline::generate::{EncodedPrompts, PipelineError, generate_with_chunks};
use pipeline::infotext::{ModelIdentity, infotext_for, ti_hashes_for_prompts};
use pipeline::request::GenerationRequest;
use raster::{Image, Rgba8};
use sd::embedding::EmbeddingSet;
use sd::{Checkpoint, StableDiffusion};

use crate::{JobContext, JobError, Runner};

/// Where embeddings are read from unless [`GenerationRunner::with_embeddings_dir`] says
/// otherwise (relative to the working directory, as `pentimento generate` reads it).
pub const EMBEDDINGS_DIR: &str = "models/embeddings";

/// One job: which model, and the frozen request.
#[derive(Clone, Debug)]
pub struct GenerationJob {
    pub model_path: PathBuf,
    /// What the infotext says about the model (hash computed by the library beforehand).
    pub identity: ModelIdentity,
    pub request: GenerationRequest,
}

/// One generated image with everything needed to apply or save it.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub image: Image<Rgba8>,
    pub seed: u64,
    /// A1111 `parameters` text.
    pub infotext: String,
}

/// The models the worker keeps between jobs.
pub struct GenerationRunner {
    device: Device,
    cached: Option<CachedModel>,
    /// How many times a checkpoint was loaded (tests and diagnostics).
    loads: u32,
    /// Textual-inversion embeddings usable by file name in prompts (read at every job, so
    /// files added meanwhile count; they are kilobytes).
    embeddings_dir: Option<PathBuf>,
}

struct CachedModel {
    path: PathBuf,
    modified: Option<SystemTime>,
    model: StableDiffusion,
}

impl GenerationRunner {
    /// A runner on `device` with embeddings from `models/embeddings`, as `pentimento generate`.
    pub fn new(device: Device) -> Self {
        Self { device, cached: None, loads: 0, embeddings_dir: Some(PathBuf::from(EMBEDDINGS_DIR)) }
    }

    /// Reads embeddings from `dir` instead (`None`: no embeddings).
    pub fn with_embeddings_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.embeddings_dir = dir;
        self
    }

    /// The embeddings folder's files; a missing folder means none, a bad file is skipped with a
    /// warning (the others stay usable).
    fn embeddings(&self) -> EmbeddingSet {
        let Some(dir) = self.embeddings_dir.as_deref().filter(|d| d.is_dir()) else {
            return EmbeddingSet::default();
        };
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

    /// Number of checkpoint loads so far.
    pub fn loads(&self) -> u32 {
        self.loads
    }

    fn model_for(&mut self, path: &Path) -> Result<&StableDiffusion, JobError> {
        let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        let reuse = self.cached.as_ref().is_some_and(|c| c.path == path && c.modified == modified);
        if !reuse {
            // Free the old model first: two SDXL models at once would not fit in most machines.
            self.cached = None;
            let checkpoint = Checkpoint::open(path).map_err(|e| JobError::Failed(e.to_string()))?;
            let model = StableDiffusion::load(&checkpoint, &self.device, DType::F32)
                .map_err(|e| JobError::Failed(e.to_string()))?;
            self.loads += 1;
            self.cached = Some(CachedModel { path: path.to_path_buf(), modified, model });
        }
        self.cached
            .as_ref()
            .map(|c| &c.model)
            .ok_or_else(|| JobError::Failed("internal error: no model loaded".into()))
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
        let embeddings = self.embeddings();
        let model = self.model_for(&job.model_path)?;
        ctx.check_cancelled()?;
        let failed = |e: PipelineError| match e {
            PipelineError::Cancelled => JobError::Cancelled,
            other => JobError::Failed(other.to_string()),
        };
        let tokenizers = PromptTokenizers::for_model(model).map_err(failed)?;
        let prompt = tokenizers.tokenize(&job.request.prompt, &embeddings).map_err(failed)?;
        let negative =
            tokenizers.tokenize(&job.request.negative_prompt, &embeddings).map_err(failed)?;
        let (cond, uncond) = (chunk_lists(&prompt), chunk_lists(&negative));
        let prompts = EncodedPrompts { cond: &cond, uncond: &uncond, embeddings: &embeddings };
        let generated = generate_with_chunks(model, &job.request, &prompts, &mut |report| {
            ctx.step(report.step, report.total, report.preview(0));
            if ctx.is_cancelled() { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        })
        .map_err(failed)?;
        // What the infotext adds from the run itself: the embeddings used and the UNet kind.
        let identity = ModelIdentity {
            ti_hashes: ti_hashes_for_prompts(&prompt, &negative, &embeddings).map_err(failed)?,
            inpainting_model: model.unet.config().in_channels == 9,
            ..job.identity.clone()
        };
        Ok(generated
            .images
            .into_iter()
            .zip(generated.seeds)
            .enumerate()
            .map(|(i, (image, seed))| Candidate {
                image,
                seed,
                infotext: infotext_for(
                    &job.request,
                    u32::try_from(i).unwrap_or(u32::MAX),
                    &identity,
                )
                .to_text(),
            })
            .collect())
    }
}
