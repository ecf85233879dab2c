//! The editor window: the eframe App, the one place where document, UI and files meet.
//!
//! `EditorApp::show` draws the whole editor into a `Ui`, so tests drive it with egui_kittest
//! exactly as eframe does (see `crates/app/tests/ui_editor.rs`).

mod bridge;
pub mod generation;
mod jobs;
mod menus;
mod ora_io;
mod panels;
mod settings;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use egui::{Key, KeyboardShortcut, Modifiers, TextureHandle, Ui};
use ui::canvas::CanvasState;
use ui::colour::ColourPickerState;
use ui::file_browser::{BrowseMode, BrowsePurpose, BrowseResult, FileBrowser};
use ui::layers::LayersPanelState;
use ui::textures::CanvasTextures;
use ui::toasts::Toasts;
use ui::tools::{Tool, ToolAction, ToolMachine, TransformBox};

#[allow(unused_imports, reason = "the kittest tests in crates/app/tests use these")]
pub use bridge::transform_affine;
pub use bridge::{Change, DocBridge, DocError};
use jobs::{Job, JobOutcome};
#[allow(unused_imports, reason = "the kittest tests in crates/app/tests use these")]
pub use settings::STORAGE_KEY;
pub use settings::Settings;

/// How the binary was asked to start the editor.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LaunchOptions {
    /// A file to open at start (`pentimento FILE` or `pentimento --open FILE`).
    pub open: Option<PathBuf>,
    /// Print the mean frame time over this many painted frames, then quit (`--bench-frames N`).
    pub bench_frames: Option<u32>,
}

/// Opens the editor window and runs until it is closed.
pub fn run(options: LaunchOptions) -> anyhow::Result<()> {
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .try_init();
    let native = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("Pentimento")
            .with_app_id("pentimento")
            .with_inner_size([1400.0, 900.0])
            .with_drag_and_drop(true),
        ..Default::default()
    };
    eframe::run_native(
        "pentimento",
        native,
        Box::new(move |cc| {
            let settings = Settings::load(cc.storage);
            Ok(Box::new(EditorApp::start(&cc.egui_ctx, settings, options)))
        }),
    )
    .map_err(|e| anyhow::anyhow!("the editor window failed: {e}"))
}

/// Modal dialogs.
enum Dialog {
    New {
        width: u32,
        height: u32,
    },
    /// Hue (degrees), saturation, lightness.
    Hsl([f32; 3]),
    /// Brightness, contrast.
    BrightnessContrast([f32; 2]),
    /// Close requested with unsaved changes.
    UnsavedClose,
    About,
    /// A generated layer's parameters, as A1111 writes them.
    Parameters {
        title: String,
        text: String,
    },
    /// A dropped PNG carries A1111 parameters: offer to reuse them.
    ImportParameters {
        text: String,
    },
}

/// The editor.
pub struct EditorApp {
    pub doc: DocBridge,
    /// Where the document is saved (None until saved or opened from an .ora).
    pub path: Option<PathBuf>,
    /// The history position last saved (or opened); `None` for an imported image, which is
    /// unsaved as a project until saved.
    saved_position: Option<u64>,
    pub settings: Settings,
    pub canvas: CanvasState,
    textures: CanvasTextures,
    mask_textures: CanvasTextures,
    pub tools: ToolMachine,
    pub toasts: Toasts,
    layers_panel: LayersPanelState,
    colour_state: ColourPickerState,
    browser: Option<FileBrowser>,
    dialog: Option<Dialog>,
    job: Option<Job>,
    /// Close once the running save finishes (Save chosen in the close prompt).
    close_after_save: bool,
    allow_close: bool,
    title: String,
    thumbnails: HashMap<u64, (u64, TextureHandle)>,
    /// Mean frame time readout (ms) and the bench run state.
    frame_ms: f32,
    bench: Option<bench::BenchRun>,
    /// Generation: panel state, queue, progress, tray thumbnails.
    pub generation: generation::GenerationUi,
    /// The tray changed since the last save (it is saved with the project).
    tray_changed: bool,
    /// The pending transform as last applied to the layer for its live preview (inside the
    /// document's preview transaction), with what that preview cost, to throttle big layers.
    transform_preview: Option<TransformPreview>,
}

#[derive(Clone, Copy, Debug)]
struct TransformPreview {
    from: raster::Rect,
    to: TransformBox,
    at: Instant,
    cost: std::time::Duration,
}

pub mod bench;

impl EditorApp {
    /// The editor on `doc` (tests build it through this, with default settings).
    pub fn new(doc: DocBridge, settings: Settings) -> Self {
        let [w, h] = doc.size();
        let position = doc.history_position();
        Self {
            doc,
            path: None,
            saved_position: Some(position),
            settings,
            canvas: CanvasState::fitting(),
            textures: CanvasTextures::new(w, h),
            mask_textures: CanvasTextures::new(w, h),
            tools: ToolMachine::default(),
            toasts: Toasts::default(),
            layers_panel: LayersPanelState::default(),
            colour_state: ColourPickerState::default(),
            browser: None,
            dialog: None,
            job: None,
            close_after_save: false,
            allow_close: false,
            title: String::new(),
            thumbnails: HashMap::new(),
            frame_ms: 0.0,
            bench: None,
            generation: generation::GenerationUi::default(),
            tray_changed: false,
            transform_preview: None,
        }
    }

    fn start(ctx: &egui::Context, settings: Settings, options: LaunchOptions) -> Self {
        let [w, h] = settings.new_size;
        let doc = match DocBridge::new_blank(w, h) {
            Ok(d) => d,
            Err(_) => DocBridge::new_blank(1024, 1024).unwrap_or_else(|_| DocBridge::fallback()),
        };
        let mut app = Self::new(doc, settings);
        app.generation.rescan(ctx, &app.settings.generation.model_folders);
        if let Some(n) = options.bench_frames {
            match bench::BenchRun::new(n) {
                Ok((b, doc)) => {
                    app.replace_document(doc, None);
                    app.bench = Some(b);
                }
                Err(e) => app.toasts.error(format!("Benchmark setup failed: {e}")),
            }
        } else if let Some(path) = options.open {
            let is_ora = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("ora"));
            if is_ora && !path.exists() {
                // `pentimento new.ora`: a new document that Ctrl+S saves there.
                app.path = Some(path);
            } else {
                app.open_path(ctx, path);
            }
        }
        app
    }

    /// Canvas texture tiles on the GPU (the benchmark reports it).
    #[allow(dead_code, reason = "the kittest benchmark reads it")]
    pub fn canvas_tile_count(&self) -> usize {
        self.textures.tile_count()
    }

    /// True when the document differs from the last save.
    pub fn is_dirty(&self) -> bool {
        self.saved_position != Some(self.doc.history_position()) || self.tray_changed
    }

    /// Waits for the running load/save and applies its outcome.
    #[allow(dead_code, reason = "the kittest tests in crates/app/tests wait for saves with it")]
    pub fn finish_job(&mut self, ctx: &egui::Context) {
        if let Some(job) = self.job.take()
            && let Some(out) = job.wait()
        {
            self.job_done(ctx, out);
        }
    }

    fn file_name(&self) -> String {
        self.path
            .as_deref()
            .and_then(Path::file_name)
            .map_or_else(|| "Untitled".to_owned(), |n| n.to_string_lossy().into_owned())
    }

    /// "name.ora • — Pentimento" with the unsaved marker.
    pub fn window_title(&self) -> String {
        let marker = if self.is_dirty() { " •" } else { "" };
        format!("{}{marker} — Pentimento", self.file_name())
    }

    fn replace_document(&mut self, doc: DocBridge, path: Option<PathBuf>) {
        let _ = self.tools.cancel();
        // The preview's transaction belonged to the old document.
        self.transform_preview = None;
        self.doc = doc;
        self.path = path;
        self.saved_position = Some(self.doc.history_position());
        self.tray_changed = false;
        self.generation.forget_document();
        let [w, h] = self.doc.size();
        self.textures.reset(w, h);
        self.mask_textures.reset(w, h);
        self.thumbnails.clear();
        self.canvas.fit_pending = true;
    }

    /// Marks a document change for redraw.
    fn changed(&mut self, change: &Change) {
        if change.canvas_resized {
            let [w, h] = self.doc.size();
            self.textures.reset(w, h);
            self.mask_textures.reset(w, h);
            self.canvas.fit_pending = true;
        }
        for r in &change.composite {
            self.textures.mark_dirty(*r);
        }
        for r in &change.mask {
            self.mask_textures.mark_dirty(*r);
        }
    }

    fn report(&mut self, result: Result<Change, DocError>) {
        match result {
            Ok(c) => self.changed(&c),
            Err(e) => self.toasts.error(e.to_string()),
        }
    }

    pub fn undo(&mut self) {
        if self.tools.is_busy() {
            return;
        }
        if let Some(c) = self.doc.undo() {
            self.changed(&c);
        }
    }

    pub fn redo(&mut self) {
        if self.tools.is_busy() {
            return;
        }
        if let Some(c) = self.doc.redo() {
            self.changed(&c);
        }
    }

    /// Applies tool output to the document.
    pub fn apply_tool_actions(&mut self, actions: Vec<ToolAction>) {
        for action in actions {
            match action {
                ToolAction::PickColour { x, y } => {
                    if let Some(c) = self.doc.pick_colour(x, y) {
                        self.settings.tools.colour = c;
                        self.settings.tools.push_recent_colour(c);
                    }
                }
                ToolAction::BeginStroke { kind, .. } if !kind.targets_mask() => {
                    let c = self.settings.tools.colour;
                    if kind == ui::tools::StrokeKind::Paint {
                        self.settings.tools.push_recent_colour(c);
                    }
                    let r = self.doc.apply_tool(&action);
                    self.report(r);
                }
                ToolAction::Transform { from, to } if self.transform_preview.is_some() => {
                    // The preview already shows the result: bring it up to date and keep it.
                    let stale =
                        self.transform_preview.take().is_some_and(|p| p.from != from || p.to != to);
                    let r = match self.doc.transform_command(from, &to) {
                        Ok(cmd) if stale => self.doc.preview(cmd).and_then(|mut c| {
                            c.merge(self.doc.commit_preview()?);
                            Ok(c)
                        }),
                        Ok(_) => self.doc.commit_preview(),
                        Err(e) => Err(e),
                    };
                    if r.is_err() {
                        let _ = self.doc.cancel_preview().map(|c| self.changed(&c));
                    }
                    self.report(r);
                }
                ToolAction::Crop { .. } => {
                    let r = self.doc.apply_tool(&action);
                    if r.is_ok() {
                        self.canvas.fit_pending = true;
                    }
                    self.report(r);
                }
                other => {
                    let r = self.doc.apply_tool(&other);
                    self.report(r);
                }
            }
        }
    }

    fn select_tool(&mut self, tool: Tool) {
        if self.settings.tools.tool == tool {
            return;
        }
        let a = self.tools.cancel();
        self.apply_tool_actions(a);
        self.settings.tools.tool = tool;
        if tool == Tool::Transform {
            self.begin_transform();
        }
    }

    fn begin_transform(&mut self) {
        match self.doc.active_content_bounds() {
            Some(b) if !b.is_empty() => {
                self.tools.handle_grab_px = ui::tools::grab_px_at_zoom(self.canvas.view.zoom);
                self.tools.begin_transform(b);
            }
            _ => self.toasts.info("The active layer is empty: nothing to transform."),
        }
    }

    /// Keeps the layer showing the pending transform's real pixels: the transform is applied
    /// inside a preview transaction whenever the box changes (at most about a third of the time
    /// when one preview is slow), and rolled back when the transform is cancelled. Enter commits
    /// that transaction as the one undo step.
    pub fn sync_transform_preview(&mut self, ctx: &egui::Context) {
        let pending =
            self.tools.pending_transform().filter(|(from, to)| !to.is_identity_for(*from));
        match (pending, self.transform_preview) {
            (None, None) => {}
            (None, Some(_)) => {
                self.transform_preview = None;
                let r = self.doc.cancel_preview();
                self.report(r);
            }
            (Some((from, to)), last) => {
                if let Some(p) = last {
                    if p.from == from && p.to == to {
                        return;
                    }
                    if p.at.elapsed() < p.cost * 2 {
                        ctx.request_repaint_after(p.cost * 2 - p.at.elapsed());
                        return;
                    }
                } else if let Err(e) = self.doc.begin_preview("transform") {
                    let _ = self.tools.cancel();
                    self.toasts.error(e.to_string());
                    return;
                }
                let started = Instant::now();
                let r = self.doc.transform_command(from, &to).and_then(|c| self.doc.preview(c));
                if r.is_err() {
                    let _ = self.tools.cancel();
                    self.transform_preview = None;
                    let undo = self.doc.cancel_preview();
                    self.report(undo);
                } else {
                    let cost = started.elapsed();
                    self.transform_preview =
                        Some(TransformPreview { from, to, at: Instant::now(), cost });
                }
                self.report(r);
            }
        }
    }

    // ---- files ---------------------------------------------------------------------------

    fn start_dir(&self) -> PathBuf {
        self.settings
            .last_dir
            .clone()
            .or_else(|| {
                directories::UserDirs::new().and_then(|u| u.picture_dir().map(Path::to_path_buf))
            })
            .or_else(|| std::env::current_dir().ok())
            .unwrap_or_else(|| PathBuf::from("/"))
    }

    /// Asks for a file: the native (portal) dialog first, the in-app browser when none answers.
    fn ask_file(&mut self, ctx: &egui::Context, purpose: BrowsePurpose) {
        let (mode, exts, name): (BrowseMode, &[&str], String) = match purpose {
            BrowsePurpose::OpenDocument => {
                (BrowseMode::Open, &["ora", "png", "jpg", "jpeg", "webp"], String::new())
            }
            BrowsePurpose::ImportLayer | BrowsePurpose::LoadMask => {
                (BrowseMode::Open, &["png", "jpg", "jpeg", "webp"], String::new())
            }
            BrowsePurpose::SaveDocument => {
                (BrowseMode::Save, &["ora"], format!("{}.ora", self.stem()))
            }
            BrowsePurpose::Export => {
                (BrowseMode::Save, &["png", "jpg", "jpeg", "webp"], format!("{}.png", self.stem()))
            }
        };
        let dir = self.start_dir();
        let native = if std::env::var_os("PENTIMENTO_NO_NATIVE_DIALOG").is_some() {
            None
        } else {
            let d = rfd::FileDialog::new().set_directory(&dir).add_filter("Images", exts);
            match mode {
                BrowseMode::Open => d.pick_file(),
                BrowseMode::Save => d.set_file_name(&name).save_file(),
            }
        };
        match native {
            Some(path) => self.file_chosen(ctx, purpose, path),
            None => self.browser = Some(FileBrowser::new(mode, purpose, &dir, &name, exts)),
        }
    }

    fn stem(&self) -> String {
        self.path
            .as_deref()
            .and_then(Path::file_stem)
            .map_or_else(|| "untitled".to_owned(), |s| s.to_string_lossy().into_owned())
    }

    fn file_chosen(&mut self, ctx: &egui::Context, purpose: BrowsePurpose, path: PathBuf) {
        match purpose {
            BrowsePurpose::OpenDocument => self.open_path(ctx, path),
            BrowsePurpose::ImportLayer | BrowsePurpose::LoadMask => {
                self.import_path(ctx, path, purpose)
            }
            BrowsePurpose::SaveDocument => {
                let path =
                    if path.extension().is_none() { path.with_extension("ora") } else { path };
                self.save_to(ctx, path);
            }
            BrowsePurpose::Export => self.export_to(ctx, path),
        }
    }

    fn start_job(
        &mut self,
        ctx: &egui::Context,
        label: String,
        work: impl FnOnce(&std::sync::atomic::AtomicU32) -> JobOutcome + Send + 'static,
    ) {
        if self.job.is_some() {
            self.toasts.error("Another file operation is still running.");
            return;
        }
        match Job::spawn(label, ctx, work) {
            Ok(j) => self.job = Some(j),
            Err(e) => self.toasts.error(e.to_string()),
        }
    }

    /// Opens an .ora or an image as the document (on a worker thread).
    pub fn open_path(&mut self, ctx: &egui::Context, path: PathBuf) {
        let label = format!("Opening {}", path.display());
        self.start_job(ctx, label, move |progress| {
            let result = DocBridge::open(&path, progress);
            JobOutcome::Opened { path, result }
        });
    }

    fn import_path(&mut self, ctx: &egui::Context, path: PathBuf, purpose: BrowsePurpose) {
        let label = format!("Importing {}", path.display());
        let mask = purpose == BrowsePurpose::LoadMask;
        self.start_job(ctx, label, move |_| {
            let result = bridge::read_image(&path);
            if mask {
                JobOutcome::Imported { path: path.with_extension("__mask__"), result }
            } else {
                JobOutcome::Imported { path, result }
            }
        });
    }

    /// Saves the document as OpenRaster to `path` (on a worker thread).
    pub fn save_to(&mut self, ctx: &egui::Context, path: PathBuf) {
        // A pending transform is part of what the user sees: apply it before saving.
        if self.tools.is_transforming() {
            let a = self.tools.commit();
            self.apply_tool_actions(a);
        }
        let snapshot = self.doc.snapshot();
        let position = self.doc.history_position();
        let label = format!("Saving {}", path.display());
        self.start_job(ctx, label, move |progress| {
            let result = snapshot.save_ora(&path, progress);
            JobOutcome::Saved { path, position, result }
        });
    }

    fn export_to(&mut self, ctx: &egui::Context, path: PathBuf) {
        let snapshot = self.doc.snapshot();
        let label = format!("Exporting {}", path.display());
        self.start_job(ctx, label, move |_| {
            let result = snapshot.export(&path);
            JobOutcome::Exported { path, result }
        });
    }

    /// Ctrl+S: saves to the current .ora, or asks where.
    pub fn save(&mut self, ctx: &egui::Context) {
        match self.path.clone() {
            Some(p) if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("ora")) => {
                self.save_to(ctx, p)
            }
            _ => self.ask_file(ctx, BrowsePurpose::SaveDocument),
        }
    }

    fn job_done(&mut self, ctx: &egui::Context, outcome: JobOutcome) {
        match outcome {
            JobOutcome::Opened { path, result } => match result {
                Ok(doc) => {
                    let is_ora = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("ora"));
                    self.settings.push_recent(&path);
                    self.replace_document(doc, is_ora.then_some(path.clone()));
                    if !is_ora {
                        // An imported image is a new, unsaved project named after it.
                        self.path = Some(path.with_extension("ora"));
                        self.saved_position = None;
                    }
                }
                Err(e) => self.toasts.error(format!("Could not open {}: {e}", path.display())),
            },
            JobOutcome::Saved { path, position, result } => match result {
                Ok(()) => {
                    self.saved_position = Some(position);
                    self.tray_changed = false;
                    self.settings.push_recent(&path);
                    self.path = Some(path);
                    if self.close_after_save {
                        self.allow_close = true;
                        ctx.send_viewport_cmd(egui::ViewportCommand::Close);
                    }
                }
                Err(e) => {
                    self.close_after_save = false;
                    self.toasts.error(format!("Could not save {}: {e}", path.display()));
                }
            },
            JobOutcome::Exported { path, result } => match result {
                Ok(()) => self.toasts.info(format!("Exported {}", path.display())),
                Err(e) => self.toasts.error(format!("Could not export {}: {e}", path.display())),
            },
            JobOutcome::Imported { path, result } => match result {
                Ok(img) => {
                    let is_mask = path.extension().is_some_and(|e| e == "__mask__");
                    let name = path.file_stem().map_or_else(
                        || "Imported".to_owned(),
                        |s| s.to_string_lossy().into_owned(),
                    );
                    let r = if is_mask {
                        self.doc.mask_from_image(&img)
                    } else {
                        self.doc.add_image_layer(&name, &img)
                    };
                    self.report(r);
                }
                Err(e) => self.toasts.error(format!("Could not import {}: {e}", path.display())),
            },
        }
    }

    fn poll_job(&mut self, ctx: &egui::Context) {
        if let Some(out) = self.job.as_ref().and_then(Job::poll) {
            self.job = None;
            self.job_done(ctx, out);
        } else if self.job.is_some() {
            ctx.request_repaint_after(std::time::Duration::from_millis(100));
        }
    }

    /// Takes the generation worker's events: progress, previews, candidates into the tray.
    fn poll_generation(&mut self, ctx: &egui::Context) {
        self.generation.poll_scan(ctx, &mut self.settings.generation);
        let before = self.doc.tray.len();
        for e in self.generation.poll(ctx, &mut self.doc.tray) {
            self.toasts.error(e);
        }
        if self.doc.tray.len() != before {
            self.tray_changed = true;
        }
    }

    /// Waits for every queued generation to finish (tests and headless use).
    #[allow(dead_code, reason = "the kittest tests in crates/app/tests wait for generations")]
    pub fn finish_generation(&mut self, ctx: &egui::Context) {
        let deadline = Instant::now() + std::time::Duration::from_secs(600);
        while self.generation.is_busy() && Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
            self.poll_generation(ctx);
        }
    }

    fn handle_dropped_files(&mut self, ctx: &egui::Context) {
        let dropped = ctx.input(|i| i.raw.dropped_files.clone());
        for f in dropped {
            let path = f.path().to_path_buf();
            if path.as_os_str().is_empty() {
                continue;
            }
            if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("ora")) {
                self.open_path(ctx, path);
            } else {
                // A PNG from A1111 or from us: offer its parameters as well.
                if let Some(text) = generation::png_parameters(&path) {
                    self.dialog = Some(Dialog::ImportParameters { text });
                }
                self.import_path(ctx, path, BrowsePurpose::ImportLayer);
            }
        }
    }

    /// Copy, cut and paste arrive as events (egui-winit turns Ctrl+C/X/V into them).
    fn handle_clipboard(&mut self, ctx: &egui::Context) {
        if ctx.egui_wants_keyboard_input() {
            return;
        }
        let events = ctx.input(|i| i.events.clone());
        for ev in events {
            match ev {
                egui::Event::Copy => self.copy(ctx, false),
                egui::Event::Cut => self.copy(ctx, true),
                egui::Event::PasteImage(img) => {
                    let r = bridge::image_from_color_image(&img)
                        .and_then(|i| self.doc.add_image_layer("Pasted", &i));
                    self.report(r);
                }
                egui::Event::Paste(text) => {
                    // A path copied from a file manager pastes as text.
                    let p = PathBuf::from(text.trim().trim_start_matches("file://"));
                    if p.is_file() {
                        self.import_path(ctx, p, BrowsePurpose::ImportLayer);
                    }
                }
                _ => {}
            }
        }
    }

    fn copy(&mut self, ctx: &egui::Context, cut: bool) {
        match self.doc.copy_image() {
            Some(img) => {
                ctx.copy_image(egui::ColorImage::from_rgba_unmultiplied(
                    [img.width() as usize, img.height() as usize],
                    img.as_bytes(),
                ));
                if cut {
                    let r = self.doc.delete_selected();
                    self.report(r);
                }
            }
            None => self.toasts.info("Nothing to copy: the active layer is empty there."),
        }
    }

    // ---- shortcuts -----------------------------------------------------------------------

    fn handle_shortcuts(&mut self, ctx: &egui::Context) {
        if self.dialog.is_some() || self.browser.is_some() {
            return;
        }
        let cmd = |k| KeyboardShortcut::new(Modifiers::COMMAND, k);
        let cmd_shift = |k| KeyboardShortcut::new(Modifiers::COMMAND | Modifiers::SHIFT, k);
        let fire = |s: KeyboardShortcut| ctx.input_mut(|i| i.consume_shortcut(&s));
        if fire(cmd(Key::Enter)) {
            self.generate(ctx, None);
        }
        // Shift variants first: Ctrl+Z also matches Ctrl+Shift+Z logically.
        if fire(cmd_shift(Key::Z)) || fire(cmd(Key::Y)) {
            self.redo();
        }
        if fire(cmd(Key::Z)) {
            self.undo();
        }
        if fire(cmd_shift(Key::S)) {
            self.ask_file(ctx, BrowsePurpose::SaveDocument);
        }
        if fire(cmd(Key::S)) {
            self.save(ctx);
        }
        if fire(cmd(Key::N)) {
            self.dialog = Some(Dialog::New {
                width: self.settings.new_size[0],
                height: self.settings.new_size[1],
            });
        }
        if fire(cmd(Key::O)) {
            self.ask_file(ctx, BrowsePurpose::OpenDocument);
        }
        if fire(cmd(Key::E)) {
            self.ask_file(ctx, BrowsePurpose::Export);
        }
        if fire(cmd_shift(Key::A)) || fire(cmd(Key::D)) {
            let r = self.doc.deselect();
            self.report(r);
        }
        if fire(cmd(Key::A)) {
            let r = self.doc.select_all();
            self.report(r);
        }
        // Keys without a modifier only when no text field has focus.
        if ctx.egui_wants_keyboard_input() {
            return;
        }
        let plain = |k| KeyboardShortcut::new(Modifiers::NONE, k);
        for tool in Tool::ALL {
            if let Some(k) = tool.shortcut()
                && fire(plain(k))
            {
                let t = match (tool, self.settings.tools.tool) {
                    // M toggles between the two selection tools, as Krita's Ctrl+R/M do.
                    (Tool::RectSelect, Tool::RectSelect) => Tool::LassoSelect,
                    (Tool::MaskBrush, Tool::MaskBrush) => Tool::MaskEraser,
                    _ => tool,
                };
                self.select_tool(t);
            }
        }
        if fire(plain(Key::OpenBracket))
            && let Some(b) = self.settings.tools.current_brush_mut()
        {
            b.step_size(false);
        }
        if fire(plain(Key::CloseBracket))
            && let Some(b) = self.settings.tools.current_brush_mut()
        {
            b.step_size(true);
        }
        if fire(plain(Key::Delete)) || fire(plain(Key::Backspace)) {
            let r = self.doc.delete_selected();
            self.report(r);
        }
        // Enter commits a tool in progress (transform); otherwise it is the tray's (Apply).
        if (self.tools.is_busy() || self.tools.is_transforming()) && fire(plain(Key::Enter)) {
            let a = self.tools.commit();
            self.apply_tool_actions(a);
        }
        if fire(plain(Key::Escape)) {
            if self.generation.is_busy() && !self.tools.is_busy() {
                self.generation.cancel_all();
            } else {
                let a = self.tools.cancel();
                self.apply_tool_actions(a);
            }
        }
        if fire(plain(Key::Plus)) || fire(plain(Key::Equals)) {
            self.canvas.view.zoom_in();
        }
        if fire(plain(Key::Minus)) {
            self.canvas.view.zoom_out();
        }
        if fire(plain(Key::Num1)) {
            self.canvas.view.actual_pixels();
        }
        if fire(plain(Key::Num2)) {
            self.canvas.fit_pending = true;
        }
        if fire(plain(Key::H)) {
            self.settings.show_mask = !self.settings.show_mask;
        }
    }

    // ---- the frame -----------------------------------------------------------------------

    /// Draws the whole editor (eframe calls this through `App::ui`; tests call it directly).
    pub fn show(&mut self, ui: &mut Ui) {
        let ctx = ui.ctx().clone();
        let started = Instant::now();
        if ctx.input(|i| i.viewport().close_requested()) {
            self.on_close_request(&ctx);
        }

        self.poll_job(&ctx);
        self.poll_generation(&ctx);
        self.handle_dropped_files(&ctx);
        self.handle_clipboard(&ctx);
        self.handle_shortcuts(&ctx);

        menus::menu_bar(self, ui);
        panels::tool_options(self, ui);
        panels::status_bar(self, ui);
        panels::tool_strip(self, ui);
        panels::right_panel(self, ui);
        panels::central_canvas(self, ui);
        self.dialogs(&ctx);
        if let Some(b) = &mut self.browser {
            match b.show(&ctx) {
                BrowseResult::Pending => {}
                BrowseResult::Cancelled => self.browser = None,
                BrowseResult::Chosen(path) => {
                    let purpose = b.purpose;
                    self.settings.last_dir = Some(b.dir().to_path_buf());
                    self.browser = None;
                    self.file_chosen(&ctx, purpose, path);
                }
            }
        }
        self.lineage_window(&ctx);
        self.toasts.show(&ctx);
        if self.bench.is_some() {
            bench::step(self, &ctx);
        }
        let ms = started.elapsed().as_secs_f32() * 1000.0;
        self.frame_ms = if self.frame_ms == 0.0 { ms } else { self.frame_ms * 0.9 + ms * 0.1 };
        let title = self.window_title();
        if title != self.title {
            ctx.send_viewport_cmd(egui::ViewportCommand::Title(title.clone()));
            self.title = title;
        }
    }

    fn dialogs(&mut self, ctx: &egui::Context) {
        let Some(dialog) = &mut self.dialog else { return };
        let mut close = false;
        let mut action: DialogAction = None;
        match dialog {
            Dialog::New { width, height } => {
                egui::Window::new("New image").collapsible(false).resizable(false).show(
                    ctx,
                    |ui| {
                        egui::Grid::new("new-grid").show(ui, |ui| {
                            let l = ui.label("Width");
                            ui.add(
                                egui::DragValue::new(width)
                                    .range(1..=bridge::MAX_SIDE_PX)
                                    .suffix(" px"),
                            )
                            .labelled_by(l.id);
                            ui.end_row();
                            let l = ui.label("Height");
                            ui.add(
                                egui::DragValue::new(height)
                                    .range(1..=bridge::MAX_SIDE_PX)
                                    .suffix(" px"),
                            )
                            .labelled_by(l.id);
                            ui.end_row();
                        });
                        ui.horizontal(|ui| {
                            if ui.button("Create").clicked() {
                                let (w, h) = (*width, *height);
                                action = Some(Box::new(move |app, _| app.new_document(w, h)));
                                close = true;
                            }
                            if ui.button("Cancel").clicked() {
                                close = true;
                            }
                        });
                    },
                );
            }
            Dialog::Hsl(p) => {
                let before = *p;
                let r = adjustment_window(ctx, "Hue / Saturation / Lightness", |ui| {
                    ui.add(egui::Slider::new(&mut p[0], -180.0..=180.0).text("Hue shift"));
                    ui.add(egui::Slider::new(&mut p[1], -1.0..=1.0).text("Saturation change"));
                    ui.add(egui::Slider::new(&mut p[2], -1.0..=1.0).text("Lightness change"));
                });
                let p = *p;
                action = adjustment_outcome(r, p != before, &mut close, move || {
                    doc::Command::HueSaturation { hue_deg: p[0], saturation: p[1], lightness: p[2] }
                });
            }
            Dialog::BrightnessContrast(p) => {
                let before = *p;
                let r = adjustment_window(ctx, "Brightness / Contrast", |ui| {
                    ui.add(egui::Slider::new(&mut p[0], -1.0..=1.0).text("Brightness"));
                    ui.add(egui::Slider::new(&mut p[1], -1.0..=1.0).text("Contrast"));
                });
                let p = *p;
                action = adjustment_outcome(r, p != before, &mut close, move || {
                    doc::Command::BrightnessContrast { brightness: p[0], contrast: p[1] }
                });
            }
            Dialog::UnsavedClose => {
                egui::Modal::new(egui::Id::unique("unsaved-close")).show(ctx, |ui| {
                    ui.heading("Unsaved changes");
                    ui.label(format!(
                        "Save the changes to {} before closing?",
                        self.path
                            .as_deref()
                            .and_then(Path::file_name)
                            .map_or_else(|| "Untitled".into(), |n| n.to_string_lossy())
                    ));
                    ui.horizontal(|ui| {
                        if ui.button("Save").clicked() {
                            action = Some(Box::new(|app, ctx| {
                                app.close_after_save = true;
                                app.save(ctx);
                            }));
                            close = true;
                        }
                        if ui.button("Discard changes").clicked() {
                            action = Some(Box::new(|app, ctx| {
                                app.allow_close = true;
                                ctx.send_viewport_cmd(egui::ViewportCommand::Close);
                            }));
                            close = true;
                        }
                        if ui.button("Cancel").clicked() {
                            close = true;
                        }
                    });
                });
            }
            Dialog::Parameters { title, text } => {
                egui::Window::new(format!("Parameters of {title}")).collapsible(false).show(
                    ctx,
                    |ui| {
                        ui.add(
                            egui::TextEdit::multiline(&mut text.as_str())
                                .desired_width(480.0)
                                .desired_rows(6),
                        );
                        ui.horizontal(|ui| {
                            if ui.button("Copy").clicked() {
                                ctx.copy_text(text.clone());
                            }
                            if ui.button("Close").clicked() {
                                close = true;
                            }
                        });
                    },
                );
            }
            Dialog::ImportParameters { text } => {
                egui::Window::new("Generation parameters found").collapsible(false).show(
                    ctx,
                    |ui| {
                        ui.label("The dropped image carries generation parameters:");
                        ui.add(
                            egui::TextEdit::multiline(&mut text.as_str())
                                .desired_width(480.0)
                                .desired_rows(5),
                        );
                        ui.horizontal(|ui| {
                            if ui.button("Reuse parameters").clicked() {
                                let record = generation::record_from_infotext(text);
                                action = Some(Box::new(move |app, _| app.reuse_record(&record)));
                                close = true;
                            }
                            if ui.button("Ignore").clicked() {
                                close = true;
                            }
                        });
                    },
                );
            }
            Dialog::About => {
                egui::Window::new("About Pentimento").collapsible(false).show(ctx, |ui| {
                    ui.label("Pentimento: a layered image editor with Stable Diffusion built in.");
                    ui.label(format!("Version {}", env!("CARGO_PKG_VERSION")));
                    ui.label("Shortcuts: B brush, E eraser, G fill, I eyedropper, M select, V move, T transform, C crop, K mask brush, [ ] brush size, H mask overlay, 1 actual pixels, 2 fit, space-drag pan.");
                    if ui.button("Close").clicked() {
                        close = true;
                    }
                });
            }
        }
        if close {
            self.dialog = None;
        }
        if let Some(a) = action {
            a(self, ctx);
        }
    }

    fn new_document(&mut self, w: u32, h: u32) {
        match DocBridge::new_blank(w, h) {
            Ok(doc) => {
                self.settings.new_size = [w, h];
                self.replace_document(doc, None);
            }
            Err(e) => self.toasts.error(format!("Could not create a {w}×{h} image: {e}")),
        }
    }

    fn open_adjustment(&mut self, hsl: bool) {
        match self.doc.begin_preview("adjustment") {
            Ok(()) => {
                self.dialog = Some(if hsl {
                    Dialog::Hsl([0.0; 3])
                } else {
                    Dialog::BrightnessContrast([0.0; 2])
                })
            }
            Err(e) => self.toasts.error(e.to_string()),
        }
    }

    /// Called by eframe when the window is asked to close.
    fn on_close_request(&mut self, ctx: &egui::Context) {
        if self.allow_close || !self.is_dirty() {
            return;
        }
        ctx.send_viewport_cmd(egui::ViewportCommand::CancelClose);
        self.dialog = Some(Dialog::UnsavedClose);
    }
}

/// What the user did in an adjustment dialog this frame.
#[derive(Clone, Copy, PartialEq, Eq)]
enum AdjustButton {
    None,
    Apply,
    Cancel,
}

type DialogAction = Option<Box<dyn FnOnce(&mut EditorApp, &egui::Context)>>;

fn adjustment_window(
    ctx: &egui::Context,
    title: &str,
    sliders: impl FnOnce(&mut Ui),
) -> AdjustButton {
    let mut pressed = AdjustButton::None;
    egui::Window::new(title).collapsible(false).resizable(false).show(ctx, |ui| {
        sliders(ui);
        ui.horizontal(|ui| {
            if ui.button("Apply").clicked() {
                pressed = AdjustButton::Apply;
            }
            if ui.button("Cancel").clicked() {
                pressed = AdjustButton::Cancel;
            }
        });
    });
    pressed
}

/// Live preview while sliders move; Apply commits one undo step, Cancel restores the layer.
fn adjustment_outcome(
    pressed: AdjustButton,
    moved: bool,
    close: &mut bool,
    command: impl FnOnce() -> doc::Command + 'static,
) -> DialogAction {
    match pressed {
        AdjustButton::Apply => {
            *close = true;
            Some(Box::new(move |app, _| {
                if moved {
                    let r = app.doc.preview(command());
                    app.report(r);
                }
                let r = app.doc.commit_preview();
                app.report(r);
            }))
        }
        AdjustButton::Cancel => {
            *close = true;
            Some(Box::new(|app, _| {
                let r = app.doc.cancel_preview();
                app.report(r);
            }))
        }
        AdjustButton::None if moved => Some(Box::new(move |app, _| {
            let r = app.doc.preview(command());
            app.report(r);
        })),
        AdjustButton::None => None,
    }
}

impl eframe::App for EditorApp {
    fn ui(&mut self, ui: &mut Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        self.settings.store(storage);
    }
}
