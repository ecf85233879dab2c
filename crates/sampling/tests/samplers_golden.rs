//! Every sampler against k-diffusion / ComfyUI driving the same toy model with the same noise.
//! Fixture: tests/fixtures/sampling/samplers.json from tests/reference/sampling_reference.py.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test"
)]

use std::ops::ControlFlow;

use candle_core::{Device, Tensor};
use pentimento_sampling::{
    DiscreteSchedule, Error, NoiseSource, SamplerKind, TorchNoise, TorchRng, sample,
};
use serde::Deserialize;

#[derive(Deserialize)]
struct Case {
    sampler: String,
    schedule: String,
    steps: usize,
    start_index: usize,
    seeds: Vec<u64>,
    sigmas: Vec<f64>,
    noise_draws: usize,
    output: Vec<f64>,
    init_latent: Option<Vec<f64>>,
}

#[derive(Deserialize)]
struct Fixture {
    latent_shape: Vec<usize>,
    a: Vec<f64>,
    b: Vec<f64>,
    cases: Vec<Case>,
}

fn fixture() -> Fixture {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/sampling/samplers.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn tensor(values: &[f64], shape: &[usize]) -> Tensor {
    let values: Vec<f32> = values.iter().map(|v| *v as f32).collect();
    Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
}

/// The reference's toy model behind k-diffusion's `DiscreteEpsDDPMDenoiser`:
/// denoised = x − σ · tanh(A · x · c_in + B · t(σ) / 1000), c_in = 1/√(σ² + 1).
struct ToyDenoiser {
    a: Tensor,
    b: Tensor,
    table: DiscreteSchedule,
    calls: usize,
}

impl pentimento_sampling::Denoiser for ToyDenoiser {
    fn denoise(&mut self, x: &Tensor, sigma: f64) -> Result<Tensor, Error> {
        self.calls += 1;
        let c_in = 1.0 / (sigma * sigma + 1.0).sqrt();
        let t = self.table.sigma_to_t(sigma);
        let eps = x
            .affine(c_in, 0.0)?
            .broadcast_mul(&self.a)?
            .broadcast_add(&self.b.affine(t / 1000.0, 0.0)?)?
            .tanh()?;
        Ok(x.sub(&eps.affine(sigma, 0.0)?)?)
    }
}

struct Counting<N> {
    inner: N,
    draws: usize,
}

impl<N: NoiseSource> NoiseSource for Counting<N> {
    fn next_noise(&mut self) -> Result<Tensor, Error> {
        self.draws += 1;
        self.inner.next_noise()
    }
}

fn max_abs_diff(got: &Tensor, expected: &[f64]) -> f64 {
    let got: Vec<f32> = got.flatten_all().unwrap().to_vec1().unwrap();
    assert_eq!(got.len(), expected.len());
    got.iter().zip(expected).map(|(g, e)| (f64::from(*g) - e).abs()).fold(0.0, f64::max)
}

#[test]
fn samplers_match_the_reference() {
    let fixture = fixture();
    let device = Device::Cpu;
    let image_shape = &fixture.latent_shape;
    let mut worst = 0.0_f64;
    let mut covered = std::collections::BTreeSet::new();
    for case in &fixture.cases {
        let kind: SamplerKind = case.sampler.parse().unwrap();
        covered.insert(kind.name());
        let label = format!(
            "{} {} steps {} from {} seeds {:?}",
            case.sampler, case.schedule, case.steps, case.start_index, case.seeds
        );
        // The sigmas the reference used are the Rust schedule's too (checked to 1e-5 elsewhere);
        // the stored ones keep this test about the sampler alone.
        let table = DiscreteSchedule::stable_diffusion();
        let ours = table.sigmas_for(case.schedule.parse().unwrap(), case.steps).unwrap();
        for (o, r) in ours[case.start_index..].iter().zip(&case.sigmas) {
            assert!((o - r).abs() <= 1e-5 * r.abs().max(1e-3), "{label}: schedule {o} vs {r}");
        }
        let generators = case.seeds.iter().map(|s| TorchRng::new(*s)).collect();
        let mut noise =
            Counting { inner: TorchNoise::new(generators, image_shape, &device), draws: 0 };
        let initial = noise.inner.next_noise().unwrap();
        let x = match &case.init_latent {
            None => initial.affine(case.sigmas[0], 0.0).unwrap(),
            Some(init) => {
                let init = tensor(init, initial.dims());
                init.add(&initial.affine(case.sigmas[0], 0.0).unwrap()).unwrap()
            }
        };
        let mut denoiser = ToyDenoiser {
            a: tensor(&fixture.a, image_shape),
            b: tensor(&fixture.b, image_shape),
            table,
            calls: 0,
        };
        let mut steps_seen = Vec::new();
        let out = sample(kind, &mut denoiser, &x, &case.sigmas, &mut noise, &mut |p| {
            steps_seen.push((p.step, p.total));
            ControlFlow::Continue(())
        })
        .unwrap();
        let total = case.sigmas.len() - 1;
        assert_eq!(steps_seen, (0..total).map(|s| (s, total)).collect::<Vec<_>>(), "{label}");
        assert_eq!(noise.draws, case.noise_draws, "{label}: noise draws");
        let diff = max_abs_diff(&out, &case.output);
        println!("{label}: max |diff| {diff:.3e} ({} model calls)", denoiser.calls);
        assert!(diff <= 1e-4, "{label}: max |diff| {diff}");
        worst = worst.max(diff);
    }
    assert_eq!(covered.len(), SamplerKind::ALL.len(), "every sampler has a reference case");
    println!("{} cases, worst max |diff| {worst:.3e}", fixture.cases.len());
}

#[test]
fn cancellation_stops_between_steps() {
    let device = Device::Cpu;
    let x = TorchRng::new(1).randn(&[1, 4, 8, 8], &device).unwrap();
    let sigmas = DiscreteSchedule::stable_diffusion()
        .sigmas_for(pentimento_sampling::Schedule::Karras, 10)
        .unwrap();
    let mut calls = 0;
    let mut denoiser = |x: &Tensor, _sigma: f64| -> Result<Tensor, Error> {
        calls += 1;
        Ok(x.affine(0.5, 0.0)?)
    };
    let mut noise = TorchNoise::from_seeds(2, 1, &[1, 4, 8, 8], &device);
    let result =
        sample(SamplerKind::EulerAncestral, &mut denoiser, &x, &sigmas, &mut noise, &mut |p| {
            if p.step == 2 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        });
    assert!(matches!(result, Err(Error::Cancelled)));
    assert_eq!(calls, 3, "no model call after the cancelling step");
}
