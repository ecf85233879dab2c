//! Documented behaviours of the A1111 prompt path, and the emphasis rescale against torch.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] functions; a panic is a failed test"
)]

use pentimento_sd::prompt::{
    NoEmbeddings, PromptError, PromptOptions, apply_emphasis, parse_prompt_attention,
    tokenize_prompt,
};
use pentimento_sd::tokenizer::{BOS_ID, ClipTokenizer, EOS_ID};
use serde_json::Value;

fn chunks_of(prompt: &str, tokenizer: &ClipTokenizer) -> pentimento_sd::prompt::PromptChunks {
    tokenize_prompt(prompt, tokenizer, &PromptOptions::default(), &NoEmbeddings).unwrap()
}

#[test]
fn empty_prompt_is_one_chunk_of_bos_and_eos() {
    let result = chunks_of("", &ClipTokenizer::clip_l().unwrap());
    assert_eq!(result.chunks.len(), 1);
    let chunk = &result.chunks[0];
    assert_eq!(chunk.tokens[0], BOS_ID);
    assert!(chunk.tokens[1..].iter().all(|&t| t == EOS_ID));
    assert!(chunk.multipliers.iter().all(|&m| m == 1.0));
    assert_eq!(result.token_counter().to_string(), "0/75");
}

#[test]
fn open_clip_pads_with_zero_after_the_first_eos() {
    let result = chunks_of("a cat", &ClipTokenizer::open_clip().unwrap());
    let tokens = result.chunks[0].tokens;
    assert_eq!(&tokens[..4], &[BOS_ID, 320, 2368, EOS_ID]);
    assert!(tokens[4..].iter().all(|&t| t == 0));
}

#[test]
fn emphasis_weights_land_on_their_tokens() {
    let result = chunks_of("a (cat:1.5) [dog]", &ClipTokenizer::clip_l().unwrap());
    let chunk = &result.chunks[0];
    assert_eq!(&chunk.tokens[..5], &[BOS_ID, 320, 2368, 1929, EOS_ID]);
    assert_eq!(chunk.multipliers[1], 1.0);
    assert_eq!(chunk.multipliers[2], 1.5);
    assert!((chunk.multipliers[3] - 1.0 / 1.1).abs() < 1e-7);
    assert_eq!(chunk.multipliers[4], 1.0);
    assert_eq!(result.token_counter().to_string(), "3/75");
}

#[test]
fn break_starts_a_new_chunk_and_counts_75() {
    let result = chunks_of("a cat BREAK a dog", &ClipTokenizer::clip_l().unwrap());
    assert_eq!(result.chunks.len(), 2);
    assert_eq!(result.chunks[0].prompt_token_count, 2);
    assert_eq!(result.chunks[1].tokens[1..3], [320, 1929]);
    assert_eq!(result.token_counter().to_string(), "77/150");
    let per_chunk: Vec<String> =
        result.chunk_token_counters().iter().map(ToString::to_string).collect();
    assert_eq!(per_chunk, ["2/75", "2/75"]);
}

#[test]
fn loras_are_removed_and_returned() {
    let result = chunks_of(
        "<lora:detail:0.8> a cat <lyco:style:0.5:1.2> <hypernet:x:1>",
        &ClipTokenizer::clip_l().unwrap(),
    );
    assert_eq!(result.loras.len(), 2);
    assert_eq!(result.loras[0].name, "detail");
    assert_eq!((result.loras[0].te_weight, result.loras[0].unet_weight), (0.8, 0.8));
    assert_eq!((result.loras[1].te_weight, result.loras[1].unet_weight), (0.5, 1.2));
    assert_eq!(result.other_networks.len(), 1);
    assert_eq!(&result.chunks[0].tokens[..4], &[BOS_ID, 320, 2368, EOS_ID]);
}

#[test]
fn user_errors_are_typed() {
    let tokenizer = ClipTokenizer::clip_l().unwrap();
    let options = PromptOptions::default();
    assert!(matches!(
        tokenize_prompt("(cat:1.2.3)", &tokenizer, &options, &NoEmbeddings),
        Err(PromptError::InvalidWeight { .. })
    ));
    assert!(matches!(
        tokenize_prompt("<lora:x:strong>", &tokenizer, &options, &NoEmbeddings),
        Err(PromptError::InvalidLoraArgument { .. })
    ));
    assert!(matches!(
        tokenize_prompt("<lora:te=1>", &tokenizer, &options, &NoEmbeddings),
        Err(PromptError::MissingLoraName { .. })
    ));
}

#[test]
fn a1111_doctest_examples() {
    let parsed =
        parse_prompt_attention("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).").unwrap();
    let got: Vec<(&str, f64)> = parsed.iter().map(|f| (f.text.as_str(), f.weight)).collect();
    let want = [
        ("a ", 1.0),
        ("house", 1.5730000000000004),
        (" ", 1.1),
        ("on", 1.0),
        (" a ", 1.1),
        ("hill", 0.55),
        (", sun, ", 1.1),
        ("sky", 1.4641000000000006),
        (".", 1.1),
    ];
    assert_eq!(got, want);
}

#[test]
fn emphasis_rescale_matches_torch() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/tokenizer/emphasis.json");
    let data: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let floats = |key: &str| -> Vec<f32> {
        data[key].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect()
    };
    let channels = data["channels"].as_u64().unwrap() as usize;
    let multipliers = floats("multipliers");
    let mut z = floats("z");
    let expected = floats("expected");
    apply_emphasis(&mut z, &multipliers, channels).unwrap();
    // Relative to the values: torch's f32 pairwise means and our f64 means differ by ~1e-7.
    let max_rel = z
        .iter()
        .zip(&expected)
        .map(|(a, b)| (a - b).abs() / b.abs().max(1.0))
        .fold(0.0f32, f32::max);
    let max_abs = expected.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    eprintln!("emphasis vs torch: max relative diff {max_rel:e} (values up to {max_abs})");
    assert!(max_rel <= 1e-6, "max relative diff {max_rel}");
    assert!(apply_emphasis(&mut z, &multipliers[..76], channels).is_err());
}
