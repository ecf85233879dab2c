//! Throughput of row compositing: one 4096-pixel row per iteration, the width of a large layer.
//! `random`: every pixel's alpha random (worst case for branches); `painted`: an opaque backdrop
//! under a source with runs of opaque, soft-edged and empty pixels, as a painted layer has.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pentimento_raster::{BlendMode, Rgba8, blend_row, blend_row_masked};
use std::hint::black_box;

const WIDTH: usize = 4096;

fn random(seed: u32) -> Vec<Rgba8> {
    let mut x = seed;
    (0..WIDTH)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let [a, b, c, d] = x.to_le_bytes();
            [a, b, c, d]
        })
        .collect()
}

fn painted() -> (Vec<Rgba8>, Vec<Rgba8>) {
    let colours = random(7);
    let src = colours
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let a = match (i / 256) % 3 {
                0 => 255,
                1 => (i % 256) as u8,
                _ => 0,
            };
            [c[0], c[1], c[2], a]
        })
        .collect();
    let dst = random(9).into_iter().map(|[r, g, b, _]| [r, g, b, 255]).collect();
    (src, dst)
}

fn bench_blend(c: &mut Criterion) {
    let coverage: Vec<u8> = random(3).iter().map(|p| p[0]).collect();
    for (name, src, dst) in [("random", random(1), random(2)), {
        let (s, d) = painted();
        ("painted", s, d)
    }] {
        let mut group = c.benchmark_group(format!("blend_row_4096_{name}"));
        group.throughput(Throughput::Elements(WIDTH as u64));
        for mode in [BlendMode::Normal, BlendMode::Multiply, BlendMode::SoftLight, BlendMode::Hue] {
            for opacity in [1.0, 0.8] {
                group.bench_function(format!("{}@{opacity}", mode.ora_name()), |b| {
                    let mut d = dst.clone();
                    b.iter(|| {
                        d.copy_from_slice(&dst);
                        blend_row(black_box(&mut d), black_box(&src), mode, opacity);
                    });
                });
            }
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
}

criterion_group!(benches, bench_blend);
criterion_main!(benches);
