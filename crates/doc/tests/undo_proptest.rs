//! Random command sequences: undoing everything restores the document byte for byte, redoing
//! everything restores the end state, and the cached composite always equals a fresh render.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test helpers panic on failure, which fails the test"
)]

use pentimento_doc::*;
use proptest::prelude::*;
use raster::{Gray8, Image, Rect, TiledImage};

type Snapshot =
    (u32, u32, Vec<Layer>, Option<LayerId>, TiledImage<Gray8>, Option<TiledImage<Gray8>>);

fn snapshot(d: &Document) -> Snapshot {
    (
        d.width(),
        d.height(),
        d.layers().to_vec(),
        d.active_layer_id(),
        d.mask().clone(),
        d.selection().cloned(),
    )
}

#[derive(Clone, Debug)]
enum Op {
    Stroke {
        layer: Option<usize>,
        size: f32,
        hardness: f32,
        opacity: f32,
        flow: f32,
        eraser: bool,
        color: [u8; 4],
        points: Vec<(f32, f32)>,
    },
    Fill {
        x: i32,
        y: i32,
        tol: u8,
        merged: bool,
        color: [u8; 4],
    },
    Select {
        kind: u8,
        rect: (i32, i32, u32, u32),
        op: u8,
    },
    SelectAll,
    SelectNone,
    Invert,
    FillSel([u8; 4]),
    ClearSel,
    Cut,
    Add,
    Delete(usize),
    Duplicate(usize),
    MoveTo(usize, usize),
    MergeDown(usize),
    Flatten,
    Props {
        layer: usize,
        opacity: f32,
        mode: usize,
        visible: bool,
        alpha_lock: bool,
    },
    Offset(usize, i32, i32),
    Transform(usize, u8),
    HueSat(f32, f32, f32),
    BrightCon(f32, f32),
    Resize(u32, u32, u8),
    Crop((i32, i32, u32, u32)),
    Mask(u8),
    AddImage {
        x: i32,
        y: i32,
        w: u32,
        h: u32,
        seed: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let color = any::<[u8; 4]>();
    let point = (-10.0f32..170.0, -10.0f32..130.0);
    let rect = (-20i32..150, -20i32..110, 1u32..120, 1u32..100);
    prop_oneof![
        4 => (proptest::option::of(0usize..6), 1.0f32..40.0, 0.0f32..=1.0, 0.1f32..=1.0, 0.1f32..=1.0, any::<bool>(), color, proptest::collection::vec(point, 1..6))
            .prop_map(|(layer, size, hardness, opacity, flow, eraser, color, points)| Op::Stroke { layer, size, hardness, opacity, flow, eraser, color, points }),
        1 => (0i32..160, 0i32..120, any::<u8>(), any::<bool>(), color).prop_map(|(x, y, tol, merged, color)| Op::Fill { x, y, tol, merged, color }),
        1 => (0u8..3, rect.clone(), 0u8..4).prop_map(|(kind, rect, op)| Op::Select { kind, rect, op }),
        1 => Just(Op::SelectAll),
        1 => Just(Op::SelectNone),
        1 => Just(Op::Invert),
        1 => color.prop_map(Op::FillSel),
        1 => Just(Op::ClearSel),
        1 => Just(Op::Cut),
        1 => Just(Op::Add),
        1 => (0usize..6).prop_map(Op::Delete),
        1 => (0usize..6).prop_map(Op::Duplicate),
        1 => (0usize..6, 0usize..6).prop_map(|(a, b)| Op::MoveTo(a, b)),
        1 => (0usize..6).prop_map(Op::MergeDown),
        1 => Just(Op::Flatten),
        1 => (0usize..6, 0.0f32..=1.0, 0usize..18, any::<bool>(), any::<bool>())
            .prop_map(|(layer, opacity, mode, visible, alpha_lock)| Op::Props { layer, opacity, mode, visible, alpha_lock }),
        1 => (0usize..6, -80i32..80, -80i32..80).prop_map(|(l, x, y)| Op::Offset(l, x, y)),
        1 => (0usize..6, 0u8..4).prop_map(|(l, k)| Op::Transform(l, k)),
        1 => (-180.0f32..180.0, -1.0f32..=1.0, -1.0f32..=1.0).prop_map(|(h, s, l)| Op::HueSat(h, s, l)),
        1 => (-1.0f32..=1.0, -1.0f32..=1.0).prop_map(|(b, c)| Op::BrightCon(b, c)),
        1 => (1u32..220, 1u32..180, 0u8..9).prop_map(|(w, h, a)| Op::Resize(w, h, a)),
        1 => rect.prop_map(Op::Crop),
        1 => (0u8..6).prop_map(Op::Mask),
        1 => (-30i32..150, -30i32..110, 1u32..90, 1u32..90, any::<u8>()).prop_map(|(x, y, w, h, seed)| Op::AddImage { x, y, w, h, seed }),
    ]
}

fn layer_at(d: &Document, i: usize) -> LayerId {
    let layers = d.layers();
    layers[i % layers.len()].id()
}

fn run(d: &mut Document, op: &Op) {
    let anchors = [
        Anchor::TopLeft,
        Anchor::Top,
        Anchor::TopRight,
        Anchor::Left,
        Anchor::Center,
        Anchor::Right,
        Anchor::BottomLeft,
        Anchor::Bottom,
        Anchor::BottomRight,
    ];
    let cmd = match op.clone() {
        Op::Stroke { layer, size, hardness, opacity, flow, eraser, color, points } => {
            let target = match layer {
                Some(5) => PaintTarget::Mask,
                Some(i) => PaintTarget::Layer(layer_at(d, i)),
                None => PaintTarget::ActiveLayer,
            };
            let brush = Brush {
                size_px: size,
                hardness,
                opacity,
                flow,
                spacing: 0.15,
                color,
                eraser,
                ..Brush::default()
            };
            let pts: Vec<StrokePoint> =
                points.iter().map(|&(x, y)| StrokePoint::new(x, y)).collect();
            let _ = d.paint_stroke(target, brush, &pts);
            return;
        }
        Op::Cut => {
            let _ = d.cut();
            return;
        }
        Op::Fill { x, y, tol, merged, color } => Command::FloodFill {
            x,
            y,
            color,
            tolerance: tol,
            source: if merged { FillSource::Composite } else { FillSource::ActiveLayer },
        },
        Op::Select { kind, rect: (x, y, w, h), op } => {
            let r = Rect::new(x, y, w, h);
            let shape = match kind {
                0 => SelectShape::Rect(r),
                1 => SelectShape::Ellipse(r),
                _ => SelectShape::Polygon(vec![
                    (x as f32, y as f32),
                    ((x + w as i32) as f32, (y + 3) as f32),
                    ((x + 5) as f32, (y + h as i32) as f32 - 0.5),
                ]),
            };
            let op = [SelectOp::Replace, SelectOp::Add, SelectOp::Subtract, SelectOp::Intersect]
                [op as usize];
            Command::Select { shape, op, feather_px: f32::from(kind % 2) * 1.5 }
        }
        Op::SelectAll => Command::SelectAll,
        Op::SelectNone => Command::SelectNone,
        Op::Invert => Command::InvertSelection,
        Op::FillSel(color) => Command::FillSelection { color },
        Op::ClearSel => Command::ClearSelection,
        Op::Add => Command::AddLayer { name: String::new(), index: None },
        Op::Delete(i) => Command::DeleteLayer { id: layer_at(d, i) },
        Op::Duplicate(i) => Command::DuplicateLayer { id: layer_at(d, i) },
        Op::MoveTo(i, j) => {
            Command::MoveLayerTo { id: layer_at(d, i), index: j % d.layers().len() }
        }
        Op::MergeDown(i) => Command::MergeDown { id: layer_at(d, i) },
        Op::Flatten => Command::Flatten,
        Op::Props { layer, opacity, mode, visible, alpha_lock } => {
            let id = layer_at(d, layer);
            let props = LayerProps {
                opacity,
                blend_mode: BlendMode::ALL[mode],
                visible,
                alpha_lock,
                name: format!("p{layer}"),
            };
            Command::SetLayerProps { id, props }
        }
        Op::Offset(i, dx, dy) => Command::OffsetLayer { id: layer_at(d, i), dx, dy },
        Op::Transform(i, k) => {
            let transform = match k {
                0 => Affine::flip_horizontal_about(40.0),
                1 => Affine::flip_vertical_about(33.0),
                2 => Affine::scale_about(0.6, 1.3, 20.0, 10.0),
                _ => Affine::rotate_about(30.0, 50.0, 50.0),
            };
            Command::TransformLayer { id: layer_at(d, i), transform }
        }
        Op::HueSat(h, s, l) => Command::HueSaturation { hue_deg: h, saturation: s, lightness: l },
        Op::BrightCon(b, c) => Command::BrightnessContrast { brightness: b, contrast: c },
        Op::Resize(w, h, a) => {
            Command::ResizeCanvas { width: w, height: h, anchor: anchors[a as usize] }
        }
        Op::Crop((x, y, w, h)) => Command::Crop { rect: Rect::new(x, y, w, h) },
        Op::Mask(k) => match k {
            0 => Command::MaskClear,
            1 => Command::MaskFill,
            2 => Command::MaskInvert,
            3 => Command::MaskFromSelection,
            4 => Command::MaskFromLayerAlpha { id: layer_at(d, 0) },
            _ => {
                let mut img = Image::new(d.width(), d.height());
                for (i, p) in img.pixels_mut().iter_mut().enumerate() {
                    *p = (i * 7 % 256) as u8;
                }
                Command::MaskLoad { image: img }
            }
        },
        Op::AddImage { x, y, w, h, seed } => {
            let mut img = Image::new(w, h);
            for (i, p) in img.pixels_mut().iter_mut().enumerate() {
                let v =
                    (i as u32).wrapping_mul(2654435761).wrapping_add(u32::from(seed)).to_le_bytes();
                *p = v;
            }
            Command::AddLayerFromImage {
                image: img,
                x,
                y,
                name: "gen".into(),
                record: Some(GenerationRecord { seed: u64::from(seed), ..Default::default() }),
                index: None,
            }
        }
    };
    let _ = d.apply(cmd);
}

fn start() -> Document {
    let mut d = Document::new(150, 100, Some([240, 230, 220, 255])).unwrap();
    d.apply(Command::AddLayer { name: "ink".into(), index: None }).unwrap();
    d.paint_stroke(
        PaintTarget::ActiveLayer,
        Brush { size_px: 12.0, color: [20, 40, 200, 200], ..Brush::default() },
        &[StrokePoint::new(5.0, 5.0), StrokePoint::new(140.0, 90.0)],
    )
    .unwrap();
    d.clear_history();
    d
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn undo_all_restores_and_redo_all_replays(ops in proptest::collection::vec(op(), 1..20)) {
        let mut d = start();
        let _ = d.composite_region(d.bounds());
        let initial = snapshot(&d);
        let initial_position = d.history_position();
        for op in &ops {
            run(&mut d, op);
            // The cache, updated only through dirty rects, must equal a fresh render.
            let b = d.bounds();
            prop_assert_eq!(d.composite_region(b), d.render_composite());
        }
        let end = snapshot(&d);
        let end_position = d.history_position();
        prop_assert_eq!(end_position == initial_position, d.history_len().0 == 0);
        let steps = d.history_len().0;
        let mut undone = 0;
        while d.undo().is_some() {
            undone += 1;
            let b = d.bounds();
            prop_assert_eq!(d.composite_region(b), d.render_composite());
        }
        prop_assert_eq!(undone, steps);
        prop_assert!(snapshot(&d) == initial, "undo-all differs from the initial document");
        prop_assert_eq!(d.history_position(), initial_position);
        while d.redo().is_some() {
            let b = d.bounds();
            prop_assert_eq!(d.composite_region(b), d.render_composite());
        }
        prop_assert!(snapshot(&d) == end, "redo-all differs from the end state");
        prop_assert_eq!(d.history_position(), end_position);
    }
}

fn stroke(d: &mut Document, y: f32) {
    d.paint_stroke(
        PaintTarget::ActiveLayer,
        Brush { size_px: 8.0, color: [200, 10, 10, 255], ..Brush::default() },
        &[StrokePoint::new(5.0, y), StrokePoint::new(120.0, y)],
    )
    .unwrap();
}

/// The "unsaved" marker compares history positions: back at the saved step means saved, a new
/// edit after undo (a different branch) never looks saved, and neither does a state whose steps
/// the cap has dropped or a cleared history.
#[test]
fn history_position_identifies_the_state_reached() {
    let mut d = start();
    let saved = d.history_position();
    stroke(&mut d, 10.0);
    let after_one = d.history_position();
    assert_ne!(after_one, saved);
    d.undo().unwrap();
    assert_eq!(d.history_position(), saved);
    d.redo().unwrap();
    assert_eq!(d.history_position(), after_one);
    d.undo().unwrap();
    stroke(&mut d, 20.0);
    assert_ne!(d.history_position(), after_one, "a new branch is not the undone step");
    assert_ne!(d.history_position(), saved);

    // An open transaction does not move the position until it is committed.
    let before_txn = d.history_position();
    d.begin("Two strokes").unwrap();
    stroke(&mut d, 30.0);
    assert_eq!(d.history_position(), before_txn);
    d.commit().unwrap();
    assert_ne!(d.history_position(), before_txn);

    // Steps dropped by the cap: undoing everything left reaches the state before the kept
    // step (which it really is), never the original one.
    d.set_history_cap_bytes(1);
    assert_eq!(d.history_len().0, 1);
    while d.undo().is_some() {}
    assert_eq!(d.history_position(), before_txn);
    assert_ne!(d.history_position(), saved);

    let before_clear = d.history_position();
    d.clear_history();
    assert_ne!(d.history_position(), before_clear);
}
