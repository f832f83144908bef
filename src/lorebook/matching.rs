//! Matching one entry key against scan text: plain (optionally whole-word and
//! case-sensitive) or a regular expression.
//!
//! A key written `/pattern/flags` is a regex, as in SillyTavern; so is every
//! key of an entry with `use_regex`. Patterns come from whoever wrote the
//! card, so they are compiled with size limits and a pattern that does not
//! compile simply never matches: a bad key must not fail a whole message.

use regex::{Regex, RegexBuilder};

use super::types::Entry;

/// Compiled-program limit per pattern. Real keys are a few dozen bytes; this
/// still allows large alternations while refusing patterns built to blow up.
const REGEX_SIZE_LIMIT: usize = 256 * 1024;

/// Text to scan, with its lowercase form computed once for all keys.
#[derive(Debug, Clone)]
pub struct ScanText {
    original: String,
    lower: String,
}

impl ScanText {
    pub fn new(text: String) -> Self {
        let lower = text.to_lowercase();
        ScanText { original: text, lower }
    }
}

/// One key, ready to be matched.
#[derive(Debug, Clone)]
pub enum KeyMatcher {
    Plain {
        needle: String,
        case_sensitive: bool,
        whole_words: bool,
    },
    Regex(Regex),
    /// Empty keys and patterns that do not compile.
    Never,
}

impl KeyMatcher {
    /// Compiles `key` with the entry's case, whole-word and regex settings.
    pub fn new(key: &str, entry: &Entry) -> Self {
        Self::compile(key, entry).unwrap_or(Self::Never)
    }

    /// Like [`KeyMatcher::new`], but a regex key whose pattern does not
    /// compile is an error: for checking keys when a book is written, where
    /// the person can still fix them.
    pub fn compile(key: &str, entry: &Entry) -> Result<Self, regex::Error> {
        let case_sensitive = entry.case_sensitive.unwrap_or(false);
        if key.trim().is_empty() {
            return Ok(Self::Never);
        }
        if let Some((pattern, flags)) = slash_regex(key) {
            let built = RegexBuilder::new(pattern)
                .case_insensitive(flags.contains('i'))
                .dot_matches_new_line(flags.contains('s'))
                .multi_line(flags.contains('m'))
                .size_limit(REGEX_SIZE_LIMIT)
                .dfa_size_limit(REGEX_SIZE_LIMIT)
                .build();
            return built.map(Self::Regex);
        }
        if entry.use_regex {
            let built = RegexBuilder::new(key)
                .case_insensitive(!case_sensitive)
                .size_limit(REGEX_SIZE_LIMIT)
                .dfa_size_limit(REGEX_SIZE_LIMIT)
                .build();
            return built.map(Self::Regex);
        }
        let needle = if case_sensitive { key.to_owned() } else { key.to_lowercase() };
        Ok(Self::Plain { needle, case_sensitive, whole_words: entry.match_whole_words.unwrap_or(false) })
    }

    pub fn is_match(&self, text: &ScanText) -> bool {
        match self {
            Self::Never => false,
            Self::Regex(re) => re.is_match(&text.original),
            Self::Plain { needle, case_sensitive, whole_words } => {
                let hay = if *case_sensitive { &text.original } else { &text.lower };
                if *whole_words { contains_whole_word(hay, needle) } else { hay.contains(needle.as_str()) }
            }
        }
    }
}

/// Splits `/pattern/flags` into pattern and flags, if `key` has that form.
/// `g` is accepted and ignored (JavaScript users write it out of habit), `u`
/// is what Rust's regex does anyway.
fn slash_regex(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix('/')?;
    let end = rest.rfind('/')?;
    let (pattern, flags) = (&rest[..end], &rest[end + 1..]);
    if pattern.is_empty() || !flags.chars().all(|c| matches!(c, 'i' | 's' | 'm' | 'u' | 'g')) {
        return None;
    }
    Some((pattern, flags))
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Whether `needle` occurs in `hay` with no word character directly before or after it.
fn contains_whole_word(hay: &str, needle: &str) -> bool {
    hay.match_indices(needle).any(|(start, found)| {
        let before = hay[..start].chars().next_back();
        let after = hay[start + found.len()..].chars().next();
        // A boundary is only needed where the key itself starts or ends with a word character.
        let starts_word = needle.chars().next().is_some_and(is_word_char);
        let ends_word = needle.chars().next_back().is_some_and(is_word_char);
        (!starts_word || !before.is_some_and(is_word_char)) && (!ends_word || !after.is_some_and(is_word_char))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry::default()
    }

    fn matches(key: &str, entry: &Entry, text: &str) -> bool {
        KeyMatcher::new(key, entry).is_match(&ScanText::new(text.to_owned()))
    }

    #[test]
    fn plain_keys_ignore_case_by_default() {
        assert!(matches("Dragon", &entry(), "a DRAGON appears"));
        let strict = Entry { case_sensitive: Some(true), ..entry() };
        assert!(!matches("Dragon", &strict, "a DRAGON appears"));
        assert!(matches("Dragon", &strict, "a Dragon appears"));
    }

    #[test]
    fn whole_words_need_boundaries() {
        let whole = Entry { match_whole_words: Some(true), ..entry() };
        assert!(matches("cat", &entry(), "concatenate"));
        assert!(!matches("cat", &whole, "concatenate"));
        assert!(matches("cat", &whole, "the cat, sat"));
        assert!(matches("cat", &whole, "cat"));
        assert!(matches("black cat", &whole, "a black cat!"));
        // The second occurrence counts even when the first is inside a word.
        assert!(matches("cat", &whole, "cats and a cat"));
        assert!(matches("c++", &whole, "I like c++."));
    }

    #[test]
    fn slash_keys_are_regexes_with_flags() {
        assert!(matches("/dra(g|k)on/i", &entry(), "DRAKON"));
        assert!(!matches("/dra(g|k)on/", &entry(), "DRAKON"));
        assert!(matches("/^b/m", &entry(), "a\nb"));
        assert!(matches("/a.b/s", &entry(), "a\nb"));
        assert!(!matches("/a.b/", &entry(), "a\nb"));
        // Not a regex: unknown flag, so it is matched as plain text.
        assert!(matches("/x/q", &entry(), "see /x/q here"));
    }

    #[test]
    fn use_regex_makes_every_key_a_pattern() {
        let re = Entry { use_regex: true, ..entry() };
        assert!(matches(r"\bsw(or)?d\b", &re, "a SWORD"));
        assert!(!matches(r"\bsw(or)?d\b", &entry(), "a SWORD"));
    }

    #[test]
    fn invalid_or_huge_regexes_never_match_and_never_panic() {
        assert!(!matches("/(unclosed/", &entry(), "(unclosed"));
        let re = Entry { use_regex: true, ..entry() };
        assert!(!matches("[", &re, "["));
        assert!(!matches(r"(\w{1000}){1000}", &re, "word"));
        assert!(KeyMatcher::compile("/(unclosed/", &entry()).is_err());
        assert!(KeyMatcher::compile("[", &re).is_err());
        assert!(KeyMatcher::compile("[", &entry()).is_ok(), "a plain key is never a bad pattern");
    }

    #[test]
    fn empty_keys_never_match() {
        assert!(!matches("", &entry(), "anything"));
        assert!(!matches("  ", &entry(), "a  b"));
    }
}
