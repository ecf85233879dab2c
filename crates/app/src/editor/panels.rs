//! Tool strip, tool options bar, right panels, status/tray area and the canvas.

use egui::{Color32, Ui};
use ui::canvas::{
    canvas_interact, paint_brush_cursor, paint_canvas_border, paint_marquee, paint_tool_overlay,
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

/// Bottom: reserved for the generation tray, and the status line.
pub fn status_bar(app: &mut EditorApp, ui: &mut Ui) {
    egui::Panel::bottom("tray").resizable(true).default_size(64.0).min_size(28.0).show(ui, |ui| {
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
            ui.separator();
            ui.label(format!("{:.1} ms/frame (CPU)", app.frame_ms))
                .on_hover_text("Time the editor spent building the last frames (smoothed)");
        });
        ui.weak(
            "Generation tray: results of generation appear here (generation is not built yet).",
        );
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
                egui::CollapsingHeader::new("Generation").default_open(false).show(ui, |ui| {
                    ui.weak(
                        "Model, prompt and sampler settings arrive with the generation feature.",
                    );
                });
            });
        },
    );
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
        for ev in &events {
            if app.settings.tools.tool == Tool::Transform
                && !app.tools.is_transforming()
                && matches!(ev, PointerEvent::Press { .. })
            {
                app.begin_transform();
            }
            app.tools.handle_grab_px = 8.0 / frame.view.zoom.max(1e-3);
            actions.extend(app.tools.handle(&app.settings.tools, *ev));
        }
        app.apply_tool_actions(actions);

        let doc = &mut app.doc;
        app.textures.update(&ctx, &frame.view, |r| doc.composite(r));
        app.textures.paint(&ctx, &frame.painter, &frame.view);
        if app.settings.show_mask {
            let doc = &app.doc;
            app.mask_textures.update(&ctx, &frame.view, |r| doc.mask_overlay(r));
            app.mask_textures.paint_tiles_only(&frame.painter, &frame.view);
        }
        paint_canvas_border(&frame.painter, &frame.view, size);
        let time = ctx.input(|i| i.time);
        if let Some(sel) = app.doc.selection_bounds() {
            paint_marquee(&frame.painter, &frame.view, to_egui(sel), time);
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

fn to_egui(r: raster::Rect) -> egui::Rect {
    egui::Rect::from_min_size(
        egui::pos2(r.x as f32, r.y as f32),
        egui::vec2(r.width as f32, r.height as f32),
    )
}
