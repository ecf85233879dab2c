//! A1111's extra-network tags (`<lora:name:0.8>`, modules/extra_networks.py and the built-in
//! Lora extension): removed from the prompt text before it is parsed, returned as data.

use std::sync::OnceLock;

use regex::Regex;

use super::PromptError;
use super::attention::parse_python_float;

/// One `<kind:arg1:arg2:...>` tag, as A1111's `parse_prompt` collects it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtraNetworkTag {
    /// The word before the first `:` (`lora`, `lyco`, `hypernet`, ...).
    pub kind: String,
    /// The rest, split on `:`.
    pub items: Vec<String>,
}

/// A LoRA (or LyCORIS) requested by the prompt, with A1111's multipliers.
#[derive(Debug, Clone, PartialEq)]
pub struct LoraRef {
    pub name: String,
    /// Multiplier on the text encoder(s): 2nd positional item or `te=`, default 1.
    pub te_weight: f32,
    /// Multiplier on the UNet: 3rd positional item or `unet=`, default the text-encoder weight.
    pub unet_weight: f32,
    /// Dynamic rank limit: 4th positional item or `dyn=` (rarely used; None = full rank).
    pub dyn_dim: Option<i64>,
}

fn extra_network_regex() -> Result<&'static Regex, PromptError> {
    static CELL: OnceLock<Result<Regex, String>> = OnceLock::new();
    // Python's `\w` is letters, numbers and `_`.
    CELL.get_or_init(|| Regex::new(r"<([\p{L}\p{N}_]+):([^>]+)>").map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|err| PromptError::Internal(err.clone()))
}

/// Removes every `<kind:args>` tag from `prompt` (whatever its kind, as A1111 does) and returns
/// the remaining text and the tags in order.
pub fn split_extra_networks(prompt: &str) -> Result<(String, Vec<ExtraNetworkTag>), PromptError> {
    let regex = extra_network_regex()?;
    let mut tags = Vec::new();
    let text = regex
        .replace_all(prompt, |caps: &regex::Captures<'_>| {
            let kind = caps.get(1).map_or("", |m| m.as_str());
            let args = caps.get(2).map_or("", |m| m.as_str());
            tags.push(ExtraNetworkTag {
                kind: kind.to_owned(),
                items: args.split(':').map(str::to_owned).collect(),
            });
            ""
        })
        .into_owned();
    Ok((text, tags))
}

/// Whether A1111's built-in Lora extension handles this tag kind (`lyco` is its alias).
pub fn is_lora_kind(kind: &str) -> bool {
    kind == "lora" || kind == "lyco"
}

/// A1111's reading of a `<lora:...>` tag's items: `k=v` items are named, the rest positional.
pub fn lora_from_tag(tag: &ExtraNetworkTag) -> Result<LoraRef, PromptError> {
    let mut positional: Vec<&str> = Vec::new();
    let mut named: Vec<(&str, &str)> = Vec::new();
    for item in &tag.items {
        // Python's `item.split('=', 2)` has exactly two parts only with exactly one `=`.
        match item.split_once('=') {
            Some((key, value)) if !value.contains('=') => named.push((key, value)),
            _ => positional.push(item),
        }
    }
    // Later duplicates win, as in the Python dict.
    let named_value = |key: &str| named.iter().rev().find(|(k, _)| *k == key).map(|(_, v)| *v);
    let describe = || format!("<{}:{}>", tag.kind, tag.items.join(":"));
    let weight = |value: &str| -> Result<f32, PromptError> {
        parse_python_float(value).filter(|w| w.is_finite()).map(|w| w as f32).ok_or_else(|| {
            PromptError::InvalidLoraArgument { tag: describe(), value: value.to_owned() }
        })
    };
    let integer = |value: &str| -> Result<i64, PromptError> {
        value.trim().parse::<i64>().map_err(|_| PromptError::InvalidLoraArgument {
            tag: describe(),
            value: value.to_owned(),
        })
    };
    let name =
        positional.first().ok_or_else(|| PromptError::MissingLoraName { tag: describe() })?;
    let mut te_weight = match positional.get(1) {
        Some(value) => weight(value)?,
        None => 1.0,
    };
    if let Some(value) = named_value("te") {
        te_weight = weight(value)?;
    }
    let mut unet_weight = match positional.get(2) {
        Some(value) => weight(value)?,
        None => te_weight,
    };
    if let Some(value) = named_value("unet") {
        unet_weight = weight(value)?;
    }
    let mut dyn_dim = match positional.get(3) {
        Some(value) => Some(integer(value)?),
        None => None,
    };
    if let Some(value) = named_value("dyn") {
        dyn_dim = Some(integer(value)?);
    }
    Ok(LoraRef { name: (*name).to_owned(), te_weight, unet_weight, dyn_dim })
}
