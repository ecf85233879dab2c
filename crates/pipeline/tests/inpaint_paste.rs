//! Paste-back and edge cases of inpainting: odd canvas sizes, masks touching each border and
//! corner, a mask covering everything, one-pixel masks, empty masks (a clear error), and the
//! result layer, whose normal-blend composite over the input must be the pasted image byte for
//! byte. Plus the only-masked geometry against A1111's (tests/fixtures/inpaint/geometry.json).
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test helpers fail loudly")]

use std::ops::ControlFlow;
use std::path::PathBuf;

use candle_core::{DType, Device};
use pentimento_pipeline::generate::{PipelineError, ResultLayer, generate};
use pentimento_pipeline::geometry::inpaint_crop_box;
use pentimento_pipeline::inpaint::InpaintPlan;
use pentimento_pipeline::request::{
    GenerationRequest, InitImage, InpaintArea, InpaintOptions, MaskedContent,
};
use raster::blend::{BlendMode, blend_row};
use raster::{Gray8, Image, Rect, Rgba8};
use sd::{Checkpoint, StableDiffusion};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

/// A deterministic colourful opaque image.
fn canvas(w: u32, h: u32, salt: u32) -> Image<Rgba8> {
    let mut img = Image::new(w, h);
    for y in 0..h {
        for x in 0..w {
            let v = (x * 7 + y * 13 + salt).wrapping_mul(2_654_435_761);
            img.set(x, y, [(v >> 24) as u8, (v >> 16) as u8, (x * 255 / w.max(1)) as u8, 255]);
        }
    }
    img
}

fn mask_with(w: u32, h: u32, rects: &[Rect]) -> Image<Gray8> {
    let mut m = Image::new(w, h);
    for r in rects {
        for y in r.y.max(0)..r.bottom().min(h as i32) {
            for x in r.x.max(0)..r.right().min(w as i32) {
                m.set(x as u32, y as u32, 255);
            }
        }
    }
    m
}

fn options(mask: Image<Gray8>, area: InpaintArea, blur: u32) -> InpaintOptions {
    InpaintOptions {
        mask,
        invert_mask: false,
        area,
        padding_px: 8,
        mask_blur_px: blur,
        masked_content: MaskedContent::Fill,
        context: None,
    }
}

fn composite(base: &Image<Rgba8>, layer: &ResultLayer) -> Image<Rgba8> {
    let mut out = base.clone();
    for y in 0..layer.rect.height {
        let x0 = layer.rect.x as usize;
        let row = out.row_mut(layer.rect.y as u32 + y);
        blend_row(
            &mut row[x0..x0 + layer.rect.width as usize],
            layer.image.row(y),
            BlendMode::Normal,
            1.0,
        );
    }
    out
}

/// The paste-back promises, checked on one plan and one generated image.
fn check_paste(name: &str, plan: &InpaintPlan, generated: &Image<Rgba8>) {
    let (pasted, layer) = plan.paste_back(generated).unwrap();
    let base = &plan.paste_base;
    assert_eq!((pasted.width(), pasted.height()), (base.width(), base.height()), "{name}");
    for ((p, b), m) in pasted.pixels().iter().zip(base.pixels()).zip(plan.overlay_mask.pixels()) {
        if *m == 0 {
            assert_eq!(p, b, "{name}: an unmasked pixel changed");
        }
    }
    // Fully masked pixels are the generated (scaled back) pixels.
    for y in 0..layer.rect.height {
        for x in 0..layer.rect.width {
            let (cx, cy) = (layer.rect.x as u32 + x, layer.rect.y as u32 + y);
            let l = layer.image.get(x, y).unwrap();
            assert_eq!(l[3], plan.overlay_mask.get(cx, cy).unwrap(), "{name}: layer alpha");
            if l[3] == 255 {
                assert_eq!(pasted.get(cx, cy).unwrap(), [l[0], l[1], l[2], 255], "{name}");
            }
        }
    }
    // Outside the layer's rect the overlay mask is 0.
    for y in 0..base.height() {
        for x in 0..base.width() {
            if !layer.rect.contains(x as i32, y as i32) {
                assert_eq!(plan.overlay_mask.get(x, y), Some(0), "{name}: mask outside the box");
            }
        }
    }
    assert_eq!(composite(base, &layer), pasted, "{name}: layer composite differs");
}

#[test]
fn paste_back_on_odd_sizes_and_border_masks() {
    let (w, h) = (101u32, 77u32);
    let masks: Vec<(&str, Vec<Rect>)> = vec![
        ("left", vec![Rect::new(0, 30, 9, 11)]),
        ("top", vec![Rect::new(40, 0, 13, 6)]),
        ("right", vec![Rect::new(95, 20, 6, 30)]),
        ("bottom", vec![Rect::new(10, 70, 50, 7)]),
        ("corners", vec![Rect::new(0, 0, 5, 5), Rect::new(96, 72, 5, 5)]),
        ("one_pixel", vec![Rect::new(50, 38, 1, 1)]),
        ("full", vec![Rect::new(0, 0, w, h)]),
        ("tall", vec![Rect::new(3, 0, 4, 77)]),
        ("wide", vec![Rect::new(0, 40, 101, 3)]),
    ];
    let image = canvas(w, h, 3);
    for (name, rects) in &masks {
        for area in [InpaintArea::OnlyMasked, InpaintArea::WholePicture] {
            for blur in [0, 4] {
                for (ww, wh) in [(64, 64), (48, 64), (96, 40)] {
                    let label = format!("{name} {area:?} blur {blur} {ww}x{wh}");
                    let plan = InpaintPlan::new(
                        &image,
                        &options(mask_with(w, h, rects), area, blur),
                        ww,
                        wh,
                    )
                    .unwrap_or_else(|e| panic!("{label}: {e}"));
                    assert_eq!(
                        (plan.working_image.width(), plan.working_image.height()),
                        (ww, wh),
                        "{label}"
                    );
                    check_paste(&label, &plan, &canvas(ww, wh, 99));
                }
            }
        }
    }
}

#[test]
fn empty_masks_are_errors_not_panics() {
    let image = canvas(33, 21, 1);
    for area in [InpaintArea::OnlyMasked, InpaintArea::WholePicture] {
        let err =
            InpaintPlan::new(&image, &options(Image::new(33, 21), area, 4), 64, 64).unwrap_err();
        assert!(matches!(&err, PipelineError::InvalidRequest(m) if m.contains("mask is empty")));
        // Values at or below 128 are not masked (A1111's binarisation).
        let faint = Image::filled(33, 21, 128u8);
        assert!(InpaintPlan::new(&image, &options(faint, area, 4), 64, 64).is_err());
        // A full mask inverted is empty too.
        let mut inverted = options(Image::filled(33, 21, 255u8), area, 4);
        inverted.invert_mask = true;
        assert!(InpaintPlan::new(&image, &inverted, 64, 64).is_err());
    }
    let wrong_size = options(Image::filled(10, 10, 255u8), InpaintArea::OnlyMasked, 4);
    let err = InpaintPlan::new(&image, &wrong_size, 64, 64).unwrap_err();
    assert!(err.to_string().contains("the mask is 10x10 but the image is 33x21"), "{err}");
}

#[test]
fn whole_pipeline_on_an_odd_canvas_keeps_unmasked_pixels() {
    let ckpt = Checkpoint::open(fixtures().join("models/tiny_sd1.safetensors")).unwrap();
    let model = StableDiffusion::load(&ckpt, &Device::Cpu, DType::F32).unwrap();
    let (w, h) = (75u32, 53u32);
    let image = canvas(w, h, 5);
    for (area, rects) in [
        (InpaintArea::OnlyMasked, vec![Rect::new(0, 0, 10, 53), Rect::new(70, 40, 5, 13)]),
        (InpaintArea::OnlyMasked, vec![Rect::new(0, 0, w, h)]),
        (InpaintArea::WholePicture, vec![Rect::new(30, 0, 20, 20)]),
    ] {
        let mut req = GenerationRequest::txt2img("a fox", 64, 48, 7);
        req.steps = 4;
        req.batch_size = 2;
        req.init = Some(InitImage { image: image.clone(), strength: 0.75 });
        req.inpaint = Some(options(mask_with(w, h, &rects), area, 4));
        let plan = InpaintPlan::new(&image, req.inpaint.as_ref().unwrap(), 64, 48).unwrap();
        let out = generate(&model, &req, &mut |_| ControlFlow::Continue(())).unwrap();
        assert_eq!(out.images.len(), 2);
        for (img, layer) in out.images.iter().zip(&out.layers) {
            assert_eq!(
                (img.width(), img.height()),
                (plan.paste_base.width(), plan.paste_base.height())
            );
            for ((p, b), m) in
                img.pixels().iter().zip(plan.paste_base.pixels()).zip(plan.overlay_mask.pixels())
            {
                if *m == 0 {
                    assert_eq!(p, b);
                }
            }
            assert_eq!(&composite(&plan.paste_base, layer), img);
        }
    }
}

#[test]
fn only_masked_geometry_matches_a1111() {
    let text = std::fs::read_to_string(fixtures().join("inpaint/geometry.json")).unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&text).unwrap();
    let rect_of = |v: &serde_json::Value| {
        let n: Vec<i64> = v.as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect();
        Rect::new(n[0] as i32, n[1] as i32, n[2] as u32, n[3] as u32)
    };
    let mut checked = 0;
    for case in manifest["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let (w, h) =
            (case["canvas_width"].as_u64().unwrap(), case["canvas_height"].as_u64().unwrap());
        let rects: Vec<Rect> = case["mask_rects"].as_array().unwrap().iter().map(rect_of).collect();
        let mask = mask_with(w as u32, h as u32, &rects);
        let context = (!case["context"].is_null()).then(|| rect_of(&case["context"]));
        let got = inpaint_crop_box(
            &mask,
            case["padding"].as_u64().unwrap() as u32,
            context,
            case["width"].as_u64().unwrap() as u32,
            case["height"].as_u64().unwrap() as u32,
        );
        match case.get("crop_region") {
            Some(expected) => {
                let e: Vec<i64> =
                    expected.as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect();
                let got = got.unwrap_or_else(|| panic!("{name}: no box"));
                let ours = [got.x, got.y, got.right(), got.bottom()].map(i64::from);
                assert_eq!(ours.as_slice(), e.as_slice(), "{name}");
            }
            None => assert!(got.is_none(), "{name}: expected the empty-mask error"),
        }
        checked += 1;
    }
    assert_eq!(checked, 65);
}
