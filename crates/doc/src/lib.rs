//! The layered document: layers, inpaint mask, selection, commands, transactions, undo,
//! generation records, and the cached composite.
//!
//! Every edit is a [`Command`] (or a brush stroke) applied inside a transaction; one transaction
//! is one undo step. Each call returns a [`Change`] naming the canvas rects to re-upload and the
//! new revision. Pixels are straight-alpha RGBA8 in copy-on-write tiles (see `raster`), so the
//! history stores only the tiles an edit touched.

mod adjust;
mod brush;
mod change;
mod command;
mod composite;
mod document;
mod error;
mod fill;
mod history;
pub mod infotext;
mod layer;
mod layer_ops;
mod ops;
mod record;
mod select;
mod transform;
mod tray;

pub use brush::{Brush, PaintTarget, StrokePoint};
pub use change::Change;
pub use command::{Affine, Anchor, Command, FillSource, SelectOp, SelectShape};
pub use document::{Document, DocumentParts, MAX_CANVAS_SIDE};
pub use error::DocError;
pub use history::DEFAULT_HISTORY_CAP_BYTES;
pub use layer::{Layer, LayerId, LayerProps};
pub use raster::blend::BlendMode;
pub use record::{
    GenerationMode, GenerationRecord, InpaintArea, InpaintParams, LoraRef, MaskedContent, ModelRef,
};
pub use select::Clipboard;
pub use tray::TrayCandidate;
