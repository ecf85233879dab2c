//! Corrupt and hostile files give typed errors: never a panic, never an unbounded allocation.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a panic is a failed test"
)]

use std::io::{Cursor, Write};

use ora::{Limits, OraError, OraLayer, OraStack, OraTrayEntry};
use pentimento_ora as ora;
use raster::Image;
use zip::write::SimpleFileOptions;

fn valid_file() -> Vec<u8> {
    let mut stack = OraStack::new(16, 16);
    let mut a = OraLayer::new("a", Image::filled(16, 16, [10, 20, 30, 255]));
    a.record = Some(serde_json::json!({"seed": 1}));
    let mut b = OraLayer::new("b", Image::filled(4, 4, [200, 0, 0, 128]));
    b.x = 3;
    stack.layers = vec![a, b];
    stack.mask = Some(Image::filled(16, 16, 255));
    stack.tray = vec![OraTrayEntry {
        name: "t".into(),
        x: -2,
        y: 5,
        record: Some(serde_json::json!({"seed": 2})),
        pixels: Image::filled(3, 5, [1, 2, 3, 4]),
    }];
    stack.to_bytes().unwrap()
}

/// A zip with the given entries, in order (`mimetype` stored, the rest deflated).
fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, bytes) in entries {
        let method = if *name == "mimetype" {
            zip::CompressionMethod::Stored
        } else {
            zip::CompressionMethod::Deflated
        };
        zip.start_file(*name, SimpleFileOptions::default().compression_method(method)).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

fn png_rgba(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(&vec![0; (width * height * 4) as usize]).unwrap();
    writer.finish().unwrap();
    out
}

/// A tiny valid PNG whose IHDR is rewritten to declare `width × height` (CRC fixed up), so a
/// naive decoder would allocate for the declared size.
fn png_declaring(width: u32, height: u32) -> Vec<u8> {
    let mut png = png_rgba(1, 1);
    // Signature (8) + length (4) + "IHDR" (4), then width and height.
    png[16..20].copy_from_slice(&width.to_be_bytes());
    png[20..24].copy_from_slice(&height.to_be_bytes());
    let crc = crc32fast::hash(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

fn stack_xml(width: u32, height: u32, src: &str) -> String {
    format!(
        r#"<image w="{width}" h="{height}"><stack><layer name="l" src="{src}"/></stack></image>"#
    )
}

fn read(bytes: &[u8]) -> Result<OraStack, OraError> {
    OraStack::from_bytes(bytes, &Limits::default())
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = valid_file();
    for len in (0..bytes.len()).step_by(7) {
        assert!(read(&bytes[..len]).is_err(), "truncated at {len} of {} read fine", bytes.len());
    }
    assert!(matches!(read(&bytes[..bytes.len() / 2]), Err(OraError::Zip(_))));
}

#[test]
fn random_corruption_never_panics() {
    let bytes = valid_file();
    let mut state = 0x9e37_79b9_u32;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state as usize
    };
    for _ in 0..3000 {
        let mut corrupt = bytes.clone();
        for _ in 0..1 + next() % 4 {
            let i = next() % corrupt.len();
            corrupt[i] = next() as u8;
        }
        let _ = read(&corrupt);
    }
}

#[test]
fn not_a_zip() {
    assert!(matches!(read(b"definitely not a zip file"), Err(OraError::Zip(_))));
    assert!(matches!(read(b""), Err(OraError::Zip(_))));
}

#[test]
fn wrong_mimetype() {
    let bytes = zip_of(&[("mimetype", b"image/png"), ("stack.xml", b"<image w='1' h='1'/>")]);
    assert!(matches!(read(&bytes), Err(OraError::NotOpenRaster(_))));
}

#[test]
fn missing_entries() {
    let bytes = zip_of(&[("mimetype", b"image/openraster")]);
    assert!(matches!(read(&bytes), Err(OraError::MissingEntry(n)) if n == "stack.xml"));
    let xml = stack_xml(4, 4, "data/nope.png");
    let bytes = zip_of(&[("mimetype", b"image/openraster"), ("stack.xml", xml.as_bytes())]);
    assert!(matches!(read(&bytes), Err(OraError::MissingEntry(n)) if n == "data/nope.png"));
}

#[test]
fn bad_xml() {
    let bytes = zip_of(&[("mimetype", b"image/openraster"), ("stack.xml", b"<image w=\"4\" h=")]);
    let error = read(&bytes).unwrap_err();
    assert!(matches!(error, OraError::Xml(_)), "{error:?}");
    assert!(error.to_string().starts_with("stack.xml is malformed"));
}

#[test]
fn zip_slip_paths_are_refused() {
    for src in ["../evil.png", "/etc/passwd", "data/../../x.png", "C:/x.png", "data\\x.png"] {
        let png = png_rgba(1, 1);
        let xml = stack_xml(4, 4, src);
        let bytes = zip_of(&[
            ("mimetype", b"image/openraster"),
            ("stack.xml", xml.as_bytes()),
            (src, &png),
        ]);
        assert!(matches!(read(&bytes), Err(OraError::UnsafePath(p)) if p == src), "{src}");
    }
    let bytes = zip_of(&[
        ("mimetype", b"image/openraster"),
        ("stack.xml", b"<image w='1' h='1'><stack/></image>"),
        ("pentimento/../../escape.json", b"{}"),
    ]);
    assert!(matches!(read(&bytes), Err(OraError::UnsafePath(_))));
}

#[test]
fn huge_declared_canvas() {
    let xml = "<image w=\"100000\" h=\"100000\"><stack/></image>";
    let bytes = zip_of(&[("mimetype", b"image/openraster"), ("stack.xml", xml.as_bytes())]);
    let error = read(&bytes).unwrap_err();
    assert!(matches!(error, OraError::ImageTooLarge { .. }), "{error:?}");
}

#[test]
fn huge_declared_layer_png() {
    let xml = stack_xml(64, 64, "data/a.png");
    let png = png_declaring(100_000, 100_000);
    let bytes = zip_of(&[
        ("mimetype", b"image/openraster"),
        ("stack.xml", xml.as_bytes()),
        ("data/a.png", &png),
    ]);
    let error = read(&bytes).unwrap_err();
    assert!(matches!(error, OraError::ImageTooLarge { width: 100_000, .. }), "{error:?}");
    // Within the side limit but over the pixel limit.
    let png = png_declaring(30_000, 30_000);
    let bytes = zip_of(&[
        ("mimetype", b"image/openraster"),
        ("stack.xml", xml.as_bytes()),
        ("data/a.png", &png),
    ]);
    assert!(matches!(read(&bytes), Err(OraError::ImageTooLarge { .. })));
}

#[test]
fn png_decompression_bomb_is_refused_by_its_header() {
    // 8192×8192 RGBA of zeros: 256 MiB decoded from a few hundred KiB compressed.
    let bomb = png_rgba(8192, 8192);
    assert!(bomb.len() < 2 << 20);
    let xml = format!(
        r#"<image w="64" h="64"><stack>{}</stack></image>"#,
        r#"<layer src="data/a.png"/>"#.repeat(20)
    );
    let bytes = zip_of(&[
        ("mimetype", b"image/openraster"),
        ("stack.xml", xml.as_bytes()),
        ("data/a.png", &bomb),
    ]);
    // Twenty references to one bomb: 1.3 Gpx in all, refused before any pixel is decoded.
    let error = read(&bytes).unwrap_err();
    assert!(matches!(error, OraError::TotalPixelsTooLarge { .. }), "{error:?}");
    // A tighter per-image limit refuses even one.
    let limits = Limits { max_image_px: 4096 * 4096, ..Limits::default() };
    let xml = stack_xml(64, 64, "data/a.png");
    let bytes = zip_of(&[
        ("mimetype", b"image/openraster"),
        ("stack.xml", xml.as_bytes()),
        ("data/a.png", &bomb),
    ]);
    assert!(matches!(OraStack::from_bytes(&bytes, &limits), Err(OraError::ImageTooLarge { .. })));
}

#[test]
fn zip_bomb_entry_is_capped() {
    // 32 MiB of spaces deflate to ~32 KiB; stack.xml may decompress to at most 16 MiB.
    let padding = vec![b' '; 32 << 20];
    let bytes = zip_of(&[("mimetype", b"image/openraster"), ("stack.xml", &padding)]);
    assert!(bytes.len() < 1 << 20);
    assert!(matches!(read(&bytes), Err(OraError::EntryTooLarge { .. })));
}

#[test]
fn huge_entry_count() {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let stored = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for i in 0..20_000 {
        zip.start_file(format!("x/{i}"), stored).unwrap();
    }
    let bytes = zip.finish().unwrap().into_inner();
    assert!(matches!(read(&bytes), Err(OraError::TooManyEntries { count: 20_000, .. })));
}

#[test]
fn too_many_layers() {
    let limits = Limits { max_layers: 3, ..Limits::default() };
    let xml = format!(
        r#"<image w="4" h="4"><stack>{}</stack></image>"#,
        r#"<layer src="data/a.png"/>"#.repeat(4)
    );
    let bytes = zip_of(&[("mimetype", b"image/openraster"), ("stack.xml", xml.as_bytes())]);
    assert!(matches!(
        OraStack::from_bytes(&bytes, &limits),
        Err(OraError::TooManyLayers { limit: 3, .. })
    ));
}

#[test]
fn corrupt_png_and_mask_of_wrong_size() {
    let xml = stack_xml(4, 4, "data/a.png");
    let bytes = zip_of(&[
        ("mimetype", b"image/openraster"),
        ("stack.xml", xml.as_bytes()),
        ("data/a.png", b"\x89PNG\r\n\x1a\nnot really"),
    ]);
    assert!(matches!(read(&bytes), Err(OraError::Png { .. })));
    let png = png_rgba(2, 2);
    let mask = png_rgba(3, 3);
    let bytes = zip_of(&[
        ("mimetype", b"image/openraster"),
        ("stack.xml", xml.as_bytes()),
        ("data/a.png", &png),
        ("pentimento/mask.png", &mask),
    ]);
    assert!(matches!(read(&bytes), Err(OraError::SizeMismatch { width: 3, .. })));
}

#[test]
fn records_errors() {
    let png = png_rgba(2, 2);
    let xml = r#"<image w="4" h="4" xmlns:pentimento="https://pentimento.app/ora/1"><stack>
        <layer src="data/a.png" pentimento:record="r9"/></stack></image>"#;
    let base = [
        ("mimetype", &b"image/openraster"[..]),
        ("stack.xml", xml.as_bytes()),
        ("data/a.png", &png),
    ];
    let bytes = zip_of(&base);
    assert!(matches!(read(&bytes), Err(OraError::MissingRecord { .. })));
    let mut with_bad_json = base.to_vec();
    with_bad_json.push(("pentimento/records.json", b"{not json"));
    assert!(matches!(read(&zip_of(&with_bad_json)), Err(OraError::Records(_))));
    let mut newer = base.to_vec();
    newer.push(("pentimento/records.json", br#"{"version": 99, "records": {}}"#));
    assert!(matches!(read(&zip_of(&newer)), Err(OraError::Records(_))));
}

#[test]
fn writer_refuses_inconsistent_stacks() {
    let mut stack = OraStack::new(4, 4);
    stack.mask = Some(Image::new(5, 4));
    assert!(matches!(stack.to_bytes(), Err(OraError::SizeMismatch { .. })));
    let stack = OraStack::new(0, 4);
    assert!(matches!(stack.to_bytes(), Err(OraError::InvalidStack(_))));
    let mut stack = OraStack::new(4, 4);
    stack.extra_entries.push(("data/evil.png".into(), vec![]));
    assert!(matches!(stack.to_bytes(), Err(OraError::InvalidStack(_))));
}

/// A valid one-layer file plus `tray.json` and the given extra entries.
fn with_tray(tray_json: &str, extra: &[(&str, &[u8])]) -> Vec<u8> {
    let png = png_rgba(2, 2);
    let xml = stack_xml(4, 4, "data/a.png");
    let mut entries: Vec<(&str, &[u8])> = vec![
        ("mimetype", b"image/openraster"),
        ("stack.xml", xml.as_bytes()),
        ("data/a.png", &png),
        ("pentimento/tray.json", tray_json.as_bytes()),
    ];
    entries.extend_from_slice(extra);
    zip_of(&entries)
}

fn tray_json(src: &str) -> String {
    serde_json::json!({"version": 1, "entries": [{"name": "c", "x": -1, "y": 0, "src": src}]})
        .to_string()
}

#[test]
fn tray_json_over_the_size_limit() {
    let png = png_rgba(1, 1);
    let padded = format!("{}{}", tray_json("pentimento/tray/0000.png"), " ".repeat(4096));
    let bytes = with_tray(&padded, &[("pentimento/tray/0000.png", &png)]);
    let limits = Limits { max_json_bytes: 1024, ..Limits::default() };
    let error = OraStack::from_bytes(&bytes, &limits).unwrap_err();
    assert!(
        matches!(&error, OraError::EntryTooLarge { name, limit_bytes: 1024 } if name == "pentimento/tray.json"),
        "{error:?}"
    );
    assert_eq!(read(&bytes).unwrap().tray.len(), 1);
}

#[test]
fn tray_src_outside_the_archive_is_refused() {
    let png = png_rgba(1, 1);
    for src in ["pentimento/../../evil.png", "../evil.png", "/etc/passwd", "pentimento\\x.png"] {
        let bytes = with_tray(&tray_json(src), &[(src, &png)]);
        let error = read(&bytes).unwrap_err();
        assert!(matches!(&error, OraError::UnsafePath(_)), "{src}: {error:?}");
    }
}

#[test]
fn tray_src_missing_from_the_archive() {
    let bytes = with_tray(&tray_json("pentimento/tray/0007.png"), &[]);
    let error = read(&bytes).unwrap_err();
    assert!(
        matches!(&error, OraError::MissingTrayImage { candidate, src }
            if candidate == "c" && src == "pentimento/tray/0007.png"),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "tray candidate `c` points at `pentimento/tray/0007.png`, which the file does not hold"
    );
}

#[test]
fn tray_png_declaring_a_huge_size() {
    let src = "pentimento/tray/0000.png";
    let bytes = with_tray(&tray_json(src), &[(src, &png_declaring(100_000, 100_000))]);
    let error = read(&bytes).unwrap_err();
    assert!(matches!(error, OraError::ImageTooLarge { width: 100_000, .. }), "{error:?}");
    // Each candidate is small, but together they are over the total: refused before decoding.
    let bomb = png_rgba(8192, 8192);
    let entry = format!(r#"{{"name": "c", "x": 0, "y": 0, "src": "{src}"}}"#);
    let json = format!(r#"{{"version": 1, "entries": [{}]}}"#, vec![entry; 20].join(","));
    let bytes = with_tray(&json, &[(src, &bomb)]);
    let error = read(&bytes).unwrap_err();
    assert!(matches!(error, OraError::TotalPixelsTooLarge { .. }), "{error:?}");
}

#[test]
fn tray_of_a_newer_version() {
    // Version 2 may have changed everything else; the version alone decides.
    let bytes = with_tray(r#"{"version": 2, "candidates": "whatever"}"#, &[]);
    let error = read(&bytes).unwrap_err();
    assert!(
        matches!(&error, OraError::NewerVersion { entry, version: 2, supported: 1 }
            if entry == "pentimento/tray.json"),
        "{error:?}"
    );
    assert!(error.to_string().contains("newer than this program understands"), "{error}");
}

#[test]
fn tray_json_malformed_or_too_long() {
    for json in ["{not json", r#"{"entries": []}"#, r#"{"version": 1, "entries": [{"name": 3}]}"#] {
        let error = read(&with_tray(json, &[])).unwrap_err();
        assert!(matches!(error, OraError::Tray(_)), "{json}: {error:?}");
    }
    let src = "pentimento/tray/0000.png";
    let png = png_rgba(1, 1);
    let entry = format!(r#"{{"name": "c", "x": 0, "y": 0, "src": "{src}"}}"#);
    let json = format!(r#"{{"version": 1, "entries": [{}]}}"#, vec![entry; 5].join(","));
    let limits = Limits { max_tray_entries: 4, ..Limits::default() };
    let bytes = with_tray(&json, &[(src, &png)]);
    assert!(matches!(
        OraStack::from_bytes(&bytes, &limits),
        Err(OraError::TooManyTrayEntries { count: 5, limit: 4 })
    ));
    // Five candidates sharing one PNG are fine within the default limits.
    assert_eq!(read(&bytes).unwrap().tray.len(), 5);
}

#[test]
fn writer_refuses_extra_entries_that_would_clash_with_the_tray() {
    let mut stack = OraStack::new(4, 4);
    stack.extra_entries.push(("pentimento/tray.json".into(), b"{}".to_vec()));
    assert!(matches!(stack.to_bytes(), Err(OraError::InvalidStack(_))));
    let mut stack = OraStack::new(4, 4);
    stack.tray.push(OraTrayEntry {
        name: "c".into(),
        x: 0,
        y: 0,
        record: None,
        pixels: Image::filled(1, 1, [0; 4]),
    });
    stack.extra_entries.push(("pentimento/tray/0000.png".into(), vec![]));
    assert!(matches!(stack.to_bytes(), Err(OraError::InvalidStack(_))));
    // Unknown files under pentimento/tray/ that are not ours survive.
    stack.extra_entries = vec![("pentimento/tray/0001.png".into(), b"x".to_vec())];
    let back = read(&stack.to_bytes().unwrap()).unwrap();
    assert_eq!(back.extra_entries, stack.extra_entries);
    assert_eq!(back.tray, stack.tray);
}
