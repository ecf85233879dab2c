//! What an edit changed, so the UI re-uploads only dirty tiles and refreshes only what moved.

use raster::Rect;

use crate::LayerId;

/// The effect of one apply/undo/redo/stroke call. Rects are in canvas pixels, may overlap and
/// are not clipped to tile boundaries; [`Change::composite_bounds`] gives their union.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Change {
    /// Regions whose composite (the visible image) may have changed.
    pub composite: Vec<Rect>,
    /// Regions of the inpaint mask that changed.
    pub mask: Vec<Rect>,
    /// Regions of the selection that changed (including appearing or disappearing).
    pub selection: Vec<Rect>,
    /// The layer stack, a layer's properties or the active layer changed (refresh the panel).
    pub layers_changed: bool,
    /// The canvas size changed: everything must be re-uploaded.
    pub canvas_resized: bool,
    /// The layer a command created (add, duplicate, paste, add-from-image, merge, flatten).
    pub created_layer: Option<LayerId>,
    /// The document revision after the change.
    pub revision: u64,
}

fn push_rect(list: &mut Vec<Rect>, rect: Rect) {
    if rect.is_empty() {
        return;
    }
    if let Some(last) = list.last_mut() {
        if last.intersect(&rect) == rect {
            return;
        }
        if rect.intersect(last) == *last {
            *last = rect;
            return;
        }
    }
    list.push(rect);
}

impl Change {
    pub fn is_empty(&self) -> bool {
        self.composite.is_empty()
            && self.mask.is_empty()
            && self.selection.is_empty()
            && !self.layers_changed
            && !self.canvas_resized
    }

    /// Union of the composite rects (empty if nothing visible changed).
    pub fn composite_bounds(&self) -> Rect {
        self.composite.iter().fold(Rect::default(), |acc, r| acc.union(r))
    }

    pub fn mask_bounds(&self) -> Rect {
        self.mask.iter().fold(Rect::default(), |acc, r| acc.union(r))
    }

    pub fn selection_bounds(&self) -> Rect {
        self.selection.iter().fold(Rect::default(), |acc, r| acc.union(r))
    }

    pub(crate) fn dirty_composite(&mut self, rect: Rect) {
        push_rect(&mut self.composite, rect);
    }

    pub(crate) fn dirty_mask(&mut self, rect: Rect) {
        push_rect(&mut self.mask, rect);
    }

    pub(crate) fn dirty_selection(&mut self, rect: Rect) {
        push_rect(&mut self.selection, rect);
    }

    /// Folds `other` (a later change) into `self`.
    pub fn merge(&mut self, other: Change) {
        for r in other.composite {
            self.dirty_composite(r);
        }
        for r in other.mask {
            self.dirty_mask(r);
        }
        for r in other.selection {
            self.dirty_selection(r);
        }
        self.layers_changed |= other.layers_changed;
        self.canvas_resized |= other.canvas_resized;
        self.created_layer = other.created_layer.or(self.created_layer);
        self.revision = self.revision.max(other.revision);
    }
}
