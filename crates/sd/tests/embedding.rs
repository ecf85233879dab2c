//! Textual-inversion embeddings: loading (SD1 `emb_params`, SDXL `clip_l`/`clip_g`) and injection
//! into the token embeddings, against transformers' CLIP forward with the vectors written into
//! vocabulary rows (tests/reference/lora_reference.py).
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test helpers fail loudly")]

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use pentimento_sd::embedding::{
    Embedding, EmbeddingPlacement, EmbeddingSet, hidden_states_with_embeddings, inject_embeddings,
};
use pentimento_sd::{Checkpoint, StableDiffusion};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

fn max_abs(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap()
}

#[test]
fn injected_states_match_the_reference() {
    let reference = candle_core::safetensors::load(
        fixtures().join("lora/embedding_states.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    for (kind, count, widths) in [("sd1", 2, vec![32]), ("sdxl", 3, vec![32, 48])] {
        let ckpt =
            Checkpoint::open(fixtures().join(format!("models/tiny_{kind}.safetensors"))).unwrap();
        let model = StableDiffusion::load(&ckpt, &Device::Cpu, DType::F32).unwrap();
        let embedding =
            Embedding::open(fixtures().join(format!("lora/emb_{kind}.safetensors"))).unwrap();
        assert_eq!(embedding.name(), format!("emb_{kind}"));
        assert_eq!(embedding.vector_count(), count);
        assert_eq!(embedding.widths(), widths);
        assert!(embedding.fits(model.config()));
        let ids = reference[&format!("{kind}.ids")].to_dtype(DType::U32).unwrap();
        let placement = EmbeddingPlacement { row: 0, position: 4, embedding: &embedding };
        for (e, encoder) in model.text_encoders.iter().enumerate() {
            let states = hidden_states_with_embeddings(encoder, e, &ids, &[placement]).unwrap();
            let n = states.len();
            let last = max_abs(&states[n - 1], &reference[&format!("{kind}.te{e}.last")]);
            let pen = max_abs(&states[n - 2], &reference[&format!("{kind}.te{e}.penultimate")]);
            assert!(last < 1e-4 && pen < 1e-4, "{kind} te{e}: {last} {pen}");
        }
    }
}

#[test]
fn vectors_stop_before_the_last_position_as_in_a1111() {
    let vectors = Tensor::ones((3, 4), DType::F32, &Device::Cpu).unwrap();
    let embedding = Embedding::from_tensors("e", vec![("emb_params".into(), vectors)]).unwrap();
    let x = Tensor::zeros((1, 6, 4), DType::F32, &Device::Cpu).unwrap();
    let placement = EmbeddingPlacement { row: 0, position: 3, embedding: &embedding };
    let y = inject_embeddings(&x, 0, &[placement]).unwrap();
    let rows: Vec<f32> = y.sum(2).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    assert_eq!(rows, vec![0.0, 0.0, 0.0, 4.0, 4.0, 0.0]);
    // The wrong encoder or width is an error, not a panic.
    assert!(inject_embeddings(&x, 1, &[placement]).is_err());
}

#[test]
fn folders_and_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixtures().join("lora/emb_sd1.safetensors"), dir.path().join("fox.safetensors"))
        .unwrap();
    std::fs::copy(
        fixtures().join("lora/sd1_kohya.safetensors"),
        dir.path().join("notemb.safetensors"),
    )
    .unwrap();
    std::fs::write(dir.path().join("old.pt"), b"\x80\x02junk").unwrap();
    let (set, failures) = EmbeddingSet::load_folder(dir.path()).unwrap();
    assert_eq!(set.names().collect::<Vec<_>>(), vec!["fox"]);
    assert_eq!(set.get("fox").unwrap().vector_count(), 2);
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(failures[0].1.to_string().contains("not a single-term embedding"), "{}", failures[0].1);
    let err = Embedding::open(dir.path().join("old.pt")).unwrap_err();
    assert!(err.to_string().contains("pickle"), "{err}");
}
