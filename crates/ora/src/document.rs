//! Conversion between [`doc::Document`] and the format layer's [`OraStack`].

use std::collections::HashSet;
use std::path::Path;

use doc::{Document, DocumentParts, GenerationRecord, Layer, LayerId, LayerProps, TrayCandidate};
use raster::TiledImage;

use crate::{OraError, OraLayer, OraStack, OraTrayEntry, blend_mode};

/// The stack to save for `document`: layers bottom first with their ids, records as JSON, the
/// active layer marked `selected`, the mask (when painted) and the selection.
///
/// Each layer is written at its full size (not cropped to content), so sizes and offsets come
/// back exactly.
pub fn stack_from_document(document: &Document) -> Result<OraStack, OraError> {
    let active = document.active_layer_id();
    let mut stack = OraStack::new(document.width(), document.height());
    for layer in document.layers() {
        let record = match &layer.record {
            None => None,
            Some(r) => Some(serde_json::to_value(r).map_err(|e| OraError::Records(e.to_string()))?),
        };
        stack.layers.push(OraLayer {
            name: layer.props.name.clone(),
            x: layer.offset_x,
            y: layer.offset_y,
            opacity: layer.props.opacity,
            visible: layer.props.visible,
            composite_op: layer.props.blend_mode.ora_name().to_owned(),
            alpha_lock: layer.props.alpha_lock,
            selected: Some(layer.id()) == active,
            layer_id: Some(layer.id().raw()),
            record,
            extra_attributes: Vec::new(),
            pixels: layer.pixels.to_image(),
        });
    }
    let mask = document.mask();
    if !mask.allocated_bounds().is_empty() {
        stack.mask = Some(mask.to_image());
    }
    stack.selection = document.selection().map(TiledImage::to_image);
    Ok(stack)
}

/// Builds a document (with an empty history) from a stack read from any .ora file. Layers
/// without a `pentimento:layer-id` (files from Krita or GIMP), or whose id repeats, get fresh
/// ids; composite-op names we do not know become `Normal`.
pub fn document_from_stack(stack: OraStack) -> Result<Document, OraError> {
    let mut used: HashSet<u64> = stack.layers.iter().filter_map(|l| l.layer_id).collect();
    let mut next_free = used.iter().max().map_or(1, |m| m.saturating_add(1));
    let mut seen = HashSet::new();
    let mut active = None;
    let mut layers = Vec::with_capacity(stack.layers.len());
    for ora_layer in stack.layers {
        let id = match ora_layer.layer_id {
            Some(id) if seen.insert(id) => id,
            _ => {
                while used.contains(&next_free) {
                    next_free = next_free.saturating_add(1);
                }
                used.insert(next_free);
                seen.insert(next_free);
                next_free
            }
        };
        let props = LayerProps {
            blend_mode: blend_mode(&ora_layer.composite_op),
            name: ora_layer.name,
            visible: ora_layer.visible,
            opacity: ora_layer.opacity,
            alpha_lock: ora_layer.alpha_lock,
        };
        let mut layer =
            Layer::new(LayerId::from_raw(id), props, TiledImage::from_image(&ora_layer.pixels));
        layer.offset_x = ora_layer.x;
        layer.offset_y = ora_layer.y;
        layer.record = match ora_layer.record {
            None => None,
            Some(json) => Some(
                serde_json::from_value::<GenerationRecord>(json)
                    .map_err(|e| OraError::Records(e.to_string()))?,
            ),
        };
        if ora_layer.selected {
            active = Some(layer.id());
        }
        layers.push(layer);
    }
    Ok(Document::from_parts(DocumentParts {
        width: stack.width,
        height: stack.height,
        layers,
        active,
        mask: stack.mask.as_ref().map(TiledImage::from_image),
        selection: stack.selection.as_ref().map(TiledImage::from_image),
    })?)
}

/// Opens any .ora file as a document.
pub fn open_document(path: &Path) -> Result<Document, OraError> {
    document_from_stack(OraStack::open(path)?)
}

/// Saves `document` atomically; `mergedimage.png` is the document's own composite.
pub fn save_document(document: &Document, path: &Path) -> Result<(), OraError> {
    let stack = stack_from_document(document)?;
    stack.save_with_merged(&document.render_composite(), path)
}

/// The batch tray as the file stores it. [`Document`] has no tray (it is not undoable state),
/// so callers that keep one put this in [`OraStack::tray`] themselves.
pub fn tray_to_ora(tray: &[TrayCandidate]) -> Result<Vec<OraTrayEntry>, OraError> {
    tray.iter()
        .map(|candidate| {
            let record = serde_json::to_value(&candidate.record)
                .map_err(|e| OraError::Tray(format!("`{}`: {e}", candidate.name)))?;
            Ok(OraTrayEntry {
                name: candidate.name.clone(),
                x: candidate.x,
                y: candidate.y,
                record: Some(record),
                pixels: candidate.image.clone(),
            })
        })
        .collect()
}

/// The batch tray read from a file. Every candidate must carry its generation record: it is
/// what "Same seed" and the applied layer's lineage are made from, and we always write one.
pub fn tray_from_ora(tray: Vec<OraTrayEntry>) -> Result<Vec<TrayCandidate>, OraError> {
    tray.into_iter()
        .map(|entry| {
            let Some(json) = entry.record else {
                return Err(OraError::Tray(format!(
                    "candidate `{}` has no generation record",
                    entry.name
                )));
            };
            let record = serde_json::from_value::<GenerationRecord>(json).map_err(|e| {
                OraError::Tray(format!("record of candidate `{}`: {e}", entry.name))
            })?;
            Ok(TrayCandidate {
                name: entry.name,
                x: entry.x,
                y: entry.y,
                image: entry.pixels,
                record,
            })
        })
        .collect()
}
