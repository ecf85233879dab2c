//! Transactions and the undo history.
//!
//! Every change is recorded as a *swap item*: the part of the document state that an edit is
//! about to change, captured before the change (tiles are `Arc`s, so a capture is a pointer copy).
//! Undoing a step swaps its items back in reverse order, which leaves the undone state in the
//! items; redoing swaps them again in forward order. Pixel edits record only the tiles they
//! touch, once per transaction.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use raster::{Gray8, Rgba8, TILE_SIZE, Tile, TileCoord, TiledImage};

use crate::{Layer, LayerId};

const RGBA_TILE_BYTES: usize = (TILE_SIZE * TILE_SIZE) as usize * 4;
const GRAY_TILE_BYTES: usize = (TILE_SIZE * TILE_SIZE) as usize;
/// Rough cost of one grid slot or list entry, for the memory estimate.
const SLOT_BYTES: usize = 16;

/// One swappable piece of document state.
#[derive(Debug)]
pub(crate) enum UndoItem {
    /// Tiles of one layer, as they were before the first write of the transaction.
    LayerTiles {
        id: LayerId,
        tiles: Vec<(TileCoord, Option<Arc<Tile<Rgba8>>>)>,
    },
    /// Tiles of the inpaint mask.
    MaskTiles {
        tiles: Vec<(TileCoord, Option<Arc<Tile<Gray8>>>)>,
    },
    /// The whole layer stack and the active layer (structure and property changes).
    Layers {
        layers: Vec<Layer>,
        active: Option<LayerId>,
    },
    Mask(TiledImage<Gray8>),
    Selection(Option<TiledImage<Gray8>>),
    CanvasSize {
        width: u32,
        height: u32,
    },
}

/// The state that undo items swap with.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct DocState {
    pub width: u32,
    pub height: u32,
    pub layers: Vec<Layer>,
    pub active: Option<LayerId>,
    pub mask: TiledImage<Gray8>,
    pub selection: Option<TiledImage<Gray8>>,
}

impl DocState {
    pub fn layer_index(&self, id: LayerId) -> Option<usize> {
        self.layers.iter().position(|l| l.id() == id)
    }

    pub fn layer(&self, id: LayerId) -> Option<&Layer> {
        self.layers.iter().find(|l| l.id() == id)
    }

    pub fn layer_mut(&mut self, id: LayerId) -> Option<&mut Layer> {
        self.layers.iter_mut().find(|l| l.id() == id)
    }
}

fn tile_ptr_eq<P: raster::Pixel>(a: Option<&Arc<Tile<P>>>, b: Option<&Arc<Tile<P>>>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        _ => false,
    }
}

/// Bytes of `old`'s tiles that `live` does not share (what keeping `old` costs).
fn unshared_bytes<P: raster::Pixel>(
    old: &TiledImage<P>,
    live: Option<&TiledImage<P>>,
    tile_bytes: usize,
) -> usize {
    let (cols, rows) = old.grid_size();
    let slots = cols as usize * rows as usize * SLOT_BYTES / 2;
    let unshared = old
        .allocated_tiles()
        .filter(|&c| live.is_none_or(|l| !tile_ptr_eq(old.tile(c), l.tile(c))))
        .count();
    slots + unshared * tile_bytes
}

impl UndoItem {
    /// Memory this item keeps alive beyond what the live document shares with it.
    fn bytes(&self, live: &DocState) -> usize {
        match self {
            UndoItem::LayerTiles { tiles, .. } => tiles
                .iter()
                .map(|(_, t)| SLOT_BYTES + if t.is_some() { RGBA_TILE_BYTES } else { 0 })
                .sum(),
            UndoItem::MaskTiles { tiles } => tiles
                .iter()
                .map(|(_, t)| SLOT_BYTES + if t.is_some() { GRAY_TILE_BYTES } else { 0 })
                .sum(),
            UndoItem::Layers { layers, .. } => layers
                .iter()
                .map(|l| {
                    let live_pixels = live
                        .layer(l.id())
                        .map(|x| &x.pixels)
                        .filter(|p| p.grid_size() == l.pixels.grid_size());
                    unshared_bytes(&l.pixels, live_pixels, RGBA_TILE_BYTES) + 256
                })
                .sum(),
            UndoItem::Mask(m) => {
                let live_mask = Some(&live.mask).filter(|x| x.grid_size() == m.grid_size());
                unshared_bytes(m, live_mask, GRAY_TILE_BYTES)
            }
            UndoItem::Selection(s) => s.as_ref().map_or(0, |s| {
                let live_sel = live.selection.as_ref().filter(|x| x.grid_size() == s.grid_size());
                unshared_bytes(s, live_sel, GRAY_TILE_BYTES)
            }),
            UndoItem::CanvasSize { .. } => SLOT_BYTES,
        }
    }
}

/// An open transaction: the items recorded so far and which tiles already have their
/// before-state captured.
#[derive(Debug)]
pub(crate) struct Transaction {
    pub label: String,
    pub items: Vec<UndoItem>,
    open_layer_item: HashMap<LayerId, usize>,
    open_mask_item: Option<usize>,
    touched_layer: HashSet<(LayerId, TileCoord)>,
    touched_mask: HashSet<TileCoord>,
    /// Something was recorded that changes the layer stack (for the UI's layers panel).
    pub structure_changed: bool,
}

impl Transaction {
    pub fn new(label: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            items: Vec::new(),
            open_layer_item: HashMap::new(),
            open_mask_item: None,
            touched_layer: HashSet::new(),
            touched_mask: HashSet::new(),
            structure_changed: false,
        }
    }

    /// Records a whole-state item. Tile edits after it start fresh tile items, so that the swap
    /// order stays valid.
    pub fn push_whole(&mut self, item: UndoItem) {
        if matches!(item, UndoItem::Layers { .. } | UndoItem::CanvasSize { .. }) {
            self.structure_changed = true;
        }
        self.items.push(item);
        self.open_layer_item.clear();
        self.open_mask_item = None;
        self.touched_layer.clear();
        self.touched_mask.clear();
    }

    /// Captures `layer`'s tile at `coord` if this is the transaction's first write to it.
    pub fn record_layer_tile(&mut self, id: LayerId, pixels: &TiledImage<Rgba8>, coord: TileCoord) {
        if !self.touched_layer.insert((id, coord)) {
            return;
        }
        let before = pixels.tile(coord).cloned();
        let index = match self.open_layer_item.get(&id) {
            Some(&i) => i,
            None => {
                self.items.push(UndoItem::LayerTiles { id, tiles: Vec::new() });
                let i = self.items.len() - 1;
                self.open_layer_item.insert(id, i);
                i
            }
        };
        if let Some(UndoItem::LayerTiles { tiles, .. }) = self.items.get_mut(index) {
            tiles.push((coord, before));
        }
    }

    /// Captures the mask tile at `coord` if this is the transaction's first write to it.
    pub fn record_mask_tile(&mut self, mask: &TiledImage<Gray8>, coord: TileCoord) {
        if !self.touched_mask.insert(coord) {
            return;
        }
        let before = mask.tile(coord).cloned();
        let index = match self.open_mask_item {
            Some(i) => i,
            None => {
                self.items.push(UndoItem::MaskTiles { tiles: Vec::new() });
                let i = self.items.len() - 1;
                self.open_mask_item = Some(i);
                i
            }
        };
        if let Some(UndoItem::MaskTiles { tiles }) = self.items.get_mut(index) {
            tiles.push((coord, before));
        }
    }
}

/// One undo step.
#[derive(Debug)]
pub(crate) struct Step {
    /// Unique within the document's lifetime: the history position this step leads to.
    pub id: u64,
    pub label: String,
    pub items: Vec<UndoItem>,
    pub bytes: usize,
    pub structure_changed: bool,
}

/// Default history budget: 512 MiB of tiles.
pub const DEFAULT_HISTORY_CAP_BYTES: usize = 512 << 20;

#[derive(Debug)]
pub(crate) struct History {
    pub undo: VecDeque<Step>,
    pub redo: Vec<Step>,
    pub cap_bytes: usize,
    /// The position with nothing left to undo: the id of the newest step dropped by the cap, or
    /// a fresh id after the history was cleared.
    base_id: u64,
    next_id: u64,
}

impl Default for History {
    fn default() -> Self {
        Self {
            undo: VecDeque::new(),
            redo: Vec::new(),
            cap_bytes: DEFAULT_HISTORY_CAP_BYTES,
            base_id: 0,
            next_id: 1,
        }
    }
}

impl History {
    pub fn bytes(&self) -> usize {
        self.undo.iter().chain(self.redo.iter()).map(|s| s.bytes).sum()
    }

    /// Pushes a committed transaction, forgets the redo branch and enforces the cap.
    pub fn push(&mut self, txn: Transaction, live: &DocState) {
        let bytes = txn.items.iter().map(|i| i.bytes(live)).sum::<usize>() + txn.label.len();
        self.redo.clear();
        let id = self.next_id;
        self.next_id += 1;
        self.undo.push_back(Step {
            id,
            label: txn.label,
            items: txn.items,
            bytes,
            structure_changed: txn.structure_changed,
        });
        self.enforce_cap();
    }

    /// Drops the oldest steps until the history fits, always keeping the newest step so the
    /// last action can be undone even if it alone exceeds the cap.
    pub fn enforce_cap(&mut self) {
        let mut total = self.bytes();
        while total > self.cap_bytes && self.undo.len() > 1 {
            if let Some(old) = self.undo.pop_front() {
                total -= old.bytes;
                self.base_id = old.id;
            }
        }
    }

    /// Where the document stands in its history: the id of the newest step not undone.
    pub fn position(&self) -> u64 {
        self.undo.back().map_or(self.base_id, |s| s.id)
    }

    /// Forgets every step; the current state gets a position of its own.
    pub fn clear(&mut self) {
        self.undo.clear();
        self.redo.clear();
        self.base_id = self.next_id;
        self.next_id += 1;
    }
}
