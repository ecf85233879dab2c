//! The real generation runner behind the queue, with the tiny checkpoint: results equal a direct
//! pipeline call, the model is loaded once for several jobs, cancel stops a job mid-run.
#![allow(clippy::unwrap_used, reason = "test")]

use std::ops::ControlFlow;
use std::path::PathBuf;

use candle_core::{DType, Device};
use pentimento_jobs::generation::{GenerationJob, GenerationRunner};
use pentimento_jobs::{Event, JobQueue};
use pipeline::generate::generate;
use pipeline::request::GenerationRequest;
use sd::{Checkpoint, StableDiffusion};

fn model_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/models/tiny_sd1.safetensors")
}

fn job(seed: u64, steps: u32) -> GenerationJob {
    let mut request = GenerationRequest::txt2img("a red fox", 64, 64, seed);
    request.steps = steps;
    request.batch_size = 2;
    GenerationJob::new(model_path(), request)
}

#[test]
fn queued_jobs_finish_in_order_and_match_a_direct_call() {
    let mut queue =
        JobQueue::start(GenerationRunner::new(Device::Cpu), "pentimento-generate", || {}).unwrap();
    let a = queue.submit(job(7, 4));
    let b = queue.submit(job(8, 3));
    let mut finished = Vec::new();
    let mut steps = 0;
    let mut previews = 0;
    while !queue.is_idle() {
        match queue.wait_event().unwrap() {
            Event::Finished { id, output } => finished.push((id, output)),
            Event::Step { preview, .. } => {
                steps += 1;
                previews += usize::from(preview.is_some());
            }
            Event::Failed { message, .. } => panic!("{message}"),
            _ => {}
        }
    }
    assert_eq!(finished.iter().map(|(id, _)| *id).collect::<Vec<_>>(), vec![a, b]);
    assert_eq!(steps, 4 + 3);
    assert_eq!(previews, steps, "every step carries a preview");
    let (_, candidates) = &finished[0];
    assert_eq!(candidates.len(), 2);
    assert_eq!(candidates[1].seed, 8);
    assert!(candidates[1].infotext.contains("Seed: 8, "));

    let model =
        StableDiffusion::load(&Checkpoint::open(model_path()).unwrap(), &Device::Cpu, DType::F32)
            .unwrap();
    let direct = generate(&model, &job(7, 4).request, &mut |_| ControlFlow::Continue(())).unwrap();
    assert_eq!(direct.images, candidates.iter().map(|c| c.image.clone()).collect::<Vec<_>>());
}

#[test]
fn cancel_mid_run_produces_no_output() {
    let mut queue =
        JobQueue::start(GenerationRunner::new(Device::Cpu), "pentimento-generate", || {}).unwrap();
    let a = queue.submit(job(1, 200));
    // Wait for the first step, then cancel.
    loop {
        if let Some(Event::Step { .. }) = queue.wait_event() {
            break;
        }
    }
    assert!(queue.cancel(a));
    assert!(queue.is_idle());
    let b = queue.submit(job(2, 1));
    let mut outputs = Vec::new();
    while !queue.is_idle() {
        if let Some(Event::Finished { id, .. }) = queue.wait_event() {
            outputs.push(id);
        }
    }
    assert_eq!(outputs, vec![b], "the cancelled job never finishes");
}

#[test]
fn a_bad_model_fails_with_a_message() {
    let mut queue =
        JobQueue::start(GenerationRunner::new(Device::Cpu), "pentimento-generate", || {}).unwrap();
    let mut bad = job(1, 1);
    bad.model_path = PathBuf::from("/nonexistent/model.safetensors");
    queue.submit(bad);
    loop {
        match queue.wait_event().unwrap() {
            Event::Failed { message, .. } => {
                assert!(message.contains("model.safetensors"), "{message}");
                break;
            }
            Event::Finished { .. } => panic!("a missing model cannot succeed"),
            _ => {}
        }
    }
}

/// Embeddings from the runner's folder are used by name, as in `pentimento generate`, and the
/// candidates' infotext lists them (A1111 `TI hashes`: 12 hex of the file's sha256,
/// 879d4711f1d3… by sha256sum, once per prompt that uses it).
#[test]
fn embeddings_from_the_folder_are_used_and_listed() {
    let dir =
        std::env::temp_dir().join(format!("pentimento-jobs-embeddings-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/lora/emb_sd1.safetensors");
    std::fs::copy(&fixture, dir.join("emb_sd1.safetensors")).unwrap();
    let runner = GenerationRunner::new(Device::Cpu).with_embeddings_dir(Some(dir.clone()));
    let mut queue = JobQueue::start(runner, "pentimento-generate", || {}).unwrap();
    let mut with_embedding = job(3, 2);
    with_embedding.request.prompt = "a photo of emb_sd1".into();
    with_embedding.request.negative_prompt = "emb_sd1".into();
    queue.submit(with_embedding.clone());
    let candidates = loop {
        match queue.wait_event().unwrap() {
            Event::Finished { output, .. } => break output,
            Event::Failed { message, .. } => panic!("{message}"),
            _ => {}
        }
    };
    let model =
        StableDiffusion::load(&Checkpoint::open(model_path()).unwrap(), &Device::Cpu, DType::F32)
            .unwrap();
    let (set, _) = sd::embedding::EmbeddingSet::load_folder(&dir).unwrap();
    let direct = pipeline::generate::generate_with_embeddings(
        &model,
        &with_embedding.request,
        &set,
        &mut |_| ControlFlow::Continue(()),
    )
    .unwrap();
    assert_eq!(direct.images, candidates.iter().map(|c| c.image.clone()).collect::<Vec<_>>());
    let plain =
        generate(&model, &with_embedding.request, &mut |_| ControlFlow::Continue(())).unwrap();
    assert_ne!(plain.images, direct.images, "the embedding changed nothing");
    assert!(
        candidates[0]
            .infotext
            .contains("TI hashes: \"emb_sd1: 879d4711f1d3, emb_sd1: 879d4711f1d3\""),
        "{}",
        candidates[0].infotext
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// LoRAs stay patched while consecutive jobs name the same file and weight (patched once), and
/// every job still sees exactly the weights it asks for: the same LoRA again, then none, then
/// another weight each equal a direct pipeline call on a freshly loaded, freshly patched model.
#[test]
fn loras_stay_patched_across_jobs_until_they_change() {
    use pentimento_jobs::{JobContext, Runner};
    use sd::lora::{LoraSpec, apply_loras};
    let lora = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/lora/sd1_kohya.safetensors");
    let with_lora = |seed: u64, weight: f32| {
        let mut j = job(seed, 2);
        j.request.batch_size = 1;
        j.request.prompt = format!("a red fox <lora:ink:{weight}>");
        j.loras = vec![("ink".into(), LoraSpec::new(&lora, weight))];
        j
    };
    let direct = |j: &GenerationJob| {
        let mut model = StableDiffusion::load(
            &Checkpoint::open(model_path()).unwrap(),
            &Device::Cpu,
            DType::F32,
        )
        .unwrap();
        let specs: Vec<LoraSpec> = j.loras.iter().map(|(_, s)| s.clone()).collect();
        if !specs.is_empty() {
            apply_loras(&mut model, &specs).unwrap();
        }
        generate(&model, &j.request, &mut |_| ControlFlow::Continue(())).unwrap().images
    };
    let mut runner = GenerationRunner::new(Device::Cpu);
    let cancel = std::sync::atomic::AtomicBool::new(false);
    let emit = |_| {};
    let ctx = JobContext::standalone(&cancel, &emit);
    let mut plain = job(5, 2);
    plain.request.batch_size = 1;
    let jobs = [with_lora(1, 0.8), with_lora(2, 0.8), plain, with_lora(3, -0.5)];
    let mut patches = Vec::new();
    for j in &jobs {
        let out = runner.run(j.clone(), &ctx).unwrap();
        patches.push(runner.lora_patches());
        let images: Vec<_> = out.into_iter().map(|c| c.image).collect();
        assert_eq!(images, direct(j), "job with {:?}", j.loras);
    }
    assert_eq!(patches, vec![1, 1, 1, 2], "patched once for the two 0.8 jobs");
    assert_eq!(runner.loads(), 1);
}
