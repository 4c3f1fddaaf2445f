//! # Search text: folding, query parsing, snippets
//!
//! Pure functions between what people write and the SQLite FTS5 index; nothing here touches
//! storage. The store indexes [`fold()`]ed text in an FTS5 table created with
//! `tokenize="unicode61 remove_diacritics 0"`, so that every equivalence between spellings
//! (case, umlauts and their transliterations, accents, Turkish i, Arabic letter variants) is
//! decided here, once, for indexed text and query words alike.
//!
//! - [`fold()`] (module `fold`): the normal form of text for indexing and matching;
//! - [`SearchQuery`] (module `query`): what a person typed, as an FTS5 MATCH expression that is
//!   never a syntax error, or a typed [`SearchSyntaxError`];
//! - [`snippet()`] (module `snippet`): a [`Snippet`] of the original text around the best match,
//!   with the matched words located.
//!
//! ## Folding rules
//!
//! | rule | examples |
//! | --- | --- |
//! | Unicode lowercase; Turkish `İ`, `ı`, `I` → `i` | `İstanbul`, `ISTANBUL`, `ıstanbul` → `istanbul` |
//! | `ä ö ü` → `a o u`; German2 digraphs `ae oe ue` → `a o u` (`ue` not after `q` or a vowel) | `München`, `Muenchen`, `Munchen` → `munchen`; `Quelle`, `Bauer`, `neue` unchanged |
//! | `ß`, `ẞ` → `ss` | `Straße`, `Strasse` → `strasse` |
//! | other diacritics stripped (NFKD, combining marks dropped); `ł đ ħ ŧ` → `l d h t`; `æ` → `a`, `œ ø` → `o` | `café` → `cafe`, `çay` → `cay`, `Łódź` → `lodz` |
//! | compatibility forms unified (NFKD) | `ﬁ` → `fi`, `Ａ１` → `a1`, `²` → `2` |
//! | Arabic: harakat and tatweel dropped; `أ إ آ ٱ` → `ا`; `ة` → `ه`; `ى ی` → `ي`; `ک` → `ك`; `ؤ` → `و`, `ئ` → `ي`; Arabic-Indic digits → ASCII | `المَدْرَسَة`, `المدرسه` → `المدرسه`; `٣` → `3` |
//! | Cyrillic: `й`, `ї`, `ў` stay distinct letters (precomposed or decomposed); `ё` → `е`; an apostrophe (`'` `’` `ʼ`) inside a Cyrillic word is dropped | `Київ` → `київ`; `м'ясо`, `мʼясо`, `мясо` → `мясо` |
//! | Greek final `ς` → `σ` | `ΟΔΟΣ`, `οδός` → `οδοσ` |
//! | invisible format characters (soft hyphen, bidi marks, BOM, word joiner) dropped | `Nach\u{AD}bar` → `nachbar` |
//! | everything else that is not a letter, digit or private-use character separates words, exactly as for FTS5 `unicode61`; a symbol decomposing to letters stays a word of its own | `e-mail` → `e mail`, `l'eau` → `l eau`, `Marke™` → `marke tm` |
//!
//! | emoji pictographs → `u` + hex code point; skin tones, variation selectors dropped | `🎂` → `u1f382`, `👍🏽` → `u1f44d` |
//!
//! The index side ([`fold_for_index()`]) adds the stems of Arabic words with attached
//! proclitics (module `arabic`); queries are folded, not stemmed.
//!
//! Known trade-offs: the digraph rule also folds non-German words (`Michael` → `michal`,
//! `blue` → `blu`, `Israel` → `isral`) and merges German `schon`/`schön`; both sides are folded
//! alike, so this only widens matches. `й`/`и` and `ї`/`і` are not merged. Scripts written
//! without spaces (Chinese, Japanese, Thai) are indexed in runs, as `unicode61` does.

mod arabic;
mod fold;
mod query;
mod snippet;

#[cfg(test)]
mod fts5_tests;

pub use fold::{fold, fold_for_index};
pub use query::{SearchQuery, SearchSyntaxError, MAX_QUERY_CHARS, MAX_QUERY_TERMS, MIN_PREFIX_CHARS};
pub use snippet::{snippet, Snippet};
