//! A1111 prompt handling against the step-by-step re-implementation of its Python in
//! tests/reference/tokenizer_reference.py (fixture tests/fixtures/tokenizer/a1111_prompts.json).

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::print_stdout,
    reason = "test helpers outside #[test] functions; a panic is a failed test"
)]

use std::collections::HashMap;

use pentimento_sd::prompt::{
    EmbeddingLookup, EmbeddingMatch, PromptOptions, parse_prompt_attention, split_extra_networks,
    tokenize_prompt,
};
use pentimento_sd::tokenizer::{ClipTokenizer, TokenizerKind};
use serde_json::Value;

fn fixture() -> Value {
    let path =
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/tokenizer/a1111_prompts.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A1111's EmbeddingDatabase lookup over fixed names: first token id -> candidates, longest first.
struct FakeEmbeddings {
    by_first_token: HashMap<u32, Vec<(Vec<u32>, String, usize)>>,
}

impl FakeEmbeddings {
    fn new(tokenizer: &ClipTokenizer, names: &Value) -> Self {
        let mut by_first_token: HashMap<u32, Vec<(Vec<u32>, String, usize)>> = HashMap::new();
        for entry in names.as_array().unwrap() {
            let name = entry[0].as_str().unwrap();
            let vectors = entry[1].as_u64().unwrap() as usize;
            let ids = tokenizer.encode(name);
            by_first_token.entry(ids[0]).or_default().push((ids, name.to_owned(), vectors));
        }
        for list in by_first_token.values_mut() {
            list.sort_by_key(|entry| std::cmp::Reverse(entry.0.len()));
        }
        Self { by_first_token }
    }
}

impl EmbeddingLookup for FakeEmbeddings {
    fn find_at(&self, tokens: &[u32], position: usize) -> Option<EmbeddingMatch> {
        let candidates = self.by_first_token.get(tokens.get(position)?)?;
        candidates.iter().find_map(|(ids, name, vectors)| {
            (tokens.get(position..position + ids.len()) == Some(ids.as_slice())).then(|| {
                EmbeddingMatch {
                    name: name.clone(),
                    name_token_count: ids.len(),
                    vector_count: *vectors,
                }
            })
        })
    }
}

fn run_length_decode(runs: &Value) -> Vec<f64> {
    let mut out = Vec::new();
    for run in runs.as_array().unwrap() {
        let value = run[0].as_f64().unwrap();
        for _ in 0..run[1].as_u64().unwrap() {
            out.push(value);
        }
    }
    out
}

#[test]
fn parse_prompt_attention_matches_a1111() {
    let fixture = fixture();
    let prompts = fixture["prompts"].as_array().unwrap();
    let mut identical = 0;
    for entry in prompts {
        let (stripped, _) = split_extra_networks(entry["prompt"].as_str().unwrap()).unwrap();
        assert_eq!(stripped, entry["stripped"].as_str().unwrap());
        let parsed = parse_prompt_attention(&stripped).unwrap();
        let expected = entry["parsed"].as_array().unwrap();
        assert_eq!(parsed.len(), expected.len(), "{stripped:?}: {parsed:?}");
        for (got, want) in parsed.iter().zip(expected) {
            assert_eq!(got.text, want[0].as_str().unwrap(), "{stripped:?}");
            // Same f64 operations in the same order; the tolerance only covers serde_json's
            // float parsing, which is not always correctly rounded (1 ulp).
            let want = want[1].as_f64().unwrap();
            assert!(
                (got.weight - want).abs() <= 1e-15 * want.abs().max(1.0),
                "{stripped:?}: {} vs {want}",
                got.weight
            );
        }
        identical += 1;
    }
    println!("parse_prompt_attention: {identical}/{} identical", prompts.len());
}

fn check_chunks(kind: TokenizerKind, key: &str, backtrack: usize) {
    let fixture = fixture();
    let tokenizer = ClipTokenizer::new(kind).unwrap();
    let embeddings = FakeEmbeddings::new(&tokenizer, &fixture["embeddings"]);
    let options = PromptOptions { comma_backtrack: backtrack, ..PromptOptions::default() };
    let prompts = fixture["prompts"].as_array().unwrap();
    let mut identical = 0;
    let mut total_chunks = 0;
    for entry in prompts {
        let prompt = entry["prompt"].as_str().unwrap();
        let result = tokenize_prompt(prompt, &tokenizer, &options, &embeddings);
        if entry["loras"].as_str() == Some("error") {
            assert!(result.is_err(), "{prompt:?} should be refused");
            identical += 1;
            continue;
        }
        let result = result.unwrap();
        let loras = entry["loras"].as_array().unwrap();
        assert_eq!(result.loras.len(), loras.len(), "{prompt:?}");
        for (got, want) in result.loras.iter().zip(loras) {
            assert_eq!(got.name, want["name"].as_str().unwrap());
            assert_eq!(got.te_weight, want["te"].as_f64().unwrap() as f32);
            assert_eq!(got.unet_weight, want["unet"].as_f64().unwrap() as f32);
            assert_eq!(got.dyn_dim, want["dyn"].as_i64());
        }
        let expected_other = entry["extra_networks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| !matches!(t[0].as_str().unwrap(), "lora" | "lyco"))
            .count();
        assert_eq!(result.other_networks.len(), expected_other);

        let want = &entry[key];
        assert_eq!(
            result.token_count,
            want["token_count"].as_u64().unwrap() as usize,
            "{prompt:?}"
        );
        assert_eq!(result.token_counter().limit, want["target"].as_u64().unwrap() as usize);
        let chunks = want["chunks"].as_array().unwrap();
        assert_eq!(result.chunks.len(), chunks.len(), "{prompt:?}");
        for (got, want) in result.chunks.iter().zip(chunks) {
            let tokens: Vec<u32> = want["tokens"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u32)
                .collect();
            assert_eq!(got.tokens.to_vec(), tokens, "{prompt:?}");
            let multipliers = run_length_decode(&want["multipliers"]);
            assert_eq!(multipliers.len(), 77);
            for (g, w) in got.multipliers.iter().zip(&multipliers) {
                assert!((f64::from(*g) - w).abs() <= 1e-6, "{prompt:?}: {g} vs {w}");
            }
            let slots: Vec<(String, usize, usize)> = want["embeddings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    (
                        s[0].as_str().unwrap().to_owned(),
                        s[1].as_u64().unwrap() as usize,
                        s[2].as_u64().unwrap() as usize,
                    )
                })
                .collect();
            let got_slots: Vec<(String, usize, usize)> =
                got.embeddings.iter().map(|s| (s.name.clone(), s.offset, s.vector_count)).collect();
            assert_eq!(got_slots, slots, "{prompt:?}");
            total_chunks += 1;
        }
        identical += 1;
    }
    println!(
        "{key} (backtrack {backtrack}): {identical}/{} prompts identical, {total_chunks} chunks",
        prompts.len()
    );
}

#[test]
fn clip_l_chunks_match_a1111() {
    check_chunks(TokenizerKind::ClipL, "clip_l", 20);
}

#[test]
fn clip_l_chunks_without_backtracking_match_a1111() {
    check_chunks(TokenizerKind::ClipL, "clip_l_no_backtrack", 0);
}

#[test]
fn open_clip_chunks_match_a1111() {
    check_chunks(TokenizerKind::OpenClip, "open_clip", 20);
}
