//! Tool strip, tool options bar, right panels, status/tray area and the canvas.

use egui::{Color32, Ui};
use ui::canvas::{
    canvas_interact, paint_brush_cursor, paint_canvas_border, paint_outline, paint_tool_overlay,
};
use ui::layers::{LayerRow, layers_panel};
use ui::tools::{PointerEvent, Tool, ToolOverlay};
use ui::widgets::icon_toggle;

use super::EditorApp;

pub fn tool_strip(app: &mut EditorApp, ui: &mut Ui) {
    egui::Panel::left("tool-strip").resizable(false).exact_size(74.0).show(ui, |ui| {
        ui.vertical_centered(|ui| {
            for tool in Tool::ALL {
                if matches!(tool, Tool::RectSelect | Tool::Move | Tool::MaskBrush) {
                    ui.separator();
                }
                let key = tool.shortcut().map(|k| format!(" ({})", k.name())).unwrap_or_default();
                let tip = format!("{}{key}", tool.label());
                if icon_toggle(
                    ui,
                    app.settings.tools.tool == tool,
                    tool.glyph(),
                    tool.label(),
                    &tip,
                )
                .clicked()
                {
                    app.select_tool(tool);
                }
            }
            ui.separator();
            let c = app.settings.tools.colour;
            let (rect, resp) = ui.allocate_exact_size(egui::vec2(32.0, 32.0), egui::Sense::hover());
            resp.widget_info(|| {
                egui::WidgetInfo::labeled(egui::Role::Image, true, "Foreground colour")
            });
            ui.painter().rect_filled(
                rect,
                3.0,
                Color32::from_rgba_unmultiplied(c[0], c[1], c[2], c[3]),
            );
            ui.painter().rect_stroke(rect, 3.0, (1.0, Color32::GRAY), egui::StrokeKind::Outside);
        });
    });
}

/// The bar under the menus with the current tool's settings.
pub fn tool_options(app: &mut EditorApp, ui: &mut Ui) {
    egui::Panel::top("tool-options").show(ui, |ui| {
        ui.horizontal(|ui| {
            let tool = app.settings.tools.tool;
            ui.strong(tool.label());
            ui.separator();
            if let Some(kind) = tool.stroke_kind() {
                let b = app.settings.tools.brush_for_mut(kind);
                ui.add(
                    egui::Slider::new(
                        &mut b.size_px,
                        ui::tools::MIN_BRUSH_PX..=ui::tools::MAX_BRUSH_PX,
                    )
                    .logarithmic(true)
                    .text("Brush size"),
                );
                ui.add(egui::Slider::new(&mut b.hardness, 0.0..=1.0).text("Brush hardness"));
                ui.add(egui::Slider::new(&mut b.opacity, 0.0..=1.0).text("Brush opacity"));
                ui.add(egui::Slider::new(&mut b.flow, 0.01..=1.0).text("Brush flow"));
            }
            match tool {
                Tool::Fill => {
                    ui.add(
                        egui::Slider::new(&mut app.settings.tools.fill_tolerance, 0..=255)
                            .text("Tolerance"),
                    );
                    ui.checkbox(&mut app.settings.tools.fill_sample_merged, "Sample all layers");
                }
                Tool::RectSelect | Tool::LassoSelect => {
                    ui.add(
                        egui::Slider::new(&mut app.settings.tools.select_feather_px, 0.0..=100.0)
                            .text("Feather"),
                    );
                    ui.label("Shift adds, Alt subtracts");
                }
                Tool::Transform => {
                    if app.tools.is_transforming() {
                        if let Some(b) = app.tools.transform_box_mut() {
                            ui.add(
                                egui::Slider::new(&mut b.rotation_deg, -180.0..=180.0)
                                    .text("Rotation"),
                            );
                            ui.toggle_value(&mut b.flip_x, "Flip horizontally");
                            ui.toggle_value(&mut b.flip_y, "Flip vertically");
                        }
                        if ui.button("Apply").on_hover_text("Enter").clicked() {
                            let a = app.tools.commit();
                            app.apply_tool_actions(a);
                        }
                        if ui.button("Cancel").on_hover_text("Escape").clicked() {
                            let a = app.tools.cancel();
                            app.apply_tool_actions(a);
                        }
                    } else if ui.button("Start transform").clicked() {
                        app.begin_transform();
                    }
                }
                Tool::Move => {
                    ui.label("Drag to move the layer, or the selection's pixels");
                }
                Tool::Crop => {
                    ui.label("Drag the area to keep");
                }
                Tool::Eyedropper => {
                    ui.label("Click to pick the visible colour");
                }
                _ => {}
            }
        });
    });
}

/// Bottom: generation progress, the batch tray, and the status line.
pub fn status_bar(app: &mut EditorApp, ui: &mut Ui) {
    egui::Panel::bottom("tray").resizable(true).default_size(150.0).min_size(28.0).show(ui, |ui| {
        ui.horizontal(|ui| {
            let [w, h] = app.doc.size();
            ui.label(format!("{w} × {h} px"));
            ui.separator();
            ui.label(format!("{:.0}%", app.canvas.view.zoom * 100.0));
            if let Some(job) = &app.job {
                ui.separator();
                ui.add(
                    egui::ProgressBar::new(job.fraction())
                        .desired_width(160.0)
                        .text(job.label.clone())
                        .animate(true),
                );
            }
            if app.generation.is_busy() {
                ui.separator();
                let (fraction, text) = match &app.generation.progress {
                    Some(p) if p.total > 0 => {
                        let eta =
                            p.eta_s().map_or_else(String::new, |s| format!(" · ETA {s:.0} s"));
                        (
                            p.step as f32 / p.total as f32,
                            format!("Step {}/{}{eta}", p.step, p.total),
                        )
                    }
                    Some(_) => (0.0, "Loading the model…".to_owned()),
                    None => (0.0, "Queued".to_owned()),
                };
                ui.add(
                    egui::ProgressBar::new(fraction).desired_width(220.0).text(text).animate(true),
                );
                let queued = app.generation.jobs_in_queue();
                if queued > 1 {
                    ui.weak(format!("+{} queued", queued - 1));
                }
                if ui.button("Cancel generation").on_hover_text("Escape").clicked() {
                    app.generation.cancel_all();
                }
            }
            ui.separator();
            ui.label(format!("{:.1} ms/frame (CPU)", app.frame_ms))
                .on_hover_text("Time the editor spent building the last frames (smoothed)");
        });
        let ctx = ui.ctx().clone();
        let items = app.generation.tray_items(&ctx, &app.doc.tray);
        let keyboard =
            !ctx.egui_wants_keyboard_input() && !app.tools.is_busy() && app.dialog.is_none();
        let actions = ui::tray::tray(ui, &mut app.generation.tray_state, &items, keyboard);
        for a in actions {
            match a {
                ui::tray::TrayAction::Apply(i) => app.apply_candidate(i),
                ui::tray::TrayAction::Discard(i) => app.discard_candidate(i),
                ui::tray::TrayAction::DiscardAll => {
                    if !app.doc.tray.is_empty() {
                        app.doc.tray.clear();
                        app.tray_changed = true;
                    }
                }
                ui::tray::TrayAction::Reroll => app.reroll(&ctx),
                ui::tray::TrayAction::SameSeed(i) => app.same_seed(&ctx, i),
            }
        }
    });
}

pub fn right_panel(app: &mut EditorApp, ui: &mut Ui) {
    egui::Panel::right("right-panels").resizable(true).default_size(280.0).min_size(220.0).show(
        ui,
        |ui| {
            egui::ScrollArea::vertical().id_salt("right-scroll").show(ui, |ui| {
                egui::CollapsingHeader::new("Colour").default_open(true).show(ui, |ui| {
                    ui::colour::colour_picker(ui, &mut app.colour_state, &mut app.settings.tools);
                });
                egui::CollapsingHeader::new("Layers").default_open(true).show(ui, |ui| {
                    let rows = layer_rows(app, ui.ctx());
                    let active = app.doc.active_layer();
                    let actions = layers_panel(ui, &mut app.layers_panel, &rows, active);
                    for a in actions {
                        let r = app.doc.apply_layer(&a);
                        app.report(r);
                    }
                });
                egui::CollapsingHeader::new("Generation").default_open(true).show(ui, |ui| {
                    generation_panel(app, ui);
                });
            });
        },
    );
}

fn generation_panel(app: &mut EditorApp, ui: &mut Ui) {
    let samplers: Vec<&str> = sampling::SamplerKind::ALL.iter().map(|k| k.a1111_name()).collect();
    let schedules: Vec<&str> = sampling::Schedule::ALL
        .iter()
        .map(|s| pipeline::infotext::a1111_schedule_name(*s))
        .collect();
    let (mode, _) = app.generation.mode_and_box(&app.doc, &app.settings.generation);
    let g = &app.settings.generation;
    let (prompt_tokens, negative_tokens) =
        app.generation.token_counters(&g.prompt.clone(), &g.negative_prompt.clone());
    let folders: Vec<String> =
        super::generation::model_roots(&app.settings.generation.model_folders)
            .iter()
            .map(|p| p.display().to_string())
            .collect();
    let models = app.generation.models.clone();
    let vaes = app.generation.vaes.clone();
    let model_sdxl = models
        .iter()
        .find(|m| Some(&m.path) == app.settings.generation.model.as_ref())
        .map(|m| m.native_px >= 1024);
    let choices = |list: &[super::generation::Network]| -> Vec<ui::generation::NetworkChoice> {
        list.iter()
            .map(|n| ui::generation::NetworkChoice {
                name: n.name.clone(),
                compatible: n.sdxl.zip(model_sdxl).map(|(a, b)| a == b),
            })
            .collect()
    };
    let loras = choices(&app.generation.loras);
    let embeddings = choices(&app.generation.embeddings);
    let prompt_loras: Vec<(String, f32)> =
        sd::prompt::split_extra_networks(&app.settings.generation.prompt)
            .map(|(_, tags)| {
                tags.iter()
                    .filter(|t| sd::prompt::is_lora_kind(&t.kind))
                    .filter_map(|t| sd::prompt::lora_from_tag(t).ok())
                    .map(|l| (l.name, l.te_weight))
                    .collect()
            })
            .unwrap_or_default();
    let cx = ui::generation::PanelContext {
        models: &models,
        vaes: &vaes,
        samplers: &samplers,
        schedules: &schedules,
        mode,
        prompt_tokens,
        negative_tokens,
        last_seed: app.generation.last_seed,
        jobs_in_queue: app.generation.jobs_in_queue(),
        model_folders_hint: folders.join(", "),
        has_context_box: app.generation.context_box.is_some(),
        loras: &loras,
        embeddings: &embeddings,
        prompt_loras,
        hashing: app.generation.hash_progress,
    };
    let actions = ui::generation::generation_panel(
        ui,
        &mut app.generation.panel,
        &mut app.settings.generation,
        &cx,
    );
    let ctx = ui.ctx().clone();
    for a in actions {
        match a {
            ui::generation::PanelAction::Generate => app.generate(&ctx, None),
            ui::generation::PanelAction::CancelAll => app.generation.cancel_all(),
            ui::generation::PanelAction::ResetContextBox => app.generation.context_box = None,
            ui::generation::PanelAction::AddLora(name) => {
                let p = &mut app.settings.generation.prompt;
                *p = ui::generation::set_lora_in_prompt(p, &name, Some(1.0));
            }
            ui::generation::PanelAction::SetLoraWeight(name, w) => {
                let p = &mut app.settings.generation.prompt;
                *p = ui::generation::set_lora_in_prompt(p, &name, Some(w));
            }
            ui::generation::PanelAction::RemoveLora(name) => {
                let p = &mut app.settings.generation.prompt;
                *p = ui::generation::set_lora_in_prompt(p, &name, None);
            }
            ui::generation::PanelAction::InsertEmbedding(name) => {
                let p = &mut app.settings.generation.prompt;
                let sep = if p.trim_end().is_empty() { "" } else { ", " };
                *p = format!("{}{sep}{name}", p.trim_end());
            }
            ui::generation::PanelAction::RescanModels => {
                let folders = app.settings.generation.model_folders.clone();
                app.generation.rescan(&ctx, &folders);
            }
        }
    }
}

const THUMB_PX: u32 = 40;

fn layer_rows(app: &mut EditorApp, ctx: &egui::Context) -> Vec<LayerRow> {
    let infos = app.doc.layer_infos();
    infos
        .into_iter()
        .enumerate()
        .map(|(i, info)| {
            let tex = match app.thumbnails.get(&info.id) {
                Some((rev, tex)) if *rev == info.revision => Some(tex.id()),
                _ => {
                    let img = app.doc.layer_thumbnail(i, THUMB_PX);
                    let tex = ctx.load_texture(
                        format!("thumb-{}", info.id),
                        egui::ColorImage::from_rgba_unmultiplied(
                            [img.width() as usize, img.height() as usize],
                            img.as_bytes(),
                        ),
                        egui::TextureOptions::LINEAR,
                    );
                    let id = tex.id();
                    app.thumbnails.insert(info.id, (info.revision, tex));
                    Some(id)
                }
            };
            LayerRow {
                name: info.name,
                visible: info.visible,
                opacity: info.opacity,
                blend: info.blend,
                alpha_locked: info.alpha_locked,
                thumbnail: tex,
                record: info.record,
            }
        })
        .collect()
}

pub fn central_canvas(app: &mut EditorApp, ui: &mut Ui) {
    egui::CentralPanel::no_frame().show(ui, |ui| {
        let size = app.doc.size();
        let frame = canvas_interact(ui, &mut app.canvas, size);
        let ctx = ui.ctx().clone();
        // Tool input first, so the textures show this frame's paint.
        let mut actions = Vec::new();
        // Dialogs (adjustment previews, file browser) own the document while open.
        let events = if app.dialog.is_some() || app.browser.is_some() {
            Vec::new()
        } else {
            frame.events.clone()
        };
        let (_, shown_box) = app.generation.mode_and_box(&app.doc, &app.settings.generation);
        let grab_px = ui::tools::grab_px_at_zoom(frame.view.zoom);
        app.tools.handle_grab_px = grab_px;
        for ev in &events {
            // The context box's edges take the pointer before the tools do.
            if !app.tools.is_busy() {
                let (consumed, dragged) =
                    app.generation.context_drag.handle(shown_box, grab_px, *ev);
                if let Some(b) = dragged {
                    app.generation.context_box =
                        Some(b.intersect(&raster::Rect::from_size(size[0], size[1])));
                }
                if consumed {
                    continue;
                }
            }
            if app.settings.tools.tool == Tool::Transform
                && !app.tools.is_transforming()
                && matches!(ev, PointerEvent::Press { .. })
            {
                app.begin_transform();
            }
            actions.extend(app.tools.handle(&app.settings.tools, *ev));
        }
        app.apply_tool_actions(actions);
        app.sync_transform_preview(&ctx);

        let doc = &mut app.doc;
        app.textures.update(&ctx, &frame.view, |r| doc.composite(r));
        app.textures.paint(&ctx, &frame.painter, &frame.view);
        if app.settings.show_mask {
            let doc = &app.doc;
            app.mask_textures.update(&ctx, &frame.view, |r| doc.mask_overlay(r));
            app.mask_textures.paint_tiles_only(&frame.painter, &frame.view);
        }
        paint_generation_overlays(app, &ctx, &frame.painter, &frame.view);
        paint_canvas_border(&frame.painter, &frame.view, size);
        let time = ctx.input(|i| i.time);
        if let Some(outline) = app.doc.selection_outline() {
            paint_outline(&frame.painter, &frame.view, &outline, time);
        }
        let overlay = app.tools.overlay();
        let content = app.doc.active_coarse_bounds().map(to_egui);
        paint_tool_overlay(&frame.painter, &frame.view, &overlay, content, time);
        if let (Some(p), Some(kind)) = (frame.hover, app.settings.tools.tool.stroke_kind()) {
            paint_brush_cursor(
                &frame.painter,
                &frame.view,
                p,
                app.settings.tools.brush_for(kind).size_px,
            );
            ctx.set_cursor_icon(egui::CursorIcon::None);
        }
        if app.textures.has_pending(&frame.view)
            || overlay != ToolOverlay::None
            || app.doc.selection_bounds().is_some()
        {
            ctx.request_repaint_after(std::time::Duration::from_millis(60));
        }
    });
}

/// The live preview of the running job, or the previewed tray candidate, drawn in place; and
/// in only-masked inpainting the box the model will see.
fn paint_generation_overlays(
    app: &mut EditorApp,
    ctx: &egui::Context,
    painter: &egui::Painter,
    view: &ui::view::CanvasView,
) {
    let uv = egui::Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0));
    if let Some((tex, rect)) = &app.generation.preview {
        painter.image(tex.id(), view.screen_rect_from_canvas(to_egui(*rect)), uv, Color32::WHITE);
    } else if let Some(i) = app.generation.tray_state.previewed()
        && let Some((tex, rect)) = app.generation.candidate_texture(ctx, &app.doc.tray, i)
    {
        painter.image(tex, view.screen_rect_from_canvas(to_egui(rect)), uv, Color32::WHITE);
    }
    let (_, crop) = app.generation.mode_and_box(&app.doc, &app.settings.generation);
    if let Some(b) = crop {
        let r = view.screen_rect_from_canvas(to_egui(b));
        let colour = Color32::from_rgb(80, 200, 255);
        painter.rect_stroke(r, 0.0, (1.5, colour), egui::StrokeKind::Middle);
        // Handles at the corners and edge midpoints: drag them to show the model more.
        for p in [
            r.left_top(),
            r.center_top(),
            r.right_top(),
            r.left_center(),
            r.right_center(),
            r.left_bottom(),
            r.center_bottom(),
            r.right_bottom(),
        ] {
            painter.rect_filled(egui::Rect::from_center_size(p, egui::vec2(7.0, 7.0)), 1.0, colour);
        }
        painter.text(
            r.left_top() + egui::vec2(4.0, 2.0),
            egui::Align2::LEFT_TOP,
            format!("context {}×{}", b.width, b.height),
            egui::FontId::proportional(12.0),
            colour,
        );
    }
}

fn to_egui(r: raster::Rect) -> egui::Rect {
    egui::Rect::from_min_size(
        egui::pos2(r.x as f32, r.y as f32),
        egui::vec2(r.width as f32, r.height as f32),
    )
}
