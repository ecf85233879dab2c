//! The editor driven through egui_kittest, as a user would: pointer drags on the canvas, clicks
//! on panel controls, keyboard shortcuts. Every test builds the app through [`harness`] and every
//! `run()` checks that all controls have accessible names.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test helpers: a panic is a failed test"
)]

#[allow(
    dead_code,
    unused_imports,
    reason = "the editor module is compiled into this test crate; the binary uses the rest"
)]
#[path = "../src/editor/mod.rs"]
mod editor;

use doc::{Brush, Document, PaintTarget, StrokePoint};
use editor::{DocBridge, EditorApp, Settings};
use egui::{Key, Modifiers, Pos2, pos2};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use raster::{Rgba8, TiledImage};

const W: u32 = 256;
const H: u32 = 192;

/// The editor showing `doc`, with default settings.
fn harness(doc: Document) -> Harness<'static, EditorApp> {
    harness_with(doc, Settings::default())
}

/// The one harness constructor: the editor showing `doc` with `settings`.
fn harness_with(doc: Document, settings: Settings) -> Harness<'static, EditorApp> {
    let app = EditorApp::new(DocBridge::from_document(doc), settings);
    let mut h = Harness::builder()
        .with_size([1280.0, 800.0])
        .build_ui_state(|ui, app: &mut EditorApp| app.show(ui), app);
    h.run();
    h
}

fn white_doc() -> Document {
    Document::new(W, H, Some([255, 255, 255, 255])).unwrap()
}

fn layer_pixels(app: &EditorApp, index: usize) -> TiledImage<Rgba8> {
    app.doc.document().layers()[index].pixels.clone()
}

/// Screen position of canvas point `c`.
fn screen(h: &Harness<'_, EditorApp>, c: Pos2) -> Pos2 {
    h.state().canvas.view.screen_from_canvas(c)
}

/// Drags the primary button through canvas points `pts`; returns the canvas points the app saw.
fn drag(h: &mut Harness<'_, EditorApp>, pts: &[Pos2]) -> Vec<Pos2> {
    let screen_pts: Vec<Pos2> = pts.iter().map(|p| screen(h, *p)).collect();
    let first = screen_pts[0];
    h.hover_at(first);
    h.drag_at(first);
    h.step();
    for p in &screen_pts[1..] {
        h.hover_at(*p);
        h.step();
    }
    h.drop_at(*screen_pts.last().unwrap());
    h.run();
    let view = h.state().canvas.view;
    screen_pts.iter().map(|p| view.canvas_from_screen(*p)).collect()
}

fn brush_of(app: &EditorApp) -> Brush {
    let b = app.settings.tools.brush;
    Brush {
        size_px: b.size_px,
        hardness: b.hardness,
        opacity: b.opacity,
        flow: b.flow,
        spacing: 0.1,
        color: app.settings.tools.colour,
        eraser: false,
        pressure_size: true,
        pressure_flow: false,
    }
}

fn dist_to_segment(p: Pos2, a: Pos2, b: Pos2) -> f32 {
    let ab = b - a;
    let t = ((p - a).dot(ab) / ab.length_sq().max(1e-6)).clamp(0.0, 1.0);
    (a + ab * t - p).length()
}

#[test]
fn brush_drag_changes_exactly_the_pixels_under_the_stroke() {
    let mut h = harness(white_doc());
    h.key_press(Key::B);
    h.run();
    let before = layer_pixels(h.state(), 0);
    let seen = drag(&mut h, &[pos2(40.5, 60.5), pos2(80.5, 70.5), pos2(150.5, 90.5)]);

    // The same stroke through the document API directly gives the same pixels...
    let mut reference = white_doc();
    let points: Vec<StrokePoint> = seen.iter().map(|p| StrokePoint::new(p.x, p.y)).collect();
    reference.paint_stroke(PaintTarget::ActiveLayer, brush_of(h.state()), &points).unwrap();
    let after = layer_pixels(h.state(), 0);
    assert_eq!(after.to_image(), reference.layers()[0].pixels.to_image());

    // ...and those are the pixels under the stroke: within the brush radius of the path, and
    // every pixel centre on the path changed.
    let radius = h.state().settings.tools.brush.size_px / 2.0;
    let (a, b) = (before.to_image(), after.to_image());
    let mut changed = 0;
    for y in 0..H {
        for x in 0..W {
            let c = pos2(x as f32 + 0.5, y as f32 + 0.5);
            let d =
                seen.windows(2).map(|s| dist_to_segment(c, s[0], s[1])).fold(f32::MAX, f32::min);
            let differs = a.get(x, y) != b.get(x, y);
            if differs {
                changed += 1;
                assert!(d <= radius + 1.0, "pixel ({x},{y}) changed {d:.1} px from the stroke");
            }
            if d <= 1.0 {
                assert!(differs, "pixel ({x},{y}) on the stroke did not change");
            }
        }
    }
    assert!(changed > 1000, "{changed}");
    // One stroke = one undo step.
    assert!(h.state().doc.can_undo());
    assert!(h.state().is_dirty());
    assert!(h.state().window_title().contains('•'), "{}", h.state().window_title());
}

#[test]
fn undo_and_redo_by_shortcut() {
    let mut h = harness(white_doc());
    let blank = layer_pixels(h.state(), 0).to_image();
    drag(&mut h, &[pos2(20.5, 20.5), pos2(120.5, 100.5)]);
    let painted = layer_pixels(h.state(), 0).to_image();
    assert_ne!(painted, blank);

    h.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    h.run();
    assert_eq!(layer_pixels(h.state(), 0).to_image(), blank);
    h.key_press_modifiers(Modifiers::COMMAND | Modifiers::SHIFT, Key::Z);
    h.run();
    assert_eq!(layer_pixels(h.state(), 0).to_image(), painted);
    h.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    h.run();
    h.key_press_modifiers(Modifiers::COMMAND, Key::Y);
    h.run();
    assert_eq!(layer_pixels(h.state(), 0).to_image(), painted);
}

#[test]
fn mask_painting_leaves_layers_untouched() {
    let mut h = harness(white_doc());
    h.get_by_role_and_label(egui::Role::Button, "Mask brush").click();
    h.run();
    let layers_before: Vec<_> =
        h.state().doc.document().layers().iter().map(|l| l.pixels.to_image()).collect();
    drag(&mut h, &[pos2(30.5, 30.5), pos2(200.5, 150.5)]);
    let doc = h.state().doc.document();
    let layers_after: Vec<_> = doc.layers().iter().map(|l| l.pixels.to_image()).collect();
    assert_eq!(layers_before, layers_after);
    assert_eq!(doc.mask().get(31, 31), 255);
    assert_eq!(doc.mask().get(5, 180), 0);
    // The mask eraser removes it again, still without touching layers.
    h.get_by_role_and_label(egui::Role::Button, "Mask eraser").click();
    h.run();
    drag(&mut h, &[pos2(30.5, 30.5), pos2(60.5, 60.5)]);
    let doc = h.state().doc.document();
    assert_eq!(doc.mask().get(31, 31), 0);
    assert_eq!(doc.layers().iter().map(|l| l.pixels.to_image()).collect::<Vec<_>>(), layers_before);
}

#[test]
fn layers_panel_add_reorder_opacity_visibility() {
    let mut h = harness(white_doc());
    h.get_by_label("Add layer").click();
    h.run();
    assert_eq!(h.state().doc.layer_count(), 2);
    assert_eq!(h.state().doc.active_layer(), 1);
    let added = h.state().doc.document().layers()[1].id();

    // Move the new layer below the background.
    h.get_by_label("Move layer down").click();
    h.run();
    let doc = h.state().doc.document();
    assert_eq!(doc.layers()[0].id(), added);
    assert_eq!(doc.active_layer_id(), Some(added));

    // Visibility through the row's eye checkbox.
    let name = doc.layers()[0].props.name.clone();
    h.get_by_role_and_label(egui::Role::CheckBox, &format!("Visible: {name}")).click();
    h.run();
    assert!(!h.state().doc.document().layers()[0].props.visible);

    // Opacity: drag the slider's handle to its left end; one undo step for the whole drag.
    let undo_depth = h.state().doc.document().history_len().0;
    let rect = h.get_by_role_and_label(egui::Role::Slider, "Layer opacity").rect();
    let (from, to) =
        (pos2(rect.right() - 2.0, rect.center().y), pos2(rect.left() - 20.0, rect.center().y));
    h.hover_at(from);
    h.drag_at(from);
    h.step();
    h.hover_at(pos2(rect.center().x, rect.center().y));
    h.step();
    h.hover_at(to);
    h.step();
    h.drop_at(to);
    h.run();
    let l = &h.state().doc.document().layers()[0];
    assert_eq!(l.props.opacity, 0.0);
    assert_eq!(h.state().doc.document().history_len().0, undo_depth + 1);

    // Back up again by the button; the background is on top then.
    h.get_by_label("Move layer up").click();
    h.run();
    assert_eq!(h.state().doc.document().layers()[1].id(), added);
}

#[test]
fn save_and_reopen_ora_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kept.ora");
    let mut h = harness(white_doc());
    drag(&mut h, &[pos2(20.5, 20.5), pos2(100.5, 40.5)]);
    h.get_by_label("Add layer").click();
    h.run();
    h.state_mut().settings.tools.colour = [200, 30, 40, 255];
    drag(&mut h, &[pos2(50.5, 120.5), pos2(180.5, 120.5)]);
    h.get_by_role_and_label(egui::Role::Button, "Mask brush").click();
    h.run();
    drag(&mut h, &[pos2(10.5, 150.5), pos2(60.5, 170.5)]);
    h.state_mut().path = Some(path.clone());
    h.key_press_modifiers(Modifiers::COMMAND, Key::S);
    h.run_steps(2); // the progress bar animates while the save runs
    let ctx = h.ctx.clone();
    h.state_mut().finish_job(&ctx);
    h.run();
    assert!(!h.state().is_dirty(), "{:?}", h.state().toasts.texts().collect::<Vec<_>>());
    assert!(path.is_file());

    let saved = h.state().doc.document().to_parts();
    let mut h2 = harness(Document::new(8, 8, None).unwrap());
    h2.state_mut().open_path(&ctx, path.clone());
    h2.state_mut().finish_job(&ctx);
    h2.run();
    let loaded = h2.state().doc.document().to_parts();
    assert_eq!((loaded.width, loaded.height), (W, H));
    assert_eq!(loaded.layers.len(), saved.layers.len());
    for (a, b) in saved.layers.iter().zip(&loaded.layers) {
        assert_eq!(a.props, b.props);
        assert_eq!(a.id(), b.id());
        assert_eq!((a.offset_x, a.offset_y), (b.offset_x, b.offset_y));
        assert_eq!(a.pixels.to_image(), b.pixels.to_image());
    }
    assert_eq!(saved.active, loaded.active);
    assert_eq!(saved.mask.unwrap().to_image(), loaded.mask.unwrap().to_image());
    assert_eq!(h2.state().path.as_deref(), Some(path.as_path()));
    assert!(h2.state().window_title().starts_with("kept.ora — "), "{}", h2.state().window_title());
}

#[test]
fn menus_and_dialogs_have_accessible_names() {
    let mut h = harness(white_doc());
    for menu in ["File", "Edit", "Image", "Layer", "Select", "View", "Help"] {
        h.get_by_label(menu).click();
        h.run();
        h.key_press(Key::Escape);
        h.run();
    }
    h.key_press_modifiers(Modifiers::COMMAND, Key::N);
    h.run();
    assert_eq!(h.get_by_label("Width").value().as_deref(), Some("1024 px"));
    h.get_by_label("Cancel").click();
    h.run();
    for tool in ui::tools::Tool::ALL {
        h.get_by_role_and_label(egui::Role::Button, tool.label()).click();
        h.run();
    }
    h.get_by_label("Image").click();
    h.run();
    h.get_by_label_contains("Hue / Saturation").click();
    h.run();
    h.get_by_label("Cancel").click();
    h.run();
    h.check_accessibility();
}

/// A pen stroke: egui-winit sends each contact as a `Touch` with the device's force, then the
/// emulated pointer events. The dabs must follow the force (pressure scales the brush size).
#[test]
fn pen_pressure_from_the_device_scales_the_brush() {
    let mut h = harness(white_doc());
    h.key_press(Key::B);
    h.run();
    let samples = [(pos2(30.5, 60.5), 0.15), (pos2(110.5, 60.5), 0.55), (pos2(210.5, 60.5), 1.0)];
    let touch = |h: &Harness<'_, EditorApp>, phase, pos, force| {
        h.event(egui::Event::Touch {
            device_id: egui::TouchDeviceId(7),
            id: egui::TouchId(1),
            phase,
            pos,
            force: Some(force),
        })
    };
    let screen_pts: Vec<(Pos2, f32)> = samples.iter().map(|(p, f)| (screen(&h, *p), *f)).collect();
    let (first, f0) = screen_pts[0];
    touch(&h, egui::TouchPhase::Start, first, f0);
    h.event(egui::Event::PointerMoved(first));
    h.event(egui::Event::PointerButton {
        pos: first,
        button: egui::PointerButton::Primary,
        pressed: true,
        modifiers: Modifiers::NONE,
    });
    h.step();
    for (p, f) in &screen_pts[1..] {
        touch(&h, egui::TouchPhase::Move, *p, *f);
        h.event(egui::Event::PointerMoved(*p));
        h.step();
    }
    let (last, f_last) = *screen_pts.last().unwrap();
    touch(&h, egui::TouchPhase::End, last, f_last);
    h.event(egui::Event::PointerButton {
        pos: last,
        button: egui::PointerButton::Primary,
        pressed: false,
        modifiers: Modifiers::NONE,
    });
    h.run();

    let view = h.state().canvas.view;
    let points: Vec<StrokePoint> = screen_pts
        .iter()
        .map(|(p, f)| {
            let c = view.canvas_from_screen(*p);
            StrokePoint { x: c.x, y: c.y, pressure: *f }
        })
        .collect();
    let mut reference = white_doc();
    reference.paint_stroke(PaintTarget::ActiveLayer, brush_of(h.state()), &points).unwrap();
    let after = layer_pixels(h.state(), 0).to_image();
    assert_eq!(after, reference.layers()[0].pixels.to_image());
    // Thin where the pen was light, full size where it pressed hard.
    let painted_rows = |x: u32| (0..H).filter(|&y| after.get(x, y) != Some([255; 4])).count();
    let (light, hard) = (painted_rows(35), painted_rows(205));
    let full = h.state().settings.tools.brush.size_px as usize;
    assert!(light * 3 < hard && hard + 2 >= full, "light {light}, hard {hard}, full {full}");

    // A mouse stroke afterwards is full pressure again.
    drag(&mut h, &[pos2(30.5, 150.5), pos2(60.5, 150.5)]);
    let after = layer_pixels(h.state(), 0).to_image();
    let rows = (0..H).filter(|&y| after.get(35, y) != Some([255; 4]) && y > 100).count();
    assert!(rows + 2 >= full, "{rows}");
}

/// A white document with a second, active layer holding a red block at (40, 30) 60×40.
fn block_doc() -> Document {
    let mut d = white_doc();
    d.apply(doc::Command::AddLayer { name: "block".into(), index: None }).unwrap();
    d.apply(doc::Command::Select {
        shape: doc::SelectShape::Rect(raster::Rect::new(40, 30, 60, 40)),
        op: doc::SelectOp::Replace,
        feather_px: 0.0,
    })
    .unwrap();
    d.apply(doc::Command::FillSelection { color: [220, 20, 30, 255] }).unwrap();
    d.apply(doc::Command::SelectNone).unwrap();
    d.clear_history();
    d
}

/// The document `block_doc` becomes under the transform `from` → `to`, through the document API.
fn transformed_reference(from: raster::Rect, to: &ui::tools::TransformBox) -> Document {
    let mut d = block_doc();
    let id = d.active_layer_id().unwrap();
    d.apply(doc::Command::TransformLayer { id, transform: editor::transform_affine(from, to) })
        .unwrap();
    d
}

#[test]
fn transform_previews_real_pixels_rotates_by_handle_and_commits_one_step() {
    let mut h = harness(block_doc());
    let original = layer_pixels(h.state(), 1).to_image();
    h.key_press(Key::T);
    h.run();
    let (from, start_box) = h.state().tools.pending_transform().unwrap();
    assert_eq!(from, raster::Rect::new(40, 30, 60, 40));

    // Drag the bottom-right corner outward: the layer shows the scaled pixels before Enter.
    let corner = start_box.corners()[2];
    drag(&mut h, &[corner - egui::vec2(0.5, 0.5), pos2(130.0, 90.0)]);
    let (_, scaled) = h.state().tools.pending_transform().unwrap();
    assert_ne!(scaled.rect, start_box.rect);
    let live = layer_pixels(h.state(), 1).to_image();
    assert_eq!(live, transformed_reference(from, &scaled).layers()[1].pixels.to_image());
    assert_ne!(live, original);
    assert!(!h.state().doc.can_undo(), "nothing is committed while previewing");

    // Escape puts every pixel back and records nothing.
    h.key_press(Key::Escape);
    h.run();
    assert!(h.state().tools.pending_transform().is_none());
    assert_eq!(layer_pixels(h.state(), 1).to_image(), original);
    assert_eq!(h.state().doc.document().history_len(), (0, 0));

    // Press again to start over, then turn it with the rotation knob a quarter turn.
    let knob = start_box.rotate_handle(h.state().tools.handle_grab_px);
    let centre = start_box.rect.center();
    drag(&mut h, &[knob, pos2(centre.x + 30.0, centre.y), pos2(centre.x + 60.0, centre.y)]);
    let (_, turned) = h.state().tools.pending_transform().unwrap();
    assert!((turned.rotation_deg - 90.0).abs() < 1.0, "{}", turned.rotation_deg);
    let reference = transformed_reference(from, &turned);
    assert_eq!(layer_pixels(h.state(), 1).to_image(), reference.layers()[1].pixels.to_image());

    // Another edit meanwhile is refused (it would be swept into the preview), not lost.
    h.get_by_label("Add layer").click();
    h.run();
    assert_eq!(h.state().doc.layer_count(), 2);
    assert!(h.state().toasts.texts().any(|(t, _)| t.contains("finish the transform")));
    // Nor may another layer become active under the pending transform.
    assert!(h.state_mut().doc.apply_layer(&ui::layers::LayerAction::Select(0)).is_err());
    assert_eq!(h.state().doc.active_layer(), 1);

    // Enter keeps exactly the previewed pixels as one undo step; undo restores the block.
    h.key_press(Key::Enter);
    h.run();
    assert!(h.state().tools.pending_transform().is_none());
    assert_eq!(layer_pixels(h.state(), 1).to_image(), reference.layers()[1].pixels.to_image());
    assert_eq!(h.state().doc.document().history_len(), (1, 0));
    h.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    h.run();
    assert_eq!(layer_pixels(h.state(), 1).to_image(), original);
}

#[test]
fn selection_outline_follows_the_selected_shape() {
    let mut h = harness(white_doc());
    h.get_by_role_and_label(egui::Role::Button, "Rectangle select").click();
    h.run();
    drag(&mut h, &[pos2(20.2, 20.2), pos2(100.8, 60.8)]);
    // Shift+drag adds a second rectangle below the right half: an L shape.
    let (a, b) = (screen(&h, pos2(60.2, 60.2)), screen(&h, pos2(100.8, 120.8)));
    h.hover_at(a);
    h.event_modifiers(
        egui::Event::PointerButton {
            pos: a,
            button: egui::PointerButton::Primary,
            pressed: true,
            modifiers: Modifiers::SHIFT,
        },
        Modifiers::SHIFT,
    );
    h.step();
    h.hover_at(b);
    h.step();
    h.drop_at(b);
    h.run();
    let sel = h.state().doc.document().selection().unwrap().to_image();
    let selected = sel.pixels().iter().filter(|&&v| v > 127).count();
    assert_eq!(selected, 81 * 41 + 41 * 60, "L-shaped selection");

    let outline = h.state_mut().doc.selection_outline().unwrap();
    let length: i32 =
        outline.iter().map(|s| (s.end[0] - s.start[0]).abs() + (s.end[1] - s.start[1]).abs()).sum();
    // The L's perimeter (not its bounding box's): 2·(81 + 101).
    assert_eq!(length, 2 * (81 + 101));
    // Every segment separates a selected pixel from an unselected one.
    let inside =
        |x: i32, y: i32| x >= 0 && y >= 0 && sel.get(x as u32, y as u32).is_some_and(|v| v > 127);
    for s in outline.iter() {
        let [x, y] = s.start;
        if s.start[1] == s.end[1] {
            assert_ne!(inside(x, y - 1), inside(x, y), "{s:?}");
        } else {
            assert_ne!(inside(x - 1, y), inside(x, y), "{s:?}");
        }
    }
    h.key_press_modifiers(Modifiers::COMMAND, Key::D);
    h.run();
    assert!(h.state_mut().doc.selection_outline().is_none());
}

#[test]
fn unsaved_marker_follows_the_undo_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("marker.ora");
    let mut h = harness(white_doc());
    assert!(!h.state().is_dirty());
    drag(&mut h, &[pos2(20.5, 20.5), pos2(90.5, 40.5)]);
    assert!(h.state().is_dirty());
    h.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    h.run();
    assert!(!h.state().is_dirty(), "undone back to the opened state");
    assert!(!h.state().window_title().contains('•'));
    h.key_press_modifiers(Modifiers::COMMAND | Modifiers::SHIFT, Key::Z);
    h.run();
    assert!(h.state().is_dirty());

    h.state_mut().path = Some(path.clone());
    h.key_press_modifiers(Modifiers::COMMAND, Key::S);
    h.run_steps(2);
    let ctx = h.ctx.clone();
    h.state_mut().finish_job(&ctx);
    h.run();
    assert!(!h.state().is_dirty());
    drag(&mut h, &[pos2(20.5, 90.5), pos2(90.5, 90.5)]);
    assert!(h.state().is_dirty());
    h.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    h.run();
    assert!(!h.state().is_dirty(), "back at the saved step");
    h.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    h.run();
    assert!(h.state().is_dirty(), "before the saved step");
}

/// A file dropped onto the window, as egui-winit reports it.
#[derive(Debug)]
struct DroppedPath(std::path::PathBuf);

impl egui::DroppedFile for DroppedPath {
    fn path(&self) -> &std::path::Path {
        &self.0
    }

    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

fn drop_file(h: &mut Harness<'_, EditorApp>, path: &std::path::Path) {
    h.input_mut().dropped_files.push(std::sync::Arc::new(DroppedPath(path.to_path_buf())));
    h.step();
    let ctx = h.ctx.clone();
    h.state_mut().finish_job(&ctx);
    h.run();
}

#[test]
fn dropped_image_becomes_a_layer_and_dropped_ora_opens() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("piece.png");
    let piece =
        image::RgbaImage::from_fn(50, 30, |x, y| image::Rgba([x as u8 * 5, y as u8 * 8, 90, 200]));
    piece.save(&png).unwrap();
    let mut h = harness(white_doc());
    drop_file(&mut h, &png);
    assert_eq!(h.state().doc.layer_count(), 2);
    let layer = &h.state().doc.document().layers()[1];
    assert_eq!(layer.props.name, "piece");
    let got = layer.pixels.read_rect(raster::Rect::new(0, 0, 50, 30));
    assert_eq!(got.as_bytes(), piece.as_raw().as_slice());
    assert_eq!(h.state().doc.document().history_len().0, 1, "one undo step");

    // Save that as .ora, then drop the .ora on a fresh editor: it opens as the document.
    let ora = dir.path().join("dropped.ora");
    h.state_mut().path = Some(ora.clone());
    h.key_press_modifiers(Modifiers::COMMAND, Key::S);
    h.run_steps(2);
    let ctx = h.ctx.clone();
    h.state_mut().finish_job(&ctx);
    h.run();
    let mut h2 = harness(Document::new(16, 16, None).unwrap());
    drop_file(&mut h2, &ora);
    assert_eq!(h2.state().doc.size(), [W, H]);
    assert_eq!(h2.state().doc.layer_count(), 2);
    assert_eq!(h2.state().path.as_deref(), Some(ora.as_path()));

    // Something unreadable: a notification, the document untouched.
    let junk = dir.path().join("junk.png");
    std::fs::write(&junk, b"not a png").unwrap();
    drop_file(&mut h2, &junk);
    assert_eq!(h2.state().doc.layer_count(), 2);
    assert!(
        h2.state().toasts.texts().any(|(t, _)| t.contains("junk.png")),
        "{:?}",
        h2.state().toasts.texts().collect::<Vec<_>>()
    );
}

#[test]
fn clipboard_copy_and_paste_images() {
    let mut h = harness(block_doc());
    // Copy with a selection over part of the block: the system clipboard gets those pixels.
    h.state_mut()
        .doc
        .apply(doc::Command::Select {
            shape: doc::SelectShape::Rect(raster::Rect::new(30, 20, 40, 30)),
            op: doc::SelectOp::Replace,
            feather_px: 0.0,
        })
        .unwrap();
    h.run();
    h.event(egui::Event::Copy);
    h.step();
    let copied = h.output().platform_output.commands.iter().find_map(|c| match c {
        egui::OutputCommand::CopyImage(img) => Some(img.clone()),
        _ => None,
    });
    let copied = copied.expect("an image was copied");
    assert_eq!(copied.size, [40, 30]);
    // Inside the block (canvas 40..100 × 30..70) red, outside it transparent.
    assert_eq!(copied.pixels[(15 * 40 + 20) as usize].to_srgba_unmultiplied(), [220, 20, 30, 255]);
    assert_eq!(copied.pixels[0].a(), 0);
    h.run();

    // Cut: the same pixels leave the active layer (one undo step).
    h.event(egui::Event::Cut);
    h.run();
    let block = layer_pixels(h.state(), 1).to_image();
    assert_eq!(block.get(50, 35).unwrap()[3], 0, "cut inside the selection");
    assert_eq!(block.get(80, 60), Some([220, 20, 30, 255]), "kept outside it");

    // Pasting an image from another program makes a new layer holding it.
    let img = egui::ColorImage::from_rgba_unmultiplied(
        [3, 2],
        &[
            10, 20, 30, 255, 40, 50, 60, 255, 70, 80, 90, 255, 1, 2, 3, 255, 4, 5, 6, 255, 7, 8, 9,
            255,
        ],
    );
    h.event(egui::Event::PasteImage(std::sync::Arc::new(img)));
    h.run();
    assert_eq!(h.state().doc.layer_count(), 3);
    let pasted = &h.state().doc.document().layers()[2];
    let got = pasted.pixels.read_rect(raster::Rect::new(0, 0, 3, 2));
    assert_eq!(got.as_bytes()[..8], [10, 20, 30, 255, 40, 50, 60, 255]);
}

fn close_requested(h: &mut Harness<'_, EditorApp>) -> Vec<egui::ViewportCommand> {
    h.input_mut()
        .viewports
        .entry(egui::ViewportId::ROOT)
        .or_default()
        .events
        .push(egui::ViewportEvent::Close);
    h.step();
    h.output().viewport_output[&egui::ViewportId::ROOT].commands.clone()
}

#[test]
fn closing_with_unsaved_changes_asks_first() {
    // Nothing to lose: the window just closes.
    let mut h = harness(white_doc());
    assert!(!close_requested(&mut h).contains(&egui::ViewportCommand::CancelClose));

    drag(&mut h, &[pos2(20.5, 20.5), pos2(90.5, 40.5)]);
    let commands = close_requested(&mut h);
    assert!(commands.contains(&egui::ViewportCommand::CancelClose), "{commands:?}");
    h.run();
    // Cancel keeps the editor open with the document as it was.
    h.get_by_label("Cancel").click();
    h.run();
    assert!(h.state().is_dirty());
    assert!(h.query_by_label("Discard changes").is_none());

    // Discard closes for real.
    close_requested(&mut h);
    h.run();
    h.get_by_label("Discard changes").click();
    h.step();
    let commands = h.output().viewport_output[&egui::ViewportId::ROOT].commands.clone();
    assert!(commands.contains(&egui::ViewportCommand::Close), "{commands:?}");
    assert!(!close_requested(&mut h).contains(&egui::ViewportCommand::CancelClose));
}

/// eframe's storage as a map (what eframe keeps in its RON file).
#[derive(Default)]
struct MemoryStorage(std::collections::HashMap<String, String>);

impl eframe::Storage for MemoryStorage {
    fn get_string(&self, key: &str) -> Option<String> {
        self.0.get(key).cloned()
    }

    fn set_string(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }

    fn remove_string(&mut self, key: &str) {
        self.0.remove(key);
    }

    fn flush(&mut self) {}
}

#[test]
fn settings_persist_between_runs() {
    let mut h = harness(white_doc());
    h.key_press(Key::E);
    h.run();
    for _ in 0..3 {
        h.key_press(Key::CloseBracket);
        h.run();
    }
    h.key_press(Key::H);
    h.run();
    h.state_mut().settings.push_recent(std::path::Path::new("/tmp/one.ora"));
    let edited = h.state().settings.clone();
    assert_eq!(edited.tools.tool, ui::tools::Tool::Eraser);
    assert!(edited.tools.eraser.size_px > 40.0 && !edited.show_mask);

    let mut storage = MemoryStorage::default();
    eframe::App::save(h.state_mut(), &mut storage);
    let restored = Settings::load(Some(&storage));
    assert_eq!(restored, edited);
    let h2 = harness_with(white_doc(), restored);
    assert_eq!(h2.state().settings.tools.tool, ui::tools::Tool::Eraser);
    assert_eq!(h2.state().settings.tools.eraser.size_px, 61.0);
    // The options bar shows the restored tool's brush.
    let slider = h2.get_by_role_and_label(egui::Role::Slider, "Brush size");
    assert_eq!(egui_kittest::kittest::NodeT::accesskit_node(&slider).numeric_value(), Some(61.0));
    // No storage yet (first run), or storage from an older version: defaults.
    assert_eq!(Settings::load(None), Settings::default());
    let mut old = MemoryStorage::default();
    eframe::Storage::set_string(&mut old, editor::STORAGE_KEY, "(garbage".into());
    assert_eq!(Settings::load(Some(&old)), Settings::default());
}

/// Frame time while painting on 4096×4096 with 20 layers, the editor driven by kittest (CPU side:
/// the egui pass, compositing the dirty tiles and building their texture updates; no GPU): at
/// 1:1, then with the whole document in view (coarser texture tiles), then panning.
/// `[PENTIMENTO_BENCH_SIDE_PX=8192] cargo test -p pentimento --release --test ui_editor -- --ignored --nocapture bench`
#[test]
#[ignore = "benchmark; run explicitly with --ignored --nocapture"]
fn bench_paint_frame_time_4096_20_layers() {
    let doc = editor::bench::bench_document().unwrap();
    let mut h = harness(doc.into_document());
    h.run();
    h.state_mut().canvas.view.actual_pixels();
    h.run();
    let frames = 120;
    let pts: Vec<Pos2> = (0..frames).map(|i| editor::bench::stroke_point(i as u32)).collect();
    // Keep the stroke on screen: centre the view on its start.
    h.state_mut().canvas.view.center_on(pts[frames / 2].to_vec2());
    h.run();
    println!("1:1");
    paint_frames(&mut h, &pts);

    h.key_press(Key::Num2);
    h.run();
    println!("whole document in view (zoom {:.3})", h.state().canvas.view.zoom);
    paint_frames(&mut h, &pts);

    // Panning with the middle button at 1:1, where every move brings new tiles into view (at
    // most `MAX_UPLOADS_PER_FRAME` are built per frame; the rest follow).
    h.key_press(Key::Num1);
    h.run();
    let viewport = h.state().canvas.view.viewport;
    let (start, y) = (viewport.right() - 100.0, viewport.center().y);
    let before = h.state().canvas.view.visible_canvas_rect();
    let mut times = Vec::new();
    let drags = 6;
    let steps = 20;
    for _ in 0..drags {
        let press = |pressed, pos| egui::Event::PointerButton {
            pos,
            button: egui::PointerButton::Middle,
            pressed,
            modifiers: Modifiers::NONE,
        };
        h.event(egui::Event::PointerMoved(pos2(start, y)));
        h.event(press(true, pos2(start, y)));
        h.step();
        for i in 1..=steps {
            h.event(egui::Event::PointerMoved(pos2(start - i as f32 * 30.0, y)));
            let t = std::time::Instant::now();
            h.step();
            times.push(t.elapsed().as_secs_f32() * 1000.0);
        }
        h.event(press(false, pos2(start - steps as f32 * 30.0, y)));
        h.step();
    }
    let frames = drags * steps;
    println!(
        "panning at 1:1 ({} px in {frames} frames; from canvas {before:?} to {:?}, {} texture tiles)",
        frames * 30,
        h.state().canvas.view.visible_canvas_rect(),
        h.state().canvas_tile_count()
    );
    editor::bench::report_activity("panning", &times);
}

/// Paints through `pts` (canvas points), one frame per point; prints the frame times.
fn paint_frames(h: &mut Harness<'_, EditorApp>, pts: &[Pos2]) {
    let undo_before = h.state().doc.document().history_len().0;
    let screen_pts: Vec<Pos2> = pts.iter().map(|p| screen(h, *p)).collect();
    h.hover_at(screen_pts[0]);
    h.drag_at(screen_pts[0]);
    h.step();
    let mut times = Vec::new();
    for p in &screen_pts[1..] {
        h.hover_at(*p);
        let t = std::time::Instant::now();
        h.step();
        times.push(t.elapsed().as_secs_f32() * 1000.0);
    }
    h.drop_at(*screen_pts.last().unwrap());
    h.run();
    editor::bench::report(&times);
    assert_eq!(h.state().doc.document().history_len().0, undo_before + 1);
}
