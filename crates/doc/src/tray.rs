//! The batch tray: generated candidates waiting to be applied. The tray is not part of the undo
//! history (applying a candidate is the undoable step), but it is part of the project: it is
//! saved in the .ora file, so a batch survives closing the program.

use raster::{Image, Rect, Rgba8};

use crate::GenerationRecord;

/// One generated candidate, ready to become a layer exactly as stored here.
#[derive(Clone, Debug, PartialEq)]
pub struct TrayCandidate {
    /// The layer name it gets when applied ("a red fox · 1234").
    pub name: String,
    /// Canvas position of the image's top-left corner.
    pub x: i32,
    pub y: i32,
    /// Straight-alpha pixels of the result layer (alpha = the inpaint overlay mask; opaque for
    /// txt2img/img2img).
    pub image: Image<Rgba8>,
    /// How it was made (seed, parameters, box, parent layers).
    pub record: GenerationRecord,
}

impl TrayCandidate {
    /// The canvas rect the candidate covers.
    pub fn rect(&self) -> Rect {
        Rect::new(self.x, self.y, self.image.width(), self.image.height())
    }
}
