//! Bounds on what a reader accepts, checked against declared sizes before anything is allocated.

/// What [`crate::OraStack::read`] accepts. The defaults allow 32768 px sides, 16384² px layers
/// and 1 Gpx (4 GiB decoded) in all, far beyond any real painting, while keeping a hostile file
/// from exhausting memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The longest side of the canvas or any layer.
    pub max_side_px: u32,
    /// Pixels in one layer (or mask, selection, merged image).
    pub max_image_px: u64,
    /// Pixels of all decoded images together.
    pub max_total_px: u64,
    pub max_layers: usize,
    /// Candidates in the batch tray (`pentimento/tray.json`).
    pub max_tray_entries: usize,
    pub max_entries: usize,
    /// Decompressed bytes of `stack.xml`.
    pub max_xml_bytes: u64,
    /// Decompressed bytes of `pentimento/records.json`, `pentimento/tray.json` and of each unknown `pentimento/` entry.
    pub max_json_bytes: u64,
    /// Bytes of one PNG entry as stored in the zip (its pixels are bounded separately).
    pub max_png_entry_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_side_px: 32_768,
            max_image_px: 16_384 * 16_384,
            max_total_px: 1 << 30,
            max_layers: 4_096,
            max_tray_entries: 4_096,
            max_entries: 16_384,
            max_xml_bytes: 16 << 20,
            max_json_bytes: 256 << 20,
            max_png_entry_bytes: 2 << 30,
        }
    }
}
