//! OpenRaster files for the editor: document parts to and from the `ora` crate's stack.

use std::path::Path;

use doc::{Document, DocumentParts, Layer, LayerId, LayerProps, TrayCandidate};
use raster::{Image, Rgba8, TiledImage};

use super::bridge::EditorError;

impl From<ora::OraError> for EditorError {
    fn from(e: ora::OraError) -> Self {
        EditorError::Ora(e.to_string())
    }
}

/// Reads an .ora project: the document and its batch tray (empty in files without one).
pub fn read_ora(path: &Path) -> Result<(Document, Vec<TrayCandidate>), EditorError> {
    let mut stack = ora::OraStack::open(path)?;
    let tray = ora::tray_from_ora(std::mem::take(&mut stack.tray))?;
    Ok((document_from_stack(stack)?, tray))
}

/// Writes an .ora project (atomically) with `merged` as its composite and the batch tray.
pub fn write_ora(
    parts: DocumentParts,
    tray: &[TrayCandidate],
    merged: &Image<Rgba8>,
    path: &Path,
) -> Result<(), EditorError> {
    let mut stack = stack_from_parts(parts);
    stack.tray = ora::tray_to_ora(tray)?;
    stack.save_with_merged(merged, path)?;
    Ok(())
}

pub fn stack_from_parts(parts: DocumentParts) -> ora::OraStack {
    let mut stack = ora::OraStack::new(parts.width, parts.height);
    for l in &parts.layers {
        let mut ol = ora::OraLayer::new(l.props.name.clone(), l.pixels.to_image());
        ol.x = l.offset_x;
        ol.y = l.offset_y;
        ol.opacity = l.props.opacity;
        ol.visible = l.props.visible;
        ol.composite_op = l.props.blend_mode.ora_name().to_owned();
        ol.alpha_lock = l.props.alpha_lock;
        ol.selected = parts.active == Some(l.id());
        ol.layer_id = Some(l.id().raw());
        ol.record = l.record.as_ref().and_then(|r| serde_json::to_value(r).ok());
        stack.layers.push(ol);
    }
    stack.mask = parts
        .mask
        .as_ref()
        .filter(|m| m.allocated_tiles().next().is_some())
        .map(TiledImage::to_image);
    stack.selection = parts.selection.as_ref().map(TiledImage::to_image);
    stack
}

pub fn document_from_stack(stack: ora::OraStack) -> Result<Document, EditorError> {
    let mut used = std::collections::HashSet::new();
    let mut next_free = stack.layers.iter().filter_map(|l| l.layer_id).max().unwrap_or(0) + 1;
    let mut active = None;
    let mut layers = Vec::with_capacity(stack.layers.len());
    for ol in stack.layers {
        // Files from other programs carry no ids; duplicated ids get fresh ones.
        let raw = match ol.layer_id {
            Some(id) if used.insert(id) => id,
            _ => {
                let id = next_free;
                next_free += 1;
                used.insert(id);
                id
            }
        };
        let props = LayerProps {
            name: ol.name,
            visible: ol.visible,
            opacity: ol.opacity.clamp(0.0, 1.0),
            blend_mode: ora::blend_mode(&ol.composite_op),
            alpha_lock: ol.alpha_lock,
        };
        let mut layer =
            Layer::new(LayerId::from_raw(raw), props, TiledImage::from_image(&ol.pixels));
        layer.offset_x = ol.x;
        layer.offset_y = ol.y;
        layer.record = ol.record.and_then(|v| serde_json::from_value(v).ok());
        if ol.selected {
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
