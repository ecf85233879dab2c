//! Writing .ora archives.

use std::collections::BTreeMap;
use std::io::{BufWriter, Cursor, Seek, Write};
use std::path::Path;

use raster::{Image, Rgba8};
use rayon::prelude::*;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use crate::read::{
    RECORDS_VERSION, RecordsFile, TRAY_VERSION, TrayFile, TrayFileEntry, check_entry_path,
};
use crate::xml::{self, LayerEntry};
use crate::{ORA_MIMETYPE, OraError, OraStack, composite, entries, png_io, thumbnail};

impl OraStack {
    /// Writes the archive, compositing `mergedimage.png` and the thumbnail with
    /// [`crate::composite`].
    pub fn write<W: Write + Seek>(&self, writer: W) -> Result<W, OraError> {
        let merged = composite(self);
        self.write_with_merged(&merged, writer)
    }

    /// Writes the archive with a composite the caller already has (e.g. the document's cached
    /// one); it must be canvas-sized.
    pub fn write_with_merged<W: Write + Seek>(
        &self,
        merged: &Image<Rgba8>,
        writer: W,
    ) -> Result<W, OraError> {
        self.validate(merged)?;

        // Layers are numbered bottom first; stack.xml lists them top first.
        let sources: Vec<String> =
            (0..self.layers.len()).map(|i| format!("data/layer{i:04}.png")).collect();
        let encoded: Vec<Vec<u8>> = self
            .layers
            .par_iter()
            .zip(sources.par_iter())
            .map(|(layer, src)| png_io::encode_rgba(src, &layer.pixels))
            .collect::<Result<_, _>>()?;
        let tray_sources = tray_sources(self.tray.len());
        let tray_encoded: Vec<Vec<u8>> = self
            .tray
            .par_iter()
            .zip(tray_sources.par_iter())
            .map(|(entry, src)| png_io::encode_rgba(src, &entry.pixels))
            .collect::<Result<_, _>>()?;

        let mut records = BTreeMap::new();
        let mut xml_layers = Vec::with_capacity(self.layers.len());
        for (i, (layer, src)) in self.layers.iter().zip(&sources).enumerate().rev() {
            let record_id = layer.record.as_ref().map(|record| {
                let id = format!("r{i}");
                records.insert(id.clone(), record.clone());
                id
            });
            xml_layers.push(LayerEntry {
                name: layer.name.clone(),
                src: src.clone(),
                x: layer.x,
                y: layer.y,
                opacity: layer.opacity,
                visible: layer.visible,
                composite_op: layer.composite_op.clone(),
                selected: layer.selected,
                alpha_lock: layer.alpha_lock,
                layer_id: layer.layer_id,
                record_id,
                extra_attributes: layer.extra_attributes.clone(),
            });
        }
        let stack_xml = xml::write(self.width, self.height, &xml_layers)?;

        let stored = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
        let deflated = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
        let mut zip = ZipWriter::new(writer);
        // The spec: `mimetype` first, stored, so `file` and friends can sniff the type.
        zip.start_file(entries::MIMETYPE, stored)?;
        zip.write_all(ORA_MIMETYPE.as_bytes())?;
        zip.start_file(entries::STACK, deflated)?;
        zip.write_all(&stack_xml)?;
        // PNGs are already compressed: storing them saves time and costs nothing.
        for (src, png) in sources.iter().zip(&encoded) {
            zip.start_file(src.as_str(), stored)?;
            zip.write_all(png)?;
        }
        zip.start_file(entries::MERGED, stored)?;
        zip.write_all(&png_io::encode_rgba(entries::MERGED, merged)?)?;
        zip.start_file(entries::THUMBNAIL, stored)?;
        let thumb = thumbnail::fit(merged, crate::THUMBNAIL_MAX_PX);
        zip.write_all(&png_io::encode_rgba(entries::THUMBNAIL, &thumb)?)?;

        if let Some(mask) = &self.mask {
            zip.start_file(entries::MASK, stored)?;
            zip.write_all(&png_io::encode_gray(entries::MASK, mask)?)?;
        }
        if let Some(selection) = &self.selection {
            zip.start_file(entries::SELECTION, stored)?;
            zip.write_all(&png_io::encode_gray(entries::SELECTION, selection)?)?;
        }
        if !records.is_empty() {
            let file = RecordsFile { version: RECORDS_VERSION, records };
            let json =
                serde_json::to_vec_pretty(&file).map_err(|e| OraError::Records(e.to_string()))?;
            zip.start_file(entries::RECORDS, deflated)?;
            zip.write_all(&json)?;
        }
        if !self.tray.is_empty() {
            let file = TrayFile {
                version: TRAY_VERSION,
                entries: self
                    .tray
                    .iter()
                    .zip(&tray_sources)
                    .map(|(entry, src)| TrayFileEntry {
                        name: entry.name.clone(),
                        x: entry.x,
                        y: entry.y,
                        src: src.clone(),
                        record: entry.record.clone(),
                    })
                    .collect(),
            };
            let json =
                serde_json::to_vec_pretty(&file).map_err(|e| OraError::Tray(e.to_string()))?;
            zip.start_file(entries::TRAY, deflated)?;
            zip.write_all(&json)?;
            for (src, png) in tray_sources.iter().zip(&tray_encoded) {
                zip.start_file(src.as_str(), stored)?;
                zip.write_all(png)?;
            }
        }
        for (name, bytes) in &self.extra_entries {
            zip.start_file(name.as_str(), deflated)?;
            zip.write_all(bytes)?;
        }
        Ok(zip.finish()?)
    }

    /// The archive as bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, OraError> {
        Ok(self.write(Cursor::new(Vec::new()))?.into_inner())
    }

    /// Saves atomically: a crash or error mid-save leaves any existing file untouched.
    pub fn save(&self, path: &Path) -> Result<(), OraError> {
        let merged = composite(self);
        self.save_with_merged(&merged, path)
    }

    /// [`OraStack::save`] with a composite the caller already has.
    pub fn save_with_merged(&self, merged: &Image<Rgba8>, path: &Path) -> Result<(), OraError> {
        crate::write_atomically(path, |file| {
            let mut buffered = self.write_with_merged(merged, BufWriter::new(file))?;
            buffered.flush()?;
            Ok(())
        })
    }

    fn validate(&self, merged: &Image<Rgba8>) -> Result<(), OraError> {
        if self.width == 0 || self.height == 0 {
            return Err(OraError::InvalidStack(format!(
                "the canvas is {}×{} px; it must be at least 1×1",
                self.width, self.height
            )));
        }
        let canvas = (self.width, self.height);
        let sized = [
            ("the merged image", Some((merged.width(), merged.height()))),
            ("the inpaint mask", self.mask.as_ref().map(|m| (m.width(), m.height()))),
            ("the selection", self.selection.as_ref().map(|s| (s.width(), s.height()))),
        ];
        for (what, size) in sized {
            if let Some((width, height)) = size
                && (width, height) != canvas
            {
                return Err(OraError::SizeMismatch {
                    what: what.to_owned(),
                    width,
                    height,
                    canvas_width: self.width,
                    canvas_height: self.height,
                });
            }
        }
        let known = [entries::MASK, entries::SELECTION, entries::RECORDS, entries::TRAY];
        let tray_sources = tray_sources(self.tray.len());
        for (name, _) in &self.extra_entries {
            check_entry_path(name)?;
            if !name.starts_with(entries::PENTIMENTO_PREFIX)
                || known.contains(&name.as_str())
                || tray_sources.contains(name)
            {
                return Err(OraError::InvalidStack(format!(
                    "extra entry `{name}` must be under `{}` and not one of ours",
                    entries::PENTIMENTO_PREFIX
                )));
            }
        }
        Ok(())
    }
}

/// The PNG entries of a tray of `len` candidates, in order.
fn tray_sources(len: usize) -> Vec<String> {
    (0..len).map(|i| format!("{}{i:04}.png", entries::TRAY_DIR)).collect()
}
