//! Raster layers and their stable identities.

use raster::blend::BlendMode;
use raster::{Rect, Rgba8, TiledImage};
use serde::{Deserialize, Serialize};

use crate::GenerationRecord;

/// A layer's identity: stable across edits, reordering, undo and save/load (files store it), so
/// generation records can name their parent layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LayerId(u64);

impl LayerId {
    /// An id read from a file; the document checks ids are unique when it is built.
    pub const fn from_raw(raw: u64) -> Self {
        Self(raw)
    }

    pub const fn raw(self) -> u64 {
        self.0
    }
}

impl std::fmt::Display for LayerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// The settable properties of a layer (everything but its pixels, offset and record).
#[derive(Clone, Debug, PartialEq)]
pub struct LayerProps {
    pub name: String,
    pub visible: bool,
    /// 0.0..=1.0.
    pub opacity: f32,
    pub blend_mode: BlendMode,
    /// Painting changes colour only where the layer already has alpha, never alpha itself.
    pub alpha_lock: bool,
}

impl Default for LayerProps {
    fn default() -> Self {
        Self {
            name: String::new(),
            visible: true,
            opacity: 1.0,
            blend_mode: BlendMode::default(),
            alpha_lock: false,
        }
    }
}

/// One raster layer: straight-alpha pixels placed on the canvas at an offset. A layer may be
/// smaller or larger than the canvas and may hang over its edges.
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    id: LayerId,
    pub props: LayerProps,
    /// Canvas position of the layer's pixel (0, 0).
    pub offset_x: i32,
    pub offset_y: i32,
    pub pixels: TiledImage<Rgba8>,
    pub record: Option<GenerationRecord>,
}

impl Layer {
    /// A layer with the given id (a file reader uses the id it read; see
    /// [`crate::Document::from_parts`]).
    pub fn new(id: LayerId, props: LayerProps, pixels: TiledImage<Rgba8>) -> Self {
        Self { id, props, offset_x: 0, offset_y: 0, pixels, record: None }
    }

    pub fn id(&self) -> LayerId {
        self.id
    }

    pub fn name(&self) -> &str {
        &self.props.name
    }

    /// The layer's pixel rectangle in canvas coordinates.
    pub fn canvas_bounds(&self) -> Rect {
        Rect::new(self.offset_x, self.offset_y, self.pixels.width(), self.pixels.height())
    }

    /// Canvas rect of the layer's allocated tiles (a cheap, coarse content bound).
    pub fn allocated_canvas_bounds(&self) -> Rect {
        self.pixels.allocated_bounds().translated(self.offset_x, self.offset_y)
    }

    pub(crate) fn set_id(&mut self, id: LayerId) {
        self.id = id;
    }
}
