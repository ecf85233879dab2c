//! The generation queue: jobs run one at a time on a named worker thread that owns the expensive
//! state (the loaded model), and report back through id-tagged events on a channel.
//!
//! The crate is generic over a [`Runner`] so it knows nothing of models or egui: the app plugs in
//! the pipeline runner and a waker that repaints the UI. Events of jobs the caller no longer
//! cares about (unknown or cancelled ids) are dropped in [`JobQueue::poll`], so a late progress
//! event can never resurrect a cancelled job in the UI.

pub mod generation;

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};

/// Identifies one submitted job; ids are never reused within a queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub u64);

/// Why a job did not produce its output.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The job saw its cancel flag between two steps and stopped.
    #[error("cancelled")]
    Cancelled,
    /// Anything else, with a message for the user (what failed and what to do).
    #[error("{0}")]
    Failed(String),
}

/// What the worker reports. `P` is a progress payload (e.g. a preview image), `O` the output.
#[derive(Debug)]
pub enum Event<P, O> {
    Started { id: JobId },
    Step { id: JobId, step: u32, total: u32, preview: Option<P> },
    Finished { id: JobId, output: O },
    Failed { id: JobId, message: String },
    Cancelled { id: JobId },
}

impl<P, O> Event<P, O> {
    pub fn id(&self) -> JobId {
        match self {
            Event::Started { id }
            | Event::Step { id, .. }
            | Event::Finished { id, .. }
            | Event::Failed { id, .. }
            | Event::Cancelled { id } => *id,
        }
    }

    /// True for the last event a job sends.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Event::Finished { .. } | Event::Failed { .. } | Event::Cancelled { .. })
    }
}

/// What a running job can see and do: check for cancellation and report steps.
pub struct JobContext<'a, P> {
    id: JobId,
    cancel: &'a AtomicBool,
    emit: &'a dyn Fn(Event<P, ()>),
}

impl<'a, P> JobContext<'a, P> {
    /// A context outside any queue, for running a [`Runner`] directly (tests, command line):
    /// `emit` receives the step events.
    pub fn standalone(cancel: &'a AtomicBool, emit: &'a dyn Fn(Event<P, ()>)) -> Self {
        Self { id: JobId(0), cancel, emit }
    }

    pub fn id(&self) -> JobId {
        self.id
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// `Err(JobError::Cancelled)` once the job was cancelled: call it between steps with `?`.
    pub fn check_cancelled(&self) -> Result<(), JobError> {
        if self.is_cancelled() { Err(JobError::Cancelled) } else { Ok(()) }
    }

    /// Reports that `step` of `total` steps is done.
    pub fn step(&self, step: u32, total: u32, preview: Option<P>) {
        (self.emit)(Event::Step { id: self.id, step, total, preview });
    }
}

/// Runs one job at a time on the worker thread; owns whatever is expensive to load.
pub trait Runner: Send + 'static {
    type Request: Send + 'static;
    type Progress: Send + 'static;
    type Output: Send + 'static;

    fn run(
        &mut self,
        request: Self::Request,
        ctx: &JobContext<'_, Self::Progress>,
    ) -> Result<Self::Output, JobError>;
}

struct Pending<Req> {
    id: JobId,
    request: Req,
    cancel: Arc<AtomicBool>,
}

struct Shared<Req> {
    pending: Mutex<VecDeque<Pending<Req>>>,
    /// The cancel flag of the job the worker is running, if any.
    running: Mutex<Option<(JobId, Arc<AtomicBool>)>>,
    shutdown: AtomicBool,
}

/// The caller's side of the queue: submit, cancel, poll events.
pub struct JobQueue<R: Runner> {
    shared: Arc<Shared<R::Request>>,
    wake_worker: Sender<()>,
    events: Receiver<Event<R::Progress, R::Output>>,
    live: HashSet<JobId>,
    next_id: u64,
    worker: Option<JoinHandle<()>>,
}

impl<R: Runner> JobQueue<R> {
    /// Starts the worker thread `thread_name` owning `runner`. `waker` is called after every event
    /// is sent (the UI passes its repaint request so it wakes without polling).
    pub fn start(
        runner: R,
        thread_name: &str,
        waker: impl Fn() + Send + 'static,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            pending: Mutex::new(VecDeque::new()),
            running: Mutex::new(None),
            shutdown: AtomicBool::new(false),
        });
        let (wake_tx, wake_rx) = crossbeam_channel::unbounded::<()>();
        let (event_tx, event_rx) = crossbeam_channel::unbounded();
        let worker_shared = Arc::clone(&shared);
        let worker = std::thread::Builder::new()
            .name(thread_name.to_owned())
            .spawn(move || worker_loop(runner, &worker_shared, &wake_rx, &event_tx, &waker))?;
        Ok(Self {
            shared,
            wake_worker: wake_tx,
            events: event_rx,
            live: HashSet::new(),
            next_id: 1,
            worker: Some(worker),
        })
    }

    /// Queues a job behind the ones already queued; returns its id at once.
    pub fn submit(&mut self, request: R::Request) -> JobId {
        let id = JobId(self.next_id);
        self.next_id += 1;
        self.live.insert(id);
        lock(&self.shared.pending).push_back(Pending {
            id,
            request,
            cancel: Arc::new(AtomicBool::new(false)),
        });
        // A send only fails when the worker is gone; the job then stays pending and the
        // caller sees no events, which `is_idle` reports.
        let _ = self.wake_worker.send(());
        id
    }

    /// Cancels a queued or running job: the caller may forget it at once, since all its later
    /// events are dropped; a running job stops at its next step. Returns false for unknown or
    /// finished ids.
    pub fn cancel(&mut self, id: JobId) -> bool {
        if !self.live.remove(&id) {
            return false;
        }
        lock(&self.shared.pending).retain(|p| p.id != id);
        if let Some((running_id, flag)) = lock(&self.shared.running).as_ref()
            && *running_id == id
        {
            flag.store(true, Ordering::Relaxed);
        }
        true
    }

    /// Cancels every queued and running job.
    pub fn cancel_all(&mut self) {
        let ids: Vec<JobId> = self.live.iter().copied().collect();
        for id in ids {
            self.cancel(id);
        }
    }

    /// Ids of jobs submitted and not yet finished, failed or cancelled.
    pub fn live_jobs(&self) -> impl Iterator<Item = JobId> + '_ {
        self.live.iter().copied()
    }

    pub fn is_idle(&self) -> bool {
        self.live.is_empty()
    }

    /// Takes every event that arrived, dropping those of unknown or cancelled jobs.
    pub fn poll(&mut self) -> Vec<Event<R::Progress, R::Output>> {
        let mut out = Vec::new();
        while let Ok(event) = self.events.try_recv() {
            let id = event.id();
            if !self.live.contains(&id) {
                continue;
            }
            if event.is_terminal() {
                self.live.remove(&id);
            }
            out.push(event);
        }
        out
    }

    /// Blocks until the next event of a live job arrives (for headless use and tests).
    pub fn wait_event(&mut self) -> Option<Event<R::Progress, R::Output>> {
        loop {
            let event = self.events.recv().ok()?;
            let id = event.id();
            if !self.live.contains(&id) {
                continue;
            }
            if event.is_terminal() {
                self.live.remove(&id);
            }
            return Some(event);
        }
    }
}

impl<R: Runner> Drop for JobQueue<R> {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::Relaxed);
        if let Some((_, flag)) = lock(&self.shared.running).as_ref() {
            flag.store(true, Ordering::Relaxed);
        }
        let _ = self.wake_worker.send(());
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic inside a runner must not take the queue down with it: the data behind these locks
    // (a queue and an optional flag) stays consistent whatever the panicking thread was doing.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn worker_loop<R: Runner>(
    mut runner: R,
    shared: &Shared<R::Request>,
    wake: &Receiver<()>,
    events: &Sender<Event<R::Progress, R::Output>>,
    waker: &(impl Fn() + Send),
) {
    let send = |event: Event<R::Progress, R::Output>| {
        let _ = events.send(event);
        waker();
    };
    loop {
        if shared.shutdown.load(Ordering::Relaxed) {
            return;
        }
        let next = lock(&shared.pending).pop_front();
        let Some(job) = next else {
            if wake.recv().is_err() {
                return;
            }
            continue;
        };
        *lock(&shared.running) = Some((job.id, Arc::clone(&job.cancel)));
        send(Event::Started { id: job.id });
        let emit = |e: Event<R::Progress, ()>| {
            if let Event::Step { id, step, total, preview } = e {
                send(Event::Step { id, step, total, preview });
            }
        };
        let ctx = JobContext { id: job.id, cancel: &job.cancel, emit: &emit };
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            runner.run(job.request, &ctx)
        }));
        *lock(&shared.running) = None;
        match result {
            Ok(Ok(output)) => send(Event::Finished { id: job.id, output }),
            Ok(Err(JobError::Cancelled)) => send(Event::Cancelled { id: job.id }),
            Ok(Err(JobError::Failed(message))) => send(Event::Failed { id: job.id, message }),
            Err(_) => send(Event::Failed {
                id: job.id,
                message:
                    "internal error: the generation worker panicked; the document is unchanged"
                        .to_owned(),
            }),
        }
    }
}
