//! The colour picker: hue/saturation/value/alpha sliders, a hex field and recent colours.
//! Plain labelled sliders so every control has an accessible name.

use egui::{Color32, Sense, Ui, vec2};

use crate::tools::ToolSettings;

/// Hue (degrees), saturation and value (0..=1) of an sRGB colour.
pub fn hsv_from_rgb(rgb: [u8; 3]) -> [f32; 3] {
    let [r, g, b] = rgb.map(|c| f32::from(c) / 255.0);
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let d = max - min;
    let h = if d <= 0.0 {
        0.0
    } else if max == r {
        60.0 * ((g - b) / d).rem_euclid(6.0)
    } else if max == g {
        60.0 * ((b - r) / d + 2.0)
    } else {
        60.0 * ((r - g) / d + 4.0)
    };
    let s = if max <= 0.0 { 0.0 } else { d / max };
    [h, s, max]
}

pub fn rgb_from_hsv([h, s, v]: [f32; 3]) -> [u8; 3] {
    let h = h.rem_euclid(360.0) / 60.0;
    let c = v * s;
    let x = c * (1.0 - (h % 2.0 - 1.0).abs());
    let (r, g, b) = match h as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = v - c;
    [r, g, b].map(|u| ((u + m) * 255.0).round().clamp(0.0, 255.0) as u8)
}

pub fn hex_from_rgba(c: [u8; 4]) -> String {
    if c[3] == 255 {
        format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
    } else {
        format!("#{:02x}{:02x}{:02x}{:02x}", c[0], c[1], c[2], c[3])
    }
}

/// Parses `#rgb`, `#rrggbb` or `#rrggbbaa` (the `#` optional).
pub fn rgba_from_hex(s: &str) -> Option<[u8; 4]> {
    let s = s.trim().trim_start_matches('#');
    let byte = |i: usize| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok());
    match s.len() {
        3 => {
            let mut out = [255u8; 4];
            for (o, ch) in out.iter_mut().zip(s.chars()) {
                let v = ch.to_digit(16)? as u8;
                *o = v * 17;
            }
            Some(out)
        }
        6 => Some([byte(0)?, byte(2)?, byte(4)?, 255]),
        8 => Some([byte(0)?, byte(2)?, byte(4)?, byte(6)?]),
        _ => None,
    }
}

/// Editing state that must survive frames (hue of a grey colour, the hex being typed).
#[derive(Clone, Debug, Default)]
pub struct ColourPickerState {
    hsv: Option<([u8; 4], [f32; 3])>,
    hex: String,
    hex_editing: bool,
}

/// Shows the picker for `settings.colour`; returns true when the colour changed.
pub fn colour_picker(
    ui: &mut Ui,
    state: &mut ColourPickerState,
    settings: &mut ToolSettings,
) -> bool {
    let before = settings.colour;
    let c = settings.colour;
    let mut hsv = match state.hsv {
        Some((rgba, hsv)) if rgba == c => hsv,
        _ => hsv_from_rgb([c[0], c[1], c[2]]),
    };
    ui.horizontal(|ui| {
        let (rect, resp) = ui.allocate_exact_size(vec2(36.0, 36.0), Sense::hover());
        resp.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, "Current colour"));
        ui.painter().rect_filled(
            rect,
            3.0,
            Color32::from_rgba_unmultiplied(c[0], c[1], c[2], c[3]),
        );
        ui.vertical(|ui| {
            let label = ui.label("Hex");
            if !state.hex_editing {
                state.hex = hex_from_rgba(c);
            }
            let r = ui
                .add(egui::TextEdit::singleline(&mut state.hex).desired_width(90.0))
                .labelled_by(label.id);
            state.hex_editing = r.has_focus();
            if r.changed()
                && let Some(v) = rgba_from_hex(&state.hex)
            {
                settings.colour = v;
            }
        });
    });
    let mut changed_hsv = false;
    changed_hsv |= ui.add(egui::Slider::new(&mut hsv[0], 0.0..=360.0).text("Hue")).changed();
    changed_hsv |= ui.add(egui::Slider::new(&mut hsv[1], 0.0..=1.0).text("Saturation")).changed();
    changed_hsv |= ui.add(egui::Slider::new(&mut hsv[2], 0.0..=1.0).text("Value")).changed();
    let mut alpha = settings.colour[3];
    let alpha_changed = ui.add(egui::Slider::new(&mut alpha, 0..=255).text("Alpha")).changed();
    if changed_hsv {
        let [r, g, b] = rgb_from_hsv(hsv);
        settings.colour = [r, g, b, settings.colour[3]];
    }
    if alpha_changed {
        settings.colour[3] = alpha;
    }
    state.hsv = Some((settings.colour, hsv));
    if !settings.recent_colours.is_empty() {
        ui.label("Recent colours");
        ui.horizontal_wrapped(|ui| {
            for rc in settings.recent_colours.clone() {
                let (rect, resp) = ui.allocate_exact_size(vec2(18.0, 18.0), Sense::click());
                let name = format!("Recent colour {}", hex_from_rgba(rc));
                resp.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Button, true, &name));
                ui.painter().rect_filled(
                    rect,
                    2.0,
                    Color32::from_rgba_unmultiplied(rc[0], rc[1], rc[2], rc[3]),
                );
                if resp.hovered() {
                    ui.painter().rect_stroke(
                        rect,
                        2.0,
                        (1.0, Color32::WHITE),
                        egui::StrokeKind::Outside,
                    );
                }
                if resp.on_hover_text(&name).clicked() {
                    settings.colour = rc;
                }
            }
        });
    }
    settings.colour != before
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hsv_round_trip() {
        for rgb in
            [[255, 0, 0], [0, 128, 255], [12, 200, 37], [0, 0, 0], [255, 255, 255], [90, 90, 91]]
        {
            assert_eq!(rgb_from_hsv(hsv_from_rgb(rgb)), rgb, "{rgb:?}");
        }
        assert_eq!(hsv_from_rgb([0, 255, 0]), [120.0, 1.0, 1.0]);
    }

    #[test]
    fn hex_parsing() {
        assert_eq!(rgba_from_hex("#ff8000"), Some([255, 128, 0, 255]));
        assert_eq!(rgba_from_hex("0f0"), Some([0, 255, 0, 255]));
        assert_eq!(rgba_from_hex("#01020304"), Some([1, 2, 3, 4]));
        assert_eq!(rgba_from_hex("#zz0000"), None);
        assert_eq!(rgba_from_hex("#12345"), None);
        assert_eq!(hex_from_rgba([1, 2, 3, 255]), "#010203");
    }
}
