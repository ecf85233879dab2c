//! Interoperability with Krita, the reference OpenRaster implementation.
//!
//! Gated by `PENTIMENTO_INTEROP=1` (set by `.ci/run` after installing Krita, xvfb and xauth):
//! each Krita launch takes seconds to tens of seconds and needs a virtual X server.
//! Krita runs as `xvfb-run -a krita --export --export-filename OUT IN` with a private
//! `XDG_RUNTIME_DIR`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::print_stderr,
    clippy::panic,
    reason = "test helpers outside #[test] fns: a panic is a failed test"
)]

use std::path::Path;
use std::process::Command;

use ora::{Limits, OraLayer, OraStack, OraTrayEntry, composite};
use pentimento_ora as ora;
use raster::{Image, Rgba8};

/// Blend modes Krita 5.1 computes with the W3C formulas (see /work/shared/design/headless-ui.md:
/// it differs for plus, hue, color, luminosity and ignores exclusion).
const KRITA_MODES: [&str; 13] = [
    "svg:src-over",
    "svg:multiply",
    "svg:screen",
    "svg:overlay",
    "svg:darken",
    "svg:lighten",
    "svg:color-dodge",
    "svg:color-burn",
    "svg:hard-light",
    "svg:soft-light",
    "svg:difference",
    "svg:saturation",
    "svg:dst-out",
];
const STRIP_PX: u32 = 16;
const TOLERANCE: u8 = 2;

fn interop_enabled() -> bool {
    let on = std::env::var("PENTIMENTO_INTEROP").is_ok_and(|v| v == "1");
    if !on {
        eprintln!("skipped: set PENTIMENTO_INTEROP=1 (with krita, xvfb and xauth installed)");
    }
    on
}

/// Runs Krita's command-line export (`IN` → `OUT`, format from the extension).
fn krita_export(input: &Path, output: &Path) {
    let runtime = tempfile::tempdir().unwrap();
    let result = Command::new("xvfb-run")
        .args(["-a", "krita", "--export", "--export-filename"])
        .arg(output)
        .arg(input)
        .env("XDG_RUNTIME_DIR", runtime.path())
        .output()
        .expect("xvfb-run and krita must be installed for PENTIMENTO_INTEROP=1");
    assert!(
        output.exists(),
        "krita wrote no {}: status {}, stderr {}",
        output.display(),
        result.status,
        String::from_utf8_lossy(&result.stderr)
    );
}

fn decode_png(path: &Path) -> Image<Rgba8> {
    let mut decoder =
        png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    let pixels: Vec<Rgba8> = match info.color_type {
        png::ColorType::Rgba => buf.as_chunks::<4>().0.to_vec(),
        png::ColorType::Rgb => {
            buf.as_chunks::<3>().0.iter().map(|&[r, g, b]| [r, g, b, 255]).collect()
        }
        other => panic!("unexpected colour type {other:?}"),
    };
    Image::from_pixels(info.width, info.height, pixels).unwrap()
}

fn write_png(path: &Path, image: &Image<Rgba8>) {
    let file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut encoder = png::Encoder::new(file, image.width(), image.height());
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(image.as_bytes()).unwrap();
    writer.finish().unwrap();
}

/// A smooth pattern with every alpha from 0 to 255 down the rows.
fn pattern(width: u32, height: u32, seed: u32) -> Image<Rgba8> {
    let mut image = Image::new(width, height);
    for y in 0..height {
        for x in 0..width {
            let r = ((x * 37 + seed * 71) % 256) as u8;
            let g = ((y * 23 + seed * 13) % 256) as u8;
            let b = (((x + y) * 11 + seed * 101) % 256) as u8;
            let a = (y * 255 / (height - 1).max(1)) as u8;
            image.set(x, y, [r, g, b, a]);
        }
    }
    image
}

/// Every mode Krita follows in its own vertical strip over an opaque background, with partial
/// alpha, 1/255-exact opacities (Krita truncates opacity to whole steps), offsets that stick
/// out of the canvas, a hidden layer and a half-transparent layer on top. A batch tray of
/// bright candidates rides along under `pentimento/`: Krita must ignore it (it would show if
/// Krita took the PNGs for layers).
fn test_stack() -> OraStack {
    let width = STRIP_PX * KRITA_MODES.len() as u32;
    let height = 48;
    let mut stack = OraStack::new(width, height);
    let mut background = pattern(width, height, 1);
    for p in background.pixels_mut() {
        p[3] = 255;
    }
    stack.layers.push(OraLayer::new("background", background));
    for (i, mode) in KRITA_MODES.iter().enumerate() {
        let mut layer = OraLayer::new(*mode, pattern(STRIP_PX, height + 8, i as u32 + 2));
        layer.x = (i as u32 * STRIP_PX) as i32;
        layer.y = -4;
        layer.opacity = (255 - 9 * i) as f32 / 255.0;
        layer.composite_op = (*mode).to_owned();
        stack.layers.push(layer);
    }
    let mut hidden = OraLayer::new("hidden", Image::filled(width, height, [255, 0, 255, 255]));
    hidden.visible = false;
    stack.layers.push(hidden);
    let mut top = OraLayer::new("top", pattern(40, 30, 99));
    top.x = -10;
    top.y = 30;
    top.opacity = 153.0 / 255.0;
    stack.layers.push(top);
    stack.tray = (0..3)
        .map(|i| OraTrayEntry {
            name: format!("candidate {i}"),
            x: -3 + 40 * i,
            y: 7 - 5 * i,
            record: Some(serde_json::json!({"prompt": "green", "seed": i})),
            pixels: Image::filled(33 + i as u32, 21, [0, 255, 0, 255]),
        })
        .collect();
    stack
}

/// Largest channel difference per strip; where both pixels are fully transparent, colour is
/// meaningless and ignored.
fn max_diff_per_strip(ours: &Image<Rgba8>, theirs: &Image<Rgba8>) -> Vec<u8> {
    let strips = ours.width().div_ceil(STRIP_PX) as usize;
    let mut worst = vec![0u8; strips];
    for y in 0..ours.height() {
        for x in 0..ours.width() {
            let (a, b) = (ours.get(x, y).unwrap(), theirs.get(x, y).unwrap());
            let diff = if a[3] == 0 && b[3] == 0 {
                0
            } else {
                (0..4).map(|c| a[c].abs_diff(b[c])).max().unwrap()
            };
            let strip = (x / STRIP_PX) as usize;
            worst[strip] = worst[strip].max(diff);
        }
    }
    worst
}

#[test]
fn krita_flattens_our_file_like_our_composite() {
    if !interop_enabled() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ora_path = dir.path().join("ours.ora");
    let png_path = dir.path().join("krita.png");
    let stack = test_stack();
    stack.save(&ora_path).unwrap();
    krita_export(&ora_path, &png_path);
    let theirs = decode_png(&png_path);
    let ours = composite(&stack);
    assert_eq!((theirs.width(), theirs.height()), (ours.width(), ours.height()));
    let worst = max_diff_per_strip(&ours, &theirs);
    for (mode, diff) in KRITA_MODES.iter().zip(&worst) {
        eprintln!("{mode:>16}: max difference {diff}/255");
    }
    let failures: Vec<String> = KRITA_MODES
        .iter()
        .zip(&worst)
        .filter(|&(_, &d)| d > TOLERANCE)
        .map(|(m, d)| format!("{m}: {d}/255"))
        .collect();
    assert!(failures.is_empty(), "Krita's flattening differs by more than 2/255: {failures:?}");
}

#[test]
fn we_read_what_krita_writes() {
    if !interop_enabled() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let png_path = dir.path().join("in.png");
    let ora_path = dir.path().join("krita.ora");
    let image = pattern(48, 40, 5);
    write_png(&png_path, &image);
    krita_export(&png_path, &ora_path);
    let stack = OraStack::open(&ora_path).unwrap();
    assert_eq!((stack.width, stack.height), (48, 40));
    assert_eq!(stack.layers.len(), 1);
    let flat = composite(&stack);
    let worst = max_diff_per_strip(&flat, &image).into_iter().max().unwrap();
    assert_eq!(worst, 0, "pixels changed through Krita's .ora");

    // Krita reading our multi-layer file and writing it back: same layers, same picture.
    let ours_path = dir.path().join("ours.ora");
    let back_path = dir.path().join("back.ora");
    let stack = test_stack();
    stack.save(&ours_path).unwrap();
    krita_export(&ours_path, &back_path);
    let back = OraStack::open_with_limits(&back_path, &Limits::default()).unwrap();
    let names: Vec<&str> = back.layers.iter().map(|l| l.name.as_str()).collect();
    let expected: Vec<&str> = stack.layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, expected);
    for (a, b) in stack.layers.iter().zip(&back.layers) {
        assert_eq!(a.composite_op, b.composite_op, "{}", a.name);
        assert_eq!(a.visible, b.visible, "{}", a.name);
        assert!(
            (a.opacity - b.opacity).abs() <= 1.0 / 255.0,
            "{}: {} vs {}",
            a.name,
            a.opacity,
            b.opacity
        );
    }
    let worst = max_diff_per_strip(&composite(&stack), &composite(&back));
    assert!(worst.iter().all(|&d| d <= TOLERANCE), "{worst:?}");
}
