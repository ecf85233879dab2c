//! The headless subcommands, run as the real binary.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a panic is a failed test"
)]

use std::path::Path;
use std::process::{Command, Output};

use ora::{OraLayer, OraStack};
use raster::Image;
use serde_json::Value;

const INFOTEXT: &str = "a castle on a hill, <lora:gothic:0.8>\nNegative prompt: blurry\n\
Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 64x32, \
Lora hashes: \"gothic: 1a2b3c4d5e6f\"";

fn pentimento(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pentimento")).args(args).output().unwrap()
}

fn run_ok(args: &[&std::ffi::OsStr]) -> String {
    let out = pentimento(args);
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Fails with exactly one line on stderr and nothing on stdout; returns that line.
fn run_err(args: &[&std::ffi::OsStr]) -> String {
    let out = pentimento(args);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
    stderr
}

fn os(s: &(impl AsRef<std::ffi::OsStr> + ?Sized)) -> &std::ffi::OsStr {
    s.as_ref()
}

fn write_png(path: &Path, image: &Image<raster::Rgba8>, text: Option<&str>) {
    let file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut encoder = png::Encoder::new(file, image.width(), image.height());
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    if let Some(text) = text {
        // Non-Latin-1 text goes in iTXt, as Pillow does.
        encoder.add_itxt_chunk("parameters".into(), text.into()).unwrap();
    }
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(image.as_bytes()).unwrap();
    writer.finish().unwrap();
}

fn read_png(path: &Path) -> Image<raster::Rgba8> {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgba);
    buf.truncate(info.buffer_size());
    Image::from_rgba_bytes(info.width, info.height, &buf).unwrap()
}

fn sample_ora(path: &Path) -> OraStack {
    let mut stack = OraStack::new(32, 24);
    stack.layers.push(OraLayer::new("paper", Image::filled(32, 24, [250, 240, 230, 255])));
    let mut ink = OraLayer::new("ink", Image::filled(10, 8, [20, 40, 200, 200]));
    ink.x = 5;
    ink.y = -2;
    ink.opacity = 0.5;
    ink.composite_op = "svg:multiply".into();
    ink.record = Some(serde_json::json!({"prompt": "ink", "seed": 7}));
    stack.layers.push(ink);
    let mut hidden = OraLayer::new("hidden", Image::filled(4, 4, [255, 0, 0, 255]));
    hidden.visible = false;
    stack.layers.push(hidden);
    stack.mask = Some(Image::new(32, 24));
    stack.save(path).unwrap();
    stack
}

#[test]
fn info_on_an_ora() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.ora");
    sample_ora(&path);
    let json: Value = serde_json::from_str(&run_ok(&[os("info"), os(&path)])).unwrap();
    assert_eq!(json["format"], "openraster");
    assert_eq!((json["width"].as_u64(), json["height"].as_u64()), (Some(32), Some(24)));
    assert_eq!(json["has_inpaint_mask"], true);
    assert_eq!(json["has_selection"], false);
    let layers = json["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3);
    let ink = &layers[1];
    assert_eq!(ink["name"], "ink");
    assert_eq!((ink["x"].as_i64(), ink["y"].as_i64()), (Some(5), Some(-2)));
    assert_eq!((ink["width"].as_u64(), ink["height"].as_u64()), (Some(10), Some(8)));
    assert_eq!(ink["composite_op"], "svg:multiply");
    assert_eq!(ink["blend_mode"], "multiply");
    assert_eq!(ink["opacity"].as_f64(), Some(0.5));
    assert_eq!(ink["record"]["seed"], 7);
    assert_eq!(layers[2]["visible"], false);
}

#[test]
fn info_on_a_png_with_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gen.png");
    write_png(&path, &Image::filled(64, 32, [1, 2, 3, 255]), Some(INFOTEXT));
    let json: Value = serde_json::from_str(&run_ok(&[os("info"), os(&path)])).unwrap();
    assert_eq!(json["format"], "png");
    assert_eq!((json["width"].as_u64(), json["height"].as_u64()), (Some(64), Some(32)));
    assert_eq!(json["parameters_text"], INFOTEXT);
    let p = &json["parameters"];
    assert_eq!(p["prompt"], "a castle on a hill, <lora:gothic:0.8>");
    assert_eq!(p["negative_prompt"], "blurry");
    assert_eq!(p["params"]["Steps"], "20");
    assert_eq!(p["params"]["Lora hashes"], "gothic: 1a2b3c4d5e6f");
    // Without parameters: `null`.
    let plain = dir.path().join("plain.png");
    write_png(&plain, &Image::filled(2, 2, [0; 4]), None);
    let json: Value = serde_json::from_str(&run_ok(&[os("info"), os(&plain)])).unwrap();
    assert!(json["parameters"].is_null());
}

#[test]
fn flatten_an_ora_and_an_image() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.ora");
    let stack = sample_ora(&path);
    let out = dir.path().join("flat.png");
    run_ok(&[os("flatten"), os(&path), os(&out)]);
    assert_eq!(read_png(&out), ora::composite(&stack));

    let src = dir.path().join("src.png");
    let image = Image::filled(3, 2, [9, 8, 7, 128]);
    write_png(&src, &image, None);
    let copy = dir.path().join("copy.png");
    run_ok(&[os("flatten"), os(&src), os(&copy)]);
    assert_eq!(read_png(&copy), image);
}

#[test]
fn errors_are_one_line_and_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.ora");
    assert!(run_err(&[os("info"), os(&missing)]).starts_with("error: cannot open"));

    let broken = dir.path().join("broken.ora");
    std::fs::write(&broken, b"PK\x03\x04 truncated").unwrap();
    let line = run_err(&[os("info"), os(&broken)]);
    assert!(line.contains("zip"), "{line}");

    let model = dir.path().join("model.safetensors");
    std::fs::write(&model, b"\x10\0\0\0\0\0\0\0{}").unwrap();
    let line = run_err(&[os("info"), os(&model)]);
    assert!(line.contains("truncated"), "{line}");

    let pickle = dir.path().join("model.ckpt");
    std::fs::write(&pickle, b"\x80\x02pickle").unwrap();
    assert!(run_err(&[os("info"), os(&pickle)]).contains("never loaded"));

    let ora_path = dir.path().join("p.ora");
    sample_ora(&ora_path);
    let jpg = dir.path().join("out.jpg");
    assert!(run_err(&[os("flatten"), os(&ora_path), os(&jpg)]).contains(".png"));
    let unknown = dir.path().join("notes.txt");
    std::fs::write(&unknown, b"hello").unwrap();
    assert!(run_err(&[os("info"), os(&unknown)]).contains("not an .ora"));
}

/// JPEG and WebP written with A1111's EXIF layout (tests/reference/infotext_exif.py).
#[test]
fn info_on_jpeg_and_webp_with_a1111_exif() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/infotext");
    let expected = std::fs::read_to_string(fixtures.join("a1111_parameters.txt")).unwrap();
    for (name, format) in [("a1111.jpg", "jpeg"), ("a1111.webp", "webp")] {
        let json: Value =
            serde_json::from_str(&run_ok(&[os("info"), os(&fixtures.join(name))])).unwrap();
        assert_eq!(json["format"], format);
        assert_eq!((json["width"].as_u64(), json["height"].as_u64()), (Some(32), Some(24)));
        assert_eq!(json["parameters_text"], expected.as_str(), "{name}");
        assert_eq!(json["parameters"]["params"]["Seed"], "987654321");
        assert_eq!(json["parameters"]["negative_prompt"], "blurry, lowres");
    }
}
