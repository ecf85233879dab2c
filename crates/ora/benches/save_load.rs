//! Issue 2's project-file benchmark: save and load of a 4096×4096 document with 20 layers (an
//! opaque background and 19 semi-transparent 2048² painted blocks at assorted offsets and blend
//! modes, as in doc's stroke benchmark) as OpenRaster. Target: under 3 s each on 2 cores.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "benchmark setup: a failure should abort the run"
)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use doc::{BlendMode, Command, Document};
use raster::Image;

fn painted_block(side: u32, salt: u32) -> Image<raster::Rgba8> {
    let mut img = Image::new(side, side);
    for (n, p) in img.pixels_mut().iter_mut().enumerate() {
        let (x, y) = (n as u32 % side, n as u32 / side);
        // Smooth gradients with soft alpha, like painted colour rather than noise (noise would
        // measure the deflate worst case, which no artwork hits).
        let r = ((x / 8 + salt * 13) % 256) as u8;
        let g = ((y / 8 + salt * 29) % 256) as u8;
        let b = (((x + y) / 16 + salt * 7) % 256) as u8;
        let a = 96 + ((x / 64 + y / 64 + salt) % 128) as u8;
        *p = [r, g, b, a];
    }
    img
}

fn build_document() -> Document {
    let mut doc = Document::new(4096, 4096, Some([230, 225, 215, 255])).expect("document");
    let modes = [BlendMode::Normal, BlendMode::Multiply, BlendMode::Screen, BlendMode::Overlay];
    for i in 1..20u32 {
        let offset = 512 + (i as i32 * 61) % 1536;
        let id = doc
            .apply(Command::AddLayerFromImage {
                image: painted_block(2048, i),
                x: offset,
                y: 1536 - offset / 2,
                name: format!("layer {i}"),
                record: None,
                index: None,
            })
            .expect("add layer")
            .created_layer
            .expect("id");
        let mut props = doc.layer(id).expect("layer").props.clone();
        props.blend_mode = modes[i as usize % modes.len()];
        props.opacity = 0.8;
        doc.apply(Command::SetLayerProps { id, props }).expect("props");
    }
    doc
}

fn bench(c: &mut Criterion) {
    let doc = build_document();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bench.ora");
    let mut group = c.benchmark_group("ora 4096x4096 x 20 layers");
    group.sample_size(10);
    group.bench_function("save", |b| {
        b.iter(|| pentimento_ora::save_document(black_box(&doc), &path).expect("save"));
    });
    pentimento_ora::save_document(&doc, &path).expect("save");
    group.bench_function("load", |b| {
        b.iter(|| black_box(pentimento_ora::open_document(&path).expect("open")));
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
