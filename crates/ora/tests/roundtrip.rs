//! Write → read gives back identical pixels and attributes; the archive follows the spec.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a panic is a failed test"
)]

use std::io::{Cursor, Read};

use ora::{Limits, OraLayer, OraStack, OraTrayEntry, composite, entries};
use pentimento_ora as ora;
use raster::{Gray8, Image, Rgba8};

/// Deterministic pseudo-random pixels, including transparent pixels that still carry colour
/// (which a lossy writer would drop).
fn noise(width: u32, height: u32, seed: u32) -> Image<Rgba8> {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state
    };
    let pixels = (0..width * height)
        .map(|_| {
            let v = next().to_le_bytes();
            [v[0], v[1], v[2], if v[3] < 40 { 0 } else { v[3] }]
        })
        .collect();
    Image::from_pixels(width, height, pixels).unwrap()
}

fn sample_stack() -> OraStack {
    let mut stack = OraStack::new(64, 48);
    let mut background = OraLayer::new("Background", Image::filled(64, 48, [240, 230, 220, 255]));
    background.layer_id = Some(1);
    let mut sketch = OraLayer::new("sketch \"rough\" <1> & co", noise(40, 30, 7));
    sketch.x = -8;
    sketch.y = 30;
    sketch.opacity = 0.62;
    sketch.composite_op = "svg:multiply".into();
    sketch.alpha_lock = true;
    sketch.layer_id = Some(2);
    let mut generated = OraLayer::new("inpaint 1", noise(32, 32, 9));
    generated.x = 20;
    generated.y = 5;
    generated.composite_op = "svg:soft-light".into();
    generated.selected = true;
    generated.layer_id = Some(3);
    generated.record = Some(serde_json::json!({
        "prompt": "a castle, <lora:gothic:0.8>",
        "seed": 1234,
        "parents": [1, 2],
    }));
    let mut hidden = OraLayer::new("hidden", noise(5, 5, 3));
    hidden.visible = false;
    hidden.composite_op = "krita:unknown-op".into();
    hidden.extra_attributes = vec![("edit-locked".into(), "true".into())];
    stack.layers = vec![background, sketch, generated, hidden];
    let mask: Vec<Gray8> = (0..64 * 48).map(|i| (i % 256) as u8).collect();
    stack.mask = Some(Image::from_pixels(64, 48, mask).unwrap());
    stack.selection = Some(Image::filled(64, 48, 128));
    stack.tray = sample_tray();
    stack.extra_entries = vec![("pentimento/tray/future.json".into(), b"{\"v\":2}".to_vec())];
    stack
}

/// Three candidates: odd sizes, offsets off the canvas on every side, one without a record.
fn sample_tray() -> Vec<OraTrayEntry> {
    let record = |seed: u64| {
        serde_json::json!({
            "prompt": "a fox, <lora:ink:0.5>",
            "seed": seed,
            "strength": 0.75,
            "context_box": {"x": -3, "y": 2, "width": 33, "height": 17},
            "parent_layers": [1, 3],
            "extra": {"Hires upscale": "2"},
        })
    };
    vec![
        OraTrayEntry {
            name: "a fox · 1234".into(),
            x: -5,
            y: -9,
            record: Some(record(1234)),
            pixels: noise(33, 17, 21),
        },
        OraTrayEntry {
            name: "a fox · 1235".into(),
            x: 60,
            y: 47,
            record: Some(record(1235)),
            pixels: noise(1, 1, 22),
        },
        OraTrayEntry {
            name: "no record \"quoted\" <&>".into(),
            x: -100,
            y: 3,
            record: None,
            pixels: noise(7, 61, 23),
        },
    ]
}

#[test]
fn lossless_round_trip() {
    let stack = sample_stack();
    let bytes = stack.to_bytes().unwrap();
    let back = OraStack::from_bytes(&bytes, &Limits::default()).unwrap();
    assert_eq!(back, stack);
    // And again: writing what we read gives the same archive.
    assert_eq!(back.to_bytes().unwrap(), bytes);
}

#[test]
fn tray_round_trips_and_lies_under_pentimento() {
    let mut stack = OraStack::new(64, 48);
    stack.layers.push(OraLayer::new("bg", noise(64, 48, 1)));
    stack.tray = sample_tray();
    let bytes = stack.to_bytes().unwrap();
    let back = OraStack::from_bytes(&bytes, &Limits::default()).unwrap();
    assert_eq!(back.tray, stack.tray);
    assert!(back.extra_entries.is_empty(), "{:?}", back.extra_entries);
    // The tray is not part of the picture.
    assert_eq!(composite(&back), composite(&OraStack { tray: Vec::new(), ..stack.clone() }));

    let mut zip = zip::ZipArchive::new(Cursor::new(&bytes)).unwrap();
    let names: Vec<String> = zip.file_names().map(|n| n.unwrap().into_owned()).collect();
    for name in ["pentimento/tray/0000.png", "pentimento/tray/0001.png", "pentimento/tray/0002.png"]
    {
        assert!(names.iter().any(|n| n == name), "{name} missing from {names:?}");
        assert_eq!(zip.by_name(name).unwrap().compression(), zip::CompressionMethod::Stored);
    }
    let mut json = String::new();
    zip.by_name(entries::TRAY).unwrap().read_to_string(&mut json).unwrap();
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["version"], 1);
    assert_eq!(json["entries"][0]["src"], "pentimento/tray/0000.png");
    assert_eq!(json["entries"][0]["x"], -5);
    assert_eq!(json["entries"][1]["record"]["seed"], 1235);
    assert!(json["entries"][2].get("record").is_none());
}

#[test]
fn without_a_tray_no_tray_entry_and_an_empty_tray() {
    let mut stack = OraStack::new(8, 8);
    stack.layers.push(OraLayer::new("bg", noise(8, 8, 1)));
    let bytes = stack.to_bytes().unwrap();
    let zip = zip::ZipArchive::new(Cursor::new(&bytes)).unwrap();
    assert!(zip.file_names().all(|n| !n.unwrap().starts_with("pentimento/tray")));
    let back = OraStack::from_bytes(&bytes, &Limits::default()).unwrap();
    assert!(back.tray.is_empty());
    assert_eq!(back, stack);
}

#[test]
fn archive_layout_follows_the_spec() {
    let stack = sample_stack();
    let bytes = stack.to_bytes().unwrap();
    // `mimetype` is the first entry, stored, with its content at offset 38 (no extra field),
    // which is how `file(1)` recognises OpenRaster.
    assert_eq!(&bytes[0..4], b"PK\x03\x04");
    assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), 0, "mimetype must be stored");
    assert_eq!(&bytes[30..38], b"mimetype");
    assert_eq!(&bytes[38..54], b"image/openraster");

    let mut zip = zip::ZipArchive::new(Cursor::new(&bytes)).unwrap();
    let names: Vec<String> = zip.file_names().map(|n| n.unwrap().into_owned()).collect();
    for required in [entries::STACK, entries::MERGED, entries::THUMBNAIL, entries::RECORDS] {
        assert!(names.iter().any(|n| n == required), "{required} missing from {names:?}");
    }
    let mut xml = String::new();
    zip.by_name(entries::STACK).unwrap().read_to_string(&mut xml).unwrap();
    assert!(xml.contains(r#"xmlns:pentimento="https://pentimento.app/ora/1""#), "{xml}");
    assert!(xml.contains(r#"pentimento:alpha-lock="true""#));
    assert!(xml.contains(r#"visibility="hidden""#));
    // Top layer first in stack.xml.
    assert!(xml.find("name=\"hidden\"").unwrap() < xml.find("name=\"Background\"").unwrap());

    let mut merged = Vec::new();
    zip.by_name(entries::MERGED).unwrap().read_to_end(&mut merged).unwrap();
    let merged = ora::read_merged_image(Cursor::new(&bytes), &Limits::default()).unwrap();
    assert_eq!(merged, composite(&stack));
}

#[test]
fn thumbnail_fits_256_and_keeps_aspect() {
    let mut stack = OraStack::new(1000, 400);
    stack.layers.push(OraLayer::new("a", Image::filled(1000, 400, [1, 2, 3, 255])));
    let bytes = stack.to_bytes().unwrap();
    let mut zip = zip::ZipArchive::new(Cursor::new(&bytes)).unwrap();
    let mut png = Vec::new();
    zip.by_name(entries::THUMBNAIL).unwrap().read_to_end(&mut png).unwrap();
    let decoder = png::Decoder::new(Cursor::new(png));
    let reader = decoder.read_info().unwrap();
    assert_eq!((reader.info().width, reader.info().height), (256, 102));
}

#[test]
fn save_and_open_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("project.ora");
    let stack = sample_stack();
    stack.save(&path).unwrap();
    // Saving again replaces the file atomically and leaves no temp files behind.
    stack.save(&path).unwrap();
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    assert_eq!(OraStack::open(&path).unwrap(), stack);
}

#[test]
fn composite_follows_order_offsets_opacity_and_visibility() {
    let mut stack = OraStack::new(4, 1);
    stack.layers.push(OraLayer::new("bg", Image::filled(4, 1, [200, 100, 0, 255])));
    let mut half = OraLayer::new("half", Image::filled(2, 1, [0, 0, 200, 255]));
    half.x = 2;
    half.opacity = 0.5;
    stack.layers.push(half);
    let mut hidden = OraLayer::new("hidden", Image::filled(4, 1, [9, 9, 9, 255]));
    hidden.visible = false;
    stack.layers.push(hidden);
    let out = composite(&stack);
    assert_eq!(out.get(0, 0), Some([200, 100, 0, 255]));
    assert_eq!(out.get(3, 0), Some([100, 50, 100, 255]));
}
