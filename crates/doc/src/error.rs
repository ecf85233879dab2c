//! Typed errors for everything a user (or a file) can get wrong.

use raster::Rect;

use crate::LayerId;

/// Why a document operation was refused. The document is unchanged when one is returned.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DocError {
    #[error("no layer with id {0}")]
    NoSuchLayer(LayerId),
    #[error("there is no active layer")]
    NoActiveLayer,
    #[error("layer id {0} is used twice")]
    DuplicateLayerId(LayerId),
    #[error("the document must keep at least one layer")]
    LastLayer,
    #[error("layer {0} is the bottom layer: there is nothing to merge it into")]
    NothingBelow(LayerId),
    #[error("layer index {index} is out of range (the stack has {len} layers)")]
    IndexOutOfRange { index: usize, len: usize },
    #[error("invalid canvas size {width}×{height} (each side must be 1..={max})")]
    InvalidSize { width: u32, height: u32, max: u32 },
    #[error("image is {got_width}×{got_height} but {want_width}×{want_height} is required")]
    SizeMismatch { got_width: u32, got_height: u32, want_width: u32, want_height: u32 },
    #[error("crop rectangle {0:?} does not overlap the canvas")]
    EmptyCrop(Rect),
    #[error("nothing is selected")]
    EmptySelection,
    #[error("point ({x}, {y}) is outside the canvas")]
    OutsideCanvas { x: i32, y: i32 },
    #[error("invalid parameter {name}: {reason}")]
    InvalidParameter { name: &'static str, reason: String },
    #[error("the transform is degenerate (it squashes the layer to a line or a point)")]
    DegenerateTransform,
    #[error("the transformed layer would be {width}×{height}, larger than {max} px a side")]
    TransformTooLarge { width: u64, height: u64, max: u32 },
    #[error("a transaction ({0}) is already open")]
    TransactionOpen(String),
    #[error("no transaction is open")]
    NoTransaction,
    #[error("no stroke is in progress")]
    NoStroke,
}
