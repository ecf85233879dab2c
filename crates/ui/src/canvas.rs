//! The canvas widget: view navigation (wheel zoom toward the cursor, space-drag and middle-drag
//! pan) and pointer input for the tools, converted to canvas pixels.

use egui::{
    Color32, Key, Painter, PointerButton, Pos2, Rect, Response, Sense, Shape, Stroke, Ui, pos2,
    vec2,
};

use crate::tools::{PointerEvent, ToolModifiers, ToolOverlay, TransformBox};
use crate::view::CanvasView;

/// What the pointer is doing on the canvas.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Drag {
    #[default]
    None,
    Pan,
    Tool,
}

/// Per-canvas navigation state, kept between frames.
#[derive(Clone, Debug, Default)]
pub struct CanvasState {
    pub view: CanvasView,
    /// Fit the document into the viewport on the next frame (new or opened document).
    pub fit_pending: bool,
    drag: Drag,
    last_pointer: Option<Pos2>,
}

/// One frame of the canvas: where it is, and the tool input it received.
pub struct CanvasFrame {
    pub response: Response,
    pub painter: Painter,
    pub view: CanvasView,
    /// Tool input in canvas pixels, in order.
    pub events: Vec<PointerEvent>,
    /// The canvas point under the pointer.
    pub hover: Option<Pos2>,
}

/// Accessible name of the canvas widget.
pub const CANVAS_LABEL: &str = "Canvas";

impl CanvasState {
    /// A canvas that fits the document into the viewport on its first frame.
    pub fn fitting() -> Self {
        Self { fit_pending: true, ..Self::default() }
    }

    pub fn is_dragging_tool(&self) -> bool {
        self.drag == Drag::Tool
    }
}

/// Lays out the canvas over the remaining space and handles navigation; returns the tool input.
pub fn canvas_interact(ui: &mut Ui, state: &mut CanvasState, doc_size: [u32; 2]) -> CanvasFrame {
    let (rect, response) = ui.allocate_exact_size(ui.available_size(), Sense::click_and_drag());
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Canvas, true, CANVAS_LABEL));
    let painter = ui.painter_at(rect);
    state.view.set_viewport(rect);
    let size = vec2(doc_size[0] as f32, doc_size[1] as f32);
    if state.fit_pending {
        state.view.fit(size);
        state.fit_pending = false;
    }

    let layer_id = ui.layer_id();
    let ctx = ui.ctx().clone();
    let on_canvas = |p: Pos2| rect.contains(p) && ctx.layer_id_at(p).is_none_or(|l| l == layer_id);
    let (events, space_down, scroll, zoom_delta, hover_pos) = ui.input(|i| {
        (
            i.events.clone(),
            i.key_down(Key::Space),
            i.smooth_scroll_delta,
            i.zoom_delta(),
            i.pointer.hover_pos(),
        )
    });

    // Wheel zoom toward the cursor (ctrl+wheel and pinch arrive as zoom_delta).
    if let Some(p) = hover_pos.filter(|p| on_canvas(*p)) {
        let wheel = scroll.y + scroll.x;
        let factor = zoom_delta * (wheel / 240.0).exp2();
        if (factor - 1.0).abs() > 1e-4 {
            state.view.zoom_about(p, factor);
        }
    }

    let mut out = Vec::new();
    for ev in events {
        match ev {
            egui::Event::PointerButton { pos, button, pressed, modifiers } => {
                let mods = ToolModifiers {
                    shift: modifiers.shift,
                    alt: modifiers.alt || modifiers.command,
                };
                match (button, pressed, state.drag) {
                    (PointerButton::Middle, true, Drag::None) if on_canvas(pos) => {
                        state.drag = Drag::Pan
                    }
                    (PointerButton::Primary, true, Drag::None) if on_canvas(pos) => {
                        if space_down {
                            state.drag = Drag::Pan;
                        } else {
                            state.drag = Drag::Tool;
                            out.push(PointerEvent::Press {
                                pos: state.view.canvas_from_screen(pos),
                                pressure: 1.0,
                                modifiers: mods,
                            });
                        }
                    }
                    (PointerButton::Primary, false, Drag::Tool) => {
                        state.drag = Drag::None;
                        out.push(PointerEvent::Release { pos: state.view.canvas_from_screen(pos) });
                    }
                    (PointerButton::Primary | PointerButton::Middle, false, Drag::Pan) => {
                        state.drag = Drag::None
                    }
                    _ => {}
                }
                state.last_pointer = Some(pos);
            }
            egui::Event::PointerMoved(pos) => {
                match state.drag {
                    Drag::Pan => {
                        if let Some(last) = state.last_pointer {
                            state.view.pan_by(pos - last);
                        }
                    }
                    Drag::Tool => out.push(PointerEvent::Move {
                        pos: state.view.canvas_from_screen(pos),
                        pressure: 1.0,
                    }),
                    Drag::None => {}
                }
                state.last_pointer = Some(pos);
            }
            egui::Event::PointerGone => {
                // The pointer left the window mid-drag: finish the gesture where it was.
                if state.drag == Drag::Tool
                    && let Some(last) = state.last_pointer
                {
                    out.push(PointerEvent::Release { pos: state.view.canvas_from_screen(last) });
                }
                state.drag = Drag::None;
                state.last_pointer = None;
            }
            _ => {}
        }
    }
    if state.drag == Drag::Pan || (space_down && response.hovered()) {
        ctx.set_cursor_icon(if state.drag == Drag::Pan {
            egui::CursorIcon::Grabbing
        } else {
            egui::CursorIcon::Grab
        });
    }
    let hover = hover_pos.filter(|p| rect.contains(*p)).map(|p| state.view.canvas_from_screen(p));
    painter.rect_filled(rect, 0.0, Color32::from_gray(40));
    CanvasFrame { response, painter, view: state.view, events: out, hover }
}

/// Dashed outline of a canvas rectangle (selection, crop).
pub fn paint_marquee(painter: &Painter, view: &CanvasView, canvas_rect: Rect, time: f64) {
    let r = view.screen_rect_from_canvas(canvas_rect);
    let pts = vec![r.left_top(), r.right_top(), r.right_bottom(), r.left_bottom(), r.left_top()];
    paint_ants(painter, &pts, time);
}

/// Black/white dashes that crawl with time ("marching ants").
fn paint_ants(painter: &Painter, points: &[Pos2], time: f64) {
    painter.add(Shape::line(points.to_vec(), Stroke::new(1.0, Color32::BLACK)));
    let offset = (time * 8.0).rem_euclid(8.0) as f32;
    painter.extend(Shape::dashed_line_with_offset(
        points,
        Stroke::new(1.0, Color32::WHITE),
        &[4.0],
        &[4.0],
        offset,
    ));
}

/// Draws the tool's gesture (marquee, lasso, move offset, transform box).
pub fn paint_tool_overlay(
    painter: &Painter,
    view: &CanvasView,
    overlay: &ToolOverlay,
    content_bounds: Option<Rect>,
    time: f64,
) {
    match overlay {
        ToolOverlay::None => {}
        ToolOverlay::Rect(r) => paint_marquee(painter, view, *r, time),
        ToolOverlay::Polyline(points) => {
            let pts: Vec<Pos2> = points.iter().map(|p| view.screen_from_canvas(*p)).collect();
            if pts.len() >= 2 {
                paint_ants(painter, &pts, time);
            }
        }
        ToolOverlay::Offset(d) => {
            if let Some(b) = content_bounds {
                paint_marquee(painter, view, b.translate(*d), time);
            }
        }
        ToolOverlay::Transform(b) => paint_transform_box(painter, view, b),
    }
}

fn paint_transform_box(painter: &Painter, view: &CanvasView, b: &TransformBox) {
    let r = view.screen_rect_from_canvas(b.rect);
    let (sin, cos) = b.rotation_deg.to_radians().sin_cos();
    let c = r.center();
    let rot = |p: Pos2| {
        let d = p - c;
        c + vec2(d.x * cos - d.y * sin, d.x * sin + d.y * cos)
    };
    let corners = [r.left_top(), r.right_top(), r.right_bottom(), r.left_bottom()].map(rot);
    let mut pts = corners.to_vec();
    pts.push(corners[0]);
    painter.add(Shape::line(pts, Stroke::new(1.5, Color32::from_rgb(80, 160, 255))));
    for p in corners {
        painter.rect_filled(Rect::from_center_size(p, vec2(8.0, 8.0)), 1.0, Color32::WHITE);
        painter.rect_stroke(
            Rect::from_center_size(p, vec2(8.0, 8.0)),
            1.0,
            Stroke::new(1.0, Color32::BLACK),
            egui::StrokeKind::Inside,
        );
    }
}

/// The brush outline cursor: a circle of the brush's real size on screen.
pub fn paint_brush_cursor(
    painter: &Painter,
    view: &CanvasView,
    canvas_pos: Pos2,
    diameter_px: f32,
) {
    let centre = view.screen_from_canvas(canvas_pos);
    let radius = (diameter_px * 0.5 * view.zoom).max(1.5);
    painter.circle_stroke(centre, radius + 1.0, Stroke::new(1.0, Color32::BLACK));
    painter.circle_stroke(centre, radius, Stroke::new(1.0, Color32::WHITE));
    if radius > 6.0 {
        painter.line_segment(
            [centre - vec2(2.0, 0.0), centre + vec2(2.0, 0.0)],
            Stroke::new(1.0, Color32::WHITE),
        );
        painter.line_segment(
            [centre - vec2(0.0, 2.0), centre + vec2(0.0, 2.0)],
            Stroke::new(1.0, Color32::WHITE),
        );
    }
}

/// A thin frame around the document.
pub fn paint_canvas_border(painter: &Painter, view: &CanvasView, doc_size: [u32; 2]) {
    let r = view.screen_rect_from_canvas(Rect::from_min_size(
        pos2(0.0, 0.0),
        vec2(doc_size[0] as f32, doc_size[1] as f32),
    ));
    painter.rect_stroke(
        r,
        0.0,
        Stroke::new(1.0, Color32::from_gray(20)),
        egui::StrokeKind::Outside,
    );
}
