//! Loads and saves on worker threads, so a large file never freezes the window.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;

use raster::{Image, Rgba8};

use super::bridge::{DocBridge, DocError};

/// What a finished job hands back.
pub enum JobOutcome {
    Opened { path: PathBuf, result: Result<DocBridge, DocError> },
    Saved { path: PathBuf, position: u64, result: Result<(), DocError> },
    Exported { path: PathBuf, result: Result<(), DocError> },
    Imported { path: PathBuf, result: Result<Image<Rgba8>, DocError> },
}

/// A running job: its label for the status bar and a progress value in thousandths.
pub struct Job {
    pub label: String,
    pub progress: Arc<AtomicU32>,
    rx: mpsc::Receiver<JobOutcome>,
}

impl Job {
    /// Runs `work` on a named thread; `ctx` is woken when it finishes.
    pub fn spawn(
        label: String,
        ctx: &egui::Context,
        work: impl FnOnce(&AtomicU32) -> JobOutcome + Send + 'static,
    ) -> Result<Job, DocError> {
        let (tx, rx) = mpsc::channel();
        let progress = Arc::new(AtomicU32::new(0));
        let p = Arc::clone(&progress);
        let ctx = ctx.clone();
        std::thread::Builder::new()
            .name("pentimento-io".into())
            .spawn(move || {
                let out = work(&p);
                p.store(1000, Ordering::Relaxed);
                // The editor may have gone away; nothing to do then.
                let _ = tx.send(out);
                ctx.request_repaint();
            })
            .map_err(|e| DocError::Io(format!("cannot start a worker thread: {e}")))?;
        Ok(Job { label, progress, rx })
    }

    /// The outcome, once the job is done.
    pub fn poll(&self) -> Option<JobOutcome> {
        self.rx.try_recv().ok()
    }

    /// Blocks until the job is done.
    #[allow(dead_code, reason = "the kittest tests in crates/app/tests wait for saves with it")]
    pub fn wait(&self) -> Option<JobOutcome> {
        self.rx.recv().ok()
    }

    pub fn fraction(&self) -> f32 {
        self.progress.load(Ordering::Relaxed) as f32 / 1000.0
    }
}
