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
    /// Pen pressure of the touch/pen contact driving the pointer, if the device reports force.
    contact_force: Option<f32>,
}

/// Stroke pressure from a contact's force: the device's normalised force, or full pressure for a
/// mouse (and for pens whose platform backend reports no force, such as winit on X11).
fn pressure_from_force(force: Option<f32>) -> f32 {
    force.filter(|f| f.is_finite()).map_or(1.0, |f| f.clamp(0.0, 1.0))
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
            // Touch screens and pens arrive as a `Touch` (with force when the device reports it)
            // followed by the emulated pointer events, so the force applies to those.
            egui::Event::Touch { phase, force, .. } => {
                state.contact_force = match phase {
                    egui::TouchPhase::Start | egui::TouchPhase::Move => force,
                    // A release carries no pressure; the next mouse press must not inherit it.
                    egui::TouchPhase::End | egui::TouchPhase::Cancel => None,
                };
            }
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
                                pressure: pressure_from_force(state.contact_force),
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
                        pressure: pressure_from_force(state.contact_force),
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

/// Marching ants along a selection's outline (canvas pixel-corner segments); segments off screen
/// are skipped, and the dash phase follows canvas position so neighbouring runs line up.
pub fn paint_outline(
    painter: &Painter,
    view: &CanvasView,
    segments: &[raster::mask::OutlineSegment],
    time: f64,
) {
    let clip = painter.clip_rect().expand(2.0);
    let crawl = (time * 8.0).rem_euclid(8.0) as f32;
    let black = Stroke::new(1.0, Color32::BLACK);
    let white = Stroke::new(1.0, Color32::WHITE);
    let mut shapes = Vec::new();
    for seg in segments {
        let a = view.screen_from_canvas(pos2(seg.start[0] as f32, seg.start[1] as f32));
        let b = view.screen_from_canvas(pos2(seg.end[0] as f32, seg.end[1] as f32));
        if !clip.intersects(Rect::from_two_pos(a, b)) {
            continue;
        }
        shapes.push(Shape::line_segment([a, b], black));
        let phase = (a.x + a.y + crawl).rem_euclid(8.0);
        Shape::dashed_line_many_with_offset(&[a, b], white, &[4.0], &[4.0], phase, &mut shapes);
    }
    painter.extend(shapes);
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
    let blue = Stroke::new(1.5, Color32::from_rgb(80, 160, 255));
    let corners = b.corners().map(|p| view.screen_from_canvas(p));
    let mut outline = corners.to_vec();
    outline.push(corners[0]);
    painter.add(Shape::line(outline, blue));
    // The rotation knob on a stalk from the top edge's middle.
    let grab_px = crate::tools::grab_px_at_zoom(view.zoom);
    let knob = view.screen_from_canvas(b.rotate_handle(grab_px));
    let top_mid = corners[0] + (corners[1] - corners[0]) * 0.5;
    painter.line_segment([top_mid, knob], blue);
    painter.circle_filled(knob, 5.0, Color32::WHITE);
    painter.circle_stroke(knob, 5.0, Stroke::new(1.0, Color32::BLACK));
    for p in corners {
        let handle = Rect::from_center_size(p, vec2(8.0, 8.0));
        painter.rect_filled(handle, 1.0, Color32::WHITE);
        painter.rect_stroke(
            handle,
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
