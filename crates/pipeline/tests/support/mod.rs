//! Helpers shared by the pipeline's reference tests.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test helpers fail loudly")]

use sd::prompt::Chunk;

/// One encoder's chunks as the reference manifests store them:
/// `[{"tokens": [77 ids], "multipliers": [77 floats]}, …]`.
pub fn chunks_from_json(encoder: &serde_json::Value) -> Vec<Chunk> {
    encoder
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let ids: Vec<u32> = c["tokens"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u32)
                .collect();
            let mult: Vec<f32> = c["multipliers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect();
            Chunk {
                tokens: ids.try_into().unwrap(),
                multipliers: mult.try_into().unwrap(),
                prompt_token_count: 0,
                embeddings: Vec::new(),
            }
        })
        .collect()
}
