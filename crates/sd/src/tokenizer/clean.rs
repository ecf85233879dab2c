//! Text cleaning in front of the BPE: a port of what `ftfy.fix_text` does by default (minus the
//! mojibake repair, see the parent module), Python's `html.unescape`, and the two tokenizers'
//! whitespace rules.

use std::borrow::Cow;
use std::sync::OnceLock;

use regex::{Captures, Regex};
use unicode_normalization::UnicodeNormalization;

use super::tables;

/// transformers' `CLIPTokenizer._tokenize` with ftfy: `whitespace_clean(fix_text(text)).lower()`.
pub(super) fn clip_l_clean(text: &str) -> String {
    let fixed = ftfy_fix_text(text);
    let collapsed = regex_whitespace().replace_all(&fixed, " ");
    python_strip(&collapsed).to_lowercase()
}

/// open_clip's `_clean_lower`: `whitespace_clean(basic_clean(text)).lower()`.
pub(super) fn open_clip_clean(text: &str) -> String {
    let fixed = ftfy_fix_text(text);
    let unescaped = python_html_unescape(&python_html_unescape(&fixed));
    let joined = python_strip(&unescaped)
        .split(is_python_space)
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    joined.to_lowercase()
}

/// Python's `str.isspace`: Unicode White_Space plus the ASCII separators U+001C..U+001F.
fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

fn python_strip(text: &str) -> &str {
    text.trim_matches(is_python_space)
}

fn cached_regex(cell: &'static OnceLock<Option<Regex>>, pattern: &str) -> Option<&'static Regex> {
    cell.get_or_init(|| Regex::new(pattern).ok()).as_ref()
}

/// `\s+` of the Python `regex` module (Unicode White_Space).
fn regex_whitespace() -> &'static Regex {
    static CELL: OnceLock<Regex> = OnceLock::new();
    CELL.get_or_init(|| {
        #[allow(clippy::unwrap_used, reason = "constant pattern, covered by every test")]
        Regex::new(r"\s+").unwrap()
    })
}

/// `ftfy.fix_text` with the default configuration, except `fix_encoding`.
pub(super) fn ftfy_fix_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    // ftfy decides per line whether HTML entities are decoded, and once a line contains `<` the
    // decision sticks for the rest of the text.
    let mut unescape_html = true;
    for segment in text.split_inclusive('\n') {
        if unescape_html && segment.contains('<') {
            unescape_html = false;
        }
        out.push_str(&ftfy_fix_segment(segment, unescape_html));
    }
    out
}

/// ftfy's `fix_and_explain`: the fixers in order, repeated until nothing changes.
fn ftfy_fix_segment(segment: &str, unescape_html: bool) -> String {
    let mut text = segment.to_owned();
    loop {
        let before = text.clone();
        if unescape_html {
            text = ftfy_unescape_html(&text).into_owned();
        }
        text = map_chars(&text, |c| {
            // fix_c1_controls: C1 controls read as sloppy Windows-1252.
            let code = u32::from(c);
            (0x80..0xA0)
                .contains(&code)
                .then(|| {
                    usize::try_from(code - 0x80)
                        .ok()
                        .and_then(|i| tables::C1_AS_WINDOWS_1252.get(i))
                        .map(|c| Cow::Owned(c.to_string()))
                })
                .flatten()
        });
        text = map_chars(&text, |c| lookup_char(tables::LIGATURES, c).map(Cow::Borrowed));
        text = map_chars(&text, |c| lookup_char(tables::WIDTH_MAP, c).map(Cow::Borrowed));
        text = map_chars(&text, |c| match c {
            '\u{2bc}' | '\u{2018}'..='\u{201b}' => Some(Cow::Borrowed("'")),
            '\u{201c}'..='\u{201f}' => Some(Cow::Borrowed("\"")),
            _ => None,
        });
        text = text.replace("\r\n", "\n").replace(['\r', '\u{2028}', '\u{2029}', '\u{85}'], "\n");
        text = remove_terminal_escapes(&text);
        text.retain(|c| tables::CONTROL_CHARS.binary_search(&u32::from(c)).is_err());
        text = text.nfc().collect();
        if text == before {
            return text;
        }
    }
}

fn lookup_char(table: &'static [(char, &'static str)], c: char) -> Option<&'static str> {
    table.binary_search_by_key(&c, |&(k, _)| k).ok().and_then(|i| table.get(i)).map(|&(_, v)| v)
}

fn map_chars<'a>(text: &str, mut replace: impl FnMut(char) -> Option<Cow<'a, str>>) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match replace(c) {
            Some(replacement) => out.push_str(&replacement),
            None => out.push(c),
        }
    }
    out
}

fn remove_terminal_escapes(text: &str) -> String {
    static CELL: OnceLock<Option<Regex>> = OnceLock::new();
    match cached_regex(&CELL, r"\x1b\[((?:\d|;)*)([a-zA-Z])") {
        Some(re) if text.contains('\u{1b}') => re.replace_all(text, "").into_owned(),
        _ => text.to_owned(),
    }
}

fn lookup_str(table: &'static [(&'static str, &'static str)], key: &str) -> Option<&'static str> {
    table.binary_search_by(|&(k, _)| k.cmp(key)).ok().and_then(|i| table.get(i)).map(|&(_, v)| v)
}

/// ftfy's `unescape_html`: only `;`-terminated entities (plus a few all-caps ones), and numeric
/// references only when `html.unescape` consumes them whole.
fn ftfy_unescape_html(text: &str) -> Cow<'_, str> {
    static CELL: OnceLock<Option<Regex>> = OnceLock::new();
    let Some(re) = cached_regex(&CELL, r"&#?[0-9A-Za-z]{1,24};") else {
        return Cow::Borrowed(text);
    };
    if !text.contains('&') {
        return Cow::Borrowed(text);
    }
    re.replace_all(text, |caps: &Captures<'_>| {
        let whole = caps.get(0).map_or("", |m| m.as_str());
        let name = whole.get(1..).unwrap_or("");
        if let Some(value) = lookup_str(tables::HTML5, name) {
            return value.to_owned();
        }
        if let Some(value) = lookup_str(tables::FTFY_UPPER_ENTITIES, whole) {
            return value.to_owned();
        }
        if whole.starts_with("&#") {
            let unescaped = python_html_unescape(whole);
            if !unescaped.contains(';') {
                return unescaped;
            }
        }
        whole.to_owned()
    })
}

/// Python's `html.unescape` (HTML5 rules: legacy entities without `;`, longest-prefix matching,
/// invalid numeric references replaced or dropped).
pub(super) fn python_html_unescape(text: &str) -> String {
    static CELL: OnceLock<Option<Regex>> = OnceLock::new();
    let Some(re) =
        cached_regex(&CELL, r"&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\x0c <&#;]{1,32};?)")
    else {
        return text.to_owned();
    };
    if !text.contains('&') {
        return text.to_owned();
    }
    re.replace_all(text, |caps: &Captures<'_>| {
        let reference = caps.get(1).map_or("", |m| m.as_str());
        match reference.strip_prefix('#') {
            Some(numeric) => decode_numeric_reference(numeric),
            None => decode_named_reference(reference),
        }
    })
    .into_owned()
}

fn decode_numeric_reference(numeric: &str) -> String {
    let digits = numeric.trim_end_matches(';');
    let (digits, radix) = match digits.strip_prefix(['x', 'X']) {
        Some(hex) => (hex, 16),
        None => (digits, 10),
    };
    // Python's integers do not overflow; anything past u64 is far beyond U+10FFFF anyway.
    let number = digits.chars().try_fold(0u64, |acc, c| {
        let digit = u64::from(c.to_digit(radix)?);
        Some(acc.saturating_mul(u64::from(radix)).saturating_add(digit))
    });
    let number = number.unwrap_or(u64::MAX);
    if let Some(&(_, text)) = u32::try_from(number).ok().and_then(|n| {
        tables::INVALID_CHARREFS
            .binary_search_by_key(&n, |&(k, _)| k)
            .ok()
            .and_then(|i| tables::INVALID_CHARREFS.get(i))
    }) {
        return text.to_owned();
    }
    if (0xD800..=0xDFFF).contains(&number) || number > 0x10_FFFF {
        return "\u{FFFD}".to_owned();
    }
    let code = u32::try_from(number).unwrap_or(0xFFFD);
    if tables::INVALID_CODEPOINTS.binary_search(&code).is_ok() {
        return String::new();
    }
    char::from_u32(code).map_or_else(|| "\u{FFFD}".to_owned(), |c| c.to_string())
}

fn decode_named_reference(name: &str) -> String {
    if let Some(value) = lookup_str(tables::HTML5, name) {
        return value.to_owned();
    }
    // The longest prefix (of at least 2 characters, shorter than the whole) that is an entity.
    let boundaries: Vec<usize> = name.char_indices().map(|(i, _)| i).skip(2).collect();
    for &end in boundaries.iter().rev() {
        if let (Some(prefix), Some(rest)) = (name.get(..end), name.get(end..))
            && let Some(value) = lookup_str(tables::HTML5, prefix)
        {
            return format!("{value}{rest}");
        }
    }
    format!("&{name}")
}
