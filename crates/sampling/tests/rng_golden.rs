//! `TorchRng` against values torch 2.15 (CPU) produced: bit for bit.
//! Fixture: tests/fixtures/sampling/rng.json from tests/reference/sampling_reference.py.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test"
)]

use pentimento_sampling::TorchRng;
use serde::Deserialize;
use sha2::{Digest, Sha256};

#[derive(Deserialize)]
struct Draw {
    shape: Vec<usize>,
    sha256: String,
    bits: Option<Vec<u32>>,
    head_bits: Option<Vec<u32>>,
    tail_bits: Option<Vec<u32>>,
}

#[derive(Deserialize)]
struct Single {
    seed: u64,
    #[serde(flatten)]
    draw: Draw,
}

#[derive(Deserialize)]
struct Sequence {
    seed: u64,
    draws: Vec<Draw>,
}

#[derive(Deserialize)]
struct Fixture {
    single: Vec<Single>,
    sequences: Vec<Sequence>,
}

fn fixture() -> Fixture {
    let path =
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/sampling/rng.json").to_string();
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

fn sha256(values: &[f32]) -> String {
    let mut hasher = Sha256::new();
    for v in values {
        hasher.update(v.to_le_bytes());
    }
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn check(rng: &mut TorchRng, draw: &Draw, what: &str) {
    let numel = draw.shape.iter().product();
    let values = rng.randn_vec(numel);
    let got = bits(&values);
    if let Some(expected) = &draw.bits {
        let mismatches = got.iter().zip(expected).filter(|(a, b)| a != b).count();
        assert_eq!(mismatches, 0, "{what}: {mismatches} of {numel} values differ");
    }
    if let Some(head) = &draw.head_bits {
        assert_eq!(&got[..head.len()], &head[..], "{what}: first values differ");
    }
    if let Some(tail) = &draw.tail_bits {
        assert_eq!(&got[numel - tail.len()..], &tail[..], "{what}: last values differ");
    }
    assert_eq!(sha256(&values), draw.sha256, "{what}: sha256 differs");
}

#[test]
fn single_draws_match_torch_bit_for_bit() {
    let fixture = fixture();
    assert!(fixture.single.len() >= 80);
    for case in &fixture.single {
        let mut rng = TorchRng::new(case.seed);
        check(&mut rng, &case.draw, &format!("seed {} shape {:?}", case.seed, case.draw.shape));
    }
}

#[test]
fn successive_draws_match_torch_bit_for_bit() {
    for sequence in &fixture().sequences {
        let mut rng = TorchRng::new(sequence.seed);
        for (index, draw) in sequence.draws.iter().enumerate() {
            let what = format!("seed {} draw {index} shape {:?}", sequence.seed, draw.shape);
            check(&mut rng, draw, &what);
        }
    }
}

#[test]
fn randn_tensor_has_the_shape_and_values_of_randn_vec() {
    let device = candle_core::Device::Cpu;
    let tensor = TorchRng::new(42).randn(&[1, 4, 8, 8], &device).unwrap();
    assert_eq!(tensor.dims(), &[1, 4, 8, 8]);
    let flat: Vec<f32> = tensor.flatten_all().unwrap().to_vec1().unwrap();
    assert_eq!(bits(&flat), bits(&TorchRng::new(42).randn_vec(256)));
}
