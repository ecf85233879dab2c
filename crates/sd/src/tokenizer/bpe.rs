//! Byte-level BPE over CLIP's vocabulary, on token ids instead of strings.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::{BOS_ID, EOS_ID, TokenizerError};

/// rustc's Fx hash: the tables are built from our own embedded file (no untrusted keys), and
/// SipHash made building them several times slower.
#[derive(Default)]
pub(super) struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        for &byte in chunks.remainder() {
            self.add(u64::from(byte));
        }
    }

    fn write_u32(&mut self, value: u32) {
        self.add(u64::from(value));
    }

    fn write_u8(&mut self, value: u8) {
        self.add(u64::from(value));
    }

    fn write_usize(&mut self, value: usize) {
        self.add(value as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// The parsed vocabulary and merge table.
#[derive(Debug)]
pub(super) struct Bpe {
    encoder: FastMap<String, u32>,
    /// (left id, right id) -> (merge rank, id of the merged symbol).
    merges: FastMap<(u32, u32), (u32, u32)>,
    /// Id of each byte's printable character, inside a word and at its end (`</w>`).
    byte_ids: [u32; 256],
    byte_end_ids: [u32; 256],
}

/// CLIP's `bytes_to_unicode`, in its dictionary order (which is also vocabulary order): the
/// printable Latin-1 bytes map to themselves, then every other byte, in byte order, to U+0100
/// onwards, so each byte has a visible character in the vocabulary.
fn byte_chars_in_vocab_order() -> Vec<(u8, char)> {
    let printable =
        |byte: u8| (b'!'..=b'~').contains(&byte) || (0xA1..=0xAC).contains(&byte) || byte >= 0xAE;
    let mut out: Vec<(u8, char)> =
        (0..=255u8).filter(|&b| printable(b)).map(|b| (b, char::from(b))).collect();
    for (offset, byte) in (0u32..).zip((0..=255u8).filter(|&b| !printable(b))) {
        out.push((byte, char::from_u32(256 + offset).unwrap_or('\u{FFFD}')));
    }
    out
}

impl Bpe {
    /// Builds the vocabulary the way CLIP does (256 byte characters, the same with `</w>`, one
    /// entry per merge, then the two special tokens: exactly `vocab.json`, which a test checks),
    /// so start-up parses only `merges.txt`.
    pub(super) fn parse(merges_txt: &str) -> Result<Self, TokenizerError> {
        const MERGE_COUNT: usize = 49_152 - 256 - 2;
        let mut encoder: FastMap<String, u32> =
            FastMap::with_capacity_and_hasher(2 * 256 + MERGE_COUNT + 2, Default::default());
        let mut byte_ids = [0u32; 256];
        let mut byte_end_ids = [0u32; 256];
        for (index, (byte, ch)) in (0u32..).zip(byte_chars_in_vocab_order()) {
            if let (Some(id), Some(end_id)) =
                (byte_ids.get_mut(usize::from(byte)), byte_end_ids.get_mut(usize::from(byte)))
            {
                *id = index;
                *end_id = index + 256;
            }
            encoder.insert(ch.to_string(), index);
            encoder.insert(format!("{ch}</w>"), index + 256);
        }
        // transformers reads lines 1..=48894 after the `#version` header.
        let mut merges = FastMap::with_capacity_and_hasher(MERGE_COUNT, Default::default());
        for (rank, (line_index, line)) in
            (0u32..).zip(merges_txt.lines().enumerate().skip(1).take(MERGE_COUNT))
        {
            let malformed = || TokenizerError::Merges { line: line_index + 1 };
            let mut parts = line.split(' ');
            let (Some(left), Some(right), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(malformed());
            };
            let (Some(&left_id), Some(&right_id)) = (encoder.get(left), encoder.get(right)) else {
                return Err(malformed());
            };
            let merged_id = 512 + rank;
            // A repeated merge result would make Python's dicts keep the last id; CLIP has none.
            if encoder.insert(format!("{left}{right}"), merged_id).is_some()
                || merges.insert((left_id, right_id), (rank, merged_id)).is_some()
            {
                return Err(malformed());
            }
        }
        let next_id = u32::try_from(encoder.len()).unwrap_or(u32::MAX);
        if next_id != BOS_ID {
            return Err(TokenizerError::Merges { line: MERGE_COUNT + 1 });
        }
        encoder.insert("<|startoftext|>".to_owned(), BOS_ID);
        encoder.insert("<|endoftext|>".to_owned(), EOS_ID);
        Ok(Self { encoder, merges, byte_ids, byte_end_ids })
    }

    /// The whole vocabulary (token to id), for checking it against `vocab.json`.
    pub(super) fn vocabulary(&self) -> impl Iterator<Item = (&str, u32)> {
        self.encoder.iter().map(|(k, &v)| (k.as_str(), v))
    }

    pub(super) fn id(&self, token: &str) -> Option<u32> {
        self.encoder.get(token).copied()
    }

    /// Appends the BPE ids of one pre-tokenized word (its UTF-8 bytes).
    pub(super) fn encode_word(&self, word: &[u8], out: &mut Vec<u32>) {
        let Some((&last, init)) = word.split_last() else {
            return;
        };
        let mut symbols: Vec<u32> = init
            .iter()
            .map(|&b| self.byte_ids.get(usize::from(b)).copied())
            .chain(std::iter::once(self.byte_end_ids.get(usize::from(last)).copied()))
            .map(|id| id.unwrap_or(EOS_ID))
            .collect();
        let mut merged_symbols = Vec::with_capacity(symbols.len());
        while symbols.len() > 1 {
            // The adjacent pair with the lowest merge rank; every occurrence of it is merged.
            let best = symbols
                .windows(2)
                .filter_map(|pair| match pair {
                    [left, right] => self
                        .merges
                        .get(&(*left, *right))
                        .map(|&(rank, merged)| (rank, *left, *right, merged)),
                    _ => None,
                })
                .min_by_key(|&(rank, ..)| rank);
            let Some((_, left, right, merged)) = best else {
                break;
            };
            merged_symbols.clear();
            let mut rest = symbols.as_slice();
            while let Some((&first, tail)) = rest.split_first() {
                match tail.split_first() {
                    Some((&second, after)) if first == left && second == right => {
                        merged_symbols.push(merged);
                        rest = after;
                    }
                    _ => {
                        merged_symbols.push(first);
                        rest = tail;
                    }
                }
            }
            std::mem::swap(&mut symbols, &mut merged_symbols);
        }
        out.extend_from_slice(&symbols);
    }
}
