//! A1111 prompt syntax: emphasis, BREAK, 75-token chunks with comma backtracking.
//!
//! The pipeline for one prompt and one text encoder, as A1111 runs it:
//! 1. [`split_extra_networks`]: `<lora:name:w>` style tags are removed from the text;
//! 2. [`parse_prompt_attention`]: the text becomes fragments with emphasis weights;
//! 3. each fragment is tokenized on its own, and the ids are packed into chunks of 75 prompt
//!    tokens, wrapped as `[BOS] + 75 + [EOS]` (padding EOS, or 0 after the first EOS for
//!    OpenCLIP-G), with comma back-tracking and `BREAK`;
//! 4. after the text encoder, [`apply_emphasis`] weights each chunk's output.
//!
//! [`tokenize_prompt`] does 1-3. SDXL runs it once per tokenizer (the two can differ, e.g. on
//! HTML entities). Prompt editing `[a:b:n]`, alternation `[a|b]` and `AND` are not parsed yet:
//! they stay plain text, as with A1111's parser alone.

mod attention;
mod chunks;
mod emphasis;
mod extra_networks;

use std::fmt;

pub use attention::{WeightedText, parse_prompt_attention};
pub use emphasis::{EmphasisError, apply_emphasis};
pub use extra_networks::{
    ExtraNetworkTag, LoraRef, is_lora_kind, lora_from_tag, split_extra_networks,
};

use crate::tokenizer::ClipTokenizer;

/// Token positions in one chunk: BOS + 75 prompt tokens + EOS.
pub const CHUNK_LEN: usize = 77;
/// Prompt tokens per chunk.
pub const CHUNK_PROMPT_TOKENS: usize = 75;
/// A1111's default "Prompt word wrap length limit" (`comma_padding_backtrack`).
pub const DEFAULT_COMMA_BACKTRACK: usize = 20;

/// Errors in prompt text the user typed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PromptError {
    #[error("emphasis weight {weight:?} is not a number (write it like `(word:1.2)`)")]
    InvalidWeight { weight: String },
    #[error("{tag}: {value:?} is not a number")]
    InvalidLoraArgument { tag: String, value: String },
    #[error("{tag}: the network name is missing")]
    MissingLoraName { tag: String },
    #[error(
        "embedding {name:?} has {vectors} vectors; at most {CHUNK_PROMPT_TOKENS} fit in a chunk"
    )]
    EmbeddingTooLong { name: String, vectors: usize },
    #[error("internal prompt parser error: {0}")]
    Internal(String),
}

/// A1111 settings that change chunking.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptOptions {
    /// Comma back-tracking distance in tokens; 0 disables it.
    pub comma_backtrack: usize,
    /// Parse emphasis and BREAK (A1111's emphasis mode other than "None").
    pub parse_emphasis: bool,
}

impl Default for PromptOptions {
    fn default() -> Self {
        Self { comma_backtrack: DEFAULT_COMMA_BACKTRACK, parse_emphasis: true }
    }
}

/// What a textual-inversion embedding database answers when the chunker asks whether an
/// embedding's name starts at some token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddingMatch {
    pub name: String,
    /// How many prompt tokens the name occupies (they are replaced).
    pub name_token_count: usize,
    /// How many vectors the embedding inserts.
    pub vector_count: usize,
}

/// Textual-inversion hook, like A1111's `find_embedding_at_position`: given a fragment's token
/// ids and a position, claim the embedding whose name's ids start there (prefer the longest).
pub trait EmbeddingLookup {
    fn find_at(&self, fragment_tokens: &[u32], position: usize) -> Option<EmbeddingMatch>;
}

/// No embeddings installed.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEmbeddings;

impl EmbeddingLookup for NoEmbeddings {
    fn find_at(&self, _: &[u32], _: usize) -> Option<EmbeddingMatch> {
        None
    }
}

/// Where an embedding's vectors go in a chunk: token positions `offset..offset + vector_count`
/// (of the 77, BOS at 0) hold id 0 and must get the embedding's vectors instead of the token
/// embedding lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddingSlot {
    pub name: String,
    pub offset: usize,
    pub vector_count: usize,
}

/// One 77-token text-encoder input.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    pub tokens: [u32; CHUNK_LEN],
    /// Emphasis per token position; 1.0 on BOS, EOS and padding.
    pub multipliers: [f32; CHUNK_LEN],
    /// Prompt positions used (at most 75; fewer when BREAK or comma back-tracking ended it).
    pub prompt_token_count: usize,
    pub embeddings: Vec<EmbeddingSlot>,
}

/// A prompt ready for one text encoder.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptChunks {
    /// At least one chunk; encode each and concatenate along the token axis.
    pub chunks: Vec<Chunk>,
    /// LoRA/LyCORIS tags, in prompt order.
    pub loras: Vec<LoraRef>,
    /// Other extra-network tags (hypernetworks, ...): removed from the text, not applied.
    pub other_networks: Vec<ExtraNetworkTag>,
    /// The emphasis fragments the text was parsed into.
    pub fragments: Vec<WeightedText>,
    /// A1111's token count (75 for each chunk but the last, plus the last one's tokens).
    pub token_count: usize,
}

/// The UI's "12/75" token counter (A1111's `used/limit`, the limit growing by 75 per chunk).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenCounter {
    pub used: usize,
    pub limit: usize,
}

impl fmt::Display for TokenCounter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.used, self.limit)
    }
}

impl PromptChunks {
    /// A1111's counter: `token_count / ceil(max(token_count, 1) / 75) * 75`.
    pub fn token_counter(&self) -> TokenCounter {
        TokenCounter {
            used: self.token_count,
            limit: self.token_count.max(1).div_ceil(CHUNK_PROMPT_TOKENS) * CHUNK_PROMPT_TOKENS,
        }
    }

    /// Per-chunk counters ("12/75" for each chunk).
    pub fn chunk_token_counters(&self) -> Vec<TokenCounter> {
        self.chunks
            .iter()
            .map(|chunk| TokenCounter {
                used: chunk.prompt_token_count,
                limit: CHUNK_PROMPT_TOKENS,
            })
            .collect()
    }
}

/// The whole A1111 text path for one prompt and one tokenizer (see the module docs).
pub fn tokenize_prompt(
    prompt: &str,
    tokenizer: &ClipTokenizer,
    options: &PromptOptions,
    embeddings: &dyn EmbeddingLookup,
) -> Result<PromptChunks, PromptError> {
    let (text, tags) = split_extra_networks(prompt)?;
    let mut loras = Vec::new();
    let mut other_networks = Vec::new();
    for tag in tags {
        if is_lora_kind(&tag.kind) {
            loras.push(lora_from_tag(&tag)?);
        } else {
            other_networks.push(tag);
        }
    }
    let line = chunks::tokenize_line(&text, tokenizer, options, embeddings)?;
    Ok(PromptChunks {
        chunks: line.chunks,
        loras,
        other_networks,
        fragments: line.fragments,
        token_count: line.token_count,
    })
}
