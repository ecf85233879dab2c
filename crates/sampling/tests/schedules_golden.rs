//! The noise table and sigma schedules against k-diffusion / ComfyUI (float32 torch).
//! Fixture: tests/fixtures/sampling/schedules.json from tests/reference/sampling_reference.py.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test"
)]

use pentimento_sampling::{DiscreteSchedule, Schedule};
use serde::Deserialize;

#[derive(Deserialize)]
struct Probe {
    sigma: Vec<f64>,
    t: Vec<f64>,
}

#[derive(Deserialize)]
struct Case {
    schedule: String,
    steps: usize,
    sigmas: Vec<f64>,
}

#[derive(Deserialize)]
struct Fixture {
    alphas_cumprod: Vec<f64>,
    sigmas: Vec<f64>,
    sigma_to_t: Probe,
    t_to_sigma: Probe,
    cases: Vec<Case>,
}

fn fixture() -> Fixture {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/sampling/schedules.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn relative_error(got: f64, expected: f64) -> f64 {
    if expected == 0.0 { got.abs() } else { ((got - expected) / expected).abs() }
}

#[test]
fn table_matches_torch() {
    let fixture = fixture();
    let table = DiscreteSchedule::stable_diffusion();
    let alphas: Vec<f64> = table.alphas_cumprod().iter().map(|a| f64::from(*a)).collect();
    // serde_json parses with `float_roundtrip`, so these are the exact float32 values.
    let differing = |a: &[f64], b: &[f64]| a.iter().zip(b).filter(|(x, y)| x != y).count();
    assert_eq!(alphas.len(), fixture.alphas_cumprod.len());
    assert_eq!(differing(&alphas, &fixture.alphas_cumprod), 0, "alphas_cumprod differ");
    // torch's float32 `** 0.5` on this machine is not correctly rounded (it differs from IEEE
    // sqrt in 168 of 1000 entries, by one ulp); ours is IEEE sqrt. Allow exactly that.
    let worst_ulps = table
        .sigmas()
        .iter()
        .zip(&fixture.sigmas)
        .map(|(got, expected)| (got.to_bits() as i64 - (*expected as f32).to_bits() as i64).abs())
        .max()
        .unwrap();
    assert!(worst_ulps <= 1, "sigmas differ by {worst_ulps} ulps");
}

#[test]
fn sigma_to_t_and_back_match_k_diffusion() {
    let fixture = fixture();
    let table = DiscreteSchedule::stable_diffusion();
    let mut worst_t = 0.0_f64;
    for (sigma, t) in fixture.sigma_to_t.sigma.iter().zip(&fixture.sigma_to_t.t) {
        worst_t = worst_t.max((table.sigma_to_t(*sigma) - t).abs());
    }
    // torch works in float32: t near 999 carries ~6e-5 of rounding.
    assert!(worst_t < 2e-4, "sigma_to_t off by {worst_t}");
    let mut worst_sigma = 0.0_f64;
    for (t, sigma) in fixture.t_to_sigma.t.iter().zip(&fixture.t_to_sigma.sigma) {
        worst_sigma = worst_sigma.max(relative_error(table.t_to_sigma(*t), *sigma));
    }
    assert!(worst_sigma < 1e-6, "t_to_sigma off by {worst_sigma} (relative)");
}

#[test]
fn schedules_match_the_reference() {
    let fixture = fixture();
    let table = DiscreteSchedule::stable_diffusion();
    let mut worst = 0.0_f64;
    for case in &fixture.cases {
        let schedule: Schedule = case.schedule.parse().unwrap();
        let sigmas = table.sigmas_for(schedule, case.steps).unwrap();
        assert_eq!(sigmas.len(), case.sigmas.len(), "{} {}", case.schedule, case.steps);
        assert_eq!(*sigmas.last().unwrap(), 0.0);
        for (index, (got, expected)) in sigmas.iter().zip(&case.sigmas).enumerate() {
            let error = relative_error(*got, *expected);
            assert!(
                error <= 1e-5,
                "{} steps {} index {index}: {got} vs {expected} ({error:e})",
                case.schedule,
                case.steps
            );
            worst = worst.max(error);
        }
    }
    println!("schedules: {} cases, worst relative error {worst:e}", fixture.cases.len());
}
