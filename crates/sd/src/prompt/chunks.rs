//! A1111's `tokenize_line` (modules/sd_hijack_clip.py): weighted fragments to 77-token chunks.

use super::attention::{WeightedText, parse_prompt_attention};
use super::{
    CHUNK_LEN, CHUNK_PROMPT_TOKENS, Chunk, EmbeddingLookup, EmbeddingSlot, PromptError,
    PromptOptions,
};
use crate::tokenizer::{BOS_ID, COMMA_ID, ClipTokenizer, EOS_ID};

/// The chunk being filled: prompt positions only (no BOS/EOS yet).
#[derive(Default)]
struct OpenChunk {
    tokens: Vec<u32>,
    multipliers: Vec<f64>,
    embeddings: Vec<EmbeddingSlot>,
}

struct Chunker<'a> {
    tokenizer: &'a ClipTokenizer,
    chunks: Vec<Chunk>,
    current: OpenChunk,
    /// A1111's count for the UI: 75 per finished chunk, the real length of the last one.
    token_count: usize,
    last_comma: Option<usize>,
}

impl Chunker<'_> {
    fn next_chunk(&mut self, is_last: bool) {
        let open = std::mem::take(&mut self.current);
        self.token_count += if is_last { open.tokens.len() } else { CHUNK_PROMPT_TOKENS };
        let prompt_tokens = open.tokens.len();
        let mut tokens = [EOS_ID; CHUNK_LEN];
        let mut multipliers = [1.0f32; CHUNK_LEN];
        tokens[0] = BOS_ID;
        // Positions 1..=75; a chunk never holds more than 75 (checked by the callers).
        for ((slot, mult), (&token, &weight)) in tokens
            .iter_mut()
            .zip(multipliers.iter_mut())
            .skip(1)
            .take(CHUNK_PROMPT_TOKENS)
            .zip(open.tokens.iter().zip(&open.multipliers))
        {
            *slot = token;
            *mult = weight as f32;
        }
        // A1111's process_tokens: with a pad id other than EOS, every position after the first
        // EOS holds the pad id.
        let pad = self.tokenizer.pad_id();
        if pad != EOS_ID
            && let Some(first_eos) = tokens.iter().position(|&t| t == EOS_ID)
        {
            for slot in tokens.iter_mut().skip(first_eos + 1) {
                *slot = pad;
            }
        }
        self.chunks.push(Chunk {
            tokens,
            multipliers,
            prompt_token_count: prompt_tokens,
            embeddings: open.embeddings,
        });
        self.last_comma = None;
    }
}

pub(super) struct LineTokens {
    pub chunks: Vec<Chunk>,
    pub token_count: usize,
    pub fragments: Vec<WeightedText>,
}

pub(super) fn tokenize_line(
    line: &str,
    tokenizer: &ClipTokenizer,
    options: &PromptOptions,
    embeddings: &dyn EmbeddingLookup,
) -> Result<LineTokens, PromptError> {
    let fragments = if options.parse_emphasis {
        parse_prompt_attention(line)?
    } else {
        vec![WeightedText { text: line.to_owned(), weight: 1.0 }]
    };
    let mut chunker = Chunker {
        tokenizer,
        chunks: Vec::new(),
        current: OpenChunk::default(),
        token_count: 0,
        last_comma: None,
    };
    for fragment in &fragments {
        if fragment.is_break() {
            chunker.next_chunk(false);
            continue;
        }
        let tokens = tokenizer.encode(&fragment.text);
        let weight = fragment.weight;
        let mut position = 0;
        while let Some(&token) = tokens.get(position) {
            let filled = chunker.current.tokens.len();
            if token == COMMA_ID {
                chunker.last_comma = Some(filled);
            } else if let Some(last_comma) = chunker.last_comma
                && options.comma_backtrack != 0
                && filled == CHUNK_PROMPT_TOKENS
                && filled - last_comma <= options.comma_backtrack
            {
                // Move what follows the last comma to the next chunk.
                let break_at = last_comma + 1;
                let moved_tokens = chunker.current.tokens.split_off(break_at);
                let moved_multipliers = chunker.current.multipliers.split_off(break_at);
                // A1111 leaves textual-inversion slots of the moved tokens behind (their vectors
                // would land on padding); here they move with their tokens.
                let (moved_slots, kept_slots): (Vec<_>, Vec<_>) =
                    std::mem::take(&mut chunker.current.embeddings)
                        .into_iter()
                        .partition(|slot| slot.offset > break_at);
                chunker.current.embeddings = kept_slots;
                chunker.next_chunk(false);
                chunker.current.tokens = moved_tokens;
                chunker.current.multipliers = moved_multipliers;
                chunker.current.embeddings = moved_slots
                    .into_iter()
                    .map(|slot| EmbeddingSlot { offset: slot.offset - break_at, ..slot })
                    .collect();
            }
            if chunker.current.tokens.len() == CHUNK_PROMPT_TOKENS {
                chunker.next_chunk(false);
            }
            // A match that consumes no token would never advance; read it as no match.
            match embeddings.find_at(&tokens, position).filter(|found| found.name_token_count > 0) {
                None => {
                    chunker.current.tokens.push(token);
                    chunker.current.multipliers.push(weight);
                    position += 1;
                }
                Some(found) => {
                    if found.vector_count > CHUNK_PROMPT_TOKENS {
                        return Err(PromptError::EmbeddingTooLong {
                            name: found.name,
                            vectors: found.vector_count,
                        });
                    }
                    if chunker.current.tokens.len() + found.vector_count > CHUNK_PROMPT_TOKENS {
                        chunker.next_chunk(false);
                    }
                    chunker.current.embeddings.push(EmbeddingSlot {
                        // In the 77 positions: after BOS.
                        offset: chunker.current.tokens.len() + 1,
                        vector_count: found.vector_count,
                        name: found.name,
                    });
                    let filled = chunker.current.tokens.len() + found.vector_count;
                    chunker.current.tokens.resize(filled, 0);
                    chunker.current.multipliers.resize(filled, weight);
                    position += found.name_token_count;
                }
            }
        }
    }
    if !chunker.current.tokens.is_empty() || chunker.chunks.is_empty() {
        chunker.next_chunk(true);
    }
    Ok(LineTokens { chunks: chunker.chunks, token_count: chunker.token_count, fragments })
}
