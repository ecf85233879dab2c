//! Token ids against transformers' slow CLIPTokenizer + ftfy and open_clip's SimpleTokenizer
//! (fixtures from tests/reference/tokenizer_reference.py).

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::print_stdout,
    reason = "test helpers outside #[test] functions; a panic is a failed test"
)]
use pentimento_sd::tokenizer::{ClipTokenizer, TokenizerKind};
use serde_json::Value;

fn fixture() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/tokenizer/ids.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn ids(value: &Value) -> Vec<u32> {
    value.as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect()
}

fn check(kind: TokenizerKind, key: &str) {
    let tokenizer = ClipTokenizer::new(kind).unwrap();
    let fixture = fixture();
    let cases = fixture["cases"].as_array().unwrap();
    let mut failures = Vec::new();
    let mut skipped = 0;
    for case in cases {
        let text = case["text"].as_str().unwrap();
        if case["needs_mojibake_fix"].as_bool().unwrap() {
            skipped += 1;
            continue;
        }
        let expected = ids(&case[key]);
        let got = tokenizer.encode(text);
        if got != expected {
            failures.push(format!("{text:?}\n  expected {expected:?}\n  got      {got:?}"));
        }
    }
    let compared = cases.len() - skipped;
    println!(
        "{key}: {}/{compared} identical ({skipped} mojibake texts skipped)",
        compared - failures.len()
    );
    assert!(cases.len() >= 1000);
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn clip_l_ids_match_transformers_with_ftfy() {
    check(TokenizerKind::ClipL, "clip_l");
}

#[test]
fn open_clip_ids_match_open_clip_simple_tokenizer() {
    check(TokenizerKind::OpenClip, "open_clip");
}

#[test]
fn loads_in_milliseconds() {
    let start = std::time::Instant::now();
    let tokenizer = ClipTokenizer::clip_l().unwrap();
    let elapsed = start.elapsed();
    println!("first load: {elapsed:?}");
    assert_eq!(tokenizer.encode("a photo of a cat"), vec![320, 1125, 539, 320, 2368]);
    assert_eq!(tokenizer.token_id(",</w>"), Some(267));
}

#[test]
fn derived_vocabulary_is_vocab_json() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../assets/vocab.json");
    let expected: std::collections::HashMap<String, u32> =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let tokenizer = ClipTokenizer::clip_l().unwrap();
    let derived: std::collections::HashMap<String, u32> =
        tokenizer.vocabulary().map(|(k, v)| (k.to_owned(), v)).collect();
    assert_eq!(derived.len(), 49_408);
    assert_eq!(derived, expected);
}
