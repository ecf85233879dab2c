//! Reading .ora files within [`Limits`].

use std::collections::BTreeMap;
use std::io::{Cursor, Read, Seek};
use std::path::Path;

use rayon::prelude::*;
use zip::ZipArchive;

use crate::png_io::{self, check_size};
use crate::xml::{self, LayerEntry};
use crate::{Limits, ORA_MIMETYPE, OraError, OraLayer, OraStack, OraTrayEntry, entries};

/// `pentimento/records.json`.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct RecordsFile {
    pub version: u32,
    pub records: BTreeMap<String, serde_json::Value>,
}

pub(crate) const RECORDS_VERSION: u32 = 1;

/// `pentimento/tray.json`.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct TrayFile {
    pub version: u64,
    pub entries: Vec<TrayFileEntry>,
}

/// One candidate in `tray.json`; its pixels are the PNG entry `src`.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct TrayFileEntry {
    pub name: String,
    pub x: i32,
    pub y: i32,
    pub src: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<serde_json::Value>,
}

/// Only the version, read first: a newer version may have changed everything else.
#[derive(serde::Deserialize)]
struct VersionProbe {
    version: u64,
}

pub(crate) const TRAY_VERSION: u64 = 1;

/// Rejects entry paths that could name something outside the archive if anyone extracted it:
/// absolute paths, `..` components, backslashes, drive letters, empty names.
pub(crate) fn check_entry_path(path: &str) -> Result<(), OraError> {
    let unsafe_path = path.is_empty()
        || path.starts_with('/')
        || path.contains('\\')
        || path.contains('\0')
        || path.split('/').any(|part| part == ".." || part == ".")
        || path.as_bytes().get(1) == Some(&b':');
    if unsafe_path { Err(OraError::UnsafePath(path.to_owned())) } else { Ok(()) }
}

struct Archive<R: Read + Seek> {
    zip: ZipArchive<R>,
}

impl<R: Read + Seek> Archive<R> {
    fn has(&self, name: &str) -> bool {
        self.zip.index_for_name(name).is_some()
    }

    /// The entry's bytes, at most `limit` of them (declared sizes are not trusted: the read
    /// itself is capped).
    fn read(&mut self, name: &str, limit: u64) -> Result<Vec<u8>, OraError> {
        let too_large = || OraError::EntryTooLarge { name: name.to_owned(), limit_bytes: limit };
        let entry = match self.zip.by_name(name) {
            Ok(entry) => entry,
            Err(zip::result::ZipError::FileNotFound) => {
                return Err(OraError::MissingEntry(name.to_owned()));
            }
            Err(e) => return Err(e.into()),
        };
        if entry.size() > limit {
            return Err(too_large());
        }
        let capacity = usize::try_from(entry.size()).unwrap_or(0).min(64 << 20);
        let mut bytes = Vec::with_capacity(capacity);
        entry
            .take(limit.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|source| OraError::CorruptEntry { name: name.to_owned(), source })?;
        if bytes.len() as u64 > limit {
            return Err(too_large());
        }
        Ok(bytes)
    }
}

impl OraStack {
    /// Opens an .ora file with the default [`Limits`].
    pub fn open(path: &Path) -> Result<Self, OraError> {
        Self::open_with_limits(path, &Limits::default())
    }

    pub fn open_with_limits(path: &Path, limits: &Limits) -> Result<Self, OraError> {
        let file = std::fs::File::open(path).map_err(|e| OraError::file(path, e))?;
        Self::read(std::io::BufReader::new(file), limits)
    }

    /// Reads an .ora file held in memory.
    pub fn from_bytes(bytes: &[u8], limits: &Limits) -> Result<Self, OraError> {
        Self::read(Cursor::new(bytes), limits)
    }

    /// Reads an .ora archive. Layers come back bottom first; nested stacks are flattened (see
    /// [`OraStack::flattened_groups`]).
    pub fn read<R: Read + Seek>(reader: R, limits: &Limits) -> Result<Self, OraError> {
        let zip = ZipArchive::new(reader)?;
        if zip.len() > limits.max_entries {
            return Err(OraError::TooManyEntries { count: zip.len(), limit: limits.max_entries });
        }
        let mut archive = Archive { zip };

        if archive.has(entries::MIMETYPE) {
            let mimetype = archive.read(entries::MIMETYPE, 256)?;
            if mimetype.trim_ascii() != ORA_MIMETYPE.as_bytes() {
                return Err(OraError::NotOpenRaster(format!(
                    "mimetype is `{}`, not `{ORA_MIMETYPE}`",
                    String::from_utf8_lossy(&mimetype)
                )));
            }
        }
        let xml_bytes = archive.read(entries::STACK, limits.max_xml_bytes)?;
        let parsed = xml::parse(&xml_bytes, limits.max_layers)?;
        check_size("the canvas", u64::from(parsed.width), u64::from(parsed.height), limits)?;

        let records = if archive.has(entries::RECORDS) {
            let bytes = archive.read(entries::RECORDS, limits.max_json_bytes)?;
            let file: RecordsFile =
                serde_json::from_slice(&bytes).map_err(|e| OraError::Records(e.to_string()))?;
            if file.version > RECORDS_VERSION {
                return Err(OraError::Records(format!(
                    "version {} is newer than this program understands ({RECORDS_VERSION})",
                    file.version
                )));
            }
            file.records
        } else {
            BTreeMap::new()
        };

        // Compressed layer PNGs first (bounded by the file's own size), then their declared
        // sizes against the limits, and only then the pixel buffers, decoded in parallel.
        let mut sources = Vec::with_capacity(parsed.layers.len());
        for entry in &parsed.layers {
            check_entry_path(&entry.src)?;
            sources.push(archive.read(&entry.src, limits.max_png_entry_bytes)?);
        }
        let tray_entries = read_tray_file(&mut archive, limits)?;
        let mut tray_sources = Vec::with_capacity(tray_entries.len());
        for entry in &tray_entries {
            check_entry_path(&entry.src)?;
            if !archive.has(&entry.src) {
                return Err(OraError::MissingTrayImage {
                    candidate: entry.name.clone(),
                    src: entry.src.clone(),
                });
            }
            tray_sources.push(archive.read(&entry.src, limits.max_png_entry_bytes)?);
        }
        let mask_bytes = read_optional(&mut archive, entries::MASK, limits)?;
        let selection_bytes = read_optional(&mut archive, entries::SELECTION, limits)?;
        let tray_names: Vec<&str> = tray_entries.iter().map(|e| e.src.as_str()).collect();
        let extra_entries = read_extra_entries(&mut archive, limits, &tray_names)?;

        let mut total_px: u64 = 0;
        for (entry, bytes) in parsed.layers.iter().zip(&sources) {
            let (w, h) = png_io::dimensions(&entry.src, bytes)?;
            check_size(&entry.src, w.into(), h.into(), limits)?;
            total_px = total_px.saturating_add(u64::from(w) * u64::from(h));
        }
        for (entry, bytes) in tray_entries.iter().zip(&tray_sources) {
            let (w, h) = png_io::dimensions(&entry.src, bytes)?;
            check_size(&entry.src, w.into(), h.into(), limits)?;
            total_px = total_px.saturating_add(u64::from(w) * u64::from(h));
        }
        for bytes in [&mask_bytes, &selection_bytes].into_iter().flatten() {
            let (w, h) = png_io::dimensions("mask", bytes)?;
            total_px = total_px.saturating_add(u64::from(w) * u64::from(h));
        }
        if total_px > limits.max_total_px {
            return Err(OraError::TotalPixelsTooLarge { total_px, limit_px: limits.max_total_px });
        }

        let pixels: Vec<_> = parsed
            .layers
            .par_iter()
            .zip(sources.par_iter())
            .map(|(entry, bytes)| png_io::decode_rgba(&entry.src, bytes, limits))
            .collect::<Result<_, _>>()?;

        let mut layers = Vec::with_capacity(parsed.layers.len());
        for (entry, pixels) in parsed.layers.into_iter().zip(pixels).rev() {
            layers.push(into_layer(entry, pixels, &records)?);
        }
        let tray_pixels: Vec<_> = tray_entries
            .par_iter()
            .zip(tray_sources.par_iter())
            .map(|(entry, bytes)| png_io::decode_rgba(&entry.src, bytes, limits))
            .collect::<Result<_, _>>()?;
        let tray = tray_entries
            .into_iter()
            .zip(tray_pixels)
            .map(|(entry, pixels)| OraTrayEntry {
                name: entry.name,
                x: entry.x,
                y: entry.y,
                record: entry.record,
                pixels,
            })
            .collect();

        let canvas = (parsed.width, parsed.height);
        let mask = decode_canvas_gray(entries::MASK, mask_bytes, canvas, limits)?;
        let selection = decode_canvas_gray(entries::SELECTION, selection_bytes, canvas, limits)?;
        Ok(OraStack {
            width: parsed.width,
            height: parsed.height,
            layers,
            mask,
            selection,
            tray,
            extra_entries,
            flattened_groups: parsed.flattened_groups,
        })
    }
}

fn into_layer(
    entry: LayerEntry,
    pixels: raster::Image<raster::Rgba8>,
    records: &BTreeMap<String, serde_json::Value>,
) -> Result<OraLayer, OraError> {
    let record = match &entry.record_id {
        None => None,
        Some(id) => Some(records.get(id).cloned().ok_or_else(|| OraError::MissingRecord {
            layer: entry.name.clone(),
            id: id.clone(),
        })?),
    };
    Ok(OraLayer {
        name: entry.name,
        x: entry.x,
        y: entry.y,
        opacity: entry.opacity,
        visible: entry.visible,
        composite_op: entry.composite_op,
        alpha_lock: entry.alpha_lock,
        selected: entry.selected,
        layer_id: entry.layer_id,
        record,
        extra_attributes: entry.extra_attributes,
        pixels,
    })
}

fn read_optional<R: Read + Seek>(
    archive: &mut Archive<R>,
    name: &str,
    limits: &Limits,
) -> Result<Option<Vec<u8>>, OraError> {
    if archive.has(name) {
        archive.read(name, limits.max_png_entry_bytes).map(Some)
    } else {
        Ok(None)
    }
}

fn decode_canvas_gray(
    name: &str,
    bytes: Option<Vec<u8>>,
    (width, height): (u32, u32),
    limits: &Limits,
) -> Result<Option<raster::Image<raster::Gray8>>, OraError> {
    let Some(bytes) = bytes else { return Ok(None) };
    let image = png_io::decode_gray(name, &bytes, limits)?;
    if (image.width(), image.height()) != (width, height) {
        return Err(OraError::SizeMismatch {
            what: name.to_owned(),
            width: image.width(),
            height: image.height(),
            canvas_width: width,
            canvas_height: height,
        });
    }
    Ok(Some(image))
}

/// The tray's entries (empty without `tray.json`), their count within the limit. The version is
/// checked before the rest is parsed, so a newer file says so instead of "invalid".
fn read_tray_file<R: Read + Seek>(
    archive: &mut Archive<R>,
    limits: &Limits,
) -> Result<Vec<TrayFileEntry>, OraError> {
    if !archive.has(entries::TRAY) {
        return Ok(Vec::new());
    }
    let bytes = archive.read(entries::TRAY, limits.max_json_bytes)?;
    let probe: VersionProbe =
        serde_json::from_slice(&bytes).map_err(|e| OraError::Tray(e.to_string()))?;
    if probe.version > TRAY_VERSION {
        return Err(OraError::NewerVersion {
            entry: entries::TRAY.to_owned(),
            version: probe.version,
            supported: TRAY_VERSION,
        });
    }
    let file: TrayFile =
        serde_json::from_slice(&bytes).map_err(|e| OraError::Tray(e.to_string()))?;
    if file.entries.len() > limits.max_tray_entries {
        return Err(OraError::TooManyTrayEntries {
            count: file.entries.len(),
            limit: limits.max_tray_entries,
        });
    }
    Ok(file.entries)
}

/// `pentimento/…` entries we do not interpret, kept for a newer version of ourselves. `also_known`
/// are further entries read elsewhere (the tray's PNGs).
fn read_extra_entries<R: Read + Seek>(
    archive: &mut Archive<R>,
    limits: &Limits,
    also_known: &[&str],
) -> Result<Vec<(String, Vec<u8>)>, OraError> {
    let known = [entries::MASK, entries::SELECTION, entries::RECORDS, entries::TRAY];
    let also_known: std::collections::HashSet<&str> = also_known.iter().copied().collect();
    let names: Vec<String> = archive
        .zip
        .file_names()
        .filter_map(Result::ok)
        .map(|n| n.into_owned())
        .filter(|n| n.starts_with(entries::PENTIMENTO_PREFIX) && !n.ends_with('/'))
        .filter(|n| !known.contains(&n.as_str()) && !also_known.contains(n.as_str()))
        .collect();
    let mut extras = Vec::with_capacity(names.len());
    for name in names {
        check_entry_path(&name)?;
        let bytes = archive.read(&name, limits.max_json_bytes)?;
        extras.push((name, bytes));
    }
    extras.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(extras)
}

/// Reads only `mergedimage.png`, e.g. for a preview without decoding every layer.
pub fn read_merged_image<R: Read + Seek>(
    reader: R,
    limits: &Limits,
) -> Result<raster::Image<raster::Rgba8>, OraError> {
    let zip = ZipArchive::new(reader)?;
    let mut archive = Archive { zip };
    let bytes = archive.read(entries::MERGED, limits.max_png_entry_bytes)?;
    png_io::decode_rgba(entries::MERGED, &bytes, limits)
}
