//! Light stemming of Arabic proclitics, at index time only.
//!
//! Arabic writes the conjunctions `و` ("and") and `ف` ("so"), the prepositions `ب` ("with"),
//! `ك` ("like"), `ل` ("for") and the article `ال` ("the") as part of the word: `بالجيران` is
//! "with the neighbours". Besides each word's full (folded) form, the index carries the forms
//! with these proclitics removed, so that a search for `الجيران` or `جيران` finds `بالجيران`.
//! Queries are not stemmed: `بالجيران` still finds exactly itself.
//!
//! The rule, after Larkey's *light10* prefixes, for a folded word of Arabic letters only:
//! 1. an optional conjunction: `و`, or `ف` when an article form follows;
//! 2. an optional article form: `ال`, `بال`, `كال`, `لال`, or `لل` (`ل` + `ال`, whose alef is
//!    not written);
//! 3. the stems are the word without the conjunction, the definite form (`ال` + the rest after
//!    the article form) and the bare rest, each only when it has at least [`MIN_STEM_CHARS`]
//!    letters (and the bare rest at least 2 for the definite form).
//!
//! A preposition without the article (`بمدرسة`, `كتاب`) is left alone: too many words begin
//! with those letters. Short words keep their full form in the index in any case; the minimum
//! keeps `ولد` ("boy") from also being indexed as `لد`.

/// The fewest letters a stem may have.
pub(crate) const MIN_STEM_CHARS: usize = 3;

const WAW: char = '\u{0648}';
const FEH: char = '\u{0641}';
const BEH: char = '\u{0628}';
const KAF: char = '\u{0643}';
const LAM: char = '\u{0644}';
const ALEF: char = '\u{0627}';

fn is_arabic_letter(c: char) -> bool {
    matches!(c, '\u{0620}'..='\u{064A}' | '\u{066E}'..='\u{06D3}' | '\u{06FA}'..='\u{06FF}' | '\u{0750}'..='\u{077F}' | '\u{08A0}'..='\u{08C9}')
}

/// The stems of a folded word, without the word itself and without repeats; empty for words
/// that are not Arabic or carry no proclitic.
pub(crate) fn proclitic_stems(word: &str) -> Vec<String> {
    let first = word.chars().next();
    if !matches!(first, Some(WAW | FEH | BEH | KAF | LAM | ALEF)) || !word.chars().all(is_arabic_letter) {
        return Vec::new();
    }
    let chars: Vec<char> = word.chars().collect();
    let conjunction = matches!(chars[0], WAW | FEH) && chars.len() > 1;
    let after_conjunction = if conjunction { &chars[1..] } else { &chars[..] };
    let bare = after_article(after_conjunction);
    if conjunction && chars[0] == FEH && bare.is_none() {
        return Vec::new();
    }

    let mut stems: Vec<String> = Vec::new();
    let mut add = |stem: String| {
        if stem.chars().count() >= MIN_STEM_CHARS && stem != word && !stems.contains(&stem) {
            stems.push(stem);
        }
    };
    if conjunction {
        add(after_conjunction.iter().collect());
    }
    if let Some(bare) = bare {
        if bare.len() >= 2 {
            add([ALEF, LAM].iter().chain(bare).collect());
        }
        add(bare.iter().collect());
    }
    stems
}

/// What follows an article form (`ال`, `بال`, `كال`, `لال`, `لل`) at the start of `chars`.
fn after_article(chars: &[char]) -> Option<&[char]> {
    match chars {
        [LAM, LAM, rest @ ..] => Some(rest),
        [ALEF, LAM, rest @ ..] => Some(rest),
        [BEH | KAF | LAM, ALEF, LAM, rest @ ..] => Some(rest),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::fold::fold;
    use super::*;

    fn stems(word: &str) -> Vec<String> {
        proclitic_stems(&fold(word))
    }

    fn folded(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| fold(w)).collect()
    }

    #[test]
    fn proclitics_and_article_are_removed() {
        assert_eq!(stems("بالجيران"), folded(&["الجيران", "جيران"]));
        assert_eq!(stems("وبالجيران"), folded(&["بالجيران", "الجيران", "جيران"]));
        assert_eq!(stems("وآمنة"), folded(&["آمنة"]));
        assert_eq!(stems("فالمدرسة"), folded(&["المدرسة", "مدرسة"]));
        assert_eq!(stems("كالبيت"), folded(&["البيت", "بيت"]));
        assert_eq!(stems("للأطفال"), folded(&["الأطفال", "أطفال"]));
        assert_eq!(stems("الجيران"), folded(&["جيران"]));
        assert_eq!(stems("والمدرسة"), folded(&["المدرسة", "مدرسة"]));
    }

    #[test]
    fn short_words_and_other_letters_are_left_alone() {
        assert!(stems("بل").is_empty());
        assert!(stems("ولد").is_empty(), "لد is too short");
        assert!(stems("و").is_empty());
        assert!(stems("ال").is_empty());
        assert_eq!(stems("بالأم"), folded(&["الأم"]), "أم alone is too short");
        assert!(stems("كتاب").is_empty(), "a preposition without article stays");
        assert!(stems("فيلم").is_empty(), "ف only goes with an article");
        assert!(stems("مدرسة").is_empty());
        assert!(stems("Straße").is_empty());
        assert!(stems("вода").is_empty());
        assert!(stems("ب3").is_empty());
        assert!(stems("").is_empty());
    }
}
