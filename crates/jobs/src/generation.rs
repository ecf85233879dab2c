//! The generation runner: the worker-side half of the queue for Stable Diffusion jobs. It owns
//! the model cache — a checkpoint loads once and is reused by every later job naming the same
//! file; naming another file frees the old model before loading the new one.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use candle_core::{DType, Device};
use pipeline::generate::{PipelineError, generate};
use pipeline::infotext::{ModelIdentity, infotext_for};
use pipeline::request::GenerationRequest;
use raster::{Image, Rgba8};
use sd::{Checkpoint, StableDiffusion};

use crate::{JobContext, JobError, Runner};

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
}

struct CachedModel {
    path: PathBuf,
    modified: Option<SystemTime>,
    model: StableDiffusion,
}

impl GenerationRunner {
    pub fn new(device: Device) -> Self {
        Self { device, cached: None, loads: 0 }
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
        let model = self.model_for(&job.model_path)?;
        ctx.check_cancelled()?;
        let generated = generate(model, &job.request, &mut |report| {
            ctx.step(report.step, report.total, report.preview(0));
            if ctx.is_cancelled() { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        })
        .map_err(|e| match e {
            PipelineError::Cancelled => JobError::Cancelled,
            other => JobError::Failed(other.to_string()),
        })?;
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
                    &job.identity,
                )
                .to_text(),
            })
            .collect())
    }
}
