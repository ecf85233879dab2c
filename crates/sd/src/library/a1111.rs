//! The `name: hash, name: hash` lists A1111 writes as `Lora hashes` and `TI hashes`.
//!
//! Writing (`extensions-builtin/Lora/extra_networks_lora.py`, `modules/sd_hijack_clip.py`): the
//! name has `:` and `,` removed, each pair is `f"{name}: {shorthash}"`, pairs are joined by `", "`.
//! The infotext writer then quotes the whole value because it contains `:` and `,`.
//! Reading (`extensions-builtin/Lora/scripts/lora_script.py` `infotext_pasted`): the value is split
//! on `,`, each part split once on `:`, both sides stripped.

/// A name as A1111 writes it in a hash list: `:` and `,` removed.
pub fn infotext_name(name: &str) -> String {
    name.chars().filter(|c| *c != ':' && *c != ',').collect()
}

/// Formats `(name, short hash)` pairs as an A1111 `Lora hashes` / `TI hashes` value (unquoted).
pub fn format_hash_list<N: AsRef<str>, H: AsRef<str>>(pairs: &[(N, H)]) -> String {
    pairs
        .iter()
        .map(|(name, hash)| format!("{}: {}", infotext_name(name.as_ref()), hash.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses an A1111 `Lora hashes` / `TI hashes` value (already unquoted) into `(name, hash)` pairs;
/// parts without a `:` are skipped.
pub fn parse_hash_list(value: &str) -> Vec<(String, String)> {
    value
        .split(',')
        .filter_map(|part| {
            let (name, hash) = part.split_once(':')?;
            let (name, hash) = (name.trim(), hash.trim());
            (!name.is_empty() && !hash.is_empty()).then(|| (name.to_string(), hash.to_string()))
        })
        .collect()
}
