//! Generation in the editor, driven as a user would through egui_kittest with the tiny test
//! checkpoint: Generate fills the tray, Apply adds exactly the pipeline's result as a layer with
//! its record, Cancel leaves the document as it was, queued jobs finish in order, and the
//! strength slider shows its steps.
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

use std::ops::ControlFlow;
use std::path::PathBuf;

use candle_core::{DType, Device};
use doc::{Command, Document, GenerationMode, InpaintArea, MaskedContent};
use editor::{DocBridge, EditorApp, Settings};
use egui::{Key, Modifiers};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use pipeline::generate::generate;
use pipeline::request::{GenerationRequest, InitImage, InpaintOptions};
use raster::{Gray8, Image, Rect};
use sampling::{SamplerKind, Schedule};
use sd::{Checkpoint, StableDiffusion};
use ui::generation::SeedMode;

const W: u32 = 96;
const H: u32 = 80;

fn model_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/models/tiny_sd1.safetensors")
}

/// A sketch: white with a coloured block, so img2img and inpaint have something to keep.
fn sketch() -> Document {
    let mut doc = Document::new(W, H, Some([255, 255, 255, 255])).unwrap();
    let mut block = Image::new(40, 30);
    for p in block.pixels_mut() {
        *p = [200, 60, 40, 255];
    }
    doc.apply(Command::AddLayerFromImage {
        image: block,
        x: 20,
        y: 24,
        name: "Sketch".into(),
        record: None,
        index: None,
    })
    .unwrap();
    doc
}

fn mask() -> Image<Gray8> {
    let mut m = Image::new(W, H);
    for y in 30..50 {
        for x in 50..70 {
            m.set(x, y, 255);
        }
    }
    m
}

fn settings(steps: u32, batch: u32, seed: u64) -> Settings {
    let mut s = Settings::default();
    let g = &mut s.generation;
    g.model = Some(model_path());
    g.prompt = "a red fox".into();
    g.negative_prompt = "blurry".into();
    g.width = 64;
    g.height = 64;
    g.steps = steps;
    g.batch_size = batch;
    g.seed = seed;
    g.seed_mode = SeedMode::Fixed;
    g.sampler = "Euler".into();
    g.schedule = "Karras".into();
    g.inpaint_area = InpaintArea::OnlyMasked;
    g.padding_px = 8;
    g.mask_blur_px = 2;
    g.masked_content = MaskedContent::Original;
    g.strength = 1.0;
    s
}

fn harness(doc: Document, settings: Settings) -> Harness<'static, EditorApp> {
    let app = EditorApp::new(DocBridge::from_document(doc), settings);
    let mut h = Harness::builder()
        .with_size([1400.0, 1100.0])
        .build_ui_state(|ui, app: &mut EditorApp| app.show(ui), app);
    h.run();
    h
}

fn wait(h: &mut Harness<'_, EditorApp>) {
    let ctx = h.ctx.clone();
    h.state_mut().finish_generation(&ctx);
    h.run();
}

#[test]
fn inpaint_batch_fills_the_tray_and_the_third_applies_exactly() {
    let mut h = harness(sketch(), settings(3, 4, 1234));
    h.state_mut().doc.apply(Command::MaskLoad { image: mask() }).unwrap();
    h.run();
    let layers_before = h.state().doc.layer_count();
    h.get_by_label("Generate").click();
    h.run_steps(2);
    let toasts: Vec<String> = h.state().toasts.texts().map(|(t, _)| t.to_owned()).collect();
    assert!(h.state().generation.is_busy(), "Generate queued a job: {toasts:?}");
    wait(&mut h);
    assert_eq!(h.state().doc.tray.len(), 4, "a batch of 4 fills the tray with 4");
    assert_eq!(h.state().doc.layer_count(), layers_before, "nothing applied yet");

    // Pick the third candidate in the tray and apply it.
    h.get_by_label("Candidate 3 (seed 1236)").click();
    h.run();
    h.get_by_label("Apply").click();
    h.run();
    let app = h.state();
    assert_eq!(app.doc.layer_count(), layers_before + 1);
    let layer = &app.doc.document().layers()[app.doc.active_layer()];

    // The same request straight through the pipeline.
    let canvas = sketch().render_composite();
    let mut request = GenerationRequest::txt2img("a red fox", 64, 64, 1234);
    request.negative_prompt = "blurry".into();
    request.steps = 3;
    request.batch_size = 4;
    request.sampler = SamplerKind::Euler;
    request.schedule = Schedule::Karras;
    request.init = Some(InitImage { image: canvas, strength: 1.0 });
    request.inpaint = Some(InpaintOptions {
        mask: mask(),
        invert_mask: false,
        area: InpaintArea::OnlyMasked,
        padding_px: 8,
        mask_blur_px: 2,
        masked_content: MaskedContent::Original,
        context: None,
    });
    let model =
        StableDiffusion::load(&Checkpoint::open(model_path()).unwrap(), &Device::Cpu, DType::F32)
            .unwrap();
    let direct = generate(&model, &request, &mut |_| ControlFlow::Continue(())).unwrap();
    let expected = &direct.layers[2];
    assert_eq!((layer.offset_x, layer.offset_y), (expected.rect.x, expected.rect.y));
    assert_eq!(layer.pixels.to_image(), expected.image, "the layer is the pipeline's result");

    let record = layer.record.as_ref().expect("the applied layer carries its record");
    assert_eq!(record.seed, 1236);
    assert_eq!(record.mode, GenerationMode::Inpaint);
    assert_eq!(record.prompt, "a red fox");
    assert_eq!(record.negative_prompt, "blurry");
    assert_eq!(record.steps, 3);
    assert_eq!(record.sampler, "Euler");
    assert_eq!(record.schedule, "Karras");
    assert_eq!((record.width, record.height), (64, 64));
    assert_eq!(record.strength, Some(1.0));
    assert_eq!(record.context_box, Some(expected.rect));
    assert_eq!(record.model.name, "tiny_sd1");
    assert_eq!(record.model.hash.as_deref().map(str::len), Some(10));
    let inpaint = record.inpaint.as_ref().unwrap();
    assert_eq!((inpaint.padding_px, inpaint.mask_blur_px), (8, 2));
    // Parents: the visible layers the composite came from.
    assert_eq!(record.parent_layers.len(), 2);
    // The tray keeps the candidate: any number can be applied.
    assert_eq!(app.doc.tray.len(), 4);
    // One undo removes the applied layer.
    h.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    h.run();
    assert_eq!(h.state().doc.layer_count(), layers_before);
}

#[test]
fn cancel_mid_run_leaves_the_document_as_it_was() {
    let mut h = harness(sketch(), settings(150, 1, 5));
    let revision = h.state().doc.revision();
    h.get_by_label("Generate").click();
    h.run_steps(2);
    // Wait for the first step, then press Escape.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while h.state().generation.progress.as_ref().is_none_or(|p| p.step == 0)
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(5));
        h.step();
    }
    assert!(h.state().generation.is_busy());
    h.key_press(Key::Escape);
    h.run_steps(2);
    assert!(!h.state().generation.is_busy(), "Escape cancels the job");
    wait(&mut h);
    // Later events of the cancelled job are dropped.
    std::thread::sleep(std::time::Duration::from_millis(300));
    h.run();
    let app = h.state();
    assert!(app.doc.tray.is_empty());
    assert_eq!(app.doc.revision(), revision);
    assert_eq!(app.doc.layer_count(), 2);
}

#[test]
fn two_queued_jobs_finish_in_order() {
    let mut h = harness(sketch(), settings(2, 2, 10));
    h.get_by_label("Generate").click();
    h.run_steps(2);
    h.state_mut().settings.generation.seed = 20;
    h.key_press_modifiers(Modifiers::COMMAND, Key::Enter);
    h.run_steps(2);
    assert_eq!(h.state().generation.jobs_in_queue(), 2);
    wait(&mut h);
    let seeds: Vec<u64> = h.state().doc.tray.iter().map(|c| c.record.seed).collect();
    assert_eq!(seeds, vec![10, 11, 20, 21]);
    // txt2img on a 96×80 canvas at 64×64: the result is scaled to the canvas.
    let c = &h.state().doc.tray[0];
    assert_eq!((c.x, c.y, c.image.width(), c.image.height()), (0, 0, W, H));
    assert_eq!(c.record.mode, GenerationMode::Txt2img);

    // The tray is part of the project: it survives save and reopen, and marks it unsaved.
    assert!(h.state().is_dirty());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tray.ora");
    let ctx = h.ctx.clone();
    h.state_mut().save_to(&ctx, path.clone());
    h.state_mut().finish_job(&ctx);
    assert!(!h.state().is_dirty());
    let reopened = DocBridge::open(&path, &std::sync::atomic::AtomicU32::new(0)).unwrap();
    assert_eq!(reopened.tray, h.state().doc.tray);
}

#[test]
fn strength_slider_reads_steps() {
    let mut s = settings(20, 4, 1);
    s.generation.strength = 0.8;
    let mut h = harness(sketch(), s);
    h.get_by_value("16 of 20 steps");
    // Changing N re-snaps.
    h.state_mut().settings.generation.steps = 7;
    h.run();
    h.get_by_value("6 of 7 steps");
    assert_eq!(ui::generation::steps_at_strength(h.state().settings.generation.strength, 7), 6);
    // Below full strength without a mask the panel says img2img.
    h.get_by_label("Image to image");
}

#[test]
fn the_context_box_follows_the_mask() {
    let mut h = harness(sketch(), settings(3, 1, 1));
    h.state_mut().doc.apply(Command::MaskLoad { image: mask() }).unwrap();
    h.run();
    h.get_by_label("Inpaint");
    let g = h.state().settings.generation.clone();
    let mut app_gen = std::mem::take(&mut h.state_mut().generation);
    let (_, crop) = app_gen.mode_and_box(&h.state().doc, &g);
    h.state_mut().generation = app_gen;
    let crop = crop.expect("only-masked shows its box");
    let expected =
        pipeline::inpaint::only_masked_crop_box(&mask(), false, 2, 8, None, 64, 64).unwrap();
    assert_eq!(crop, expected);
    let masked = Rect::new(50, 30, 20, 20);
    assert_eq!(crop.union(&masked), crop, "the box holds the masked area");
}

/// Frame times while a job runs (the UI must stay responsive: the worker owns the model).
/// `cargo test --release -p pentimento --test ui_generation -- --ignored --nocapture frame_times`
#[test]
#[ignore = "benchmark: prints figures"]
fn frame_times_while_generating() {
    let mut doc = Document::new(1024, 1024, Some([255, 255, 255, 255])).unwrap();
    for i in 0..4 {
        doc.apply(Command::AddLayer { name: format!("Layer {i}"), index: None }).unwrap();
    }
    let mut s = settings(10, 4, 3);
    s.generation.width = 256;
    s.generation.height = 256;
    let mut h = harness(doc, s);
    h.get_by_label("Generate").click();
    h.run_steps(2);
    let mut frames_ms = Vec::new();
    let started = std::time::Instant::now();
    while h.state().generation.is_busy() && started.elapsed().as_secs() < 300 {
        let t = std::time::Instant::now();
        h.step();
        frames_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        std::thread::sleep(std::time::Duration::from_millis(16));
    }
    frames_ms.sort_by(f64::total_cmp);
    let mean = frames_ms.iter().sum::<f64>() / frames_ms.len().max(1) as f64;
    let p95 = frames_ms[(frames_ms.len() * 95 / 100).min(frames_ms.len() - 1)];
    let max = frames_ms.last().copied().unwrap_or(0.0);
    println!(
        "frames while generating (1024² canvas, 256² job, batch 4, 10 steps, {:.1} s): {} frames, mean {mean:.2} ms, p95 {p95:.2} ms, max {max:.2} ms",
        started.elapsed().as_secs_f64(),
        frames_ms.len()
    );
    assert_eq!(h.state().doc.tray.len(), 4);
}

#[test]
fn prompt_loras_show_as_chips_that_edit_the_prompt() {
    let mut s = settings(3, 1, 1);
    s.generation.prompt = "a fox <lora:ink:0.5>".into();
    let mut h = harness(sketch(), s);
    h.get_by_role_and_label(egui::Role::Slider, "LoRA ink");
    h.get_by_label("not found");
    h.get_by_label("Remove LoRA ink").click();
    h.run();
    assert_eq!(h.state().settings.generation.prompt, "a fox");
}

/// Reuse parameters of an A1111 infotext against a model folder where the LoRA was renamed and
/// the VAE and checkpoint carry other names: everything is found by the hashes the infotext
/// names, once the editor has hashed the library in the background.
#[test]
fn reuse_parameters_finds_renamed_loras_vae_and_model_by_hash() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
    let place = |from: &str, to: &str| {
        let dest = root.join(to);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(fixtures.join(from), &dest).unwrap();
        dest
    };
    let model = place("models/tiny_sd1.safetensors", "checkpoints/my_model.safetensors");
    let lora = place("lora/sd1_kohya.safetensors", "loras/ink_renamed.safetensors");
    let vae = place("lora/vae_ldm.safetensors", "vae/my_vae.safetensors");
    let hash = |p: &std::path::Path, addnet| {
        let no = std::sync::atomic::AtomicBool::new(false);
        sd::library::hash::hash_file(p, addnet, &no, &mut |_, _| {}).unwrap()
    };
    let model_hash = &hash(&model, false).sha256[..10];
    let vae_hash = &hash(&vae, false).sha256[..10];
    let lora_hash = &hash(&lora, true).addnet_sha256.unwrap()[..12];
    let text = format!(
        "a fox <lora:ink_v1:0.8>, <lora:gone:0.5>\nNegative prompt: blurry\nSteps: 12, Sampler: Euler, \
         Schedule type: Karras, CFG scale: 6, Seed: 77, Size: 64x64, Model hash: {model_hash}, \
         Model: old_name, VAE hash: {vae_hash}, VAE: old_vae.safetensors, \
         Lora hashes: \"ink_v1: {lora_hash}, gone: 0123456789ab\", Version: v1.10.1"
    );

    let mut s = settings(3, 1, 1);
    s.generation.model = None;
    let mut h = harness(sketch(), s);
    h.state_mut().generation.hash_cache_path = None;
    let ctx = h.ctx.clone();
    h.state_mut().generation.rescan(&ctx, &[root.to_path_buf()]);
    let started = std::time::Instant::now();
    while h.state().generation.is_hashing() {
        assert!(started.elapsed().as_secs() < 120, "hashing never finished");
        std::thread::sleep(std::time::Duration::from_millis(10));
        h.step();
    }
    h.run();

    let record = editor::generation::record_from_infotext(&text);
    assert_eq!(record.loras.len(), 2);
    assert_eq!(record.loras[0].hash.as_deref(), Some(lora_hash));
    h.state_mut().reuse_record(&record);
    let g = &h.state().settings.generation;
    assert_eq!(g.prompt, "a fox <lora:ink_renamed:0.8>, <lora:gone:0.5>");
    assert_eq!(g.vae.as_deref(), Some(vae.as_path()));
    assert_eq!(g.model.as_deref(), Some(model.as_path()));
    assert_eq!((g.steps, g.seed), (12, 77));
    let toasts: Vec<_> = h.state().toasts.texts().map(|(t, _)| t.to_owned()).collect();
    assert!(toasts.iter().any(|t| t.contains("gone") && t.contains("0123456789ab")), "{toasts:?}");
    assert!(!toasts.iter().any(|t| t.contains("ink_v1") || t.contains("VAE")), "{toasts:?}");
}
