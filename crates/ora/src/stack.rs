//! The plain types that mirror an .ora file.

use raster::{Gray8, Image, Rgba8};

/// One raster layer as the file stores it.
#[derive(Clone, Debug, PartialEq)]
pub struct OraLayer {
    pub name: String,
    /// Canvas position of the layer PNG's top-left corner (may be negative or past the canvas).
    pub x: i32,
    pub y: i32,
    /// 0..=1.
    pub opacity: f32,
    pub visible: bool,
    /// The OpenRaster `composite-op`, e.g. `svg:multiply`. Kept as written, so names we do not
    /// know survive a round trip; compositing treats unknown names as `svg:src-over`.
    pub composite_op: String,
    /// `pentimento:alpha-lock`: painting keeps the layer's alpha.
    pub alpha_lock: bool,
    /// OpenRaster `selected`: the active layer.
    pub selected: bool,
    /// `pentimento:layer-id`: the document's stable layer id, so lineage (records that name
    /// their parent layers) survives a save.
    pub layer_id: Option<u64>,
    /// The layer's generation record (`pentimento:record` → an entry of `records.json`). The
    /// format layer keeps it as JSON; the document defines its schema.
    pub record: Option<serde_json::Value>,
    /// Attributes without a namespace that we do not interpret (e.g. Krita's), written back as
    /// they were read.
    pub extra_attributes: Vec<(String, String)>,
    /// Straight-alpha RGBA8 pixels.
    pub pixels: Image<Rgba8>,
}

impl OraLayer {
    /// A visible, opaque `svg:src-over` layer at the origin.
    pub fn new(name: impl Into<String>, pixels: Image<Rgba8>) -> Self {
        Self {
            name: name.into(),
            x: 0,
            y: 0,
            opacity: 1.0,
            visible: true,
            composite_op: crate::DEFAULT_COMPOSITE_OP.to_owned(),
            alpha_lock: false,
            selected: false,
            layer_id: None,
            record: None,
            extra_attributes: Vec::new(),
            pixels,
        }
    }
}

/// One candidate of the batch tray (`pentimento/tray.json` plus one PNG under
/// `pentimento/tray/`): a generated image waiting to be applied. Not part of the composite, and
/// invisible to Krita or GIMP.
#[derive(Clone, Debug, PartialEq)]
pub struct OraTrayEntry {
    /// The layer name it gets when applied.
    pub name: String,
    /// Canvas position of the image's top-left corner (may be negative or past the canvas).
    pub x: i32,
    pub y: i32,
    /// Its generation record; JSON here, like [`OraLayer::record`].
    pub record: Option<serde_json::Value>,
    /// Straight-alpha RGBA8 pixels.
    pub pixels: Image<Rgba8>,
}

/// A whole .ora file: canvas size, layers bottom first, and our extras.
#[derive(Clone, Debug, PartialEq)]
pub struct OraStack {
    pub width: u32,
    pub height: u32,
    /// `layers[0]` is the bottom layer.
    pub layers: Vec<OraLayer>,
    /// The inpaint mask (canvas-sized, 255 = regenerate), `pentimento/mask.png`.
    pub mask: Option<Image<Gray8>>,
    /// The selection (canvas-sized, antialiased), `pentimento/selection.png`.
    pub selection: Option<Image<Gray8>>,
    /// The batch tray, in the order it is shown.
    pub tray: Vec<OraTrayEntry>,
    /// Other `pentimento/…` entries (e.g. written by a newer version), kept verbatim:
    /// `(entry name, bytes)`.
    pub extra_entries: Vec<(String, Vec<u8>)>,
    /// Nested stacks (groups) were flattened into plain layers on read; group opacity was
    /// multiplied into the layers and group blend modes were dropped.
    pub flattened_groups: bool,
}

impl OraStack {
    /// An empty canvas.
    pub fn new(width: u32, height: u32) -> Self {
        Self {
            width,
            height,
            layers: Vec::new(),
            mask: None,
            selection: None,
            tray: Vec::new(),
            extra_entries: Vec::new(),
            flattened_groups: false,
        }
    }
}
