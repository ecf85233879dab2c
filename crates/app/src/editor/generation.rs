//! Generation in the editor: the panel's settings and the document frozen into a job, the queue
//! and its events, the live preview, and the batch tray whose candidates become layers.
//!
//! The flow (product.md §2): Generate freezes a [`GenerationJob`] (pixels of the visible
//! composite, the mask, every parameter, the seed) and a placement (parent layers), and submits
//! it to the worker that owns the model cache. Step events update the progress bar and the live
//! preview; Finished puts the candidates into the tray. Nothing touches the document until the
//! artist applies a candidate, which is one undoable command.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use candle_core::Device;
use doc::{InpaintArea, TrayCandidate};
use egui::TextureHandle;
use jobs::generation::{Candidate, GenerationJob, GenerationRunner};
use jobs::{Event, JobId, JobQueue};
use pipeline::infotext::sampler_from_a1111;
use pipeline::record::Placement;
use pipeline::request::{GenerationRequest, InitImage, InpaintOptions};
use raster::resample::{ResampleFilter, resize_rgba};
use raster::{Image, Rect, Rgba8};
use sd::library::{Library, ModelKind};
use sd::lora::{LoraSpec, LoraWeights};
use sd::prompt::{PromptOptions, is_lora_kind, lora_from_tag, split_extra_networks};
use sd::tokenizer::ClipTokenizer;
use ui::generation::{GenerationSettings, Mode, ModelChoice, SeedMode};
use ui::tray::TrayState;

use super::DocBridge;

/// What the editor keeps of a submitted job until its results arrive.
struct Submitted {
    id: JobId,
    /// Where the live preview is drawn (canvas pixels).
    preview_rect: Rect,
    /// For Re-roll: the job as submitted.
    job: GenerationJob,
}

/// The running job's progress.
pub struct Progress {
    pub id: JobId,
    pub step: u32,
    pub total: u32,
    /// When the first step finished (ETA counts from there: model loading is not a step).
    first_step: Option<Instant>,
}

impl Progress {
    /// Seconds left, from the mean step time so far.
    pub fn eta_s(&self) -> Option<f32> {
        let first = self.first_step?;
        if self.step <= 1 || self.total == 0 {
            return None;
        }
        let per_step = first.elapsed().as_secs_f32() / (self.step - 1) as f32;
        Some(per_step * (self.total - self.step) as f32)
    }
}

/// The library scan, run on a worker thread.
type ScanResult = (Vec<ModelChoice>, Vec<ModelChoice>, Library, sd::library::HashCache);

/// A LoRA or embedding of the library with the family it was made for.
#[derive(Clone, Debug)]
pub struct Network {
    pub name: String,
    pub sdxl: Option<bool>,
}

/// The generation side of the editor.
pub struct GenerationUi {
    pub panel: ui::generation::GenerationPanelState,
    pub tray_state: TrayState,
    queue: Option<JobQueue<GenerationRunner>>,
    submitted: VecDeque<Submitted>,
    pub progress: Option<Progress>,
    /// The live preview of the running job: texture and where it goes.
    pub preview: Option<(TextureHandle, Rect)>,
    /// Thumbnails of the tray's candidates, rebuilt when the tray changes.
    tray_textures: Vec<TextureHandle>,
    tray_key: Vec<(i32, i32, u32, u32, u64)>,
    /// The full-size texture of the previewed candidate: (tray index, texture).
    candidate_texture: Option<(usize, TextureHandle)>,
    pub models: Vec<ModelChoice>,
    pub vaes: Vec<ModelChoice>,
    pub loras: Vec<Network>,
    pub embeddings: Vec<Network>,
    library: Option<Library>,
    scan: Option<mpsc::Receiver<ScanResult>>,
    /// Hashes the library's files lacking them (cached by path, size and mtime), so "Reuse
    /// parameters" can find models, LoRAs and VAEs by the hashes an infotext names.
    hashing: Option<(sd::library::HashWorker, mpsc::Receiver<sd::library::HashEvent>)>,
    /// Files hashed so far and in all, while hashing runs.
    pub hash_progress: Option<(usize, usize)>,
    /// Where hashes are cached between runs (shared with the CLI); `None` keeps them in memory.
    pub hash_cache_path: Option<PathBuf>,
    pub last_seed: Option<u64>,
    /// Token counters keyed by the text they count.
    tokens: Option<(String, String, String, String)>,
    tokenizer: Option<ClipTokenizer>,
    /// Mask analysis keyed by document revision and the settings it depends on.
    mask_cache: Option<(MaskKey, bool, Option<Rect>)>,
    /// The explicit context box dragged on the canvas (canvas pixels).
    pub context_box: Option<Rect>,
    /// The last job that finished, for Re-roll.
    finished_job: Option<GenerationJob>,
    /// The lineage window is open.
    pub show_lineage: bool,
    /// Dragging the context box's edges on the canvas.
    pub context_drag: ui::generation::ContextBoxDrag,
}

#[derive(Clone, PartialEq)]
struct MaskKey {
    revision: u64,
    invert: bool,
    blur_px: u32,
    padding_px: u32,
    working: [u32; 2],
    context: Option<Rect>,
}

/// Roots scanned for models: `models/` next to the working directory and the configured ones.
pub fn model_roots(extra: &[PathBuf]) -> Vec<PathBuf> {
    let mut roots = vec![PathBuf::from("models")];
    roots.extend(extra.iter().cloned());
    roots
}

impl Default for GenerationUi {
    fn default() -> Self {
        Self {
            panel: Default::default(),
            tray_state: TrayState::default(),
            queue: None,
            submitted: VecDeque::new(),
            progress: None,
            preview: None,
            tray_textures: Vec::new(),
            tray_key: Vec::new(),
            candidate_texture: None,
            models: Vec::new(),
            vaes: Vec::new(),
            loras: Vec::new(),
            embeddings: Vec::new(),
            library: None,
            scan: None,
            hashing: None,
            hash_progress: None,
            hash_cache_path: hash_cache_file(),
            last_seed: None,
            tokens: None,
            tokenizer: ClipTokenizer::clip_l().ok(),
            mask_cache: None,
            context_box: None,
            finished_job: None,
            show_lineage: false,
            context_drag: Default::default(),
        }
    }
}

fn choice(entry: &sd::library::LibraryEntry) -> ModelChoice {
    let (architecture, native_px) = match entry.arch {
        Some(sd::ModelArch::Sd1) => ("SD1.x", 512),
        Some(sd::ModelArch::Sd1Inpaint) => ("SD1.x inpaint", 512),
        Some(sd::ModelArch::Sdxl) => ("SDXL", 1024),
        Some(sd::ModelArch::SdxlInpaint) => ("SDXL inpaint", 1024),
        None => ("", 512),
    };
    ModelChoice {
        path: entry.path.clone(),
        name: entry.name.clone(),
        architecture: architecture.to_owned(),
        native_px,
    }
}

/// A random seed in A1111's range (0..2³²−1).
pub fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish() % 4_294_967_295
}

/// The layer name of a candidate: the prompt's start and the seed.
pub fn candidate_name(prompt: &str, seed: u64) -> String {
    let text: String = split_extra_networks(prompt)
        .map(|(t, _)| t)
        .unwrap_or_else(|_| prompt.to_owned())
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let mut short: String = text.chars().take(32).collect();
    if text.chars().count() > 32 {
        short.push('…');
    }
    if short.is_empty() { format!("Generated · {seed}") } else { format!("{short} · {seed}") }
}

impl GenerationUi {
    /// Starts a library scan on a worker thread (at start and on "Rescan models").
    pub fn rescan(&mut self, ctx: &egui::Context, extra_roots: &[PathBuf]) {
        let roots = model_roots(extra_roots);
        let (tx, rx) = mpsc::channel();
        let ctx = ctx.clone();
        let cache_path = self.hash_cache_path.clone();
        // A rescan restarts hashing from the new file list.
        self.hashing = None;
        self.hash_progress = None;
        let spawned =
            std::thread::Builder::new().name("pentimento-library".into()).spawn(move || {
                let cache = match cache_path {
                    Some(f) => sd::library::HashCache::load_or_empty(f).0,
                    None => sd::library::HashCache::in_memory(),
                };
                let library = Library::scan_with_cache(&roots, &cache);
                let pick =
                    |kind| library.list(kind, "").into_iter().map(choice).collect::<Vec<_>>();
                let models = pick(ModelKind::Checkpoint);
                let vaes = pick(ModelKind::Vae);
                let _ = tx.send((models, vaes, library, cache));
                ctx.request_repaint();
            });
        if spawned.is_ok() {
            self.scan = Some(rx);
        }
    }

    /// Takes a finished scan; picks the first model when none is chosen yet.
    pub fn poll_scan(&mut self, ctx: &egui::Context, settings: &mut GenerationSettings) {
        self.poll_hashing();
        let Some(rx) = &self.scan else { return };
        if let Ok((models, vaes, library, cache)) = rx.try_recv() {
            self.start_hashing(ctx, &library, cache);
            self.models = models;
            self.vaes = vaes;
            let networks = |kind| {
                library
                    .list(kind, "")
                    .into_iter()
                    .map(|e| Network {
                        name: e.stem.clone(),
                        sdxl: e.arch.map(sd::ModelArch::is_sdxl),
                    })
                    .collect::<Vec<_>>()
            };
            self.loras = networks(ModelKind::Lora);
            self.embeddings = networks(ModelKind::Embedding);
            self.library = Some(library);
            self.scan = None;
            if settings.model.is_none()
                && let Some(first) = self.models.first()
            {
                settings.model = Some(first.path.clone());
            }
        }
    }

    fn start_hashing(
        &mut self,
        ctx: &egui::Context,
        library: &Library,
        cache: sd::library::HashCache,
    ) {
        let jobs = library.missing_hashes();
        if jobs.is_empty() {
            return;
        }
        let (tx, rx) = mpsc::channel();
        let ctx = ctx.clone();
        let worker = sd::library::HashWorker::spawn(jobs, cache, move |event| {
            let _ = tx.send(event);
            ctx.request_repaint();
        });
        match worker {
            Ok(w) => self.hashing = Some((w, rx)),
            Err(e) => log::warn!("cannot hash the model library: {e}"),
        }
    }

    /// Folds finished hashes into the library.
    fn poll_hashing(&mut self) {
        let Some((_, rx)) = &self.hashing else { return };
        let mut finished = false;
        while let Ok(event) = rx.try_recv() {
            match &event {
                sd::library::HashEvent::Started { files_total, .. } => {
                    self.hash_progress = Some((0, *files_total));
                }
                sd::library::HashEvent::Progress { files_done, files_total, .. } => {
                    self.hash_progress = Some((*files_done, *files_total));
                }
                sd::library::HashEvent::Failed { path, message } => {
                    log::warn!("cannot hash {}: {message}", path.display());
                }
                sd::library::HashEvent::Finished(report) => {
                    if let Some(e) = &report.cache_error {
                        log::warn!("cannot save the hash cache: {e}");
                    }
                    finished = true;
                }
                sd::library::HashEvent::Hashed { .. } => {}
            }
            if let Some(library) = &mut self.library {
                library.apply_event(&event);
            }
        }
        if finished {
            self.hashing = None;
            self.hash_progress = None;
        }
    }

    /// True while the library is scanned or its files are still being hashed.
    #[allow(dead_code, reason = "the kittest tests wait on it; the panel shows hash_progress")]
    pub fn is_hashing(&self) -> bool {
        self.hashing.is_some() || self.scan.is_some()
    }

    /// A new document replaced the old one: nothing cached of the old one's mask still holds.
    pub fn forget_document(&mut self) {
        self.mask_cache = None;
        self.context_box = None;
        self.tray_state = TrayState::default();
    }

    /// Jobs queued or running.
    pub fn jobs_in_queue(&self) -> usize {
        self.submitted.len()
    }

    pub fn is_busy(&self) -> bool {
        !self.submitted.is_empty()
    }

    /// A1111 counters ("12/75") for the prompt and negative prompt, recounted when they change.
    pub fn token_counters(&mut self, prompt: &str, negative: &str) -> (String, String) {
        if let Some((p, n, pc, nc)) = &self.tokens
            && p == prompt
            && n == negative
        {
            return (pc.clone(), nc.clone());
        }
        let count = |text: &str| -> String {
            let Some(tok) = &self.tokenizer else { return String::new() };
            match sd::prompt::tokenize_prompt(
                text,
                tok,
                &PromptOptions::default(),
                &sd::prompt::NoEmbeddings,
            ) {
                Ok(chunks) => chunks.token_counter().to_string(),
                Err(e) => format!("({e})"),
            }
        };
        let (pc, nc) = (count(prompt), count(negative));
        self.tokens = Some((prompt.to_owned(), negative.to_owned(), pc.clone(), nc.clone()));
        (pc, nc)
    }

    /// The mode the document implies, and the only-masked crop box the model would see.
    pub fn mode_and_box(
        &mut self,
        doc: &DocBridge,
        settings: &GenerationSettings,
    ) -> (Mode, Option<Rect>) {
        let key = MaskKey {
            revision: doc.mask_revision(),
            invert: settings.invert_mask,
            blur_px: settings.mask_blur_px,
            padding_px: settings.padding_px,
            working: [settings.width, settings.height],
            context: self.context_box,
        };
        let (painted, crop) = match &self.mask_cache {
            Some((k, painted, crop)) if *k == key => (*painted, *crop),
            _ => {
                let painted = doc.mask_is_painted();
                let crop = if painted {
                    pipeline::inpaint::only_masked_crop_box(
                        &doc.mask_image(),
                        settings.invert_mask,
                        settings.mask_blur_px,
                        settings.padding_px,
                        self.context_box,
                        settings.width,
                        settings.height,
                    )
                } else {
                    None
                };
                self.mask_cache = Some((key, painted, crop));
                (painted, crop)
            }
        };
        let mode = Mode::for_document(painted, settings.strength);
        let crop = if mode == Mode::Inpaint && settings.inpaint_area == InpaintArea::OnlyMasked {
            crop
        } else {
            None
        };
        (mode, crop)
    }

    /// Freezes the document and settings into a job; `seed_override` forces the seed.
    pub fn build_job(
        &mut self,
        doc: &mut DocBridge,
        settings: &GenerationSettings,
        seed_override: Option<u64>,
    ) -> Result<GenerationJob, String> {
        let model_path = settings
            .model
            .clone()
            .ok_or("Pick a model first: put .safetensors checkpoints into models/checkpoints")?;
        let (sampler, schedule) =
            sampler_from_a1111(&settings.sampler, Some(&settings.schedule))
                .ok_or_else(|| format!("unknown sampler '{}'", settings.sampler))?;
        let seed = match (seed_override, settings.seed_mode) {
            (Some(s), _) => s,
            (None, SeedMode::Fixed) => settings.seed,
            (None, SeedMode::Random) => random_seed(),
        };
        let (mode, _) = self.mode_and_box(doc, settings);
        let [cw, ch] = doc.size();
        let mut request = GenerationRequest {
            prompt: settings.prompt.clone(),
            negative_prompt: settings.negative_prompt.clone(),
            width: settings.width,
            height: settings.height,
            steps: settings.steps,
            cfg_scale: settings.cfg_scale,
            seed,
            batch_size: settings.batch_size,
            sampler,
            schedule,
            clip_skip: settings.clip_skip,
            init: None,
            inpaint: None,
        };
        let canvas = Rect::from_size(cw, ch);
        let mut placement = Placement::default();
        if mode != Mode::Txt2img {
            request.init =
                Some(InitImage { image: doc.composite(canvas), strength: settings.strength });
            placement.parent_layers = doc.visible_layer_ids();
            placement.source_box = Some(canvas);
            placement.context_box = Some(canvas);
        } else {
            placement.parent_layers = doc.active_layer_id().into_iter().collect();
        }
        if mode == Mode::Inpaint {
            request.inpaint = Some(InpaintOptions {
                mask: doc.mask_image(),
                invert_mask: settings.invert_mask,
                area: settings.inpaint_area,
                padding_px: settings.padding_px,
                mask_blur_px: settings.mask_blur_px,
                masked_content: settings.masked_content,
                context: self.context_box,
            });
        }
        request.validate().map_err(|e| e.to_string())?;
        let loras = self.resolve_loras(&settings.prompt)?;
        let embeddings_dir = self
            .library
            .as_ref()
            .and_then(|l| {
                l.list(ModelKind::Embedding, "")
                    .first()
                    .and_then(|e| e.path.parent().map(PathBuf::from))
            })
            .or_else(|| Some(PathBuf::from("models/embeddings")));
        Ok(GenerationJob {
            model_path,
            vae_path: settings.vae.clone(),
            loras,
            embeddings_dir,
            request,
            placement,
            scale_whole_results_to: Some([cw, ch]),
        })
    }

    /// `<lora:name:w>` tags of the prompt, found by name in the library.
    fn resolve_loras(&self, prompt: &str) -> Result<Vec<(String, LoraSpec)>, String> {
        let (_, tags) = split_extra_networks(prompt).map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for tag in tags.into_iter().filter(|t| is_lora_kind(&t.kind)) {
            let lora = lora_from_tag(&tag).map_err(|e| e.to_string())?;
            let entry = self
                .library
                .as_ref()
                .and_then(|l| l.find_by_name(&lora.name, ModelKind::Lora))
                .ok_or_else(|| {
                    format!("The prompt uses <lora:{}>, but no LoRA of that name is in the model folders", lora.name)
                })?;
            out.push((
                lora.name.clone(),
                LoraSpec {
                    path: entry.path.clone(),
                    weights: LoraWeights { text_encoder: lora.te_weight, unet: lora.unet_weight },
                },
            ));
        }
        Ok(out)
    }

    /// Queues `job`; starts the worker on first use.
    pub fn submit(
        &mut self,
        ctx: &egui::Context,
        job: GenerationJob,
        canvas: [u32; 2],
    ) -> Result<JobId, String> {
        if self.queue.is_none() {
            let device = pipeline::generate::device_from_name("auto").unwrap_or(Device::Cpu);
            let hashes = match hash_cache_file() {
                Some(f) => sd::library::HashCache::load_or_empty(f).0,
                None => sd::library::HashCache::in_memory(),
            };
            let ctx = ctx.clone();
            let queue = JobQueue::start(
                GenerationRunner::with_hash_cache(device, hashes),
                "pentimento-generate",
                move || ctx.request_repaint(),
            )
            .map_err(|e| format!("cannot start the generation worker: {e}"))?;
            self.queue = Some(queue);
        }
        let working = [job.request.width, job.request.height];
        let only_masked =
            job.request.inpaint.as_ref().is_some_and(|i| i.area == InpaintArea::OnlyMasked);
        let preview_rect = if only_masked {
            job.request
                .inpaint
                .as_ref()
                .and_then(|i| {
                    pipeline::inpaint::only_masked_crop_box(
                        &i.mask,
                        i.invert_mask,
                        i.mask_blur_px,
                        i.padding_px,
                        i.context,
                        working[0],
                        working[1],
                    )
                })
                .unwrap_or(Rect::from_size(canvas[0], canvas[1]))
        } else {
            Rect::from_size(canvas[0], canvas[1])
        };
        self.last_seed = Some(job.request.seed);
        let Some(queue) = self.queue.as_mut() else {
            return Err("the generation worker is not running".into());
        };
        let id = queue.submit(job.clone());
        self.submitted.push_back(Submitted { id, preview_rect, job });
        Ok(id)
    }

    /// Cancels everything queued and running; the document was never touched.
    pub fn cancel_all(&mut self) {
        if let Some(q) = self.queue.as_mut() {
            q.cancel_all();
        }
        self.submitted.clear();
        self.progress = None;
        self.preview = None;
    }

    /// The job that made the last batch (Re-roll submits it again with new seeds).
    pub fn last_job(&self) -> Option<&GenerationJob> {
        self.submitted.back().map(|s| &s.job).or(self.finished_job.as_ref())
    }

    /// Drains the worker's events; finished candidates go into `tray`. Returns error messages
    /// for notifications.
    pub fn poll(&mut self, ctx: &egui::Context, tray: &mut Vec<TrayCandidate>) -> Vec<String> {
        let mut errors = Vec::new();
        let Some(queue) = self.queue.as_mut() else { return errors };
        for event in queue.poll() {
            match event {
                Event::Started { id } => {
                    self.progress = Some(Progress { id, step: 0, total: 0, first_step: None });
                }
                Event::Step { id, step, total, preview } => {
                    if let Some(p) = self.progress.as_mut().filter(|p| p.id == id) {
                        p.step = step;
                        p.total = total;
                        if p.first_step.is_none() {
                            p.first_step = Some(Instant::now());
                        }
                    }
                    if let (Some(img), Some(sub)) =
                        (preview, self.submitted.iter().find(|s| s.id == id))
                    {
                        let tex = ctx.load_texture(
                            "generation-preview",
                            egui::ColorImage::from_rgba_unmultiplied(
                                [img.width() as usize, img.height() as usize],
                                img.as_bytes(),
                            ),
                            egui::TextureOptions::LINEAR,
                        );
                        self.preview = Some((tex, sub.preview_rect));
                    }
                }
                Event::Finished { id, output } => {
                    if let Some(pos) = self.submitted.iter().position(|s| s.id == id) {
                        let sub = self.submitted.remove(pos);
                        if let Some(sub) = sub {
                            let first_new = tray.len();
                            tray.extend(output.into_iter().map(candidate_for_tray));
                            if tray.len() > first_new {
                                self.tray_state.selected = Some(first_new);
                            }
                            // Keep the job for Re-roll.
                            self.finished_job = Some(sub.job);
                        }
                    }
                    self.progress = None;
                    self.preview = None;
                }
                Event::Failed { id, message } => {
                    self.submitted.retain(|s| s.id != id);
                    self.progress = None;
                    self.preview = None;
                    errors.push(format!("Generation failed: {message}"));
                }
                Event::Cancelled { id } => {
                    self.submitted.retain(|s| s.id != id);
                    self.progress = None;
                    self.preview = None;
                }
            }
        }
        if self.is_busy() {
            // The ETA and spinner move between step events.
            ctx.request_repaint_after(Duration::from_millis(250));
        }
        errors
    }
}

/// Where the hash cache lives (shared with `pentimento generate`): `$PENTIMENTO_CACHE_DIR`,
/// else the platform cache folder.
pub fn hash_cache_file() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("PENTIMENTO_CACHE_DIR") {
        return Some(PathBuf::from(dir).join("hashes.json"));
    }
    directories::ProjectDirs::from("app", "Pentimento", "pentimento")
        .map(|dirs| dirs.cache_dir().join("hashes.json"))
}

/// A finished candidate as it will land on the canvas (the worker already scaled whole-image
/// results to the canvas).
fn candidate_for_tray(c: Candidate) -> TrayCandidate {
    TrayCandidate {
        name: candidate_name(&c.record.prompt, c.seed),
        x: c.layer.rect.x,
        y: c.layer.rect.y,
        image: c.layer.image,
        record: c.record,
    }
}

// ---- the editor's side: submit, apply, reuse -------------------------------------------------

impl super::EditorApp {
    /// Generate (button or Ctrl+Enter): freezes the document into a job and queues it.
    pub fn generate(&mut self, ctx: &egui::Context, seed_override: Option<u64>) {
        let settings = self.settings.generation.clone();
        let job = self.generation.build_job(&mut self.doc, &settings, seed_override);
        self.submit_job(ctx, job);
    }

    fn submit_job(&mut self, ctx: &egui::Context, job: Result<GenerationJob, String>) {
        let canvas = self.doc.size();
        match job.and_then(|j| self.generation.submit(ctx, j, canvas)) {
            Ok(_) => {}
            Err(e) => self.toasts.error(e),
        }
    }

    /// Re-roll: the last batch's job again with a fresh random seed.
    pub fn reroll(&mut self, ctx: &egui::Context) {
        let Some(mut job) = self.generation.last_job().cloned() else {
            self.toasts.info("Nothing to re-roll yet: generate first.");
            return;
        };
        job.request.seed = random_seed();
        self.submit_job(ctx, Ok(job));
    }

    /// Same seed: candidate `index`'s seed with the current document and settings, one image.
    pub fn same_seed(&mut self, ctx: &egui::Context, index: usize) {
        let Some(seed) = self.doc.tray.get(index).map(|c| c.record.seed) else { return };
        let mut settings = self.settings.generation.clone();
        settings.batch_size = 1;
        let job = self.generation.build_job(&mut self.doc, &settings, Some(seed));
        self.submit_job(ctx, job);
    }

    /// Applies tray candidate `index` as a new layer above its source (one undo step). The
    /// candidate stays in the tray: any number can be applied.
    pub fn apply_candidate(&mut self, index: usize) {
        let Some(candidate) = self.doc.tray.get(index).cloned() else { return };
        let r = self.doc.apply_candidate(&candidate, &candidate.record.parent_layers);
        self.report(r);
    }

    pub fn discard_candidate(&mut self, index: usize) {
        if index < self.doc.tray.len() {
            self.doc.tray.remove(index);
            self.tray_changed = true;
        }
    }

    /// Fills the panel from a generation record (Reuse parameters).
    pub fn reuse_record(&mut self, record: &doc::GenerationRecord) {
        let resolved = self.generation.resolve_networks(record);
        for missing in &resolved.missing {
            self.toasts.info(missing.clone());
        }
        let g = &mut self.settings.generation;
        g.prompt = resolved.prompt;
        g.vae = resolved.vae;
        g.negative_prompt = record.negative_prompt.clone();
        if let Some((kind, schedule)) = sampler_from_a1111(&record.sampler, Some(&record.schedule))
        {
            g.sampler = kind.a1111_name().to_owned();
            g.schedule = pipeline::infotext::a1111_schedule_name(schedule).to_owned();
        }
        g.steps = record.steps.max(1);
        g.cfg_scale = record.cfg_scale;
        g.seed = record.seed;
        g.seed_mode = SeedMode::Fixed;
        if record.width > 0 && record.height > 0 {
            g.width = record.width;
            g.height = record.height;
        }
        g.clip_skip = record.clip_skip.unwrap_or(1);
        g.strength = record.strength.unwrap_or(1.0);
        if let Some(i) = &record.inpaint {
            g.inpaint_area = i.area;
            g.padding_px = i.padding_px;
            g.mask_blur_px = i.mask_blur_px;
            g.masked_content = i.masked_content;
            g.invert_mask = i.inverted;
        }
        // The model by hash first (names change), then by name.
        let found = self.generation.find_model(&record.model);
        match found {
            Some(path) => g.model = Some(path),
            None if !record.model.name.is_empty() => self.toasts.info(format!(
                "The model {} ({}) is not in the model folders; keeping the current model.",
                record.model.name,
                record.model.hash.as_deref().unwrap_or("no hash")
            )),
            None => {}
        }
        self.generation.context_box = record.context_box.filter(|_| record.inpaint.is_some());
    }
}

/// What "Reuse parameters" makes of a record's LoRAs and VAE with the current model library.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResolvedNetworks {
    /// The prompt with each `<lora:alias:` renamed to the library file its hash names (a LoRA
    /// the user renamed is still found, as A1111's Lora `infotext_pasted` does).
    pub prompt: String,
    /// The VAE file to select; `None` is the checkpoint's own VAE.
    pub vae: Option<PathBuf>,
    /// One message per LoRA or VAE the library has neither by hash nor by name.
    pub missing: Vec<String>,
}

impl GenerationUi {
    /// Resolves a record's LoRAs (by hash, then by name) and VAE against the library.
    pub fn resolve_networks(&self, record: &doc::GenerationRecord) -> ResolvedNetworks {
        let Some(library) = self.library.as_ref() else {
            return ResolvedNetworks {
                prompt: record.prompt.clone(),
                vae: None,
                missing: Vec::new(),
            };
        };
        let hashes: Vec<(&str, &str)> = record
            .loras
            .iter()
            .filter_map(|l| Some((l.name.as_str(), l.hash.as_deref()?)))
            .collect();
        let prompt = library.rewrite_prompt_loras_by(&record.prompt, &hashes);
        let mut missing = Vec::new();
        for lora in &record.loras {
            let found =
                library.find_by_hash_or_name(lora.hash.as_deref(), &lora.name, ModelKind::Lora);
            if found.is_none() {
                missing.push(format!(
                    "The LoRA {} ({}) is not in the model folders.",
                    lora.name,
                    lora.hash.as_deref().unwrap_or("no hash")
                ));
            }
        }
        let vae = record.vae.as_ref().and_then(|v| {
            let found = library.find_by_hash_or_name(v.hash.as_deref(), &v.name, ModelKind::Vae);
            if found.is_none() {
                missing.push(format!(
                    "The VAE {} ({}) is not in the model folders; using the checkpoint's own.",
                    v.name,
                    v.hash.as_deref().unwrap_or("no hash")
                ));
            }
            found.map(|e| e.path.clone())
        });
        ResolvedNetworks { prompt, vae, missing }
    }

    /// A checkpoint in the library by A1111 hash, else by name.
    pub fn find_model(&self, model: &doc::ModelRef) -> Option<PathBuf> {
        let library = self.library.as_ref()?;
        library
            .find_by_hash_or_name(model.hash.as_deref(), &model.name, ModelKind::Checkpoint)
            .map(|e| e.path.clone())
    }

    /// Tray thumbnails, rebuilt when the tray's candidates change.
    pub fn tray_items(
        &mut self,
        ctx: &egui::Context,
        tray: &[TrayCandidate],
    ) -> Vec<ui::tray::TrayItem> {
        let key: Vec<_> = tray
            .iter()
            .map(|c| (c.x, c.y, c.image.width(), c.image.height(), c.record.seed))
            .collect();
        if key != self.tray_key {
            self.tray_textures = tray
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let thumb = thumbnail(&c.image, 96);
                    ctx.load_texture(
                        format!("tray-{i}"),
                        egui::ColorImage::from_rgba_unmultiplied(
                            [thumb.width() as usize, thumb.height() as usize],
                            thumb.as_bytes(),
                        ),
                        egui::TextureOptions::LINEAR,
                    )
                })
                .collect();
            self.tray_key = key;
            self.candidate_texture = None;
        }
        tray.iter()
            .zip(&self.tray_textures)
            .map(|(c, tex)| {
                let s = tex.size_vec2();
                let scale = 72.0 / s.x.max(s.y).max(1.0);
                ui::tray::TrayItem {
                    thumbnail: tex.id(),
                    size: [s.x * scale, s.y * scale],
                    label: format!("seed {}", c.record.seed),
                    tooltip: format!(
                        "{}\nseed {} · {} · {} steps · CFG {}",
                        c.record.prompt,
                        c.record.seed,
                        c.record.sampler,
                        c.record.steps,
                        c.record.cfg_scale
                    ),
                }
            })
            .collect()
    }

    /// The full-size texture of candidate `index` (cached while it stays previewed).
    pub fn candidate_texture(
        &mut self,
        ctx: &egui::Context,
        tray: &[TrayCandidate],
        index: usize,
    ) -> Option<(egui::TextureId, Rect)> {
        let c = tray.get(index)?;
        let cached = self.candidate_texture.as_ref().filter(|(i, _)| *i == index);
        if cached.is_none() {
            let tex = ctx.load_texture(
                "tray-preview",
                egui::ColorImage::from_rgba_unmultiplied(
                    [c.image.width() as usize, c.image.height() as usize],
                    c.image.as_bytes(),
                ),
                egui::TextureOptions::LINEAR,
            );
            self.candidate_texture = Some((index, tex));
        }
        self.candidate_texture.as_ref().map(|(_, t)| (t.id(), c.rect()))
    }
}

/// A small copy of `img`, at most `max_px` a side (box-ish nearest sampling is enough here).
fn thumbnail(img: &Image<Rgba8>, max_px: u32) -> Image<Rgba8> {
    let (w, h) = (img.width(), img.height());
    let scale = (w.max(h) as f32 / max_px as f32).max(1.0);
    let (tw, th) = (((w as f32 / scale) as u32).max(1), ((h as f32 / scale) as u32).max(1));
    resize_rgba(img, tw, th, ResampleFilter::Bilinear).unwrap_or_else(|_| img.clone())
}

/// A record as A1111 `parameters` text (Show parameters, PNG export).
pub fn record_text(r: &doc::GenerationRecord) -> String {
    let mut info = doc::infotext::Infotext {
        prompt: r.prompt.clone(),
        negative_prompt: r.negative_prompt.clone(),
        params: Vec::new(),
    };
    info.set("Steps", r.steps);
    info.set("Sampler", &r.sampler);
    info.set("Schedule type", &r.schedule);
    info.set("CFG scale", r.cfg_scale);
    info.set("Seed", r.seed);
    info.set_size(r.width, r.height);
    if let Some(h) = &r.model.hash {
        info.set("Model hash", h);
    }
    if !r.model.name.is_empty() {
        info.set("Model", &r.model.name);
    }
    if let Some(v) = &r.vae {
        if let Some(h) = &v.hash {
            info.set("VAE hash", h);
        }
        info.set("VAE", &v.name);
    }
    if let Some(s) = r.strength {
        info.set("Denoising strength", s);
    }
    if let Some(c) = r.clip_skip {
        info.set("Clip skip", c);
    }
    if let Some(i) = &r.inpaint {
        info.set("Mask blur", i.mask_blur_px);
        info.set("Inpaint area", i.area.infotext_name());
        info.set("Masked area padding", i.padding_px);
        info.set("Masked content", i.masked_content.infotext_name());
    }
    let hashes: Vec<doc::infotext::LoraHash> = r
        .loras
        .iter()
        .filter_map(|l| {
            l.hash
                .as_ref()
                .map(|h| doc::infotext::LoraHash { name: l.name.clone(), hash: h.clone() })
        })
        .collect();
    if !hashes.is_empty() {
        info.set_lora_hashes(&hashes);
    }
    for (k, v) in &r.extra {
        info.set(k, v);
    }
    info.to_text()
}

impl super::EditorApp {
    /// The chain of generations that led to the active layer: each step's generated parent.
    pub fn lineage(&self) -> Vec<usize> {
        let mut chain = Vec::new();
        let mut current = Some(self.doc.active_layer());
        while let Some(index) = current {
            if chain.contains(&index) {
                break;
            }
            let Some(record) = self.doc.layer_record(index) else { break };
            chain.push(index);
            current = record
                .parent_layers
                .iter()
                .filter_map(|id| self.doc.index_of(*id))
                .filter(|i| self.doc.layer_record(*i).is_some())
                .max();
        }
        chain
    }

    /// The lineage window: thumbnails of each step, select it (revisit) or reuse it (branch).
    pub fn lineage_window(&mut self, ctx: &egui::Context) {
        if !self.generation.show_lineage {
            return;
        }
        let chain = self.lineage();
        let infos = self.doc.layer_infos();
        let mut open = true;
        let mut select = None;
        let mut reuse = None;
        egui::Window::new("Lineage").open(&mut open).show(ctx, |ui| {
            if chain.is_empty() {
                ui.label("The active layer was not generated: select a generated layer to see the generations that led to it.");
            }
            for (step, &index) in chain.iter().enumerate() {
                let Some(info) = infos.get(index) else { continue };
                let Some(record) = self.doc.layer_record(index) else { continue };
                ui.horizontal(|ui| {
                    if let Some((_, tex)) = self.thumbnails.get(&info.id) {
                        ui.image((tex.id(), egui::vec2(48.0, 48.0)));
                    }
                    ui.vertical(|ui| {
                        ui.strong(format!("{}. {}", chain.len() - step, info.name));
                        let mode = match record.mode {
                            doc::GenerationMode::Txt2img => "txt2img",
                            doc::GenerationMode::Img2img => "img2img",
                            doc::GenerationMode::Inpaint => "inpaint",
                        };
                        ui.weak(format!(
                            "{mode} · seed {} · {} steps · strength {}",
                            record.seed,
                            record.steps,
                            record.strength.map_or_else(|| "1".to_owned(), |s| format!("{s:.2}"))
                        ));
                        ui.horizontal(|ui| {
                            if ui.button(format!("Select {}", info.name)).clicked() {
                                select = Some(index);
                            }
                            if ui.button(format!("Reuse parameters of {}", info.name)).clicked() {
                                reuse = Some(record.clone());
                            }
                        });
                    });
                });
                ui.separator();
            }
        });
        self.generation.show_lineage = open;
        if let Some(i) = select {
            let r = self.doc.apply_layer(&ui::layers::LayerAction::Select(i));
            self.report(r);
        }
        if let Some(r) = reuse {
            self.reuse_record(&r);
        }
    }
}

/// Reads A1111 `parameters` as a record the panel can reuse. A1111 runs `int(s·N) + 1`
/// img2img steps where we run `floor(s·N)`, so its strength is mapped to run the same steps.
pub fn record_from_infotext(text: &str) -> doc::GenerationRecord {
    let info = doc::infotext::Infotext::parse(text);
    let steps = info.steps().unwrap_or(20);
    let (width, height) = info.size().unwrap_or((0, 0));
    let inpaint = info.inpaint_area().map(|area| doc::InpaintParams {
        area: area.parse().unwrap_or(InpaintArea::WholePicture),
        padding_px: info.masked_area_padding_px().unwrap_or(32),
        mask_blur_px: info.mask_blur_px().unwrap_or(4),
        masked_content: info.masked_content().and_then(|m| m.parse().ok()).unwrap_or_default(),
        inverted: info.get("Mask mode") == Some("Inpaint not masked"),
    });
    doc::GenerationRecord {
        prompt: info.prompt.clone(),
        negative_prompt: info.negative_prompt.clone(),
        model: doc::ModelRef {
            name: info.model().unwrap_or_default().to_owned(),
            hash: info.model_hash().map(str::to_owned),
        },
        vae: info.vae().map(|name| doc::ModelRef {
            name: name.to_owned(),
            hash: info.vae_hash().map(str::to_owned),
        }),
        loras: pipeline::record::loras_of_prompt(&info.prompt, &info.lora_hashes()),
        sampler: info.sampler().unwrap_or("Euler a").to_owned(),
        schedule: info.schedule_type().unwrap_or("Automatic").to_owned(),
        steps,
        cfg_scale: info.cfg_scale().unwrap_or(7.0) as f32,
        seed: info.seed().unwrap_or(0),
        strength: info
            .denoising_strength()
            .map(|s| pipeline::request::strength_for_a1111_steps(s as f32, steps)),
        width,
        height,
        clip_skip: info.clip_skip(),
        mode: if inpaint.is_some() {
            doc::GenerationMode::Inpaint
        } else if info.denoising_strength().is_some() {
            doc::GenerationMode::Img2img
        } else {
            doc::GenerationMode::Txt2img
        },
        inpaint,
        ..Default::default()
    }
}

/// The `parameters` text of a PNG file, read from its first megabyte (A1111 and we write the
/// text chunk before the pixels), without decoding the image.
pub fn png_parameters(path: &std::path::Path) -> Option<String> {
    use std::io::Read as _;
    let mut head = Vec::new();
    std::fs::File::open(path).ok()?.take(1 << 20).read_to_end(&mut head).ok()?;
    let text = raster::read_png_text(&head, &raster::DecodeLimits::default()).ok()?;
    text.into_iter().find(|(k, _)| k == "parameters").map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a1111_parameters_map_to_the_same_steps() {
        let text = "a fox\nNegative prompt: blurry\nSteps: 20, Sampler: DPM++ 2M, Schedule type: Karras, \
                    CFG scale: 6.5, Seed: 42, Size: 512x768, Model hash: 0123456789, Model: foo, \
                    Denoising strength: 0.75, Mask blur: 4, Inpaint area: Only masked, \
                    Masked area padding: 32, Masked content: fill";
        let r = record_from_infotext(text);
        assert_eq!(r.prompt, "a fox");
        assert_eq!(r.negative_prompt, "blurry");
        assert_eq!((r.steps, r.seed, r.width, r.height), (20, 42, 512, 768));
        // A1111 ran int(0.75·20)+1 = 16 steps: we need 0.8.
        assert_eq!(r.strength, Some(0.8));
        assert_eq!(r.mode, doc::GenerationMode::Inpaint);
        let i = r.inpaint.unwrap();
        assert_eq!(i.area, InpaintArea::OnlyMasked);
        assert_eq!(i.masked_content, doc::MaskedContent::Fill);
        assert_eq!(r.model.hash.as_deref(), Some("0123456789"));
    }

    #[test]
    fn candidate_names_are_short() {
        assert_eq!(candidate_name("a red fox <lora:ink:0.5>", 7), "a red fox · 7");
        assert_eq!(candidate_name("", 7), "Generated · 7");
        assert!(candidate_name(&"word ".repeat(40), 1).contains('…'));
    }
}
