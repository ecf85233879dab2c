//! A1111 short hashes of model files for infotext, cached across runs so a multi-GB checkpoint
//! is hashed once (the cache is keyed by path, size and mtime).

use std::path::Path;

use sd::library::{HashCache, MODEL_HASH_LEN, NETWORK_HASH_LEN, cached_file_hashes};

/// `Model hash` / `VAE hash` of `path`: the first 10 hex digits of its sha256. A cache that
/// cannot be read or written only costs time: the hash is still computed.
pub fn model_hash(path: &Path) -> anyhow::Result<String> {
    let hashes = hashes_of(path, false)?;
    Ok(hashes.sha256.chars().take(MODEL_HASH_LEN).collect())
}

/// A LoRA's hash as A1111 writes it in `Lora hashes`: 12 hex digits of its `sshs_model_hash`
/// metadata if present, else of the addnet hash (sha256 of the tensor data).
pub fn lora_hash(path: &Path) -> anyhow::Result<String> {
    let entry = sd::library::Library::inspect_file(path);
    if let Some(hash) = entry.metadata_hash {
        return Ok(hash.chars().take(NETWORK_HASH_LEN).collect());
    }
    let hashes = hashes_of(path, true)?;
    let addnet = hashes.addnet_sha256.unwrap_or(hashes.sha256);
    Ok(addnet.chars().take(NETWORK_HASH_LEN).collect())
}

fn hashes_of(path: &Path, with_addnet: bool) -> anyhow::Result<sd::library::FileHashes> {
    let mut cache = match crate::editor::generation::hash_cache_file() {
        Some(file) => HashCache::load_or_empty(file).0,
        None => HashCache::in_memory(),
    };
    let hashes = cached_file_hashes(path, &mut cache, with_addnet)?;
    if let Err(e) = cache.save() {
        log_warning(&format!("could not save the hash cache: {e}"));
    }
    Ok(hashes)
}

fn log_warning(message: &str) {
    eprintln!("warning: {message}");
}
