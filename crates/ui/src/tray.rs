//! The batch tray: the candidates of the last generations as thumbnails along the bottom.
//!
//! Hovering a thumbnail (or moving through them with the arrow keys) previews that candidate in
//! place on the canvas; the app draws the preview, the tray only says which one. Apply (Enter or
//! double-click) turns a candidate into a layer; the tray keeps it, so any number can be applied.

use egui::{Color32, Key, Sense, TextureId, Ui, vec2};

/// One candidate as the tray shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct TrayItem {
    pub thumbnail: TextureId,
    /// Thumbnail size in points (aspect of the candidate).
    pub size: [f32; 2],
    /// "seed 1234".
    pub label: String,
    /// Hover text: prompt and parameters.
    pub tooltip: String,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TrayAction {
    Apply(usize),
    Discard(usize),
    DiscardAll,
    /// Another batch with the same parameters and new seeds.
    Reroll,
    /// Run the selected candidate's seed again with the current document (e.g. another mask).
    SameSeed(usize),
}

/// Tray state kept between frames.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrayState {
    /// The candidate picked with a click or the arrow keys.
    pub selected: Option<usize>,
    /// The candidate under the pointer this frame.
    pub hovered: Option<usize>,
    /// Show the original (the canvas without the preview) instead of the candidate.
    pub compare: bool,
}

impl TrayState {
    /// The candidate to draw on the canvas: the hovered one, else the selected one; none while
    /// comparing against the original.
    pub fn previewed(&self) -> Option<usize> {
        if self.compare { None } else { self.hovered.or(self.selected) }
    }

    /// Keeps indices valid after the tray changed to `len` items.
    pub fn clamp(&mut self, len: usize) {
        if len == 0 {
            self.selected = None;
        } else if let Some(s) = self.selected {
            self.selected = Some(s.min(len - 1));
        }
        if self.hovered.is_some_and(|h| h >= len) {
            self.hovered = None;
        }
    }

    /// Arrow keys move the selection (when no text field has focus).
    pub fn step_selection(&mut self, forward: bool, len: usize) {
        if len == 0 {
            return;
        }
        self.selected = Some(match (self.selected, forward) {
            (None, true) => 0,
            (None, false) => len - 1,
            (Some(s), true) => (s + 1).min(len - 1),
            (Some(s), false) => s.saturating_sub(1),
        });
    }
}

/// Shows the tray; `keyboard` says whether the tray may take the arrow keys and Enter.
pub fn tray(
    ui: &mut Ui,
    state: &mut TrayState,
    items: &[TrayItem],
    keyboard: bool,
) -> Vec<TrayAction> {
    let mut out = Vec::new();
    state.clamp(items.len());
    if keyboard {
        let (left, right, enter) = ui.input_mut(|i| {
            (
                i.consume_key(egui::Modifiers::NONE, Key::ArrowLeft),
                i.consume_key(egui::Modifiers::NONE, Key::ArrowRight),
                i.consume_key(egui::Modifiers::NONE, Key::Enter),
            )
        });
        if left {
            state.step_selection(false, items.len());
        }
        if right {
            state.step_selection(true, items.len());
        }
        if enter && let Some(s) = state.selected {
            out.push(TrayAction::Apply(s));
        }
    }
    ui.horizontal(|ui| {
        ui.strong(format!("Batch tray ({})", items.len()));
        let sel = state.selected;
        if ui
            .add_enabled(sel.is_some(), egui::Button::new("Apply"))
            .on_hover_text("Enter or double-click")
            .clicked()
            && let Some(s) = sel
        {
            out.push(TrayAction::Apply(s));
        }
        if ui.add_enabled(sel.is_some(), egui::Button::new("Discard")).clicked()
            && let Some(s) = sel
        {
            out.push(TrayAction::Discard(s));
        }
        if ui.add_enabled(!items.is_empty(), egui::Button::new("Discard all")).clicked() {
            out.push(TrayAction::DiscardAll);
        }
        if ui
            .add_enabled(!items.is_empty(), egui::Button::new("Re-roll"))
            .on_hover_text("Another batch with new seeds")
            .clicked()
        {
            out.push(TrayAction::Reroll);
        }
        if ui
            .add_enabled(sel.is_some(), egui::Button::new("Same seed"))
            .on_hover_text(
                "Generate the selected candidate's seed again, with the current mask and image",
            )
            .clicked()
            && let Some(s) = sel
        {
            out.push(TrayAction::SameSeed(s));
        }
        ui.toggle_value(&mut state.compare, "Compare with original")
            .on_hover_text("Show the canvas without the previewed candidate");
    });
    if items.is_empty() {
        ui.weak("Generated candidates appear here.");
        state.hovered = None;
        return out;
    }
    let mut hovered = None;
    egui::ScrollArea::horizontal().id_salt("tray-scroll").show(ui, |ui| {
        ui.horizontal(|ui| {
            for (i, item) in items.iter().enumerate() {
                let selected = state.selected == Some(i);
                let (rect, resp) = ui.allocate_exact_size(
                    vec2(item.size[0], item.size[1]) + vec2(6.0, 6.0),
                    Sense::click(),
                );
                let name = format!("Candidate {} ({})", i + 1, item.label);
                resp.widget_info(|| {
                    egui::WidgetInfo::selected(egui::Role::Image, true, selected, &name)
                });
                let inner = rect.shrink(3.0);
                ui.painter().image(
                    item.thumbnail,
                    inner,
                    egui::Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0)),
                    Color32::WHITE,
                );
                let stroke = if selected {
                    egui::Stroke::new(3.0, ui.visuals().selection.stroke.color)
                } else if resp.hovered() {
                    egui::Stroke::new(1.5, Color32::LIGHT_GRAY)
                } else {
                    egui::Stroke::new(1.0, Color32::DARK_GRAY)
                };
                ui.painter().rect_stroke(rect, 2.0, stroke, egui::StrokeKind::Inside);
                if resp.hovered() {
                    hovered = Some(i);
                }
                if resp.clicked() {
                    state.selected = Some(i);
                }
                if resp.double_clicked() {
                    out.push(TrayAction::Apply(i));
                }
                resp.on_hover_text(&item.tooltip);
            }
        });
    });
    state.hovered = hovered;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preview_prefers_hover_and_hides_while_comparing() {
        let mut s = TrayState { selected: Some(1), hovered: Some(2), compare: false };
        assert_eq!(s.previewed(), Some(2));
        s.hovered = None;
        assert_eq!(s.previewed(), Some(1));
        s.compare = true;
        assert_eq!(s.previewed(), None);
    }

    #[test]
    fn selection_steps_and_clamps() {
        let mut s = TrayState::default();
        s.step_selection(true, 4);
        assert_eq!(s.selected, Some(0));
        s.step_selection(false, 4);
        assert_eq!(s.selected, Some(0));
        for _ in 0..10 {
            s.step_selection(true, 4);
        }
        assert_eq!(s.selected, Some(3));
        s.clamp(2);
        assert_eq!(s.selected, Some(1));
        s.clamp(0);
        assert_eq!(s.selected, None);
    }
}
