//! The generation panel: model, prompt, sampler and the rest, as the artist sets them.
//!
//! The panel knows nothing of models or pipelines: the app hands it the choices (model files,
//! samplers, token counts, the mode the document implies) and gets back [`PanelAction`]s. The
//! settings themselves ([`GenerationSettings`]) persist between runs.

use std::path::PathBuf;

use doc::{InpaintArea, MaskedContent};
use egui::Ui;
use serde::{Deserialize, Serialize};

/// What the document implies, as the article describes: no mask and full strength is txt2img,
/// lower strength is img2img of the visible image, a painted mask is inpainting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Txt2img,
    Img2img,
    Inpaint,
}

impl Mode {
    /// The mode for a document with (or without) a painted mask at `strength`.
    pub fn for_document(mask_painted: bool, strength: f32) -> Self {
        if mask_painted {
            Mode::Inpaint
        } else if strength < 1.0 {
            Mode::Img2img
        } else {
            Mode::Txt2img
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Mode::Txt2img => "Text to image",
            Mode::Img2img => "Image to image",
            Mode::Inpaint => "Inpaint",
        }
    }
}

/// How the next seed is chosen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeedMode {
    /// A fresh random seed for every Generate.
    #[default]
    Random,
    /// The seed in the field.
    Fixed,
}

/// Everything the panel edits; persisted in the editor settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GenerationSettings {
    /// The checkpoint file; `None` until the artist picks one (or the first found is used).
    pub model: Option<PathBuf>,
    /// A standalone VAE overriding the checkpoint's.
    pub vae: Option<PathBuf>,
    pub prompt: String,
    pub negative_prompt: String,
    /// A1111 sampler label ("Euler a", "DPM++ 2M").
    pub sampler: String,
    /// A1111 schedule label ("Automatic" is not offered: "Uniform", "Karras", …).
    pub schedule: String,
    pub steps: u32,
    pub cfg_scale: f32,
    pub seed_mode: SeedMode,
    pub seed: u64,
    pub width: u32,
    pub height: u32,
    pub batch_size: u32,
    pub clip_skip: u32,
    /// Denoising strength, always a multiple of 1/steps (see [`snap_strength`]).
    pub strength: f32,
    pub inpaint_area: InpaintArea,
    pub padding_px: u32,
    pub mask_blur_px: u32,
    pub masked_content: MaskedContent,
    pub invert_mask: bool,
    /// Model folders scanned besides `models/` (A1111 or ComfyUI roots are recognised).
    pub model_folders: Vec<PathBuf>,
}

impl Default for GenerationSettings {
    fn default() -> Self {
        Self {
            model: None,
            vae: None,
            prompt: String::new(),
            negative_prompt: String::new(),
            sampler: "Euler a".to_owned(),
            schedule: "Uniform".to_owned(),
            steps: 20,
            cfg_scale: 7.0,
            seed_mode: SeedMode::Random,
            seed: 0,
            width: 512,
            height: 512,
            batch_size: 4,
            clip_skip: 1,
            strength: 1.0,
            inpaint_area: InpaintArea::OnlyMasked,
            padding_px: 32,
            mask_blur_px: 4,
            masked_content: MaskedContent::Original,
            invert_mask: false,
            model_folders: Vec::new(),
        }
    }
}

/// Steps that run at `strength` with `steps` steps: the pipeline's rule
/// `floor(strength · steps + 1e-6)`.
pub fn steps_at_strength(strength: f32, steps: u32) -> u32 {
    let k = (f64::from(strength) * f64::from(steps) + 1e-6).floor();
    (k.max(0.0) as u32).min(steps)
}

/// The strength of the nearest whole step, at least one step: strength is discrete, and a value
/// between two steps would only hide which one runs.
pub fn snap_strength(strength: f32, steps: u32) -> f32 {
    if steps == 0 {
        return strength.clamp(0.0, 1.0);
    }
    let k = (f64::from(strength.clamp(0.0, 1.0)) * f64::from(steps)).round().max(1.0);
    let snapped = (k / f64::from(steps)) as f32;
    // k/N rounded to f32 may land just below k/N, and floor(s·N) would then run k − 1 steps.
    if f64::from(snapped) * f64::from(steps) < k { snapped.next_up() } else { snapped }
}

/// "16 of 20 steps".
pub fn strength_label(strength: f32, steps: u32) -> String {
    format!("{} of {steps} steps", steps_at_strength(strength, steps))
}

/// A model file the panel can offer.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelChoice {
    pub path: PathBuf,
    /// File name shown in the list.
    pub name: String,
    /// "SD1.x", "SDXL", "SD1.x inpaint"; empty while unknown.
    pub architecture: String,
    /// The working size the architecture was trained at (512 or 1024).
    pub native_px: u32,
}

/// A LoRA or embedding the panel can offer.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkChoice {
    /// The name prompts use (`<lora:name:w>`, or the embedding's file name).
    pub name: String,
    /// Whether it was made for the selected model's family (`None`: unknown).
    pub compatible: Option<bool>,
}

/// What the app tells the panel this frame.
pub struct PanelContext<'a> {
    pub models: &'a [ModelChoice],
    pub vaes: &'a [ModelChoice],
    pub samplers: &'a [&'a str],
    pub schedules: &'a [&'a str],
    pub mode: Mode,
    /// A1111-style counters of the prompt and negative prompt ("12/75").
    pub prompt_tokens: String,
    pub negative_tokens: String,
    /// The last seed used, for "reuse last".
    pub last_seed: Option<u64>,
    /// Jobs queued or running.
    pub jobs_in_queue: usize,
    /// Where the model list comes from (shown when it is empty).
    pub model_folders_hint: String,
    /// The artist dragged the context box larger on the canvas.
    pub has_context_box: bool,
    pub loras: &'a [NetworkChoice],
    pub embeddings: &'a [NetworkChoice],
    /// The `<lora:name:w>` tags of the prompt, in order (text-encoder weight).
    pub prompt_loras: Vec<(String, f32)>,
    /// Library files hashed so far and in all, while background hashing runs.
    pub hashing: Option<(usize, usize)>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum PanelAction {
    Generate,
    /// Forget the context box dragged on the canvas.
    ResetContextBox,
    /// Cancel the running job and everything queued.
    CancelAll,
    RescanModels,
    /// Append `<lora:name:1>` to the prompt.
    AddLora(String),
    /// Rewrite the prompt's tag of this LoRA with a new weight.
    SetLoraWeight(String, f32),
    RemoveLora(String),
    /// Append the embedding's name to the prompt.
    InsertEmbedding(String),
}

/// Panel state kept between frames (not persisted).
#[derive(Clone, Debug, Default)]
pub struct GenerationPanelState {
    model_filter: String,
    network_filter: String,
    /// The extra model folders being edited, one per line.
    folders_text: Option<String>,
}

/// Size presets per native resolution (A1111/SDXL bucket sizes).
pub fn size_presets(native_px: u32) -> &'static [(u32, u32)] {
    if native_px >= 1024 {
        &[(1024, 1024), (896, 1152), (1152, 896), (832, 1216), (1216, 832), (768, 1344)]
    } else {
        &[(512, 512), (512, 768), (768, 512), (640, 640), (768, 768)]
    }
}

fn labelled_drag<T: egui::emath::Numeric>(
    ui: &mut Ui,
    label: &str,
    value: &mut T,
    range: std::ops::RangeInclusive<T>,
    speed: f64,
) -> egui::Response {
    let l = ui.label(label);
    let r = ui.add(egui::DragValue::new(value).range(range).speed(speed)).labelled_by(l.id);
    ui.end_row();
    r
}

fn combo_str(ui: &mut Ui, label: &str, value: &mut String, options: &[&str]) {
    let l = ui.label(label);
    egui::ComboBox::from_id_salt(label)
        .selected_text(value.as_str())
        .show_ui(ui, |ui| {
            for o in options {
                ui.selectable_value(value, (*o).to_owned(), *o);
            }
        })
        .response
        .labelled_by(l.id);
    ui.end_row();
}

/// Shows the panel; returns what the user asked for.
pub fn generation_panel(
    ui: &mut Ui,
    state: &mut GenerationPanelState,
    settings: &mut GenerationSettings,
    cx: &PanelContext<'_>,
) -> Vec<PanelAction> {
    let mut out = Vec::new();
    ui.horizontal(|ui| {
        ui.strong(cx.mode.label());
        ui.weak(match cx.mode {
            Mode::Txt2img => "(no mask, full strength)",
            Mode::Img2img => "(of the visible image)",
            Mode::Inpaint => "(the painted mask)",
        });
    });
    ui.horizontal(|ui| {
        let can = settings.model.is_some();
        if ui
            .add_enabled(can, egui::Button::new("Generate"))
            .on_hover_text("Ctrl+Enter")
            .on_disabled_hover_text("Pick a model first")
            .clicked()
        {
            out.push(PanelAction::Generate);
        }
        if cx.jobs_in_queue > 0 {
            if ui.button("Cancel").on_hover_text("Escape").clicked() {
                out.push(PanelAction::CancelAll);
            }
            ui.weak(format!("{} in queue", cx.jobs_in_queue));
        }
    });
    model_picker(ui, state, settings, cx, &mut out);

    let l = ui.label(format!("Prompt  {}", cx.prompt_tokens));
    ui.add(
        egui::TextEdit::multiline(&mut settings.prompt)
            .desired_rows(3)
            .desired_width(f32::INFINITY)
            .hint_text("what to paint"),
    )
    .labelled_by(l.id);
    let l = ui.label(format!("Negative prompt  {}", cx.negative_tokens));
    ui.add(
        egui::TextEdit::multiline(&mut settings.negative_prompt)
            .desired_rows(2)
            .desired_width(f32::INFINITY),
    )
    .labelled_by(l.id);

    networks(ui, state, cx, &mut out);

    egui::Grid::new("generation-grid").num_columns(2).show(ui, |ui| {
        combo_str(ui, "Sampler", &mut settings.sampler, cx.samplers);
        combo_str(ui, "Schedule", &mut settings.schedule, cx.schedules);
        labelled_drag(ui, "Steps", &mut settings.steps, 1..=150, 0.2);
        labelled_drag(ui, "CFG scale", &mut settings.cfg_scale, 1.0..=30.0, 0.1);

        let l = ui.label("Seed");
        ui.horizontal(|ui| {
            let fixed = settings.seed_mode == SeedMode::Fixed;
            ui.add_enabled(fixed, egui::DragValue::new(&mut settings.seed).speed(1.0))
                .labelled_by(l.id);
            let mut random = !fixed;
            if ui.checkbox(&mut random, "Random seed").changed() {
                settings.seed_mode = if random { SeedMode::Random } else { SeedMode::Fixed };
            }
            if ui
                .add_enabled(cx.last_seed.is_some(), egui::Button::new("Reuse last seed"))
                .clicked()
                && let Some(s) = cx.last_seed
            {
                settings.seed = s;
                settings.seed_mode = SeedMode::Fixed;
            }
        });
        ui.end_row();

        let l = ui.label("Size");
        ui.horizontal(|ui| {
            ui.add(egui::DragValue::new(&mut settings.width).range(64..=4096).speed(8.0))
                .labelled_by(l.id)
                .on_hover_text("Width in pixels (multiple of 8)");
            ui.label("×");
            ui.add(egui::DragValue::new(&mut settings.height).range(64..=4096).speed(8.0))
                .on_hover_text("Height in pixels (multiple of 8)");
            let native = selected_model(settings, cx).map_or(512, |m| m.native_px);
            egui::ComboBox::from_id_salt("size-presets")
                .selected_text("Presets")
                .show_ui(ui, |ui| {
                    for &(w, h) in size_presets(native) {
                        if ui.selectable_label(false, format!("{w} × {h}")).clicked() {
                            settings.width = w;
                            settings.height = h;
                        }
                    }
                })
                .response
                .widget_info(|| {
                    egui::WidgetInfo::labeled(egui::Role::ComboBox, true, "Size presets")
                });
        });
        ui.end_row();
        settings.width = settings.width / 8 * 8;
        settings.height = settings.height / 8 * 8;

        labelled_drag(ui, "Batch size", &mut settings.batch_size, 1..=16, 0.1);
        labelled_drag(ui, "Clip skip", &mut settings.clip_skip, 1..=12, 0.05);

        strength_slider(ui, settings);
    });

    if cx.mode == Mode::Inpaint {
        inpaint_options(ui, settings);
        if settings.inpaint_area == InpaintArea::OnlyMasked {
            ui.horizontal(|ui| {
                if cx.has_context_box {
                    ui.weak("Context box set on the canvas");
                    if ui.small_button("Reset context box").clicked() {
                        out.push(PanelAction::ResetContextBox);
                    }
                } else {
                    ui.weak("Drag the context box's edges on the canvas to show the model more");
                }
            });
        }
    }

    out
}

/// LoRA chips with weight sliders, a searchable list to add LoRAs and embeddings, and a warning
/// for LoRAs made for another model family.
fn networks(
    ui: &mut Ui,
    state: &mut GenerationPanelState,
    cx: &PanelContext<'_>,
    out: &mut Vec<PanelAction>,
) {
    for (name, weight) in &cx.prompt_loras {
        ui.horizontal(|ui| {
            let mut w = *weight;
            let l = ui.label(format!("LoRA {name}"));
            if ui
                .add(egui::Slider::new(&mut w, -2.0..=2.0).step_by(0.05))
                .labelled_by(l.id)
                .changed()
            {
                out.push(PanelAction::SetLoraWeight(name.clone(), w));
            }
            if crate::widgets::icon_button(ui, true, "x", &format!("Remove LoRA {name}")).clicked()
            {
                out.push(PanelAction::RemoveLora(name.clone()));
            }
            match cx.loras.iter().find(|l| &l.name == name) {
                None => {
                    ui.colored_label(ui.visuals().error_fg_color, "not found");
                }
                Some(l) if l.compatible == Some(false) => {
                    ui.colored_label(ui.visuals().warn_fg_color, "made for another model family");
                }
                Some(_) => {}
            }
        });
    }
    egui::CollapsingHeader::new(format!(
        "LoRAs and embeddings ({} + {})",
        cx.loras.len(),
        cx.embeddings.len()
    ))
    .default_open(false)
    .show(ui, |ui| {
        let l = ui.label("Search networks");
        ui.add(egui::TextEdit::singleline(&mut state.network_filter)).labelled_by(l.id);
        let filter = state.network_filter.to_lowercase();
        egui::ScrollArea::vertical().id_salt("networks").max_height(160.0).show(ui, |ui| {
            for l in cx.loras.iter().filter(|l| l.name.to_lowercase().contains(&filter)) {
                ui.horizontal(|ui| {
                    if ui.small_button(format!("Add LoRA {}", l.name)).clicked() {
                        out.push(PanelAction::AddLora(l.name.clone()));
                    }
                    if l.compatible == Some(false) {
                        ui.colored_label(ui.visuals().warn_fg_color, "other family");
                    }
                });
            }
            for e in cx.embeddings.iter().filter(|e| e.name.to_lowercase().contains(&filter)) {
                ui.horizontal(|ui| {
                    if ui.small_button(format!("Insert embedding {}", e.name)).clicked() {
                        out.push(PanelAction::InsertEmbedding(e.name.clone()));
                    }
                    if e.compatible == Some(false) {
                        ui.colored_label(ui.visuals().warn_fg_color, "other family");
                    }
                });
            }
        });
    });
}

/// The prompt with `<lora:name:…>` set to `weight` (`None`: the tag removed); a missing tag is
/// appended.
pub fn set_lora_in_prompt(prompt: &str, name: &str, weight: Option<f32>) -> String {
    let tag = |w: f32| format!("<lora:{name}:{}>", format_weight(w));
    let mut out = String::with_capacity(prompt.len() + 24);
    let mut rest = prompt;
    let mut found = false;
    while let Some(start) = rest.find("<lora:") {
        let after = &rest[start + 6..];
        let Some(end) = after.find('>') else { break };
        let inner = &after[..end];
        let tag_name = inner.split(':').next().unwrap_or("");
        out.push_str(&rest[..start]);
        if tag_name == name && !found {
            found = true;
            if let Some(w) = weight {
                out.push_str(&tag(w));
            }
        } else {
            out.push_str(&rest[start..start + 6 + end + 1]);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    match (found, weight) {
        (false, Some(w)) => {
            let trimmed = out.trim_end();
            let sep = if trimmed.is_empty() { "" } else { " " };
            format!("{trimmed}{sep}{}", tag(w))
        }
        (true, None) => out.split_whitespace().collect::<Vec<_>>().join(" "),
        _ => out,
    }
}

fn format_weight(w: f32) -> String {
    let s = format!("{:.2}", w);
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn selected_model<'a>(
    settings: &GenerationSettings,
    cx: &PanelContext<'a>,
) -> Option<&'a ModelChoice> {
    let path = settings.model.as_ref()?;
    cx.models.iter().find(|m| &m.path == path)
}

fn model_picker(
    ui: &mut Ui,
    state: &mut GenerationPanelState,
    settings: &mut GenerationSettings,
    cx: &PanelContext<'_>,
    out: &mut Vec<PanelAction>,
) {
    egui::Grid::new("model-grid").num_columns(2).show(ui, |ui| {
        let l = ui.label("Model");
        let current = match (selected_model(settings, cx), &settings.model) {
            (Some(m), _) => format!("{} ({})", m.name, m.architecture),
            (None, Some(p)) => {
                p.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned())
            }
            (None, None) => "none".to_owned(),
        };
        egui::ComboBox::from_id_salt("model-picker")
            .selected_text(current)
            .width(200.0)
            .show_ui(ui, |ui| {
                ui.add(egui::TextEdit::singleline(&mut state.model_filter).hint_text("search"));
                let filter = state.model_filter.to_lowercase();
                for m in cx.models.iter().filter(|m| m.name.to_lowercase().contains(&filter)) {
                    let text = format!("{}  ·  {}", m.name, m.architecture);
                    if ui.selectable_label(settings.model.as_ref() == Some(&m.path), text).clicked()
                    {
                        settings.model = Some(m.path.clone());
                    }
                }
            })
            .response
            .labelled_by(l.id);
        ui.end_row();

        let l = ui.label("VAE");
        let vae_name = settings
            .vae
            .as_ref()
            .and_then(|p| p.file_name())
            .map_or_else(|| "from the checkpoint".to_owned(), |n| n.to_string_lossy().into_owned());
        egui::ComboBox::from_id_salt("vae-picker")
            .selected_text(vae_name)
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut settings.vae, None, "from the checkpoint");
                for v in cx.vaes {
                    ui.selectable_value(&mut settings.vae, Some(v.path.clone()), v.name.as_str());
                }
            })
            .response
            .labelled_by(l.id);
        ui.end_row();
    });
    ui.horizontal(|ui| {
        if cx.models.is_empty() {
            ui.weak(format!("No checkpoints found in {}", cx.model_folders_hint));
        }
        if ui.small_button("Rescan models").clicked() {
            out.push(PanelAction::RescanModels);
        }
        if let Some((done, total)) = cx.hashing {
            ui.weak(format!("Hashing models {done}/{total}"))
                .on_hover_text("Hashes find the files a pasted infotext names, even renamed");
        }
    });
    egui::CollapsingHeader::new("Model folders").default_open(false).show(ui, |ui| {
        ui.weak("Besides models/: A1111 or ComfyUI folders, one per line");
        let text = state.folders_text.get_or_insert_with(|| {
            settings
                .model_folders
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join("\n")
        });
        let l = ui.label("Extra model folders");
        ui.add(egui::TextEdit::multiline(text).desired_rows(2).desired_width(f32::INFINITY))
            .labelled_by(l.id);
        if ui.button("Use these folders").clicked() {
            settings.model_folders =
                text.lines().map(str::trim).filter(|l| !l.is_empty()).map(PathBuf::from).collect();
            out.push(PanelAction::RescanModels);
        }
    });
}

/// Strength as whole steps: the slider moves in steps of 1/N and reads "k of N steps".
fn strength_slider(ui: &mut Ui, settings: &mut GenerationSettings) {
    let steps = settings.steps.max(1);
    settings.strength = snap_strength(settings.strength, steps);
    let mut k = steps_at_strength(settings.strength, steps).max(1);
    let l = ui.label("Strength");
    let r = ui
        .add(
            egui::Slider::new(&mut k, 1..=steps)
                .custom_formatter(move |v, _| format!("{} of {steps} steps", v.round() as u32))
                .custom_parser(|s| s.split_whitespace().next().and_then(|n| n.parse().ok())),
        )
        .labelled_by(l.id)
        .on_hover_text(format!("Denoising strength {:.2}", settings.strength));
    if r.changed() {
        settings.strength = snap_strength(k as f32 / steps as f32, steps);
    }
    ui.end_row();
}

fn inpaint_options(ui: &mut Ui, settings: &mut GenerationSettings) {
    egui::CollapsingHeader::new("Inpaint options").default_open(true).show(ui, |ui| {
        egui::Grid::new("inpaint-grid").num_columns(2).show(ui, |ui| {
            let l = ui.label("Inpaint area");
            ui.horizontal(|ui| {
                for a in InpaintArea::ALL {
                    ui.radio_value(&mut settings.inpaint_area, a, a.infotext_name());
                }
            })
            .response
            .labelled_by(l.id);
            ui.end_row();
            labelled_drag(ui, "Only masked padding", &mut settings.padding_px, 0..=256, 0.5);
            labelled_drag(ui, "Mask blur", &mut settings.mask_blur_px, 0..=64, 0.2);
            let l = ui.label("Masked content");
            egui::ComboBox::from_id_salt("masked-content")
                .selected_text(settings.masked_content.infotext_name())
                .show_ui(ui, |ui| {
                    for m in MaskedContent::ALL {
                        ui.selectable_value(&mut settings.masked_content, m, m.infotext_name());
                    }
                })
                .response
                .labelled_by(l.id);
            ui.end_row();
            ui.label("");
            ui.checkbox(&mut settings.invert_mask, "Invert mask");
            ui.end_row();
        });
    });
}

/// Dragging the only-masked context box's edges on the canvas (a small state machine: idle, or
/// dragging some edges from the box the drag started on).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ContextBoxDrag {
    /// Edges being dragged: left, top, right, bottom.
    edges: Option<[bool; 4]>,
    start: raster::Rect,
}

/// Smallest context box side while dragging, in canvas pixels.
const MIN_CONTEXT_PX: i32 = 8;

impl ContextBoxDrag {
    pub fn is_dragging(&self) -> bool {
        self.edges.is_some()
    }

    /// Feeds one canvas pointer event given the box shown now (if any) and the grab distance in
    /// canvas pixels. Returns `(consumed, new box)`: consumed events must not reach the tools.
    pub fn handle(
        &mut self,
        shown: Option<raster::Rect>,
        grab_px: f32,
        event: crate::tools::PointerEvent,
    ) -> (bool, Option<raster::Rect>) {
        use crate::tools::PointerEvent;
        match event {
            PointerEvent::Press { pos, .. } => {
                let Some(b) = shown else { return (false, None) };
                let (l, t, r, btm) = (b.x as f32, b.y as f32, b.right() as f32, b.bottom() as f32);
                let inside_y = pos.y >= t - grab_px && pos.y <= btm + grab_px;
                let inside_x = pos.x >= l - grab_px && pos.x <= r + grab_px;
                let edges = [
                    inside_y && (pos.x - l).abs() <= grab_px,
                    inside_x && (pos.y - t).abs() <= grab_px,
                    inside_y && (pos.x - r).abs() <= grab_px,
                    inside_x && (pos.y - btm).abs() <= grab_px,
                ];
                if edges.iter().any(|e| *e) {
                    self.edges = Some(edges);
                    self.start = b;
                    (true, None)
                } else {
                    (false, None)
                }
            }
            PointerEvent::Move { pos, .. } => match self.edges {
                Some(e) => (true, Some(self.dragged(e, pos))),
                None => (false, None),
            },
            PointerEvent::Release { pos } => match self.edges.take() {
                Some(e) => (true, Some(self.dragged(e, pos))),
                None => (false, None),
            },
        }
    }

    fn dragged(&self, [left, top, right, bottom]: [bool; 4], pos: egui::Pos2) -> raster::Rect {
        let b = self.start;
        let (px, py) = (pos.x.round() as i32, pos.y.round() as i32);
        let mut x0 = b.x;
        let mut y0 = b.y;
        let mut x1 = b.right();
        let mut y1 = b.bottom();
        if left {
            x0 = px.min(x1 - MIN_CONTEXT_PX);
        }
        if right {
            x1 = px.max(x0 + MIN_CONTEXT_PX);
        }
        if top {
            y0 = py.min(y1 - MIN_CONTEXT_PX);
        }
        if bottom {
            y1 = py.max(y0 + MIN_CONTEXT_PX);
        }
        raster::Rect::from_bounds(x0, y0, x1, y1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_box_edges_drag() {
        use crate::tools::{PointerEvent, ToolModifiers};
        let b = raster::Rect::new(10, 10, 40, 30);
        let mut d = ContextBoxDrag::default();
        let press = |x: f32, y: f32| PointerEvent::Press {
            pos: egui::pos2(x, y),
            pressure: 1.0,
            modifiers: ToolModifiers::default(),
        };
        // A press inside, away from the edges, belongs to the tools.
        assert_eq!(d.handle(Some(b), 3.0, press(30.0, 25.0)), (false, None));
        // Grab the right edge and drag it out.
        assert_eq!(d.handle(Some(b), 3.0, press(49.0, 20.0)), (true, None));
        let (used, moved) = d.handle(
            Some(b),
            3.0,
            PointerEvent::Move { pos: egui::pos2(70.0, 5.0), pressure: 1.0 },
        );
        assert!(used);
        assert_eq!(moved, Some(raster::Rect::new(10, 10, 60, 30)));
        let (_, done) =
            d.handle(Some(b), 3.0, PointerEvent::Release { pos: egui::pos2(80.0, 5.0) });
        assert_eq!(done, Some(raster::Rect::new(10, 10, 70, 30)));
        assert!(!d.is_dragging());
        // The top-left corner moves two edges; the box never inverts.
        d.handle(Some(b), 3.0, press(10.0, 10.0));
        let (_, r) = d.handle(Some(b), 3.0, PointerEvent::Release { pos: egui::pos2(90.0, 0.0) });
        assert_eq!(r, Some(raster::Rect::from_bounds(42, 0, 50, 40)));
        // No box shown: nothing to grab.
        assert_eq!(d.handle(None, 3.0, press(10.0, 10.0)), (false, None));
    }

    #[test]
    fn strength_snaps_to_whole_steps() {
        assert_eq!(strength_label(0.8, 20), "16 of 20 steps");
        assert_eq!(snap_strength(0.79, 20), 0.8);
        assert_eq!(strength_label(snap_strength(0.79, 20), 20), "16 of 20 steps");
        // Changing N re-snaps: 0.8 with 7 steps is 6/7 (5.6 rounds to 6).
        let s = snap_strength(0.8, 7);
        assert_eq!(steps_at_strength(s, 7), 6);
        // Never zero steps.
        assert_eq!(steps_at_strength(snap_strength(0.0, 20), 20), 1);
        assert_eq!(strength_label(1.0, 30), "30 of 30 steps");
        // Every snapped value runs exactly k steps under the pipeline's floor rule.
        for n in 1..=150 {
            for k in 1..=n {
                let s = snap_strength(k as f32 / n as f32, n);
                assert_eq!(steps_at_strength(s, n), k, "{k}/{n}");
            }
        }
    }

    #[test]
    fn lora_tags_are_edited_in_place() {
        assert_eq!(set_lora_in_prompt("a fox", "ink", Some(1.0)), "a fox <lora:ink:1>");
        assert_eq!(
            set_lora_in_prompt("a <lora:ink:1> fox, <lora:oil:0.5>", "ink", Some(0.75)),
            "a <lora:ink:0.75> fox, <lora:oil:0.5>"
        );
        assert_eq!(set_lora_in_prompt("a <lora:ink:1:0.5> fox", "ink", None), "a fox");
        assert_eq!(set_lora_in_prompt("", "ink", Some(-0.5)), "<lora:ink:-0.5>");
        // Names that only share a prefix are not touched.
        assert_eq!(set_lora_in_prompt("<lora:inky:1>", "ink", None), "<lora:inky:1>");
    }

    #[test]
    fn mode_follows_the_document() {
        assert_eq!(Mode::for_document(false, 1.0), Mode::Txt2img);
        assert_eq!(Mode::for_document(false, 0.5), Mode::Img2img);
        assert_eq!(Mode::for_document(true, 1.0), Mode::Inpaint);
        assert_eq!(Mode::for_document(true, 0.3), Mode::Inpaint);
    }

    #[test]
    fn settings_survive_json_with_missing_fields() {
        let s: GenerationSettings = serde_json::from_str(r#"{"prompt":"a fox"}"#).unwrap();
        assert_eq!(s.prompt, "a fox");
        assert_eq!(s.batch_size, 4);
        assert_eq!(s.steps, 20);
    }
}
