//! Small shared widgets.

use egui::{Button, Response, Role, Ui, WidgetInfo};

/// A glyph button whose accessible name (and tooltip) is `name`, so screen readers and tests
/// find it by words, not by its icon.
pub fn icon_button(ui: &mut Ui, enabled: bool, glyph: &str, name: &str) -> Response {
    let r = ui.add_enabled(enabled, Button::new(glyph));
    r.widget_info(|| WidgetInfo::labeled(Role::Button, enabled, name));
    r.on_hover_text(name)
}

/// Like [`icon_button`], drawn selected when `selected` (the tool strip).
pub fn icon_toggle(
    ui: &mut Ui,
    selected: bool,
    glyph: &str,
    name: &str,
    tooltip: &str,
) -> Response {
    let r = ui.add(Button::selectable(selected, glyph).min_size(egui::vec2(62.0, 26.0)));
    r.widget_info(|| WidgetInfo::selected(Role::Button, true, selected, name));
    r.on_hover_text(tooltip)
}
