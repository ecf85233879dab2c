//! Colour adjustments of the active layer, blended by selection coverage.

use raster::Rgba8;

use crate::document::Ctx;
use crate::error::DocError;
use crate::ops::{edit_area, edit_layer_rows, selection_patch};

fn check(name: &'static str, v: f32, lo: f32, hi: f32) -> Result<(), DocError> {
    if v.is_finite() && (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(DocError::InvalidParameter { name, reason: format!("{v} is not in {lo}..={hi}") })
    }
}

/// Applies `f` to every non-transparent pixel of the active layer inside the edit area; with a
/// selection the result is mixed with the original by coverage.
fn adjust(ctx: &mut Ctx<'_>, f: impl Fn(Rgba8) -> Rgba8) -> Result<(), DocError> {
    let id = ctx.active_id()?;
    let area = edit_area(ctx)?;
    let sel = selection_patch(ctx, area);
    edit_layer_rows(ctx, id, area, true, |cy, cx0, row| {
        let sel_row = sel.as_ref().map(|s| s.row((cy - area.y) as u32));
        let dx = (cx0 - area.x) as usize;
        for (i, p) in row.iter_mut().enumerate() {
            if p[3] == 0 {
                continue;
            }
            let cov = sel_row.map_or(255, |r| r.get(dx + i).copied().unwrap_or(0));
            if cov == 0 {
                continue;
            }
            let q = f(*p);
            if cov == 255 {
                *p = q;
            } else {
                let t = f32::from(cov) / 255.0;
                for c in 0..3 {
                    if let (Some(o), Some(n)) = (p.get_mut(c), q.get(c)) {
                        *o = (f32::from(*o) + (f32::from(*n) - f32::from(*o)) * t + 0.5) as u8;
                    }
                }
            }
        }
    })
}

fn rgb_to_hsl(r: f32, g: f32, b: f32) -> (f32, f32, f32) {
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let l = (max + min) / 2.0;
    let d = max - min;
    if d <= 0.0 {
        return (0.0, 0.0, l);
    }
    let s = if l > 0.5 { d / (2.0 - max - min) } else { d / (max + min) };
    let h = if max == r {
        (g - b) / d + if g < b { 6.0 } else { 0.0 }
    } else if max == g {
        (b - r) / d + 2.0
    } else {
        (r - g) / d + 4.0
    };
    (h / 6.0, s, l)
}

fn hue_to_rgb(p: f32, q: f32, t: f32) -> f32 {
    let t = t.rem_euclid(1.0);
    if t < 1.0 / 6.0 {
        p + (q - p) * 6.0 * t
    } else if t < 0.5 {
        q
    } else if t < 2.0 / 3.0 {
        p + (q - p) * (2.0 / 3.0 - t) * 6.0
    } else {
        p
    }
}

fn hsl_to_rgb(h: f32, s: f32, l: f32) -> (f32, f32, f32) {
    if s <= 0.0 {
        return (l, l, l);
    }
    let q = if l < 0.5 { l * (1.0 + s) } else { l + s - l * s };
    let p = 2.0 * l - q;
    (hue_to_rgb(p, q, h + 1.0 / 3.0), hue_to_rgb(p, q, h), hue_to_rgb(p, q, h - 1.0 / 3.0))
}

#[inline]
fn unit_to_u8(v: f32) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0 + 0.5) as u8
}

pub(crate) fn hue_saturation(
    ctx: &mut Ctx<'_>,
    hue_deg: f32,
    saturation: f32,
    lightness: f32,
) -> Result<(), DocError> {
    check("hue_deg", hue_deg, -180.0, 180.0)?;
    check("saturation", saturation, -1.0, 1.0)?;
    check("lightness", lightness, -1.0, 1.0)?;
    let light =
        |v: f32| if lightness < 0.0 { v * (1.0 + lightness) } else { v + (1.0 - v) * lightness };
    adjust(ctx, |[r, g, b, a]| {
        let (h, s, l) =
            rgb_to_hsl(f32::from(r) / 255.0, f32::from(g) / 255.0, f32::from(b) / 255.0);
        let h = h + hue_deg / 360.0;
        let s = (s * (1.0 + saturation)).clamp(0.0, 1.0);
        let (r, g, b) = hsl_to_rgb(h, s, l);
        [unit_to_u8(light(r)), unit_to_u8(light(g)), unit_to_u8(light(b)), a]
    })
}

pub(crate) fn brightness_contrast(
    ctx: &mut Ctx<'_>,
    brightness: f32,
    contrast: f32,
) -> Result<(), DocError> {
    check("brightness", brightness, -1.0, 1.0)?;
    check("contrast", contrast, -1.0, 1.0)?;
    let slant = ((contrast.min(0.999) + 1.0) * std::f32::consts::FRAC_PI_4).tan();
    let mut lut = [0u8; 256];
    for (i, o) in lut.iter_mut().enumerate() {
        let mut v = i as f32 / 255.0;
        v = if brightness < 0.0 { v * (1.0 + brightness) } else { v + (1.0 - v) * brightness };
        v = (v - 0.5) * slant + 0.5;
        *o = unit_to_u8(v);
    }
    let map = |v: u8| lut.get(usize::from(v)).copied().unwrap_or(v);
    adjust(ctx, |[r, g, b, a]| [map(r), map(g), map(b), a])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hsl_round_trip() {
        for &(r, g, b) in &[(1.0, 0.0, 0.0), (0.2, 0.4, 0.6), (0.5, 0.5, 0.5), (0.9, 0.1, 0.7)] {
            let (h, s, l) = rgb_to_hsl(r, g, b);
            let (r2, g2, b2) = hsl_to_rgb(h, s, l);
            assert!((r - r2).abs() < 1e-5 && (g - g2).abs() < 1e-5 && (b - b2).abs() < 1e-5);
        }
    }
}
