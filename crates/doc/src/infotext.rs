//! A1111 "infotext": the `parameters` text that Stable Diffusion web UIs store in a PNG.
//!
//! ```text
//! a castle on a hill, <lora:gothic:0.8>
//! Negative prompt: blurry
//! Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 512x768, Lora hashes: "gothic: 1a2b3c4d5e6f"
//! ```
//!
//! The prompt may span lines; `Negative prompt:` starts the negative (which may span lines too);
//! the last line holds `Key: value` pairs separated by `", "`. A value containing `,`, `:` or a
//! newline is written as a JSON string. Parsing follows A1111's `parse_generation_parameters`
//! (`modules/infotext_utils.py`): the last line counts as parameters only if it holds at least
//! three pairs (otherwise it is part of the prompt), every prompt line is trimmed, and pairs are
//! found with the regex `\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)` scanned left to
//! right, which this module implements by hand (same matches, no regex engine). Writing follows
//! `create_infotext` in `modules/processing.py`.
//!
//! Differences from A1111, both so that our own values survive a round trip:
//! - an empty value is written as `""` (A1111 would write `Key: ` and then drop the key on read);
//! - a key whose value equals the key is written as `Key: Key`, not as a bare `Key`.
//!
//! Parsing never fails: like A1111, text that is not infotext becomes a prompt.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::record::InpaintParams;

/// Parsed `parameters` text: prompt, negative prompt and the ordered `Key: value` pairs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Infotext {
    pub prompt: String,
    /// Empty when the text has no `Negative prompt:` line.
    pub negative_prompt: String,
    /// The pairs in the order they were written (unquoted values). Serialised as a JSON object
    /// in the same order.
    #[serde(with = "ordered_pairs")]
    pub params: Vec<(String, String)>,
}

/// One entry of `Lora hashes`: the LoRA's name (alias) and its short hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoraHash {
    pub name: String,
    pub hash: String,
}

/// One entry of `TI hashes`: a textual-inversion embedding's name and its short hash (the
/// first 12 hex digits of the file's sha256).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TiHash {
    pub name: String,
    pub hash: String,
}

/// A1111 only treats the last line as parameters when it holds at least this many pairs.
const MIN_PARAMS_ON_LAST_LINE: usize = 3;
const NEGATIVE_PREFIX: &str = "Negative prompt:";

impl Infotext {
    /// Parses `parameters` text as A1111 does (see the module docs). Never fails.
    pub fn parse(text: &str) -> Self {
        let text = text.trim();
        let mut lines: Vec<&str> = text.split('\n').collect();
        let mut params = Vec::new();
        if let Some(last) = lines.last() {
            let found = find_params(last);
            if found.len() >= MIN_PARAMS_ON_LAST_LINE {
                params = found;
                lines.pop();
            }
        }

        let mut prompt = String::new();
        let mut negative_prompt = String::new();
        let mut in_negative = false;
        for line in lines {
            let mut line = line.trim();
            if let Some(rest) = line.strip_prefix(NEGATIVE_PREFIX) {
                in_negative = true;
                line = rest.trim();
            }
            append_line(if in_negative { &mut negative_prompt } else { &mut prompt }, line);
        }

        let params = params
            .into_iter()
            // A1111 indexes `v[0]`, which raises on an empty value, and skips the pair.
            .filter(|(_, value)| !value.is_empty())
            .map(|(key, value)| (key, unquote(&value)))
            .collect();
        Self { prompt, negative_prompt, params }
    }

    /// Writes the text A1111 writes: prompt, `Negative prompt:` line if any, then the pairs.
    pub fn to_text(&self) -> String {
        let mut out = self.prompt.clone();
        if !self.negative_prompt.is_empty() {
            out.push('\n');
            out.push_str(NEGATIVE_PREFIX);
            out.push(' ');
            out.push_str(&self.negative_prompt);
        }
        out.push('\n');
        let pairs: Vec<String> =
            self.params.iter().map(|(key, value)| format!("{key}: {}", quote(value))).collect();
        out.push_str(&pairs.join(", "));
        out.trim().to_owned()
    }

    /// The value of `key` (case-sensitive). With duplicate keys the last one wins, as in A1111's
    /// dictionary.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.params.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Sets `key` to `value`: in place if present (dropping later duplicates), else appended.
    pub fn set(&mut self, key: &str, value: impl fmt::Display) {
        let value = value.to_string();
        match self.params.iter().position(|(k, _)| k == key) {
            Some(first) => {
                let mut index = 0;
                self.params.retain(|(k, _)| {
                    let keep = index <= first || k != key;
                    index += 1;
                    keep
                });
                if let Some(entry) = self.params.get_mut(first) {
                    entry.1 = value;
                }
            }
            None => self.params.push((key.to_owned(), value)),
        }
    }

    /// Removes every pair with `key`; returns the value that [`Infotext::get`] would have given.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        let last = self.get(key).map(str::to_owned);
        self.params.retain(|(k, _)| k != key);
        last
    }

    fn parsed<T: std::str::FromStr>(&self, key: &str) -> Option<T> {
        self.get(key).and_then(|v| v.trim().parse().ok())
    }

    /// `Steps`: the number of sampling steps.
    pub fn steps(&self) -> Option<u32> {
        self.parsed("Steps")
    }

    /// `Sampler`, e.g. `Euler a`, `DPM++ 2M`.
    pub fn sampler(&self) -> Option<&str> {
        self.get("Sampler")
    }

    /// `Schedule type`, e.g. `Karras` (A1111 assumes `Automatic` when absent).
    pub fn schedule_type(&self) -> Option<&str> {
        self.get("Schedule type")
    }

    /// `CFG scale`.
    pub fn cfg_scale(&self) -> Option<f64> {
        self.parsed("CFG scale")
    }

    /// `Seed`.
    pub fn seed(&self) -> Option<u64> {
        self.parsed("Seed")
    }

    /// `Size` as `(width, height)` in pixels, from `WxH`.
    pub fn size(&self) -> Option<(u32, u32)> {
        let (w, h) = self.get("Size")?.split_once('x')?;
        let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(w) || !all_digits(h) {
            return None;
        }
        Some((w.parse().ok()?, h.parse().ok()?))
    }

    /// Sets `Size` to `WxH`.
    pub fn set_size(&mut self, width_px: u32, height_px: u32) {
        self.set("Size", format!("{width_px}x{height_px}"));
    }

    /// `Model hash`: A1111's short (10 hex digit) checkpoint hash.
    pub fn model_hash(&self) -> Option<&str> {
        self.get("Model hash")
    }

    /// `Model`: the checkpoint's name.
    pub fn model(&self) -> Option<&str> {
        self.get("Model")
    }

    /// `VAE`: the VAE's file name, when not the checkpoint's own.
    pub fn vae(&self) -> Option<&str> {
        self.get("VAE")
    }

    /// `VAE hash`.
    pub fn vae_hash(&self) -> Option<&str> {
        self.get("VAE hash")
    }

    /// `Denoising strength` (img2img and inpainting).
    pub fn denoising_strength(&self) -> Option<f64> {
        self.parsed("Denoising strength")
    }

    /// `Clip skip` (A1111 omits it when 1).
    pub fn clip_skip(&self) -> Option<u32> {
        self.parsed("Clip skip")
    }

    /// `Mask blur` in pixels.
    pub fn mask_blur_px(&self) -> Option<u32> {
        self.parsed("Mask blur")
    }

    /// `Inpaint area`: `Whole picture` or `Only masked`.
    pub fn inpaint_area(&self) -> Option<&str> {
        self.get("Inpaint area")
    }

    /// `Masked area padding` in pixels.
    pub fn masked_area_padding_px(&self) -> Option<u32> {
        self.parsed("Masked area padding")
    }

    /// `Masked content`: `fill`, `original`, `latent noise` or `latent nothing`.
    pub fn masked_content(&self) -> Option<&str> {
        self.get("Masked content")
    }

    /// `Mask mode: Inpaint not masked`: the mask was inverted (A1111 writes the key only then).
    pub fn mask_inverted(&self) -> bool {
        self.get("Mask mode") == Some("Inpaint not masked")
    }

    /// The inpaint settings of an inpainting infotext, `None` when it has none of A1111's
    /// inpaint keys. A1111 writes `Inpaint area` and `Masked area padding` only for "only
    /// masked", `Masked content` only when not `original` and `Mask mode` only when inverted;
    /// absent keys take the values A1111's importer gives them (`infotext_utils.py`: whole
    /// picture, padding 32, original, not inverted; blur: the UI's default 4).
    pub fn inpaint_params(&self) -> Option<InpaintParams> {
        const KEYS: [&str; 5] =
            ["Mask blur", "Inpaint area", "Masked area padding", "Masked content", "Mask mode"];
        if !KEYS.iter().any(|k| self.get(k).is_some()) {
            return None;
        }
        Some(InpaintParams {
            area: self.inpaint_area().and_then(|v| v.parse().ok()).unwrap_or_default(),
            padding_px: self.masked_area_padding_px().unwrap_or(32),
            mask_blur_px: self.mask_blur_px().unwrap_or(4),
            masked_content: self.masked_content().and_then(|v| v.parse().ok()).unwrap_or_default(),
            inverted: self.mask_inverted(),
        })
    }

    /// `Lora hashes`: `name: hash, name: hash` (empty if absent). Entries without a `:` are
    /// skipped.
    pub fn lora_hashes(&self) -> Vec<LoraHash> {
        self.name_hash_list("Lora hashes").map(|(name, hash)| LoraHash { name, hash }).collect()
    }

    /// Sets `Lora hashes`; like A1111, `:` and `,` are removed from names so the list parses.
    pub fn set_lora_hashes(&mut self, loras: &[LoraHash]) {
        self.set_name_hash_list("Lora hashes", loras.iter().map(|l| (&l.name, &l.hash)));
    }

    /// `TI hashes`: the embeddings a generation used, `name: hash, …` in A1111's order
    /// (which may repeat a name; see `pipeline::infotext`). Empty if absent.
    pub fn ti_hashes(&self) -> Vec<TiHash> {
        self.name_hash_list("TI hashes").map(|(name, hash)| TiHash { name, hash }).collect()
    }

    /// Sets `TI hashes`, names cleaned of `:` and `,` as A1111's `sd_hijack_clip` does.
    pub fn set_ti_hashes(&mut self, embeddings: &[TiHash]) {
        self.set_name_hash_list("TI hashes", embeddings.iter().map(|e| (&e.name, &e.hash)));
    }

    fn name_hash_list(&self, key: &str) -> impl Iterator<Item = (String, String)> + '_ {
        self.get(key).unwrap_or_default().split(',').filter_map(|entry| {
            let (name, hash) = entry.split_once(':')?;
            Some((name.trim().to_owned(), hash.trim().to_owned()))
        })
    }

    fn set_name_hash_list<'a>(
        &mut self,
        key: &str,
        entries: impl Iterator<Item = (&'a String, &'a String)>,
    ) {
        let entries: Vec<String> = entries
            .map(|(name, hash)| format!("{}: {hash}", name.replace([':', ','], "")))
            .collect();
        self.set(key, entries.join(", "));
    }
}

impl fmt::Display for Infotext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

/// A1111's rule for joining trimmed lines: a newline before every line except into an empty
/// buffer (so an empty first line vanishes).
fn append_line(buffer: &mut String, line: &str) {
    if !buffer.is_empty() {
        buffer.push('\n');
    }
    buffer.push_str(line);
}

/// A1111's `quote()`: JSON-encodes values containing `,`, `:` or a newline; also empty values
/// (see the module docs).
fn quote(value: &str) -> String {
    if value.is_empty() || value.contains([',', ':', '\n']) {
        // Serialising a `&str` cannot fail; the fallback keeps the function total anyway.
        serde_json::to_string(value).unwrap_or_else(|_| value.to_owned())
    } else {
        value.to_owned()
    }
}

/// A1111's `unquote()`: a value in double quotes is decoded as JSON, falling back to the raw
/// text when it is not valid JSON.
fn unquote(value: &str) -> String {
    if value.starts_with('"') && value.ends_with('"') {
        serde_json::from_str::<String>(value).unwrap_or_else(|_| value.to_owned())
    } else {
        value.to_owned()
    }
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn is_key_char(c: char) -> bool {
    is_word(c) || c == ' ' || c == '-' || c == '/'
}

/// `re.findall` of A1111's parameter regex over one line: `(key, raw value)` pairs.
fn find_params(line: &str) -> Vec<(String, String)> {
    let chars: Vec<char> = line.chars().collect();
    let mut found = Vec::new();
    let mut start = 0;
    while start < chars.len() {
        match match_param_at(&chars, start) {
            Some((key, value, end)) => {
                found.push((key, value));
                start = end.max(start + 1);
            }
            None => start += 1,
        }
    }
    found
}

/// One anchored match of `\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)` at `start`:
/// the key, the raw value and the index just past the match.
///
/// Backtracking never changes the outcome here: the key class excludes `:`, so the greedy key
/// run is the only candidate, and the quoted alternative's closing quote is the first unescaped
/// one; only the choice between the two value alternatives needs a second try.
fn match_param_at(chars: &[char], start: usize) -> Option<(String, String, usize)> {
    let at = |i: usize| chars.get(i).copied();
    let mut i = start;
    while at(i).is_some_and(char::is_whitespace) {
        i += 1;
    }
    let key_start = i;
    if !at(i).is_some_and(is_word) {
        return None;
    }
    i += 1;
    while at(i).is_some_and(is_key_char) {
        i += 1;
    }
    if i < key_start + 2 || at(i) != Some(':') {
        return None;
    }
    let key: String = chars.get(key_start..i)?.iter().collect();
    i += 1;
    while at(i).is_some_and(char::is_whitespace) {
        i += 1;
    }
    let value_start = i;

    if at(i) == Some('"')
        && let Some(close) = quoted_end(chars, i)
    {
        let after = close + 1;
        match at(after) {
            None => return Some((key, collect(chars, value_start, after), after)),
            Some(',') => return Some((key, collect(chars, value_start, after), after + 1)),
            Some(_) => {}
        }
    }
    let mut end = value_start;
    while at(end).is_some_and(|c| c != ',') {
        end += 1;
    }
    let value = collect(chars, value_start, end);
    let next = if at(end) == Some(',') { end + 1 } else { end };
    Some((key, value, next))
}

/// For `"(?:\\.|[^\\"])+"` starting at the opening quote `open`: the index of the closing quote.
fn quoted_end(chars: &[char], open: usize) -> Option<usize> {
    let mut i = open + 1;
    let mut repetitions = 0;
    loop {
        match chars.get(i).copied()? {
            // `.` does not match a newline in Python's default mode.
            '\\' => match chars.get(i + 1).copied() {
                Some(c) if c != '\n' => i += 2,
                _ => return None,
            },
            '"' => return (repetitions > 0).then_some(i),
            _ => i += 1,
        }
        repetitions += 1;
    }
}

fn collect(chars: &[char], from: usize, to: usize) -> String {
    chars.get(from..to).map(|s| s.iter().collect()).unwrap_or_default()
}

/// Serialises `Vec<(String, String)>` as a JSON object whose keys keep their order.
mod ordered_pairs {
    use std::fmt;

    use serde::de::{MapAccess, Visitor};
    use serde::ser::SerializeMap;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        pairs: &[(String, String)],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(pairs.len()))?;
        for (key, value) in pairs {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<(String, String)>, D::Error> {
        struct PairsVisitor;
        impl<'de> Visitor<'de> for PairsVisitor {
            type Value = Vec<(String, String)>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of string values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut pairs = Vec::new();
                while let Some(entry) = map.next_entry::<String, String>()? {
                    pairs.push(entry);
                }
                Ok(pairs)
            }
        }
        deserializer.deserialize_map(PairsVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    /// Text as A1111 1.10 writes it for an inpainting job with a LoRA.
    const INPAINT: &str = "masterpiece, (castle:1.2) on a hill, [fog], <lora:gothic_v2:0.8>\n\
Negative prompt: lowres, bad anatomy, (worst quality:1.4)\n\
Steps: 24, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 3735928559, \
Size: 512x768, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, VAE hash: 735e4c3a44, \
VAE: vae-ft-mse-840000-ema-pruned.safetensors, Denoising strength: 0.75, Clip skip: 2, \
Mask blur: 4, Inpaint area: Only masked, Masked area padding: 32, Masked content: original, \
Lora hashes: \"gothic_v2: a1b2c3d4e5f6, film grain: 0f0f0f0f0f0f\", Version: v1.10.1";

    #[test]
    fn parses_a_realistic_inpaint_infotext() {
        let info = Infotext::parse(INPAINT);
        assert_eq!(info.prompt, "masterpiece, (castle:1.2) on a hill, [fog], <lora:gothic_v2:0.8>");
        assert_eq!(info.negative_prompt, "lowres, bad anatomy, (worst quality:1.4)");
        assert_eq!(info.steps(), Some(24));
        assert_eq!(info.sampler(), Some("DPM++ 2M"));
        assert_eq!(info.schedule_type(), Some("Karras"));
        assert_eq!(info.cfg_scale(), Some(6.5));
        assert_eq!(info.seed(), Some(3_735_928_559));
        assert_eq!(info.size(), Some((512, 768)));
        assert_eq!(info.model_hash(), Some("6ce0161689"));
        assert_eq!(info.model(), Some("v1-5-pruned-emaonly"));
        assert_eq!(info.vae(), Some("vae-ft-mse-840000-ema-pruned.safetensors"));
        assert_eq!(info.vae_hash(), Some("735e4c3a44"));
        assert_eq!(info.denoising_strength(), Some(0.75));
        assert_eq!(info.clip_skip(), Some(2));
        assert_eq!(info.mask_blur_px(), Some(4));
        assert_eq!(info.inpaint_area(), Some("Only masked"));
        assert_eq!(info.masked_area_padding_px(), Some(32));
        assert_eq!(info.masked_content(), Some("original"));
        assert_eq!(
            info.lora_hashes(),
            vec![
                LoraHash { name: "gothic_v2".into(), hash: "a1b2c3d4e5f6".into() },
                LoraHash { name: "film grain".into(), hash: "0f0f0f0f0f0f".into() },
            ]
        );
        assert_eq!(info.get("Version"), Some("v1.10.1"));
        let keys: Vec<&str> = info.params.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys.first(), Some(&"Steps"));
        assert_eq!(keys.last(), Some(&"Version"));
        assert_eq!(info.params.len(), 18);
        assert_eq!(info.to_text(), INPAINT);
        assert_eq!(
            info.inpaint_params(),
            Some(InpaintParams {
                area: crate::InpaintArea::OnlyMasked,
                padding_px: 32,
                mask_blur_px: 4,
                masked_content: crate::MaskedContent::Original,
                inverted: false,
            })
        );
    }

    /// What A1111 1.10 writes for an inverted whole-picture "latent noise" inpaint with an
    /// embedding in each prompt: no `Inpaint area`/`Masked area padding` (whole picture), the
    /// embeddings of the prompt before those of the negative.
    #[test]
    fn inpaint_keys_a1111_leaves_out_take_its_defaults_and_ti_hashes_parse() {
        let text = "a fox, pos_emb\nNegative prompt: bad:emb\nSteps: 20, Sampler: Euler a, \
Schedule type: Automatic, CFG scale: 7, Seed: 1, Size: 512x512, Model hash: 6ce0161689, \
Model: v1-5, Denoising strength: 0.6, Mask blur: 0, Mask mode: Inpaint not masked, \
Masked content: latent noise, TI hashes: \"pos_emb: 0123456789ab, bademb: ba9876543210\", \
Version: v1.10.1";
        let info = Infotext::parse(text);
        assert_eq!(
            info.inpaint_params(),
            Some(InpaintParams {
                area: crate::InpaintArea::WholePicture,
                padding_px: 32,
                mask_blur_px: 0,
                masked_content: crate::MaskedContent::LatentNoise,
                inverted: true,
            })
        );
        let hashes = vec![
            TiHash { name: "pos_emb".into(), hash: "0123456789ab".into() },
            TiHash { name: "bademb".into(), hash: "ba9876543210".into() },
        ];
        assert_eq!(info.ti_hashes(), hashes);
        let mut rewritten = info.clone();
        rewritten.set_ti_hashes(&[
            TiHash { name: "pos_emb".into(), hash: "0123456789ab".into() },
            // A1111 strips `:` and `,` from names so the list stays parseable.
            TiHash { name: "bad:emb".into(), hash: "ba9876543210".into() },
        ]);
        assert_eq!(rewritten.to_text(), text);
        let txt2img = Infotext::parse("a fox\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 5");
        assert_eq!(txt2img.inpaint_params(), None);
        assert!(txt2img.ti_hashes().is_empty());
    }

    #[test]
    fn multi_line_prompt_and_negative_round_trip() {
        let text = "a portrait of a knight,\n(intricate armor:1.3), \\(not emphasis\\)\n\
BREAK\nsunset lighting\nNegative prompt: blurry,\nextra fingers\n\
Steps: 30, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 768x512";
        let info = Infotext::parse(text);
        assert_eq!(
            info.prompt,
            "a portrait of a knight,\n(intricate armor:1.3), \\(not emphasis\\)\nBREAK\nsunset lighting"
        );
        assert_eq!(info.negative_prompt, "blurry,\nextra fingers");
        assert_eq!(info.steps(), Some(30));
        assert_eq!(info.to_text(), text);
        assert_eq!(Infotext::parse(&info.to_text()), info);
    }

    #[test]
    fn no_negative_prompt() {
        let text = "a cat <lora:cute:0.6>\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 5";
        let info = Infotext::parse(text);
        assert_eq!(info.prompt, "a cat <lora:cute:0.6>");
        assert_eq!(info.negative_prompt, "");
        assert_eq!(info.to_text(), text);
    }

    #[test]
    fn params_only() {
        let text = "Steps: 20, Sampler: Euler, CFG scale: 7, Seed: 5, Size: 64x64";
        let info = Infotext::parse(text);
        assert_eq!(info.prompt, "");
        assert_eq!(info.size(), Some((64, 64)));
        assert_eq!(info.to_text(), text);
    }

    #[test]
    fn fewer_than_three_pairs_is_a_prompt() {
        // A1111 reads a last line with under three pairs as prompt text.
        let info = Infotext::parse("a dog\nStyle: cute, Mood: calm");
        assert_eq!(info.prompt, "a dog\nStyle: cute, Mood: calm");
        assert!(info.params.is_empty());
    }

    #[test]
    fn quoted_values_with_commas_colons_newlines_and_quotes() {
        let mut info = Infotext::parse("p\nSteps: 1, Sampler: Euler, Seed: 2");
        info.set("Hires prompt", "line one,\nline \"two\": end");
        info.set("Template", "a\\b");
        info.set("Empty", "");
        let text = info.to_text();
        assert_eq!(
            text,
            "p\nSteps: 1, Sampler: Euler, Seed: 2, \
Hires prompt: \"line one,\\nline \\\"two\\\": end\", Template: a\\b, Empty: \"\""
        );
        assert_eq!(Infotext::parse(&text), info);
    }

    #[test]
    fn a1111_regex_quirks() {
        // A quoted value not followed by a comma falls back to the unquoted alternative, and a
        // value that is not valid JSON stays raw.
        let info = Infotext::parse("Steps: 2, Aa: \"x\" y, Bb: \"bad\\q\", Cc: 3, Dd:, Ee: ok");
        assert_eq!(info.get("Aa"), Some("\"x\" y"));
        assert_eq!(info.get("Bb"), Some("\"bad\\q\""));
        // Empty values are dropped, as A1111 does; one-letter keys do not match the regex.
        assert_eq!(info.get("Dd"), None);
        assert_eq!(info.get("Ee"), Some("ok"));
        assert_eq!(Infotext::parse("Steps: 2, X: 1, Seed: 3, Size: 8x8").get("X"), None);
        // Keys may hold spaces, dashes and slashes; whitespace around values follows the regex.
        let info = Infotext::parse("Steps: 2, Hires upscale/x-y:  3 , Seed: 4");
        assert_eq!(info.get("Hires upscale/x-y"), Some("3 "));
        // Stray text between pairs is skipped by the scan.
        let info = Infotext::parse("Steps: 2, ??, Seed: 4, Size: 8x8");
        assert_eq!(info.params.len(), 3);
    }

    #[test]
    fn lines_are_trimmed_and_windows_newlines_tolerated() {
        let info = Infotext::parse(
            "  a cat  \r\n  Negative prompt:   dog \r\nSteps: 20, Sampler: Euler, Seed: 5\r\n",
        );
        assert_eq!(info.prompt, "a cat");
        assert_eq!(info.negative_prompt, "dog");
        assert_eq!(info.seed(), Some(5));
    }

    #[test]
    fn duplicate_keys_last_wins_and_set_replaces_in_place() {
        let mut info = Infotext::parse("p\nSeed: 1, Steps: 2, Seed: 3, CFG scale: 4");
        assert_eq!(info.seed(), Some(3));
        info.set("Seed", 9);
        assert_eq!(info.params, pairs(&[("Seed", "9"), ("Steps", "2"), ("CFG scale", "4")]));
        assert_eq!(info.remove("Steps"), Some("2".into()));
        info.set_size(640, 480);
        info.set_lora_hashes(&[LoraHash { name: "a:b,c".into(), hash: "123".into() }]);
        assert_eq!(info.size(), Some((640, 480)));
        assert_eq!(info.lora_hashes(), vec![LoraHash { name: "abc".into(), hash: "123".into() }]);
    }

    #[test]
    fn unicode_and_emphasis_survive() {
        let text = "ネコ、(猫:1.1), émigré [[sky]]\nNegative prompt: ぼやけ\n\
Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 123, Model: モデル";
        let info = Infotext::parse(text);
        assert_eq!(info.prompt, "ネコ、(猫:1.1), émigré [[sky]]");
        assert_eq!(info.model(), Some("モデル"));
        assert_eq!(info.to_text(), text);
    }

    #[test]
    fn json_keeps_key_order() {
        let info = Infotext::parse("p\nZz: 1, Aa: 2, Mm: 3");
        let json = serde_json::to_string(&info).unwrap();
        assert_eq!(
            json,
            r#"{"prompt":"p","negative_prompt":"","params":{"Zz":"1","Aa":"2","Mm":"3"}}"#
        );
        let back: Infotext = serde_json::from_str(&json).unwrap();
        assert_eq!(back, info);
    }

    #[test]
    fn garbage_never_panics() {
        for text in [
            "",
            "\n\n",
            ":",
            "\"",
            "a: \"",
            "x:\"\\",
            "Negative prompt:",
            "é: \"é\\\né\", b: c, d: e",
        ] {
            let info = Infotext::parse(text);
            let _ = info.to_text();
        }
    }
}

#[cfg(test)]
mod reference_tests {
    use super::find_params;

    #[derive(serde::Deserialize)]
    struct Case {
        line: String,
        pairs: Vec<(String, String)>,
    }

    /// Python's `re.findall` with A1111's regex (tests/reference/infotext_regex.py) must agree
    /// with the hand-written scanner on every line.
    #[test]
    fn scanner_matches_python_findall() {
        let cases: Vec<Case> =
            serde_json::from_str(include_str!("../../../tests/fixtures/infotext/findall.json"))
                .unwrap();
        assert!(cases.len() > 400);
        for case in cases {
            assert_eq!(find_params(&case.line), case.pairs, "line {:?}", case.line);
        }
    }
}
