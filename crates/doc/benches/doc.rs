//! Issue 2's document benchmarks:
//! - a 500-dab stroke with a 128 px brush on a 4096×4096 document with 20 layers, each dab
//!   followed by re-compositing its dirty region from the tile cache (what the editor does per
//!   frame), reported per stroke (divide by 500 for per-dab time);
//! - a full composite of that document.
//!
//! The document: an opaque background and 19 layers, each a 2048×2048 block of semi-transparent
//! varying colour at a different offset, with assorted blend modes; the stroke runs through the
//! centre where all 20 layers overlap, on the middle layer (every dirty pixel re-blends the 11
//! layers from the painted one up) and on the top layer.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "benchmark setup: a failure should abort the run"
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use pentimento_doc::{BlendMode, Brush, Command, Document, LayerProps, PaintTarget, StrokePoint};
use raster::{Image, Rect};

const SIDE: u32 = 4096;
const LAYERS: usize = 20;
const DABS: usize = 500;
const BRUSH_PX: f32 = 128.0;

fn build_document() -> Document {
    let mut doc = Document::new(SIDE, SIDE, Some([230, 225, 215, 255])).expect("document");
    let modes = [
        BlendMode::Normal,
        BlendMode::Multiply,
        BlendMode::Screen,
        BlendMode::Normal,
        BlendMode::Overlay,
    ];
    for i in 1..LAYERS {
        let block = 2048u32;
        let mut img = Image::new(block, block);
        for (n, p) in img.pixels_mut().iter_mut().enumerate() {
            let (x, y) = ((n as u32) % block, (n as u32) / block);
            let v = x.wrapping_mul(31).wrapping_add(y.wrapping_mul(17)).wrapping_add(i as u32 * 53);
            *p = [(v % 251) as u8, (v / 3 % 241) as u8, (v / 7 % 239) as u8, 60 + (v % 140) as u8];
        }
        let offset = 1024 + ((i as i32 * 97) % 512) - 256;
        let id = doc
            .apply(Command::AddLayerFromImage {
                image: img,
                x: offset,
                y: offset + 64,
                name: format!("layer {i}"),
                record: None,
                index: None,
            })
            .expect("add layer")
            .created_layer
            .expect("id");
        let props = LayerProps {
            name: format!("layer {i}"),
            blend_mode: modes[i % modes.len()],
            opacity: 0.9,
            ..LayerProps::default()
        };
        doc.apply(Command::SetLayerProps { id, props }).expect("props");
    }
    doc.clear_history();
    doc
}

/// Points one dab apart along a zig-zag through the centre.
fn stroke_points(brush: &Brush) -> Vec<StrokePoint> {
    let step = brush.size_px * brush.spacing;
    let (x0, x1) = (1500.0f32, 2600.0f32);
    let mut points = Vec::with_capacity(DABS);
    let (mut x, mut y, mut dir) = (x0, 1700.0f32, 1.0f32);
    for _ in 0..DABS {
        points.push(StrokePoint::new(x, y));
        x += dir * step;
        if x > x1 || x < x0 {
            dir = -dir;
            x += 2.0 * dir * step;
            y += 40.0;
        }
    }
    points
}

fn stroke(doc: &mut Document, brush: &Brush, points: &[StrokePoint]) -> usize {
    let mut composited = 0;
    let change =
        doc.begin_stroke(PaintTarget::ActiveLayer, brush.clone(), points[0]).expect("begin");
    composited += doc.composite_region(change.composite_bounds()).pixels().len();
    for p in &points[1..] {
        let change = doc.stroke_to(*p).expect("stroke");
        let dirty = change.composite_bounds();
        composited += black_box(doc.composite_region(dirty)).pixels().len();
    }
    doc.end_stroke().expect("end");
    composited
}

fn benches(c: &mut Criterion) {
    let mut doc = build_document();
    let brush = Brush {
        size_px: BRUSH_PX,
        hardness: 0.7,
        opacity: 0.8,
        flow: 0.6,
        spacing: 0.1,
        color: [180, 40, 30, 255],
        ..Brush::default()
    };
    let points = stroke_points(&brush);
    // Warm the composite cache, as an open editor has it.
    let _ = doc.composite_region(doc.bounds());

    let mut group = c.benchmark_group("doc");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .warm_up_time(Duration::from_secs(2));
    // Worst case: the painted layer is in the middle, so 11 layers are re-blended per dab;
    // common case: painting on the top layer.
    for (name, index) in [("middle_layer", LAYERS / 2), ("top_layer", LAYERS - 1)] {
        let id = doc.layers()[index].id();
        doc.set_active_layer(id).expect("active");
        group.bench_function(
            format!("stroke_500_dabs_128px_4096sq_20_layers_with_composite/{name}"),
            |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let start = Instant::now();
                        black_box(stroke(&mut doc, &brush, &points));
                        total += start.elapsed();
                        doc.undo();
                        let _ = doc.composite_region(Rect::from_size(SIDE, SIDE));
                    }
                    total
                });
            },
        );
    }
    group.bench_function("full_composite_4096sq_20_layers", |b| {
        b.iter(|| black_box(doc.render_composite()));
    });
    group.finish();
}

criterion_group!(doc_benches, benches);
criterion_main!(doc_benches);
