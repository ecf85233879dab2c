//! Throughput of row compositing: one 4096-pixel row per iteration, the width of a large layer.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pentimento_raster::{BlendMode, Rgba8, blend_row, blend_row_masked};
use std::hint::black_box;

const WIDTH: usize = 4096;

fn pattern(seed: u32) -> Vec<Rgba8> {
    let mut x = seed;
    (0..WIDTH)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let [a, b, c, d] = x.to_le_bytes();
            [a, b, c, d]
        })
        .collect()
}

fn bench_blend(c: &mut Criterion) {
    let src = pattern(1);
    let dst = pattern(2);
    let coverage: Vec<u8> = pattern(3).iter().map(|p| p[0]).collect();
    let mut group = c.benchmark_group("blend_row_4096");
    group.throughput(Throughput::Elements(WIDTH as u64));
    for mode in [BlendMode::Normal, BlendMode::Multiply, BlendMode::SoftLight, BlendMode::Hue] {
        group.bench_function(mode.ora_name(), |b| {
            let mut d = dst.clone();
            b.iter(|| {
                d.copy_from_slice(&dst);
                blend_row(black_box(&mut d), black_box(&src), mode, 0.8);
            });
        });
    }
    group.bench_function("svg:src-over+coverage", |b| {
        let mut d = dst.clone();
        b.iter(|| {
            d.copy_from_slice(&dst);
            blend_row_masked(
                black_box(&mut d),
                black_box(&src),
                BlendMode::Normal,
                1.0,
                Some(&coverage),
            );
        });
    });
    group.finish();
}

criterion_group!(benches, bench_blend);
criterion_main!(benches);
