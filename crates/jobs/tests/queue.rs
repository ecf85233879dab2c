use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use pentimento_jobs::{Event, JobContext, JobError, JobQueue, Runner};

/// Counts to `steps`, sleeping a little per step; remembers how many jobs it ran (a stand-in
/// for the model cache a real runner keeps between jobs).
struct Counter {
    runs: Arc<AtomicU32>,
    gate: Option<Arc<Barrier>>,
}

impl Runner for Counter {
    type Request = u32;
    type Progress = u32;
    type Output = u32;

    fn run(&mut self, steps: u32, ctx: &JobContext<'_, u32>) -> Result<u32, JobError> {
        if let Some(gate) = self.gate.take() {
            gate.wait();
        }
        if steps == 0 {
            return Err(JobError::Failed("nothing to do".into()));
        }
        for i in 1..=steps {
            ctx.check_cancelled()?;
            std::thread::sleep(Duration::from_millis(5));
            ctx.step(i, steps, Some(i));
        }
        Ok(self.runs.fetch_add(1, Ordering::SeqCst) + 1)
    }
}

fn drain(q: &mut JobQueue<Counter>) -> Vec<Event<u32, u32>> {
    let mut all = Vec::new();
    while !q.is_idle() {
        all.extend(q.wait_event());
    }
    all
}

#[test]
fn two_jobs_finish_in_order_with_progress() {
    let runs = Arc::new(AtomicU32::new(0));
    let mut q =
        JobQueue::start(Counter { runs: runs.clone(), gate: None }, "test-worker", || {}).unwrap();
    let a = q.submit(3);
    let b = q.submit(2);
    let events = drain(&mut q);
    let finished: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Finished { id, output } => Some((*id, *output)),
            _ => None,
        })
        .collect();
    assert_eq!(finished, vec![(a, 1), (b, 2)]);
    let steps_a = events.iter().filter(|e| matches!(e, Event::Step { id, .. } if *id == a)).count();
    assert_eq!(steps_a, 3);
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[test]
fn cancelled_running_job_stops_and_its_events_are_dropped() {
    let gate = Arc::new(Barrier::new(2));
    let runs = Arc::new(AtomicU32::new(0));
    let mut q = JobQueue::start(
        Counter { runs: runs.clone(), gate: Some(gate.clone()) },
        "test-worker",
        || {},
    )
    .unwrap();
    let a = q.submit(1000);
    let b = q.submit(1);
    assert!(matches!(q.wait_event(), Some(Event::Started { id }) if id == a));
    assert!(q.cancel(a));
    gate.wait();
    let events = drain(&mut q);
    assert!(events.iter().all(|e| e.id() == b), "no event of the cancelled job: {events:?}");
    assert!(events.iter().any(|e| matches!(e, Event::Finished { id, .. } if *id == b)));
    assert!(!q.cancel(a), "already cancelled");
}

#[test]
fn cancelling_a_queued_job_removes_it() {
    let runs = Arc::new(AtomicU32::new(0));
    let gate = Arc::new(Barrier::new(2));
    let mut q = JobQueue::start(
        Counter { runs: runs.clone(), gate: Some(gate.clone()) },
        "test-worker",
        || {},
    )
    .unwrap();
    let a = q.submit(1);
    let b = q.submit(1);
    q.cancel(b);
    gate.wait();
    let events = drain(&mut q);
    assert!(events.iter().all(|e| e.id() == a));
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the cancelled job never ran");
}

#[test]
fn failures_and_panics_become_failed_events() {
    struct Panicker;
    impl Runner for Panicker {
        type Request = bool;
        type Progress = ();
        type Output = ();
        fn run(&mut self, panic: bool, _: &JobContext<'_, ()>) -> Result<(), JobError> {
            if panic {
                panic!("boom");
            }
            Err(JobError::Failed("model file not found".into()))
        }
    }
    let mut q = JobQueue::start(Panicker, "test-worker", || {}).unwrap();
    let a = q.submit(false);
    let b = q.submit(true);
    let c = q.submit(false);
    let mut failed = Vec::new();
    while !q.is_idle() {
        if let Some(Event::Failed { id, message }) = q.wait_event() {
            failed.push((id, message));
        }
    }
    assert_eq!(failed.len(), 3);
    assert_eq!(failed[0], (a, "model file not found".to_owned()));
    assert_eq!(failed[1].0, b);
    assert_eq!(failed[2].0, c, "the worker survives a panic");
}

#[test]
fn waker_is_called_for_events() {
    let woken = Arc::new(AtomicU32::new(0));
    let w = woken.clone();
    let mut q = JobQueue::start(
        Counter { runs: Arc::new(AtomicU32::new(0)), gate: None },
        "test-worker",
        move || {
            w.fetch_add(1, Ordering::SeqCst);
        },
    )
    .unwrap();
    q.submit(2);
    drain(&mut q);
    // Started, 2 steps, Finished.
    assert_eq!(woken.load(Ordering::SeqCst), 4);
}
