//! The CLIP BPE tokenizer, with the vocabulary embedded from `assets/`.
//!
//! Two flavours, because A1111 runs two different Python tokenizers over the same BPE files and
//! they clean text differently:
//! * [`TokenizerKind::ClipL`] (SD1.x and SDXL's first encoder): transformers' slow
//!   `CLIPTokenizer` with ftfy installed: `<|startoftext|>`/`<|endoftext|>` split off first, then
//!   `ftfy.fix_text`, `\s+` collapsed to one space, stripped, lower-cased. Padding is EOS.
//! * [`TokenizerKind::OpenClip`] (SDXL's second encoder): open_clip's `SimpleTokenizer`:
//!   `ftfy.fix_text`, `html.unescape` twice, whitespace collapsed, stripped, lower-cased; its
//!   special words are `<start_of_text>`/`<end_of_text>`. Padding is id 0 after the first EOS.
//!
//! Then both split words with CLIP's regex, map UTF-8 bytes to CLIP's printable characters and
//! apply the BPE merges with `</w>` marking the end of a word.
//!
//! Why hand-written and not the `tokenizers` crate: `tokenizers` has no ftfy (transformers >= 5's
//! tokenizers-backed CLIPTokenizer is NFC + lower-case only, and differs from A1111 on html
//! entities, curly quotes, fullwidth forms, ligatures and control characters), has no
//! `html.unescape`, pulls in a large dependency tree (onig or fancy-regex, rayon, serde
//! machinery) and would need the same cleaning code in front of it anyway; the BPE itself is
//! ~100 lines. The vocabulary is rebuilt from `merges.txt` the way CLIP builds it (a test checks
//! it equals `assets/vocab.json`), which keeps start-up at ~11 ms in release builds.
//!
//! Note: ftfy's default configuration *does* straighten curly quotes (`uncurl_quotes=True`), so
//! `it’s` tokenizes like `it's`, as in A1111.
//!
//! Known gap: ftfy's mojibake repair (`fix_encoding`: text such as `cafÃ©` decoded in the wrong
//! code page) is not ported; such text keeps its mojibake here. Everything else `fix_text` does
//! by default is (HTML entities, C1 controls, ligatures, character width, curly quotes, line
//! breaks, terminal escapes, control characters, NFC). ftfy's 1,000,000-character segment limit
//! is not mirrored (segments are split at line breaks only).

mod bpe;
mod clean;
#[rustfmt::skip]
mod tables;

use std::sync::{Arc, OnceLock};

use bpe::Bpe;

/// Id of `<|startoftext|>` (BOS).
pub const BOS_ID: u32 = 49406;
/// Id of `<|endoftext|>` (EOS, and CLIP-L's padding).
pub const EOS_ID: u32 = 49407;
/// Id of `,</w>`, where A1111's comma back-tracking may end a chunk.
pub const COMMA_ID: u32 = 267;
/// Id OpenCLIP-G pads with after the first EOS (`!`).
pub const OPEN_CLIP_PAD_ID: u32 = 0;

const MERGES_TXT: &str = include_str!("../../../assets/merges.txt");

/// A broken embedded vocabulary; only a corrupted build can produce these.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenizerError {
    #[error("the CLIP word pattern does not compile: {0}")]
    WordPattern(String),
    #[error("the embedded CLIP merges file is malformed at line {line}")]
    Merges { line: usize },
}

/// Which of A1111's two tokenizers to mirror (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenizerKind {
    /// transformers' slow `CLIPTokenizer` + ftfy: SD1.x, and SDXL's CLIP-L.
    ClipL,
    /// open_clip's `SimpleTokenizer`: SDXL's OpenCLIP-G.
    OpenClip,
}

/// A CLIP BPE tokenizer. Cheap to clone (the vocabulary is shared and parsed once per process).
#[derive(Debug, Clone)]
pub struct ClipTokenizer {
    bpe: Arc<Bpe>,
    kind: TokenizerKind,
    word_regex: Arc<regex::Regex>,
}

static SHARED_BPE: OnceLock<Result<Arc<Bpe>, TokenizerError>> = OnceLock::new();

fn shared_bpe() -> Result<Arc<Bpe>, TokenizerError> {
    SHARED_BPE.get_or_init(|| Bpe::parse(MERGES_TXT).map(Arc::new)).clone()
}

impl ClipTokenizer {
    /// The tokenizer of SD1.x and of SDXL's first (CLIP-L) encoder.
    pub fn clip_l() -> Result<Self, TokenizerError> {
        Self::new(TokenizerKind::ClipL)
    }

    /// The tokenizer of SDXL's second (OpenCLIP-G) encoder.
    pub fn open_clip() -> Result<Self, TokenizerError> {
        Self::new(TokenizerKind::OpenClip)
    }

    pub fn new(kind: TokenizerKind) -> Result<Self, TokenizerError> {
        let specials = match kind {
            TokenizerKind::ClipL => r"<\|startoftext\|>|<\|endoftext\|>",
            TokenizerKind::OpenClip => r"<start_of_text>|<end_of_text>",
        };
        // The Python tokenizers compile this with IGNORECASE; `(?i)` keeps the same matches for
        // the few characters whose case folding differs from lower-casing.
        let pattern = format!(
            r"(?i){specials}|'s|'t|'re|'ve|'m|'ll|'d|[\p{{L}}]+|[\p{{N}}]|[^\s\p{{L}}\p{{N}}]+"
        );
        let word_regex = regex::Regex::new(&pattern)
            .map_err(|err| TokenizerError::WordPattern(err.to_string()))?;
        Ok(Self { bpe: shared_bpe()?, kind, word_regex: Arc::new(word_regex) })
    }

    pub fn kind(&self) -> TokenizerKind {
        self.kind
    }

    /// The id that fills a chunk after its first EOS: EOS for CLIP-L, 0 for OpenCLIP-G.
    pub fn pad_id(&self) -> u32 {
        match self.kind {
            TokenizerKind::ClipL => EOS_ID,
            TokenizerKind::OpenClip => OPEN_CLIP_PAD_ID,
        }
    }

    /// The id of one vocabulary entry (e.g. `"cat</w>"`), if present.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.bpe.id(token)
    }

    /// Every vocabulary entry with its id (the contents of `assets/vocab.json`).
    pub fn vocabulary(&self) -> impl Iterator<Item = (&str, u32)> {
        self.bpe.vocabulary()
    }

    /// Token ids of `text` without BOS/EOS, exactly as A1111's tokenizer call returns them.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut ids = Vec::new();
        match self.kind {
            TokenizerKind::ClipL => {
                // transformers splits the special tokens off before cleaning the text between.
                for (segment, special) in split_clip_l_specials(text) {
                    match special {
                        Some(id) => ids.push(id),
                        None => self.encode_clean(&clean::clip_l_clean(segment), &mut ids),
                    }
                }
            }
            TokenizerKind::OpenClip => self.encode_clean(&clean::open_clip_clean(text), &mut ids),
        }
        ids
    }

    fn encode_clean(&self, cleaned: &str, ids: &mut Vec<u32>) {
        for word in self.word_regex.find_iter(cleaned) {
            let word = word.as_str();
            if let Some(id) = self.special_word_id(word) {
                ids.push(id);
            } else {
                self.bpe.encode_word(word.as_bytes(), ids);
            }
        }
    }

    /// The Python tokenizers pre-seed their BPE cache with their special words, so a (lower-cased)
    /// special word in the text becomes the special id.
    fn special_word_id(&self, word: &str) -> Option<u32> {
        match (self.kind, word) {
            (TokenizerKind::ClipL, "<|startoftext|>")
            | (TokenizerKind::OpenClip, "<start_of_text>") => Some(BOS_ID),
            (TokenizerKind::ClipL, "<|endoftext|>")
            | (TokenizerKind::OpenClip, "<end_of_text>") => Some(EOS_ID),
            _ => None,
        }
    }
}

/// Splits `text` around exact `<|startoftext|>` / `<|endoftext|>`, as transformers' added-token
/// trie does before tokenizing the pieces between.
fn split_clip_l_specials(text: &str) -> Vec<(&str, Option<u32>)> {
    const SPECIALS: [(&str, u32); 2] = [("<|startoftext|>", BOS_ID), ("<|endoftext|>", EOS_ID)];
    let mut out = Vec::new();
    let mut rest = text;
    loop {
        let next = SPECIALS
            .iter()
            .filter_map(|&(s, id)| rest.find(s).map(|at| (at, s, id)))
            .min_by_key(|&(at, _, _)| at);
        match next {
            Some((at, special, id)) => {
                let (before, after) = rest.split_at(at);
                if !before.is_empty() {
                    out.push((before, None));
                }
                out.push((special, Some(id)));
                rest = after.get(special.len()..).unwrap_or("");
            }
            None => {
                if !rest.is_empty() {
                    out.push((rest, None));
                }
                return out;
            }
        }
    }
}
