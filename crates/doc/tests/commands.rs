//! Per-command tests with exact pixels.
#![allow(clippy::unwrap_used, reason = "test helpers panic on failure, which fails the test")]

use pentimento_doc::*;
use raster::{Image, Rect, TiledImage};

const RED: [u8; 4] = [255, 0, 0, 255];
const BLUE: [u8; 4] = [0, 0, 255, 255];

fn hard_brush(size: f32, color: [u8; 4]) -> Brush {
    Brush {
        size_px: size,
        hardness: 1.0,
        opacity: 1.0,
        flow: 1.0,
        spacing: 0.1,
        color,
        eraser: false,
        ..Brush::default()
    }
}

fn doc(w: u32, h: u32) -> Document {
    Document::new(w, h, None).unwrap()
}

fn px(d: &Document, x: i32, y: i32) -> [u8; 4] {
    let l = d.active_layer().unwrap();
    l.pixels.get(x - l.offset_x, y - l.offset_y)
}

#[test]
fn hard_dab_exact_pixels() {
    let mut d = doc(32, 32);
    let ch = d
        .apply(Command::Dab {
            target: PaintTarget::ActiveLayer,
            brush: hard_brush(5.0, RED),
            at: StrokePoint::new(10.5, 10.5),
        })
        .unwrap();
    // radius 2.5 around the centre of pixel (10,10): coverage = clamp(3 - d, 0, 1).
    assert_eq!(px(&d, 10, 10), RED);
    assert_eq!(px(&d, 12, 10), RED); // d = 2
    assert_eq!(px(&d, 13, 10), [0, 0, 0, 0]); // d = 3
    // d = sqrt(5) ≈ 2.236 → coverage 0.764 → alpha round(0.764·255) = 195
    let p = px(&d, 12, 11);
    assert_eq!(&p[..3], &[255, 0, 0]);
    assert_eq!(p[3], ((3.0f32 - 5f32.sqrt()) * 255.0 + 0.5) as u8);
    assert!(ch.composite_bounds().contains(10, 10));
    assert_eq!(d.undo_label(), Some("Brush stroke"));
    d.undo().unwrap();
    assert_eq!(px(&d, 10, 10), [0, 0, 0, 0]);
}

#[test]
fn stroke_is_one_undo_step_and_spaced() {
    let mut d = doc(64, 64);
    let before = d.layers().to_vec();
    d.begin_stroke(PaintTarget::ActiveLayer, hard_brush(4.0, RED), StrokePoint::new(5.0, 5.0))
        .unwrap();
    d.stroke_to(StrokePoint::new(40.0, 5.0)).unwrap();
    d.stroke_to(StrokePoint::new(40.0, 30.0)).unwrap();
    d.end_stroke().unwrap();
    assert_eq!(d.history_len(), (1, 0));
    for x in 5..40 {
        assert_eq!(px(&d, x, 4), RED, "x={x}");
    }
    for y in 5..30 {
        assert_eq!(px(&d, 39, y), RED, "y={y}");
    }
    d.undo().unwrap();
    assert_eq!(d.layers(), &before[..]);
    d.redo().unwrap();
    assert_eq!(px(&d, 20, 4), RED);
}

#[test]
fn opacity_caps_a_stroke_and_flow_builds_up() {
    let mut d = doc(32, 32);
    let brush = Brush { opacity: 0.5, ..hard_brush(8.0, RED) };
    // Many overlapping dabs: alpha stays at the opacity cap.
    d.paint_stroke(
        PaintTarget::ActiveLayer,
        brush,
        &[StrokePoint::new(16.0, 16.0), StrokePoint::new(16.5, 16.0), StrokePoint::new(17.0, 16.0)],
    )
    .unwrap();
    assert_eq!(px(&d, 16, 16), [255, 0, 0, 128]);
    let mut d = doc(32, 32);
    let brush = Brush { flow: 0.5, spacing: 0.75, ..hard_brush(8.0, RED) };
    d.paint_stroke(
        PaintTarget::ActiveLayer,
        brush,
        &[StrokePoint::new(16.0, 16.5), StrokePoint::new(22.0, 16.5)],
    )
    .unwrap();
    // Dabs at x = 16 and 22 (6 px apart) both fully cover pixel 19: 1 - 0.5·0.5 = 0.75.
    assert_eq!(px(&d, 19, 16)[3], 191);
    assert_eq!(px(&d, 14, 16)[3], 128);
}

#[test]
fn eraser_and_alpha_lock() {
    let mut d = Document::new(16, 16, Some(BLUE)).unwrap();
    let eraser = Brush { eraser: true, ..hard_brush(3.0, RED) };
    d.apply(Command::Dab {
        target: PaintTarget::ActiveLayer,
        brush: eraser,
        at: StrokePoint::new(4.5, 4.5),
    })
    .unwrap();
    assert_eq!(px(&d, 4, 4), [0, 0, 0, 0]);
    // Alpha lock: paint recolours only where alpha exists, alpha unchanged.
    let id = d.active_layer_id().unwrap();
    let props = LayerProps { alpha_lock: true, ..d.layer(id).unwrap().props.clone() };
    d.apply(Command::SetLayerProps { id, props }).unwrap();
    d.apply(Command::Dab {
        target: PaintTarget::ActiveLayer,
        brush: hard_brush(9.0, RED),
        at: StrokePoint::new(4.5, 4.5),
    })
    .unwrap();
    assert_eq!(px(&d, 4, 4), [0, 0, 0, 0]);
    assert_eq!(px(&d, 7, 4), RED);
    let eraser = Brush { eraser: true, ..hard_brush(9.0, RED) };
    d.apply(Command::Dab {
        target: PaintTarget::ActiveLayer,
        brush: eraser,
        at: StrokePoint::new(4.5, 4.5),
    })
    .unwrap();
    assert_eq!(px(&d, 7, 4), RED, "erasing an alpha-locked layer changes nothing");
}

#[test]
fn selection_clips_painting() {
    let mut d = doc(32, 32);
    d.apply(Command::Select {
        shape: SelectShape::Rect(Rect::new(0, 0, 10, 32)),
        op: SelectOp::Replace,
        feather_px: 0.0,
    })
    .unwrap();
    d.apply(Command::Dab {
        target: PaintTarget::ActiveLayer,
        brush: hard_brush(12.0, RED),
        at: StrokePoint::new(10.0, 10.0),
    })
    .unwrap();
    assert_eq!(px(&d, 9, 10), RED);
    assert_eq!(px(&d, 10, 10), [0, 0, 0, 0]);
    // Empty selection: nothing is editable.
    d.apply(Command::Select {
        shape: SelectShape::Rect(Rect::new(0, 0, 32, 32)),
        op: SelectOp::Subtract,
        feather_px: 0.0,
    })
    .unwrap();
    assert!(d.selection().is_some());
    d.apply(Command::Dab {
        target: PaintTarget::ActiveLayer,
        brush: hard_brush(12.0, BLUE),
        at: StrokePoint::new(20.0, 20.0),
    })
    .unwrap();
    assert_eq!(px(&d, 20, 20), [0, 0, 0, 0]);
    assert_eq!(d.apply(Command::FillSelection { color: BLUE }), Err(DocError::EmptySelection));
    d.apply(Command::SelectNone).unwrap();
    assert!(d.selection().is_none());
}

#[test]
fn mask_painting_never_touches_layers() {
    let mut d = Document::new(32, 32, Some(BLUE)).unwrap();
    let layers = d.layers().to_vec();
    let comp = d.render_composite();
    let ch = d
        .paint_stroke(
            PaintTarget::Mask,
            hard_brush(6.0, RED),
            &[StrokePoint::new(5.0, 5.0), StrokePoint::new(20.0, 20.0)],
        )
        .unwrap();
    assert!(ch.composite.is_empty());
    assert!(!ch.mask.is_empty());
    assert_eq!(d.layers(), &layers[..]);
    assert_eq!(d.render_composite(), comp);
    assert_eq!(d.mask().get(12, 12), 255);
    assert_eq!(d.mask().get(30, 2), 0);
    assert_eq!(d.undo_label(), Some("Mask stroke"));
    d.apply(Command::MaskInvert).unwrap();
    assert_eq!(d.mask().get(12, 12), 0);
    assert_eq!(d.mask().get(30, 2), 255);
    d.apply(Command::MaskClear).unwrap();
    assert_eq!(d.mask().content_bounds(), Rect::default());
    assert_eq!(d.layers(), &layers[..]);
}

#[test]
fn mask_from_selection_layer_alpha_and_load() {
    let mut d = doc(16, 16);
    d.apply(Command::Select {
        shape: SelectShape::Rect(Rect::new(2, 2, 4, 4)),
        op: SelectOp::Replace,
        feather_px: 0.0,
    })
    .unwrap();
    d.apply(Command::MaskFromSelection).unwrap();
    assert_eq!(d.mask().content_bounds(), Rect::new(2, 2, 4, 4));
    let mut img = Image::new(3, 3);
    img.set(1, 1, [9, 9, 9, 77]);
    d.apply(Command::AddLayerFromImage {
        image: img,
        x: 5,
        y: 6,
        name: "gen".into(),
        record: None,
        index: None,
    })
    .unwrap();
    let id = d.active_layer_id().unwrap();
    d.apply(Command::MaskFromLayerAlpha { id }).unwrap();
    assert_eq!(d.mask().get(6, 7), 77);
    assert_eq!(d.mask().content_bounds(), Rect::new(6, 7, 1, 1));
    assert!(d.apply(Command::MaskLoad { image: Image::new(3, 3) }).is_err());
    d.apply(Command::MaskLoad { image: Image::filled(16, 16, 4) }).unwrap();
    assert_eq!(d.mask().get(15, 15), 4);
}

#[test]
fn flood_fill_contiguous_with_tolerance() {
    let mut d = Document::new(16, 16, Some([100, 100, 100, 255])).unwrap();
    // A wall at x = 8.
    for y in 0..16 {
        d.paint_stroke(
            PaintTarget::ActiveLayer,
            hard_brush(1.0, [0, 0, 0, 255]),
            &[StrokePoint::new(8.5, y as f32 + 0.5)],
        )
        .unwrap();
    }
    d.paint_stroke(
        PaintTarget::ActiveLayer,
        hard_brush(1.0, [103, 100, 100, 255]),
        &[StrokePoint::new(2.5, 2.5)],
    )
    .unwrap();
    d.apply(Command::FloodFill {
        x: 0,
        y: 0,
        color: RED,
        tolerance: 2,
        source: FillSource::ActiveLayer,
    })
    .unwrap();
    assert_eq!(px(&d, 0, 0), RED);
    assert_eq!(px(&d, 7, 15), RED);
    assert_eq!(px(&d, 2, 2), [103, 100, 100, 255], "outside tolerance");
    assert_eq!(px(&d, 8, 3), [0, 0, 0, 255]);
    assert_eq!(px(&d, 9, 3), [100, 100, 100, 255], "behind the wall");
    d.apply(Command::FloodFill {
        x: 0,
        y: 0,
        color: BLUE,
        tolerance: 255,
        source: FillSource::Composite,
    })
    .unwrap();
    assert_eq!(px(&d, 15, 15), BLUE);
    assert_eq!(
        d.apply(Command::FloodFill {
            x: 16,
            y: 0,
            color: BLUE,
            tolerance: 0,
            source: FillSource::ActiveLayer
        }),
        Err(DocError::OutsideCanvas { x: 16, y: 0 })
    );
}

#[test]
fn antialiased_selection_weights_fill() {
    let mut d = doc(16, 16);
    // A rect with half-pixel edges: coverage 128 on the edge pixels.
    d.apply(Command::Select {
        shape: SelectShape::Polygon(vec![(2.5, 2.0), (6.0, 2.0), (6.0, 6.0), (2.5, 6.0)]),
        op: SelectOp::Replace,
        feather_px: 0.0,
    })
    .unwrap();
    let sel = d.selection().unwrap();
    assert_eq!(sel.get(2, 3), 128);
    assert_eq!(sel.get(3, 3), 255);
    assert_eq!(sel.get(6, 3), 0);
    d.apply(Command::FillSelection { color: RED }).unwrap();
    assert_eq!(px(&d, 3, 3), RED);
    assert_eq!(px(&d, 2, 3), [255, 0, 0, 128]);
    d.apply(Command::InvertSelection).unwrap();
    assert_eq!(d.selection().unwrap().get(2, 3), 127);
    d.apply(Command::SelectAll).unwrap();
    d.apply(Command::ClearSelection).unwrap();
    assert_eq!(px(&d, 3, 3), [0, 0, 0, 0]);
}

#[test]
fn copy_cut_paste() {
    let mut d = Document::new(16, 16, Some(RED)).unwrap();
    d.apply(Command::Select {
        shape: SelectShape::Rect(Rect::new(4, 4, 3, 2)),
        op: SelectOp::Replace,
        feather_px: 0.0,
    })
    .unwrap();
    let (clip, _) = d.cut().unwrap();
    assert_eq!((clip.x, clip.y, clip.image.width(), clip.image.height()), (4, 4, 3, 2));
    assert!(clip.image.pixels().iter().all(|p| *p == RED));
    assert_eq!(px(&d, 4, 4), [0, 0, 0, 0]);
    assert_eq!(d.undo_label(), Some("Cut"));
    let ch = d.apply(Command::Paste { image: clip.image.clone(), x: 10, y: 10 }).unwrap();
    let new = ch.created_layer.unwrap();
    assert_eq!(d.active_layer_id(), Some(new));
    assert_eq!(d.layers().len(), 2);
    d.apply(Command::SelectNone).unwrap();
    assert_eq!(d.render_region(Rect::new(10, 10, 3, 2)).pixels(), clip.image.pixels());
    let merged = d.copy(true).unwrap();
    assert_eq!(merged.image.width(), 16);
}

#[test]
fn layer_ops_and_labels() {
    let mut d = doc(8, 8);
    let bg = d.active_layer_id().unwrap();
    let a = d
        .apply(Command::AddLayer { name: String::new(), index: None })
        .unwrap()
        .created_layer
        .unwrap();
    assert_eq!(d.layer_index(a), Some(1));
    assert_eq!(d.undo_label(), Some("Add layer"));
    let dup = d.apply(Command::DuplicateLayer { id: a }).unwrap().created_layer.unwrap();
    assert_eq!(d.layers().len(), 3);
    d.apply(Command::MoveLayerTo { id: dup, index: 0 }).unwrap();
    assert_eq!(d.layers()[0].id(), dup);
    d.apply(Command::RenameLayer { id: a, name: "ink".into() }).unwrap();
    assert_eq!(d.layer(a).unwrap().name(), "ink");
    d.apply(Command::DeleteLayer { id: dup }).unwrap();
    d.apply(Command::DeleteLayer { id: a }).unwrap();
    assert_eq!(d.apply(Command::DeleteLayer { id: bg }), Err(DocError::LastLayer));
    assert_eq!(d.apply(Command::MergeDown { id: bg }), Err(DocError::NothingBelow(bg)));
    while d.can_undo() {
        d.undo();
    }
    assert_eq!(d.layers().len(), 1);
    assert_eq!(d.redo_label(), Some("Add layer"));
}

#[test]
fn merge_down_and_flatten_keep_the_picture() {
    let mut d = Document::new(8, 8, Some([200, 100, 50, 255])).unwrap();
    let mut img = Image::new(4, 4);
    for p in img.pixels_mut() {
        *p = [10, 20, 30, 128];
    }
    let top = d
        .apply(Command::AddLayerFromImage {
            image: img,
            x: 2,
            y: 2,
            name: "t".into(),
            record: None,
            index: None,
        })
        .unwrap()
        .created_layer
        .unwrap();
    let props = LayerProps {
        blend_mode: BlendMode::Multiply,
        opacity: 0.5,
        ..d.layer(top).unwrap().props.clone()
    };
    d.apply(Command::SetLayerProps { id: top, props }).unwrap();
    let before = d.render_composite();
    d.apply(Command::MergeDown { id: top }).unwrap();
    assert_eq!(d.layers().len(), 1);
    assert_eq!(d.render_composite(), before);
    d.undo();
    d.apply(Command::Flatten).unwrap();
    assert_eq!(d.layers().len(), 1);
    assert_eq!(d.render_composite(), before);
}

#[test]
fn composite_matches_hand_computed_values() {
    let mut d = Document::new(4, 1, Some([0, 0, 255, 255])).unwrap();
    let mut img = Image::new(2, 1);
    img.set(0, 0, [255, 0, 0, 255]);
    img.set(1, 0, [255, 0, 0, 128]);
    let id = d
        .apply(Command::AddLayerFromImage {
            image: img,
            x: 1,
            y: 0,
            name: "r".into(),
            record: None,
            index: None,
        })
        .unwrap()
        .created_layer
        .unwrap();
    let c = d.composite_region(Rect::new(0, 0, 4, 1));
    assert_eq!(c.get(0, 0), Some([0, 0, 255, 255]));
    assert_eq!(c.get(1, 0), Some([255, 0, 0, 255]));
    // 128/255 red over blue: r = 255·0.502 = 128, b = 255·0.498 = 127.
    assert_eq!(c.get(2, 0), Some([128, 0, 127, 255]));
    assert_eq!(c.get(3, 0), Some([0, 0, 255, 255]));
    // Layer opacity 0.5 on the opaque red pixel: 127.5 rounds up in both channels; and the
    // cache is invalidated.
    let props = LayerProps { opacity: 0.5, ..d.layer(id).unwrap().props.clone() };
    d.apply(Command::SetLayerProps { id, props }).unwrap();
    let c = d.composite_region(Rect::new(0, 0, 4, 1));
    assert_eq!(c.get(1, 0), Some([128, 0, 128, 255]));
    // Hidden: only blue.
    let props = LayerProps { visible: false, ..d.layer(id).unwrap().props.clone() };
    d.apply(Command::SetLayerProps { id, props }).unwrap();
    assert_eq!(d.composite_region(Rect::new(0, 0, 4, 1)).get(1, 0), Some([0, 0, 255, 255]));
    // Over transparent: straight alpha preserved.
    let d2 = Document::from_parts(DocumentParts {
        width: 2,
        height: 1,
        layers: vec![Layer::new(
            LayerId::from_raw(7),
            LayerProps::default(),
            TiledImage::from_image(&Image::filled(2, 1, [10, 20, 30, 40])),
        )],
        active: None,
        mask: None,
        selection: None,
    })
    .unwrap();
    assert_eq!(d2.render_region(Rect::new(0, 0, 2, 1)).get(1, 0), Some([10, 20, 30, 40]));
}

#[test]
fn cached_composite_equals_render_after_edits() {
    let mut d = Document::new(200, 150, Some([255, 255, 255, 255])).unwrap();
    d.apply(Command::AddLayer { name: "a".into(), index: None }).unwrap();
    let _ = d.composite_region(d.bounds());
    d.paint_stroke(
        PaintTarget::ActiveLayer,
        hard_brush(20.0, RED),
        &[StrokePoint::new(10.0, 10.0), StrokePoint::new(190.0, 140.0)],
    )
    .unwrap();
    assert_eq!(d.composite_region(d.bounds()), d.render_composite());
    d.undo();
    assert_eq!(d.composite_region(d.bounds()), d.render_composite());
    let id = d.active_layer_id().unwrap();
    d.redo();
    d.apply(Command::OffsetLayer { id, dx: 13, dy: -7 }).unwrap();
    assert_eq!(d.composite_region(d.bounds()), d.render_composite());
}

#[test]
fn transforms() {
    let mut d = doc(16, 16);
    let mut img = Image::new(2, 1);
    img.set(0, 0, RED);
    img.set(1, 0, BLUE);
    let id = d
        .apply(Command::AddLayerFromImage {
            image: img,
            x: 4,
            y: 4,
            name: "x".into(),
            record: None,
            index: None,
        })
        .unwrap()
        .created_layer
        .unwrap();
    d.apply(Command::TransformLayer { id, transform: Affine::flip_horizontal_about(5.0) }).unwrap();
    let c = d.render_region(Rect::new(4, 4, 2, 1));
    assert_eq!(c.pixels(), &[BLUE, RED]);
    d.apply(Command::TransformLayer { id, transform: Affine::scale_about(2.0, 2.0, 4.0, 4.0) })
        .unwrap();
    let l = d.layer(id).unwrap();
    assert_eq!(l.canvas_bounds(), Rect::new(4, 4, 4, 2));
    // Scaling ×2: outer pixels keep their colours exactly at the pixel whose centre maps to a source centre.
    d.apply(Command::TransformLayer { id, transform: Affine::rotate_about(90.0, 8.0, 8.0) })
        .unwrap();
    assert_eq!(
        d.apply(Command::TransformLayer { id, transform: Affine::scale_about(0.0, 1.0, 0.0, 0.0) }),
        Err(DocError::DegenerateTransform)
    );
    d.undo();
    d.undo();
    d.undo();
    assert_eq!(d.render_region(Rect::new(4, 4, 2, 1)).pixels(), &[RED, BLUE]);
}

#[test]
fn adjustments_respect_selection() {
    let mut d = Document::new(4, 1, Some([200, 100, 50, 255])).unwrap();
    d.apply(Command::Select {
        shape: SelectShape::Rect(Rect::new(0, 0, 2, 1)),
        op: SelectOp::Replace,
        feather_px: 0.0,
    })
    .unwrap();
    d.apply(Command::HueSaturation { hue_deg: 0.0, saturation: -1.0, lightness: 0.0 }).unwrap();
    // Fully desaturated: grey at HSL lightness (200+50)/2 = 125.
    assert_eq!(px(&d, 0, 0), [125, 125, 125, 255]);
    assert_eq!(px(&d, 3, 0), [200, 100, 50, 255]);
    d.apply(Command::SelectNone).unwrap();
    d.apply(Command::BrightnessContrast { brightness: -1.0, contrast: 0.0 }).unwrap();
    assert_eq!(px(&d, 3, 0), [0, 0, 0, 255]);
    d.undo();
    d.apply(Command::BrightnessContrast { brightness: 0.0, contrast: 0.0 }).unwrap();
    assert_eq!(px(&d, 3, 0), [200, 100, 50, 255]);
}

#[test]
fn canvas_resize_and_crop() {
    let mut d = Document::new(10, 10, Some(RED)).unwrap();
    d.apply(Command::MaskFill).unwrap();
    d.apply(Command::ResizeCanvas { width: 20, height: 10, anchor: Anchor::Center }).unwrap();
    assert_eq!((d.width(), d.height()), (20, 10));
    assert_eq!(d.layers()[0].offset_x, 5);
    assert_eq!(d.mask().content_bounds(), Rect::new(5, 0, 10, 10));
    // Painting reaches the new area: the layer grows.
    d.apply(Command::Dab {
        target: PaintTarget::ActiveLayer,
        brush: hard_brush(2.0, BLUE),
        at: StrokePoint::new(0.5, 0.5),
    })
    .unwrap();
    assert_eq!(d.render_region(Rect::new(0, 0, 1, 1)).get(0, 0), Some(BLUE));
    d.apply(Command::Crop { rect: Rect::new(4, 2, 4, 4) }).unwrap();
    assert_eq!((d.width(), d.height()), (4, 4));
    let c = d.render_composite();
    assert_eq!(c.get(0, 0), Some([0, 0, 0, 0]));
    assert_eq!(c.get(1, 0), Some(RED));
    assert_eq!(d.mask().get(1, 0), 255);
    assert!(d.apply(Command::Crop { rect: Rect::new(50, 50, 2, 2) }).is_err());
    while d.can_undo() {
        d.undo();
    }
    assert_eq!((d.width(), d.height()), (10, 10));
    assert_eq!(d.mask().content_bounds(), Rect::default());
}

#[test]
fn history_cap_drops_oldest_steps() {
    let mut d = doc(256, 256);
    d.set_history_cap_bytes(100_000);
    for i in 0..10 {
        d.paint_stroke(
            PaintTarget::ActiveLayer,
            hard_brush(30.0, RED),
            &[StrokePoint::new(20.0 * i as f32, 100.0)],
        )
        .unwrap();
    }
    let (undo, _) = d.history_len();
    assert!((1..10).contains(&undo), "{undo}");
    assert!(d.history_bytes() <= 100_000 || undo == 1);
}

#[test]
fn transactions_group_and_cancel() {
    let mut d = doc(16, 16);
    let rev0 = d.revision();
    d.begin("Group").unwrap();
    d.apply(Command::FillSelection { color: RED }).unwrap();
    d.apply(Command::AddLayer { name: "x".into(), index: None }).unwrap();
    d.commit().unwrap();
    assert_eq!(d.history_len(), (1, 0));
    assert_eq!(d.undo_label(), Some("Group"));
    assert!(d.revision() > rev0);
    d.begin("Preview").unwrap();
    d.apply(Command::FillSelection { color: BLUE }).unwrap();
    d.cancel().unwrap();
    assert_eq!(d.history_len(), (1, 0));
    assert_eq!(d.render_region(Rect::new(0, 0, 1, 1)).get(0, 0), Some(RED));
}

#[test]
fn from_parts_validates() {
    let l = |id| Layer::new(LayerId::from_raw(id), LayerProps::default(), TiledImage::new(4, 4));
    let parts = DocumentParts {
        width: 4,
        height: 4,
        layers: vec![l(3), l(3)],
        active: None,
        mask: None,
        selection: None,
    };
    assert_eq!(
        Document::from_parts(parts).err(),
        Some(DocError::DuplicateLayerId(LayerId::from_raw(3)))
    );
    let parts = DocumentParts {
        width: 4,
        height: 4,
        layers: vec![l(3), l(9)],
        active: None,
        mask: None,
        selection: Some(TiledImage::new(2, 2)),
    };
    assert!(Document::from_parts(parts).is_err());
    let parts = DocumentParts {
        width: 4,
        height: 4,
        layers: vec![l(3), l(9)],
        active: None,
        mask: None,
        selection: None,
    };
    let mut d = Document::from_parts(parts).unwrap();
    assert_eq!(d.active_layer_id(), Some(LayerId::from_raw(9)));
    assert_eq!(d.peek_next_layer_id(), LayerId::from_raw(10));
    assert!(Document::new(0, 5, None).is_err());
    let ch = d.apply(Command::AddLayer { name: "n".into(), index: Some(0) }).unwrap();
    assert_eq!(ch.created_layer, Some(LayerId::from_raw(10)));
}

#[test]
fn feathered_selection_is_soft_and_symmetric() {
    let mut d = doc(64, 64);
    d.apply(Command::Select {
        shape: SelectShape::Rect(Rect::new(16, 16, 32, 32)),
        op: SelectOp::Replace,
        feather_px: 4.0,
    })
    .unwrap();
    let s = d.selection().unwrap();
    assert_eq!(s.get(32, 32), 255);
    assert_eq!(s.get(2, 2), 0);
    let edge = s.get(16, 32);
    assert!(edge > 100 && edge < 160, "{edge}");
    assert_eq!(s.get(16, 32), s.get(47, 32));
    assert!(s.get(13, 32) > 0 && s.get(13, 32) < edge);
}

#[test]
fn composite_during_a_stroke_equals_a_fresh_render() {
    let mut d = Document::new(160, 130, Some([200, 190, 180, 255])).unwrap();
    let modes = [
        BlendMode::Multiply,
        BlendMode::Screen,
        BlendMode::Normal,
        BlendMode::Overlay,
        BlendMode::Difference,
    ];
    for (i, mode) in modes.iter().enumerate() {
        let mut img = Image::new(100, 90);
        for (n, p) in img.pixels_mut().iter_mut().enumerate() {
            let v = (n as u32).wrapping_mul(2654435761).wrapping_add(i as u32 * 977);
            *p = [(v >> 3) as u8, (v >> 11) as u8, (v >> 19) as u8, 40 + (v % 200) as u8];
        }
        let id = d
            .apply(Command::AddLayerFromImage {
                image: img,
                x: 10 * i as i32,
                y: 7 * i as i32,
                name: format!("l{i}"),
                record: None,
                index: None,
            })
            .unwrap()
            .created_layer
            .unwrap();
        let props =
            LayerProps { blend_mode: *mode, opacity: 0.8, ..d.layer(id).unwrap().props.clone() };
        d.apply(Command::SetLayerProps { id, props }).unwrap();
    }
    let middle = d.layers()[3].id();
    d.set_active_layer(middle).unwrap();
    let full = d.bounds();
    let _ = d.composite_region(full);
    let brush = Brush {
        size_px: 24.0,
        hardness: 0.5,
        opacity: 0.7,
        flow: 0.5,
        color: [10, 200, 90, 255],
        ..Brush::default()
    };
    let ch = d.begin_stroke(PaintTarget::ActiveLayer, brush, StrokePoint::new(5.0, 5.0)).unwrap();
    let _ = d.composite_region(ch.composite_bounds());
    for i in 1..30 {
        let p = StrokePoint::new(5.0 + i as f32 * 5.0, 5.0 + (i as f32 * 0.7).sin() * 40.0 + 50.0);
        let ch = d.stroke_to(p).unwrap();
        let part = d.composite_region(ch.composite_bounds());
        assert_eq!(part, d.render_region(ch.composite_bounds()));
        if i % 10 == 0 {
            assert_eq!(d.composite_region(full), d.render_composite());
        }
    }
    d.end_stroke().unwrap();
    assert_eq!(d.composite_region(full), d.render_composite());
}
