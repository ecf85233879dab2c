//! Blend modes and source-over compositing of straight-alpha RGBA8 rows.
//!
//! The modes are the composite operations OpenRaster names (`svg:*`), computed with the W3C
//! *Compositing and Blending Level 1* formulas, so that Krita and GIMP flatten our files the same
//! way. Pixels enter and leave as straight-alpha `u8`; the arithmetic is `f32` premultiplied, and
//! results are rounded to nearest.
//!
//! For every mode but `plus` and `dst-out` the spec's general formula applies:
//! `co = αs·(1−αb)·Cs + αs·αb·B(Cb, Cs) + (1−αs)·αb·Cb`, `αo = αs + αb·(1−αs)`, `Co = co / αo`,
//! where `αs` is the source alpha times opacity times mask coverage.

use serde::{Deserialize, Serialize};

use crate::Rgba8;

/// A layer's composite operation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BlendMode {
    /// `svg:src-over`: the source covers the backdrop.
    #[default]
    Normal,
    Multiply,
    Screen,
    Overlay,
    Darken,
    Lighten,
    ColorDodge,
    ColorBurn,
    HardLight,
    SoftLight,
    Difference,
    Exclusion,
    Hue,
    Saturation,
    Color,
    Luminosity,
    /// Porter-Duff `plus` (additive "lighter"), premultiplied and clamped to 1.
    Plus,
    /// Porter-Duff `dst-out`: the source's alpha erases the backdrop.
    DstOut,
}

impl BlendMode {
    /// Every mode, in the order a UI lists them.
    pub const ALL: [BlendMode; 18] = [
        BlendMode::Normal,
        BlendMode::Multiply,
        BlendMode::Screen,
        BlendMode::Overlay,
        BlendMode::Darken,
        BlendMode::Lighten,
        BlendMode::ColorDodge,
        BlendMode::ColorBurn,
        BlendMode::HardLight,
        BlendMode::SoftLight,
        BlendMode::Difference,
        BlendMode::Exclusion,
        BlendMode::Hue,
        BlendMode::Saturation,
        BlendMode::Color,
        BlendMode::Luminosity,
        BlendMode::Plus,
        BlendMode::DstOut,
    ];

    /// The OpenRaster `composite-op` attribute value, e.g. `"svg:multiply"`.
    pub const fn ora_name(self) -> &'static str {
        match self {
            BlendMode::Normal => "svg:src-over",
            BlendMode::Multiply => "svg:multiply",
            BlendMode::Screen => "svg:screen",
            BlendMode::Overlay => "svg:overlay",
            BlendMode::Darken => "svg:darken",
            BlendMode::Lighten => "svg:lighten",
            BlendMode::ColorDodge => "svg:color-dodge",
            BlendMode::ColorBurn => "svg:color-burn",
            BlendMode::HardLight => "svg:hard-light",
            BlendMode::SoftLight => "svg:soft-light",
            BlendMode::Difference => "svg:difference",
            BlendMode::Exclusion => "svg:exclusion",
            BlendMode::Hue => "svg:hue",
            BlendMode::Saturation => "svg:saturation",
            BlendMode::Color => "svg:color",
            BlendMode::Luminosity => "svg:luminosity",
            BlendMode::Plus => "svg:plus",
            BlendMode::DstOut => "svg:dst-out",
        }
    }

    /// Parses an OpenRaster `composite-op`; `None` for names we do not support (the caller
    /// decides whether to fall back to `Normal`, as the OpenRaster spec suggests, or to warn).
    pub fn from_ora_name(name: &str) -> Option<BlendMode> {
        BlendMode::ALL.into_iter().find(|m| m.ora_name() == name)
    }

    /// The name shown to users.
    pub const fn display_name(self) -> &'static str {
        match self {
            BlendMode::Normal => "Normal",
            BlendMode::Multiply => "Multiply",
            BlendMode::Screen => "Screen",
            BlendMode::Overlay => "Overlay",
            BlendMode::Darken => "Darken",
            BlendMode::Lighten => "Lighten",
            BlendMode::ColorDodge => "Color Dodge",
            BlendMode::ColorBurn => "Color Burn",
            BlendMode::HardLight => "Hard Light",
            BlendMode::SoftLight => "Soft Light",
            BlendMode::Difference => "Difference",
            BlendMode::Exclusion => "Exclusion",
            BlendMode::Hue => "Hue",
            BlendMode::Saturation => "Saturation",
            BlendMode::Color => "Color",
            BlendMode::Luminosity => "Luminosity",
            BlendMode::Plus => "Add (Plus)",
            BlendMode::DstOut => "Erase (Destination Out)",
        }
    }
}

impl std::fmt::Display for BlendMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.display_name())
    }
}

/// Composites `src` over `dst` in place with `mode` at `opacity` (0..1, clamped; NaN counts as 0).
///
/// Pixels past the end of the shorter slice are left alone.
pub fn blend_row(dst: &mut [Rgba8], src: &[Rgba8], mode: BlendMode, opacity: f32) {
    blend_row_masked(dst, src, mode, opacity, None);
}

/// Like [`blend_row`], with an optional per-pixel coverage (selection, inpaint alpha) that scales
/// the source alpha by `coverage / 255`.
///
/// Pixels past the end of the shortest slice are left alone.
pub fn blend_row_masked(
    dst: &mut [Rgba8],
    src: &[Rgba8],
    mode: BlendMode,
    opacity: f32,
    coverage: Option<&[u8]>,
) {
    let opacity = if opacity.is_nan() { 0.0 } else { opacity.clamp(0.0, 1.0) };
    if opacity == 0.0 {
        return;
    }
    match mode {
        BlendMode::Normal => normal(dst, src, opacity, coverage),
        BlendMode::Multiply => composite(dst, src, opacity, coverage, separable(|b, s| b * s)),
        BlendMode::Screen => composite(dst, src, opacity, coverage, separable(screen)),
        BlendMode::Overlay => {
            composite(dst, src, opacity, coverage, separable(|b, s| hard_light(s, b)))
        }
        BlendMode::Darken => composite(dst, src, opacity, coverage, separable(f32::min)),
        BlendMode::Lighten => composite(dst, src, opacity, coverage, separable(f32::max)),
        BlendMode::ColorDodge => composite(dst, src, opacity, coverage, separable(color_dodge)),
        BlendMode::ColorBurn => composite(dst, src, opacity, coverage, separable(color_burn)),
        BlendMode::HardLight => composite(dst, src, opacity, coverage, separable(hard_light)),
        BlendMode::SoftLight => composite(dst, src, opacity, coverage, separable(soft_light)),
        BlendMode::Difference => {
            composite(dst, src, opacity, coverage, separable(|b, s| (b - s).abs()))
        }
        BlendMode::Exclusion => {
            composite(dst, src, opacity, coverage, separable(|b, s| b + s - 2.0 * b * s))
        }
        BlendMode::Hue => {
            composite(dst, src, opacity, coverage, |cb, cs| set_lum(set_sat(cs, sat(cb)), lum(cb)))
        }
        BlendMode::Saturation => {
            composite(dst, src, opacity, coverage, |cb, cs| set_lum(set_sat(cb, sat(cs)), lum(cb)))
        }
        BlendMode::Color => composite(dst, src, opacity, coverage, |cb, cs| set_lum(cs, lum(cb))),
        BlendMode::Luminosity => {
            composite(dst, src, opacity, coverage, |cb, cs| set_lum(cb, lum(cs)))
        }
        BlendMode::Plus => for_each_pixel(dst, src, opacity, coverage, plus_pixel),
        BlendMode::DstOut => for_each_pixel(dst, src, opacity, coverage, dst_out_pixel),
    }
}

/// `u8 → [0, 1]` lookup, so the hot loop does no division on the way in.
#[allow(clippy::indexing_slicing, reason = "const evaluation, i < 256; an error would not compile")]
const UNIT: [f32; 256] = {
    let mut t = [0.0f32; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = i as f32 / 255.0;
        i += 1;
    }
    t
};

#[inline]
#[allow(clippy::indexing_slicing, reason = "a u8 always indexes a 256-entry table")]
fn unit(v: u8) -> f32 {
    UNIT[v as usize]
}

/// `[0, 1] → u8`, rounded to nearest (the `as` cast saturates, so out-of-range is clamped).
#[inline]
fn to_u8(v: f32) -> u8 {
    (v * 255.0 + 0.5) as u8
}

/// Effective source alpha: pixel alpha × opacity × coverage.
#[inline]
fn source_alpha(a: u8, opacity: f32, coverage: u8) -> f32 {
    unit(a) * opacity * unit(coverage)
}

/// Runs `op(dst, src, alpha_s)` on every pixel whose effective source alpha is non-zero; a fully
/// transparent source leaves the destination untouched in every mode.
#[inline(always)]
fn for_each_pixel(
    dst: &mut [Rgba8],
    src: &[Rgba8],
    opacity: f32,
    coverage: Option<&[u8]>,
    op: impl Fn(&mut Rgba8, Rgba8, f32),
) {
    match coverage {
        None => {
            for (d, s) in dst.iter_mut().zip(src) {
                if s[3] != 0 {
                    op(d, *s, source_alpha(s[3], opacity, 255));
                }
            }
        }
        Some(cov) => {
            for ((d, s), c) in dst.iter_mut().zip(src).zip(cov) {
                if s[3] != 0 && *c != 0 {
                    op(d, *s, source_alpha(s[3], opacity, *c));
                }
            }
        }
    }
}

/// Source-over compositing of `B(Cb, Cs)` with the spec's general formula.
#[inline(always)]
fn composite(
    dst: &mut [Rgba8],
    src: &[Rgba8],
    opacity: f32,
    coverage: Option<&[u8]>,
    blend: impl Fn([f32; 3], [f32; 3]) -> [f32; 3],
) {
    for_each_pixel(dst, src, opacity, coverage, |d, s, a_s| {
        let a_b = unit(d[3]);
        let cb = [unit(d[0]), unit(d[1]), unit(d[2])];
        let cs = [unit(s[0]), unit(s[1]), unit(s[2])];
        if a_b == 1.0 {
            // Opaque backdrop (the common case under a painted stack): αo = 1, no division.
            let mixed = blend(cb, cs);
            let k = 1.0 - a_s;
            *d = [
                to_u8(a_s * mixed[0] + k * cb[0]),
                to_u8(a_s * mixed[1] + k * cb[1]),
                to_u8(a_s * mixed[2] + k * cb[2]),
                255,
            ];
            return;
        }
        let mixed = if a_b == 0.0 { cs } else { blend(cb, cs) };
        let a_o = a_s + a_b * (1.0 - a_s);
        // co / αo with co = αs(1−αb)Cs + αsαb·B + (1−αs)αb·Cb.
        let inv = 1.0 / a_o;
        let (ws, wm, wb) = (a_s * (1.0 - a_b) * inv, a_s * a_b * inv, (1.0 - a_s) * a_b * inv);
        *d = [
            to_u8(ws * cs[0] + wm * mixed[0] + wb * cb[0]),
            to_u8(ws * cs[1] + wm * mixed[1] + wb * cb[1]),
            to_u8(ws * cs[2] + wm * mixed[2] + wb * cb[2]),
            to_u8(a_o),
        ];
    });
}

/// `src-over` with `B = Cs`, with the cases a painting stack meets most taken first: an opaque
/// source is a copy, an opaque backdrop needs no division.
#[inline(always)]
fn normal(dst: &mut [Rgba8], src: &[Rgba8], opacity: f32, coverage: Option<&[u8]>) {
    for_each_pixel(dst, src, opacity, coverage, |d, s, a_s| {
        if a_s >= 1.0 {
            *d = s;
            return;
        }
        let k = 1.0 - a_s;
        let mix = |cs: u8, cb: u8| (a_s * f32::from(cs) + k * f32::from(cb) + 0.5) as u8;
        if d[3] == 255 {
            *d = [mix(s[0], d[0]), mix(s[1], d[1]), mix(s[2], d[2]), 255];
            return;
        }
        let a_b = unit(d[3]);
        let w_b = k * a_b;
        let a_o = a_s + w_b;
        let inv = 1.0 / a_o;
        let (ws, wb) = (a_s * inv, w_b * inv);
        let over = |cs: u8, cb: u8| (ws * f32::from(cs) + wb * f32::from(cb) + 0.5) as u8;
        *d = [over(s[0], d[0]), over(s[1], d[1]), over(s[2], d[2]), to_u8(a_o)];
    });
}

#[inline(always)]
fn separable(f: impl Fn(f32, f32) -> f32) -> impl Fn([f32; 3], [f32; 3]) -> [f32; 3] {
    move |b, s| [f(b[0], s[0]), f(b[1], s[1]), f(b[2], s[2])]
}

#[inline]
fn screen(b: f32, s: f32) -> f32 {
    b + s - b * s
}

#[inline]
fn hard_light(b: f32, s: f32) -> f32 {
    if s <= 0.5 { b * (2.0 * s) } else { screen(b, 2.0 * s - 1.0) }
}

#[inline]
fn color_dodge(b: f32, s: f32) -> f32 {
    if b == 0.0 {
        0.0
    } else if s >= 1.0 {
        1.0
    } else {
        (b / (1.0 - s)).min(1.0)
    }
}

#[inline]
fn color_burn(b: f32, s: f32) -> f32 {
    if b >= 1.0 {
        1.0
    } else if s == 0.0 {
        0.0
    } else {
        1.0 - ((1.0 - b) / s).min(1.0)
    }
}

#[inline]
fn soft_light(b: f32, s: f32) -> f32 {
    if s <= 0.5 {
        b - (1.0 - 2.0 * s) * b * (1.0 - b)
    } else {
        let d = if b <= 0.25 { ((16.0 * b - 12.0) * b + 4.0) * b } else { b.sqrt() };
        b + (2.0 * s - 1.0) * (d - b)
    }
}

#[inline]
fn lum(c: [f32; 3]) -> f32 {
    0.3 * c[0] + 0.59 * c[1] + 0.11 * c[2]
}

#[inline]
fn clip_color(c: [f32; 3]) -> [f32; 3] {
    let l = lum(c);
    let n = c[0].min(c[1]).min(c[2]);
    let x = c[0].max(c[1]).max(c[2]);
    let mut c = c;
    if n < 0.0 {
        let k = l / (l - n);
        c = c.map(|v| l + (v - l) * k);
    }
    if x > 1.0 {
        let k = (1.0 - l) / (x - l);
        c = c.map(|v| l + (v - l) * k);
    }
    c
}

#[inline]
fn set_lum(c: [f32; 3], l: f32) -> [f32; 3] {
    let d = l - lum(c);
    clip_color(c.map(|v| v + d))
}

#[inline]
fn sat(c: [f32; 3]) -> f32 {
    c[0].max(c[1]).max(c[2]) - c[0].min(c[1]).min(c[2])
}

/// The spec's SetSat: the largest channel becomes `s`, the smallest 0, the middle one scaled.
#[inline]
fn set_sat(c: [f32; 3], s: f32) -> [f32; 3] {
    let max = c[0].max(c[1]).max(c[2]);
    let min = c[0].min(c[1]).min(c[2]);
    let range = max - min;
    if range <= 0.0 {
        return [0.0; 3];
    }
    // Each channel maps linearly: min → 0, max → s; this equals the spec's Cmid rule and sends
    // ties (two channels equal to max) to s, as the spec's pseudo-code does.
    let k = s / range;
    c.map(|v| (v - min) * k)
}

/// Porter-Duff plus on premultiplied values, clamped to 1.
#[inline]
fn plus_pixel(d: &mut Rgba8, s: Rgba8, a_s: f32) {
    let a_b = unit(d[3]);
    let a_o = (a_s + a_b).min(1.0);
    let premul = |cs: u8, cb: u8| to_u8((a_s * unit(cs) + a_b * unit(cb)).min(1.0) / a_o);
    *d = [premul(s[0], d[0]), premul(s[1], d[1]), premul(s[2], d[2]), to_u8(a_o)];
}

/// Porter-Duff dst-out: the backdrop keeps its colour and loses `αs` of its alpha.
#[inline]
fn dst_out_pixel(d: &mut Rgba8, _s: Rgba8, a_s: f32) {
    d[3] = to_u8(unit(d[3]) * (1.0 - a_s));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Backdrop (0.2, 0.4, 0.8) and source (0.6, 0.2, 0.4), both opaque, so the output is
    /// `B(Cb, Cs)` itself; expected values below are worked by hand (×255, rounded).
    const CB: Rgba8 = [51, 102, 204, 255];
    const CS: Rgba8 = [153, 51, 102, 255];

    fn one(mode: BlendMode, dst: Rgba8, src: Rgba8, opacity: f32) -> Rgba8 {
        let mut d = [dst];
        blend_row(&mut d, &[src], mode, opacity);
        d[0]
    }

    #[test]
    fn separable_modes_on_opaque_pixels() {
        let cases: [(BlendMode, Rgba8); 10] = [
            (BlendMode::Normal, [153, 51, 102, 255]),
            // 0.2·0.6=0.12 → 30.6; 0.4·0.2=0.08 → 20.4; 0.8·0.4=0.32 → 81.6
            (BlendMode::Multiply, [31, 20, 82, 255]),
            // b+s−bs: 0.68 → 173.4; 0.52 → 132.6; 0.88 → 224.4
            (BlendMode::Screen, [173, 133, 224, 255]),
            // hard_light(s=b): b=0.2 → 2·0.6·0.2=0.24 → 61.2; b=0.4 → 2·0.2·0.4=0.16 → 40.8;
            // b=0.8 → screen(0.4, 0.6)=0.76 → 193.8
            (BlendMode::Overlay, [61, 41, 194, 255]),
            (BlendMode::Darken, [51, 51, 102, 255]),
            (BlendMode::Lighten, [153, 102, 204, 255]),
            // s=0.6: screen(0.2, 0.2)=0.36 → 91.8; s=0.2: 0.4·0.4=0.16 → 40.8;
            // s=0.4: 0.8·0.8=0.64 → 163.2
            (BlendMode::HardLight, [92, 41, 163, 255]),
            // s=0.6, b=0.2 (≤0.25): D=((3.2−12)·0.2+4)·0.2=0.448; 0.2+0.2·0.248=0.2496 → 63.6
            // s=0.2, b=0.4: 0.4−0.6·0.4·0.6=0.256 → 65.3; s=0.4, b=0.8: 0.8−0.2·0.8·0.2=0.768 → 195.8
            (BlendMode::SoftLight, [64, 65, 196, 255]),
            // |b−s|: 0.4 → 102; 0.2 → 51; 0.4 → 102
            (BlendMode::Difference, [102, 51, 102, 255]),
            // b+s−2bs: 0.56 → 142.8; 0.44 → 112.2; 0.56 → 142.8
            (BlendMode::Exclusion, [143, 112, 143, 255]),
        ];
        for (mode, want) in cases {
            assert_eq!(one(mode, CB, CS, 1.0), want, "{mode:?}");
        }
    }

    #[test]
    fn dodge_and_burn() {
        // (CB, CS above would hit exact .5 ties, which f32 may round either way.)
        // Dodge b/(1−s): 40/105 = 0.38095 → 97.14; 100/195 = 0.51282 → 130.77;
        // 230/235 = 0.97872 → 249.57.
        assert_eq!(
            one(BlendMode::ColorDodge, [40, 100, 230, 255], [150, 60, 20, 255], 1.0),
            [97, 131, 250, 255]
        );
        // Burn 1−(1−b)/s: 1−55/160 = 0.65625 → 167.34; 1−155/220 = 0.29545 → 75.34;
        // 1−25/60 = 0.58333 → 148.75.
        assert_eq!(
            one(BlendMode::ColorBurn, [200, 100, 230, 255], [160, 220, 60, 255], 1.0),
            [167, 75, 149, 255]
        );
        // Edge rules: b = 0 → 0 and s = 1 → 1 (dodge); b = 1 → 1 and s = 0 → 0 (burn).
        assert_eq!(
            one(BlendMode::ColorDodge, [0, 100, 0, 255], [255, 255, 0, 255], 1.0),
            [0, 255, 0, 255]
        );
        assert_eq!(
            one(BlendMode::ColorBurn, [255, 100, 0, 255], [0, 0, 255, 255], 1.0),
            [255, 0, 0, 255]
        );
    }

    #[test]
    fn non_separable_modes_on_opaque_pixels() {
        // Lum(Cb) = 0.06+0.236+0.088 = 0.384; Sat(Cb) = 0.6.
        // Lum(Cs) = 0.18+0.118+0.044 = 0.342; Sat(Cs) = 0.4.
        let cases: [(BlendMode, Rgba8); 4] = [
            // SetSat(Cs, 0.6) = (0.6, 0, 0.3); lum 0.213; +0.171 → (0.771, 0.171, 0.471)
            (BlendMode::Hue, [197, 44, 120, 255]),
            // SetSat(Cb, 0.4) = (0, 0.4/3, 0.4); lum 0.12267; +0.26133 → (0.26133, 0.39467, 0.66133)
            (BlendMode::Saturation, [67, 101, 169, 255]),
            // Cs + 0.042 → (0.642, 0.242, 0.442)
            (BlendMode::Color, [164, 62, 113, 255]),
            // Cb − 0.042 → (0.158, 0.358, 0.758)
            (BlendMode::Luminosity, [40, 91, 193, 255]),
        ];
        for (mode, want) in cases {
            assert_eq!(one(mode, CB, CS, 1.0), want, "{mode:?}");
        }
    }

    #[test]
    fn clip_color_pulls_out_of_gamut_colours_back() {
        // Luminosity of white source onto saturated red: SetLum((1,0,0), 1) = (1.7, 0.7, 0.7);
        // ClipColor: l=1, x=1.7 → k=0 → (1, 1, 1).
        assert_eq!(
            one(BlendMode::Luminosity, [255, 0, 0, 255], [255, 255, 255, 255], 1.0),
            [255, 255, 255, 255]
        );
        // Luminosity of black onto red: (1,0,0) − 0.3 = (0.7, −0.3, −0.3); n<0: k = 0/0.3 = 0 → 0.
        assert_eq!(
            one(BlendMode::Luminosity, [255, 0, 0, 255], [0, 0, 0, 255], 1.0),
            [0, 0, 0, 255]
        );
    }

    #[test]
    fn general_formula_with_partial_alpha() {
        // αs = 0.6·0.5 = 0.3 (153 at half opacity); αb = 0.4 (102).
        // αo = 0.3 + 0.4·0.7 = 0.58 → 147.9 → 148.
        // Multiply, red channel: Cs=0.6 (153), Cb=0.2 (51), B=0.12.
        // co = 0.3·0.6·0.6 + 0.3·0.4·0.12 + 0.7·0.4·0.2 = 0.108 + 0.0144 + 0.056 = 0.1784
        // Co = 0.1784/0.58 = 0.307586 → 78.43 → 78.
        let out = one(BlendMode::Multiply, [51, 0, 0, 102], [153, 0, 0, 153], 0.5);
        assert_eq!(out, [78, 0, 0, 148]);
    }

    #[test]
    fn normal_over_transparent_and_opaque() {
        assert_eq!(one(BlendMode::Normal, [0, 0, 0, 0], [10, 20, 30, 40], 1.0), [10, 20, 30, 40]);
        // Half-transparent white over opaque black: 0.5·(128/255)... αs = 128/255.
        assert_eq!(
            one(BlendMode::Normal, [0, 0, 0, 255], [255, 255, 255, 128], 1.0),
            [128, 128, 128, 255]
        );
        // Any mode over a fully transparent backdrop is the source.
        for mode in BlendMode::ALL {
            if !matches!(mode, BlendMode::Plus | BlendMode::DstOut) {
                assert_eq!(one(mode, [9, 9, 9, 0], CS, 1.0), CS, "{mode:?}");
            }
        }
    }

    #[test]
    fn transparent_source_zero_opacity_or_zero_coverage_leave_dst() {
        let dst = [7, 8, 9, 10];
        for mode in BlendMode::ALL {
            assert_eq!(one(mode, dst, [200, 100, 50, 0], 1.0), dst, "{mode:?}");
            assert_eq!(one(mode, dst, CS, 0.0), dst, "{mode:?}");
            assert_eq!(one(mode, dst, CS, f32::NAN), dst, "{mode:?}");
            let mut d = [dst];
            blend_row_masked(&mut d, &[CS], mode, 1.0, Some(&[0]));
            assert_eq!(d[0], dst, "{mode:?}");
        }
    }

    #[test]
    fn plus_and_dst_out() {
        // Plus, opaque: 0.2+0.6=0.8 → 204; 0.4+0.2=0.6 → 153; 0.8+0.4 → 1 (clamped)
        assert_eq!(one(BlendMode::Plus, CB, CS, 1.0), [204, 153, 255, 255]);
        // Plus, partial: αs = 0.2 (51), αb = 0.4 (102); αo = 0.6 → 153.
        // premult red: 0.2·1 + 0.4·0.2 = 0.28; /0.6 = 0.4667 → 119.
        assert_eq!(one(BlendMode::Plus, [51, 0, 0, 102], [255, 0, 0, 51], 1.0), [119, 0, 0, 153]);
        // Dst-out: αb = 1, αs = 1·0.4 → αo = 0.6 → 153; colour kept.
        assert_eq!(one(BlendMode::DstOut, CB, CS, 0.4), [51, 102, 204, 153]);
        // αb = 0.8 (204), αs = 0.6 (153) → 0.8·0.4 = 0.32 → 81.6 → 82.
        assert_eq!(one(BlendMode::DstOut, [1, 2, 3, 204], [0, 0, 0, 153], 1.0), [1, 2, 3, 82]);
        assert_eq!(one(BlendMode::DstOut, CB, [0, 0, 0, 255], 1.0), [51, 102, 204, 0]);
    }

    #[test]
    fn coverage_scales_source_alpha() {
        // Coverage 51 (0.2) on opaque white over opaque black: 0.2 → 51.
        let mut d = [[0, 0, 0, 255], [0, 0, 0, 255]];
        blend_row_masked(
            &mut d,
            &[[255, 255, 255, 255]; 2],
            BlendMode::Normal,
            1.0,
            Some(&[51, 255]),
        );
        assert_eq!(d, [[51, 51, 51, 255], [255, 255, 255, 255]]);
    }

    #[test]
    fn ora_names_round_trip() {
        for mode in BlendMode::ALL {
            assert_eq!(BlendMode::from_ora_name(mode.ora_name()), Some(mode));
            assert!(mode.ora_name().starts_with("svg:"));
        }
        assert_eq!(BlendMode::from_ora_name("svg:src-over"), Some(BlendMode::Normal));
        assert_eq!(BlendMode::from_ora_name("svg:plus"), Some(BlendMode::Plus));
        assert_eq!(BlendMode::from_ora_name("svg:dst-in"), None);
        assert_eq!(BlendMode::from_ora_name("multiply"), None);
        assert_eq!(BlendMode::ColorDodge.to_string(), "Color Dodge");
    }

    #[test]
    fn mismatched_lengths_do_not_panic() {
        let mut d = [[0u8, 0, 0, 0]; 3];
        blend_row(&mut d, &[[255, 0, 0, 255]; 2], BlendMode::Normal, 1.0);
        assert_eq!(d[2], [0, 0, 0, 0]);
        blend_row_masked(&mut d, &[[255, 0, 0, 255]; 3], BlendMode::Hue, 1.0, Some(&[255]));
    }
}
