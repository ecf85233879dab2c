//! Pixels ↔ model tensors, and the cheap latent preview shown while sampling.

use candle_core::{DType, Device, Tensor};
use raster::{Image, Rgba8};

/// Which latent space a tensor lives in: decides the preview colours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LatentSpace {
    Sd1,
    Sdxl,
}

/// Approximate latent → RGB linear maps (rows: latent channels; columns: R, G, B), the
/// community-measured factors ComfyUI also uses for previews. Good enough to show composition
/// and colour at every step for the price of a 4×3 matrix product.
const SD1_LATENT_RGB: [[f32; 3]; 4] = [
    [0.3512, 0.2297, 0.3227],
    [0.3250, 0.4974, 0.2350],
    [-0.2829, 0.1762, 0.2721],
    [-0.2120, -0.2616, -0.7177],
];
const SDXL_LATENT_RGB: [[f32; 3]; 4] = [
    [0.3920, 0.4054, 0.4549],
    [-0.2634, -0.0196, 0.0653],
    [0.0568, 0.1687, -0.0755],
    [-0.3112, -0.2359, -0.2076],
];

/// Opaque RGB images → a `[B, 3, H, W]` f32 tensor in `[-1, 1]` (x / 255 · 2 − 1). Transparent
/// pixels are first flattened over white, as A1111 does for img2img inputs.
pub fn images_to_tensor(images: &[&Image<Rgba8>], device: &Device) -> candle_core::Result<Tensor> {
    let Some(first) = images.first() else {
        return Err(candle_core::Error::Msg("no images to convert".into()));
    };
    let (w, h) = (first.width() as usize, first.height() as usize);
    let mut data = Vec::with_capacity(images.len() * 3 * w * h);
    for img in images {
        if (img.width() as usize, img.height() as usize) != (w, h) {
            return Err(candle_core::Error::Msg("images of a batch differ in size".into()));
        }
        let flat: Vec<[u8; 3]> = img.pixels().iter().map(|&p| flatten_over_white(p)).collect();
        for c in 0..3 {
            data.extend(
                flat.iter().map(|p| f32::from(p.get(c).copied().unwrap_or(0)) / 255.0 * 2.0 - 1.0),
            );
        }
    }
    Tensor::from_vec(data, (images.len(), 3, h, w), device)
}

/// A straight-alpha pixel composited over white, rounded.
pub fn flatten_over_white(p: Rgba8) -> [u8; 3] {
    let [r, g, b, a] = p;
    if a == 255 {
        return [r, g, b];
    }
    let a = u32::from(a);
    let over = |c: u8| ((u32::from(c) * a + 255 * (255 - a) + 127) / 255) as u8;
    [over(r), over(g), over(b)]
}

/// A decoded `[B, 3, H, W]` tensor in `[-1, 1]` → opaque images, `uint8(255 · clamp((x+1)/2))`
/// truncated as A1111 does (rounding would move pixels by one level).
pub fn tensor_to_images(decoded: &Tensor) -> candle_core::Result<Vec<Image<Rgba8>>> {
    let (b, c, h, w) = decoded.dims4()?;
    if c != 3 {
        return Err(candle_core::Error::Msg(format!("expected 3 channels, got {c}")));
    }
    let values = decoded.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    let plane = h * w;
    let mut out = Vec::with_capacity(b);
    for chunk in values.chunks_exact(3 * plane) {
        let (r, rest) = chunk.split_at(plane);
        let (g, bl) = rest.split_at(plane);
        let to_u8 = |x: f32| (255.0 * ((x + 1.0) / 2.0).clamp(0.0, 1.0)) as u8;
        let pixels: Vec<Rgba8> = r
            .iter()
            .zip(g)
            .zip(bl)
            .map(|((&r, &g), &b)| [to_u8(r), to_u8(g), to_u8(b), 255])
            .collect();
        if let Some(img) = Image::from_pixels(w as u32, h as u32, pixels) {
            out.push(img);
        }
    }
    Ok(out)
}

/// A fast colour preview of one latent `[4, h, w]` (f32 values, channel-major), at latent
/// resolution (the UI scales it up).
pub fn latent_preview(
    latent: &[f32],
    height: usize,
    width: usize,
    space: LatentSpace,
) -> Image<Rgba8> {
    let factors = match space {
        LatentSpace::Sd1 => &SD1_LATENT_RGB,
        LatentSpace::Sdxl => &SDXL_LATENT_RGB,
    };
    let plane = height * width;
    let mut pixels = vec![[0u8, 0, 0, 255]; plane];
    for (i, px) in pixels.iter_mut().enumerate() {
        let mut rgb = [0f32; 3];
        for (c, row) in factors.iter().enumerate() {
            let v = latent.get(c * plane + i).copied().unwrap_or(0.0);
            for (acc, f) in rgb.iter_mut().zip(row) {
                *acc += v * f;
            }
        }
        for (dst, v) in px.iter_mut().zip(rgb) {
            *dst = (((v + 1.0) / 2.0).clamp(0.0, 1.0) * 255.0).round() as u8;
        }
    }
    Image::from_pixels(width as u32, height as u32, pixels).unwrap_or_else(|| Image::new(1, 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixels_round_trip_through_tensor_with_truncation() {
        let mut img: Image<Rgba8> = Image::new(3, 2);
        for (i, p) in img.pixels_mut().iter_mut().enumerate() {
            *p = [(i * 40) as u8, 255 - (i * 30) as u8, 7, 255];
        }
        let t = images_to_tensor(&[&img, &img], &Device::Cpu).unwrap();
        assert_eq!(t.dims(), &[2, 3, 2, 3]);
        let back = tensor_to_images(&t).unwrap();
        // x/255*2-1 then 255*(x+1)/2 truncated may lose one level to f32 rounding; never more.
        for (a, b) in img.pixels().iter().zip(back[1].pixels()) {
            for c in 0..3 {
                assert!(a[c].abs_diff(b[c]) <= 1, "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn truncation_matches_a1111() {
        let t = Tensor::from_vec(vec![0.999f32, -1.5, 1.5], (1, 3, 1, 1), &Device::Cpu).unwrap();
        let img = tensor_to_images(&t).unwrap();
        // 255 * 0.9995 = 254.87 → 254 (truncated, not rounded).
        assert_eq!(img[0].get(0, 0), Some([254, 0, 255, 255]));
    }

    #[test]
    fn transparent_pixels_flatten_over_white() {
        assert_eq!(flatten_over_white([0, 0, 0, 0]), [255, 255, 255]);
        assert_eq!(flatten_over_white([10, 20, 30, 255]), [10, 20, 30]);
        assert_eq!(flatten_over_white([0, 0, 0, 128]), [127, 127, 127]);
    }
}
