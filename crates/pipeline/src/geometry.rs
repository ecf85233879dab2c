//! Where an "only masked" inpaint looks: A1111's crop region, widened to the working aspect ratio.
//!
//! The arithmetic (integer truncation, the order of the shifts and clamps) follows A1111's
//! `masking.get_crop_region` and `masking.expand_crop_region` exactly, because the box decides
//! which pixels the model sees: a box one pixel off changes every generated pixel.

use raster::{Gray8, Image, Rect};

/// Bounding box of the non-zero mask pixels grown by `padding_px` on every side and clamped to
/// the image; `None` for an all-zero mask.
pub fn mask_crop_region(mask: &Image<Gray8>, padding_px: u32) -> Option<Rect> {
    let (w, h) = (mask.width() as i64, mask.height() as i64);
    let mut bounds: Option<(i64, i64, i64, i64)> = None;
    for y in 0..mask.height() {
        let row = mask.row(y);
        let first = row.iter().position(|&v| v != 0);
        let last = row.iter().rposition(|&v| v != 0);
        if let (Some(x0), Some(x1)) = (first, last) {
            let (x0, x1, y) = (x0 as i64, x1 as i64 + 1, i64::from(y));
            bounds = Some(match bounds {
                None => (x0, y, x1, y + 1),
                Some((a, b, c, _)) => (a.min(x0), b, c.max(x1), y + 1),
            });
        }
    }
    let (x0, y0, x1, y1) = bounds?;
    let pad = i64::from(padding_px);
    Some(rect_from_i64((x0 - pad).max(0), (y0 - pad).max(0), (x1 + pad).min(w), (y1 + pad).min(h)))
}

/// Widens (or heightens) `region` to the aspect ratio `working_width : working_height`, growing
/// it evenly on both sides, then shifting it back inside `image_width × image_height` and
/// clamping. As in A1111, a region that cannot reach the ratio inside the image is left clamped
/// (the resize to the working size then fills the edges).
pub fn expand_to_aspect(
    region: Rect,
    working_width: u32,
    working_height: u32,
    image_width: u32,
    image_height: u32,
) -> Rect {
    if region.is_empty() || working_width == 0 || working_height == 0 {
        return region;
    }
    let (mut x1, mut y1) = (i64::from(region.x), i64::from(region.y));
    let (mut x2, mut y2) = (i64::from(region.right()), i64::from(region.bottom()));
    let (image_w, image_h) = (i64::from(image_width), i64::from(image_height));
    let ratio_region = (x2 - x1) as f64 / (y2 - y1) as f64;
    let ratio_working = f64::from(working_width) / f64::from(working_height);
    if ratio_region > ratio_working {
        let desired_height = (x2 - x1) as f64 / ratio_working;
        // Python's int() truncates toward zero; the difference is positive here.
        let diff = (desired_height - (y2 - y1) as f64) as i64;
        grow_axis(&mut y1, &mut y2, diff, image_h);
    } else {
        let desired_width = (y2 - y1) as f64 * ratio_working;
        let diff = (desired_width - (x2 - x1) as f64) as i64;
        grow_axis(&mut x1, &mut x2, diff, image_w);
    }
    rect_from_i64(x1, y1, x2, y2)
}

/// Grows `lo..hi` by `diff` (half before, the rest after), shifts it back inside `0..limit` and
/// clamps, in A1111's order of operations.
fn grow_axis(lo: &mut i64, hi: &mut i64, diff: i64, limit: i64) {
    *lo -= diff.div_euclid(2);
    *hi += diff - diff.div_euclid(2);
    if *hi >= limit {
        let over = *hi - limit;
        *hi -= over;
        *lo -= over;
    }
    if *lo < 0 {
        *hi -= *lo;
        *lo = 0;
    }
    if *hi >= limit {
        *hi = limit;
    }
}

/// The box an only-masked inpaint crops: the padded mask bounds, extended by the user's context
/// box if any (clamped to the image), widened to the working aspect ratio. `None` for an empty
/// mask.
pub fn inpaint_crop_box(
    blurred_mask: &Image<Gray8>,
    padding_px: u32,
    context: Option<Rect>,
    working_width: u32,
    working_height: u32,
) -> Option<Rect> {
    let mut region = mask_crop_region(blurred_mask, padding_px)?;
    if let Some(ctx) = context {
        region = region.union(&ctx.intersect(&blurred_mask.bounds()));
    }
    Some(expand_to_aspect(
        region,
        working_width,
        working_height,
        blurred_mask.width(),
        blurred_mask.height(),
    ))
}

fn rect_from_i64(x0: i64, y0: i64, x1: i64, y1: i64) -> Rect {
    let clamp = |v: i64| v.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
    Rect::from_bounds(clamp(x0), clamp(y0), clamp(x1), clamp(y1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask_with(w: u32, h: u32, r: Rect) -> Image<Gray8> {
        let mut m = Image::new(w, h);
        for y in r.y..r.bottom() {
            for x in r.x..r.right() {
                m.set(x as u32, y as u32, 255);
            }
        }
        m
    }

    #[test]
    fn empty_mask_has_no_region() {
        assert_eq!(mask_crop_region(&Image::new(8, 8), 4), None);
    }

    #[test]
    fn padding_is_clamped_at_every_border() {
        // Hand-checked: mask at x 10..20, y 0..5 in 100×50 with padding 32.
        let m = mask_with(100, 50, Rect::new(10, 0, 10, 5));
        assert_eq!(mask_crop_region(&m, 32), Some(Rect::from_bounds(0, 0, 52, 37)));
        // Touching the bottom-right corner.
        let m = mask_with(100, 50, Rect::new(95, 45, 5, 5));
        assert_eq!(mask_crop_region(&m, 10), Some(Rect::from_bounds(85, 35, 100, 50)));
        // Padding larger than the image: the whole image.
        assert_eq!(mask_crop_region(&m, 1000), Some(Rect::from_size(100, 50)));
    }

    #[test]
    fn widens_a_tall_region_evenly() {
        // 32 wide × 128 tall at the centre of 512², square working size: width grows by 96,
        // 48 each side.
        let r = expand_to_aspect(Rect::from_bounds(240, 192, 272, 320), 512, 512, 512, 512);
        assert_eq!(r, Rect::from_bounds(192, 192, 320, 320));
    }

    #[test]
    fn heightens_a_wide_region_and_splits_odd_growth() {
        // 128×32 → 128×128 (A1111's docstring example); growth 96 → 48 up, 48 down.
        let r = expand_to_aspect(Rect::from_bounds(100, 100, 228, 132), 512, 512, 512, 512);
        assert_eq!(r, Rect::from_bounds(100, 52, 228, 180));
        // Odd growth: 10×3 → 10×10: diff 7, 3 up and 4 down.
        let r = expand_to_aspect(Rect::from_bounds(20, 20, 30, 23), 64, 64, 64, 64);
        assert_eq!(r, Rect::from_bounds(20, 17, 30, 27));
    }

    #[test]
    fn shifts_back_inside_at_each_border() {
        // At the top: y would go negative, shifted down.
        let r = expand_to_aspect(Rect::from_bounds(100, 0, 228, 32), 512, 512, 512, 512);
        assert_eq!(r, Rect::from_bounds(100, 0, 228, 128));
        // At the bottom.
        let r = expand_to_aspect(Rect::from_bounds(100, 480, 228, 512), 512, 512, 512, 512);
        assert_eq!(r, Rect::from_bounds(100, 384, 228, 512));
        // At the left and right.
        let r = expand_to_aspect(Rect::from_bounds(0, 100, 32, 228), 512, 512, 512, 512);
        assert_eq!(r, Rect::from_bounds(0, 100, 128, 228));
        let r = expand_to_aspect(Rect::from_bounds(480, 100, 512, 228), 512, 512, 512, 512);
        assert_eq!(r, Rect::from_bounds(384, 100, 512, 228));
    }

    #[test]
    fn clamps_when_the_image_is_too_small_for_the_ratio() {
        // 200×50 image, region 20×50, working 512×128 (4:1) would need 200 wide: fits exactly.
        let r = expand_to_aspect(Rect::from_bounds(90, 0, 110, 50), 512, 128, 200, 50);
        assert_eq!(r, Rect::from_bounds(0, 0, 200, 50));
        // Working 8:1 needs 400 wide: clamped to the image.
        let r = expand_to_aspect(Rect::from_bounds(90, 0, 110, 50), 1024, 128, 200, 50);
        assert_eq!(r, Rect::from_bounds(0, 0, 200, 50));
    }

    #[test]
    fn context_box_extends_the_automatic_box() {
        let m = mask_with(512, 512, Rect::new(250, 250, 10, 10));
        let ctx = Rect::from_bounds(100, 240, 300, 270);
        let b = inpaint_crop_box(&m, 0, Some(ctx), 512, 512).unwrap();
        // Union 100..300 × 240..270 → square 200×200 centred vertically: diff 170 → 85 / 85.
        assert_eq!(b, Rect::from_bounds(100, 155, 300, 355));
    }
}
