//! The document: canvas, layer stack, inpaint mask, selection, history and composite cache.

use std::sync::Arc;

use raster::{Gray8, Rect, Rgba8, Tile, TileCoord, TiledImage};

use crate::brush::StrokeState;
use crate::change::Change;
use crate::composite::CompositeCache;
use crate::error::DocError;
use crate::history::{DocState, History, Transaction, UndoItem};
use crate::{Layer, LayerId, LayerProps};

/// Largest canvas side we accept (the ora reader refuses larger files before allocating).
pub const MAX_CANVAS_SIDE: u32 = 32768;

/// Everything a file reader needs to build a document without going through undo.
#[derive(Clone, Debug)]
pub struct DocumentParts {
    pub width: u32,
    pub height: u32,
    /// Bottom to top; ids must be unique.
    pub layers: Vec<Layer>,
    /// Defaults to the top layer when `None` or not in `layers`.
    pub active: Option<LayerId>,
    /// Canvas-sized inpaint mask; blank when `None`.
    pub mask: Option<TiledImage<Gray8>>,
    /// Canvas-sized selection; `None` = nothing selected (everything editable).
    pub selection: Option<TiledImage<Gray8>>,
}

/// A layered image with an undo history. All edits go through [`Document::apply`] or the stroke
/// methods; reads are free.
#[derive(Debug)]
pub struct Document {
    pub(crate) state: DocState,
    pub(crate) next_layer_id: u64,
    pub(crate) history: History,
    pub(crate) txn: Option<Transaction>,
    pub(crate) stroke: Option<StrokeState>,
    pub(crate) cache: CompositeCache,
    pub(crate) revision: u64,
}

pub(crate) fn check_size(width: u32, height: u32) -> Result<(), DocError> {
    if width == 0 || height == 0 || width > MAX_CANVAS_SIDE || height > MAX_CANVAS_SIDE {
        return Err(DocError::InvalidSize { width, height, max: MAX_CANVAS_SIDE });
    }
    Ok(())
}

impl Document {
    /// A document with one canvas-sized layer named "Background", filled with `background`
    /// (transparent when `None`).
    pub fn new(width: u32, height: u32, background: Option<Rgba8>) -> Result<Self, DocError> {
        check_size(width, height)?;
        let mut pixels = TiledImage::new(width, height);
        if let Some(color) = background.filter(|c| *c != [0, 0, 0, 0]) {
            let (cols, rows) = pixels.grid_size();
            let mut tile = Tile::default();
            tile.pixels_mut().fill(color);
            let tile = Arc::new(tile);
            let bounds = pixels.bounds();
            for row in 0..rows {
                for col in 0..cols {
                    let coord = TileCoord { col, row };
                    if coord.rect().intersect(&bounds) == coord.rect() {
                        // Shared full tiles: copy-on-write makes the first stroke unshare them.
                        pixels.set_tile(coord, Some(Arc::clone(&tile)));
                    } else if let Some(t) = pixels.tile_mut(coord) {
                        let local = coord
                            .rect()
                            .intersect(&bounds)
                            .translated(-coord.rect().x, -coord.rect().y);
                        for y in local.y..local.bottom() {
                            if let Some(row) = t
                                .row_mut(y as u32)
                                .get_mut(local.x as usize..local.right() as usize)
                            {
                                row.fill(color);
                            }
                        }
                    }
                }
            }
        }
        let layer = Layer::new(
            LayerId::from_raw(1),
            LayerProps { name: "Background".into(), ..LayerProps::default() },
            pixels,
        );
        Self::from_parts(DocumentParts {
            width,
            height,
            layers: vec![layer],
            active: None,
            mask: None,
            selection: None,
        })
    }

    /// Builds a document from parts read from a file (no history). Validates the canvas size,
    /// unique layer ids and mask/selection sizes.
    pub fn from_parts(parts: DocumentParts) -> Result<Self, DocError> {
        let DocumentParts { width, height, layers, active, mask, selection } = parts;
        check_size(width, height)?;
        let mut seen = std::collections::HashSet::new();
        for l in &layers {
            if !seen.insert(l.id()) {
                return Err(DocError::DuplicateLayerId(l.id()));
            }
        }
        for img in mask.iter().chain(selection.iter()) {
            if img.width() != width || img.height() != height {
                return Err(DocError::SizeMismatch {
                    got_width: img.width(),
                    got_height: img.height(),
                    want_width: width,
                    want_height: height,
                });
            }
        }
        let active = active
            .filter(|a| layers.iter().any(|l| l.id() == *a))
            .or_else(|| layers.last().map(Layer::id));
        let next_layer_id = layers.iter().map(|l| l.id().raw()).max().unwrap_or(0) + 1;
        Ok(Self {
            state: DocState {
                width,
                height,
                layers,
                active,
                mask: mask.unwrap_or_else(|| TiledImage::new(width, height)),
                selection,
            },
            next_layer_id,
            history: History::default(),
            txn: None,
            stroke: None,
            cache: CompositeCache::new(width, height),
            revision: 0,
        })
    }

    /// The parts of the current state (cheap: tiles are shared), e.g. for saving on a thread.
    pub fn to_parts(&self) -> DocumentParts {
        DocumentParts {
            width: self.state.width,
            height: self.state.height,
            layers: self.state.layers.clone(),
            active: self.state.active,
            mask: Some(self.state.mask.clone()),
            selection: self.state.selection.clone(),
        }
    }

    pub fn width(&self) -> u32 {
        self.state.width
    }

    pub fn height(&self) -> u32 {
        self.state.height
    }

    /// `Rect::from_size(width, height)`.
    pub fn bounds(&self) -> Rect {
        Rect::from_size(self.state.width, self.state.height)
    }

    /// Bottom to top.
    pub fn layers(&self) -> &[Layer] {
        &self.state.layers
    }

    pub fn layer(&self, id: LayerId) -> Option<&Layer> {
        self.state.layer(id)
    }

    /// Stack position (0 = bottom).
    pub fn layer_index(&self, id: LayerId) -> Option<usize> {
        self.state.layer_index(id)
    }

    pub fn active_layer_id(&self) -> Option<LayerId> {
        self.state.active
    }

    pub fn active_layer(&self) -> Option<&Layer> {
        self.state.active.and_then(|id| self.state.layer(id))
    }

    /// Chooses the layer that painting and adjustments act on. Not an undo step (as in Krita);
    /// bumps the revision.
    pub fn set_active_layer(&mut self, id: LayerId) -> Result<Change, DocError> {
        if self.state.layer(id).is_none() {
            return Err(DocError::NoSuchLayer(id));
        }
        self.state.active = Some(id);
        self.revision += 1;
        Ok(Change { layers_changed: true, revision: self.revision, ..Change::default() })
    }

    /// The canvas-sized inpaint mask (255 = regenerate).
    pub fn mask(&self) -> &TiledImage<Gray8> {
        &self.state.mask
    }

    /// The selection coverage, or `None` when nothing is selected (everything is editable).
    /// `Some` of an all-zero image is an empty selection: nothing is editable.
    pub fn selection(&self) -> Option<&TiledImage<Gray8>> {
        self.state.selection.as_ref()
    }

    /// Increases with every change (apply, stroke step, undo, redo, cancel).
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The id the next created layer will get.
    pub fn peek_next_layer_id(&self) -> LayerId {
        LayerId::from_raw(self.next_layer_id)
    }

    /// Sets a layer's generation record (not an undo step: records are metadata attached when a
    /// result is applied; use [`crate::Command::AddLayerFromImage`] to add a result undoably).
    pub fn set_layer_record(
        &mut self,
        id: LayerId,
        record: Option<crate::GenerationRecord>,
    ) -> Result<(), DocError> {
        let layer = self.state.layer_mut(id).ok_or(DocError::NoSuchLayer(id))?;
        layer.record = record;
        Ok(())
    }

    // ----- history -----

    pub fn can_undo(&self) -> bool {
        self.txn.is_some() || !self.history.undo.is_empty()
    }

    pub fn can_redo(&self) -> bool {
        self.txn.is_none() && !self.history.redo.is_empty()
    }

    /// Label of the step [`Document::undo`] would revert ("Brush stroke"), for "Undo Brush stroke".
    pub fn undo_label(&self) -> Option<&str> {
        match &self.txn {
            Some(t) => Some(t.label.as_str()),
            None => self.history.undo.back().map(|s| s.label.as_str()),
        }
    }

    pub fn redo_label(&self) -> Option<&str> {
        if self.txn.is_some() {
            return None;
        }
        self.history.redo.last().map(|s| s.label.as_str())
    }

    /// Number of steps that can be undone / redone.
    pub fn history_len(&self) -> (usize, usize) {
        (self.history.undo.len(), self.history.redo.len())
    }

    /// Estimated memory the history keeps alive, in bytes.
    pub fn history_bytes(&self) -> usize {
        self.history.bytes()
    }

    /// Sets the history budget; the oldest steps are dropped to fit (the newest always stays).
    pub fn set_history_cap_bytes(&mut self, cap_bytes: usize) {
        self.history.cap_bytes = cap_bytes;
        self.history.enforce_cap();
    }

    pub fn history_cap_bytes(&self) -> usize {
        self.history.cap_bytes
    }

    /// Forgets all undo and redo steps (e.g. after loading a file).
    pub fn clear_history(&mut self) {
        self.history.clear();
    }

    /// Identifies the state the history has reached: undoing back to a saved state gives the
    /// position it had then, so "unsaved changes" follows undo and redo instead of counting edits.
    /// An open transaction is not part of the position until it is committed.
    pub fn history_position(&self) -> u64 {
        self.history.position()
    }

    /// Reverts the last step. If a transaction or stroke is open, it is cancelled instead (as
    /// Ctrl+Z mid-stroke does). `None` when there is nothing to undo.
    pub fn undo(&mut self) -> Option<Change> {
        if self.txn.is_some() {
            return self.cancel().ok();
        }
        let mut step = self.history.undo.pop_back()?;
        let mut change = Change { layers_changed: step.structure_changed, ..Change::default() };
        for item in step.items.iter_mut().rev() {
            swap_item(&mut self.state, item, &mut change);
        }
        self.history.redo.push(step);
        Some(self.finish(change))
    }

    /// Re-applies the last undone step.
    pub fn redo(&mut self) -> Option<Change> {
        if self.txn.is_some() {
            return None;
        }
        let mut step = self.history.redo.pop()?;
        let mut change = Change { layers_changed: step.structure_changed, ..Change::default() };
        for item in step.items.iter_mut() {
            swap_item(&mut self.state, item, &mut change);
        }
        self.history.undo.push_back(step);
        Some(self.finish(change))
    }

    // ----- transactions -----

    /// Opens a transaction: every command applied until [`Document::commit`] becomes one undo
    /// step labelled `label`.
    pub fn begin(&mut self, label: impl Into<String>) -> Result<(), DocError> {
        if let Some(t) = &self.txn {
            return Err(DocError::TransactionOpen(t.label.clone()));
        }
        self.txn = Some(Transaction::new(label));
        Ok(())
    }

    pub fn in_transaction(&self) -> bool {
        self.txn.is_some()
    }

    /// Closes the open transaction (ending a stroke in progress) and records it as one step.
    /// An empty transaction records nothing.
    pub fn commit(&mut self) -> Result<Change, DocError> {
        self.stroke = None;
        self.cache.set_stroke_layer(None);
        let txn = self.txn.take().ok_or(DocError::NoTransaction)?;
        let layers_changed = txn.structure_changed;
        if !txn.items.is_empty() {
            self.history.push(txn, &self.state);
        }
        Ok(Change { layers_changed, revision: self.revision, ..Change::default() })
    }

    /// Reverts everything done since [`Document::begin`] and closes the transaction.
    pub fn cancel(&mut self) -> Result<Change, DocError> {
        self.stroke = None;
        self.cache.set_stroke_layer(None);
        let mut txn = self.txn.take().ok_or(DocError::NoTransaction)?;
        let mut change = Change { layers_changed: txn.structure_changed, ..Change::default() };
        for item in txn.items.iter_mut().rev() {
            swap_item(&mut self.state, item, &mut change);
        }
        Ok(self.finish(change))
    }

    /// Runs `f` inside the open transaction, or inside a new one labelled `label` that is
    /// committed on success and rolled back on error.
    pub(crate) fn transact<T>(
        &mut self,
        label: &str,
        f: impl FnOnce(&mut Ctx<'_>) -> Result<T, DocError>,
    ) -> Result<(T, Change), DocError> {
        let own = self.txn.is_none();
        let mut txn = self.txn.take().unwrap_or_else(|| Transaction::new(label));
        let mut change = Change::default();
        let result = {
            let mut ctx = Ctx {
                state: &mut self.state,
                txn: &mut txn,
                change: &mut change,
                next_layer_id: &mut self.next_layer_id,
            };
            f(&mut ctx)
        };
        match result {
            Ok(value) => {
                if txn.structure_changed {
                    change.layers_changed = true;
                }
                if own {
                    if !txn.items.is_empty() {
                        self.history.push(txn, &self.state);
                    }
                } else {
                    self.txn = Some(txn);
                }
                Ok((value, self.finish(change)))
            }
            Err(e) => {
                if own {
                    let mut undo_change = Change::default();
                    for item in txn.items.iter_mut().rev() {
                        swap_item(&mut self.state, item, &mut undo_change);
                    }
                    if !undo_change.is_empty() {
                        self.finish(undo_change);
                    }
                } else {
                    self.txn = Some(txn);
                }
                Err(e)
            }
        }
    }

    /// Bumps the revision and invalidates the composite cache for a change.
    pub(crate) fn finish(&mut self, mut change: Change) -> Change {
        if change.canvas_resized {
            self.cache = CompositeCache::new(self.state.width, self.state.height);
        } else {
            for r in &change.composite {
                self.cache.invalidate(*r);
            }
        }
        if !change.is_empty() {
            self.revision += 1;
        }
        change.revision = self.revision;
        change
    }
}

/// What an operation works on while a transaction is open.
pub(crate) struct Ctx<'a> {
    pub state: &'a mut DocState,
    pub txn: &'a mut Transaction,
    pub change: &'a mut Change,
    pub next_layer_id: &'a mut u64,
}

impl Ctx<'_> {
    pub fn canvas(&self) -> Rect {
        Rect::from_size(self.state.width, self.state.height)
    }

    pub fn new_layer_id(&mut self) -> LayerId {
        let id = LayerId::from_raw(*self.next_layer_id);
        *self.next_layer_id += 1;
        id
    }

    pub fn active_id(&self) -> Result<LayerId, DocError> {
        self.state.active.ok_or(DocError::NoActiveLayer)
    }

    pub fn layer(&self, id: LayerId) -> Result<&Layer, DocError> {
        self.state.layer(id).ok_or(DocError::NoSuchLayer(id))
    }

    /// Records the layer stack before a structural change; the whole canvas area of the
    /// affected layers is reported dirty by the caller.
    pub fn snapshot_layers(&mut self) {
        self.txn.push_whole(UndoItem::Layers {
            layers: self.state.layers.clone(),
            active: self.state.active,
        });
        self.change.layers_changed = true;
    }

    pub fn snapshot_mask(&mut self) {
        self.txn.push_whole(UndoItem::Mask(self.state.mask.clone()));
    }

    pub fn snapshot_selection(&mut self) {
        self.txn.push_whole(UndoItem::Selection(self.state.selection.clone()));
    }

    pub fn snapshot_canvas_size(&mut self) {
        self.txn.push_whole(UndoItem::CanvasSize {
            width: self.state.width,
            height: self.state.height,
        });
        self.change.canvas_resized = true;
    }

    /// The layer tile at `coord` for writing, its before-state recorded first.
    pub fn layer_tile_mut(&mut self, id: LayerId, coord: TileCoord) -> Option<&mut Tile<Rgba8>> {
        let layer = self.state.layers.iter_mut().find(|l| l.id() == id)?;
        self.txn.record_layer_tile(id, &layer.pixels, coord);
        layer.pixels.tile_mut(coord)
    }

    /// The mask tile at `coord` for writing, its before-state recorded first.
    pub fn mask_tile_mut(&mut self, coord: TileCoord) -> Option<&mut Tile<Gray8>> {
        self.txn.record_mask_tile(&self.state.mask, coord);
        self.state.mask.tile_mut(coord)
    }

    /// Marks a rect in layer-local pixels as changed.
    pub fn dirty_layer_local(&mut self, id: LayerId, local: Rect) {
        if let Some(l) = self.state.layer(id)
            && l.props.visible
        {
            let canvas = self.canvas();
            self.change
                .dirty_composite(local.translated(l.offset_x, l.offset_y).intersect(&canvas));
        }
    }

    /// Marks a layer's whole (allocated) area dirty, e.g. before and after a property change.
    pub fn dirty_layer_all(&mut self, id: LayerId) {
        if let Some(l) = self.state.layer(id) {
            let canvas = self.canvas();
            self.change.dirty_composite(l.allocated_canvas_bounds().intersect(&canvas));
        }
    }

    /// Replaces a layer's stored pixel image wholesale (transforms, resize): snapshot first.
    pub fn dirty_all(&mut self) {
        let canvas = self.canvas();
        self.change.dirty_composite(canvas);
    }
}

fn swap_tiles<P: raster::Pixel>(
    img: &mut TiledImage<P>,
    tiles: &mut [(TileCoord, Option<Arc<Tile<P>>>)],
    mut dirty: impl FnMut(Rect),
) {
    let bounds = img.bounds();
    for (coord, tile) in tiles.iter_mut() {
        let current = img.tile(*coord).cloned();
        img.set_tile(*coord, tile.take());
        *tile = current;
        dirty(coord.rect().intersect(&bounds));
    }
}

/// Tile rects where two same-grid images differ by pointer; the whole union otherwise.
fn diff_rects<P: raster::Pixel>(a: &TiledImage<P>, b: &TiledImage<P>, mut out: impl FnMut(Rect)) {
    if a.grid_size() != b.grid_size() || a.bounds() != b.bounds() {
        out(a.bounds().union(&b.bounds()));
        return;
    }
    let bounds = a.bounds();
    let (cols, rows) = a.grid_size();
    for row in 0..rows {
        for col in 0..cols {
            let c = TileCoord { col, row };
            let same = match (a.tile(c), b.tile(c)) {
                (None, None) => true,
                (Some(x), Some(y)) => Arc::ptr_eq(x, y),
                _ => false,
            };
            if !same {
                out(c.rect().intersect(&bounds));
            }
        }
    }
}

/// Composite regions that differ between two layer stacks.
fn stack_dirty(a: &[Layer], b: &[Layer], change: &mut Change) {
    let ids_a: Vec<LayerId> = a.iter().map(Layer::id).collect();
    let ids_b: Vec<LayerId> = b.iter().map(Layer::id).collect();
    let same_order = {
        let common_a: Vec<_> = ids_a.iter().filter(|i| ids_b.contains(i)).collect();
        let common_b: Vec<_> = ids_b.iter().filter(|i| ids_a.contains(i)).collect();
        common_a == common_b
    };
    let visible_bounds =
        |l: &Layer| if l.props.visible { l.allocated_canvas_bounds() } else { Rect::default() };
    for la in a {
        match b.iter().find(|l| l.id() == la.id()) {
            None => change.dirty_composite(visible_bounds(la)),
            Some(lb) => {
                let props_same = la.props.visible == lb.props.visible
                    && la.props.opacity == lb.props.opacity
                    && la.props.blend_mode == lb.props.blend_mode;
                if !props_same
                    || !same_order
                    || la.offset_x != lb.offset_x
                    || la.offset_y != lb.offset_y
                {
                    change.dirty_composite(visible_bounds(la));
                    change.dirty_composite(visible_bounds(lb));
                } else if la.props.visible {
                    let (ox, oy) = (la.offset_x, la.offset_y);
                    diff_rects(&la.pixels, &lb.pixels, |r| {
                        change.dirty_composite(r.translated(ox, oy));
                    });
                }
            }
        }
    }
    for lb in b {
        if !a.iter().any(|l| l.id() == lb.id()) {
            change.dirty_composite(visible_bounds(lb));
        }
    }
}

/// Exchanges an undo item with the live state, reporting what changed.
pub(crate) fn swap_item(state: &mut DocState, item: &mut UndoItem, change: &mut Change) {
    let canvas = Rect::from_size(state.width, state.height);
    match item {
        UndoItem::LayerTiles { id, tiles } => {
            if let Some(layer) = state.layer_mut(*id) {
                let (ox, oy, visible) = (layer.offset_x, layer.offset_y, layer.props.visible);
                swap_tiles(&mut layer.pixels, tiles, |r| {
                    if visible {
                        change.dirty_composite(r.translated(ox, oy).intersect(&canvas));
                    }
                });
            }
        }
        UndoItem::MaskTiles { tiles } => {
            swap_tiles(&mut state.mask, tiles, |r| change.dirty_mask(r));
        }
        UndoItem::Layers { layers, active } => {
            std::mem::swap(&mut state.layers, layers);
            std::mem::swap(&mut state.active, active);
            stack_dirty(layers, &state.layers, change);
            change.layers_changed = true;
        }
        UndoItem::Mask(mask) => {
            std::mem::swap(&mut state.mask, mask);
            diff_rects(mask, &state.mask, |r| change.dirty_mask(r));
        }
        UndoItem::Selection(sel) => {
            std::mem::swap(&mut state.selection, sel);
            match (sel.as_ref(), state.selection.as_ref()) {
                (Some(a), Some(b)) => diff_rects(a, b, |r| change.dirty_selection(r)),
                (None, None) => {}
                _ => change.dirty_selection(canvas),
            }
        }
        UndoItem::CanvasSize { width, height } => {
            std::mem::swap(&mut state.width, width);
            std::mem::swap(&mut state.height, height);
            change.canvas_resized = true;
            change.layers_changed = true;
            change.dirty_composite(Rect::from_size(state.width, state.height));
        }
    }
}
