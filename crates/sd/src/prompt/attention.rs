//! A1111's `parse_prompt_attention` (modules/prompt_parser.py): emphasis brackets, explicit
//! weights, escapes and `BREAK`.

use std::sync::OnceLock;

use regex::Regex;

use super::PromptError;

/// One run of prompt text with its emphasis weight. `BREAK` is the fragment `("BREAK", -1.0)`,
/// as in A1111 (weights are f64 there, and a BREAK inside brackets gets its -1 multiplied and
/// then reads as the plain word "BREAK", which this port reproduces).
#[derive(Debug, Clone, PartialEq)]
pub struct WeightedText {
    pub text: String,
    pub weight: f64,
}

impl WeightedText {
    /// Whether this fragment ends the current chunk.
    pub fn is_break(&self) -> bool {
        self.text == "BREAK" && self.weight == -1.0
    }
}

const ROUND_BRACKET_MULTIPLIER: f64 = 1.1;
const SQUARE_BRACKET_MULTIPLIER: f64 = 1.0 / 1.1;

fn attention_regex() -> Result<&'static Regex, PromptError> {
    static CELL: OnceLock<Result<Regex, String>> = OnceLock::new();
    CELL.get_or_init(|| {
        Regex::new(r"\\\(|\\\)|\\\[|\\\]|\\\\|\\|\(|\[|:([+-]?[.\d]+)\)|\)|\]|[^\\()\[\]:]+|:")
            .map_err(|err| err.to_string())
    })
    .as_ref()
    .map_err(|err| PromptError::Internal(err.clone()))
}

/// Splits `text` the way A1111's emphasis parser does, with equal neighbouring weights merged.
///
/// `(x)` multiplies by 1.1, `[x]` divides by 1.1, `(x:w)` multiplies by w, brackets nest by
/// multiplying, `\(` `\)` `\[` `\]` `\\` are literal, unclosed brackets close at the end, and a
/// stray `)` or `]` is literal text.
pub fn parse_prompt_attention(text: &str) -> Result<Vec<WeightedText>, PromptError> {
    let regex = attention_regex()?;
    let mut res: Vec<WeightedText> = Vec::new();
    let mut round_brackets: Vec<usize> = Vec::new();
    let mut square_brackets: Vec<usize> = Vec::new();

    let multiply_range = |res: &mut Vec<WeightedText>, start: usize, multiplier: f64| {
        for fragment in res.iter_mut().skip(start) {
            fragment.weight *= multiplier;
        }
    };

    for caps in regex.captures_iter(text) {
        let piece = caps.get(0).map_or("", |m| m.as_str());
        let weight = caps.get(1).map(|m| m.as_str());
        if let Some(escaped) = piece.strip_prefix('\\') {
            res.push(WeightedText { text: escaped.to_owned(), weight: 1.0 });
        } else if piece == "(" {
            round_brackets.push(res.len());
        } else if piece == "[" {
            square_brackets.push(res.len());
        } else if let (Some(weight), Some(start)) = (weight, round_brackets.last().copied()) {
            let value = parse_python_float(weight)
                .ok_or_else(|| PromptError::InvalidWeight { weight: weight.to_owned() })?;
            round_brackets.pop();
            multiply_range(&mut res, start, value);
        } else if piece == ")" && !round_brackets.is_empty() {
            if let Some(start) = round_brackets.pop() {
                multiply_range(&mut res, start, ROUND_BRACKET_MULTIPLIER);
            }
        } else if piece == "]" && !square_brackets.is_empty() {
            if let Some(start) = square_brackets.pop() {
                multiply_range(&mut res, start, SQUARE_BRACKET_MULTIPLIER);
            }
        } else {
            for (i, part) in split_on_break(piece).into_iter().enumerate() {
                if i > 0 {
                    res.push(WeightedText { text: "BREAK".to_owned(), weight: -1.0 });
                }
                res.push(WeightedText { text: part.to_owned(), weight: 1.0 });
            }
        }
    }
    for start in round_brackets {
        multiply_range(&mut res, start, ROUND_BRACKET_MULTIPLIER);
    }
    for start in square_brackets {
        multiply_range(&mut res, start, SQUARE_BRACKET_MULTIPLIER);
    }
    if res.is_empty() {
        res.push(WeightedText { text: String::new(), weight: 1.0 });
    }
    // Merge runs of identical weights.
    let mut merged: Vec<WeightedText> = Vec::with_capacity(res.len());
    for fragment in res {
        match merged.last_mut() {
            Some(last) if last.weight == fragment.weight => last.text.push_str(&fragment.text),
            _ => merged.push(fragment),
        }
    }
    Ok(merged)
}

/// Python's `float()` on what A1111's weight pattern `[+-]?[.\d]+` captured. Non-ASCII decimal
/// digits (which Python also accepts) are refused here.
pub(super) fn parse_python_float(text: &str) -> Option<f64> {
    let trimmed = text.trim_matches(is_python_space);
    // Rust accepts the same decimal, exponent, `inf` and `nan` spellings, but not Python's
    // digit-group underscores; strip them where Python allows them (between digits).
    let cleaned: String = if trimmed.contains('_') {
        let chars: Vec<char> = trimmed.chars().collect();
        let ok = chars.iter().enumerate().all(|(i, &c)| {
            c != '_'
                || (i > 0
                    && chars.get(i - 1).is_some_and(char::is_ascii_digit)
                    && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        });
        if !ok {
            return None;
        }
        chars.into_iter().filter(|&c| c != '_').collect()
    } else {
        trimmed.to_owned()
    };
    cleaned.parse::<f64>().ok()
}

/// Python's `str.isspace` (what `\s` matches in Python's `re` on text).
pub(super) fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `\w` on text: letters, numbers and `_`. (Rust's `is_alphanumeric` also counts the
/// few combining marks that are Other_Alphabetic; Python does not. Only matters for a BREAK
/// glued to such a mark.)
pub(super) fn is_python_word(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// `re.split(r"\s*\bBREAK\b\s*", text)`.
fn split_on_break(text: &str) -> Vec<&str> {
    const WORD: &str = "BREAK";
    let mut parts = Vec::new();
    let mut part_start = 0;
    let mut search_from = 0;
    while let Some(offset) = text.get(search_from..).and_then(|rest| rest.find(WORD)) {
        let at = search_from + offset;
        let end = at + WORD.len();
        let before = text.get(..at).and_then(|s| s.chars().next_back());
        let after = text.get(end..).and_then(|s| s.chars().next());
        if before.is_some_and(is_python_word) || after.is_some_and(is_python_word) {
            search_from = at + 1;
            continue;
        }
        let head = text.get(part_start..at).unwrap_or("");
        let match_start = part_start + head.trim_end_matches(is_python_space).len();
        let tail = text.get(end..).unwrap_or("");
        let match_end = text.len() - tail.trim_start_matches(is_python_space).len();
        parts.push(text.get(part_start..match_start).unwrap_or(""));
        part_start = match_end;
        search_from = match_end;
    }
    parts.push(text.get(part_start..).unwrap_or(""));
    parts
}
