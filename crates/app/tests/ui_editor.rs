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

/// The one harness constructor: the editor showing `doc`, with default settings.
fn harness(doc: Document) -> Harness<'static, EditorApp> {
    let app = EditorApp::new(DocBridge::from_document(doc), Settings::default());
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

/// Frame time while painting on 4096×4096 with 20 layers, the editor driven by kittest (CPU side:
/// the egui pass, compositing the dirty tiles and building their texture updates; no GPU).
/// `cargo test -p pentimento --release --test ui_editor -- --ignored --nocapture bench`
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
    let screen_pts: Vec<Pos2> = pts.iter().map(|p| screen(&h, *p)).collect();
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
    assert!(h.state().doc.can_undo());
}
