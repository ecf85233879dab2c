//! OpenRaster (.ora) project files: read and write layered documents with our records.
//!
//! An .ora file is a zip archive: `mimetype` first and stored (content `image/openraster`),
//! `stack.xml` describing the layers, one PNG per layer under `data/`, `mergedimage.png` (the
//! composite) and `Thumbnails/thumbnail.png` (at most 256 px on its longer side). Krita, GIMP and
//! MyPaint read and write it.
//!
//! What only Pentimento understands travels in ways other readers ignore: attributes in our own
//! namespace ([`PENTIMENTO_NS`], prefix `pentimento:`) on `<layer>` elements, and extra zip
//! entries under `pentimento/` (the inpaint mask, the selection, the layers' generation
//! records, the batch tray).
//!
//! [`open_document`] and [`save_document`] convert to and from [`doc::Document`]. Underneath,
//! this crate is a *format layer*: [`OraStack`] and [`OraLayer`] are plain types that mirror
//! the file. Reading is bounded by [`Limits`], so a hostile file yields an [`OraError`] rather
//! than a panic or an unbounded allocation. Saving ([`OraStack::save`]) is atomic.
//!
//! Layer order: `layers[0]` is the **bottom** layer (compositing order), whereas `stack.xml`
//! lists the top layer first; the reader and writer convert.

mod composite;
mod document;
mod error;
mod limits;
mod png_io;
mod read;
mod save;
mod stack;
mod thumbnail;
mod write;
mod xml;

pub use composite::{blend_mode, composite};
pub use document::{
    document_from_stack, open_document, save_document, stack_from_document, tray_from_ora,
    tray_to_ora,
};
pub use error::OraError;
pub use limits::Limits;
pub use read::read_merged_image;
pub use save::write_atomically;
pub use stack::{OraLayer, OraStack, OraTrayEntry};

/// The XML namespace of our attributes in `stack.xml`.
pub const PENTIMENTO_NS: &str = "https://pentimento.app/ora/1";
/// The content of the `mimetype` entry.
pub const ORA_MIMETYPE: &str = "image/openraster";
/// The composite operation OpenRaster readers fall back to for names they do not know.
pub const DEFAULT_COMPOSITE_OP: &str = "svg:src-over";
/// The longer side of `Thumbnails/thumbnail.png` is at most this, as the spec requires.
pub const THUMBNAIL_MAX_PX: u32 = 256;

/// Zip entry names of our extras.
pub mod entries {
    pub const MIMETYPE: &str = "mimetype";
    pub const STACK: &str = "stack.xml";
    pub const MERGED: &str = "mergedimage.png";
    pub const THUMBNAIL: &str = "Thumbnails/thumbnail.png";
    /// The inpaint mask, 8-bit grey, canvas-sized.
    pub const MASK: &str = "pentimento/mask.png";
    /// The selection, 8-bit grey, canvas-sized.
    pub const SELECTION: &str = "pentimento/selection.png";
    /// `{"version": 1, "records": {"<id>": <record>}}`; layers point at ids with
    /// `pentimento:record`.
    pub const RECORDS: &str = "pentimento/records.json";
    /// The batch tray: `{"version": 1, "entries": [{"name", "x", "y", "src", "record"}]}`,
    /// each `src` a PNG (written as `pentimento/tray/0000.png`, …). Only present when the tray
    /// is not empty.
    pub const TRAY: &str = "pentimento/tray.json";
    /// Where the writer puts the tray's PNGs.
    pub const TRAY_DIR: &str = "pentimento/tray/";
    /// Entries under this prefix that we do not know are kept verbatim (forward compatibility).
    pub const PENTIMENTO_PREFIX: &str = "pentimento/";
}
