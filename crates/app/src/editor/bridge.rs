//! The document as the editor sees it: tool and panel actions become `doc` commands, files go
//! through `ora` and `image`. Every document call of the editor is in this file.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use doc::{
    Brush, Command, Document, DocumentParts, FillSource, Layer, LayerId, LayerProps, PaintTarget,
    SelectOp, SelectShape, StrokePoint, TrayCandidate,
};
use raster::{Gray8, Image, Rect, Rgba8, TiledImage};
use ui::layers::LayerAction;
use ui::tools::{SelectMode, SelectionShape, StrokeKind, ToolAction, TransformBox};

pub use doc::Change;

/// Largest side the New dialog offers (the document's own limit).
pub const MAX_SIDE_PX: u32 = doc::MAX_CANVAS_SIDE;

/// Why an editor operation failed; shown as a notification, the document stays as it was.
#[derive(Debug, thiserror::Error)]
pub enum EditorError {
    #[error(transparent)]
    Doc(#[from] doc::DocError),
    #[error("OpenRaster: {0}")]
    Ora(String),
    #[error("image file: {0}")]
    Image(#[from] image::ImageError),
    #[error("{0}")]
    Io(String),
    #[error("unsupported file type {0:?} (use .ora, .png, .jpg or .webp)")]
    UnsupportedType(String),
    #[error("the image is {width}×{height}, larger than {max} px a side")]
    TooLarge { width: u32, height: u32, max: u32 },
    /// Another edit while a live preview's transaction is open would be swept into it (and
    /// rolled back with the next preview frame), so it is refused instead.
    #[error("finish the {0} first: Enter applies it, Escape cancels")]
    PreviewOpen(&'static str),
}

/// Short alias used across the editor.
pub type DocError = EditorError;

/// What the layers panel shows of one layer.
#[derive(Clone, Debug)]
pub struct LayerInfo {
    pub id: u64,
    /// Changes whenever the layer's pixels may have changed (thumbnail cache key).
    pub revision: u64,
    pub name: String,
    pub visible: bool,
    pub opacity: f32,
    pub blend: raster::BlendMode,
    pub alpha_locked: bool,
    pub record: Option<String>,
}

/// The document plus the editor's bookkeeping around it.
pub struct DocBridge {
    doc: Document,
    /// The batch tray: candidates waiting to be applied. Outside the undo history (applying one
    /// is the undoable step) but saved with the project.
    pub tray: Vec<TrayCandidate>,
    /// Per-layer pixel revisions for thumbnails.
    layer_revisions: HashMap<LayerId, u64>,
    /// A live preview's transaction is open (an adjustment dialog, a pending transform): what it
    /// previews, for the message refusing other edits meanwhile.
    preview: Option<&'static str>,
    /// A layer-opacity slider drag's transaction is open.
    opacity_txn: bool,
    /// Bumped whenever the selection may have changed (keys the caches below).
    selection_revision: u64,
    selection_bounds: Option<(u64, Option<Rect>)>,
    selection_outline: Option<(u64, std::sync::Arc<[raster::mask::OutlineSegment]>)>,
    /// Bumped whenever the inpaint mask may have changed, so mask analysis (mode, context box)
    /// is redone only then and not on every paint stroke.
    mask_revision: u64,
}

fn to_brush(kind: StrokeKind, b: &ui::tools::BrushSettings, colour: Rgba8) -> Brush {
    Brush {
        size_px: b.size_px.clamp(0.5, 4096.0),
        hardness: b.hardness.clamp(0.0, 1.0),
        opacity: b.opacity.clamp(0.0, 1.0),
        flow: b.flow.clamp(0.0, 1.0),
        spacing: 0.1,
        color: colour,
        eraser: matches!(kind, StrokeKind::Erase | StrokeKind::MaskErase),
        pressure_size: true,
        pressure_flow: false,
    }
}

fn to_point(p: ui::tools::StrokePoint) -> StrokePoint {
    StrokePoint { x: p.pos.x, y: p.pos.y, pressure: p.pressure.clamp(0.0, 1.0) }
}

/// The affine map taking the content box `from` to the transform box `to`.
pub fn transform_affine(from: Rect, to: &TransformBox) -> doc::Affine {
    let fw = f64::from(from.width.max(1));
    let fh = f64::from(from.height.max(1));
    let (tx, ty) = (f64::from(to.rect.min.x), f64::from(to.rect.min.y));
    let (tw, th) = (f64::from(to.rect.width()), f64::from(to.rect.height()));
    let sx = if to.flip_x { -tw / fw } else { tw / fw };
    let sy = if to.flip_y { -th / fh } else { th / fh };
    // x' = tx + (x - from.x)·sx, shifted by the width when flipped.
    let cx = if to.flip_x { tx + tw } else { tx };
    let cy = if to.flip_y { ty + th } else { ty };
    let place = doc::Affine {
        a: sx,
        b: 0.0,
        c: cx - f64::from(from.x) * sx,
        d: 0.0,
        e: sy,
        f: cy - f64::from(from.y) * sy,
    };
    if to.rotation_deg == 0.0 {
        place
    } else {
        let c = to.rect.center();
        doc::Affine::rotate_about(f64::from(to.rotation_deg), f64::from(c.x), f64::from(c.y))
            .then_after(place)
    }
}

impl DocBridge {
    /// A white-background document of `w × h`.
    pub fn new_blank(w: u32, h: u32) -> Result<Self, EditorError> {
        Ok(Self::from_document(Document::new(w, h, Some([255, 255, 255, 255]))?))
    }

    /// The smallest valid document (only if even a default one could not be made).
    pub fn fallback() -> Self {
        match Document::new(1, 1, None) {
            Ok(d) => Self::from_document(d),
            // 1×1 is always valid; keep a loud message rather than a panic path.
            Err(e) => {
                log::error!("cannot create even a 1×1 document: {e}");
                std::process::exit(1)
            }
        }
    }

    pub fn from_document(doc: Document) -> Self {
        Self {
            doc,
            tray: Vec::new(),
            layer_revisions: HashMap::new(),
            preview: None,
            opacity_txn: false,
            selection_revision: 0,
            selection_bounds: None,
            selection_outline: None,
            mask_revision: 0,
        }
    }

    #[allow(dead_code, reason = "the kittest tests in crates/app/tests read the document")]
    pub fn into_document(self) -> Document {
        self.doc
    }

    #[allow(dead_code, reason = "the kittest tests in crates/app/tests read the document")]
    pub fn document(&self) -> &Document {
        &self.doc
    }

    pub fn size(&self) -> [u32; 2] {
        [self.doc.width(), self.doc.height()]
    }

    #[allow(dead_code, reason = "the kittest tests in crates/app/tests read the revision")]
    pub fn revision(&self) -> u64 {
        self.doc.revision()
    }

    /// See [`Document::history_position`]: what "saved" is compared against.
    pub fn history_position(&self) -> u64 {
        self.doc.history_position()
    }

    pub fn can_undo(&self) -> bool {
        self.doc.can_undo() && !self.doc.in_transaction()
    }

    pub fn can_redo(&self) -> bool {
        self.doc.can_redo() && !self.doc.in_transaction()
    }

    fn track(&mut self, change: &Change) {
        if !change.mask.is_empty() || change.canvas_resized {
            self.mask_revision += 1;
        }
        if !change.selection.is_empty() || change.canvas_resized {
            self.selection_revision += 1;
        }
        let rev = self.doc.revision();
        if change.layers_changed || change.canvas_resized {
            for l in self.doc.layers() {
                self.layer_revisions.insert(l.id(), rev);
            }
        } else if !change.composite.is_empty()
            && let Some(id) = self.doc.active_layer_id()
        {
            self.layer_revisions.insert(id, rev);
        }
    }

    fn done(&mut self, r: Result<Change, doc::DocError>) -> Result<Change, EditorError> {
        let c = r?;
        self.track(&c);
        Ok(c)
    }

    pub fn undo(&mut self) -> Option<Change> {
        if self.doc.in_transaction() {
            return None;
        }
        let c = self.doc.undo()?;
        self.track_all();
        Some(c)
    }

    pub fn redo(&mut self) -> Option<Change> {
        if self.doc.in_transaction() {
            return None;
        }
        let c = self.doc.redo()?;
        self.track_all();
        Some(c)
    }

    fn track_all(&mut self) {
        self.mask_revision += 1;
        self.selection_revision += 1;
        let rev = self.doc.revision();
        for l in self.doc.layers() {
            self.layer_revisions.insert(l.id(), rev);
        }
    }

    fn active_id(&self) -> Result<LayerId, EditorError> {
        self.doc.active_layer_id().ok_or(EditorError::Doc(doc::DocError::NoActiveLayer))
    }

    fn id_at(&self, index: usize) -> Result<LayerId, EditorError> {
        self.doc.layers().get(index).map(Layer::id).ok_or(EditorError::Doc(
            doc::DocError::IndexOutOfRange { index, len: self.doc.layers().len() },
        ))
    }

    pub fn apply(&mut self, cmd: Command) -> Result<Change, EditorError> {
        self.refuse_during_preview()?;
        let r = self.doc.apply(cmd);
        self.done(r)
    }

    fn refuse_during_preview(&self) -> Result<(), EditorError> {
        match self.preview {
            Some(what) => Err(EditorError::PreviewOpen(what)),
            None => Ok(()),
        }
    }

    // ---- reads ---------------------------------------------------------------------------

    pub fn layer_count(&self) -> usize {
        self.doc.layers().len()
    }

    /// Index of the active layer (0 = bottom).
    pub fn active_layer(&self) -> usize {
        self.doc.active_layer_id().and_then(|id| self.doc.layer_index(id)).unwrap_or(0)
    }

    pub fn layer_infos(&self) -> Vec<LayerInfo> {
        self.doc
            .layers()
            .iter()
            .map(|l| LayerInfo {
                id: l.id().raw(),
                revision: self.layer_revisions.get(&l.id()).copied().unwrap_or(0),
                name: l.props.name.clone(),
                visible: l.props.visible,
                opacity: l.props.opacity,
                blend: l.props.blend_mode,
                alpha_locked: l.props.alpha_lock,
                record: l.record.as_ref().and_then(|r| serde_json::to_string_pretty(r).ok()),
            })
            .collect()
    }

    /// A small preview of layer `index`, at most `max_px` a side (nearest samples of the canvas).
    pub fn layer_thumbnail(&self, index: usize, max_px: u32) -> Image<Rgba8> {
        let (w, h) = (self.doc.width(), self.doc.height());
        let scale = (w.max(h) as f32 / max_px as f32).max(1.0);
        let (tw, th) =
            (((w as f32 / scale).ceil() as u32).max(1), ((h as f32 / scale).ceil() as u32).max(1));
        let mut out = Image::new(tw, th);
        if let Some(l) = self.doc.layers().get(index) {
            for y in 0..th {
                for x in 0..tw {
                    let cx = ((x as f32 + 0.5) * scale) as i32 - l.offset_x;
                    let cy = ((y as f32 + 0.5) * scale) as i32 - l.offset_y;
                    out.set(x, y, l.pixels.get(cx, cy));
                }
            }
        }
        out
    }

    /// The visible composite of `rect` (cached by the document).
    pub fn composite(&mut self, rect: Rect) -> Image<Rgba8> {
        self.doc.composite_region(rect)
    }

    /// The inpaint mask of `rect` as a red tint (alpha = half the coverage).
    pub fn mask_overlay(&self, rect: Rect) -> Image<Rgba8> {
        let m = self.doc.mask().read_rect(rect);
        m.map(|v| if v == 0 { [0, 0, 0, 0] } else { [255, 40, 60, v / 2] })
    }

    /// The straight-alpha colour of the visible composite at a pixel (None where transparent).
    pub fn pick_colour(&mut self, x: i32, y: i32) -> Option<Rgba8> {
        if !self.doc.bounds().contains(x, y) {
            return None;
        }
        let p = self.doc.composite_region(Rect::new(x, y, 1, 1)).get(0, 0)?;
        (p[3] > 0).then_some(p)
    }

    /// Bounds of the selection, cached per revision.
    pub fn selection_bounds(&mut self) -> Option<Rect> {
        let rev = self.selection_revision;
        match self.selection_bounds {
            Some((r, b)) if r == rev => b,
            _ => {
                let b =
                    self.doc.selection().map(TiledImage::content_bounds).filter(|b| !b.is_empty());
                self.selection_bounds = Some((rev, b));
                b
            }
        }
    }

    /// The selection's outline (pixels at least half selected), for marching ants along its
    /// real shape; recomputed only when the selection changes.
    pub fn selection_outline(&mut self) -> Option<std::sync::Arc<[raster::mask::OutlineSegment]>> {
        let bounds = self.selection_bounds()?;
        let rev = self.selection_revision;
        if let Some((r, outline)) = &self.selection_outline
            && *r == rev
        {
            return Some(outline.clone());
        }
        let sel = self.doc.selection()?;
        let area = bounds.inflated(1);
        let pixels = sel.read_rect(area);
        let outline: std::sync::Arc<[_]> =
            raster::mask::outline_segments(&pixels, [area.x, area.y], 127).into();
        self.selection_outline = Some((rev, outline.clone()));
        Some(outline)
    }

    /// Exact content bounds of the active layer (for transform and move).
    pub fn active_content_bounds(&self) -> Option<Rect> {
        let l = self.doc.active_layer()?;
        let b = l.pixels.content_bounds().translated(l.offset_x, l.offset_y);
        (!b.is_empty()).then_some(b)
    }

    /// Allocated-tile bounds of the active layer (cheap; for per-frame overlays).
    pub fn active_coarse_bounds(&self) -> Option<Rect> {
        self.doc.active_layer().map(Layer::allocated_canvas_bounds).filter(|b| !b.is_empty())
    }

    // ---- tools ---------------------------------------------------------------------------

    pub fn apply_tool(&mut self, action: &ToolAction) -> Result<Change, EditorError> {
        self.refuse_during_preview()?;
        match action {
            ToolAction::BeginStroke { kind, brush, colour, first } => {
                let target =
                    if kind.targets_mask() { PaintTarget::Mask } else { PaintTarget::ActiveLayer };
                let r = self.doc.begin_stroke(
                    target,
                    to_brush(*kind, brush, *colour),
                    to_point(*first),
                );
                self.done(r)
            }
            ToolAction::StrokeTo(p) => {
                let r = self.doc.stroke_to(to_point(*p));
                self.done(r)
            }
            ToolAction::EndStroke => {
                let r = self.doc.end_stroke();
                self.done(r)
            }
            ToolAction::CancelStroke => {
                let mut c = self.doc.end_stroke()?;
                if let Some(u) = self.doc.undo() {
                    c.merge(u);
                }
                self.track_all();
                Ok(c)
            }
            ToolAction::Fill { x, y, colour, tolerance, sample_merged } => {
                self.apply(Command::FloodFill {
                    x: *x,
                    y: *y,
                    color: *colour,
                    tolerance: *tolerance,
                    source: if *sample_merged {
                        FillSource::Composite
                    } else {
                        FillSource::ActiveLayer
                    },
                })
            }
            ToolAction::PickColour { .. } => Ok(Change::default()),
            ToolAction::Select { shape, mode, feather_px } => {
                let shape = match shape {
                    SelectionShape::Rect(r) => SelectShape::Rect(*r),
                    SelectionShape::Polygon(p) => {
                        SelectShape::Polygon(p.iter().map(|p| (p.x, p.y)).collect())
                    }
                };
                let op = match mode {
                    SelectMode::Replace => SelectOp::Replace,
                    SelectMode::Add => SelectOp::Add,
                    SelectMode::Subtract => SelectOp::Subtract,
                };
                self.apply(Command::Select { shape, op, feather_px: *feather_px })
            }
            ToolAction::Translate { dx, dy } => self.translate(*dx, *dy),
            ToolAction::Transform { from, to } => {
                let cmd = self.transform_command(*from, to)?;
                self.apply(cmd)
            }
            ToolAction::Crop { rect } => self.apply(Command::Crop { rect: *rect }),
        }
    }

    /// The command moving the active layer's content box `from` onto `to`.
    pub fn transform_command(&self, from: Rect, to: &TransformBox) -> Result<Command, EditorError> {
        Ok(Command::TransformLayer { id: self.active_id()?, transform: transform_affine(from, to) })
    }

    /// Move tool: the selection's pixels when something is selected, else the whole layer.
    fn translate(&mut self, dx: i32, dy: i32) -> Result<Change, EditorError> {
        let id = self.active_id()?;
        if self.doc.selection().is_none() {
            return self.apply(Command::OffsetLayer { id, dx, dy });
        }
        let clip = self.doc.copy(false)?;
        self.doc.begin("Move selection")?;
        let steps = (|| -> Result<Change, doc::DocError> {
            let mut c = self.doc.apply(Command::ClearSelection)?;
            let pasted = self.doc.apply(Command::Paste {
                image: clip.image,
                x: clip.x + dx,
                y: clip.y + dy,
            })?;
            let created = pasted.created_layer;
            c.merge(pasted);
            if let Some(new_id) = created {
                c.merge(self.doc.apply(Command::MergeDown { id: new_id })?);
                c.merge(self.doc.set_active_layer(id)?);
            }
            Ok(c)
        })();
        match steps {
            Ok(mut c) => {
                c.merge(self.doc.commit()?);
                self.done(Ok(c))
            }
            Err(e) => {
                let _ = self.doc.cancel();
                Err(e.into())
            }
        }
    }

    // ---- layers panel --------------------------------------------------------------------

    pub fn apply_layer(&mut self, action: &LayerAction) -> Result<Change, EditorError> {
        // Even selecting another layer: the open preview belongs to the active one.
        self.refuse_during_preview()?;
        let props = |this: &Self, i: usize| -> Result<(LayerId, LayerProps), EditorError> {
            let id = this.id_at(i)?;
            let l = this.doc.layer(id).ok_or(EditorError::Doc(doc::DocError::NoSuchLayer(id)))?;
            Ok((id, l.props.clone()))
        };
        match action {
            LayerAction::Select(i) => {
                let id = self.id_at(*i)?;
                let r = self.doc.set_active_layer(id);
                self.done(r)
            }
            LayerAction::Add => {
                let name = format!("Layer {}", self.doc.layers().len() + 1);
                self.apply(Command::AddLayer { name, index: None })
            }
            LayerAction::Delete(i) => {
                let id = self.id_at(*i)?;
                self.apply(Command::DeleteLayer { id })
            }
            LayerAction::Duplicate(i) => {
                let id = self.id_at(*i)?;
                self.apply(Command::DuplicateLayer { id })
            }
            LayerAction::MergeDown(i) => {
                let id = self.id_at(*i)?;
                self.apply(Command::MergeDown { id })
            }
            LayerAction::Reorder { from, to } => {
                let id = self.id_at(*from)?;
                self.apply(Command::MoveLayerTo { id, index: *to })
            }
            LayerAction::SetVisible(i, v) => {
                let (id, mut p) = props(self, *i)?;
                p.visible = *v;
                self.apply(Command::SetLayerProps { id, props: p })
            }
            LayerAction::SetOpacity { index, opacity, done } => {
                let (id, mut p) = props(self, *index)?;
                p.opacity = opacity.clamp(0.0, 1.0);
                // A slider drag is one undo step: a transaction from the first change to release.
                if !*done && !self.opacity_txn && !self.doc.in_transaction() {
                    self.doc.begin("Layer opacity")?;
                    self.opacity_txn = true;
                }
                let mut c = self.apply(Command::SetLayerProps { id, props: p })?;
                if *done && self.opacity_txn {
                    self.opacity_txn = false;
                    c.merge(self.doc.commit()?);
                }
                Ok(c)
            }
            LayerAction::SetBlend(i, mode) => {
                let (id, mut p) = props(self, *i)?;
                p.blend_mode = *mode;
                self.apply(Command::SetLayerProps { id, props: p })
            }
            LayerAction::Rename(i, name) => {
                let id = self.id_at(*i)?;
                self.apply(Command::RenameLayer { id, name: name.clone() })
            }
            LayerAction::SetAlphaLock(i, lock) => {
                let (id, mut p) = props(self, *i)?;
                p.alpha_lock = *lock;
                self.apply(Command::SetLayerProps { id, props: p })
            }
        }
    }

    // ---- edit / select / mask ------------------------------------------------------------

    /// The selected part of the active layer (whole layer without a selection), None if empty.
    pub fn copy_image(&self) -> Option<Image<Rgba8>> {
        let clip = self.doc.copy(false).ok()?;
        clip.image.pixels().iter().any(|p| p[3] > 0).then_some(clip.image)
    }

    pub fn delete_selected(&mut self) -> Result<Change, EditorError> {
        self.apply(Command::ClearSelection)
    }

    pub fn select_all(&mut self) -> Result<Change, EditorError> {
        self.apply(Command::SelectAll)
    }

    pub fn deselect(&mut self) -> Result<Change, EditorError> {
        if self.doc.selection().is_none() {
            return Ok(Change::default());
        }
        self.apply(Command::SelectNone)
    }

    pub fn invert_selection(&mut self) -> Result<Change, EditorError> {
        self.apply(Command::InvertSelection)
    }

    pub fn clear_mask(&mut self) -> Result<Change, EditorError> {
        self.apply(Command::MaskClear)
    }

    pub fn invert_mask(&mut self) -> Result<Change, EditorError> {
        self.apply(Command::MaskInvert)
    }

    pub fn mask_from_selection(&mut self) -> Result<Change, EditorError> {
        self.apply(Command::MaskFromSelection)
    }

    pub fn mask_from_layer_alpha(&mut self) -> Result<Change, EditorError> {
        let id = self.active_id()?;
        self.apply(Command::MaskFromLayerAlpha { id })
    }

    /// Loads the mask from an image: its alpha if it has real alpha, else its luminance (white =
    /// regenerate), as A1111 reads masks. The image must be canvas-sized.
    pub fn mask_from_image(&mut self, img: &Image<Rgba8>) -> Result<Change, EditorError> {
        let has_alpha = img.pixels().iter().any(|p| p[3] < 255);
        let grey: Image<Gray8> = img.map(|p| {
            if has_alpha {
                p[3]
            } else {
                // ITU-R 601-2 luma, as PIL's convert("L").
                ((u32::from(p[0]) * 299 + u32::from(p[1]) * 587 + u32::from(p[2]) * 114 + 500)
                    / 1000) as u8
            }
        });
        self.apply(Command::MaskLoad { image: grey })
    }

    /// A new layer holding `img` at the canvas origin.
    pub fn add_image_layer(
        &mut self,
        name: &str,
        img: &Image<Rgba8>,
    ) -> Result<Change, EditorError> {
        self.apply(Command::AddLayerFromImage {
            image: img.clone(),
            x: 0,
            y: 0,
            name: name.to_owned(),
            record: None,
            index: None,
        })
    }

    // ---- generation ----------------------------------------------------------------------

    /// The inpaint mask, canvas-sized (255 = regenerate).
    pub fn mask_image(&self) -> Image<Gray8> {
        self.doc.mask().to_image()
    }

    /// Changes whenever the inpaint mask may have changed (a cache key).
    pub fn mask_revision(&self) -> u64 {
        self.mask_revision
    }

    /// Whether any mask pixel is painted.
    pub fn mask_is_painted(&self) -> bool {
        self.doc.mask().allocated_tiles().next().is_some()
            && raster::mask::bounding_box(&self.mask_image()).is_some()
    }

    /// Ids of the visible layers, bottom first: what a generation from the composite sees.
    pub fn visible_layer_ids(&self) -> Vec<LayerId> {
        self.doc.layers().iter().filter(|l| l.props.visible).map(|l| l.id()).collect()
    }

    pub fn active_layer_id(&self) -> Option<LayerId> {
        self.doc.active_layer_id()
    }

    /// Adds `candidate` as a new layer (one undo step) just above the highest of `above`
    /// still in the document, else above the active layer; the new layer becomes active.
    pub fn apply_candidate(
        &mut self,
        candidate: &TrayCandidate,
        above: &[LayerId],
    ) -> Result<Change, EditorError> {
        let index = above
            .iter()
            .filter_map(|id| self.doc.layer_index(*id))
            .max()
            .or_else(|| self.doc.active_layer_id().and_then(|id| self.doc.layer_index(id)))
            .map_or(self.doc.layers().len(), |i| i + 1);
        self.apply(Command::AddLayerFromImage {
            image: candidate.image.clone(),
            x: candidate.x,
            y: candidate.y,
            name: candidate.name.clone(),
            record: Some(candidate.record.clone()),
            index: Some(index),
        })
    }

    /// The record of layer `index`, if it was generated.
    pub fn layer_record(&self, index: usize) -> Option<&doc::GenerationRecord> {
        self.doc.layers().get(index).and_then(|l| l.record.as_ref())
    }

    /// Layer index of `id`, if it is still in the document.
    pub fn index_of(&self, id: LayerId) -> Option<usize> {
        self.doc.layer_index(id)
    }

    // ---- adjustments with live preview ---------------------------------------------------

    /// Opens the adjustment's transaction; each preview replaces the previous one inside it.
    pub fn begin_preview(&mut self, what: &'static str) -> Result<(), EditorError> {
        self.refuse_during_preview()?;
        self.doc.begin(what)?;
        self.preview = Some(what);
        Ok(())
    }

    pub fn preview(&mut self, cmd: Command) -> Result<Change, EditorError> {
        if self.preview.is_none() {
            return Err(EditorError::Doc(doc::DocError::NoTransaction));
        }
        let mut c = self.doc.cancel()?;
        self.doc.begin(cmd.label())?;
        c.merge(self.doc.apply(cmd)?);
        self.done(Ok(c))
    }

    pub fn commit_preview(&mut self) -> Result<Change, EditorError> {
        if self.preview.take().is_none() {
            return Ok(Change::default());
        }
        let r = self.doc.commit();
        self.done(r)
    }

    pub fn cancel_preview(&mut self) -> Result<Change, EditorError> {
        if self.preview.take().is_none() {
            return Ok(Change::default());
        }
        let r = self.doc.cancel();
        self.done(r)
    }

    // ---- files ---------------------------------------------------------------------------

    /// Opens an .ora project (with its batch tray) or an image (as a one-layer document).
    pub fn open(path: &Path, progress: &AtomicU32) -> Result<Self, EditorError> {
        let ext = extension(path);
        let (doc, tray) = if ext == "ora" {
            let opened = super::ora_io::read_ora(path)?;
            progress.store(600, Ordering::Relaxed);
            opened
        } else {
            let img = read_image(path)?;
            progress.store(600, Ordering::Relaxed);
            let name = path
                .file_stem()
                .map_or_else(|| "Background".to_owned(), |s| s.to_string_lossy().into_owned());
            let layer = Layer::new(
                LayerId::from_raw(1),
                LayerProps { name, ..LayerProps::default() },
                TiledImage::from_image(&img),
            );
            let doc = Document::from_parts(DocumentParts {
                width: img.width(),
                height: img.height(),
                layers: vec![layer],
                active: None,
                mask: None,
                selection: None,
            })?;
            (doc, Vec::new())
        };
        Ok(Self { tray, ..Self::from_document(doc) })
    }

    /// A copy of the current state to save on another thread (tiles are shared, so cheap).
    pub fn snapshot(&self) -> Snapshot {
        Snapshot { parts: self.doc.to_parts(), tray: self.tray.clone() }
    }

    /// Fills the benchmark document: `n` layers each with an opaque band of its own colour.
    pub fn fill_bench_layers(&mut self, n: usize) -> Result<(), EditorError> {
        let [w, h] = self.size();
        for i in 0..n.saturating_sub(1) {
            self.apply(Command::AddLayer { name: format!("Layer {}", i + 2), index: None })?;
            let band = (h / n as u32).max(1);
            let y = (i as u32 * band) as i32;
            self.apply(Command::Select {
                shape: SelectShape::Rect(Rect::new(0, y, w, band * 2)),
                op: SelectOp::Replace,
                feather_px: 0.0,
            })?;
            let c = [(i * 37 % 255) as u8, (i * 91 % 255) as u8, (i * 53 % 255) as u8, 200];
            self.apply(Command::FillSelection { color: c })?;
        }
        self.apply(Command::SelectNone)?;
        self.doc.clear_history();
        Ok(())
    }
}

/// The state to write, detached from the live document.
pub struct Snapshot {
    parts: DocumentParts,
    tray: Vec<TrayCandidate>,
}

impl Snapshot {
    pub fn save_ora(self, path: &Path, progress: &AtomicU32) -> Result<(), EditorError> {
        let doc = Document::from_parts(self.parts.clone())?;
        let merged = doc.render_composite();
        progress.store(300, Ordering::Relaxed);
        super::ora_io::write_ora(self.parts, &self.tray, &merged, path)?;
        progress.store(900, Ordering::Relaxed);
        Ok(())
    }

    /// Writes the composite as PNG, JPEG (flattened on white) or WebP by extension.
    pub fn export(self, path: &Path) -> Result<(), EditorError> {
        let doc = Document::from_parts(self.parts)?;
        let img = doc.render_composite();
        let (w, h) = (img.width(), img.height());
        let rgba = image::RgbaImage::from_raw(w, h, img.as_bytes().to_vec())
            .ok_or_else(|| EditorError::Io("composite has the wrong size".into()))?;
        match extension(path).as_str() {
            "png" | "webp" => rgba.save(path)?,
            "jpg" | "jpeg" => {
                let rgb = image::RgbImage::from_fn(w, h, |x, y| {
                    let p = rgba.get_pixel(x, y).0;
                    let a = u32::from(p[3]);
                    let over = |c: u8| ((u32::from(c) * a + 255 * (255 - a) + 127) / 255) as u8;
                    image::Rgb([over(p[0]), over(p[1]), over(p[2])])
                });
                rgb.save(path)?;
            }
            other => return Err(EditorError::UnsupportedType(other.to_owned())),
        }
        Ok(())
    }
}

fn extension(path: &Path) -> String {
    path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default()
}

/// Decodes PNG/JPEG/WebP to straight RGBA8.
pub fn read_image(path: &Path) -> Result<Image<Rgba8>, EditorError> {
    let ext = extension(path);
    if !matches!(ext.as_str(), "png" | "jpg" | "jpeg" | "webp") {
        return Err(EditorError::UnsupportedType(ext));
    }
    let reader = image::ImageReader::open(path)
        .map_err(|e| EditorError::Io(format!("{}: {e}", path.display())))?;
    let (w, h) = reader.into_dimensions()?;
    if w > MAX_SIDE_PX || h > MAX_SIDE_PX {
        return Err(EditorError::TooLarge { width: w, height: h, max: MAX_SIDE_PX });
    }
    let img = image::open(path)?.into_rgba8();
    let (w, h) = img.dimensions();
    Image::from_rgba_bytes(w, h, img.as_raw())
        .ok_or_else(|| EditorError::Io("decoded image has the wrong size".into()))
}

/// An egui clipboard image as straight RGBA8.
pub fn image_from_color_image(img: &egui::ColorImage) -> Result<Image<Rgba8>, EditorError> {
    let [w, h] = img.size;
    let px: Vec<Rgba8> = img.pixels.iter().map(|c| c.to_srgba_unmultiplied()).collect();
    Image::from_pixels(w as u32, h as u32, px)
        .ok_or_else(|| EditorError::Io("clipboard image has the wrong size".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use egui::{pos2, vec2};

    #[test]
    fn transform_affine_maps_box_corners() {
        let from = Rect::new(10, 20, 100, 50);
        let to = TransformBox {
            rect: egui::Rect::from_min_size(pos2(0.0, 0.0), vec2(200.0, 100.0)),
            rotation_deg: 0.0,
            flip_x: false,
            flip_y: false,
        };
        let a = transform_affine(from, &to);
        assert_eq!(a.apply(10.0, 20.0), (0.0, 0.0));
        assert_eq!(a.apply(110.0, 70.0), (200.0, 100.0));
        let flipped = transform_affine(from, &TransformBox { flip_x: true, ..to });
        assert_eq!(flipped.apply(10.0, 20.0), (200.0, 0.0));
        assert_eq!(flipped.apply(110.0, 70.0), (0.0, 100.0));
        let rotated = transform_affine(from, &TransformBox { rotation_deg: 90.0, ..to });
        let (x, y) = rotated.apply(60.0, 45.0); // the centre stays
        assert!((x - 100.0).abs() < 1e-9 && (y - 50.0).abs() < 1e-9);
    }

    fn candidate(seed: u64, x: i32, y: i32, w: u32, h: u32) -> TrayCandidate {
        let pixels = (0..w * h).map(|i| [(i % 256) as u8, seed as u8, 7, (i * 3 % 256) as u8]);
        TrayCandidate {
            name: format!("a red fox · {seed}"),
            x,
            y,
            image: Image::from_pixels(w, h, pixels.collect()).unwrap(),
            record: doc::GenerationRecord {
                prompt: "a red fox".into(),
                seed,
                steps: 20,
                strength: Some(0.8),
                mode: doc::GenerationMode::Inpaint,
                context_box: Some(Rect::new(x, y, w, h)),
                parent_layers: vec![LayerId::from_raw(1)],
                ..doc::GenerationRecord::default()
            },
        }
    }

    #[test]
    fn tray_survives_save_and_open() {
        let mut bridge = DocBridge::new_blank(48, 32).unwrap();
        assert!(bridge.tray.is_empty());
        bridge.tray = vec![
            candidate(1234, -6, -2, 21, 13),
            candidate(1235, 40, 30, 1, 1),
            candidate(1236, 0, 5, 9, 40),
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tray.ora");
        let progress = AtomicU32::new(0);
        bridge.snapshot().save_ora(&path, &progress).unwrap();
        let opened = DocBridge::open(&path, &progress).unwrap();
        assert_eq!(opened.tray, bridge.tray);
        assert_eq!(opened.size(), [48, 32]);

        // Saving with an empty tray leaves none behind; an image opens with an empty tray.
        bridge.tray.clear();
        bridge.snapshot().save_ora(&path, &progress).unwrap();
        assert!(DocBridge::open(&path, &progress).unwrap().tray.is_empty());
        let png = dir.path().join("flat.png");
        bridge.snapshot().export(&png).unwrap();
        assert!(DocBridge::open(&png, &progress).unwrap().tray.is_empty());
    }
}
