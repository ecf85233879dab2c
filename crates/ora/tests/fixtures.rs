//! Files written by Krita (tests/reference/ora_interop.py, committed under tests/fixtures/ora/)
//! open, flatten their groups and composite like Krita's own flattening.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a panic is a failed test"
)]

use std::path::PathBuf;

use ora::{OraStack, composite};
use pentimento_ora as ora;
use raster::{Image, Rgba8};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/ora").join(name)
}

fn decode_png(name: &str) -> Image<Rgba8> {
    let file = std::fs::File::open(fixture(name)).unwrap();
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
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
        other => unreachable!("unexpected colour type {other:?}"),
    };
    Image::from_pixels(info.width, info.height, pixels).unwrap()
}

fn max_diff(a: &Image<Rgba8>, b: &Image<Rgba8>) -> u8 {
    assert_eq!((a.width(), a.height()), (b.width(), b.height()));
    a.pixels()
        .iter()
        .zip(b.pixels())
        .map(|(p, q)| {
            if p[3] == 0 && q[3] == 0 {
                0
            } else {
                (0..4).map(|c| p[c].abs_diff(q[c])).max().unwrap()
            }
        })
        .max()
        .unwrap_or(0)
}

#[test]
fn krita_written_file_with_a_group() {
    let stack = OraStack::open(&fixture("krita_groups.ora")).unwrap();
    assert_eq!((stack.width, stack.height), (48, 32));
    assert!(stack.flattened_groups);
    assert!(stack.tray.is_empty());
    assert!(stack.extra_entries.is_empty());
    let names: Vec<&str> = stack.layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["background", "multiply", "screen", "hidden", "group b", "group a"]);
    let by_name = |n: &str| stack.layers.iter().find(|l| l.name == n).unwrap();
    assert_eq!(by_name("multiply").composite_op, "svg:multiply");
    assert_eq!(by_name("screen").composite_op, "svg:screen");
    assert!(!by_name("hidden").visible);
    // Krita crops layers to their non-transparent bounds and writes opacity to 6 digits.
    assert_eq!((by_name("screen").x, by_name("screen").y), (28, -5));
    assert!((by_name("group a").opacity - 0.8).abs() < 1e-6);
    assert!((by_name("multiply").opacity - 191.0 / 255.0).abs() < 1e-5);
    let krita_flat = decode_png("krita_groups.png");
    let diff = max_diff(&composite(&stack), &krita_flat);
    assert!(diff <= 2, "composite differs from Krita's by {diff}/255");
}

#[test]
fn hand_written_input_composites_like_krita() {
    let stack = OraStack::open(&fixture("input_groups.ora")).unwrap();
    let diff = max_diff(&composite(&stack), &decode_png("krita_groups.png"));
    assert!(diff <= 2, "composite differs from Krita's by {diff}/255");
}

#[test]
fn krita_converted_png_reads_back_exactly() {
    let stack = OraStack::open(&fixture("krita_from_png.ora")).unwrap();
    assert_eq!(stack.layers.len(), 1);
    assert!(!stack.flattened_groups);
    assert_eq!(max_diff(&composite(&stack), &decode_png("krita_from_png.source.png")), 0);
}
