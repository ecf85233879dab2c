//! `pentimento info FILE`: JSON on stdout.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use doc::infotext::Infotext;
use image::ImageDecoder;
use serde::Serialize;

use super::formats::{self, FileKind};

/// The PNG text chunk (and EXIF field) where A1111 stores its infotext.
const PARAMETERS_KEY: &str = "parameters";

#[derive(Serialize)]
struct OraInfo {
    format: &'static str,
    width: u32,
    height: u32,
    /// `layers[0]` is the bottom layer.
    layer_order: &'static str,
    layers: Vec<LayerInfo>,
    has_inpaint_mask: bool,
    has_selection: bool,
    /// Groups (nested stacks) were flattened into plain layers when reading.
    flattened_groups: bool,
}

#[derive(Serialize)]
struct LayerInfo {
    name: String,
    x: i32,
    y: i32,
    width: u32,
    height: u32,
    opacity: f32,
    visible: bool,
    composite_op: String,
    /// Our blend mode for `composite_op` (`normal` for names we do not know, as the spec asks).
    blend_mode: raster::BlendMode,
    alpha_lock: bool,
    selected: bool,
    layer_id: Option<u64>,
    record: Option<serde_json::Value>,
}

#[derive(Serialize)]
struct ImageInfo {
    format: &'static str,
    width: u32,
    height: u32,
    /// A1111 generation parameters, parsed; `null` when the image has none.
    parameters: Option<Infotext>,
    /// The inpaint settings those parameters describe (keys A1111 leaves out at their A1111
    /// defaults); `null` when the image is not an inpaint result.
    inpaint: Option<doc::InpaintParams>,
    /// The raw `parameters` text.
    parameters_text: Option<String>,
    /// Every PNG text chunk (tEXt, zTXt, iTXt) by keyword, in file order.
    text: Vec<(String, String)>,
}

pub fn run(path: &Path) -> anyhow::Result<()> {
    let kind = formats::detect(path)?;
    // Serialised straight from the structs so fields keep their declared order.
    match kind {
        FileKind::OpenRaster => print_json(&ora_info(path)?),
        FileKind::Png => print_json(&png_info(path)?),
        FileKind::Jpeg | FileKind::WebP => print_json(&other_image_info(path, kind)?),
        FileKind::Safetensors | FileKind::Pickle => print_json(&model_info(path, kind)?),
    }
}

fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut stdout, value)?;
    writeln!(stdout)?;
    Ok(())
}

fn ora_info(path: &Path) -> anyhow::Result<OraInfo> {
    let stack =
        ora::OraStack::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let layers = stack
        .layers
        .into_iter()
        .map(|l| LayerInfo {
            width: l.pixels.width(),
            height: l.pixels.height(),
            blend_mode: ora::blend_mode(&l.composite_op),
            name: l.name,
            x: l.x,
            y: l.y,
            opacity: l.opacity,
            visible: l.visible,
            composite_op: l.composite_op,
            alpha_lock: l.alpha_lock,
            selected: l.selected,
            layer_id: l.layer_id,
            record: l.record,
        })
        .collect();
    Ok(OraInfo {
        format: FileKind::OpenRaster.name(),
        width: stack.width,
        height: stack.height,
        layer_order: "bottom-to-top",
        layers,
        has_inpaint_mask: stack.mask.is_some(),
        has_selection: stack.selection.is_some(),
        flattened_groups: stack.flattened_groups,
    })
}

/// Size and text chunks from the PNG header, without decoding pixels. Text written after the
/// image data is not seen (A1111 and Pillow write it before).
fn png_info(path: &Path) -> anyhow::Result<ImageInfo> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let decoder = png::Decoder::new(std::io::BufReader::new(file));
    let reader = decoder.read_info().with_context(|| format!("{}: invalid PNG", path.display()))?;
    let info = reader.info();
    let mut text = Vec::new();
    for chunk in &info.uncompressed_latin1_text {
        text.push((chunk.keyword.clone(), chunk.text.clone()));
    }
    for chunk in &info.compressed_latin1_text {
        let mut chunk = chunk.clone();
        // A chunk that does not decompress (corrupt or over the decoder's limit) is skipped.
        if chunk.decompress_text().is_ok()
            && let Ok(value) = chunk.get_text()
        {
            text.push((chunk.keyword.clone(), value));
        }
    }
    for chunk in &info.utf8_text {
        let mut chunk = chunk.clone();
        if chunk.decompress_text().is_ok()
            && let Ok(value) = chunk.get_text()
        {
            text.push((chunk.keyword.clone(), value));
        }
    }
    let parameters_text = text.iter().find(|(k, _)| k == PARAMETERS_KEY).map(|(_, v)| v.clone());
    let parameters = parameters_text.as_deref().map(Infotext::parse);
    Ok(ImageInfo {
        format: FileKind::Png.name(),
        width: info.width,
        height: info.height,
        inpaint: parameters.as_ref().and_then(Infotext::inpaint_params),
        parameters,
        parameters_text,
        text,
    })
}

/// JPEG and WebP: size, and the parameters A1111 keeps in EXIF `UserComment`.
fn other_image_info(path: &Path, kind: FileKind) -> anyhow::Result<ImageInfo> {
    let invalid = || format!("{}: invalid {} file", path.display(), kind.name());
    let mut decoder = image::ImageReader::open(path)
        .and_then(|r| r.with_guessed_format())
        .with_context(|| format!("cannot open {}", path.display()))?
        .into_decoder()
        .with_context(invalid)?;
    let (width, height) = decoder.dimensions();
    let exif = decoder.exif_metadata().with_context(invalid)?;
    let parameters_text =
        exif.as_deref().and_then(super::exif::user_comment).filter(|t| !t.is_empty());
    let parameters = parameters_text.as_deref().map(Infotext::parse);
    Ok(ImageInfo {
        format: kind.name(),
        width,
        height,
        inpaint: parameters.as_ref().and_then(Infotext::inpaint_params),
        parameters,
        parameters_text,
        text: Vec::new(),
    })
}

/// Extension point for checkpoints, LoRAs and VAEs: the engine's model inspection plugs in
/// here and returns its JSON.
fn model_info(path: &Path, kind: FileKind) -> anyhow::Result<serde_json::Value> {
    match kind {
        FileKind::Pickle => bail!(
            "{}: pickled PyTorch files are never loaded; convert it to .safetensors",
            path.display()
        ),
        _ => {
            // What the file is, read from its header (kind, base architecture, tensor count,
            // embedding vectors); checkpoints also get their full inferred configuration.
            let entry = sd::library::Library::inspect_file(path);
            if let sd::library::EntryStatus::Unreadable(reason) = &entry.status {
                bail!("{}: {reason}", path.display());
            }
            let mut json = serde_json::to_value(&entry)?;
            if entry.kind == sd::library::ModelKind::Checkpoint {
                let checkpoint = sd::Checkpoint::open(path)?;
                if let Some(object) = json.as_object_mut() {
                    object.insert("config".into(), serde_json::to_value(checkpoint.config())?);
                }
            }
            Ok(json)
        }
    }
}
