//! Thumbnails: an area-average downscale, good enough for a file browser preview.

use raster::{Image, Rgba8};

/// `image` scaled down (never up) so its longer side is at most `max_side_px`, aspect kept.
/// Each output pixel averages its source box with alpha weighting, so transparent pixels do not
/// darken the edges.
pub(crate) fn fit(image: &Image<Rgba8>, max_side_px: u32) -> Image<Rgba8> {
    let (w, h) = (image.width(), image.height());
    let longer = w.max(h);
    if longer <= max_side_px || max_side_px == 0 {
        return image.clone();
    }
    let scale = f64::from(max_side_px) / f64::from(longer);
    let tw = ((f64::from(w) * scale).round() as u32).clamp(1, max_side_px);
    let th = ((f64::from(h) * scale).round() as u32).clamp(1, max_side_px);
    let mut out = Image::new(tw, th);
    for ty in 0..th {
        let y0 = (u64::from(ty) * u64::from(h) / u64::from(th)) as u32;
        let y1 = ((u64::from(ty + 1) * u64::from(h)).div_ceil(u64::from(th)) as u32).min(h);
        for tx in 0..tw {
            let x0 = (u64::from(tx) * u64::from(w) / u64::from(tw)) as usize;
            let x1 = ((u64::from(tx + 1) * u64::from(w)).div_ceil(u64::from(tw)) as usize)
                .min(w as usize);
            let mut sum = [0u64; 4];
            let mut count = 0u64;
            for y in y0..y1 {
                for &[r, g, b, a] in image.row(y).get(x0..x1).unwrap_or(&[]) {
                    let a64 = u64::from(a);
                    sum[0] += u64::from(r) * a64;
                    sum[1] += u64::from(g) * a64;
                    sum[2] += u64::from(b) * a64;
                    sum[3] += a64;
                    count += 1;
                }
            }
            out.set(tx, ty, average(sum, count));
        }
    }
    out
}

fn average([r, g, b, a]: [u64; 4], count: u64) -> Rgba8 {
    if a == 0 || count == 0 {
        return [0, 0, 0, 0];
    }
    let colour = |c: u64| ((c + a / 2) / a).min(255) as u8;
    [colour(r), colour(g), colour(b), ((a + count / 2) / count).min(255) as u8]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_aspect_and_never_upscales() {
        let wide = Image::filled(1000, 250, [10, 20, 30, 255]);
        let t = fit(&wide, 256);
        assert_eq!((t.width(), t.height()), (256, 64));
        assert_eq!(t.get(100, 30), Some([10, 20, 30, 255]));
        let small: Image<Rgba8> = Image::new(40, 30);
        assert_eq!(fit(&small, 256).width(), 40);
        let tall: Image<Rgba8> = Image::new(3, 3000);
        let t = fit(&tall, 256);
        assert_eq!((t.width(), t.height()), (1, 256));
    }

    #[test]
    fn transparent_pixels_do_not_darken() {
        let mut img = Image::new(512, 2);
        for x in (0..512).step_by(2) {
            img.set(x, 0, [200, 100, 50, 255]);
            img.set(x, 1, [200, 100, 50, 255]);
        }
        let t = fit(&img, 256);
        assert_eq!(t.get(0, 0), Some([200, 100, 50, 128]));
    }
}
