//! `--bench-frames N`: paints a stroke on a 4096×4096 document with 20 layers for N frames and
//! prints the mean and worst frame time (the benchmark), then closes the window.
//! `PENTIMENTO_BENCH_SIDE_PX=8192` measures an 8192×8192 document instead.

use std::time::Instant;

use egui::pos2;
use ui::tools::{PointerEvent, Tool, ToolModifiers};

use super::{DocBridge, DocError, EditorApp};

pub const BENCH_SIDE_PX: u32 = 4096;
pub const BENCH_LAYERS: usize = 20;

/// The benchmark document's side: `PENTIMENTO_BENCH_SIDE_PX` if set (256..=16384), else 4096.
pub fn bench_side_px() -> u32 {
    std::env::var("PENTIMENTO_BENCH_SIDE_PX")
        .ok()
        .and_then(|v| v.trim().parse::<u32>().ok())
        .map_or(BENCH_SIDE_PX, |v| v.clamp(256, 16384))
}

pub struct BenchRun {
    frames: u32,
    done: u32,
    times_ms: Vec<f32>,
    last: Option<Instant>,
}

/// The benchmark document: 20 layers, each with content (a filled band), so the compositor
/// really blends 20 layers.
pub fn bench_document() -> Result<DocBridge, DocError> {
    let side = bench_side_px();
    let mut doc = DocBridge::new_blank(side, side)?;
    doc.fill_bench_layers(BENCH_LAYERS)?;
    Ok(doc)
}

impl BenchRun {
    pub fn new(frames: u32) -> Result<(Self, DocBridge), DocError> {
        Ok((
            Self { frames: frames.max(2), done: 0, times_ms: Vec::new(), last: None },
            bench_document()?,
        ))
    }
}

/// The stroke position for frame `i`: a zig-zag across the middle of the canvas.
pub fn stroke_point(i: u32) -> egui::Pos2 {
    let t = i as f32;
    let scale = bench_side_px() as f32 / BENCH_SIDE_PX as f32;
    pos2(1600.0 * scale + (t * 6.0) % 1600.0, 2048.0 * scale + 150.0 * (t * 0.05).sin())
}

/// One benchmark frame: feed the next stroke point, record the frame interval.
pub fn step(app: &mut EditorApp, ctx: &egui::Context) {
    let Some(b) = &mut app.bench else { return };
    let now = Instant::now();
    if let Some(last) = b.last {
        b.times_ms.push(now.duration_since(last).as_secs_f32() * 1000.0);
    }
    b.last = Some(now);
    let i = b.done;
    b.done += 1;
    let finished = b.done > b.frames;
    let times = b.times_ms.clone();
    app.settings.tools.tool = Tool::Brush;
    let ev = if i == 0 {
        PointerEvent::Press {
            pos: stroke_point(0),
            pressure: 1.0,
            modifiers: ToolModifiers::default(),
        }
    } else if finished {
        PointerEvent::Release { pos: stroke_point(i) }
    } else {
        PointerEvent::Move { pos: stroke_point(i), pressure: 1.0 }
    };
    let actions = app.tools.handle(&app.settings.tools, ev);
    app.apply_tool_actions(actions);
    if finished {
        app.bench = None;
        report(&times);
        app.allow_close = true;
        ctx.send_viewport_cmd(egui::ViewportCommand::Close);
    } else {
        ctx.request_repaint();
    }
}

/// Prints `… painting: frames N mean X ms p95 Y ms max Z ms` on stdout.
pub fn report(times_ms: &[f32]) {
    report_activity("painting", times_ms);
}

/// [`report`] for another activity (`panning`).
#[allow(clippy::print_stdout, reason = "the benchmark's result is its output")]
pub fn report_activity(activity: &str, times_ms: &[f32]) {
    if times_ms.is_empty() {
        return;
    }
    let mut sorted = times_ms.to_vec();
    sorted.sort_by(f32::total_cmp);
    let mean = sorted.iter().sum::<f32>() / sorted.len() as f32;
    let p95 = sorted.get(sorted.len() * 95 / 100).copied().unwrap_or(mean);
    let max = sorted.last().copied().unwrap_or(mean);
    println!(
        "bench: {}x{} px, {} layers, {activity}: frames {} mean {mean:.2} ms p95 {p95:.2} ms max {max:.2} ms",
        bench_side_px(),
        bench_side_px(),
        BENCH_LAYERS,
        sorted.len()
    );
}
