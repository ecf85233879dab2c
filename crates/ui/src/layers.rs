//! The layers panel. It shows rows the app builds from the document and returns what the user
//! asked for as [`LayerAction`]s; indices are document indices (0 = bottom layer), the list shows
//! the top layer first, as every editor does.

use egui::{Color32, Sense, TextureId, Ui, vec2};

use raster::BlendMode;

use crate::widgets::icon_button;

/// One layer as the panel shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerRow {
    pub name: String,
    pub visible: bool,
    /// 0..=1
    pub opacity: f32,
    pub blend: BlendMode,
    pub alpha_locked: bool,
    pub thumbnail: Option<TextureId>,
    /// The generation record, shown on hover (empty until generation lands).
    pub record: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum LayerAction {
    Select(usize),
    Add,
    Delete(usize),
    Duplicate(usize),
    MergeDown(usize),
    /// Move layer `from` to index `to` (document indices).
    Reorder {
        from: usize,
        to: usize,
    },
    SetVisible(usize, bool),
    /// `done` is false while the slider is being dragged (live preview, one undo step at the end).
    SetOpacity {
        index: usize,
        opacity: f32,
        done: bool,
    },
    SetBlend(usize, BlendMode),
    Rename(usize, String),
    SetAlphaLock(usize, bool),
}

/// Panel state kept between frames.
#[derive(Clone, Debug, Default)]
pub struct LayersPanelState {
    renaming: Option<(usize, String)>,
    /// Opacity being dragged: (index, value).
    opacity_drag: Option<(usize, f32)>,
}

/// Shows the panel.
pub fn layers_panel(
    ui: &mut Ui,
    state: &mut LayersPanelState,
    rows: &[LayerRow],
    active: usize,
) -> Vec<LayerAction> {
    let mut out = Vec::new();
    let n = rows.len();
    ui.horizontal(|ui| {
        if icon_button(ui, true, "Add", "Add layer").clicked() {
            out.push(LayerAction::Add);
        }
        let has = active < n;
        if icon_button(ui, has, "Dup", "Duplicate layer").clicked() {
            out.push(LayerAction::Duplicate(active));
        }
        if icon_button(ui, has && active > 0, "Merge", "Merge down").clicked() {
            out.push(LayerAction::MergeDown(active));
        }
        if icon_button(ui, has && active + 1 < n, "Up", "Move layer up").clicked() {
            out.push(LayerAction::Reorder { from: active, to: active + 1 });
        }
        if icon_button(ui, has && active > 0, "Down", "Move layer down").clicked() {
            out.push(LayerAction::Reorder { from: active, to: active - 1 });
        }
        if icon_button(ui, has && n > 1, "Del", "Delete layer").clicked() {
            out.push(LayerAction::Delete(active));
        }
    });

    if let Some(row) = rows.get(active) {
        let mut opacity = match state.opacity_drag {
            Some((i, v)) if i == active => v,
            _ => row.opacity,
        };
        let r = ui.add(
            egui::Slider::new(&mut opacity, 0.0..=1.0)
                .text("Layer opacity")
                .custom_formatter(|v, _| format!("{:.0}%", v * 100.0)),
        );
        if r.changed() {
            state.opacity_drag = Some((active, opacity));
            out.push(LayerAction::SetOpacity { index: active, opacity, done: !r.dragged() });
        }
        if r.drag_stopped() {
            state.opacity_drag = None;
            out.push(LayerAction::SetOpacity { index: active, opacity, done: true });
        }
        let label = ui.label("Blend mode");
        egui::ComboBox::from_id_salt("blend-mode")
            .selected_text(row.blend.display_name())
            .show_ui(ui, |ui| {
                for mode in BlendMode::ALL {
                    if ui.selectable_label(row.blend == mode, mode.display_name()).clicked()
                        && row.blend != mode
                    {
                        out.push(LayerAction::SetBlend(active, mode));
                    }
                }
            })
            .response
            .labelled_by(label.id);
        let mut locked = row.alpha_locked;
        if ui.checkbox(&mut locked, "Lock alpha").changed() {
            out.push(LayerAction::SetAlphaLock(active, locked));
        }
    }
    ui.separator();

    egui::ScrollArea::vertical().id_salt("layers-scroll").show(ui, |ui| {
        for index in (0..n).rev() {
            let Some(row) = rows.get(index) else { continue };
            let item_id = egui::Id::unique(("layer-row", index));
            let frame =
                egui::Frame::new().inner_margin(4.0).corner_radius(3.0).fill(if index == active {
                    ui.visuals().selection.bg_fill
                } else {
                    Color32::TRANSPARENT
                });
            let (_, dropped) = ui.dnd_drop_zone::<usize, ()>(egui::Frame::new(), |ui| {
                frame.show(ui, |ui| {
                    ui.horizontal(|ui| {
                        let mut visible = row.visible;
                        let eye = ui.add(egui::Checkbox::without_text(&mut visible));
                        let eye_name = format!("Visible: {}", row.name);
                        eye.widget_info(|| {
                            egui::WidgetInfo::selected(
                                egui::Role::CheckBox,
                                true,
                                visible,
                                &eye_name,
                            )
                        });
                        if eye.on_hover_text("Show or hide the layer").changed() {
                            out.push(LayerAction::SetVisible(index, visible));
                        }
                        ui.dnd_drag_source(item_id.with("drag"), index, |ui| {
                            let (rect, _) =
                                ui.allocate_exact_size(vec2(40.0, 40.0), Sense::hover());
                            ui.painter().rect_filled(rect, 2.0, Color32::from_gray(120));
                            if let Some(tex) = row.thumbnail {
                                ui.painter().image(
                                    tex,
                                    rect,
                                    egui::Rect::from_min_max(
                                        egui::pos2(0.0, 0.0),
                                        egui::pos2(1.0, 1.0),
                                    ),
                                    Color32::WHITE,
                                );
                            }
                        });
                        match &mut state.renaming {
                            Some((i, text)) if *i == index => {
                                let label = ui.label("Layer name");
                                let r = ui
                                    .add(egui::TextEdit::singleline(text).desired_width(110.0))
                                    .labelled_by(label.id);
                                r.request_focus();
                                if r.lost_focus() {
                                    if !ui.input(|i| i.key_pressed(egui::Key::Escape))
                                        && !text.trim().is_empty()
                                    {
                                        out.push(LayerAction::Rename(
                                            index,
                                            text.trim().to_owned(),
                                        ));
                                    }
                                    state.renaming = None;
                                }
                            }
                            _ => {
                                let mut text = egui::RichText::new(&row.name);
                                if !row.visible {
                                    text = text.weak();
                                }
                                let r = ui.add(
                                    egui::Button::selectable(index == active, text).frame(false),
                                );
                                let r = match &row.record {
                                    Some(rec) => r.on_hover_text(rec),
                                    None => r.on_hover_text("Double-click to rename"),
                                };
                                if r.clicked() {
                                    out.push(LayerAction::Select(index));
                                }
                                if r.double_clicked() {
                                    state.renaming = Some((index, row.name.clone()));
                                }
                            }
                        }
                        if row.alpha_locked {
                            ui.weak("locked").on_hover_text("Alpha locked");
                        }
                    });
                });
            });
            if let Some(from) = dropped
                && *from != index
            {
                out.push(LayerAction::Reorder { from: *from, to: index });
            }
        }
    });
    out
}
