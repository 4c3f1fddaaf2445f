//! What a person types, turned into a safe FTS5 MATCH expression.
//!
//! The grammar is deliberately small and forgiving:
//! - words separated by white space are ANDed and prefix-matched (`nach` finds
//!   `Nachbarschaft`), except short words (see [`MIN_PREFIX_CHARS`]);
//! - a word with punctuation inside (`e-mail`, `9:30`, `title:x`) is one prefix phrase of its
//!   parts;
//! - `"double-quoted words"` (also `„…“`, `“…”`, `«…»`) match as an exact phrase; with an odd
//!   number of quotes the last one is ignored and the rest read as plain words;
//! - a leading `-` (or `−`) excludes a word or a quoted phrase;
//! - nothing else is syntax: FTS5's operators (`AND`, `OR`, `NOT`, `NEAR`), `*`, `^`, `:`,
//!   parentheses and column filters are plain words or ignored punctuation.
//!
//! Every token in [`SearchQuery::fts5_match`] is folded (so it consists of token characters
//! only) and double-quoted, so the expression can never be an FTS5 syntax error.

use super::fold::fold_tokens;

/// The longest search string accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 500;

/// The most words (counting every word of every phrase and exclusion) a search may have.
pub const MAX_QUERY_TERMS: usize = 32;

/// A word shorter than this (folded, in characters) matches only itself, not every word it
/// begins: `garten f` finds the word `f` until a second letter is typed, `k` alone finds `K`.
/// FTS5 keeps a list per two-character prefix (schema 28) and reads it newest first, but for
/// a one-character prefix it merges the lists of every word that begins with it before it can
/// stop at the newest matches: `k` begins words in 77 000 of the 100 000 bench items (28 ms;
/// `garten f` 12 ms). Characters of scripts written without spaces (Chinese, Japanese, Thai,
/// ...) stay prefixes: there a word is a run of such characters (`docs/queries.md`).
pub const MIN_PREFIX_CHARS: usize = 2;

/// Why a search string cannot be searched.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SearchSyntaxError {
    /// No word to search for: the input was empty, blank or only punctuation and symbols (an
    /// emoji counts as a word).
    #[error("type at least one word to search for")]
    Empty,
    /// Only `-excluded` words, nothing to look for.
    #[error("add at least one word to look for: a search cannot only exclude words")]
    OnlyExclusions,
    /// The input is longer than `max` characters.
    #[error("the search is too long: use at most {max} characters")]
    TooLong { max: usize },
    /// The input has more than `max` words.
    #[error("the search has too many words: use at most {max}")]
    TooManyTerms { max: usize },
}

/// A user's search string turned into a safe FTS5 MATCH expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    parts: Vec<Part>,
}

/// One word or phrase of a query, folded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Part {
    /// Folded tokens, one or more, each of token characters only.
    pub(crate) words: Vec<String>,
    /// Whether the last word matches as a prefix.
    pub(crate) prefix: bool,
    /// Whether matching documents are excluded.
    pub(crate) exclude: bool,
}

impl SearchQuery {
    /// Any string a user types is accepted or rejected with a typed error; the result never
    /// produces an FTS5 syntax error. See the module documentation for the grammar.
    pub fn parse(input: &str) -> Result<SearchQuery, SearchSyntaxError> {
        let input = input.trim();
        if input.chars().count() > MAX_QUERY_CHARS {
            return Err(SearchSyntaxError::TooLong { max: MAX_QUERY_CHARS });
        }
        let mut parts = split(input);
        if parts.iter().map(|p| p.words.len()).sum::<usize>() > MAX_QUERY_TERMS {
            return Err(SearchSyntaxError::TooManyTerms { max: MAX_QUERY_TERMS });
        }
        if parts.is_empty() {
            return Err(SearchSyntaxError::Empty);
        }
        if parts.iter().all(|p| p.exclude) {
            return Err(SearchSyntaxError::OnlyExclusions);
        }
        for part in &mut parts {
            let last = part.words.last().map(String::as_str).unwrap_or_default();
            if last.chars().count() < MIN_PREFIX_CHARS && last.chars().all(written_with_spaces) {
                part.prefix = false;
            }
        }
        Ok(SearchQuery { parts })
    }

    /// The FTS5 MATCH expression, every token double-quoted, e.g.
    /// `"nachbar"* "garten"* NOT "grill"*`. Quoted phrases carry no `*`.
    pub fn fts5_match(&self) -> String {
        let mut out = String::new();
        for part in self.parts.iter().filter(|p| !p.exclude) {
            if !out.is_empty() {
                out.push(' ');
            }
            part.write_fts5(&mut out);
        }
        for part in self.parts.iter().filter(|p| p.exclude) {
            out.push_str(" NOT ");
            part.write_fts5(&mut out);
        }
        out
    }

    /// Folded terms to highlight: the words of every word and phrase searched for (not the
    /// excluded ones), each once, in the order typed.
    pub fn highlight_terms(&self) -> Vec<String> {
        let mut terms: Vec<String> = Vec::new();
        for word in self.positive_parts().flat_map(|p| &p.words) {
            if !terms.contains(word) {
                terms.push(word.clone());
            }
        }
        terms
    }

    /// The words and phrases searched for, without the excluded ones.
    pub(crate) fn positive_parts(&self) -> impl Iterator<Item = &Part> {
        self.parts.iter().filter(|p| !p.exclude)
    }
}

impl Part {
    fn write_fts5(&self, out: &mut String) {
        out.push('"');
        for (i, word) in self.words.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            // Folded words never hold a quote; doubling is FTS5's escape should one ever appear.
            out.push_str(&word.replace('"', "\"\""));
        }
        out.push('"');
        if self.prefix {
            out.push('*');
        }
    }
}

/// Whether `c` belongs to a script whose words are separated by spaces: not Han, Hiragana,
/// Katakana, Yi, Thai, Lao, Khmer, Myanmar or Tai Tham, which FTS5 indexes as unbroken runs.
fn written_with_spaces(c: char) -> bool {
    !matches!(
        u32::from(c),
        0x0E00..=0x0EFF // Thai, Lao
            | 0x1000..=0x109F // Myanmar
            | 0xA9E0..=0xA9FF // Myanmar extended-B
            | 0xAA60..=0xAA7F // Myanmar extended-A
            | 0x1780..=0x17FF // Khmer
            | 0x1A20..=0x1AAF // Tai Tham
            | 0x3005..=0x3007 // 々 〆 〇
            | 0x3040..=0x30FF // Hiragana, Katakana
            | 0x31F0..=0x31FF // Katakana phonetic extensions
            | 0xA000..=0xA4CF // Yi
            | 0x3400..=0x4DBF // Han extension A
            | 0x4E00..=0x9FFF // Han
            | 0xF900..=0xFAFF // Han compatibility
            | 0x2_0000..=0x3_FFFF // Han extensions B and later
    )
}

fn is_quote(c: char) -> bool {
    matches!(c, '"' | '“' | '”' | '„' | '«' | '»' | '＂')
}

fn is_minus(c: char) -> bool {
    matches!(c, '-' | '−')
}

/// Splits the input into parts: white-space separated words, quoted phrases, exclusions.
fn split(input: &str) -> Vec<Part> {
    let chars: Vec<(usize, char)> = input.char_indices().collect();
    let quotes = chars.iter().filter(|(_, c)| is_quote(*c)).count();
    // With an odd number of quotes, the last one is ignored (read as white space).
    let paired_quotes = quotes - quotes % 2;
    let mut quotes_seen = 0;
    let byte_at = |i: usize| chars.get(i).map_or(input.len(), |&(b, _)| b);

    let mut parts = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i].1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if is_quote(c) && quotes_seen >= paired_quotes {
            quotes_seen += 1;
            i += 1;
            continue;
        }
        let mut exclude = false;
        while i < chars.len() && is_minus(chars[i].1) {
            exclude = true;
            i += 1;
        }
        if i < chars.len() && is_quote(chars[i].1) && quotes_seen < paired_quotes {
            // A phrase up to the matching quote, which exists: quotes come in pairs here.
            let start = i + 1;
            let mut end = start;
            while end < chars.len() && !is_quote(chars[end].1) {
                end += 1;
            }
            quotes_seen += 2;
            add_part(&mut parts, &input[byte_at(start)..byte_at(end)], false, exclude);
            i = end + 1;
        } else {
            let start = i;
            while i < chars.len() && !chars[i].1.is_whitespace() && !is_quote(chars[i].1) {
                i += 1;
            }
            add_part(&mut parts, &input[byte_at(start)..byte_at(i)], true, exclude);
        }
    }
    parts
}

fn add_part(parts: &mut Vec<Part>, text: &str, prefix: bool, exclude: bool) {
    let words: Vec<String> = fold_tokens(text).into_iter().map(|t| t.text).collect();
    if words.is_empty() {
        return;
    }
    let part = Part {
        words,
        prefix,
        exclude,
    };
    if !parts.contains(&part) {
        parts.push(part);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fts(input: &str) -> String {
        match SearchQuery::parse(input) {
            Ok(q) => q.fts5_match(),
            Err(e) => panic!("{input:?}: {e}"),
        }
    }

    #[test]
    fn words_are_anded_and_prefix_matched() {
        assert_eq!(fts("Nachbar Garten"), r#""nachbar"* "garten"*"#);
        assert_eq!(fts("  nach  "), r#""nach"*"#);
    }

    #[test]
    fn words_are_folded() {
        assert_eq!(
            fts("Straße MÜNCHEN İstanbul"),
            r#""strasse"* "munchen"* "istanbul"*"#
        );
    }

    #[test]
    fn exclusions_follow_with_not() {
        assert_eq!(
            fts("nachbar garten -grill"),
            r#""nachbar"* "garten"* NOT "grill"*"#
        );
        assert_eq!(
            fts("-grill nachbar −lärm"),
            r#""nachbar"* NOT "grill"* NOT "larm"*"#
        );
        assert_eq!(fts(r#"fest -"laute musik""#), r#""fest"* NOT "laute musik""#);
    }

    #[test]
    fn quoted_phrases_are_exact_phrases() {
        assert_eq!(fts(r#""Straße am See" garten"#), r#""strasse am see" "garten"*"#);
        assert_eq!(fts("„offener Garten“"), r#""offener garten""#);
        assert_eq!(fts(r#""garten""#), r#""garten""#);
        assert_eq!(fts(r#"ab""cd"#), r#""ab"* "cd"*"#);
    }

    #[test]
    fn unbalanced_quote_leaves_plain_words() {
        assert_eq!(
            fts(r#"offener "Garten heute"#),
            r#""offener"* "garten"* "heute"*"#
        );
        assert_eq!(fts(r#""a b" "cat dog"#), r#""a b" "cat"* "dog"*"#);
        assert_eq!(fts(r#"cat"dog"#), r#""cat"* "dog"*"#);
    }

    #[test]
    fn punctuated_words_are_prefix_phrases() {
        assert_eq!(fts("E-Mail"), r#""e mail"*"#);
        assert_eq!(fts("9:30"), r#""9 30"*"#);
        assert_eq!(fts("title:garten"), r#""title garten"*"#);
    }

    #[test]
    fn fts5_operators_are_plain_words_or_punctuation() {
        assert_eq!(
            fts("ab AND bc OR cd NOT de"),
            r#""ab"* "and"* "bc"* "or"* "cd"* "not"* "de"*"#
        );
        assert_eq!(fts("NEAR(abc bcd)"), r#""near abc"* "bcd"*"#);
        assert_eq!(fts("*xyz ^yes (zen)"), r#""xyz"* "yes"* "zen"*"#);
        assert_eq!(fts("abc - -- bcd"), r#""abc"* "bcd"*"#);
    }

    #[test]
    fn a_single_character_matches_only_itself_unless_its_script_has_no_spaces() {
        assert_eq!(fts("k"), r#""k""#);
        assert_eq!(fts("Ä"), r#""a""#);
        assert_eq!(fts("garten f"), r#""garten"* "f""#);
        assert_eq!(fts("kalk 5"), r#""kalk"* "5""#);
        assert_eq!(fts("hilfe -x"), r#""hilfe"* NOT "x""#);
        assert_eq!(fts("E-M"), r#""e m""#);
        // Two characters are a prefix, beside other words too (`ev` finds `Evler`).
        assert_eq!(fts("Hier gibt es"), r#""hier"* "gibt"* "es"*"#);
        assert_eq!(fts("ev kiralık"), r#""ev"* "kiralik"*"#);
        assert_eq!(fts("ні"), r#""ні"*"#);
        assert_eq!(fts("ب"), r#""ب""#);
        // Scripts without spaces index runs of characters: one is a prefix of the run.
        assert_eq!(fts("花"), r#""花"*"#);
        assert_eq!(fts("カ"), r#""カ"*"#);
        assert_eq!(fts("ก"), r#""ก"*"#);
        assert_eq!(fts("ꀀ"), r#""ꀀ"*"#);
        // Counted after folding: `ß` is `ss`, two characters.
        assert_eq!(fts("ß"), r#""ss"*"#);
    }

    #[test]
    fn emoji_are_words() {
        assert_eq!(fts("😀 🎉"), r#""u1f600"* "u1f389"*"#);
        assert_eq!(fts("Kuchen🎂"), r#""kuchen u1f382"*"#);
        assert_eq!(fts("👍🏽"), r#""u1f44d"*"#);
        assert_eq!(fts("👩‍🍳"), r#""u1f469 u1f373"*"#);
        assert_eq!(fts("❤️"), r#""u2764"*"#);
    }

    #[test]
    fn arabic_query_words_are_not_stemmed() {
        assert_eq!(fts("بالجيران"), r#""بالجيران"*"#);
    }

    #[test]
    fn repeated_parts_count_once() {
        assert_eq!(fts("garten Garten GARTEN"), r#""garten"*"#);
    }

    #[test]
    fn errors_are_typed() {
        assert_eq!(SearchQuery::parse(""), Err(SearchSyntaxError::Empty));
        assert_eq!(SearchQuery::parse("  \t\n"), Err(SearchSyntaxError::Empty));
        assert_eq!(
            SearchQuery::parse(r#"*** ( ) "" -"#),
            Err(SearchSyntaxError::Empty)
        );
        assert_eq!(SearchQuery::parse("‼ ©"), Err(SearchSyntaxError::Empty));
        assert_eq!(
            SearchQuery::parse("-grill -lärm"),
            Err(SearchSyntaxError::OnlyExclusions)
        );
        let long = "a".repeat(MAX_QUERY_CHARS + 1);
        assert_eq!(
            SearchQuery::parse(&long),
            Err(SearchSyntaxError::TooLong { max: MAX_QUERY_CHARS })
        );
        assert!(SearchQuery::parse(&"a".repeat(MAX_QUERY_CHARS)).is_ok());
        let many: String = (0..=MAX_QUERY_TERMS).map(|i| format!("w{i} ")).collect();
        assert_eq!(
            SearchQuery::parse(&many),
            Err(SearchSyntaxError::TooManyTerms { max: MAX_QUERY_TERMS })
        );
        assert_eq!(
            SearchSyntaxError::Empty.to_string(),
            "type at least one word to search for"
        );
    }

    #[test]
    fn highlight_terms_are_positive_words_and_phrase_words() {
        let q = SearchQuery::parse(r#"Nachbar "Straße am See" -Grill nachbar"#).unwrap();
        assert_eq!(q.highlight_terms(), ["nachbar", "strasse", "am", "see"]);
    }
}
