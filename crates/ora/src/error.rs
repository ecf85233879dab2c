//! Every way reading or writing an .ora file can fail, as values the UI can show.

use std::path::PathBuf;

/// An error reading or writing an OpenRaster file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OraError {
    #[error("cannot access {path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("input/output error: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a readable zip archive (truncated or corrupt?): {0}")]
    Zip(#[from] zip::result::ZipError),
    #[error("zip entry `{name}` is corrupt: {source}")]
    CorruptEntry {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("not an OpenRaster file: {0}")]
    NotOpenRaster(String),
    #[error("the file has no `{0}` entry")]
    MissingEntry(String),
    #[error("stack.xml is malformed: {0}")]
    Xml(String),
    #[error("invalid value `{value}` for attribute `{attribute}` of <{element}>")]
    InvalidAttribute { element: &'static str, attribute: String, value: String },
    #[error("unsafe entry path `{0}` (absolute, `..` or backslash)")]
    UnsafePath(String),
    #[error("{what} is {width}×{height} px, over the limit ({limit})")]
    ImageTooLarge { what: String, width: u64, height: u64, limit: String },
    #[error("the layers hold {total_px} px in all, over the limit of {limit_px} px")]
    TotalPixelsTooLarge { total_px: u64, limit_px: u64 },
    #[error("the archive has {count} entries, over the limit of {limit}")]
    TooManyEntries { count: usize, limit: usize },
    #[error("the file has {count} layers, over the limit of {limit}")]
    TooManyLayers { count: usize, limit: usize },
    #[error("entry `{name}` is larger than the limit of {limit_bytes} bytes")]
    EntryTooLarge { name: String, limit_bytes: u64 },
    #[error("`{name}` is not a valid PNG: {message}")]
    Png { name: String, message: String },
    #[error("cannot encode `{name}` as PNG: {message}")]
    PngEncode { name: String, message: String },
    #[error("pentimento/records.json is invalid: {0}")]
    Records(String),
    #[error("pentimento/tray.json is invalid: {0}")]
    Tray(String),
    #[error(
        "`{entry}` is version {version}, newer than this program understands ({supported}); \
         open the file with a newer Pentimento"
    )]
    NewerVersion { entry: String, version: u64, supported: u64 },
    #[error("the batch tray holds {count} candidates, over the limit of {limit}")]
    TooManyTrayEntries { count: usize, limit: usize },
    #[error("tray candidate `{candidate}` points at `{src}`, which the file does not hold")]
    MissingTrayImage { candidate: String, src: String },
    #[error("layer `{layer}` points at record `{id}`, which records.json does not hold")]
    MissingRecord { layer: String, id: String },
    #[error("{what} is {width}×{height} px but the canvas is {canvas_width}×{canvas_height} px")]
    SizeMismatch { what: String, width: u32, height: u32, canvas_width: u32, canvas_height: u32 },
    #[error("the file does not make a valid document: {0}")]
    Document(#[from] doc::DocError),
    #[error("cannot write: {0}")]
    InvalidStack(String),
}

impl OraError {
    pub(crate) fn file(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::File { path: path.into(), source }
    }
}
