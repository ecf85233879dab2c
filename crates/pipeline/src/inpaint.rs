//! Inpainting's pixel side, as A1111's img2img-inpaint does it (product.md §3, fidelity.md):
//! the mask (binarised, inverted, blurred), the working image and mask for "whole picture" or
//! "only masked", masked-content fill, the latent mask, and the paste-back into the input.
//!
//! Every image operation before the model is the Pillow operation A1111 calls, in Pillow's
//! integer arithmetic (premultiply, masked paste, `alpha_composite`, Lanczos/bicubic resize,
//! `GaussianBlur`), because the model must see these exact pixels. The paste-back is the
//! editor's normal blend of the result layer (see [`InpaintPlan::paste_back`]): byte-equal to
//! the input where the mask is 0, as A1111, and the same image the editor shows. `tests/reference/README.md` ("Inpaint references") lists each rule
//! with its source; `inpaint_reference.py` is the executable form.

use raster::blend::{BlendMode, blend_row};
use raster::resample::{Edge, ResampleFilter, edge_strip_gray, edge_strip_rgba};
use raster::{Gray8, Image, Rect, Rgba8, gaussian_blur_a1111_sparse, gaussian_blur_pillow};

use crate::generate::{PipelineError, ResultLayer};
use crate::geometry::inpaint_crop_box;
use crate::request::{InpaintArea, InpaintOptions, MaskedContent};

/// A1111's mask binarisation: values above this become 255.
const MASK_THRESHOLD: u8 = 128;

/// The filter of fit-and-fill's edge strips: A1111 calls `resized.resize(size, box=…)` without
/// a filter, so Pillow's default (bicubic) applies — two taps, 1.125 and −0.125 of the two
/// outermost lines, not a copy of the edge line.
const EDGE_FILL_FILTER: ResampleFilter = ResampleFilter::Bicubic;

/// A1111 `masking.fill`'s cascade: (Pillow GaussianBlur radius, times composited).
const FILL_CASCADE: [(f32, u32); 6] =
    [(256.0, 1), (64.0, 1), (16.0, 2), (4.0, 4), (2.0, 2), (0.0, 1)];

/// Everything inpainting computes from pixels before the model runs, and what the paste-back
/// needs afterwards.
#[derive(Clone, Debug)]
pub struct InpaintPlan {
    /// Canvas-sized mask after alpha/luminance, binarising and inversion (255 = regenerate).
    pub binary_mask: Image<Gray8>,
    /// `binary_mask` after the mask blur.
    pub blurred_mask: Image<Gray8>,
    /// Only masked: the canvas box the model sees (padded, extended by the context box,
    /// widened to the working aspect ratio).
    pub crop_box: Option<Rect>,
    /// The mask at the working size (latent mask and masked-content fill derive from it).
    pub working_mask: Image<Gray8>,
    /// The image at the working size before masked-content fill.
    pub working_image: Image<Rgba8>,
    /// What the VAE encodes: `working_image`, filled for the fill / latent modes.
    pub encoder_image: Image<Rgba8>,
    /// Alpha of the generated pixels in the paste-back: the blurred mask (only masked,
    /// canvas-sized) or `min(2·working mask, 255)` (whole picture, working-sized).
    pub overlay_mask: Image<Gray8>,
    /// The image the result is pasted into: the input (only masked) or the input resized to the
    /// working size (whole picture, as A1111).
    pub paste_base: Image<Rgba8>,
    pub masked_content: MaskedContent,
}

/// A1111's mask preparation: binarised at 50 %, optionally inverted, then blurred with its
/// kernel rule. Returns `(binary, blurred)`.
pub fn binary_and_blurred_mask(
    mask: &Image<Gray8>,
    invert: bool,
    mask_blur_px: u32,
) -> Result<(Image<Gray8>, Image<Gray8>), PipelineError> {
    let mut binary = raster::mask::threshold(mask, MASK_THRESHOLD);
    if invert {
        binary = raster::mask::invert(&binary);
    }
    let blur = f64::from(mask_blur_px);
    // Blurs only around the painted pixels (byte-identical to blurring the whole canvas): a
    // small mask on a big canvas must not cost a full-canvas blur.
    let blurred = gaussian_blur_a1111_sparse(&binary, blur, blur)
        .map_err(|e| PipelineError::InvalidRequest(format!("mask blur: {e}")))?;
    Ok((binary, blurred))
}

/// The box an only-masked inpaint crops for this mask and these settings at `width × height`
/// (what the editor draws on the canvas while the mask is painted); `None` for an empty mask.
pub fn only_masked_crop_box(
    mask: &Image<Gray8>,
    invert: bool,
    mask_blur_px: u32,
    padding_px: u32,
    context: Option<Rect>,
    width: u32,
    height: u32,
) -> Option<Rect> {
    let (_, blurred) = binary_and_blurred_mask(mask, invert, mask_blur_px).ok()?;
    inpaint_crop_box(&blurred, padding_px, context, width, height)
}

impl InpaintPlan {
    /// Builds the plan for `image` (the canvas) at working size `width × height`.
    pub fn new(
        image: &Image<Rgba8>,
        options: &InpaintOptions,
        width: u32,
        height: u32,
    ) -> Result<Self, PipelineError> {
        let invalid = |m: String| PipelineError::InvalidRequest(m);
        if (options.mask.width(), options.mask.height()) != (image.width(), image.height()) {
            return Err(invalid(format!(
                "the mask is {}x{} but the image is {}x{}",
                options.mask.width(),
                options.mask.height(),
                image.width(),
                image.height()
            )));
        }
        let (binary_mask, blurred_mask) =
            binary_and_blurred_mask(&options.mask, options.invert_mask, options.mask_blur_px)?;
        if blurred_mask.pixels().iter().all(|&v| v == 0) {
            return Err(invalid(
                "the inpaint mask is empty: paint the area to regenerate (white = regenerate)"
                    .into(),
            ));
        }
        // A1111 flattens the input over white; opaque inputs are unchanged.
        let flat = image.map(|p| {
            let [r, g, b] = crate::convert::flatten_over_white(p);
            [r, g, b, 255]
        });
        let (crop_box, working_mask, overlay_mask, paste_base, working_image) = match options.area {
            InpaintArea::OnlyMasked => {
                let crop = inpaint_crop_box(
                    &blurred_mask,
                    options.padding_px,
                    options.context,
                    width,
                    height,
                )
                .ok_or_else(|| invalid("the inpaint mask is empty".into()))?;
                let working_mask = fit_and_fill_gray(&blurred_mask.crop(crop), width, height)?;
                let working_image = fit_and_fill_rgba(&flat.crop(crop), width, height)?;
                (Some(crop), working_mask, blurred_mask.clone(), flat, working_image)
            }
            InpaintArea::WholePicture => {
                let working_mask = resize_gray(&blurred_mask, width, height)?;
                let overlay = working_mask.map(|v| v.saturating_mul(2));
                let resized = resize_rgba(&flat, width, height)?;
                (None, working_mask, overlay, resized.clone(), resized)
            }
        };
        let encoder_image = match options.masked_content {
            MaskedContent::Original => working_image.clone(),
            _ => masked_fill(&working_image, &working_mask)?,
        };
        Ok(Self {
            binary_mask,
            blurred_mask,
            crop_box,
            working_mask,
            working_image,
            encoder_image,
            overlay_mask,
            paste_base,
            masked_content: options.masked_content,
        })
    }

    /// The latent mask, row-major `(height/8) × (width/8)`, 1 = regenerate: the working mask
    /// resized with Pillow's bicubic and rounded (A1111 `latmask`).
    pub fn latent_mask(&self) -> Result<Vec<f32>, PipelineError> {
        let (w, h) = (self.working_mask.width() / 8, self.working_mask.height() / 8);
        let small = resize_with(&self.working_mask, w, h, ResampleFilter::Bicubic)?;
        Ok(small.pixels().iter().map(|&v| if v >= 128 { 1.0 } else { 0.0 }).collect())
    }

    /// 9-channel models: the full-size mask rounded to {0, 1} (`round(mask / 255)`), row-major.
    pub fn pixel_mask(&self) -> Vec<bool> {
        self.working_mask.pixels().iter().map(|&v| v >= 128).collect()
    }

    /// Pastes a generated working-size image back: the final image and the same result as a
    /// layer (the generated pixels with alpha = the overlay mask, at the crop box, or over the
    /// whole working area). The final image *is* that layer composited over `paste_base` with
    /// the editor's normal blend, so the two agree byte for byte: pixels whose overlay mask is
    /// 0 are the input, those at 255 the generated image.
    ///
    /// A1111 pastes through a premultiplied 8-bit overlay instead, which loses up to a level
    /// of the input's colour where the mask is partial; no layer with alpha = mask reproduces
    /// that loss in every case, so the exact blend is used. The two differ by at most 2 levels,
    /// and only where the mask is strictly between 0 and 255.
    pub fn paste_back(
        &self,
        generated: &Image<Rgba8>,
    ) -> Result<(Image<Rgba8>, ResultLayer), PipelineError> {
        let (fitted, rect) = match self.crop_box {
            // A1111 `uncrop`: crop-and-resize to the box.
            Some(crop) => (crop_and_resize(generated, crop.width, crop.height)?, crop),
            None => (generated.clone(), Rect::from_size(generated.width(), generated.height())),
        };
        let inside = Rect::from_size(self.paste_base.width(), self.paste_base.height());
        if rect.intersect(&inside) != rect {
            return Err(PipelineError::InvalidRequest(
                "the generated image does not fit the image it is pasted into".into(),
            ));
        }
        let mut layer = fitted;
        for y in 0..rect.height {
            let mask_row = self.overlay_mask.row(rect.y as u32 + y);
            let x0 = rect.x as usize;
            let mask = mask_row.get(x0..x0 + rect.width as usize).unwrap_or(&[]);
            for (p, &m) in layer.row_mut(y).iter_mut().zip(mask) {
                p[3] = m;
            }
        }
        let mut final_image = self.paste_base.clone();
        for y in 0..rect.height {
            let x0 = rect.x as usize;
            let row = final_image.row_mut(rect.y as u32 + y);
            if let Some(dst) = row.get_mut(x0..x0 + rect.width as usize) {
                blend_row(dst, layer.row(y), BlendMode::Normal, 1.0);
            }
        }
        Ok((final_image, ResultLayer { image: layer, rect }))
    }
}

/// Pillow's `div255` as its paste and premultiply use it: `v / 255` rounded, in integers.
#[inline]
fn div255(v: u32) -> u32 {
    let t = v + 128;
    ((t >> 8) + t) >> 8
}

/// Pillow `RGBa → RGBA`: truncating division, clipped; alpha 0 and 255 pass colour through.
#[inline]
fn unpremultiply([r, g, b, a]: Rgba8) -> Rgba8 {
    if a == 0 || a == 255 {
        return [r, g, b, a];
    }
    let div = |c: u8| (255 * u32::from(c) / u32::from(a)).min(255) as u8;
    [div(r), div(g), div(b), a]
}

/// Pillow's `alpha_composite(dst, src)` (straight alpha, its exact integer formula).
#[inline]
fn alpha_composite(dst: Rgba8, src: Rgba8) -> Rgba8 {
    let sa = u32::from(src[3]);
    if sa == 0 {
        return dst;
    }
    let da = u32::from(dst[3]);
    let shift = |v: u32| ((v >> 8) + v) >> 8;
    let outa255 = sa * 255 + da * (255 - sa);
    let coef1 = sa * 255 * 255 * 128 / outa255;
    let coef2 = 255 * 128 - coef1;
    let c = |s: u8, d: u8| {
        (shift(u32::from(s) * coef1 + u32::from(d) * coef2 + (0x80 << 7)) >> 7).min(255) as u8
    };
    [c(src[0], dst[0]), c(src[1], dst[1]), c(src[2], dst[2]), shift(outa255 + 0x80).min(255) as u8]
}

/// A1111 `masking.fill`: masked pixels replaced by the surrounding colour, spread by a cascade
/// of Pillow Gaussian blurs of the premultiplied unmasked pixels, composited coarse to fine.
pub fn masked_fill(
    image: &Image<Rgba8>,
    mask: &Image<Gray8>,
) -> Result<Image<Rgba8>, PipelineError> {
    // RGBa (premultiplied) paste of the opaque image through the inverted mask onto transparent.
    let masked: Image<Rgba8> = Image::from_pixels(
        image.width(),
        image.height(),
        image
            .pixels()
            .iter()
            .zip(mask.pixels())
            .map(|(p, &m)| {
                let keep = u32::from(255 - m);
                let c = |v: u8| div255(u32::from(v) * keep) as u8;
                [c(p[0]), c(p[1]), c(p[2]), div255(255 * keep) as u8]
            })
            .collect(),
    )
    .unwrap_or_else(|| image.clone());
    let mut out: Image<Rgba8> = Image::new(image.width(), image.height());
    for (radius, repeats) in FILL_CASCADE {
        let blurred = gaussian_blur_pillow(&masked, radius)
            .map_err(|e| PipelineError::InvalidRequest(format!("masked content fill: {e}")))?;
        for _ in 0..repeats {
            for (o, &b) in out.pixels_mut().iter_mut().zip(blurred.pixels()) {
                *o = alpha_composite(*o, unpremultiply(b));
            }
        }
    }
    // `.convert("RGB")`: the alpha is dropped.
    Ok(out.map(|[r, g, b, _]| [r, g, b, 255]))
}

fn resize_error(e: raster::ResizeError) -> PipelineError {
    PipelineError::InvalidRequest(format!("inpaint resize: {e}"))
}

fn resize_with(
    img: &Image<Gray8>,
    w: u32,
    h: u32,
    filter: ResampleFilter,
) -> Result<Image<Gray8>, PipelineError> {
    raster::resize_gray(img, w, h, filter).map_err(resize_error)
}

fn resize_gray(img: &Image<Gray8>, w: u32, h: u32) -> Result<Image<Gray8>, PipelineError> {
    resize_with(img, w, h, ResampleFilter::Lanczos3)
}

fn resize_rgba(img: &Image<Rgba8>, w: u32, h: u32) -> Result<Image<Rgba8>, PipelineError> {
    raster::resize_rgba(img, w, h, ResampleFilter::Lanczos3).map_err(resize_error)
}

/// Size and offset of A1111 `resize_image` mode 2 (fit inside, centred) for a `src_w × src_h`
/// source in a `width × height` frame; Python's float ratios and floor divisions.
fn fit_geometry(src_w: u32, src_h: u32, width: u32, height: u32) -> (u32, u32, bool, bool) {
    let ratio = f64::from(width) / f64::from(height);
    let src_ratio = f64::from(src_w) / f64::from(src_h);
    let fit_w = if ratio < src_ratio { width } else { src_w * height / src_h };
    let fit_h = if ratio >= src_ratio { height } else { src_h * width / src_w };
    (fit_w, fit_h, ratio < src_ratio, ratio > src_ratio)
}

/// A1111 `resize_image(2, …)` (fit and fill) for masks: the crop fitted inside the working
/// size, the leftover strips filled with Pillow's edge filter.
fn fit_and_fill_gray(
    src: &Image<Gray8>,
    width: u32,
    height: u32,
) -> Result<Image<Gray8>, PipelineError> {
    fit_and_fill(src, width, height, resize_gray, |img, edge, n| {
        edge_strip_gray(img, edge, n, EDGE_FILL_FILTER).map_err(resize_error)
    })
}

/// [`fit_and_fill_gray`] for the (opaque) image.
fn fit_and_fill_rgba(
    src: &Image<Rgba8>,
    width: u32,
    height: u32,
) -> Result<Image<Rgba8>, PipelineError> {
    let mut out = fit_and_fill(src, width, height, resize_rgba, |img, edge, n| {
        edge_strip_rgba(img, edge, n, EDGE_FILL_FILTER).map_err(resize_error)
    })?;
    // `Image.new("RGB")`: uncovered pixels (none, once filled) are opaque black.
    for p in out.pixels_mut() {
        p[3] = 255;
    }
    Ok(out)
}

fn fit_and_fill<P: raster::Pixel>(
    src: &Image<P>,
    width: u32,
    height: u32,
    resize: impl Fn(&Image<P>, u32, u32) -> Result<Image<P>, PipelineError>,
    strip: impl Fn(&Image<P>, Edge, u32) -> Result<Image<P>, PipelineError>,
) -> Result<Image<P>, PipelineError> {
    if src.width() == 0 || src.height() == 0 {
        return Err(PipelineError::InvalidRequest("the inpaint crop box is empty".into()));
    }
    let (fit_w, fit_h, fill_y, fill_x) = fit_geometry(src.width(), src.height(), width, height);
    if fit_w == 0 || fit_h == 0 {
        return Err(PipelineError::InvalidRequest(format!(
            "the inpaint crop box {}x{} is too thin to fit the working size {width}x{height}",
            src.width(),
            src.height()
        )));
    }
    let resized = resize(src, fit_w, fit_h)?;
    let mut out = Image::new(width, height);
    let (ox, oy) = ((width / 2 - fit_w / 2) as i32, (height / 2 - fit_h / 2) as i32);
    out.paste(&resized, ox, oy);
    if fill_y {
        let fill = height / 2 - fit_h / 2;
        if fill > 0 {
            out.paste(&strip(&resized, Edge::Top, fill)?, 0, 0);
            out.paste(&strip(&resized, Edge::Bottom, fill)?, 0, (fill + fit_h) as i32);
        }
    } else if fill_x {
        let fill = width / 2 - fit_w / 2;
        if fill > 0 {
            out.paste(&strip(&resized, Edge::Left, fill)?, 0, 0);
            out.paste(&strip(&resized, Edge::Right, fill)?, (fill + fit_w) as i32, 0);
        }
    }
    Ok(out)
}

/// A1111 `resize_image(1, …)` (crop and resize): the image scaled to cover `width × height`,
/// centred, the overflow cropped.
fn crop_and_resize(
    src: &Image<Rgba8>,
    width: u32,
    height: u32,
) -> Result<Image<Rgba8>, PipelineError> {
    let ratio = f64::from(width) / f64::from(height);
    let src_ratio = f64::from(src.width()) / f64::from(src.height());
    let cover_w = if ratio > src_ratio { width } else { src.width() * height / src.height() };
    let cover_h = if ratio <= src_ratio { height } else { src.height() * width / src.width() };
    if cover_w == 0 || cover_h == 0 {
        return Err(PipelineError::InvalidRequest("the inpaint crop box is empty".into()));
    }
    let resized = resize_rgba(src, cover_w, cover_h)?;
    let mut out = Image::filled(width, height, [0, 0, 0, 255]);
    let ox = i64::from(width / 2) - i64::from(cover_w / 2);
    let oy = i64::from(height / 2) - i64::from(cover_h / 2);
    out.paste(&resized, ox as i32, oy as i32);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpha_composite_of_opaque_source_is_the_source() {
        assert_eq!(alpha_composite([1, 2, 3, 0], [200, 100, 50, 255]), [200, 100, 50, 255]);
        assert_eq!(alpha_composite([9, 9, 9, 255], [200, 100, 50, 0]), [9, 9, 9, 255]);
    }

    /// A1111's overlay pixel: the opaque input pasted (premultiplied, through `255 − m`)
    /// onto transparent, then straight alpha.
    fn overlay_pixel(base: Rgba8, m: u8) -> Rgba8 {
        let keep = u32::from(255 - m);
        let c = |v: u8| div255(u32::from(v) * keep) as u8;
        unpremultiply([c(base[0]), c(base[1]), c(base[2]), div255(255 * keep) as u8])
    }

    /// Our paste (normal blend of generated at alpha m over the input) against A1111's
    /// (Pillow overlay + alpha_composite), for every byte triple: equal at m = 0 and 255,
    /// at most 2 levels apart in between.
    #[test]
    fn paste_is_within_two_levels_of_a1111_and_exact_at_the_ends() {
        let mut worst = 0u8;
        for m in 0..=255u8 {
            for base in 0..=255u8 {
                for generated in 0..=255u8 {
                    let a1111 = alpha_composite(
                        [generated, generated, generated, 255],
                        overlay_pixel([base, base, base, 255], m),
                    )[0];
                    let mut ours = [[base, base, base, 255]];
                    blend_row(
                        &mut ours,
                        &[[generated, generated, generated, m]],
                        BlendMode::Normal,
                        1.0,
                    );
                    let d = ours[0][0].abs_diff(a1111);
                    if m == 0 || m == 255 {
                        assert_eq!(d, 0, "m {m} base {base} generated {generated}");
                    }
                    worst = worst.max(d);
                }
            }
        }
        assert!(worst <= 2, "{worst}");
    }
}
