//! Display snippets: a piece of the original (unfolded) text around the best match, with the
//! matched words located so apps can mark them.
//!
//! Matching folds the original text exactly as the index does ([`super::fold()`]), so a word is
//! marked when the index matched it: a searched word marks every word whose folded form starts
//! with it (`strasse` marks `Straße`), an exact phrase marks its run of words as one range.

use std::ops::Range;

use unicode_normalization::char::is_combining_mark;

use super::arabic::proclitic_stems;
use super::fold::{fold_tokens, Token};
use super::query::{Part, SearchQuery};

const ELLIPSIS: &str = "…";

/// At most this many matches are tried as the centre of the snippet.
const MAX_CANDIDATES: usize = 256;

/// A display snippet cut from the original text, with the matched words' byte ranges into
/// [`Snippet::text`], sorted and not overlapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snippet {
    pub text: String,
    pub matches: Vec<Range<usize>>,
}

impl Snippet {
    /// The text with each match wrapped in `open` and `close`, e.g. `("[", "]")` or
    /// `("<b>", "</b>")`. Ranges that do not fit the text are skipped.
    pub fn marked(&self, open: &str, close: &str) -> String {
        let mut out =
            String::with_capacity(self.text.len() + self.matches.len() * (open.len() + close.len()));
        let mut at = 0;
        for range in &self.matches {
            let (Some(before), Some(word)) = (self.text.get(at..range.start), self.text.get(range.clone()))
            else {
                continue;
            };
            out.push_str(before);
            out.push_str(open);
            out.push_str(word);
            out.push_str(close);
            at = range.end;
        }
        out.push_str(self.text.get(at..).unwrap_or_default());
        out
    }
}

/// A snippet of `original` around its best match: the window of at most about `max_chars`
/// characters holding the most distinct searched words, cut at word boundaries where possible
/// (always at character boundaries), with "…" where text was cut and runs of white space shown
/// as one space. If nothing matches, the start of the text.
pub fn snippet(original: &str, query: &SearchQuery, max_chars: usize) -> Snippet {
    let chars: Vec<(usize, char)> = original.char_indices().collect();
    let tokens = fold_tokens(original);
    let parts: Vec<&Part> = query.positive_parts().collect();
    let matches = find_matches(&tokens, &parts);

    let (start, end) = window(&chars, &matches, original.len(), max_chars.max(1));
    render(original, &chars, &matches, start, end)
}

/// One matched range of the original text and the bit set of the parts it matched.
#[derive(Debug, Clone)]
struct Match {
    range: Range<usize>,
    parts: u64,
}

/// Every match, by byte range into the original, sorted, overlapping ones merged.
fn find_matches(tokens: &[Token], parts: &[&Part]) -> Vec<Match> {
    // The index also holds the proclitic stems of Arabic words (after the text's own words,
    // so only a one-word part can match them): such a match marks the whole original word.
    let stems: Vec<Vec<String>> = if parts.iter().any(|p| p.words.len() == 1) {
        tokens.iter().map(|t| proclitic_stems(&t.text)).collect()
    } else {
        Vec::new()
    };
    let mut found: Vec<Match> = Vec::new();
    for (p, part) in parts.iter().enumerate() {
        let bit = 1u64 << (p % 64);
        let n = part.words.len();
        if n == 0 || n > tokens.len() {
            continue;
        }
        for i in 0..=tokens.len() - n {
            let run = &tokens[i..i + n];
            let matches = |text: &str, k: usize, word: &str| {
                if part.prefix && k == n - 1 {
                    text.starts_with(word)
                } else {
                    text == word
                }
            };
            let hit = run
                .iter()
                .zip(&part.words)
                .enumerate()
                .all(|(k, (token, word))| matches(&token.text, k, word))
                || (n == 1
                    && stems
                        .get(i)
                        .is_some_and(|forms| forms.iter().any(|form| matches(form, 0, &part.words[0]))));
            if hit {
                found.push(Match {
                    range: run[0].source.start..run[n - 1].source.end,
                    parts: bit,
                });
            }
        }
    }
    found.sort_by_key(|m| (m.range.start, m.range.end));
    let mut merged: Vec<Match> = Vec::with_capacity(found.len());
    for m in found {
        match merged.last_mut() {
            Some(last) if m.range.start < last.range.end => {
                last.range.end = last.range.end.max(m.range.end);
                last.parts |= m.parts;
            }
            _ => merged.push(m),
        }
    }
    merged
}

/// Index of the char starting at or containing byte offset `byte`.
fn char_index(chars: &[(usize, char)], byte: usize) -> usize {
    chars.partition_point(|&(b, _)| b < byte)
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || is_combining_mark(c)
}

/// The window to show, as char indices `start..end`.
fn window(chars: &[(usize, char)], matches: &[Match], len: usize, max_chars: usize) -> (usize, usize) {
    let total = chars.len();
    let (mut start, mut end) = if total <= max_chars {
        (0, total)
    } else if matches.is_empty() {
        (0, max_chars)
    } else {
        best_window(chars, matches, len, max_chars)
    };

    if start > 0 && start < end && is_word_char(chars[start - 1].1) && is_word_char(chars[start].1) {
        // Do not start inside a word: move to its end, but never past the first match.
        let limit = matches
            .iter()
            .map(|m| char_index(chars, m.range.start))
            .find(|&m| m >= start)
            .map_or(end, |m| m.min(end));
        while start < limit && is_word_char(chars[start].1) {
            start += 1;
        }
    }
    if end < total && end > start && is_word_char(chars[end - 1].1) && is_word_char(chars[end].1) {
        // Do not end inside a word, unless the window is that one word.
        let mut cut = end;
        while cut > start && is_word_char(chars[cut - 1].1) {
            cut -= 1;
        }
        if chars[start..cut].iter().any(|&(_, c)| is_word_char(c)) {
            end = cut;
        }
    }
    while start < end && chars[start].1.is_whitespace() {
        start += 1;
    }
    while end > start && chars[end - 1].1.is_whitespace() {
        end -= 1;
    }
    (start, end)
}

/// The window of `max_chars` chars (fewer than the text has) holding the most distinct parts,
/// then the most matches; the earliest of equals. Each candidate starts a quarter of the
/// window before one match.
fn best_window(chars: &[(usize, char)], matches: &[Match], len: usize, max_chars: usize) -> (usize, usize) {
    let total = chars.len();
    let byte_of = |i: usize| chars.get(i).map_or(len, |&(b, _)| b);
    let mut best = (0, 0, 0usize);
    let mut best_score = (0u32, 0usize);
    for m in matches.iter().take(MAX_CANDIDATES) {
        let first = char_index(chars, m.range.start);
        let start = first.saturating_sub(max_chars / 4).min(total - max_chars);
        let end = start + max_chars;
        let (start_byte, end_byte) = (byte_of(start), byte_of(end));
        let mut parts = 0u64;
        let mut count = 0;
        for inside in matches
            .iter()
            .filter(|o| o.range.start >= start_byte && o.range.end <= end_byte)
        {
            parts |= inside.parts;
            count += 1;
        }
        let score = (parts.count_ones(), count);
        if score > best_score {
            best_score = score;
            best = (start, end, count);
        }
    }
    if best.2 == 0 {
        // Not even one match fits (a match longer than the window): show its start.
        let first = matches.first().map_or(0, |m| char_index(chars, m.range.start));
        let start = first.min(total - max_chars);
        return (start, start + max_chars);
    }
    (best.0, best.1)
}

/// The snippet text for chars `start..end` of `original`, white space runs collapsed, with the
/// matches inside the window moved into it.
fn render(original: &str, chars: &[(usize, char)], matches: &[Match], start: usize, end: usize) -> Snippet {
    let byte_of = |i: usize| chars.get(i).map_or(original.len(), |&(b, _)| b);
    let (start_byte, end_byte) = (byte_of(start), byte_of(end));
    let cut = |range: &[(usize, char)]| range.iter().any(|&(_, c)| !c.is_whitespace());
    let mut text = String::new();
    if cut(&chars[..start.min(chars.len())]) {
        text.push_str(ELLIPSIS);
    }
    // For each char of the window (and its end): where it lands in `text`.
    let mut offsets: Vec<(usize, usize)> = Vec::with_capacity(end.saturating_sub(start) + 1);
    let mut in_space = false;
    for &(byte, c) in &chars[start.min(end)..end] {
        offsets.push((byte, text.len()));
        if c.is_whitespace() {
            if !in_space {
                text.push(' ');
            }
            in_space = true;
        } else {
            text.push(c);
            in_space = false;
        }
    }
    offsets.push((end_byte, text.len()));
    let to_text = |byte: usize| {
        let i = offsets.partition_point(|&(b, _)| b < byte);
        offsets.get(i).map(|&(_, t)| t)
    };
    let mut ranges = Vec::new();
    for m in matches {
        if m.range.start < start_byte || m.range.start >= end_byte {
            continue;
        }
        let (Some(a), Some(b)) = (to_text(m.range.start), to_text(m.range.end.min(end_byte))) else {
            continue;
        };
        if a < b {
            ranges.push(a..b);
        }
    }
    if cut(chars.get(end..).unwrap_or_default()) {
        text.push_str(ELLIPSIS);
    }
    Snippet {
        text,
        matches: ranges,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(input: &str) -> SearchQuery {
        SearchQuery::parse(input).unwrap()
    }

    fn marked(text: &str, query: &str, max_chars: usize) -> String {
        snippet(text, &q(query), max_chars).marked("[", "]")
    }

    fn matched_words(s: &Snippet) -> Vec<&str> {
        s.matches.iter().map(|r| &s.text[r.clone()]).collect()
    }

    #[test]
    fn marks_the_original_words() {
        let s = snippet("Die Straße ist gesperrt.", &q("strasse"), 100);
        assert_eq!(s.text, "Die Straße ist gesperrt.");
        assert_eq!(matched_words(&s), ["Straße"]);
        assert_eq!(s.marked("<b>", "</b>"), "Die <b>Straße</b> ist gesperrt.");
    }

    #[test]
    fn prefix_and_folded_matches() {
        assert_eq!(
            marked(
                "Nachbarschaftsfest in MÜNCHEN, Muenchen und München",
                "nach münch",
                200
            ),
            "[Nachbarschaftsfest] in [MÜNCHEN], [Muenchen] und [München]"
        );
        assert_eq!(
            marked("İSTANBUL'da çay", "istanbul cay", 100),
            "[İSTANBUL]'da [çay]"
        );
    }

    #[test]
    fn arabic_and_ukrainian() {
        let s = snippet("زيارة إلى المَدْرَسَةِ الجديدة", &q("المدرسه"), 100);
        assert_eq!(matched_words(&s), ["المَدْرَسَةِ"]);
        let s = snippet("Поїздка до Києва", &q("києв"), 100);
        assert_eq!(matched_words(&s), ["Києва"]);
        let s = snippet("Київ навесні", &q("КИЇВ"), 100);
        assert_eq!(matched_words(&s), ["Київ"]);
        let s = snippet("Свіже м’ясо з ринку", &q("м'ясо"), 100);
        assert_eq!(matched_words(&s), ["м’ясо"]);
    }

    #[test]
    fn a_match_on_an_arabic_stem_marks_the_whole_word() {
        let text = "نلتقي بالجيران وآمنة في المساء";
        assert_eq!(marked(text, "الجيران", 100), "نلتقي [بالجيران] وآمنة في المساء");
        assert_eq!(marked(text, "جيران", 100), "نلتقي [بالجيران] وآمنة في المساء");
        assert_eq!(marked(text, "آمنة", 100), "نلتقي بالجيران [وآمنة] في المساء");
        assert_eq!(
            marked(text, r#""جيران""#, 100),
            "نلتقي [بالجيران] وآمنة في المساء"
        );
        assert_eq!(marked(text, "بالجيران", 100), "نلتقي [بالجيران] وآمنة في المساء");
        // Phrases match the text's own words only, as in the index.
        assert_eq!(marked(text, r#""جيران وآمنة""#, 100), text);
    }

    #[test]
    fn emoji_are_marked() {
        assert_eq!(marked("Kuchen 🎂 heute", "🎂", 100), "Kuchen [🎂] heute");
        assert_eq!(marked("Kuchen🎂heute ❤️", "❤", 100), "Kuchen🎂heute [❤️]");
        assert_eq!(marked("Daumen 👍🏽", "👍", 100), "Daumen [👍]🏽");
    }

    #[test]
    fn phrases_mark_the_whole_run_only_where_they_match() {
        assert_eq!(
            marked("am See, an der Straße am See", r#""Straße am See""#, 100),
            "am See, an der [Straße am See]"
        );
        assert_eq!(
            marked("Schreib eine E-Mail an mich", "e-mail", 100),
            "Schreib eine [E-Mail] an mich"
        );
        assert_eq!(marked("Gartenfest", r#""garten""#, 100), "Gartenfest");
    }

    #[test]
    fn excluded_words_are_not_marked() {
        assert_eq!(
            marked("Grillfest im Garten", "garten -grill", 100),
            "Grillfest im [Garten]"
        );
    }

    #[test]
    fn cuts_around_the_best_match_at_word_boundaries() {
        let text = "Eins zwei drei vier fünf sechs sieben acht neun zehn elf zwölf Garten \
                    dreizehn vierzehn fünfzehn sechzehn siebzehn achtzehn neunzehn zwanzig";
        let s = snippet(text, &q("garten"), 30);
        assert!(s.text.starts_with('…') && s.text.ends_with('…'), "{:?}", s.text);
        assert_eq!(matched_words(&s), ["Garten"]);
        let inner = s.text.trim_matches('…');
        assert!(inner.chars().count() <= 30, "{inner:?}");
        for word in inner.split(' ') {
            assert!(text.split(' ').any(|w| w == word), "{word:?} is cut");
        }
    }

    #[test]
    fn prefers_the_window_with_more_distinct_words() {
        let filler = "bla ".repeat(30);
        let text = format!("Garten {filler} Garten und Grill zusammen {filler} Ende");
        let s = snippet(&text, &q("garten grill"), 40);
        assert_eq!(matched_words(&s), ["Garten", "Grill"]);
    }

    #[test]
    fn without_match_shows_the_start() {
        let s = snippet("Ein langer Text über gar nichts Besonderes", &q("fahrrad"), 16);
        assert_eq!(s.text, "Ein langer Text…");
        assert!(s.matches.is_empty());
        let s = snippet("kurz", &q("fahrrad"), 100);
        assert_eq!(
            s,
            Snippet {
                text: "kurz".into(),
                matches: vec![]
            }
        );
    }

    #[test]
    fn collapses_white_space_and_keeps_ranges_right() {
        let s = snippet("  Der\n\n  Garten \t blüht  ", &q("garten blüh"), 100);
        assert_eq!(s.text, "Der Garten blüht");
        assert_eq!(s.marked("[", "]"), "Der [Garten] [blüht]");
    }

    #[test]
    fn cuts_keep_char_boundaries_in_any_script() {
        let texts = [
            "Київ ".repeat(40) + "Львів",
            "مدرسة ".repeat(40) + "كتاب",
            "😀🎉".repeat(60) + " Garten",
            "ß".repeat(300),
            "e\u{301}".repeat(100) + " café",
        ];
        for text in &texts {
            for query in ["львів", "كتاب", "garten", "ss", "cafe", "zzz"] {
                for max in [1, 2, 5, 17, 40, 1000, usize::MAX] {
                    let s = snippet(text, &q(query), max);
                    for r in &s.matches {
                        assert!(
                            s.text.get(r.clone()).is_some(),
                            "{query} {max} {r:?} in {:?}",
                            s.text
                        );
                    }
                    let _ = s.marked("<", ">");
                }
            }
        }
        let s = snippet(&("Київ ".repeat(40) + "Львів"), &q("львів"), 12);
        assert_eq!(matched_words(&s), ["Львів"]);
        assert!(s.text.starts_with('…'));
    }

    #[test]
    fn one_long_word_is_cut_inside() {
        let s = snippet(&"x".repeat(50), &q("xx"), 10);
        assert_eq!(s.text, format!("{}…", "x".repeat(10)));
        assert_eq!(
            matched_words(&s),
            [s.text.trim_end_matches(ELLIPSIS)],
            "marked up to the cut"
        );
    }

    #[test]
    fn marked_skips_bad_ranges() {
        let s = Snippet {
            text: "aß b".into(),
            matches: vec![0..1, 2..3, 4..9],
        };
        assert_eq!(s.marked("[", "]"), "[a]ß b");
        let s = Snippet {
            text: "abc".into(),
            matches: vec![],
        };
        assert_eq!(s.marked("[", "]"), "abc");
    }

    #[test]
    fn empty_text() {
        assert_eq!(
            snippet("", &q("x"), 10),
            Snippet {
                text: String::new(),
                matches: vec![]
            }
        );
    }
}
