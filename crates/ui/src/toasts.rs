//! Non-blocking notifications: errors never stop the user or lose the document.

use egui::{Align2, Color32, Context, RichText, vec2};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToastKind {
    Info,
    Error,
}

#[derive(Clone, Debug)]
struct Toast {
    text: String,
    kind: ToastKind,
    /// `ctx` time when first shown.
    shown_at: Option<f64>,
}

/// A stack of toasts in the bottom-right corner; info fades after 4 s, errors after 12 s or a click.
#[derive(Clone, Debug, Default)]
pub struct Toasts {
    items: Vec<Toast>,
}

impl Toasts {
    pub fn info(&mut self, text: impl Into<String>) {
        self.push(text.into(), ToastKind::Info);
    }

    pub fn error(&mut self, text: impl Into<String>) {
        let text = text.into();
        log::warn!("{text}");
        self.push(text, ToastKind::Error);
    }

    fn push(&mut self, text: String, kind: ToastKind) {
        self.items.push(Toast { text, kind, shown_at: None });
        if self.items.len() > 6 {
            self.items.remove(0);
        }
    }

    /// Texts currently shown (tests read these).
    pub fn texts(&self) -> impl Iterator<Item = (&str, ToastKind)> {
        self.items.iter().map(|t| (t.text.as_str(), t.kind))
    }

    pub fn show(&mut self, ctx: &Context) {
        let now = ctx.input(|i| i.time);
        self.items.retain(|t| {
            let life = if t.kind == ToastKind::Error { 12.0 } else { 4.0 };
            t.shown_at.is_none_or(|s| now - s < life)
        });
        if self.items.is_empty() {
            return;
        }
        let mut dismiss = None;
        egui::Area::new(egui::Id::unique("pentimento-toasts"))
            .anchor(Align2::RIGHT_BOTTOM, vec2(-12.0, -12.0))
            .order(egui::Order::Foreground)
            .show(ctx, |ui| {
                for (i, t) in self.items.iter_mut().enumerate() {
                    t.shown_at.get_or_insert(now);
                    let fill = match t.kind {
                        ToastKind::Info => Color32::from_rgb(40, 60, 90),
                        ToastKind::Error => Color32::from_rgb(110, 30, 30),
                    };
                    egui::Frame::popup(ui.style()).fill(fill).show(ui, |ui| {
                        ui.set_max_width(360.0);
                        ui.horizontal(|ui| {
                            ui.label(RichText::new(&t.text).color(Color32::WHITE));
                            if ui.small_button("×").on_hover_text("Dismiss").clicked() {
                                dismiss = Some(i);
                            }
                        });
                    });
                }
            });
        if let Some(i) = dismiss
            && i < self.items.len()
        {
            self.items.remove(i);
        }
        ctx.request_repaint_after(std::time::Duration::from_millis(500));
    }
}
