//! Every edit as a value: the UI's tools build commands, [`Document::apply`] runs each inside a
//! transaction (its own, or the one opened with [`Document::begin`]).

use raster::{Gray8, Image, Rect, Rgba8};

use crate::brush::{Brush, PaintTarget, StrokePoint};
use crate::change::Change;
use crate::error::DocError;
use crate::{Document, GenerationRecord, LayerId, LayerProps};

/// A selection shape in canvas pixels.
#[derive(Clone, Debug, PartialEq)]
pub enum SelectShape {
    Rect(Rect),
    /// The ellipse inscribed in the rect.
    Ellipse(Rect),
    /// A closed lasso polygon (even-odd fill), vertices in canvas pixels.
    Polygon(Vec<(f32, f32)>),
}

/// How a new shape combines with the existing selection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SelectOp {
    #[default]
    Replace,
    Add,
    Subtract,
    Intersect,
}

/// Which pixels a flood fill compares against the seed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FillSource {
    #[default]
    ActiveLayer,
    /// The visible composite ("sample merged").
    Composite,
}

/// Where existing content stays when the canvas is resized.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Anchor {
    TopLeft,
    Top,
    TopRight,
    Left,
    #[default]
    Center,
    Right,
    BottomLeft,
    Bottom,
    BottomRight,
}

impl Anchor {
    /// Offset that content gets when the canvas grows by `(dw, dh)` (negative when it shrinks).
    pub(crate) fn shift(self, dw: i64, dh: i64) -> (i64, i64) {
        let (fx, fy) = match self {
            Anchor::TopLeft => (0, 0),
            Anchor::Top => (1, 0),
            Anchor::TopRight => (2, 0),
            Anchor::Left => (0, 1),
            Anchor::Center => (1, 1),
            Anchor::Right => (2, 1),
            Anchor::BottomLeft => (0, 2),
            Anchor::Bottom => (1, 2),
            Anchor::BottomRight => (2, 2),
        };
        (dw * fx / 2, dh * fy / 2)
    }
}

/// A 2-D affine map on canvas pixel coordinates: `x' = a·x + b·y + c`, `y' = d·x + e·y + f`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Affine {
    pub a: f64,
    pub b: f64,
    pub c: f64,
    pub d: f64,
    pub e: f64,
    pub f: f64,
}

impl Affine {
    pub const IDENTITY: Affine = Affine { a: 1.0, b: 0.0, c: 0.0, d: 0.0, e: 1.0, f: 0.0 };

    /// Scales by `(sx, sy)` about the point `(cx, cy)`.
    pub fn scale_about(sx: f64, sy: f64, cx: f64, cy: f64) -> Self {
        Affine { a: sx, b: 0.0, c: cx - sx * cx, d: 0.0, e: sy, f: cy - sy * cy }
    }

    /// Rotates by `degrees` clockwise on screen (y down) about `(cx, cy)`.
    pub fn rotate_about(degrees: f64, cx: f64, cy: f64) -> Self {
        let (s, c) = degrees.to_radians().sin_cos();
        Affine { a: c, b: -s, c: cx - c * cx + s * cy, d: s, e: c, f: cy - s * cx - c * cy }
    }

    /// Mirrors left-right about the vertical line `x = cx`.
    pub fn flip_horizontal_about(cx: f64) -> Self {
        Affine { a: -1.0, b: 0.0, c: 2.0 * cx, d: 0.0, e: 1.0, f: 0.0 }
    }

    /// Mirrors top-bottom about the horizontal line `y = cy`.
    pub fn flip_vertical_about(cy: f64) -> Self {
        Affine { a: 1.0, b: 0.0, c: 0.0, d: 0.0, e: -1.0, f: 2.0 * cy }
    }

    /// `self` after `first`: `(self ∘ first)(p) = self(first(p))`.
    pub fn then_after(self, first: Affine) -> Affine {
        let s = self;
        Affine {
            a: s.a * first.a + s.b * first.d,
            b: s.a * first.b + s.b * first.e,
            c: s.a * first.c + s.b * first.f + s.c,
            d: s.d * first.a + s.e * first.d,
            e: s.d * first.b + s.e * first.e,
            f: s.d * first.c + s.e * first.f + s.f,
        }
    }

    pub fn apply(&self, x: f64, y: f64) -> (f64, f64) {
        (self.a * x + self.b * y + self.c, self.d * x + self.e * y + self.f)
    }

    /// The inverse map, `None` when degenerate.
    pub fn inverse(&self) -> Option<Affine> {
        let det = self.a * self.e - self.b * self.d;
        if !det.is_finite() || det.abs() < 1e-9 {
            return None;
        }
        let (a, b, d, e) = (self.e / det, -self.b / det, -self.d / det, self.a / det);
        Some(Affine { a, b, c: -(a * self.c + b * self.f), d, e, f: -(d * self.c + e * self.f) })
    }
}

/// One undoable edit.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// A single dab (a one-point stroke). Strokes use [`Document::begin_stroke`].
    Dab {
        target: PaintTarget,
        brush: Brush,
        at: StrokePoint,
    },
    /// Contiguous (4-connected) fill of the active layer from a seed pixel; a pixel joins when
    /// every channel differs from the seed by at most `tolerance`. Clipped by the selection.
    FloodFill {
        x: i32,
        y: i32,
        color: Rgba8,
        tolerance: u8,
        source: FillSource,
    },
    /// Paints `color` over the selection (or the whole layer), weighted by coverage.
    FillSelection {
        color: Rgba8,
    },
    /// Erases the active layer inside the selection (or entirely), weighted by coverage.
    ClearSelection,
    Select {
        shape: SelectShape,
        op: SelectOp,
        feather_px: f32,
    },
    SelectAll,
    /// Removes the selection (everything becomes editable).
    SelectNone,
    /// No selection inverts to an empty selection.
    InvertSelection,
    /// Pastes an image as a new layer above the active one, its top-left at `(x, y)`.
    Paste {
        image: Image<Rgba8>,
        x: i32,
        y: i32,
    },
    /// Moves a layer by `(dx, dy)` canvas pixels.
    OffsetLayer {
        id: LayerId,
        dx: i32,
        dy: i32,
    },
    /// Resamples a layer through an affine map (bilinear on premultiplied colour).
    TransformLayer {
        id: LayerId,
        transform: Affine,
    },
    /// On the active layer, inside the selection if any. `hue_deg` −180..180, `saturation` and
    /// `lightness` −1..1 (GIMP's semantics).
    HueSaturation {
        hue_deg: f32,
        saturation: f32,
        lightness: f32,
    },
    /// On the active layer, inside the selection if any; both −1..1 (GIMP's formula).
    BrightnessContrast {
        brightness: f32,
        contrast: f32,
    },
    /// Changes the canvas size; layers keep their pixels and move by the anchor's share.
    ResizeCanvas {
        width: u32,
        height: u32,
        anchor: Anchor,
    },
    /// Crops the canvas to `rect`; layer pixels outside it are discarded.
    Crop {
        rect: Rect,
    },
    /// A blank canvas-sized layer at `index` (default: above the active layer); becomes active.
    AddLayer {
        name: String,
        index: Option<usize>,
    },
    DeleteLayer {
        id: LayerId,
    },
    DuplicateLayer {
        id: LayerId,
    },
    /// Moves a layer to stack position `index` (0 = bottom).
    MoveLayerTo {
        id: LayerId,
        index: usize,
    },
    /// Merges a layer into the one below it (the result keeps the lower layer's id and mode).
    MergeDown {
        id: LayerId,
    },
    /// Replaces all layers by one layer holding the visible composite.
    Flatten,
    RenameLayer {
        id: LayerId,
        name: String,
    },
    SetLayerProps {
        id: LayerId,
        props: LayerProps,
    },
    /// Adds a layer holding `image` at canvas `(x, y)` (generation results: pixels, alpha and
    /// record) at `index` (default: above the active layer); becomes active.
    AddLayerFromImage {
        image: Image<Rgba8>,
        x: i32,
        y: i32,
        name: String,
        record: Option<GenerationRecord>,
        index: Option<usize>,
    },
    MaskClear,
    /// Sets the whole mask to 255.
    MaskFill,
    MaskInvert,
    /// Mask = selection coverage (all 255 without a selection).
    MaskFromSelection,
    /// Mask = the layer's alpha, placed at its offset.
    MaskFromLayerAlpha {
        id: LayerId,
    },
    /// Mask = a canvas-sized grey image (255 = regenerate).
    MaskLoad {
        image: Image<Gray8>,
    },
}

impl Command {
    /// The menu label ("Undo Fill").
    pub fn label(&self) -> &'static str {
        match self {
            Command::Dab { target: PaintTarget::Mask, .. } => "Mask stroke",
            Command::Dab { brush, .. } if brush.eraser => "Eraser stroke",
            Command::Dab { .. } => "Brush stroke",
            Command::FloodFill { .. } => "Fill",
            Command::FillSelection { .. } => "Fill selection",
            Command::ClearSelection => "Clear",
            Command::Select { .. } => "Select",
            Command::SelectAll => "Select all",
            Command::SelectNone => "Deselect",
            Command::InvertSelection => "Invert selection",
            Command::Paste { .. } => "Paste",
            Command::OffsetLayer { .. } => "Move layer",
            Command::TransformLayer { .. } => "Transform layer",
            Command::HueSaturation { .. } => "Hue/Saturation",
            Command::BrightnessContrast { .. } => "Brightness/Contrast",
            Command::ResizeCanvas { .. } => "Resize canvas",
            Command::Crop { .. } => "Crop",
            Command::AddLayer { .. } => "Add layer",
            Command::DeleteLayer { .. } => "Delete layer",
            Command::DuplicateLayer { .. } => "Duplicate layer",
            Command::MoveLayerTo { .. } => "Reorder layers",
            Command::MergeDown { .. } => "Merge down",
            Command::Flatten => "Flatten image",
            Command::RenameLayer { .. } => "Rename layer",
            Command::SetLayerProps { .. } => "Layer properties",
            Command::AddLayerFromImage { .. } => "Add layer from image",
            Command::MaskClear => "Clear mask",
            Command::MaskFill => "Fill mask",
            Command::MaskInvert => "Invert mask",
            Command::MaskFromSelection => "Mask from selection",
            Command::MaskFromLayerAlpha { .. } => "Mask from layer alpha",
            Command::MaskLoad { .. } => "Load mask",
        }
    }
}

impl Document {
    /// Applies `cmd` as one undo step, or as part of the transaction opened with
    /// [`Document::begin`]. On error the document is unchanged.
    pub fn apply(&mut self, cmd: Command) -> Result<Change, DocError> {
        if self.stroke.is_some() {
            return Err(DocError::TransactionOpen("stroke".into()));
        }
        if let Command::Dab { target, brush, at } = cmd {
            return self.paint_stroke(target, brush, &[at]);
        }
        let label = cmd.label();
        self.transact(label, |ctx| crate::ops::execute(ctx, cmd)).map(|(_, c)| c)
    }
}
