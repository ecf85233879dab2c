//! Resampling and blur at inpaint sizes: a 2048² RGBA crop scaled to 1024² (Lanczos, as the
//! only-masked paste-back does in reverse), the A1111 mask blur (σ 4) and Pillow's GaussianBlur
//! (radius 16, one step of the masked-content "fill" cascade) on 2048² images.

use criterion::{Criterion, criterion_group, criterion_main};
use pentimento_raster::{
    Gray8, Image, ResampleFilter, Rgba8, gaussian_blur_a1111, gaussian_blur_pillow, resize_rgba,
};
use std::hint::black_box;

const SIZE: u32 = 2048;

fn rgba() -> Image<Rgba8> {
    let mut img = Image::new(SIZE, SIZE);
    for (i, p) in img.pixels_mut().iter_mut().enumerate() {
        let v = (i as u32).wrapping_mul(2_654_435_761);
        *p = v.to_le_bytes();
    }
    img
}

fn mask() -> Image<Gray8> {
    let mut m = Image::new(SIZE, SIZE);
    for y in SIZE / 4..SIZE * 3 / 4 {
        for x in SIZE / 3..SIZE * 2 / 3 {
            m.set(x, y, 255);
        }
    }
    m
}

fn bench_pixels(c: &mut Criterion) {
    let img = rgba();
    let m = mask();
    let mut group = c.benchmark_group("pixels_2048");
    group.sample_size(10);
    group.bench_function("resize_rgba_lanczos3_to_1024", |b| {
        b.iter(|| resize_rgba(black_box(&img), 1024, 1024, ResampleFilter::Lanczos3))
    });
    group.bench_function("resize_rgba_lanczos3_to_3072", |b| {
        b.iter(|| resize_rgba(black_box(&img), 3072, 3072, ResampleFilter::Lanczos3))
    });
    group.bench_function("gaussian_blur_a1111_sigma4", |b| {
        b.iter(|| gaussian_blur_a1111(black_box(&m), 4.0, 4.0))
    });
    group.bench_function("gaussian_blur_pillow_rgba_r16", |b| {
        b.iter(|| gaussian_blur_pillow(black_box(&img), 16.0))
    });
    group.finish();
}

criterion_group!(benches, bench_pixels);
criterion_main!(benches);
