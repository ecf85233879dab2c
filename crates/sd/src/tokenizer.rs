//! The CLIP BPE tokenizer, with the vocabulary embedded from `assets/`.
