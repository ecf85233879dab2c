//! Textual-inversion embeddings used by name in a prompt: the chunker claims the name, the
//! embedding's vectors replace the token lookup, and the conditioning equals the reference
//! forward with those vectors (tests/reference/lora_reference.py `embeddings()`).
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test helpers fail loudly")]

use std::path::PathBuf;

use candle_core::{D, DType, Device, Tensor};
use pentimento_pipeline::conditioning::{PromptTokenizers, chunk_lists, encode_prompt};
use sd::embedding::{Embedding, EmbeddingSet};
use sd::{Checkpoint, StableDiffusion};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap()
}

#[test]
fn an_embedding_named_in_the_prompt_conditions_like_the_reference() {
    let reference = candle_core::safetensors::load(
        fixtures().join("lora/embedding_states.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    for kind in ["sd1", "sdxl"] {
        let model = StableDiffusion::load(
            &Checkpoint::open(fixtures().join(format!("models/tiny_{kind}.safetensors"))).unwrap(),
            &Device::Cpu,
            DType::F32,
        )
        .unwrap();
        let mut set = EmbeddingSet::default();
        set.insert(
            Embedding::open(fixtures().join(format!("lora/emb_{kind}.safetensors"))).unwrap(),
        );
        let name = format!("emb_{kind}");
        let tokenizers = PromptTokenizers::for_model(&model).unwrap();
        let prompt = tokenizers.tokenize(&format!("a photo of {name}"), &set).unwrap();
        // The name's tokens became the embedding's vectors: token count 3 + vectors.
        let vectors = set.get(&name).unwrap().vector_count();
        assert_eq!(prompt[0].token_count, 3 + vectors, "{kind}");
        let chunks = chunk_lists(&prompt);
        let want_ids: Vec<u32> = reference[&format!("{kind}.ids")]
            .flatten_all()
            .unwrap()
            .to_dtype(DType::U32)
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(chunks[0][0].tokens.to_vec(), want_ids, "{kind}: CLIP-L ids");

        let cond = encode_prompt(&model, &chunks, 1, &set).unwrap();
        // SDXL: the CLIP-L half of the context (the reference pads OpenCLIP-G's input with EOS
        // rather than A1111's 0, so only the injection into CLIP-L is comparable).
        let (context, expected) = if kind == "sd1" {
            let last = &reference["sd1.te0.last"];
            (cond.context.clone(), model.text_encoders[0].final_layer_norm(last).unwrap())
        } else {
            let clip_l = cond.context.narrow(D::Minus1, 0, 32).unwrap();
            (clip_l, reference["sdxl.te0.penultimate"].clone())
        };
        let diff = max_abs_diff(&context, &expected);
        assert!(diff <= 1e-4, "{kind}: max |Δ| {diff}");

        // Without the embedding the name is plain text, and the conditioning differs.
        let plain = chunk_lists(
            &tokenizers.tokenize(&format!("a photo of {name}"), &EmbeddingSet::default()).unwrap(),
        );
        let plain = encode_prompt(&model, &plain, 1, &EmbeddingSet::default()).unwrap();
        assert!(max_abs_diff(&plain.context, &cond.context) > 1e-2, "{kind}");
    }
}
