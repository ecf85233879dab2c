//! The menu bar: File, Edit, Image, Layer, Select, View, Help.

use egui::{Button, Ui};
use ui::file_browser::BrowsePurpose;
use ui::layers::LayerAction;

use super::{Dialog, EditorApp};

fn item(ui: &mut Ui, text: &str, shortcut: &str) -> bool {
    ui.add(Button::new(text).shortcut_text(shortcut)).clicked()
}

fn item_enabled(ui: &mut Ui, enabled: bool, text: &str, shortcut: &str, why_not: &str) -> bool {
    ui.add_enabled(enabled, Button::new(text).shortcut_text(shortcut))
        .on_disabled_hover_text(why_not)
        .clicked()
}

pub fn menu_bar(app: &mut EditorApp, ui: &mut Ui) {
    let ctx = ui.ctx().clone();
    egui::Panel::top("menu-bar").show(ui, |ui| {
        egui::MenuBar::new().ui(ui, |ui| {
            ui.menu_button("File", |ui| {
                if item(ui, "New…", "Ctrl+N") {
                    app.dialog = Some(Dialog::New {
                        width: app.settings.new_size[0],
                        height: app.settings.new_size[1],
                    });
                }
                if item(ui, "Open…", "Ctrl+O") {
                    app.ask_file(&ctx, BrowsePurpose::OpenDocument);
                }
                let recent = app.settings.recent_files.clone();
                ui.add_enabled_ui(!recent.is_empty(), |ui| {
                    ui.menu_button("Open recent", |ui| {
                        for p in recent {
                            if ui.button(p.display().to_string()).clicked() {
                                app.open_path(&ctx, p);
                            }
                        }
                    });
                });
                if item(ui, "Import image as layer…", "") {
                    app.ask_file(&ctx, BrowsePurpose::ImportLayer);
                }
                ui.separator();
                if item(ui, "Save", "Ctrl+S") {
                    app.save(&ctx);
                }
                if item(ui, "Save as…", "Ctrl+Shift+S") {
                    app.ask_file(&ctx, BrowsePurpose::SaveDocument);
                }
                if item(ui, "Export…", "Ctrl+E") {
                    app.ask_file(&ctx, BrowsePurpose::Export);
                }
                ui.separator();
                if item(ui, "Quit", "Ctrl+Q") {
                    ctx.send_viewport_cmd(egui::ViewportCommand::Close);
                }
            });
            ui.menu_button("Edit", |ui| {
                let busy = app.tools.is_busy();
                if item_enabled(
                    ui,
                    app.doc.can_undo() && !busy,
                    "Undo",
                    "Ctrl+Z",
                    "Nothing to undo",
                ) {
                    app.undo();
                }
                if item_enabled(
                    ui,
                    app.doc.can_redo() && !busy,
                    "Redo",
                    "Ctrl+Shift+Z",
                    "Nothing to redo",
                ) {
                    app.redo();
                }
                ui.separator();
                if item(ui, "Cut", "Ctrl+X") {
                    app.copy(&ctx, true);
                }
                if item(ui, "Copy", "Ctrl+C") {
                    app.copy(&ctx, false);
                }
                item_enabled(
                    ui,
                    false,
                    "Paste",
                    "Ctrl+V",
                    "Press Ctrl+V on the canvas: the system clipboard is read on the key press",
                );
            });
            ui.menu_button("Image", |ui| {
                if item(ui, "Hue / Saturation / Lightness…", "") {
                    app.open_adjustment(true);
                }
                if item(ui, "Brightness / Contrast…", "") {
                    app.open_adjustment(false);
                }
                ui.separator();
                let sel = app.doc.selection_bounds();
                if item_enabled(ui, sel.is_some(), "Crop to selection", "", "Select an area first")
                    && let Some(rect) = sel
                {
                    app.apply_tool_actions(vec![ui::tools::ToolAction::Crop { rect }]);
                }
            });
            ui.menu_button("Layer", |ui| {
                let active = app.doc.active_layer();
                let n = app.doc.layer_count();
                let mut acts = Vec::new();
                if item(ui, "New layer", "") {
                    acts.push(LayerAction::Add);
                }
                if item(ui, "Duplicate layer", "") {
                    acts.push(LayerAction::Duplicate(active));
                }
                if item_enabled(ui, n > 1, "Delete layer", "", "The last layer cannot be deleted") {
                    acts.push(LayerAction::Delete(active));
                }
                if item_enabled(
                    ui,
                    active > 0,
                    "Merge down",
                    "",
                    "The bottom layer has nothing below",
                ) {
                    acts.push(LayerAction::MergeDown(active));
                }
                for a in acts {
                    let r = app.doc.apply_layer(&a);
                    app.report(r);
                }
                if item(ui, "Import image as layer…", "") {
                    app.ask_file(&ctx, BrowsePurpose::ImportLayer);
                }
                ui.separator();
                let record = app.doc.layer_record(active).cloned();
                let why = "The active layer was not generated";
                if item_enabled(ui, record.is_some(), "Show parameters", "", why)
                    && let Some(r) = &record
                {
                    app.dialog = Some(Dialog::Parameters {
                        title: app
                            .doc
                            .layer_infos()
                            .get(active)
                            .map_or_else(String::new, |l| l.name.clone()),
                        text: super::generation::record_text(r),
                    });
                }
                if item_enabled(ui, record.is_some(), "Reuse parameters", "", why)
                    && let Some(r) = &record
                {
                    app.reuse_record(r);
                }
                if item_enabled(ui, record.is_some(), "Generate again from here", "", why)
                    && let Some(r) = &record
                {
                    app.reuse_record(r);
                    app.settings.generation.seed_mode = ui::generation::SeedMode::Random;
                    app.generate(&ctx, None);
                }
                if item(ui, "Lineage…", "") {
                    app.generation.show_lineage = true;
                }
            });
            ui.menu_button("Select", |ui| {
                if item(ui, "Select all", "Ctrl+A") {
                    let r = app.doc.select_all();
                    app.report(r);
                }
                if item(ui, "Deselect", "Ctrl+D") {
                    let r = app.doc.deselect();
                    app.report(r);
                }
                if item(ui, "Invert selection", "") {
                    let r = app.doc.invert_selection();
                    app.report(r);
                }
                if item(ui, "Clear selected pixels", "Delete") {
                    let r = app.doc.delete_selected();
                    app.report(r);
                }
                ui.separator();
                ui.label("Inpaint mask");
                if item(ui, "Clear mask", "") {
                    let r = app.doc.clear_mask();
                    app.report(r);
                }
                if item(ui, "Invert mask", "") {
                    let r = app.doc.invert_mask();
                    app.report(r);
                }
                if item(ui, "Mask from selection", "") {
                    let r = app.doc.mask_from_selection();
                    app.report(r);
                }
                if item(ui, "Mask from layer alpha", "") {
                    let r = app.doc.mask_from_layer_alpha();
                    app.report(r);
                }
                if item(ui, "Load mask from image…", "") {
                    app.ask_file(&ctx, BrowsePurpose::LoadMask);
                }
            });
            ui.menu_button("View", |ui| {
                if item(ui, "Zoom in", "+") {
                    app.canvas.view.zoom_in();
                }
                if item(ui, "Zoom out", "-") {
                    app.canvas.view.zoom_out();
                }
                if item(ui, "Actual pixels", "1") {
                    app.canvas.view.actual_pixels();
                }
                if item(ui, "Fit to window", "2") {
                    app.canvas.fit_pending = true;
                }
                ui.separator();
                ui.checkbox(&mut app.settings.show_mask, "Show inpaint mask (H)");
            });
            ui.menu_button("Help", |ui| {
                if item(ui, "About and shortcuts", "") {
                    app.dialog = Some(Dialog::About);
                }
            });
        });
    });
}
