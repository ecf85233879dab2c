//! Tools as small state machines, independent of widgets.
//!
//! The canvas widget turns pointer input into [`PointerEvent`]s in canvas pixels; a
//! [`ToolMachine`] turns those into [`ToolAction`]s, which the app applies to the document. One
//! gesture yields one begin..end bracket (strokes) or one action on release (fill, selections,
//! move, crop), so the app can make each gesture one undo step.

use egui::{Pos2, Rect, Vec2, pos2, vec2};
use serde::{Deserialize, Serialize};

/// Every tool of the left strip.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Tool {
    Brush,
    Eraser,
    Fill,
    Eyedropper,
    RectSelect,
    LassoSelect,
    Move,
    Transform,
    Crop,
    MaskBrush,
    MaskEraser,
}

impl Tool {
    pub const ALL: [Tool; 11] = [
        Tool::Brush,
        Tool::Eraser,
        Tool::Fill,
        Tool::Eyedropper,
        Tool::RectSelect,
        Tool::LassoSelect,
        Tool::Move,
        Tool::Transform,
        Tool::Crop,
        Tool::MaskBrush,
        Tool::MaskEraser,
    ];

    /// The accessible name, also the tooltip's first words.
    pub fn label(self) -> &'static str {
        match self {
            Tool::Brush => "Brush",
            Tool::Eraser => "Eraser",
            Tool::Fill => "Fill",
            Tool::Eyedropper => "Eyedropper",
            Tool::RectSelect => "Rectangle select",
            Tool::LassoSelect => "Lasso select",
            Tool::Move => "Move",
            Tool::Transform => "Transform",
            Tool::Crop => "Crop",
            Tool::MaskBrush => "Mask brush",
            Tool::MaskEraser => "Mask eraser",
        }
    }

    /// A short caption for the tool strip button (plain text: every font has it).
    pub fn glyph(self) -> &'static str {
        match self {
            Tool::Brush => "Brush",
            Tool::Eraser => "Erase",
            Tool::Fill => "Fill",
            Tool::Eyedropper => "Pick",
            Tool::RectSelect => "Rect",
            Tool::LassoSelect => "Lasso",
            Tool::Move => "Move",
            Tool::Transform => "Xform",
            Tool::Crop => "Crop",
            Tool::MaskBrush => "Mask",
            Tool::MaskEraser => "Unmask",
        }
    }

    /// Krita-like single-key shortcut (M cycles rectangle/lasso in the app).
    pub fn shortcut(self) -> Option<egui::Key> {
        use egui::Key;
        match self {
            Tool::Brush => Some(Key::B),
            Tool::Eraser => Some(Key::E),
            Tool::Fill => Some(Key::G),
            Tool::Eyedropper => Some(Key::I),
            Tool::RectSelect => Some(Key::M),
            Tool::Move => Some(Key::V),
            Tool::Transform => Some(Key::T),
            Tool::Crop => Some(Key::C),
            Tool::MaskBrush => Some(Key::K),
            Tool::LassoSelect | Tool::MaskEraser => None,
        }
    }

    /// Tools that paint with a round brush (and show the brush outline cursor).
    pub fn stroke_kind(self) -> Option<StrokeKind> {
        match self {
            Tool::Brush => Some(StrokeKind::Paint),
            Tool::Eraser => Some(StrokeKind::Erase),
            Tool::MaskBrush => Some(StrokeKind::MaskPaint),
            Tool::MaskEraser => Some(StrokeKind::MaskErase),
            _ => None,
        }
    }
}

/// What a stroke writes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StrokeKind {
    /// Paint colour onto the active layer.
    Paint,
    /// Remove alpha from the active layer.
    Erase,
    /// Add coverage to the inpaint mask (never the layers).
    MaskPaint,
    /// Remove coverage from the inpaint mask.
    MaskErase,
}

impl StrokeKind {
    pub fn targets_mask(self) -> bool {
        matches!(self, StrokeKind::MaskPaint | StrokeKind::MaskErase)
    }
}

/// Round-brush parameters; each stroke tool keeps its own.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BrushSettings {
    /// Diameter in canvas pixels.
    pub size_px: f32,
    /// 0 = soft edge, 1 = hard edge.
    pub hardness: f32,
    /// Maximum coverage of one stroke, 0..=1.
    pub opacity: f32,
    /// Coverage added per dab, 0..=1.
    pub flow: f32,
}

impl Default for BrushSettings {
    fn default() -> Self {
        Self { size_px: 24.0, hardness: 0.8, opacity: 1.0, flow: 1.0 }
    }
}

pub const MIN_BRUSH_PX: f32 = 1.0;
pub const MAX_BRUSH_PX: f32 = 2000.0;

impl BrushSettings {
    /// `[` / `]`: a size step proportional to the size, as in Krita.
    pub fn step_size(&mut self, bigger: bool) {
        let step = (self.size_px * 0.15).max(1.0);
        let s = if bigger { self.size_px + step } else { self.size_px - step };
        self.size_px = s.round().clamp(MIN_BRUSH_PX, MAX_BRUSH_PX);
    }
}

/// How a new selection combines with the existing one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SelectMode {
    Replace,
    Add,
    Subtract,
}

/// Every tool's settings; persisted between runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ToolSettings {
    pub tool: Tool,
    pub brush: BrushSettings,
    pub eraser: BrushSettings,
    pub mask_brush: BrushSettings,
    pub mask_eraser: BrushSettings,
    /// Foreground colour, straight-alpha sRGB.
    pub colour: [u8; 4],
    /// Most recent first.
    pub recent_colours: Vec<[u8; 4]>,
    /// Flood fill: maximum per-channel difference that still counts as the same colour.
    pub fill_tolerance: u8,
    /// Flood fill samples the visible composite instead of the active layer.
    pub fill_sample_merged: bool,
    pub select_feather_px: f32,
}

impl Default for ToolSettings {
    fn default() -> Self {
        Self {
            tool: Tool::Brush,
            brush: BrushSettings::default(),
            eraser: BrushSettings { size_px: 40.0, ..BrushSettings::default() },
            mask_brush: BrushSettings { size_px: 64.0, hardness: 1.0, ..BrushSettings::default() },
            mask_eraser: BrushSettings { size_px: 64.0, hardness: 1.0, ..BrushSettings::default() },
            colour: [20, 20, 20, 255],
            recent_colours: Vec::new(),
            fill_tolerance: 16,
            fill_sample_merged: false,
            select_feather_px: 0.0,
        }
    }
}

/// How many recent colours are kept.
pub const RECENT_COLOURS: usize = 12;

impl ToolSettings {
    /// The brush of a stroke tool.
    pub fn brush_for(&self, kind: StrokeKind) -> &BrushSettings {
        match kind {
            StrokeKind::Paint => &self.brush,
            StrokeKind::Erase => &self.eraser,
            StrokeKind::MaskPaint => &self.mask_brush,
            StrokeKind::MaskErase => &self.mask_eraser,
        }
    }

    pub fn brush_for_mut(&mut self, kind: StrokeKind) -> &mut BrushSettings {
        match kind {
            StrokeKind::Paint => &mut self.brush,
            StrokeKind::Erase => &mut self.eraser,
            StrokeKind::MaskPaint => &mut self.mask_brush,
            StrokeKind::MaskErase => &mut self.mask_eraser,
        }
    }

    /// The brush of the current tool, if it paints.
    pub fn current_brush_mut(&mut self) -> Option<&mut BrushSettings> {
        self.tool.stroke_kind().map(|k| self.brush_for_mut(k))
    }

    /// Remembers `colour` at the front of the recent colours (once).
    pub fn push_recent_colour(&mut self, colour: [u8; 4]) {
        self.recent_colours.retain(|c| *c != colour);
        self.recent_colours.insert(0, colour);
        self.recent_colours.truncate(RECENT_COLOURS);
    }
}

/// Keyboard modifiers the tools care about.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ToolModifiers {
    /// Shift: add to selection; keep aspect ratio while scaling.
    pub shift: bool,
    /// Alt (or Ctrl): subtract from selection.
    pub alt: bool,
}

/// Pointer input in canvas pixels (floating point: `(0.5, 0.5)` is the centre of pixel 0,0).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PointerEvent {
    Press { pos: Pos2, pressure: f32, modifiers: ToolModifiers },
    Move { pos: Pos2, pressure: f32 },
    Release { pos: Pos2 },
}

/// One sample of a stroke.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StrokePoint {
    pub pos: Pos2,
    pub pressure: f32,
}

/// A selection outline in canvas pixels.
#[derive(Clone, Debug, PartialEq)]
pub enum SelectionShape {
    Rect(raster::Rect),
    /// A closed polygon (lasso), canvas points.
    Polygon(Vec<Pos2>),
}

/// A committed transform of the active layer's content.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TransformBox {
    /// Where the content box lands, canvas pixels (before rotation).
    pub rect: Rect,
    pub rotation_deg: f32,
    pub flip_x: bool,
    pub flip_y: bool,
}

/// What the document should do.
#[derive(Clone, Debug, PartialEq)]
pub enum ToolAction {
    BeginStroke {
        kind: StrokeKind,
        brush: BrushSettings,
        colour: [u8; 4],
        first: StrokePoint,
    },
    StrokeTo(StrokePoint),
    EndStroke,
    /// Undo the stroke in progress (Escape, or the tool changed mid-stroke).
    CancelStroke,
    Fill {
        x: i32,
        y: i32,
        colour: [u8; 4],
        tolerance: u8,
        sample_merged: bool,
    },
    PickColour {
        x: i32,
        y: i32,
    },
    Select {
        shape: SelectionShape,
        mode: SelectMode,
        feather_px: f32,
    },
    /// Move the active layer (or the selection's contents) by whole pixels.
    Translate {
        dx: i32,
        dy: i32,
    },
    /// Replace the active layer's content in `from` by its transformed copy.
    Transform {
        from: raster::Rect,
        to: TransformBox,
    },
    Crop {
        rect: raster::Rect,
    },
}

/// What the canvas draws on top while a gesture is in progress.
#[derive(Clone, Debug, PartialEq)]
pub enum ToolOverlay {
    None,
    /// Marching-ants rectangle (rect select, crop), canvas pixels.
    Rect(Rect),
    /// Lasso outline in progress.
    Polyline(Vec<Pos2>),
    /// Move tool: the layer is shown shifted by this many pixels.
    Offset(Vec2),
    /// Transform tool: the box and its handles.
    Transform(TransformBox),
}

#[derive(Clone, Debug, PartialEq)]
enum Gesture {
    Idle,
    Stroking,
    Dragging { tool: Tool, start: Pos2, current: Pos2, mode: SelectMode },
    Lasso { points: Vec<Pos2>, mode: SelectMode },
    Transforming { from: raster::Rect, current: TransformBox, drag: Option<TransformDrag> },
}

/// Which part of the transform box a drag grabbed.
#[derive(Clone, Copy, Debug, PartialEq)]
enum TransformDrag {
    Body {
        start: Pos2,
        start_rect: Rect,
    },
    /// A corner: the opposite corner (`fixed`, canvas position, rotation applied) stays put and
    /// the box keeps its rotation.
    Corner {
        fixed: Pos2,
        keep_aspect: bool,
        aspect: f32,
    },
    /// The rotation handle, or anywhere outside the box (as in Krita): turns about the centre.
    /// Shift snaps to 15° steps.
    Rotate {
        centre: Pos2,
        start_angle_deg: f32,
        start_rotation_deg: f32,
        snap: bool,
    },
}

/// Corner handles are grabbed within this many screen pixels (the caller converts to canvas
/// pixels with the zoom, see [`ToolMachine::handle_grab_px`]).
pub const HANDLE_GRAB_PX: f32 = 8.0;

/// [`HANDLE_GRAB_PX`] in canvas pixels at `zoom` (screen points per canvas pixel).
pub fn grab_px_at_zoom(zoom: f32) -> f32 {
    HANDLE_GRAB_PX / zoom.max(1e-3)
}

/// The rotation handle sits this many grab distances above the top edge's middle.
const ROTATE_HANDLE_DISTANCE: f32 = 3.0;

/// Snapping step of a Shift+rotation.
pub const ROTATE_SNAP_DEG: f32 = 15.0;

/// `p` turned by `deg` (clockwise on screen, y down) about `centre`.
pub fn rotate_about(p: Pos2, centre: Pos2, deg: f32) -> Pos2 {
    let (sin, cos) = deg.to_radians().sin_cos();
    let d = p - centre;
    centre + vec2(d.x * cos - d.y * sin, d.x * sin + d.y * cos)
}

impl TransformBox {
    /// The four corners where they are drawn (rotation applied): top-left, top-right,
    /// bottom-right, bottom-left of the unrotated box.
    pub fn corners(&self) -> [Pos2; 4] {
        let r = self.rect;
        let c = r.center();
        [r.left_top(), r.right_top(), r.right_bottom(), r.left_bottom()]
            .map(|p| rotate_about(p, c, self.rotation_deg))
    }

    /// Where the rotation handle is drawn and grabbed, with `grab_px` the grab distance in
    /// canvas pixels (so the handle keeps its on-screen distance at every zoom).
    pub fn rotate_handle(&self, grab_px: f32) -> Pos2 {
        let r = self.rect;
        let top = pos2(r.center().x, r.min.y - ROTATE_HANDLE_DISTANCE * grab_px);
        rotate_about(top, r.center(), self.rotation_deg)
    }

    /// True if this box leaves content box `from` exactly where it is.
    pub fn is_identity_for(&self, from: raster::Rect) -> bool {
        self.rect == to_egui_rect(from) && self.rotation_deg == 0.0 && !self.flip_x && !self.flip_y
    }

    /// True if canvas point `p` lies inside the (rotated) box.
    pub fn contains(&self, p: Pos2) -> bool {
        self.rect.contains(rotate_about(p, self.rect.center(), -self.rotation_deg))
    }
}

/// The gesture state of the canvas tools.
#[derive(Clone, Debug)]
pub struct ToolMachine {
    gesture: Gesture,
    /// Canvas pixels within which a transform handle is grabbed (depends on zoom).
    pub handle_grab_px: f32,
}

impl Default for ToolMachine {
    fn default() -> Self {
        Self { gesture: Gesture::Idle, handle_grab_px: HANDLE_GRAB_PX }
    }
}

fn rect_from_points(a: Pos2, b: Pos2) -> Rect {
    Rect::from_two_pos(a, b)
}

/// Integer pixel rectangle covering the pixels whose centres lie inside `r`, but at least the
/// pixels under both corners (a click-drag of a few pixels selects those pixels).
pub fn pixel_rect(r: Rect) -> raster::Rect {
    let x0 = r.min.x.floor() as i32;
    let y0 = r.min.y.floor() as i32;
    let x1 = (r.max.x.ceil() as i32).max(x0 + 1);
    let y1 = (r.max.y.ceil() as i32).max(y0 + 1);
    raster::Rect::from_bounds(x0, y0, x1, y1)
}

fn to_egui_rect(r: raster::Rect) -> Rect {
    Rect::from_min_size(pos2(r.x as f32, r.y as f32), vec2(r.width as f32, r.height as f32))
}

impl ToolMachine {
    /// True while a gesture is in progress (a stroke, a drag, an uncommitted transform).
    pub fn is_busy(&self) -> bool {
        !matches!(self.gesture, Gesture::Idle)
    }

    /// True while a transform waits for commit or cancel.
    pub fn is_transforming(&self) -> bool {
        matches!(self.gesture, Gesture::Transforming { .. })
    }

    /// Handles one pointer event for `settings.tool`.
    pub fn handle(&mut self, settings: &ToolSettings, event: PointerEvent) -> Vec<ToolAction> {
        let tool = settings.tool;
        match (&mut self.gesture, event) {
            (Gesture::Idle, PointerEvent::Press { pos, pressure, modifiers }) => {
                self.press(settings, tool, pos, pressure, modifiers)
            }
            (Gesture::Stroking, PointerEvent::Move { pos, pressure }) => {
                vec![ToolAction::StrokeTo(StrokePoint { pos, pressure })]
            }
            (Gesture::Stroking, PointerEvent::Release { .. }) => {
                self.gesture = Gesture::Idle;
                vec![ToolAction::EndStroke]
            }
            (Gesture::Dragging { current, .. }, PointerEvent::Move { pos, .. }) => {
                *current = pos;
                Vec::new()
            }
            (Gesture::Dragging { .. }, PointerEvent::Release { pos }) => {
                let Gesture::Dragging { tool, start, mode, .. } =
                    std::mem::replace(&mut self.gesture, Gesture::Idle)
                else {
                    return Vec::new();
                };
                finish_drag(settings, tool, start, pos, mode)
            }
            (Gesture::Lasso { points, .. }, PointerEvent::Move { pos, .. }) => {
                if points.last().is_none_or(|p| p.distance(pos) >= 1.0) {
                    points.push(pos);
                }
                Vec::new()
            }
            (Gesture::Lasso { .. }, PointerEvent::Release { pos }) => {
                let Gesture::Lasso { mut points, mode } =
                    std::mem::replace(&mut self.gesture, Gesture::Idle)
                else {
                    return Vec::new();
                };
                points.push(pos);
                if points.len() < 3 {
                    return Vec::new();
                }
                vec![ToolAction::Select {
                    shape: SelectionShape::Polygon(points),
                    mode,
                    feather_px: settings.select_feather_px,
                }]
            }
            (
                Gesture::Transforming { current, drag, .. },
                PointerEvent::Press { pos, modifiers, .. },
            ) => {
                *drag = Some(grab_transform(current, pos, modifiers.shift, self.handle_grab_px));
                Vec::new()
            }
            (
                Gesture::Transforming { current, drag: Some(d), .. },
                PointerEvent::Move { pos, .. },
            ) => {
                drag_transform(*d, current, pos);
                Vec::new()
            }
            (Gesture::Transforming { drag, .. }, PointerEvent::Release { .. }) => {
                *drag = None;
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn press(
        &mut self,
        settings: &ToolSettings,
        tool: Tool,
        pos: Pos2,
        pressure: f32,
        modifiers: ToolModifiers,
    ) -> Vec<ToolAction> {
        let (x, y) = crate::view::pixel_at(pos);
        let mode = if modifiers.alt {
            SelectMode::Subtract
        } else if modifiers.shift {
            SelectMode::Add
        } else {
            SelectMode::Replace
        };
        if let Some(kind) = tool.stroke_kind() {
            self.gesture = Gesture::Stroking;
            return vec![ToolAction::BeginStroke {
                kind,
                brush: *settings.brush_for(kind),
                colour: settings.colour,
                first: StrokePoint { pos, pressure },
            }];
        }
        match tool {
            Tool::Fill => vec![ToolAction::Fill {
                x,
                y,
                colour: settings.colour,
                tolerance: settings.fill_tolerance,
                sample_merged: settings.fill_sample_merged,
            }],
            Tool::Eyedropper => vec![ToolAction::PickColour { x, y }],
            Tool::LassoSelect => {
                self.gesture = Gesture::Lasso { points: vec![pos], mode };
                Vec::new()
            }
            Tool::RectSelect | Tool::Move | Tool::Crop => {
                self.gesture = Gesture::Dragging { tool, start: pos, current: pos, mode };
                Vec::new()
            }
            // Transform starts with `begin_transform` (it needs the layer's bounds).
            _ => Vec::new(),
        }
    }

    /// Starts transforming content occupying `bounds` (the active layer's content bounds).
    pub fn begin_transform(&mut self, bounds: raster::Rect) {
        if bounds.is_empty() {
            return;
        }
        self.gesture = Gesture::Transforming {
            from: bounds,
            current: TransformBox {
                rect: to_egui_rect(bounds),
                rotation_deg: 0.0,
                flip_x: false,
                flip_y: false,
            },
            drag: None,
        };
    }

    /// The transform box being edited, for the options bar (rotation, flips).
    pub fn transform_box_mut(&mut self) -> Option<&mut TransformBox> {
        match &mut self.gesture {
            Gesture::Transforming { current, .. } => Some(current),
            _ => None,
        }
    }

    /// The transform waiting for commit: the content box it started from and where it goes now.
    pub fn pending_transform(&self) -> Option<(raster::Rect, TransformBox)> {
        match &self.gesture {
            Gesture::Transforming { from, current, .. } => Some((*from, *current)),
            _ => None,
        }
    }

    /// Enter: applies the pending transform.
    pub fn commit(&mut self) -> Vec<ToolAction> {
        match std::mem::replace(&mut self.gesture, Gesture::Idle) {
            Gesture::Transforming { from, current, .. } => {
                if current.is_identity_for(from) {
                    Vec::new()
                } else {
                    vec![ToolAction::Transform { from, to: current }]
                }
            }
            other => {
                self.gesture = other;
                Vec::new()
            }
        }
    }

    /// Escape, or the tool changed: drops the gesture (a stroke in progress is undone).
    pub fn cancel(&mut self) -> Vec<ToolAction> {
        match std::mem::replace(&mut self.gesture, Gesture::Idle) {
            Gesture::Stroking => vec![ToolAction::CancelStroke],
            _ => Vec::new(),
        }
    }

    /// What to draw over the canvas for the gesture in progress.
    pub fn overlay(&self) -> ToolOverlay {
        match &self.gesture {
            Gesture::Dragging { tool: Tool::Move, start, current, .. } => {
                ToolOverlay::Offset(whole_pixel_delta(*start, *current))
            }
            Gesture::Dragging { start, current, .. } => {
                ToolOverlay::Rect(to_egui_rect(pixel_rect(rect_from_points(*start, *current))))
            }
            Gesture::Lasso { points, .. } => ToolOverlay::Polyline(points.clone()),
            Gesture::Transforming { current, .. } => ToolOverlay::Transform(*current),
            Gesture::Idle | Gesture::Stroking => ToolOverlay::None,
        }
    }
}

fn whole_pixel_delta(a: Pos2, b: Pos2) -> Vec2 {
    let d = b - a;
    vec2(d.x.round(), d.y.round())
}

fn finish_drag(
    settings: &ToolSettings,
    tool: Tool,
    start: Pos2,
    end: Pos2,
    mode: SelectMode,
) -> Vec<ToolAction> {
    match tool {
        Tool::RectSelect => vec![ToolAction::Select {
            shape: SelectionShape::Rect(pixel_rect(rect_from_points(start, end))),
            mode,
            feather_px: settings.select_feather_px,
        }],
        Tool::Crop => {
            let r = pixel_rect(rect_from_points(start, end));
            // A click without a drag is not a crop.
            if start.distance(end) < 1.0 { Vec::new() } else { vec![ToolAction::Crop { rect: r }] }
        }
        Tool::Move => {
            let d = whole_pixel_delta(start, end);
            if d == Vec2::ZERO {
                Vec::new()
            } else {
                vec![ToolAction::Translate { dx: d.x as i32, dy: d.y as i32 }]
            }
        }
        _ => Vec::new(),
    }
}

fn angle_deg(v: Vec2) -> f32 {
    v.y.atan2(v.x).to_degrees()
}

/// Wraps an angle into -180..=180.
fn normalise_deg(deg: f32) -> f32 {
    let d = (deg + 180.0).rem_euclid(360.0) - 180.0;
    if d == -180.0 { 180.0 } else { d }
}

fn grab_transform(b: &TransformBox, pos: Pos2, shift: bool, grab_px: f32) -> TransformDrag {
    let rect = b.rect;
    let centre = rect.center();
    let rotate = TransformDrag::Rotate {
        centre,
        start_angle_deg: angle_deg(pos - centre),
        start_rotation_deg: b.rotation_deg,
        snap: shift,
    };
    if b.rotate_handle(grab_px).distance(pos) <= grab_px {
        return rotate;
    }
    let corners = b.corners();
    let aspect = if rect.height() > 0.0 { rect.width() / rect.height() } else { 1.0 };
    // Each corner with the one diagonally opposite, which stays put.
    let opposite = [corners[2], corners[3], corners[0], corners[1]];
    for (c, fixed) in corners.iter().zip(opposite) {
        if c.distance(pos) <= grab_px {
            return TransformDrag::Corner { fixed, keep_aspect: shift, aspect };
        }
    }
    if b.contains(pos) { TransformDrag::Body { start: pos, start_rect: rect } } else { rotate }
}

fn drag_transform(drag: TransformDrag, b: &mut TransformBox, pos: Pos2) {
    match drag {
        TransformDrag::Body { start, start_rect } => {
            b.rect = start_rect.translate(whole_pixel_delta(start, pos));
        }
        TransformDrag::Corner { fixed, keep_aspect, aspect } => {
            // Work in the box's own axes: unrotate the pointer's offset from the fixed corner.
            let local = rotate_about(pos, fixed, -b.rotation_deg) - fixed;
            let mut d = local;
            if keep_aspect && aspect > 0.0 {
                let w = d.x.abs().max(d.y.abs() * aspect);
                d = vec2(w.copysign(d.x), (w / aspect).copysign(d.y));
            }
            if b.rotation_deg == 0.0 {
                // Unrotated boxes stay on whole pixels.
                d = vec2(d.x.round(), d.y.round());
            }
            // Never collapse to nothing: at least one pixel each way.
            let size = vec2(d.x.abs(), d.y.abs()).max(Vec2::splat(1.0));
            let half = vec2(size.x.copysign(d.x), size.y.copysign(d.y)) * 0.5;
            let centre = rotate_about(fixed + half, fixed, b.rotation_deg);
            b.rect = Rect::from_center_size(centre, size);
        }
        TransformDrag::Rotate { centre, start_angle_deg, start_rotation_deg, snap } => {
            let mut deg = start_rotation_deg + angle_deg(pos - centre) - start_angle_deg;
            if snap {
                deg = (deg / ROTATE_SNAP_DEG).round() * ROTATE_SNAP_DEG;
            }
            b.rotation_deg = normalise_deg(deg);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(tool: Tool) -> ToolSettings {
        ToolSettings { tool, ..ToolSettings::default() }
    }

    fn press(x: f32, y: f32) -> PointerEvent {
        PointerEvent::Press { pos: pos2(x, y), pressure: 1.0, modifiers: ToolModifiers::default() }
    }

    fn press_shift(x: f32, y: f32) -> PointerEvent {
        PointerEvent::Press {
            pos: pos2(x, y),
            pressure: 1.0,
            modifiers: ToolModifiers { shift: true, alt: false },
        }
    }

    fn mv(x: f32, y: f32) -> PointerEvent {
        PointerEvent::Move { pos: pos2(x, y), pressure: 1.0 }
    }

    fn release(x: f32, y: f32) -> PointerEvent {
        PointerEvent::Release { pos: pos2(x, y) }
    }

    #[test]
    fn stroke_is_one_bracket() {
        let s = settings(Tool::Brush);
        let mut m = ToolMachine::default();
        let a = m.handle(&s, press(1.0, 2.0));
        assert!(matches!(a.as_slice(), [ToolAction::BeginStroke { kind: StrokeKind::Paint, .. }]));
        assert!(m.is_busy());
        assert_eq!(
            m.handle(&s, mv(3.0, 4.0)),
            vec![ToolAction::StrokeTo(StrokePoint { pos: pos2(3.0, 4.0), pressure: 1.0 })]
        );
        assert_eq!(m.handle(&s, release(3.0, 4.0)), vec![ToolAction::EndStroke]);
        assert!(!m.is_busy());
        // A move without a press does nothing.
        assert!(m.handle(&s, mv(5.0, 5.0)).is_empty());
    }

    #[test]
    fn mask_tools_target_the_mask() {
        for (tool, kind) in
            [(Tool::MaskBrush, StrokeKind::MaskPaint), (Tool::MaskEraser, StrokeKind::MaskErase)]
        {
            let mut m = ToolMachine::default();
            let a = m.handle(&settings(tool), press(0.0, 0.0));
            let [ToolAction::BeginStroke { kind: k, brush, .. }] = a.as_slice() else {
                panic!("{a:?}")
            };
            assert_eq!(*k, kind);
            assert!(k.targets_mask());
            assert_eq!(brush.size_px, 64.0);
        }
    }

    #[test]
    fn cancel_mid_stroke_cancels() {
        let s = settings(Tool::Eraser);
        let mut m = ToolMachine::default();
        m.handle(&s, press(1.0, 1.0));
        assert_eq!(m.cancel(), vec![ToolAction::CancelStroke]);
        assert!(m.handle(&s, release(1.0, 1.0)).is_empty());
    }

    #[test]
    fn fill_and_eyedropper_act_on_press_pixel() {
        let mut m = ToolMachine::default();
        let a = m.handle(&settings(Tool::Fill), press(10.7, -0.2));
        assert!(matches!(a.as_slice(), [ToolAction::Fill { x: 10, y: -1, tolerance: 16, .. }]));
        let a = m.handle(&settings(Tool::Eyedropper), press(3.2, 4.9));
        assert_eq!(a, vec![ToolAction::PickColour { x: 3, y: 4 }]);
        assert!(!m.is_busy());
    }

    #[test]
    fn rect_select_modes_and_pixel_rect() {
        let s = settings(Tool::RectSelect);
        let mut m = ToolMachine::default();
        m.handle(
            &s,
            PointerEvent::Press {
                pos: pos2(10.2, 5.5),
                pressure: 1.0,
                modifiers: ToolModifiers { shift: true, alt: false },
            },
        );
        m.handle(&s, mv(4.5, 20.0));
        assert_eq!(
            m.overlay(),
            ToolOverlay::Rect(Rect::from_min_max(pos2(4.0, 5.0), pos2(11.0, 20.0)))
        );
        let a = m.handle(&s, release(4.5, 20.0));
        assert_eq!(
            a,
            vec![ToolAction::Select {
                shape: SelectionShape::Rect(raster::Rect::new(4, 5, 7, 15)),
                mode: SelectMode::Add,
                feather_px: 0.0
            }]
        );
        m.handle(
            &s,
            PointerEvent::Press {
                pos: pos2(1.0, 1.0),
                pressure: 1.0,
                modifiers: ToolModifiers { shift: true, alt: true },
            },
        );
        let a = m.handle(&s, release(1.0, 1.0));
        assert!(
            matches!(a.as_slice(), [ToolAction::Select { mode: SelectMode::Subtract, shape: SelectionShape::Rect(r), .. }] if *r == raster::Rect::new(1, 1, 1, 1))
        );
    }

    #[test]
    fn lasso_needs_three_points() {
        let s = settings(Tool::LassoSelect);
        let mut m = ToolMachine::default();
        m.handle(&s, press(0.0, 0.0));
        m.handle(&s, mv(0.2, 0.0)); // closer than a pixel: dropped
        m.handle(&s, mv(10.0, 0.0));
        let a = m.handle(&s, release(10.0, 10.0));
        let [ToolAction::Select { shape: SelectionShape::Polygon(p), .. }] = a.as_slice() else {
            panic!("{a:?}")
        };
        assert_eq!(p, &vec![pos2(0.0, 0.0), pos2(10.0, 0.0), pos2(10.0, 10.0)]);
        m.handle(&s, press(0.0, 0.0));
        assert!(m.handle(&s, release(0.0, 0.0)).is_empty());
    }

    #[test]
    fn move_translates_by_whole_pixels_on_release() {
        let s = settings(Tool::Move);
        let mut m = ToolMachine::default();
        m.handle(&s, press(5.0, 5.0));
        m.handle(&s, mv(8.4, 1.6));
        assert_eq!(m.overlay(), ToolOverlay::Offset(vec2(3.0, -3.0)));
        assert_eq!(m.handle(&s, release(8.4, 1.6)), vec![ToolAction::Translate { dx: 3, dy: -3 }]);
        m.handle(&s, press(5.0, 5.0));
        assert!(m.handle(&s, release(5.2, 5.0)).is_empty());
    }

    #[test]
    fn crop_needs_a_drag() {
        let s = settings(Tool::Crop);
        let mut m = ToolMachine::default();
        m.handle(&s, press(2.0, 3.0));
        assert!(m.handle(&s, release(2.0, 3.0)).is_empty());
        m.handle(&s, press(2.0, 3.0));
        assert_eq!(
            m.handle(&s, release(12.0, 8.0)),
            vec![ToolAction::Crop { rect: raster::Rect::new(2, 3, 10, 5) }]
        );
    }

    #[test]
    fn transform_scales_from_corner_and_commits() {
        let s = settings(Tool::Transform);
        let mut m = ToolMachine::default();
        m.begin_transform(raster::Rect::new(0, 0, 100, 50));
        assert!(m.is_transforming());
        // Drag the bottom-right corner with shift: aspect kept.
        m.handle(&s, press_shift(99.0, 49.0));
        m.handle(&s, mv(200.0, 60.0));
        m.handle(&s, release(200.0, 60.0));
        let ToolOverlay::Transform(b) = m.overlay() else { panic!() };
        assert_eq!(b.rect, Rect::from_min_max(pos2(0.0, 0.0), pos2(200.0, 100.0)));
        // Drag the body: moves.
        m.handle(&s, press(50.0, 50.0));
        m.handle(&s, mv(60.0, 45.0));
        m.handle(&s, release(60.0, 45.0));
        m.transform_box_mut().unwrap().flip_x = true;
        let a = m.commit();
        assert_eq!(
            a,
            vec![ToolAction::Transform {
                from: raster::Rect::new(0, 0, 100, 50),
                to: TransformBox {
                    rect: Rect::from_min_max(pos2(10.0, -5.0), pos2(210.0, 95.0)),
                    rotation_deg: 0.0,
                    flip_x: true,
                    flip_y: false
                }
            }]
        );
        assert!(!m.is_busy());
        // An unchanged transform commits nothing.
        m.begin_transform(raster::Rect::new(0, 0, 4, 4));
        assert!(m.commit().is_empty());
    }

    #[test]
    fn transform_rotates_with_the_handle_and_outside_the_box() {
        let s = settings(Tool::Transform);
        let mut m = ToolMachine::default();
        m.begin_transform(raster::Rect::new(0, 0, 100, 50));
        let centre = pos2(50.0, 25.0);
        // The handle is above the top edge's middle; dragging it to the right of the centre
        // turns the box by a quarter turn (clockwise on screen).
        let grab_px = m.handle_grab_px;
        let handle = m.transform_box_mut().unwrap().rotate_handle(grab_px);
        assert_eq!(handle, pos2(50.0, -3.0 * HANDLE_GRAB_PX));
        m.handle(&s, press(handle.x, handle.y));
        m.handle(&s, mv(centre.x + 80.0, centre.y));
        m.handle(&s, release(centre.x + 80.0, centre.y));
        let b = *m.transform_box_mut().unwrap();
        assert!((b.rotation_deg - 90.0).abs() < 1e-3, "{}", b.rotation_deg);
        assert_eq!(b.rect, Rect::from_min_max(pos2(0.0, 0.0), pos2(100.0, 50.0)));
        // The drawn corners turn with it, and the handle follows.
        let c = b.corners();
        assert!(c[0].distance(pos2(75.0, -25.0)) < 1e-3, "{:?}", c[0]);
        assert!(b.rotate_handle(HANDLE_GRAB_PX).distance(pos2(50.0 + 49.0, 25.0)) < 1e-3);

        // Outside the box with Shift: rotation relative to the press, snapped to 15°.
        m.handle(&s, press_shift(200.0, 25.0));
        // About 20° more (atan2(55, 150)): snaps to 105°.
        m.handle(&s, mv(200.0, 80.0));
        m.handle(&s, release(200.0, 80.0));
        assert_eq!(m.transform_box_mut().unwrap().rotation_deg, 105.0);

        // Wrapping stays within -180..=180.
        assert_eq!(normalise_deg(190.0), -170.0);
        assert_eq!(normalise_deg(-180.0), 180.0);
    }

    #[test]
    fn rotated_corner_drag_keeps_the_opposite_corner_in_place() {
        let s = settings(Tool::Transform);
        let mut m = ToolMachine::default();
        m.begin_transform(raster::Rect::new(0, 0, 100, 50));
        m.transform_box_mut().unwrap().rotation_deg = 30.0;
        let before = m.transform_box_mut().unwrap().corners();
        // Grab the drawn bottom-right corner and pull it outward along the box's diagonal.
        let grab = before[2];
        let target = grab + (before[2] - before[0]) * 0.5;
        m.handle(&s, press(grab.x, grab.y));
        m.handle(&s, mv(target.x, target.y));
        m.handle(&s, release(target.x, target.y));
        let b = *m.transform_box_mut().unwrap();
        let after = b.corners();
        assert!(after[0].distance(before[0]) < 1e-3, "{:?} vs {:?}", after[0], before[0]);
        assert!(after[2].distance(target) < 1e-3);
        assert!((b.rect.width() - 150.0).abs() < 1e-3 && (b.rect.height() - 75.0).abs() < 1e-3);
        assert_eq!(b.rotation_deg, 30.0);
        assert!(b.contains(b.rect.center()) && !b.contains(pos2(-40.0, 60.0)));
    }

    #[test]
    fn brush_size_steps_and_recent_colours() {
        let mut b = BrushSettings { size_px: 10.0, ..BrushSettings::default() };
        b.step_size(true);
        assert_eq!(b.size_px, 12.0);
        b.size_px = 1.0;
        b.step_size(false);
        assert_eq!(b.size_px, 1.0);
        let mut s = ToolSettings::default();
        for i in 0..20u8 {
            s.push_recent_colour([i, 0, 0, 255]);
        }
        s.push_recent_colour([15, 0, 0, 255]);
        assert_eq!(s.recent_colours.len(), RECENT_COLOURS);
        assert_eq!(s.recent_colours[0], [15, 0, 0, 255]);
        assert_eq!(s.recent_colours.iter().filter(|c| c[0] == 15).count(), 1);
    }
}
